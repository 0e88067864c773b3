//! The OpenAI Responses API as an entrance: `POST /v1/responses` (JSON and streamed) and
//! `GET /v1/responses/{id}`, for the openai SDKs' `client.responses` and the agents built on
//! them, in front of any model.
//!
//! A request is decoded twice from the same bytes: as JSON kept whole (the native body) and as
//! typed structs translated into the canonical request ([`request`]). Both go through the same
//! pipeline as a chat completion — auth, limits, routing, fallback, records. An OpenAI or Azure
//! OpenAI deployment sends the native body to its own `/responses` and its answer comes back as
//! it was sent, frames and all; any other deployment gets the translation, and its answer is
//! translated back ([`response`], [`stream`]). A `previous_response_id` is expanded here, at the
//! gateway, from the responses it keeps ([`history`]), so that any provider can serve the next
//! turn. Errors take the OpenAI shape.

pub mod history;
pub mod request;
pub mod response;
pub mod stream;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use futures_util::{StreamExt, stream as futures_stream};
use serde_json::{Value, json};
use switchyard_core::pipeline::AccountedStream;
use switchyard_core::provider::BodyKind;
use switchyard_core::request::unix_secs;
use switchyard_core::{ChatResponse, Endpoint, GatewayError, RequestContext, Served};
use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse, Native};
use switchyard_wire::responses::{Content, Input, Item, ResponsesRequest};

use crate::egress;
use crate::ingress::{self, AppState, Shared};
use history::{History, Keeper};
use response::Meta;

/// `POST /v1/responses`.
pub async fn create(State(app): Shared, request: Request<Body>) -> Response {
    let (parts, body) = request.into_parts();
    let mut ctx = RequestContext::new(Endpoint::Responses, parts.headers);
    ctx.dialect = "responses";
    match prepare(&app, &ctx, body).await {
        Ok(prepared) => {
            let result = app.gateway.chat(&ctx, prepared.request).await;
            respond(&ctx.id, result, prepared.meta, prepared.keeper).await
        }
        Err(e) => {
            app.gateway.record_refused(&ctx, &e);
            egress::error(&ctx.id, &e)
        }
    }
}

/// `GET /v1/responses/{id}`: a response the gateway kept, for the key that created it.
pub async fn retrieve(State(app): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let ctx = RequestContext::new(Endpoint::Responses, headers);
    let found = async {
        let owner = history::caller(&app, &ctx).await?;
        let history = History::of(&app).ok_or_else(history::read_without_storing)?;
        history.get(&id, &owner).await
    }
    .await;
    match found {
        Ok(stored) => egress::json(&ctx.id, StatusCode::OK, &stored.response, None),
        Err(e) => egress::error(&ctx.id, &e),
    }
}

/// A request ready for the pipeline, and what the answer needs.
struct Prepared {
    request: ChatCompletionRequest,
    meta: Meta,
    /// Keeps the answer, when the gateway keeps responses and the client did not say
    /// `store: false`.
    keeper: Option<Keeper>,
}

/// Reads the request, expands its `previous_response_id`, and translates it.
async fn prepare(
    app: &AppState,
    ctx: &RequestContext,
    body: Body,
) -> Result<Prepared, GatewayError> {
    let bytes = ingress::read_body(&ctx.headers, body, app.max_body_size).await?;
    let mut native: Value = ingress::decode(&bytes)?;
    let mut typed: ResponsesRequest = ingress::decode(&bytes)?;
    if typed.model.trim().is_empty() {
        return Err(
            GatewayError::invalid_request("missing_model", "model: must not be empty")
                .with_param("model"),
        );
    }
    let history = History::of(app);
    let previous = typed.previous_response_id.clone();
    if previous.is_some() && history.is_none() {
        return Err(history::previous_without_storing());
    }
    let keeps = history.is_some() && typed.store != Some(false);
    let owner = match (&history, previous.is_some() || keeps) {
        (Some(_), true) => Some(history::caller(app, ctx).await?),
        _ => None,
    };

    let mut earlier = Vec::new();
    if let (Some(history), Some(id), Some(owner)) = (&history, &previous, &owner) {
        earlier = history.get(id, owner).await?.conversation();
    }
    let (conversation, items) = continue_with(earlier, &native, typed.input.take())?;
    let mut request = request::to_chat_request(&typed, &items)?;
    if previous.is_some() {
        // The gateway expanded the conversation itself: the upstream gets it whole, and no
        // previous_response_id it may never have seen (another provider may have served it).
        native["input"] = Value::Array(conversation.clone());
        if let Value::Object(map) = &mut native {
            map.remove("previous_response_id");
        }
    }
    request.origin.native = Some(Arc::new(Native::Responses { body: native }));
    let keeper = match (history, owner) {
        (Some(history), Some(owner)) if keeps => Some(history.keeper(owner, conversation)),
        _ => None,
    };
    let mut meta = Meta::new(&typed, unix_secs());
    // Whether this gateway keeps the response, which is what `store` tells a client.
    meta.echo.insert("store".into(), keeper.is_some().into());
    Ok(Prepared {
        request,
        meta,
        keeper,
    })
}

