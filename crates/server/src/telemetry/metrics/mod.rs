//! Prometheus metrics for `GET /metrics`, derived from request records.
//!
//! [`MetricsSink`] is a [`RecordSink`]: the record writer hands it every finished request in
//! batches, off the hot path, so serving a request costs nothing here and the counters agree
//! with the stored records by construction. What a record cannot tell — the record buffer,
//! breakers, calls in flight, governance counters — is read from the gateway at scrape time
//! ([`Live`]).
//!
//! Labels only take values from bounded sets: the endpoint, the configured route, provider and
//! deployment that served (`none` when there was none), a status class, error classes and
//! admission reasons. Never a request id, a key, a user, or the model name the client sent
//! (`requested_model`), which anyone can make up.
//!
//! The exposition is OpenMetrics text (`prometheus-client`), which Prometheus scrapes natively.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use switchyard_core::auth::StaticKeys;
use switchyard_core::record::{Batch, RecordSink, RequestRecord};
use switchyard_core::{Endpoint, Gateway, GatewayError, RequestContext};

use crate::egress;
use crate::ingress::Shared;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whole-request latency, seconds: from a cache hit to a long generation.
const DURATION_BUCKETS: [f64; 15] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0,
];
/// Time to the first streamed token, seconds.
const TTFT_BUCKETS: [f64; 14] = [
    0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 20.0, 60.0,
];

