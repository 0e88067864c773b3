//! The configuration file: its YAML shape, `${ENV}` interpolation, and validation into a
//! [`Config`] whose cross-references (route → model → provider) are known to hold.
//!
//! Loading is three steps, so that every error names the path of the key at fault:
//! YAML → a JSON tree whose strings are interpolated (`${VAR}`, `${VAR:-default}`) → typed
//! structs (serde_path_to_error gives the path of a type error) → semantic checks (unknown
//! model, missing key, …). Turning the valid config into live parts (clients, adapters) is
//! [`crate::pipeline`]'s job, not this module's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub use crate::admit::config::{GovernanceConfig, OverLimit, RedisConfig};

/// A configuration error, with the dotted path of the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(String),
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    #[serde(default)]
    pub resilience: ResilienceConfig,
    /// Where keys, users, teams, budgets' audit trail and request records are kept.
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub records: RecordsConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub governance: GovernanceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted; larger bodies get 413.
    #[serde(default = "default_max_body", deserialize_with = "byte_size")]
    pub max_body_size: u64,
    /// Largest server-sent event accepted from an upstream stream.
    #[serde(default = "default_max_event", deserialize_with = "byte_size")]
    pub max_upstream_event_size: u64,
    /// Longest time a request may take from arrival to its last byte, all attempts included.
    #[serde(default = "default_deadline", with = "duration")]
    pub request_deadline: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_size: default_max_body(),
            max_upstream_event_size: default_max_event(),
            request_deadline: default_deadline(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}
fn default_max_body() -> u64 {
    10 * 1024 * 1024
}
fn default_max_event() -> u64 {
    16 * 1024 * 1024
}
fn default_deadline() -> Duration {
    Duration::from_secs(600)
}

/// Who may call the gateway: static keys from this file, virtual keys issued through the admin
/// API, and (when allowed) callers with no key at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Static bearer tokens accepted on every endpoint.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Bearer tokens for `/admin/*`. Key management needs one; `/admin/health` also accepts the
    /// `api_keys` when none is set.
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Admit callers that send no key. Default: only when no `api_keys` and no `admin_keys`
    /// are configured (a local or demo gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
}

impl AuthConfig {
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous
            .unwrap_or(self.api_keys.is_empty() && self.admin_keys.is_empty())
    }
}

/// The database of keys, users, teams, the audit log and request records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (created and migrated on start), `postgres://…`, or `none` (no virtual
    /// keys, request records only in the log).
    #[serde(default = "default_records_url")]
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_records_url(),
        }
    }
}

/// How request records are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Write records to the database (`database.url`).
    #[serde(default = "default_true")]
    pub store: bool,
    /// Records waiting to be written; past this, records are dropped (counted and logged).
    #[serde(default = "default_records_buffer")]
    pub buffer: usize,
    /// Write every record as a structured log line too.
    #[serde(default)]
    pub log: bool,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            store: true,
            buffer: default_records_buffer(),
            log: false,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_records_url() -> String {
    "sqlite://switchyard.db".into()
}
fn default_records_buffer() -> usize {
    10_000
}

/// The vendors Switchyard knows. Every OpenAI-compatible vendor is a preset of the `openai`
/// dialect: a default base URL and auth header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Azure,
    Anthropic,
    Mock,
    OpenaiCompatible,
    Vllm,
    Ollama,
    Groq,
    Together,
    Mistral,
    Deepseek,
    Openrouter,
    Xai,
}

/// The wire dialect an adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Mock,
}

impl ProviderKind {
    pub fn dialect(self) -> Dialect {
        match self {
            ProviderKind::Anthropic => Dialect::Anthropic,
            ProviderKind::Mock => Dialect::Mock,
            _ => Dialect::OpenAi,
        }
    }

