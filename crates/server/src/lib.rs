//! The HTTP face of Switchyard: the axum router (ingress and egress per dialect, health and
//! model list), start-up from a config file, and graceful shutdown that drains request records.
//!
//! The binary (`main.rs`) is only the command line; everything it runs lives here so that tests
//! can start a gateway in-process too.

pub mod admin;
pub mod cli;
pub mod connections;
pub mod console;
pub mod egress;
pub mod embedder;
pub mod feedback;
pub mod governance;
pub mod ingress;
pub mod messages;
pub mod overload;
pub mod reload;
pub mod responses;
pub mod upkeep;
pub mod telemetry;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use switchyard_core::record::{JsonLinesSink, LogSink, RecordSink, Recorder, RecorderTask};
use switchyard_core::{Config, Gateway, GatewayError};

use crate::ingress::{AppState, Shared};

/// The routes of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(ingress::chat_completions))
        .route("/chat/completions", post(ingress::chat_completions))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/responses", post(responses::create))
        .route("/v1/responses/{id}", get(responses::retrieve))
        .route("/v1/embeddings", post(ingress::embeddings))
        .route("/embeddings", post(ingress::embeddings))
        .route("/v1/feedback", post(feedback::post))
        .route("/feedback", post(feedback::post))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(telemetry::metrics::scrape))
        .merge(
            admin::routes()
                .route("/admin/health", get(admin_health))
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    admin::guard,
                )),
        )
        .merge(console::routes())
        .fallback(unknown_endpoint)
        .with_state(state)
}

/// The model list is behind the same keys as the API: it tells who may call what.
async fn models(State(app): Shared, headers: axum::http::HeaderMap) -> Response {
    let ctx = switchyard_core::RequestContext::new(switchyard_core::Endpoint::Models, headers);
    match app.gateway.authorize(ctx.credential.as_deref()).await {
        Ok(()) => egress::json(&ctx.id, StatusCode::OK, &app.gateway.models(), None),
        Err(e) => egress::error(&ctx.id, &e),
    }
}

async fn live() -> Response {
    let id = switchyard_core::request::new_request_id();
    egress::json(
        &id,
        StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
        None,
    )
}

/// Ready once the config is loaded and the server listens, until shutdown begins; not ready
/// while requests are shed (`server.max_in_flight`), so that load balancers send elsewhere.
async fn ready(State(app): Shared) -> Response {
    let id = switchyard_core::request::new_request_id();
    if app.draining.load(Ordering::Relaxed) {
        let body = serde_json::json!({"status": "draining"});
        return egress::json(&id, StatusCode::SERVICE_UNAVAILABLE, &body, None);
    }
    if app.overload.shedding() {
        let body = serde_json::json!({
            "status": "overloaded",
            "in_flight": app.overload.in_flight(),
        });
        return egress::json(&id, StatusCode::SERVICE_UNAVAILABLE, &body, None);
    }
    let runtime = app.gateway.runtime();
    let body = serde_json::json!({
        "status": "ready",
        "models": runtime.config.models.len(),
        "routes": runtime.config.routes.len(),
        "governance": app.gateway.governance_health(),
    });
    egress::json(&id, StatusCode::OK, &body, None)
}

/// Live health of every deployment (breaker, latency EWMA, in-flight) and provider key.
async fn admin_health(State(app): Shared, headers: axum::http::HeaderMap) -> Response {
    let ctx = switchyard_core::RequestContext::new(switchyard_core::Endpoint::Admin, headers);
    match admin::identify(&app, &ctx) {
        Ok(_) => egress::json(&ctx.id, StatusCode::OK, &app.gateway.health_report(), None),
        Err(e) => egress::error(&ctx.id, &e),
    }
}

async fn unknown_endpoint(method: Method, uri: Uri) -> Response {
    let id = switchyard_core::request::new_request_id();
    let e = GatewayError::new(
        404,
        "invalid_request_error",
        "unknown_endpoint",
        format!(
            "{method} {} is not an endpoint of Switchyard; it serves POST /v1/chat/completions, POST /v1/messages (Anthropic), POST /v1/messages/count_tokens, POST /v1/responses, GET /v1/responses/{{id}}, POST /v1/embeddings, GET /v1/models, POST /v1/feedback, GET /metrics, GET /health/live, GET /health/ready, the admin API under /admin/ (health, keys, users, teams, audit, reports, requests, budgets) and the web console at /ui",
            uri.path()
        ),
    );
    egress::error(&id, &e)
}

