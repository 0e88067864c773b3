//! Ingress: decodes HTTP requests of the OpenAI dialect into the canonical structs, with the
//! checks that must happen before any stage runs: content type, body size cap, JSON syntax and
//! shape. Every failure is a [`GatewayError`] whose message says what to fix (with the JSON path
//! of a wrong field).
//!
//! The handlers are thin: extract, call one pipeline function, hand the result to egress.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, header};
use axum::response::Response;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use switchyard_core::{Endpoint, Gateway, GatewayError, RequestContext};
use switchyard_wire::openai::{ChatCompletionRequest, EmbeddingsRequest};

use crate::egress;

/// What every handler shares.
pub struct AppState {
    pub gateway: Gateway,
    pub max_body_size: usize,
    /// The admin API's database and key cache; `None` without a database.
    pub admin: Option<Arc<crate::admin::Admin>>,
    /// `GET /metrics`, derived from the request records; `None` when disabled.
    pub metrics: Option<Arc<crate::telemetry::metrics::MetricsSink>>,
    /// Set on shutdown: `/health/ready` answers 503 so that load balancers stop sending.
    pub draining: std::sync::atomic::AtomicBool,
    /// Where the Responses entrance keeps responses; `None` without a database.
    pub responses: Option<Arc<dyn switchyard_core::response_store::ResponseStore>>,
    /// Requests in flight against `server.max_in_flight`, and what was shed or refused.
    pub overload: Arc<crate::overload::Overload>,
    /// The web console's sign-in sessions (in memory, this replica's).
    pub sessions: crate::console::session::Sessions,
}

pub type Shared = State<Arc<AppState>>;

pub async fn chat_completions(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = RequestContext::new(Endpoint::ChatCompletions, parts.headers);
    let decoded = read_json::<ChatCompletionRequest>(&ctx.headers, body, app.max_body_size).await;
    let result = match decoded {
        Ok(req) => app.gateway.chat(&ctx, req).await,
        Err(e) => {
            app.gateway.record_refused(&ctx, &e);
            Err(e)
        }
    };
    egress::chat(&ctx.id, result)
}

pub async fn embeddings(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = RequestContext::new(Endpoint::Embeddings, parts.headers);
    let decoded = read_json::<EmbeddingsRequest>(&ctx.headers, body, app.max_body_size).await;
    let result = match decoded {
        Ok(req) => app.gateway.embeddings(&ctx, req).await,
        Err(e) => {
            app.gateway.record_refused(&ctx, &e);
            Err(e)
        }
    };
    egress::embeddings(&ctx.id, result)
}

/// Reads and decodes a JSON body.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, GatewayError> {
    decode(&read_body(headers, body, limit).await?)
}

/// Reads a JSON body's bytes, within the size cap.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, GatewayError> {
    check_content_type(headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    read_limited(body, limit).await
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let is_limit = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large(limit)
        } else if let Some(late) = find_source::<crate::overload::BodyReadTimeout>(&e) {
            GatewayError::new(
                408,
                "invalid_request_error",
                "request_timeout",
                format!("{late}: send the whole body right after the headers"),
            )
        } else {
            GatewayError::invalid_request(
                "body_read_failed",
                format!("cannot read the request body: {e}"),
            )
        }
    })
}

/// The first error of type `T` in `e`'s chain of sources.
fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

fn too_large(limit: usize) -> GatewayError {
    GatewayError::new(
        413,
        "invalid_request_error",
        "body_too_large",
        format!(
            "the request body is larger than {limit} bytes (server.max_body_size); send less, or raise the limit"
        ),
    )
}

/// JSON is required; a missing content type is read as JSON (some clients omit it).
fn check_content_type(headers: &HeaderMap) -> Result<(), GatewayError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    if mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
    {
        return Ok(());
    }
    Err(GatewayError::new(
        415,
        "invalid_request_error",
        "unsupported_media_type",
        format!(
            "Content-Type \"{mime}\" is not supported: send a JSON body with Content-Type: application/json"
        ),
    ))
}

/// Decodes on the fast path with plain serde_json; only on failure decodes again to find the
/// JSON path of the offending field.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) => Ok(v),
        Err(e) if e.is_syntax() || e.is_eof() => Err(GatewayError::invalid_request(
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )),
        Err(e) => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let (path, message) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(pe) => (pe.path().to_string(), pe.into_inner().to_string()),
                Ok(_) => (".".into(), e.to_string()),
            };
            let code = if message.starts_with("missing field") {
                "missing_field"
            } else {
                "invalid_field"
            };
            let message = strip_position(&message);
            let full = if path == "." {
                format!("invalid request: {message}")
            } else {
                format!("invalid request: {path}: {message}")
            };
            let param = (path != ".").then_some(path);
            let mut err = GatewayError::invalid_request(code, full);
            err.param = param;
            Err(err)
        }
    }
}

/// serde_json appends " at line L column C", which means nothing once the path is given.
fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_say_what_and_where() {
        let e = decode::<ChatCompletionRequest>(b"{\"model\": ").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "invalid_json"));

        let e = decode::<ChatCompletionRequest>(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.code, "missing_field");
        assert!(e.message.contains("messages"), "{}", e.message);

        let e = decode::<ChatCompletionRequest>(
            br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("messages[0].role"), "{}", e.message);
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(check_content_type(&h).unwrap_err().status, 415);
    }
}
