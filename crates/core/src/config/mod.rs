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
//! (routes, retries, breakers), [`values`] (interpolation, durations, sizes), [`check`] (the
//! semantic checks) and [`problems`] (errors, gathered so all are reported at once); governance and
//! Redis are in [`crate::admit::config`], next to the stage they configure.

mod check;
mod problems;
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
pub use problems::{ConfigError, Problems, invalid};
pub use providers::{
    Capability, Dialect, MockConfig, ModelConfig, Price, ProviderConfig, ProviderKind, Timeouts,
};
pub use routes::{
    BreakerConfig, Complexity, Condition, FallbacksConfig, ResilienceConfig, RetryConfig,
    RouteConfig, RuleConfig, Strategy, TargetConfig,
};
pub(crate) use values::{byte_size, byte_size_schema, duration, duration_schema, opt_duration};
use values::{in_config_words, interpolate};

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
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
    #[serde(default)]
    pub cache: crate::cache::config::CacheConfig,
    /// The web console at `/ui`.
    #[serde(default)]
    pub console: ConsoleConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted; larger bodies get 413.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_body", deserialize_with = "byte_size")]
    pub max_body_size: u64,
    /// Largest server-sent event accepted from an upstream stream.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_event", deserialize_with = "byte_size")]
    pub max_upstream_event_size: u64,
    /// Largest non-streamed upstream answer to a chat, Messages or Responses call; a larger
    /// one is refused with 502 without being read to its end.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_upstream_body", deserialize_with = "byte_size")]
    pub max_upstream_body_size: u64,
    /// Largest upstream answer to an embeddings call (big batches are legitimately large).
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(
        default = "default_max_upstream_embeddings_body",
        deserialize_with = "byte_size"
    )]
    pub max_upstream_embeddings_body_size: u64,
    /// Longest time a request may take from arrival to its last byte, all attempts included.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_deadline", with = "duration")]
    pub request_deadline: Duration,
    /// On SIGTERM, how long requests in flight may take to finish before the gateway exits
    /// anyway (their records are written either way).
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_drain", with = "duration")]
    pub drain_timeout: Duration,
    /// A client must send a request's whole head (request line and headers) within this time
    /// of starting it, or of its connection opening, or the connection is closed.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_header_read_timeout", with = "duration")]
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this time of its head, or it gets 408 and the
    /// connection is closed.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_body_read_timeout", with = "duration")]
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers) accepted; larger gets 431. At least 8KB.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_max_header_size", deserialize_with = "byte_size")]
    pub max_header_size: u64,
    /// Open client connections at most; past it, new connections are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Requests in flight at most (health and metrics aside); past it, 503 with Retry-After.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Concurrent requests (streams) on one HTTP/2 connection at most.
    #[serde(default = "default_http2_max_concurrent_streams")]
    pub http2_max_concurrent_streams: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_size: default_max_body(),
            max_upstream_event_size: default_max_event(),
            max_upstream_body_size: default_max_upstream_body(),
            max_upstream_embeddings_body_size: default_max_upstream_embeddings_body(),
            request_deadline: default_deadline(),
            drain_timeout: default_drain(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_header_size: default_max_header_size(),
            max_connections: default_max_connections(),
            max_in_flight: default_max_in_flight(),
            http2_max_concurrent_streams: default_http2_max_concurrent_streams(),
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
fn default_max_upstream_body() -> u64 {
    32 * 1024 * 1024
}
fn default_max_upstream_embeddings_body() -> u64 {
    256 * 1024 * 1024
}
fn default_drain() -> Duration {
    Duration::from_secs(30)
}
fn default_deadline() -> Duration {
    Duration::from_secs(600)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_header_size() -> u64 {
    64 * 1024
}
fn default_max_connections() -> u32 {
    10_000
}
fn default_max_in_flight() -> u32 {
    4096
}
fn default_http2_max_concurrent_streams() -> u32 {
    256
}

/// Below this, hyper cannot hold a request head (and panics when asked to).
const MIN_HEADER_SIZE: u64 = 8 * 1024;

impl ServerConfig {
    /// The connection and overload limits must leave the gateway able to serve.
    fn check(&self, problems: &mut Problems) {
        if self.max_body_size == 0 {
            problems.add("server.max_body_size", "must be greater than 0");
        }
        if self.max_header_size < MIN_HEADER_SIZE {
            problems.add("server.max_header_size", "must be at least 8KB");
        }
        for (key, value) in [
            ("max_connections", self.max_connections),
            ("max_in_flight", self.max_in_flight),
            (
                "http2_max_concurrent_streams",
                self.http2_max_concurrent_streams,
            ),
        ] {
            if value == 0 {
                problems.add(format!("server.{key}"), "must be at least 1");
            }
        }
        for (key, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                problems.add(format!("server.{key}"), "must be greater than 0");
            }
        }
    }
}

/// Who may call the gateway: static keys from this file, virtual keys issued through the admin
/// API, and (when allowed) callers with no key at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Static bearer tokens accepted on every endpoint.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Bearer tokens for `/admin/*`. Key management needs one; `/admin/health` also accepts the
    /// `api_keys` when none is set.
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Bearer tokens for read-only access to `/admin/*` and the console: every `GET` works,
    /// every change is refused (403 `read_only`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub viewer_keys: Vec<String>,
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

/// The web console served at `/ui` (see docs/console.md).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console's pages at `/ui` and its sign-in at `/ui/api/session`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long a console sign-in lasts before the user must sign in again.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_session_ttl", with = "duration")]
    pub session_ttl: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            session_ttl: default_session_ttl(),
        }
    }
}

