//! The configuration file: its YAML shape, `${ENV}` interpolation, and validation into a
//! [`Config`] whose cross-references (route → model → provider) are known to hold.
//!
//! Loading is three steps, so that every error names the path of the key at fault:
//! YAML → a JSON tree whose strings are interpolated (`${VAR}`, `${VAR:-default}`) → typed
//! structs (serde_path_to_error gives the path of a type error) → semantic checks (unknown
//! model, missing key, …). Turning the valid config into live parts (clients, adapters) is
//! [`crate::pipeline`]'s job, not this module's.
//!
//! The sections live beside this file: [`providers`] (providers, models, prices), [`routes`]
//! (routes, retries, breakers) and [`values`] (interpolation, durations, sizes); governance and
//! Redis are in [`crate::admit::config`], next to the stage they configure.

mod providers;
mod routes;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::admit::config::{GovernanceConfig, OverLimit, RedisConfig};
pub use crate::record::config::{
    AlertsConfig, AnomalyConfig, MetricsConfig, OtlpConfig, RecordsConfig, TelemetryConfig,
};
pub use providers::{
    Capability, Dialect, MockConfig, ModelConfig, Price, ProviderConfig, ProviderKind, Timeouts,
};
use routes::check_retry;
pub use routes::{
    BreakerConfig, Complexity, Condition, FallbacksConfig, ResilienceConfig, RetryConfig,
    RouteConfig, RuleConfig, Strategy, TargetConfig,
};
pub(crate) use values::{byte_size, duration, interpolate, opt_duration};

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

pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
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
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub responses: crate::response_store::config::ResponsesConfig,
    #[serde(default)]
    pub guardrails: crate::guard::config::GuardrailsConfig,
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
    /// On SIGTERM, how long requests in flight may take to finish before the gateway exits
    /// anyway (their records are written either way).
    #[serde(default = "default_drain", with = "duration")]
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_size: default_max_body(),
            max_upstream_event_size: default_max_event(),
            request_deadline: default_deadline(),
            drain_timeout: default_drain(),
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
fn default_drain() -> Duration {
    Duration::from_secs(30)
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

fn default_records_url() -> String {
    "sqlite://switchyard.db".into()
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
        self.telemetry.check()?;
        self.alerts.check()?;
        self.responses.check(&self.database.url)?;
        self.guardrails.check(
            self.routes
                .iter()
                .map(|(name, r)| (name.as_str(), r.guardrails.as_slice())),
        )?;
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
            p.check_kind_settings(&path)?;
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
