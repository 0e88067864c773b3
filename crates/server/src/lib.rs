//! The HTTP face of Switchyard: the axum router (ingress and egress per dialect, health and
//! model list), start-up from a config file, and graceful shutdown that drains request records.
//!
//! The binary (`main.rs`) is only the command line; everything it runs lives here so that tests
//! can start a gateway in-process too.

pub mod egress;
pub mod ingress;
pub mod reload;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use switchyard_core::record::{FanOut, LogSink, RecordSink, Recorder, RecorderTask};
use switchyard_core::{Config, Gateway, GatewayError};

use crate::ingress::{AppState, Shared};

/// The routes of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(ingress::chat_completions))
        .route("/chat/completions", post(ingress::chat_completions))
        .route("/v1/embeddings", post(ingress::embeddings))
        .route("/embeddings", post(ingress::embeddings))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/admin/health", get(admin_health))
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

/// Ready once the config is loaded and the server listens, which is true whenever this answers.
async fn ready(State(app): Shared) -> Response {
    let id = switchyard_core::request::new_request_id();
    let runtime = app.gateway.runtime();
    let body = serde_json::json!({
        "status": "ready",
        "models": runtime.config.models.len(),
        "routes": runtime.config.routes.len(),
    });
    egress::json(&id, StatusCode::OK, &body, None)
}

/// Live health of every deployment (breaker, latency EWMA, in-flight) and provider key.
async fn admin_health(State(app): Shared, headers: axum::http::HeaderMap) -> Response {
    let ctx = switchyard_core::RequestContext::new(switchyard_core::Endpoint::Admin, headers);
    match app.gateway.authorize_admin(ctx.credential.as_deref()) {
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
            "{method} {} is not an endpoint of Switchyard; it serves POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, GET /health/live, GET /health/ready and GET /admin/health",
            uri.path()
        ),
    );
    egress::error(&id, &e)
}

/// A running gateway's parts, for shutdown.
pub struct Built {
    pub state: Arc<AppState>,
    pub records: RecorderTask,
}

/// Builds the gateway from a validated config: the record sink (database and/or log), the
/// recorder, the pipeline.
pub async fn build(config: Config) -> Result<Built, String> {
    let sink = record_sink(&config).await?;
    let (recorder, records) = Recorder::spawn(sink, config.records.buffer);
    let max_body_size = usize::try_from(config.server.max_body_size).unwrap_or(usize::MAX);
    let gateway = Gateway::new(config, recorder)?;
    Ok(Built {
        state: Arc::new(AppState {
            gateway,
            max_body_size,
        }),
        records,
    })
}

async fn record_sink(config: &Config) -> Result<Arc<dyn RecordSink>, String> {
    let mut sinks: Vec<Arc<dyn RecordSink>> = Vec::new();
    let url = config.database.url.trim();
    if config.records.store && !url.is_empty() && url != "none" {
        let db = switchyard_store::Database::connect(url)
            .await
            .map_err(|e| format!("database.url: {e}"))?;
        sinks.push(Arc::new(db));
    }
    if config.records.log {
        sinks.push(Arc::new(LogSink));
    }
    Ok(match sinks.len() {
        1 => sinks.remove(0),
        _ => Arc::new(FanOut(sinks)),
    })
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish and
/// writes the buffered records.
pub async fn serve(
    listener: tokio::net::TcpListener,
    built: Built,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Built { state, records } = built;
    let app = router(state.clone());
    // Without TCP_NODELAY, Nagle's algorithm holds small SSE frames back until the client's
    // delayed ACK (40 ms on Linux): streams would arrive in bursts.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("cannot set TCP_NODELAY on a client connection: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    drop(state);
    records.finish().await;
    Ok(())
}
