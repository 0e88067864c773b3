//! The `cache:` section and a route's `cache:` override: whether answers are kept and reused,
//! where (this process or Redis), for how long, for whom (tenant scope), which requests qualify,
//! and how the semantic cache embeds and compares prompts.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problems, byte_size, duration, opt_duration};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Answer repeated requests from the cache on every route; a route's `cache.enabled` overrides.
    #[serde(default)]
    pub enabled: bool,
    /// Where exact-cache entries live: `memory` (this process) or `redis` (`redis.url`, shared by
    /// every replica).
    #[serde(default)]
    pub backend: CacheBackend,
    /// How long an answer is reused.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_ttl", with = "duration")]
    pub ttl: Duration,
    /// The memory backend's bound, in bytes of cached answers; the least used go first.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_size", deserialize_with = "byte_size")]
    pub max_size: u64,
    /// Answers larger than this are not cached.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_entry_size", deserialize_with = "byte_size")]
    pub max_entry_size: u64,
    /// Who shares entries: `team` (default; a caller without a team shares only with its own
    /// key), `key`, or `global`.
    #[serde(default)]
    pub scope: CacheScope,
    /// Requests sampled hotter than this are not cached: the caller asked for variety.
    #[serde(default = "default_max_temperature")]
    pub max_temperature: f64,
    /// Cache requests that offer tools (off: a tool call often acts on the world).
    #[serde(default)]
    pub with_tools: bool,
    #[serde(default)]
    pub semantic: SemanticConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            backend: CacheBackend::default(),
            ttl: default_ttl(),
            max_size: default_max_size(),
            max_entry_size: default_max_entry_size(),
            scope: CacheScope::default(),
            max_temperature: default_max_temperature(),
            with_tools: false,
            semantic: SemanticConfig::default(),
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    #[default]
    Memory,
    Redis,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    #[default]
    Team,
    Key,
    Global,
}

/// The semantic cache: prompts that mean the same thing share an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SemanticConfig {
    /// What embeds prompts: `local` (the in-process model in `model_dir`), or the name of an
    /// embeddings model or route of this gateway (`text-embedding-3-small`, an Ollama model…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
    /// The folder of a BERT-family sentence-transformer (config.json, model.safetensors,
    /// tokenizer.json), for `embedder: local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// The least cosine similarity served, from 0 to 1.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// The most prompts kept; the oldest go first.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Word pairs whose swap changes the answer, besides the built-in ones (enable/disable,
    /// allow/deny…): `[[grant, revoke], [approve, decline]]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opposites: Vec<[String; 2]>,
}

impl Default for SemanticConfig {
    fn default() -> Self {
        SemanticConfig {
            embedder: None,
            model_dir: None,
            threshold: default_threshold(),
            max_entries: default_max_entries(),
            opposites: Vec::new(),
        }
    }
}

/// A route's `cache:`: turns the cache on or off for it, adds the semantic cache, sets its TTL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCacheConfig {
    /// Overrides `cache.enabled` for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Also serve prompts that mean the same as a cached one (needs `cache.semantic.embedder`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub semantic: bool,
    /// Overrides `cache.ttl` for this route.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<Duration>,
}

fn default_ttl() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_size() -> u64 {
    256 << 20
}

fn default_max_entry_size() -> u64 {
    1 << 20
}

fn default_max_temperature() -> f64 {
    1.0
}

/// Measured on tests/data/semantic_pairs.yaml with all-MiniLM-L6-v2: 79 % of paraphrases
/// served, no trap (the guard refuses those; the threshold turns away unrelated prompts).
fn default_threshold() -> f32 {
    0.80
}

fn default_max_entries() -> usize {
    100_000
}

impl CacheConfig {
    /// `has_redis`: whether `redis.url` is set. `semantic_routes`: the routes that ask for the
    /// semantic cache.
    pub(crate) fn check(&self, has_redis: bool, semantic_routes: &[&str], problems: &mut Problems) {
        if self.backend == CacheBackend::Redis && !has_redis {
            problems.add(
                "cache.backend",
                "the redis backend needs redis.url (redis://host:6379); or use backend: memory",
            );
        }
        if self.ttl.is_zero() {
            problems.add("cache.ttl", "must be longer than 0, e.g. 1h");
        }
        if !(0.0..=2.0).contains(&self.max_temperature) {
            problems.add("cache.max_temperature", "must be between 0 and 2");
        }
        self.semantic.check(semantic_routes, problems);
    }
}

impl SemanticConfig {
    fn check(&self, semantic_routes: &[&str], problems: &mut Problems) {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            problems.add(
                "cache.semantic.threshold",
                "must be above 0 and at most 1; 0.80 suits all-MiniLM-L6-v2",
            );
        }
        if self.max_entries == 0 {
            problems.add("cache.semantic.max_entries", "must be at least 1");
        }
        match self.embedder.as_deref() {
            None if !semantic_routes.is_empty() => problems.add(
                "cache.semantic.embedder",
                format!(
                    "route \"{}\" asks for the semantic cache: set cache.semantic.embedder to local (with model_dir) or to an embeddings model of this gateway",
                    semantic_routes[0]
                ),
            ),
            Some("local") if self.model_dir.is_none() => problems.add(
                "cache.semantic.model_dir",
                "embedder: local needs the folder of a sentence-transformer model (config.json, model.safetensors, tokenizer.json)",
            ),
            Some(name) if name.trim().is_empty() => {
                problems.add("cache.semantic.embedder", "must not be empty")
            }
            _ => {}
        }
        for (i, [a, b]) in self.opposites.iter().enumerate() {
            if a.trim().is_empty() || b.trim().is_empty() || a.eq_ignore_ascii_case(b) {
                problems.add(
                    format!("cache.semantic.opposites[{i}]"),
                    "must be two different words, e.g. [grant, revoke]",
                );
            }
        }
    }
}