/// A running gateway's parts, for shutdown.
pub struct Built {
    pub state: Arc<AppState>,
    pub records: RecorderTask,
    /// The Redis subscription that keeps the key cache fresh, stopped on shutdown.
    pub key_events: Option<tokio::task::JoinHandle<()>>,
    /// Record retention and the spend anomaly alert, stopped on shutdown.
    pub upkeep: Vec<tokio::task::JoinHandle<()>>,
}

/// Builds the gateway from a validated config: the database (keys and records), the counters
/// (in-process or Redis), the virtual-key cache, the recorder, the pipeline.
pub async fn build(config: Config) -> Result<Built, String> {
    let db = open_database(&config).await?;
    let metrics = (config.telemetry.metrics.enabled)
        .then(|| Arc::new(telemetry::metrics::MetricsSink::new()));
    let sinks = record_sinks(&config, db.as_ref(), metrics.as_ref())?;
    let responses = db
        .clone()
        .map(|db| Arc::new(db) as Arc<dyn switchyard_core::response_store::ResponseStore>);
    let (recorder, records) = Recorder::spawn(sinks, config.records.buffer);
    let (governance, admin, key_events) = governance::build(&config, db).await?;
    let max_body_size = usize::try_from(config.server.max_body_size).unwrap_or(usize::MAX);
    let overload = Arc::new(overload::Overload::new(config.server.max_in_flight));
    let cache = shared_cache(&config)?;
    let mut gateway = Gateway::with_governance(config, recorder, governance)?;
    if let Some(cache) = cache {
        gateway.set_cache(cache);
    }
    let state = Arc::new(AppState {
        gateway,
        max_body_size,
        admin,
        metrics,
        draining: Default::default(),
        responses,
        overload,
        sessions: Default::default(),
    });
    embedder::attach(&state, &state.gateway.runtime().config)?;
    let upkeep = match &state.admin {
        Some(admin) => upkeep::spawn(&admin.db, &state),
        None => Vec::new(),
    };
    Ok(Built {
        state,
        records,
        key_events,
        upkeep,
    })
}

/// The exact cache in Redis, when `cache.backend` says so (the in-process one is the default).
fn shared_cache(config: &Config) -> Result<Option<switchyard_core::cache::Cache>, String> {
    use switchyard_core::cache::config::CacheBackend;
    if config.cache.backend != CacheBackend::Redis {
        return Ok(None);
    }
    let answers = switchyard_store::cache::RedisAnswers::connect_lazy(&config.redis)
        .map_err(|e| format!("cache.backend: redis: {e}"))?;
    let cache = switchyard_core::cache::Cache::new(Arc::new(answers), &config.cache);
    Ok(Some(cache))
}

async fn open_database(config: &Config) -> Result<Option<switchyard_store::Database>, String> {
    let url = config.database.url.trim();
    if url.is_empty() || url.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    switchyard_store::Database::connect(url)
        .await
        .map(Some)
        .map_err(|e| format!("database.url: {e}"))
}

/// Where records go: the database first (durable), then what is derived from them.
fn record_sinks(
    config: &Config,
    db: Option<&switchyard_store::Database>,
    metrics: Option<&Arc<telemetry::metrics::MetricsSink>>,
) -> Result<Vec<Arc<dyn RecordSink>>, String> {
    let mut sinks: Vec<Arc<dyn RecordSink>> = Vec::new();
    if let Some(db) = db.filter(|_| config.records.store) {
        sinks.push(Arc::new(db.clone()));
    }
    if config.records.log {
        sinks.push(Arc::new(LogSink));
    }
    if config.records.stdout {
        sinks.push(Arc::new(JsonLinesSink));
    }
    if let Some(metrics) = metrics {
        sinks.push(metrics.clone());
    }
    if let Some(otlp) = &config.telemetry.otlp {
        sinks.push(Arc::new(telemetry::otlp::OtlpSink::new(otlp)?));
    }
    Ok(sinks)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// (until `server.drain_timeout`) and writes the buffered records.
pub async fn serve(
    listener: tokio::net::TcpListener,
    built: Built,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Built {
        state,
        records,
        key_events,
        upkeep,
    } = built;
    let server = state.gateway.runtime().config.server.clone();
    connections::raise_open_files_limit(server.max_connections);
    let draining = state.clone();
    let shutdown = async move {
        shutdown.await;
        draining.draining.store(true, Ordering::Relaxed);
    };
    connections::run(
        listener,
        state.clone(),
        router(state.clone()),
        server,
        shutdown,
    )
    .await;
    for task in key_events.into_iter().chain(upkeep) {
        task.abort();
    }
    drop(state);
    records.finish().await;
    Ok(())
}
