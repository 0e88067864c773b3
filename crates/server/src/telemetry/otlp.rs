//! OpenTelemetry trace export over OTLP/HTTP (protobuf), built from request records.
//!
//! [`OtlpSink`] owns the mapping from a [`RequestRecord`] to spans, the sampling decision and
//! the export. Each sampled record becomes one SERVER span for the request — the gateway's own
//! span of the trace it joined (`traceparent`) or started — named after the GenAI semantic
//! conventions (`chat gpt-4o`), and one CLIENT child span per upstream attempt. A batch of
//! records is one `ExportTraceServiceRequest` POST; a failed export is reported to the record
//! writer (which logs it) and never retried. The messages are `opentelemetry-proto`'s generated
//! prost types, without its tonic (gRPC) client.

use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, SpanFlags, Status};
use prost::Message;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use switchyard_core::record::config::OtlpConfig;
use switchyard_core::record::{AttemptRecord, Batch, RecordSink, RequestRecord, TraceContext};

/// The W3C `sampled` trace flag.
const SAMPLED: u32 = 1;
/// The status a request gets when its client went away: not the gateway's error.
const CLIENT_CLOSED: u16 = 499;

/// Exports one span per sampled request and one per upstream attempt to an OTLP/HTTP collector.
pub struct OtlpSink {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    sample_ratio: f64,
    service_name: String,
}

impl OtlpSink {
    /// Checks `telemetry.otlp` (endpoint URL, ratio, header names and values) and builds the
    /// HTTP client that carries its headers and timeout.
    pub fn new(config: &OtlpConfig) -> Result<OtlpSink, String> {
        let endpoint = reqwest::Url::parse(&config.endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                format!(
                    "telemetry.otlp.endpoint: {:?} is not an http(s) URL; give the collector's traces URL, e.g. http://127.0.0.1:4318/v1/traces",
                    config.endpoint
                )
            })?;
        if !(0.0..=1.0).contains(&config.sample_ratio) {
            return Err(format!(
                "telemetry.otlp.sample_ratio: {} is not between 0.0 and 1.0",
                config.sample_ratio
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("telemetry.otlp.headers: {name:?} is not a header name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                format!("telemetry.otlp.headers.{name}: the value is not a valid header value")
            })?;
            value.set_sensitive(true);
            headers.insert(key, value);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| format!("telemetry.otlp: cannot build the HTTP client: {e}"))?;
        Ok(OtlpSink {
            client,
            endpoint,
            sample_ratio: config.sample_ratio,
            service_name: config.service_name.clone(),
        })
    }