/// The conversation so far (`earlier`, from a kept response) followed by the request's input,
/// as JSON items (what is kept, and what OpenAI is sent) and as typed items (what is
/// translated). Public for the fuzz targets.
#[doc(hidden)]
pub fn continue_with(
    mut earlier: Vec<Value>,
    native: &Value,
    input: Option<Input>,
) -> Result<(Vec<Value>, Vec<Item>), GatewayError> {
    let mut items: Vec<Item> = serde_json::from_value(Value::Array(earlier.clone()))
        .map_err(|e| GatewayError::internal(format!("a kept response is unreadable: {e}")))?;
    match native.get("input") {
        Some(Value::String(text)) => {
            earlier.push(json!({"type": "message", "role": "user", "content": text}))
        }
        Some(Value::Array(input)) => earlier.extend(input.iter().cloned()),
        _ => {}
    }
    match input {
        Some(Input::Text(text)) => items.push(Item {
            kind: Some("message".into()),
            role: Some("user".into()),
            content: Some(Content::Text(text)),
            ..Default::default()
        }),
        Some(Input::Items(input)) => items.extend(input),
        None => {}
    }
    if items.is_empty() {
        return Err(GatewayError::invalid_request(
            "missing_input",
            "input: required (a string, or a list of items), unless previous_response_id names a conversation to continue",
        )
        .with_param("input"));
    }
    Ok((earlier, items))
}

/// Encodes the pipeline's answer as the Responses API does, keeping it first.
async fn respond(
    request_id: &str,
    result: Result<ChatResponse, GatewayError>,
    meta: Meta,
    keeper: Option<Keeper>,
) -> Response {
    match result {
        Ok(ChatResponse::Raw(raw, served)) if raw.kind == BodyKind::Response => {
            if let Some(keeper) = keeper
                && let Ok(object) = serde_json::from_slice::<Value>(&raw.body)
            {
                keeper.keep(object).await;
            }
            egress::json_bytes(request_id, raw.body, Some(&served))
        }
        Ok(ChatResponse::Raw(raw, served)) => match raw.decode() {
            Ok(body) => answer(request_id, &body, &served, &meta, keeper).await,
            Err(e) => egress::error(request_id, &GatewayError::internal(e.to_string())),
        },
        Ok(ChatResponse::Complete(body, served)) => {
            answer(request_id, &body, &served, &meta, keeper).await
        }
        Ok(ChatResponse::Stream(chunks, served)) => {
            event_stream(request_id, chunks, &served, meta, keeper)
        }
        Err(e) => egress::error(request_id, &e),
    }
}

async fn answer(
    request_id: &str,
    body: &ChatCompletionResponse,
    served: &Served,
    meta: &Meta,
    keeper: Option<Keeper>,
) -> Response {
    let object = response::to_response(body, meta);
    if let Some(keeper) = keeper {
        keeper.keep(object.clone()).await;
    }
    egress::json(request_id, StatusCode::OK, &object, Some(served))
}

/// The stream of events; the final response is kept before its frame is sent.
fn event_stream(
    request_id: &str,
    chunks: Box<AccountedStream>,
    served: &Served,
    meta: Meta,
    keeper: Option<Keeper>,
) -> Response {
    let encoder = stream::Encoder::new(meta);
    let frames = futures_stream::unfold(Some((chunks, encoder, keeper)), |state| async move {
        let (mut chunks, mut encoder, mut keeper) = state?;
        let (frame, more) = match chunks.next().await {
            Some(Ok(chunk)) => (encoder.chunk(&chunk), true),
            Some(Err(e)) => (encoder.fail(&e), false),
            None => (encoder.end(), false),
        };
        if let Some(done) = encoder.take_final()
            && let Some(keeper) = keeper.take()
        {
            keeper.keep(done).await;
        }
        Some((frame, more.then_some((chunks, encoder, keeper))))
    })
    .filter(|frame| std::future::ready(!frame.is_empty()))
    .map(Ok::<_, Infallible>);
    egress::event_stream(request_id, served, frames)
}