/// Admission outcomes that refused the request (`downgraded` served it, elsewhere).
const REJECTIONS: [&str; 4] = [
    "rate_limited",
    "budget_exceeded",
    "too_large",
    "limits_unavailable",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    route: String,
    provider: String,
    model: String,
    status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    direction: &'static str,
    provider: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    provider: String,
    model: String,
    error_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardrailLabels {
    guardrail: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentName {
    deployment: String,
}

type FloatCounter = Counter<f64, AtomicU64>;
type Histograms = Family<DeploymentLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn ttft_histogram() -> Histogram {
    Histogram::new(TTFT_BUCKETS)
}

/// The metrics derived from request records, and the sink that updates them.
pub struct MetricsSink {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histograms,
    ttft: Histograms,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<DeploymentLabels, FloatCounter>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    retries: Family<DeploymentLabels, Counter>,
    fallbacks: Family<RouteLabels, Counter>,
    cache_hits: Family<RouteLabels, Counter>,
    cache_saved: Family<RouteLabels, FloatCounter>,
    guardrail_actions: Family<GuardrailLabels, Counter>,
    rejections: Family<ReasonLabels, Counter>,
    downgrades: Family<RouteLabels, Counter>,
}

impl Default for MetricsSink {
    fn default() -> Self {
        MetricsSink::new()
    }
}

impl MetricsSink {
    pub fn new() -> MetricsSink {
        let m = MetricsSink {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            ttft: Family::new_with_constructor(ttft_histogram),
            tokens: Family::default(),
            cost: Family::default(),
            upstream_errors: Family::default(),
            retries: Family::default(),
            fallbacks: Family::default(),
            cache_hits: Family::default(),
            cache_saved: Family::default(),
            guardrail_actions: Family::default(),
            rejections: Family::default(),
            downgrades: Family::default(),
        };
        let mut registry = Registry::with_prefix("switchyard");
        registry.register(
            "requests",
            "Requests answered, by endpoint, route, serving deployment and status class.",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Whole-request latency, by serving deployment.",
            Unit::Seconds,
            m.duration.clone(),
        );
        registry.register_with_unit(
            "time_to_first_token",
            "Time to the first streamed content, by serving deployment (streams only).",
            Unit::Seconds,
            m.ttft.clone(),
        );
        registry.register(
            "tokens",
            "Tokens billed, by direction (input, output) and serving deployment.",
            m.tokens.clone(),
        );
        registry.register(
            "cost_usd",
            "Cost in US dollars, by serving deployment.",
            m.cost.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed upstream attempts, by deployment and error class.",
            m.upstream_errors.clone(),
        );
        registry.register(
            "retries",
            "Attempts that repeated the previous attempt's deployment, by deployment.",
            m.retries.clone(),
        );
        registry.register(
            "fallbacks",
            "Attempts that moved on to another deployment than the previous attempt, by route.",
            m.fallbacks.clone(),
        );
        registry.register(
            "cache_hits",
            "Requests answered from the response cache, by route.",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_saved_usd",
            "What cache hits would have cost upstream, in US dollars, by route.",
            m.cache_saved.clone(),
        );
        registry.register(
            "guardrail_actions",
            "Guardrail verdicts other than allow, by guardrail and action.",
            m.guardrail_actions.clone(),
        );
        registry.register(
            "admission_rejections",
            "Requests refused by admission, by reason.",
            m.rejections.clone(),
        );
        registry.register(
            "admission_downgrades",
            "Requests a limit sent to the route's cheaper model, by route.",
            m.downgrades.clone(),
        );
        MetricsSink { registry, ..m }
    }

    /// Counts one finished request.
    pub fn observe(&self, r: &RequestRecord) {
        let route = label(r.route.as_deref());
        let provider = label(r.provider.as_deref());
        let model = label(r.model.as_deref());
        let deployment = DeploymentLabels {
            provider: provider.clone(),
            model: model.clone(),
        };

        self.requests
            .get_or_create(&RequestLabels {
                endpoint: r.endpoint,
                route: route.clone(),
                provider: provider.clone(),
                model: model.clone(),
                status_class: status_class(r.status),
            })
            .inc();
        self.duration
            .get_or_create(&deployment)
            .observe(r.latency_ms / 1000.0);
        if let Some(ttft) = r.ttft_ms {
            self.ttft.get_or_create(&deployment).observe(ttft / 1000.0);
        }
        for (direction, n) in [("input", r.prompt_tokens), ("output", r.completion_tokens)] {
            if n > 0 {
                self.tokens
                    .get_or_create(&TokenLabels {
                        direction,
                        provider: provider.clone(),
                        model: model.clone(),
                    })
                    .inc_by(n);
            }
        }
        if r.cost_usd > 0.0 && r.cost_usd.is_finite() {
            self.cost.get_or_create(&deployment).inc_by(r.cost_usd);
        }

        self.observe_attempts(r, &route);
        self.observe_policies(r, route);
    }

    /// Failed attempts by class, retries (the same deployment again) and fallbacks (another).
    fn observe_attempts(&self, r: &RequestRecord, route: &str) {
        let mut previous: Option<&str> = None;
        for a in &r.attempts {
            if let Some(class) = a.error_class {
                self.upstream_errors
                    .get_or_create(&UpstreamErrorLabels {
                        provider: label(Some(&a.provider)),
                        model: label(Some(&a.model)),
                        error_class: class,
                    })
                    .inc();
            }
            match previous {
                Some(p) if p == a.model => {
                    self.retries
                        .get_or_create(&DeploymentLabels {
                            provider: label(Some(&a.provider)),
                            model: label(Some(&a.model)),
                        })
                        .inc();
                }
                Some(_) => {
                    self.fallbacks
                        .get_or_create(&RouteLabels {
                            route: route.to_owned(),
                        })
                        .inc();
                }
                None => {}
            }
            previous = Some(&a.model);
        }
    }

    /// What the cache, the guardrails and admission did.
    fn observe_policies(&self, r: &RequestRecord, route: String) {
        if r.cache_hit {
            let by_route = RouteLabels {
                route: route.clone(),
            };
            self.cache_hits.get_or_create(&by_route).inc();
            if r.cache_saved_usd > 0.0 && r.cache_saved_usd.is_finite() {
                self.cache_saved
                    .get_or_create(&by_route)
                    .inc_by(r.cache_saved_usd);
            }
        }
        for action in &r.guardrail_actions {
            // `guardrail:action[:detail]`: the detail (what was redacted) never becomes a label.
            let mut parts = action.splitn(3, ':');
            let guardrail = parts.next().unwrap_or_default();
            let action = parts.next().unwrap_or_default();
            self.guardrail_actions
                .get_or_create(&GuardrailLabels {
                    guardrail: label(Some(guardrail)),
                    action: label(Some(action)),
                })
                .inc();
        }
        match r.admission {
            Some("downgraded") => {
                self.downgrades.get_or_create(&RouteLabels { route }).inc();
            }
            Some(reason) => {
                if let Some(&reason) = REJECTIONS.iter().find(|&&known| known == reason) {
                    self.rejections
                        .get_or_create(&ReasonLabels { reason })
                        .inc();
                }
            }
            None => {}
        }
    }

    /// The exposition: the record-derived metrics, then what `live` read from the gateway.
    pub fn render(&self, live: &Live) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &live.registry());
        let _ = encode_eof(&mut out);
        out
    }
}

