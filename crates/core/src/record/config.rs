//! The configuration of the record stage and of what is derived from records: how records are
//! written and kept (`records`), the Prometheus endpoint and OpenTelemetry export
//! (`telemetry`), and the spend anomaly alert (`alerts`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problems, byte_size, duration};

/// How request records are written and kept.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordsConfig {
    /// Write records to the database (`database.url`).
    #[serde(default = "default_true")]
    pub store: bool,
    /// Records waiting to be written; past this, records are dropped (counted, logged and
    /// exported as `switchyard_records_dropped_total`).
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Write every record as a structured log line too.
    #[serde(default)]
    pub log: bool,
    /// Write every record as one JSON line on stdout, for log shippers.
    #[serde(default)]
    pub stdout: bool,
    /// Delete records older than this many days (checked hourly); 0 keeps them forever.
    #[serde(default)]
    pub retention_days: u32,
    /// Largest request or response body kept on routes with `record_bodies: true`; longer
    /// bodies are cut at this size.
    #[schemars(schema_with = "crate::config::byte_size_schema")]
    #[serde(default = "default_body_cap", deserialize_with = "byte_size")]
    pub max_body_size: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            store: true,
            buffer: default_buffer(),
            log: false,
            stdout: false,
            retention_days: 0,
            max_body_size: default_body_cap(),
        }
    }
}

/// Metrics and traces.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// OpenTelemetry trace export; off unless an endpoint is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpConfig>,
}

impl TelemetryConfig {
    pub(crate) fn check(&self, problems: &mut Problems) {
        let Some(otlp) = &self.otlp else {
            return;
        };
        let url = otlp.endpoint.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            problems.add(
                "telemetry.otlp.endpoint",
                format!(
                    "\"{url}\" is not an http:// or https:// URL (e.g. http://127.0.0.1:4318/v1/traces)"
                ),
            );
        }
        if !(0.0..=1.0).contains(&otlp.sample_ratio) {
            problems.add("telemetry.otlp.sample_ratio", "must be between 0.0 and 1.0");
        }
    }
}

impl AlertsConfig {
    pub(crate) fn check(&self, problems: &mut Problems) {
        let Some(a) = &self.spend_anomaly else {
            return;
        };
        if !(a.factor.is_finite() && a.factor > 1.0) {
            problems.add(
                "alerts.spend_anomaly.factor",
                "must be a number above 1 (how many times the usual hourly spend is a runaway)",
            );
        }
        if a.baseline_days == 0 {
            problems.add("alerts.spend_anomaly.baseline_days", "must be at least 1");
        }
        if a.webhook
            .as_deref()
            .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            problems.add(
                "alerts.spend_anomaly.webhook",
                "must be an http:// or https:// URL",
            );
        }
    }
}

/// `GET /metrics` in the Prometheus text format.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Require an admin key (or an `api_keys` key) to scrape `/metrics`.
    #[serde(default)]
    pub require_key: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            require_key: false,
        }
    }
}

/// OTLP export of one span per request and one per upstream attempt.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (OTLP/HTTP protobuf).
    pub endpoint: String,
    /// Extra headers sent with every export (an API key of a tracing backend).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Share of new traces exported (0.0–1.0). A caller's `traceparent` decides for its own
    /// trace: sampled there, sampled here.
    #[serde(default = "default_ratio")]
    pub sample_ratio: f64,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service")]
    pub service_name: String,
    /// How long one export may take before it is abandoned (and counted as failed).
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_export_timeout", with = "duration")]
    pub timeout: Duration,
}

/// The spend anomaly alert: a key, team or feature whose spend over the last hour is more than
/// `factor` × its average hourly spend over the previous `baseline_days`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    #[serde(default = "default_factor")]
    pub factor: f64,
    /// Spend in the last hour below this never alerts (a new key's first dollar is not a
    /// runaway loop).
    #[serde(default = "default_min_spend")]
    pub min_spend_usd: f64,
    #[serde(default = "default_baseline_days")]
    pub baseline_days: u32,
    /// How often the check runs.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_check_every", with = "duration")]
    pub check_every: Duration,
    /// Where the alert is POSTed (JSON), besides the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// Alerts raised from the records.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_anomaly: Option<AnomalyConfig>,
}

fn default_true() -> bool {
    true
}
fn default_buffer() -> usize {
    10_000
}
fn default_body_cap() -> u64 {
    16 * 1024
}
fn default_ratio() -> f64 {
    1.0
}
fn default_service() -> String {
    "switchyard".into()
}
fn default_export_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_factor() -> f64 {
    5.0
}
fn default_min_spend() -> f64 {
    1.0
}
fn default_baseline_days() -> u32 {
    7
}
fn default_check_every() -> Duration {
    Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(yaml: &str) -> Result<Config, String> {
        Config::from_yaml(yaml, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_telemetry_and_alert_settings_name_their_key() {
        let e = load("telemetry: {otlp: {endpoint: \"collector:4318\"}}").unwrap_err();
        assert!(e.contains("telemetry.otlp.endpoint"), "{e}");
        let e = load("telemetry: {otlp: {endpoint: \"http://c/v1/traces\", sample_ratio: 2}}")
            .unwrap_err();
        assert!(e.contains("telemetry.otlp.sample_ratio"), "{e}");
        let e = load("alerts: {spend_anomaly: {factor: 0.5}}").unwrap_err();
        assert!(e.contains("alerts.spend_anomaly.factor"), "{e}");
        let c = load("alerts: {spend_anomaly: {}}\nrecords: {retention_days: 30}").unwrap();
        assert_eq!(c.alerts.spend_anomaly.unwrap().factor, 5.0);
        assert_eq!(c.records.retention_days, 30);
    }
}