impl Config {
    /// A console session must last; a key cannot be both an admin's and a viewer's.
    fn check_console(&self, problems: &mut Problems) {
        if self.console.session_ttl.is_zero() {
            problems.add("console.session_ttl", "must be greater than 0");
        }
        for (i, key) in self.auth.viewer_keys.iter().enumerate() {
            if key.is_empty() {
                problems.add(format!("auth.viewer_keys[{i}]"), "must not be empty");
            } else if self.auth.admin_keys.contains(key) {
                problems.add(
                    format!("auth.viewer_keys[{i}]"),
                    "is also in auth.admin_keys: a key is either an admin's or a read-only viewer's",
                );
            }
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}

/// The database of keys, users, teams, the audit log and request records.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
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
        if !tree.is_object() {
            return Err(invalid(
                "(top level)",
                "the file must be a map of sections (server:, providers:, models:, routes:, …)",
            ));
        }
        // A reference to an unset variable stays as written, so that the rest of the file is
        // still read and checked: all its problems are reported together.
        let mut problems = Problems::default();
        interpolate(&mut tree, "", env, &mut problems);
        let config: Config = match serde_path_to_error::deserialize(tree) {
            Ok(config) => config,
            Err(e) => {
                let path = e.path().to_string();
                let path = if path == "." {
                    "(top level)".into()
                } else {
                    path
                };
                problems.check_new(Err(invalid(
                    path,
                    in_config_words(&e.into_inner().to_string()),
                )));
                return Err(problems.into_error());
            }
        };
        problems.check_new(config.validate());
        problems.finish()?;
        Ok(config)
    }

    /// The JSON Schema of the file, for editors and CI (`switchyard config-schema`): unknown
    /// keys are refused, as the loader refuses them.
    pub fn json_schema() -> Value {
        let mut schema = schemars::generate::SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<Config>()
            .to_value();
        if let Value::Object(root) = &mut schema {
            root.insert("title".into(), "Switchyard configuration".into());
        }
        schema
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
        copy.auth.viewer_keys = copy.auth.viewer_keys.iter().map(|k| mask(k)).collect();
        copy.database.url = mask_url_password(&copy.database.url);
        copy.redis.url = copy.redis.url.as_deref().map(mask_url_password);
        copy.governance.key_secret = copy.governance.key_secret.as_deref().map(mask);
        serde_json::to_value(copy).unwrap_or(Value::Null)
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
    fn the_console_section_and_viewer_keys_load_and_are_checked() {
        let c = load(VALID).unwrap();
        assert!(c.console.enabled);
        assert_eq!(c.console.session_ttl, Duration::from_secs(8 * 3600));
        let with = format!(
            "{VALID}auth: {{ admin_keys: [a1], viewer_keys: [v1] }}\nconsole: {{ session_ttl: 30m }}\n"
        );
        let c = load(&with).unwrap();
        assert_eq!(c.console.session_ttl, Duration::from_secs(1800));
        assert_eq!(c.auth.viewer_keys, ["v1"]);
        assert!(!c.masked().to_string().contains("\"v1\""));
        let shared = with.replace("viewer_keys: [v1]", "viewer_keys: [a1]");
        let e = load(&shared).unwrap_err().to_string();
        assert!(e.contains("auth.viewer_keys[0]"), "{e}");
        let zero = with.replace("session_ttl: 30m", "session_ttl: 0s");
        let e = load(&zero).unwrap_err().to_string();
        assert!(e.contains("console.session_ttl"), "{e}");
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

    #[test]
    fn connection_limits_have_defaults_and_are_checked() {
        let c = load("").unwrap();
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.server.max_header_size, 64 * 1024);
        assert_eq!(c.server.max_in_flight, 4096);
        let c = load("server: { max_connections: 20, body_read_timeout: 1s }").unwrap();
        assert_eq!(c.server.max_connections, 20);
        assert_eq!(c.server.body_read_timeout, Duration::from_secs(1));
        let e = load("server: { max_in_flight: 0 }")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.max_in_flight"), "{e}");
        let e = load("server: { max_header_size: 1KB }")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.max_header_size"), "{e}");
    }
}