impl RecordSink for MetricsSink {
    fn write<'a>(&'a self, batch: &'a Batch) -> BoxFuture<'a, Result<(), String>> {
        for r in batch.iter() {
            self.observe(r);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "metrics"
    }
}

/// A label value from a configured name; absent or empty is `none`.
fn label(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => "none".to_owned(),
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        499 => "client_closed",
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=498 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// One deployment's state at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentLive {
    pub name: String,
    /// 1 open, 0.5 half-open, 0 closed.
    pub breaker: f64,
    pub times_opened: u64,
    pub in_flight: u64,
}

/// What is read from the gateway at scrape time rather than derived from records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    pub records_buffered: u64,
    pub records_dropped: u64,
    pub records_lost: u64,
    pub records_written: u64,
    pub record_write_errors: u64,
    pub deployments: Vec<DeploymentLive>,
    /// `(name, help, value)` of governance counters, named without the prefix and `_total`.
    pub governance: Vec<(&'static str, &'static str, u64)>,
    /// Requests in flight against `server.max_in_flight`.
    pub requests_in_flight: u64,
    /// Requests answered 503 at once because `server.max_in_flight` were in flight.
    pub shed_requests: u64,
    /// Connections closed at once because `server.max_connections` were open.
    pub refused_connections: u64,
}

/// The counters of `Gateway::governance_health()` exported as metrics: `(key, name, help)`.
const GOVERNANCE: [(&str, &str, &str); 9] = [
    (
        "counter_errors",
        "governance_counter_errors",
        "Failed calls to the rate-limit and budget counters.",
    ),
    (
        "admitted_failing_open",
        "governance_admitted_failing_open",
        "Requests admitted without checking limits because the counters failed (fail open).",
    ),
    (
        "refused_failing_closed",
        "governance_refused_failing_closed",
        "Requests refused because the counters failed (fail closed).",
    ),
    (
        "rejected",
        "governance_rejected",
        "Requests refused by a limit or budget.",
    ),
    (
        "queued",
        "governance_queued",
        "Requests that waited in a queue for capacity.",
    ),
    (
        "downgraded",
        "governance_downgraded",
        "Requests sent to a cheaper model by a limit.",
    ),
    (
        "budget_alerts",
        "governance_budget_alerts",
        "Budget alerts fired.",
    ),
    (
        "key_lookups",
        "governance_key_lookups",
        "Virtual keys looked up in the key store.",
    ),
    (
        "key_store_errors",
        "governance_key_store_errors",
        "Failed lookups in the key store.",
    ),
];

