//! The `governance:` and `redis:` sections of the config, and a route's `over_limit:` policy:
//! limits that are not attached to a key (per feature, per model, global), what happens over a
//! limit, what happens when the counter store fails, and budget alerts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limits::Limits;
use crate::config::{Problems, duration};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// The server secret virtual keys are hashed under (HMAC-SHA256). Unset: one is generated
    /// and kept in the database, so that replicas sharing it agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret: Option<String>,
    /// How long a resolved virtual key is trusted before the database is asked again. Default:
    /// 2s without Redis (the longest a revocation takes to reach another replica), 5m with
    /// Redis (revocations are pushed to every replica at once).
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(
        default,
        with = "crate::config::opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_cache_ttl: Option<Duration>,
    /// Rate limits when the counter store (Redis) fails: `fail_open` admits, `fail_closed`
    /// refuses with 503.
    #[serde(default = "fail_open")]
    pub on_counter_error: FailMode,
    /// Budgets when the counter store fails.
    #[serde(default = "fail_closed")]
    pub on_budget_error: FailMode,
    /// Caps on the whole gateway.
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub global: Limits,
    /// Limits per feature: the `x-switchyard-feature` header, or a key tag `feature:NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features: BTreeMap<String, Limits>,
    /// Limits per requested model or route alias (e.g. a provider's quota).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, Limits>,
    /// What happens over a limit, for requests whose route sets no `over_limit`.
    #[serde(default)]
    pub over_limit: OverLimit,
    /// Output tokens reserved against budgets and TPM when a request sets no `max_tokens`
    /// and its model no `default_max_tokens`.
    #[serde(default = "default_assumed_output")]
    pub assumed_output_tokens: u32,
    #[serde(default)]
    pub budget_alerts: BudgetAlerts,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            key_secret: None,
            key_cache_ttl: None,
            on_counter_error: FailMode::FailOpen,
            on_budget_error: FailMode::FailClosed,
            global: Limits::default(),
            features: BTreeMap::new(),
            models: BTreeMap::new(),
            over_limit: OverLimit::default(),
            assumed_output_tokens: default_assumed_output(),
            budget_alerts: BudgetAlerts::default(),
        }
    }
}

fn default_assumed_output() -> u32 {
    1024
}
fn fail_open() -> FailMode {
    FailMode::FailOpen
}
fn fail_closed() -> FailMode {
    FailMode::FailClosed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    FailOpen,
    FailClosed,
}

/// A route's policy over a limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverLimit {
    #[serde(default)]
    pub policy: Policy,
    /// `queue`: how long a request may wait for capacity before it gets 429.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_queue_timeout", with = "duration")]
    pub queue_timeout: Duration,
    /// `downgrade`: the cheaper model or route that serves requests over the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downgrade_to: Option<String>,
}

impl Default for OverLimit {
    fn default() -> Self {
        OverLimit {
            policy: Policy::Reject,
            queue_timeout: default_queue_timeout(),
            downgrade_to: None,
        }
    }
}

fn default_queue_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// 429 with `Retry-After`.
    #[default]
    Reject,
    /// Wait for capacity up to `queue_timeout`, then 429.
    Queue,
    /// Serve from `downgrade_to`.
    Downgrade,
}

/// Alerts as a budget fills up: a log line, and a POST to `webhook` when set.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetAlerts {
    /// Fractions of a budget that trigger an alert, once per budget, threshold and period.
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

impl Default for BudgetAlerts {
    fn default() -> Self {
        BudgetAlerts {
            thresholds: default_thresholds(),
            webhook: None,
        }
    }
}

fn default_thresholds() -> Vec<f64> {
    vec![0.5, 0.8, 1.0]
}

/// Redis: shared counters and key invalidation for several replicas. Off when `url` is unset.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/db`; unset: counters are in-process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Prefix of every key and channel, so that several gateways can share one Redis.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Longest wait for one Redis call before the `on_*_error` mode applies.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_redis_timeout", with = "duration")]
    pub timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: None,
            prefix: default_prefix(),
            timeout: default_redis_timeout(),
        }
    }
}

fn default_prefix() -> String {
    "switchyard".into()
}
/// Long enough to ride out a saturated host (with 1,000 streams on two cores a healthy Redis
/// answered in ~300 ms), short enough that a dead one never stalls a request for long; a
/// refused connection fails at once anyway.
fn default_redis_timeout() -> Duration {
    Duration::from_secs(1)
}

impl GovernanceConfig {
    /// Checks limits and thresholds; `models` are the names a route or model may be called by.
    pub fn validate(&self, names: &dyn Fn(&str) -> bool, problems: &mut Problems) {
        let mut limits = |path: String, l: &Limits| {
            if let Err(message) = l.validate(&path) {
                problems.add(path, message);
            }
        };
        limits("governance.global".into(), &self.global);
        for (name, l) in &self.features {
            limits(format!("governance.features.{name}"), l);
        }
        for (name, l) in &self.models {
            limits(format!("governance.models.{name}"), l);
        }
        for name in self.models.keys().filter(|name| !names(name)) {
            problems.add(
                format!("governance.models.{name}"),
                format!("unknown model or route \"{name}\": name a model or route of the config"),
            );
        }
        for (i, t) in self.budget_alerts.thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0) {
                problems.add(
                    format!("governance.budget_alerts.thresholds[{i}]"),
                    "must be a fraction above 0 (0.8 means 80 %)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const BASE: &str =
        "providers: { p: { kind: mock } }\nmodels: { m: { provider: p }, mini: { provider: p } }\n";

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(&format!("{BASE}{extra}"), &|_| None)
    }

    #[test]
    fn governance_loads_and_errors_name_the_key() {
        let config = load(
            "routes: { smart: { targets: [m], over_limit: { policy: downgrade, downgrade_to: mini } } }\n\
             governance: { global: { rpm: 100, budgets: [{ usd: 50, period: day }] }, features: { f: { tpm: 10 } } }\n\
             redis: { url: \"redis://127.0.0.1:6379\" }\n",
        )
        .unwrap();
        assert_eq!(config.governance.global.rpm, Some(100));
        assert_eq!(config.redis.prefix, "switchyard");
        let err = |yaml: &str| load(yaml).unwrap_err().to_string();
        assert!(
            err("routes: { smart: { targets: [m], over_limit: { policy: downgrade } } }\n")
                .starts_with("routes.smart.over_limit.downgrade_to:")
        );
        assert!(
            err("governance: { over_limit: { policy: downgrade, downgrade_to: gpt-9 } }\n")
                .contains("unknown model or route \"gpt-9\"")
        );
        assert!(
            err("governance: { models: { nope: { rpm: 1 } } }\n")
                .starts_with("governance.models.nope:")
        );
        assert!(
            err("governance: { global: { budgets: [{ usd: -1 }] } }\n").contains("budgets[0].usd")
        );
        assert!(err("governance: { global: { rps: 1 } }\n").contains("rps"));
        assert!(err("redis: { url: \"http://x\" }\n").starts_with("redis.url:"));
    }
}