    /// The export request for the sampled records of `batch`; `None` when none is sampled.
    pub fn export_request(&self, batch: &[RequestRecord]) -> Option<ExportTraceServiceRequest> {
        let mut spans = Vec::new();
        let exported = |r: &&RequestRecord| {
            r.trace.trace_id != [0; 16] && sampled(&r.trace, self.sample_ratio)
        };
        for r in batch.iter().filter(exported) {
            let parent = request_span(r);
            spans.extend(r.attempts.iter().map(|a| attempt_span(r, &parent, a)));
            spans.push(parent);
        }
        if spans.is_empty() {
            return None;
        }
        let resource = Resource {
            attributes: vec![string("service.name", &self.service_name)],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "switchyard".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        Some(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(resource),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    async fn export(&self, request: ExportTraceServiceRequest) -> Result<(), String> {
        let response = self
            .client
            .post(self.endpoint.clone())
            .body(request.encode_to_vec())
            .send()
            .await
            .map_err(|e| format!("OTLP export to {} failed: {e}", self.endpoint))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // A collector explains a refusal in a short body (a google.rpc.Status, or text).
        let body = response.text().await.unwrap_or_default();
        let reason: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
        Err(format!(
            "OTLP export to {} refused: HTTP {status}: {reason}",
            self.endpoint
        ))
    }
}

impl RecordSink for OtlpSink {
    fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
        match self.export_request(batch) {
            Some(request) => Box::pin(self.export(request)),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    }

    fn name(&self) -> &'static str {
        "otlp"
    }
}

/// Whether a request's trace is exported: the caller's decision when its `traceparent` carried
/// one, else `ratio` applied to the trace id as OpenTelemetry's `TraceIdRatioBased` sampler
/// does (the low 63 bits of the id's last 8 bytes), so every service that samples by the same
/// ratio keeps the same traces.
pub fn sampled(trace: &TraceContext, ratio: f64) -> bool {
    if let Some(decision) = trace.parent_sampled {
        return decision;
    }
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace.trace_id[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

/// `gen_ai.operation.name` for an endpoint of the records.
fn operation(endpoint: &str) -> &str {
    match endpoint {
        "chat.completions" => "chat",
        other => other,
    }
}

/// The gateway's SERVER span for the request.
fn request_span(r: &RequestRecord) -> Span {
    let op = operation(r.endpoint);
    let mut attributes = vec![
        string("gen_ai.operation.name", op),
        string("gen_ai.request.model", &r.requested_model),
        int("http.response.status_code", i64::from(r.status)),
        string("switchyard.request_id", &r.request_id),
        int("switchyard.attempts", r.attempts.len() as i64),
    ];
    let optional = [
        ("gen_ai.provider.name", &r.provider),
        ("gen_ai.response.model", &r.upstream_model),
        ("switchyard.route", &r.route),
        ("switchyard.deployment", &r.model),
        ("switchyard.team", &r.team),
        ("switchyard.feature", &r.feature),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            attributes.push(string(key, v));
        }
    }
    if r.prompt_tokens > 0 || r.completion_tokens > 0 {
        attributes.push(int("gen_ai.usage.input_tokens", tokens(r.prompt_tokens)));
        attributes.push(int(
            "gen_ai.usage.output_tokens",
            tokens(r.completion_tokens),
        ));
    }
    if let Some(ttft) = r.ttft_ms {
        attributes.push(double("switchyard.ttft_ms", ttft));
    }
    if r.stream {
        attributes.push(boolean("switchyard.stream", true));
    }
    if r.cache_hit {
        attributes.push(boolean("switchyard.cache_hit", true));
    }
    let disconnected = r.client_disconnected || r.status == CLIENT_CLOSED;
    let status = if disconnected {
        attributes.push(boolean("switchyard.client_disconnected", true));
        None
    } else if r.status >= 400 {
        let error = r.error_code.as_deref().unwrap_or("http_error");
        attributes.push(string("error.type", error));
        Some(error_status(error))
    } else {
        None
    };
    let start = ms_to_ns(r.started_at_ms as f64);
    // The caller's span is remote; a trace the gateway started has no parent at all.
    let remote = match r.trace.parent_span_id {
        Some(_) => SpanFlags::ContextIsRemoteMask as u32,
        None => 0,
    };
    Span {
        trace_id: r.trace.trace_id.to_vec(),
        span_id: r.trace.span_id.to_vec(),
        parent_span_id: r
            .trace
            .parent_span_id
            .map(|p| p.to_vec())
            .unwrap_or_default(),
        flags: SAMPLED | SpanFlags::ContextHasIsRemoteMask as u32 | remote,
        name: format!("{op} {}", r.requested_model),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms_to_ns(r.latency_ms),
        attributes,
        status,
        ..Default::default()
    }
}

/// A CLIENT span for one upstream call, child of the request span.
fn attempt_span(r: &RequestRecord, parent: &Span, a: &AttemptRecord) -> Span {
    let op = operation(r.endpoint);
    let mut attributes = vec![
        string("gen_ai.operation.name", op),
        string("gen_ai.provider.name", &a.provider),
        string("gen_ai.request.model", &r.requested_model),
        string("switchyard.deployment", &a.model),
    ];
    if let Some(status) = a.status {
        attributes.push(int("http.response.status_code", i64::from(status)));
    }
    let status = a.error_class.map(|class| {
        attributes.push(string("error.type", class));
        error_status(class)
    });
    let start = u64::try_from(a.started_at_us).unwrap_or_default() * 1_000;
    Span {
        trace_id: parent.trace_id.clone(),
        span_id: switchyard_core::request::random_span_id().to_vec(),
        parent_span_id: parent.span_id.clone(),
        flags: SAMPLED | SpanFlags::ContextHasIsRemoteMask as u32,
        name: format!("{op} {}", a.model),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms_to_ns(a.latency_ms),
        attributes,
        status,
        ..Default::default()
    }
}

fn error_status(message: &str) -> Status {
    Status {
        message: message.to_owned(),
        code: StatusCode::Error as i32,
    }
}

/// Milliseconds (a record's unit) to nanoseconds (OTLP's); negative or NaN becomes 0.
fn ms_to_ns(ms: f64) -> u64 {
    (ms * 1_000_000.0) as u64
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

fn double(key: &str, value: f64) -> KeyValue {
    attribute(key, Value::DoubleValue(value))
}

fn boolean(key: &str, value: bool) -> KeyValue {
    attribute(key, Value::BoolValue(value))
}