impl Live {
    /// Reads the recorder, the deployments' health and the governance counters.
    pub fn of(gateway: &Gateway) -> Live {
        let recorder = gateway.recorder();
        let stats = recorder.stats();
        let health = gateway.health_report();
        let mut deployments: Vec<DeploymentLive> = health["deployments"]
            .as_object()
            .map(|all| {
                all.iter()
                    .map(|(name, d)| DeploymentLive {
                        name: name.clone(),
                        breaker: match d["breaker"].as_str() {
                            Some("open") => 1.0,
                            Some("half_open") => 0.5,
                            _ => 0.0,
                        },
                        times_opened: d["times_opened"].as_u64().unwrap_or(0),
                        in_flight: d["in_flight"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        deployments.sort_by(|a, b| a.name.cmp(&b.name));
        let governance = gateway.governance_health();
        Live {
            records_buffered: recorder.buffered() as u64,
            records_dropped: stats.dropped.load(Ordering::Relaxed),
            records_lost: stats.lost.load(Ordering::Relaxed),
            records_written: stats.written.load(Ordering::Relaxed),
            record_write_errors: stats.write_errors.load(Ordering::Relaxed),
            deployments,
            governance: GOVERNANCE
                .iter()
                .map(|&(key, name, help)| (name, help, governance[key].as_u64().unwrap_or(0)))
                .collect(),
            ..Live::default()
        }
    }

    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("switchyard");
        r.register(
            "records_buffered",
            "Request records waiting to be written.",
            ConstGauge::new(self.records_buffered as i64),
        );
        r.register(
            "records_dropped",
            "Request records dropped because the buffer was full (records.buffer) or the writer had stopped.",
            ConstCounter::new(self.records_dropped),
        );
        r.register(
            "records_lost",
            "Request records a durable sink never took (it kept failing through shutdown).",
            ConstCounter::new(self.records_lost),
        );
        r.register(
            "records_written",
            "Request records handed to the sinks.",
            ConstCounter::new(self.records_written),
        );
        r.register(
            "record_write_errors",
            "Failed writes of record batches to any sink (each retry counts).",
            ConstCounter::new(self.record_write_errors),
        );
        let breaker = Family::<DeploymentName, Gauge<f64, AtomicU64>>::default();
        let opened = Family::<DeploymentName, Counter>::default();
        let in_flight = Family::<DeploymentName, Gauge>::default();
        for d in &self.deployments {
            let name = DeploymentName {
                deployment: d.name.clone(),
            };
            breaker.get_or_create(&name).set(d.breaker);
            opened.get_or_create(&name).inc_by(d.times_opened);
            in_flight
                .get_or_create(&name)
                .set(i64::try_from(d.in_flight).unwrap_or(i64::MAX));
        }
        r.register(
            "breaker_open",
            "Circuit breaker of each deployment: 1 open, 0.5 half-open, 0 closed.",
            breaker,
        );
        r.register(
            "breaker_opened",
            "Times each deployment's circuit breaker opened.",
            opened,
        );
        r.register(
            "upstream_in_flight",
            "Upstream calls in flight, by deployment.",
            in_flight,
        );
        for &(name, help, value) in &self.governance {
            r.register(name, help, ConstCounter::new(value));
        }
        self.register_overload(&mut r);
        r
    }

    fn register_overload(&self, r: &mut Registry) {
        r.register(
            "requests_in_flight",
            "Requests in flight, against server.max_in_flight (health and metrics aside).",
            ConstGauge::new(i64::try_from(self.requests_in_flight).unwrap_or(i64::MAX)),
        );
        r.register(
            "shed_requests",
            "Requests answered 503 at once because server.max_in_flight requests were in flight.",
            ConstCounter::new(self.shed_requests),
        );
        r.register(
            "refused_connections",
            "Connections closed at once because server.max_connections connections were open.",
            ConstCounter::new(self.refused_connections),
        );
    }
}

/// `GET /metrics`: 404 when `telemetry.metrics.enabled` is false; behind an admin key or an
/// `auth.api_keys` key when `telemetry.metrics.require_key` is set.
pub async fn scrape(State(app): Shared, headers: HeaderMap) -> Response {
    let ctx = RequestContext::new(Endpoint::Admin, headers);
    let Some(metrics) = app.metrics.as_ref() else {
        let e = GatewayError::new(
            404,
            "invalid_request_error",
            "unknown_endpoint",
            "GET /metrics is disabled (telemetry.metrics.enabled: false)",
        );
        return egress::error(&ctx.id, &e);
    };
    if app.gateway.runtime().config.telemetry.metrics.require_key
        && let Err(e) = authorize(&app.gateway, ctx.credential.as_deref())
    {
        return egress::error(&ctx.id, &e);
    }
    let live = Live {
        requests_in_flight: app.overload.in_flight(),
        shed_requests: app.overload.shed_total(),
        refused_connections: app.overload.refused_connections(),
        ..Live::of(&app.gateway)
    };
    let body = metrics.render(&live);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// An admin key, or one of `auth.api_keys` (never a virtual key).
fn authorize(gateway: &Gateway, credential: Option<&str>) -> Result<(), GatewayError> {
    let admin = match gateway.authorize_admin(credential) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let Some(presented) = credential.filter(|c| !c.is_empty()) else {
        return Err(admin);
    };
    let api_keys = gateway.runtime().config.auth.api_keys.clone();
    match StaticKeys::new(api_keys).find(presented) {
        Some(_) => Ok(()),
        None => Err(GatewayError::new(
            401,
            "authentication_error",
            "invalid_api_key",
            "invalid key: GET /metrics (telemetry.metrics.require_key) accepts the keys in auth.admin_keys or auth.api_keys, never a virtual key",
        )),
    }
}

#[cfg(test)]
mod tests;
