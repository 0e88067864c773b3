//! The Anthropic Messages API as an entrance: `POST /v1/messages` and
//! `POST /v1/messages/count_tokens`, for the anthropic SDKs and the coding agents that speak
//! only this API, in front of any model.
//!
//! A request is decoded twice from the same bytes: as JSON kept whole (the native body) and as
//! typed structs translated into the canonical request ([`request`]). Both go through the same
//! pipeline as an OpenAI request — auth (`x-api-key` or a bearer token), limits, routing,
//! fallback, records. An Anthropic deployment sends the native body as it came, with the
//! client's `anthropic-beta` header, and its answer comes back as it was sent, frames and all;
//! any other deployment gets the translation, and its answer is translated back ([`response`],
//! [`stream`]). Errors take Anthropic's shape, before a stream and inside it.

pub mod request;
pub mod response;
pub mod stream;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use futures_util::{StreamExt, stream as futures_stream};
use serde_json::Value;
use switchyard_core::provider::BodyKind;
use switchyard_core::{ChatResponse, Endpoint, GatewayError, RequestContext, Served};
use switchyard_wire::anthropic::MessagesRequest;
use switchyard_wire::openai::{ChatCompletionRequest, Native};

use crate::egress;
use crate::ingress::{self, Shared};

pub async fn messages(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let mut ctx = RequestContext::new(Endpoint::Messages, parts.headers);
    ctx.dialect = "anthropic";
    match read(&ctx.headers, body, app.max_body_size).await {
        Ok(req) => {
            let model = req.model.clone();
            let result = app.gateway.chat(&ctx, req).await;
            respond(&ctx.id, &model, result)
        }
        Err(e) => {
            app.gateway.record_refused(&ctx, &e);
            error(&ctx.id, &e)
        }
    }
}

/// `POST /v1/messages/count_tokens`: counted by the Anthropic deployment the model routes to,
/// else estimated (about four characters a token), for clients that budget their context with it.
pub async fn count_tokens(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let ctx = RequestContext::new(Endpoint::Messages, parts.headers);
    let counted = async {
        let request = read_count_request(&ctx.headers, body, app.max_body_size).await?;
        app.gateway.count_tokens(&ctx, &request).await
    }
    .await;
    match counted {
        Ok(tokens) => {
            let body = serde_json::json!({ "input_tokens": tokens });
            egress::json(&ctx.id, StatusCode::OK, &body, None)
        }
        Err(e) => error(&ctx.id, &e),
    }
}

/// A count_tokens body: a Messages request without `max_tokens`.
async fn read_count_request(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<ChatCompletionRequest, GatewayError> {
    let bytes = ingress::read_body(headers, body, limit).await?;
    let native: Value = ingress::decode(&bytes)?;
    let mut shaped = native.clone();
    if let Value::Object(map) = &mut shaped {
        // Only to satisfy the shared request type; the provider gets the body as it came.
        map.entry("max_tokens").or_insert(1.into());
    }
    let typed: MessagesRequest = serde_json::from_value(shaped).map_err(|e| {
        GatewayError::invalid_request("invalid_field", format!("invalid request: {e}"))
    })?;
    let mut canonical = request::to_chat_request(&typed);
    canonical.origin.native = Some(Arc::new(Native::Anthropic {
        body: native,
        beta: beta_header(headers),
    }));
    Ok(canonical)
}

/// Reads a Messages request into the canonical request, carrying the client's own body.
async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<ChatCompletionRequest, GatewayError> {
    let bytes = ingress::read_body(headers, body, limit).await?;
    from_body(&bytes, beta_header(headers))
}

/// Decodes, checks and translates a Messages request body, keeping the body itself and the
/// client's `anthropic-beta` header for an Anthropic deployment. Public for the fuzz targets.
#[doc(hidden)]
pub fn from_body(
    bytes: &[u8],
    beta: Option<String>,
) -> Result<ChatCompletionRequest, GatewayError> {
    let native: Value = ingress::decode(bytes)?;
    let typed: MessagesRequest = ingress::decode(bytes)?;
    validate(&typed)?;
    let mut canonical = request::to_chat_request(&typed);
    canonical.origin.native = Some(Arc::new(Native::Anthropic { body: native, beta }));
    Ok(canonical)
}

/// What the Messages API refuses that serde's types accept.
fn validate(req: &MessagesRequest) -> Result<(), GatewayError> {
    if req.messages.is_empty() {
        return Err(GatewayError::invalid_request(
            "missing_messages",
            "messages: at least one message is required",
        )
        .with_param("messages"));
    }
    if req.max_tokens == 0 {
        return Err(GatewayError::invalid_request(
            "invalid_max_tokens",
            "max_tokens: must be at least 1",
        )
        .with_param("max_tokens"));
    }
    Ok(())
}

/// Every `anthropic-beta` header the client sent, as one comma-separated value.
fn beta_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Encodes the pipeline's answer as the Messages API does.
fn respond(request_id: &str, model: &str, result: Result<ChatResponse, GatewayError>) -> Response {
    match result {
        Ok(ChatResponse::Raw(raw, served)) if raw.kind == BodyKind::AnthropicMessage => {
            egress::json_bytes(request_id, raw.body, Some(&served))
        }
        Ok(ChatResponse::Raw(raw, served)) => match raw.decode() {
            Ok(body) => message(request_id, &response::to_message(&body), &served),
            Err(e) => error(request_id, &GatewayError::internal(e.to_string())),
        },
        Ok(ChatResponse::Complete(body, served)) => {
            message(request_id, &response::to_message(&body), &served)
        }
        Ok(ChatResponse::Stream(chunks, served)) => {
            let encoder = stream::Encoder::new(model);
            let id = request_id.to_owned();
            let frames = futures_stream::unfold(Some((chunks, encoder, id)), |state| async move {
                let (mut chunks, mut encoder, id) = state?;
                match chunks.next().await {
                    Some(Ok(chunk)) => {
                        let frame = encoder.chunk(&chunk);
                        Some((frame, Some((chunks, encoder, id))))
                    }
                    Some(Err(e)) => Some((stream::error_event(&e, &id), None)),
                    None => Some((encoder.end(), None)),
                }
            })
            .filter(|frame| std::future::ready(!frame.is_empty()))
            .map(Ok::<_, Infallible>);
            egress::event_stream(request_id, &served, frames)
        }
        Err(e) => error(request_id, &e),
    }
}

fn message(request_id: &str, body: &Value, served: &Served) -> Response {
    egress::json(request_id, StatusCode::OK, body, Some(served))
}

/// An error in Anthropic's shape, with the same status and headers as the OpenAI entrance's.
pub fn error(request_id: &str, e: &GatewayError) -> Response {
    let mut response = egress::error(request_id, e);
    let body = response::error_body(e, request_id);
    *response.body_mut() = Body::from(serde_json::to_vec(&body).unwrap_or_default());
    response
}