    /// The base URL used when the config gives none.
    pub fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Vllm => "http://127.0.0.1:8000/v1",
            ProviderKind::Ollama => "http://127.0.0.1:11434/v1",
            ProviderKind::Groq => "https://api.groq.com/openai/v1",
            ProviderKind::Together => "https://api.together.xyz/v1",
            ProviderKind::Mistral => "https://api.mistral.ai/v1",
            ProviderKind::Deepseek => "https://api.deepseek.com/v1",
            ProviderKind::Openrouter => "https://openrouter.ai/api/v1",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::Azure | ProviderKind::OpenaiCompatible | ProviderKind::Mock => {
                return None;
            }
        })
    }

    /// Whether calls without an API key make sense (local servers, the mock).
    pub fn key_optional(self) -> bool {
        matches!(
            self,
            ProviderKind::Mock
                | ProviderKind::Vllm
                | ProviderKind::Ollama
                | ProviderKind::OpenaiCompatible
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    #[serde(default)]
    pub base_url: Option<String>,
    /// One key; `api_keys` gives a pool.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Azure OpenAI's `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Extra headers sent with every upstream request (e.g. `anthropic-beta`, OpenRouter's
    /// `HTTP-Referer`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Behaviour of a `kind: mock` provider.
    #[serde(default)]
    pub mock: Option<MockConfig>,
}

impl ProviderConfig {
    /// The key pool, `api_key` first.
    pub fn keys(&self) -> Vec<String> {
        self.api_key
            .iter()
            .chain(self.api_keys.iter())
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// TCP + TLS connection set-up.
    #[serde(default = "default_connect", with = "duration")]
    pub connect: Duration,
    /// From sending the request to the response headers (for a non-streamed call, the whole
    /// generation).
    #[serde(default = "default_first_byte", with = "duration")]
    pub first_byte: Duration,
    /// Longest silence between two reads of a response body.
    #[serde(default = "default_idle", with = "duration")]
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect(),
            first_byte: default_first_byte(),
            idle: default_idle(),
        }
    }
}

fn default_connect() -> Duration {
    Duration::from_secs(10)
}
fn default_first_byte() -> Duration {
    Duration::from_secs(300)
}
fn default_idle() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// The answer, unless `echo` is set.
    #[serde(default = "default_mock_text")]
    pub text: String,
    /// Answer with the last user message instead of `text`.
    #[serde(default)]
    pub echo: bool,
    /// Wait before the first byte.
    #[serde(default, with = "duration")]
    pub latency: Duration,
    /// Words per streamed chunk.
    #[serde(default = "default_chunk_words")]
    pub chunk_words: usize,
    /// Wait between streamed chunks.
    #[serde(default, with = "duration")]
    pub chunk_interval: Duration,
    /// Fraction of calls (0.0–1.0) that fail with `failure_status`.
    #[serde(default)]
    pub failure_rate: f64,
    #[serde(default = "default_failure_status")]
    pub failure_status: u16,
    /// Length of the vectors `/v1/embeddings` returns when the request does not set
    /// `dimensions`.
    #[serde(default = "default_embedding_dimensions")]
    pub embedding_dimensions: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            text: default_mock_text(),
            echo: false,
            latency: Duration::ZERO,
            chunk_words: default_chunk_words(),
            chunk_interval: Duration::ZERO,
            failure_rate: 0.0,
            failure_status: default_failure_status(),
            embedding_dimensions: default_embedding_dimensions(),
        }
    }
}

