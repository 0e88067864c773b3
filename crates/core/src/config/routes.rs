//! The `routes:` and `resilience:` sections: route aliases with their strategy, targets, rules
//! and fallbacks, and the retry and circuit-breaker settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{OverLimit, Problems};
use super::{duration, opt_duration};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Keep the request and response bodies in this route's records (after the guardrails'
    /// redaction, cut at `records.max_body_size`). Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_bodies: bool,
    /// Parameters a target's provider cannot honour are dropped instead of refused with a 400.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_unsupported_params: bool,
    /// Guardrails (from `guardrails.define`) this route adds to `guardrails.apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<String>,
    /// Turns the cache on or off for this route, adds the semantic cache, sets the TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<crate::cache::config::RouteCacheConfig>,
}

/// A route target: a model name, or a model with a weight for the `weighted` strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
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

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub when: Condition,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub strategy: Option<Strategy>,
}

/// Every condition given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    Simple,
    Hard,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Upstream calls per request, all targets together.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Retries of one target on overload, 5xx or timeout before moving to the next.
    #[serde(default = "default_retries_per_target")]
    pub retries_per_target: u32,
    /// First backoff; doubles on each retry, with full jitter.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_backoff", with = "duration")]
    pub backoff: Duration,
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_max_backoff", with = "duration")]
    pub max_backoff: Duration,
    /// A Retry-After longer than this moves on to the next key or target instead of waiting.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_max_retry_wait", with = "duration")]
    pub max_retry_wait: Duration,
    /// Longest one upstream call may take to produce its response (or, for a stream, its first
    /// chunk) before the next target is tried.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt_timeout: Option<Duration>,
    /// For streams: longest wait for the first chunk before the next target is tried
    /// (latency-threshold fallback).
    #[schemars(schema_with = "crate::config::duration_schema")]
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
#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
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
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_window", with = "duration")]
    pub window: Duration,
    /// Opens when the p95 latency over the window exceeds this.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub p95_latency: Option<Duration>,
    /// How long it stays open before one probe request is let through.
    #[schemars(schema_with = "crate::config::duration_schema")]
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

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResilienceConfig {
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub breaker: BreakerConfig,
}

pub(super) fn check_retry(path: &str, r: &RetryConfig, problems: &mut Problems) {
    if r.max_attempts == 0 {
        problems.add(format!("{path}.max_attempts"), "must be at least 1, e.g. 4");
    }
    if r.max_backoff < r.backoff {
        problems.add(
            format!("{path}.max_backoff"),
            "must not be shorter than backoff",
        );
    }
}