fn default_mock_text() -> String {
    "Hello from Switchyard's mock provider. Point a model at a real provider in switchyard.yaml \
     to get real answers."
        .into()
}
fn default_chunk_words() -> usize {
    1
}
fn default_failure_status() -> u16 {
    500
}
fn default_embedding_dimensions() -> usize {
    64
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name of an entry of `providers`.
    pub provider: String,
    /// The model name the provider knows (Azure: the deployment name). Default: this model's
    /// own name.
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub price: Price,
    /// Tokens of prompt + output the model accepts.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// `max_tokens` sent when the client gives none (required by Anthropic). Default 4096.
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// What the model can do; empty means "no restriction".
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Chat,
    Embeddings,
    Tools,
    Vision,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache; default: the input price.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub strategy: Strategy,
    /// Models, as names or `{model, weight}`.
    pub targets: Vec<TargetConfig>,
    /// Conditional routing: the first rule whose `when` matches replaces `targets` (and
    /// `strategy`, if it gives one).
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub fallbacks: FallbacksConfig,
    /// Overrides `resilience.retry` for this route.
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Over a rate limit or budget: reject, queue or downgrade (default: `governance.over_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_limit: Option<OverLimit>,
}

/// A route target: a model name, or a model with a weight for the `weighted` strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetConfig {
    Name(String),
    Weighted {
        model: String,
        #[serde(default = "default_weight")]
        weight: u32,
    },
}

fn default_weight() -> u32 {
    1
}

impl TargetConfig {
    pub fn model(&self) -> &str {
        match self {
            TargetConfig::Name(m) | TargetConfig::Weighted { model: m, .. } => m,
        }
    }

    pub fn weight(&self) -> u32 {
        match self {
            TargetConfig::Name(_) => 1,
            TargetConfig::Weighted { weight, .. } => *weight,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Targets in the order listed.
    #[default]
    Ordered,
    /// The first target drawn at random in proportion to `weight`; the others follow.
    Weighted,
    /// The lower of two random targets by latency EWMA (power of two choices).
    LowestLatency,
    /// The cheapest target for this request, from the price table and estimated tokens.
    LowestCost,
    /// The target with the fewest requests in flight.
    LeastBusy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub when: Condition,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
}

/// Every condition given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Request headers that must have these values (names are case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request's `user` field is one of these.
    #[serde(default)]
    pub users: Vec<String>,
    /// The caller's key has this tag.
    #[serde(default)]
    pub key_tag: Option<String>,
    /// Estimated prompt tokens are at least this many.
    #[serde(default)]
    pub min_prompt_tokens: Option<u64>,
    /// Estimated prompt tokens are at most this many.
    #[serde(default)]
    pub max_prompt_tokens: Option<u64>,
    #[serde(default)]
    pub has_tools: Option<bool>,
    #[serde(default)]
    pub has_images: Option<bool>,
    /// A message contains a fenced code block.
    #[serde(default)]
    pub has_code: Option<bool>,
    /// `simple` or `hard`, by the heuristic in docs/routing.md.
    #[serde(default)]
    pub complexity: Option<Complexity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    Simple,
    Hard,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbacksConfig {
    /// Tried when a prompt does not fit: only models with a larger context window qualify.
    #[serde(default)]
    pub context_window: Vec<String>,
    /// Tried when a provider refuses the content; without them such a refusal is final.
    #[serde(default)]
    pub content_policy: Vec<String>,
}

/// How hard to try.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Upstream calls per request, all targets together.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Retries of one target on overload, 5xx or timeout before moving to the next.
    #[serde(default = "default_retries_per_target")]
    pub retries_per_target: u32,
    /// First backoff; doubles on each retry, with full jitter.
    #[serde(default = "default_backoff", with = "duration")]
    pub backoff: Duration,
    #[serde(default = "default_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// A Retry-After longer than this moves on to the next key or target instead of waiting.
    #[serde(default = "default_max_retry_wait", with = "duration")]
    pub max_retry_wait: Duration,
    /// Longest one upstream call may take to produce its response (or, for a stream, its first
    /// chunk) before the next target is tried.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_timeout: Option<Duration>,
    /// For streams: longest wait for the first chunk before the next target is tried
    /// (latency-threshold fallback).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttft_timeout: Option<Duration>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: default_max_attempts(),
            retries_per_target: default_retries_per_target(),
            backoff: default_backoff(),
            max_backoff: default_max_backoff(),
            max_retry_wait: default_max_retry_wait(),
            attempt_timeout: None,
            ttft_timeout: None,
        }
    }
}

fn default_max_attempts() -> u32 {
    4
}
fn default_retries_per_target() -> u32 {
    1
}
fn default_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(5)
}
fn default_max_retry_wait() -> Duration {
    Duration::from_secs(10)
}

/// The circuit breaker of every deployment.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row.
    #[serde(default = "default_consecutive_failures")]
    pub consecutive_failures: u32,
    /// Opens when the share of failures over `window` reaches this (0–1) ...
    #[serde(default = "default_error_rate")]
    pub error_rate: f64,
    /// ... once at least `min_requests` were made in the window.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    #[serde(default = "default_window", with = "duration")]
    pub window: Duration,
    /// Opens when the p95 latency over the window exceeds this.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub p95_latency: Option<Duration>,
    /// How long it stays open before one probe request is let through.
    #[serde(default = "default_cooldown", with = "duration")]
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: default_consecutive_failures(),
            error_rate: default_error_rate(),
            min_requests: default_min_requests(),
            window: default_window(),
            p95_latency: None,
            cooldown: default_cooldown(),
        }
    }
}

fn default_consecutive_failures() -> u32 {
    5
}
fn default_error_rate() -> f64 {
    0.5
}
fn default_min_requests() -> u32 {
    20
}
fn default_window() -> Duration {
    Duration::from_secs(30)
}
fn default_cooldown() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResilienceConfig {
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub breaker: BreakerConfig,
}

impl Config {
    /// Reads, interpolates and validates a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_yaml(&text, &|name| std::env::var(name).ok())
    }

    /// Parses, interpolates and validates YAML text; `env` looks variables up.
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut tree: Value = if text.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?
        };
        if tree.is_null() {
            tree = Value::Object(Default::default());
        }
        interpolate(&mut tree, "", env)?;
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "(top level)".into()
            } else {
                path
            };
            invalid(path, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_size == 0 {
            return Err(invalid("server.max_body_size", "must be greater than 0"));
        }
        for (name, p) in &self.providers {
            let path = format!("providers.{name}");
            let base = p.base_url.as_deref().or(p.kind.default_base_url());
            match base {
                None if p.kind != ProviderKind::Mock => {
                    return Err(invalid(
                        format!("{path}.base_url"),
                        format!("required for kind {:?}: set the provider's URL", p.kind),
                    ));
                }
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Err(invalid(
                        format!("{path}.base_url"),
                        format!("\"{url}\" is not an http:// or https:// URL"),
                    ));
                }
                _ => {}
            }
            if p.keys().iter().any(|k| k.is_empty()) {
                return Err(invalid(
                    format!("{path}.api_key"),
                    "is empty: is its environment variable set to a value?",
                ));
            }
            if p.keys().is_empty() && !p.kind.key_optional() {
                return Err(invalid(
                    format!("{path}.api_key"),
                    format!(
                        "kind {:?} needs an API key: set api_key: ${{YOUR_KEY_VAR}}",
                        p.kind
                    ),
                ));
            }
            if p.kind == ProviderKind::Azure && p.api_version.is_none() {
                return Err(invalid(
                    format!("{path}.api_version"),
                    "Azure OpenAI needs an api-version, e.g. api_version: \"2024-10-21\"",
                ));
            }
            if p.mock.is_some() && p.kind != ProviderKind::Mock {
                return Err(invalid(
                    format!("{path}.mock"),
                    "only a kind: mock provider takes mock settings",
                ));
            }
            if let Some(m) = &p.mock {
                if !(0.0..=1.0).contains(&m.failure_rate) {
                    return Err(invalid(
                        format!("{path}.mock.failure_rate"),
                        "must be between 0.0 and 1.0",
                    ));
                }
                if m.chunk_words == 0 {
                    return Err(invalid(
                        format!("{path}.mock.chunk_words"),
                        "must be at least 1",
                    ));
                }
                if !(400..=599).contains(&m.failure_status) {
                    return Err(invalid(
                        format!("{path}.mock.failure_status"),
                        "must be an HTTP error status (400–599)",
                    ));
                }
            }
        }
        for (name, m) in &self.models {
            if !self.providers.contains_key(&m.provider) {
                return Err(invalid(
                    format!("models.{name}.provider"),
                    format!(
                        "unknown provider \"{}\"; providers are: {}",
                        m.provider,
                        list(self.providers.keys())
                    ),
                ));
            }
        }
        for (name, r) in &self.routes {
            if self.models.contains_key(name) {
                return Err(invalid(
                    format!("routes.{name}"),
                    "a model has the same name: rename the route or the model",
                ));
            }
            let path = format!("routes.{name}");
            self.check_targets(
                &format!("{path}.targets"),
                r.targets.iter().map(TargetConfig::model),
            )?;
            if r.strategy == Strategy::Weighted && r.targets.iter().all(|t| t.weight() == 0) {
                return Err(invalid(
                    format!("{path}.targets"),
                    "a weighted route needs a target with weight > 0",
                ));
            }
            for (i, rule) in r.rules.iter().enumerate() {
                self.check_targets(
                    &format!("{path}.rules[{i}].targets"),
                    rule.targets.iter().map(TargetConfig::model),
                )?;
            }
            for (kind, list) in [
                ("context_window", &r.fallbacks.context_window),
                ("content_policy", &r.fallbacks.content_policy),
            ] {
                if !list.is_empty() {
                    self.check_targets(
                        &format!("{path}.fallbacks.{kind}"),
                        list.iter().map(String::as_str),
                    )?;
                }
            }
            if let Some(retry) = &r.retry {
                check_retry(&format!("{path}.retry"), retry)?;
            }
            if let Some(o) = &r.over_limit {
                self.check_over_limit(&format!("{path}.over_limit"), o)?;
            }
        }
        self.check_over_limit("governance.over_limit", &self.governance.over_limit)?;
        let callable = |n: &str| self.models.contains_key(n) || self.routes.contains_key(n);
        self.governance
            .validate(&callable)
            .map_err(|(path, message)| invalid(path, message))?;
        if self.redis.url.as_deref().is_some_and(|u| {
            !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://"))
        }) {
            return Err(invalid(
                "redis.url",
                "must be a redis://host:port URL (rediss:// for TLS)",
            ));
        }
        check_retry("resilience.retry", &self.resilience.retry)?;
        let b = &self.resilience.breaker;
        if !(b.error_rate > 0.0 && b.error_rate <= 1.0) {
            return Err(invalid(
                "resilience.breaker.error_rate",
                "must be above 0.0 and at most 1.0",
            ));
        }
        if b.consecutive_failures == 0 {
            return Err(invalid(
                "resilience.breaker.consecutive_failures",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    fn check_over_limit(&self, path: &str, o: &OverLimit) -> Result<(), ConfigError> {
        use crate::admit::config::Policy;
        match (&o.policy, &o.downgrade_to) {
            (Policy::Downgrade, None) => Err(invalid(
                format!("{path}.downgrade_to"),
                "policy downgrade needs the cheaper model or route to serve from",
            )),
            (_, Some(m)) if !self.models.contains_key(m) && !self.routes.contains_key(m) => {
                Err(invalid(
                    format!("{path}.downgrade_to"),
                    format!(
                        "unknown model or route \"{m}\"; models are: {}",
                        list(self.models.keys())
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn check_targets<'a>(
        &self,
        path: &str,
        targets: impl Iterator<Item = &'a str>,
    ) -> Result<(), ConfigError> {
        let mut n = 0;
        for (i, t) in targets.enumerate() {
            n += 1;
            if !self.models.contains_key(t) {
                return Err(invalid(
                    format!("{path}[{i}]"),
                    format!(
                        "unknown model \"{t}\"; models are: {}",
                        list(self.models.keys())
                    ),
                ));
            }
        }
        if n == 0 {
            return Err(invalid(path, "needs at least one model"));
        }
        Ok(())
    }

    /// The config as YAML-ready JSON with every secret masked, for `check-config`.
    pub fn masked(&self) -> Value {
        let mut copy = self.clone();
        for p in copy.providers.values_mut() {
            p.api_key = p.api_key.as_deref().map(mask);
            p.api_keys = p.api_keys.iter().map(|k| mask(k)).collect();
            for (name, value) in p.headers.iter_mut() {
                if looks_secret(name) {
                    *value = mask(value);
                }
            }
        }
        copy.auth.api_keys = copy.auth.api_keys.iter().map(|k| mask(k)).collect();
        copy.auth.admin_keys = copy.auth.admin_keys.iter().map(|k| mask(k)).collect();
        copy.database.url = mask_url_password(&copy.database.url);
        copy.redis.url = copy.redis.url.as_deref().map(mask_url_password);
        copy.governance.key_secret = copy.governance.key_secret.as_deref().map(mask);
        serde_json::to_value(copy).unwrap_or(Value::Null)
    }
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

/// Keeps a recognisable prefix and hides the rest: `sk-p…(51 chars)`.
pub fn mask(secret: &str) -> String {
    let prefix: String = secret.chars().take(4).collect();
    format!("{prefix}…({} chars)", secret.chars().count())
}

fn looks_secret(header: &str) -> bool {
    let h = header.to_ascii_lowercase();
    h.contains("key") || h.contains("auth") || h.contains("token") || h.contains("secret")
}

fn mask_url_password(url: &str) -> String {
    // scheme://user:password@host → scheme://user:***@host
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_owned()
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of the tree; `$${` escapes.
fn interpolate(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = interpolate_str(s, env).map_err(|m| invalid(path, m))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, &child, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn interpolate_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest.as_bytes()[start - 1] == b'$' {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed \"${{\" in \"{s}\""))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "\"${{{expr}}}\" is not a valid environment variable reference"
            ));
        }
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn check_retry(path: &str, r: &RetryConfig) -> Result<(), ConfigError> {
    if r.max_attempts == 0 {
        return Err(invalid(
            format!("{path}.max_attempts"),
            "must be at least 1",
        ));
    }
    if r.max_backoff < r.backoff {
        return Err(invalid(
            format!("{path}.max_backoff"),
            "must not be shorter than backoff",
        ));
    }
    Ok(())
}

/// Optional durations.
pub(crate) mod opt_duration {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

/// Durations as humane strings: `250ms`, `10s`, `5m`.
pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "\"{s}\" is not a duration ({e}); write e.g. 500ms, 10s or 2m"
                ))
            }),
            Raw::Seconds(n) if n >= 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n)),
            Raw::Seconds(n) => Err(serde::de::Error::custom(format!("{n} is not a duration"))),
        }
    }
}

/// Sizes as integers (bytes) or strings: `64KB`, `10MB`, `1GiB`.
fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(n),
        Raw::Text(s) => parse_byte_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a size; write a number of bytes or e.g. 64KB, 10MB"
            ))
        }),
    }
}

fn parse_byte_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" | "kib" => 1024,
        "mb" | "m" | "mib" => 1024 * 1024,
        "gb" | "g" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(yaml, &|name| match name {
            "OPENAI_KEY" => Some("sk-secret-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
    }

    const VALID: &str = r#"
server: { listen: "127.0.0.1:4100", max_body_size: 64KB }
providers:
  oai: { kind: openai, api_key: "${OPENAI_KEY}", timeouts: { connect: 2s, idle: 500ms } }
  demo: { kind: mock }
models:
  gpt-4o: { provider: oai, price: { input: 2.5, output: 10 } }
  echo: { provider: demo }
routes:
  smart: { targets: [gpt-4o, echo] }
"#;

    #[test]
    fn a_valid_file_loads_with_interpolation_and_units() {
        let c = load(VALID).unwrap();
        assert_eq!(c.server.max_body_size, 64 * 1024);
        assert_eq!(c.providers["oai"].keys(), ["sk-secret-value"]);
        assert_eq!(c.providers["oai"].timeouts.idle, Duration::from_millis(500));
        let targets: Vec<&str> = c.routes["smart"]
            .targets
            .iter()
            .map(|t| t.model())
            .collect();
        assert_eq!(targets, ["gpt-4o", "echo"]);
        let masked = c.masked().to_string();
        assert!(!masked.contains("sk-secret-value"), "{masked}");
    }

    #[test]
    fn errors_name_the_path() {
        let bad_target = VALID.replace("[gpt-4o, echo]", "[gpt-4o, gpt-5o]");
        let e = load(&bad_target).unwrap_err().to_string();
        assert!(
            e.starts_with("routes.smart.targets[1]: unknown model \"gpt-5o\""),
            "{e}"
        );

        let typo = VALID.replace("max_body_size", "max_bodysize");
        let e = load(&typo).unwrap_err().to_string();
        assert!(e.contains("server") && e.contains("max_bodysize"), "{e}");

        let missing_env = VALID.replace("${OPENAI_KEY}", "${NOPE}");
        let e = load(&missing_env).unwrap_err().to_string();
        assert!(
            e.starts_with("providers.oai.api_key: environment variable NOPE is not set"),
            "{e}"
        );

        let bad_duration = VALID.replace("500ms", "soon");
        let e = load(&bad_duration).unwrap_err().to_string();
        assert!(e.starts_with("providers.oai.timeouts.idle"), "{e}");

        let bad_kind = VALID.replace("kind: mock", "kind: mocky");
        let e = load(&bad_kind).unwrap_err().to_string();
        assert!(e.starts_with("providers.demo.kind"), "{e}");
    }

    #[test]
    fn weighted_targets_rules_and_fallbacks_are_checked() {
        let routed = VALID.replace(
            "smart: { targets: [gpt-4o, echo] }",
            "smart:\n    strategy: weighted\n    targets: [{ model: gpt-4o, weight: 70 }, { model: echo, weight: 30 }]\n    rules:\n      - when: { headers: { x-tier: premium }, max_prompt_tokens: 100 }\n        targets: [gpt-4o]\n    fallbacks: { context_window: [gpt-4o] }",
        );
        let c = load(&routed).unwrap();
        let r = &c.routes["smart"];
        assert_eq!((r.targets[0].weight(), r.targets[1].weight()), (70, 30));
        assert_eq!(r.rules[0].when.headers["x-tier"], "premium");

        let bad_rule = routed.replace(
            "targets: [gpt-4o]\n    fallbacks",
            "targets: [gpt-9]\n    fallbacks",
        );
        let e = load(&bad_rule).unwrap_err().to_string();
        assert!(
            e.starts_with("routes.smart.rules[0].targets[0]: unknown model \"gpt-9\""),
            "{e}"
        );

        let bad_fallback = routed.replace("context_window: [gpt-4o]", "context_window: [nope]");
        let e = load(&bad_fallback).unwrap_err().to_string();
        assert!(
            e.starts_with("routes.smart.fallbacks.context_window[0]"),
            "{e}"
        );
    }

    #[test]
    fn interpolation_defaults_and_escapes() {
        let env = |n: &str| (n == "SET").then(|| "v".to_string());
        assert_eq!(interpolate_str("a${SET}b", &env).unwrap(), "avb");
        assert_eq!(interpolate_str("${UNSET:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate_str("$${SET}", &env).unwrap(), "${SET}");
        assert!(interpolate_str("${UNSET}", &env).is_err());
    }

    #[test]
    fn a_keyless_cloud_provider_is_rejected() {
        let e = load("providers: { oai: { kind: openai } }")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("providers.oai.api_key"), "{e}");
        let e = load("providers: { oai: { kind: openai, api_key: \"${EMPTY}\" } }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is empty"), "{e}");
    }
}
