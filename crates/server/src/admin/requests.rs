//! The request explorer: `GET /admin/requests` (a filtered, newest-first page of the request
//! log with a cursor), `GET /admin/requests/{id}` (everything stored of one request) and
//! `POST /admin/requests/{id}/replay` (its stored body sent again, through the whole pipeline,
//! to another model or route; both answers side by side).
//!
//! A replay is a real request: admitted, screened, routed, accounted and recorded like any
//! other, running as the admin who asked for it (its record's key is the admin, `admin-0`, with
//! no user or team, so experiments never count against a team's spend). The link from the
//! replay to the original is stored in `request_replays` and the replay is audited as
//! `request.replay`. Only requests whose body was kept (`record_bodies` on their route) and
//! that were chat calls can be replayed.
//!
//! The SQL lives in `switchyard_store::records::search`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::auth::Principal;
use switchyard_core::pipeline::ChatResponse;
use switchyard_core::request::{RequestContext, unix_ms};
use switchyard_core::{Endpoint, GatewayError};
use switchyard_store::records::search::MAX_LIMIT;
use switchyard_store::{Cursor, RequestFilter, StatusFilter, StoredRequest};
use switchyard_wire::openai::ChatCompletionRequest;

use super::reports::parse_instant;
use super::{Call, body, not_found, open_call, store_error};
use crate::ingress::Shared;

const LIST_PARAMS: &[&str] = &[
    "from",
    "to",
    "key",
    "team",
    "user",
    "feature",
    "model",
    "provider",
    "route",
    "status",
    "error_class",
    "limit",
    "before",
];
const DEFAULT_LIMIT: i64 = 50;
/// Characters of an answer shown in a replay's comparison.
const ANSWER_CHARS: usize = 20_000;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

pub async fn list(State(app): Shared, headers: HeaderMap, params: Params) -> Response {
    let call = open_call!(app, headers);
    let filter = match filter_of(params) {
        Ok(filter) => filter,
        Err(e) => return call.fail(&e),
    };
    let page = call.admin().db.search_requests(&filter).await;
    call.respond(StatusCode::OK, page.map_err(store_error))
}

fn bad(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_request("invalid_parameter", message).with_param(param)
}

/// The query string as a filter; an unknown parameter or a bad value is a 400 naming it.
fn filter_of(params: Params) -> Result<RequestFilter, GatewayError> {
    let Query(params) = params.map_err(|e| bad("query", format!("invalid query string: {e}")))?;
    if let Some(unknown) = params.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(bad(
            unknown,
            format!(
                "unknown parameter \"{unknown}\": use {}",
                LIST_PARAMS.join(", ")
            ),
        ));
    }
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let text = |name: &str| get(name).map(str::to_owned);
    let instant = |name: &str| -> Result<Option<i64>, GatewayError> {
        get(name)
            .map(|s| {
                parse_instant(s).map_err(|e| {
                    bad(
                        name,
                        format!("{name} \"{s}\" is not a time ({e}): use RFC 3339 (2026-01-05T13:00:00Z), a UTC date (2026-01-05) or epoch milliseconds"),
                    )
                })
            })
            .transpose()
    };
    let status = get("status")
        .map(|s| {
            StatusFilter::parse(s).ok_or_else(|| {
                bad(
                    "status",
                    format!("status \"{s}\": use ok, error, or an HTTP status code (429)"),
                )
            })
        })
        .transpose()?;
    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad("limit", format!("limit \"{s}\": use 1 to {MAX_LIMIT}")))?,
    };
    let before = get("before")
        .map(|s| {
            Cursor::parse(s).ok_or_else(|| {
                bad(
                    "before",
                    "before: pass the `cursor` of the last row of the previous page",
                )
            })
        })
        .transpose()?;
    Ok(RequestFilter {
        from_ms: instant("from")?,
        to_ms: instant("to")?,
        key_id: text("key"),
        team: text("team"),
        user: text("user"),
        feature: text("feature"),
        model: text("model"),
        provider: text("provider"),
        route: text("route"),
        status,
        error_class: text("error_class"),
        limit,
        before,
    })
}

pub async fn detail(State(app): Shared, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let call = open_call!(app, headers);
    let result = describe(&call, &id).await;
    call.respond(StatusCode::OK, result)
}

async fn load(call: &Call, id: &str) -> Result<StoredRequest, GatewayError> {
    (call.admin().db.request(id).await)
        .map_err(store_error)?
        .ok_or_else(|| not_found("request", id))
}

/// Everything stored of one request, in the explorer's words.
async fn describe(call: &Call, id: &str) -> Result<Value, GatewayError> {
    let db = &call.admin().db;
    let r = load(call, id).await?;
    let links = db.replay_links(id).await.map_err(store_error)?;
    let feedback_at = db.feedback_at(id).await.map_err(store_error)?;
    let first_model = r.attempts.first().map(|a| a.model.clone());
    let feedback: Vec<Value> = r
        .feedback_score
        .map(|score| json!({"score": score, "comment": r.feedback_comment, "at_ms": feedback_at}))
        .into_iter()
        .collect();
    Ok(json!({
        "request_id": r.request_id,
        "at_ms": r.started_at_ms,
        "endpoint": r.endpoint,
        "dialect": r.dialect,
        "key_id": r.key_id,
        "user": r.user,
        "team": r.team,
        "feature": r.feature,
        "tags": r.tags,
        "route": r.route,
        "requested_model": r.requested_model,
        "model": r.model.clone().unwrap_or_else(|| r.requested_model.clone()),
        "upstream_model": r.upstream_model,
        "provider": r.provider,
        "stream": r.stream,
        "status": r.status,
        "error_code": r.error_code,
        "error_class": r.attempts.iter().rev().find_map(|a| a.error_class.clone()),
        "admission": r.admission,
        "downgraded_from": r.downgraded_from,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cached_tokens": r.cached_tokens,
        "usage_estimated": r.usage_estimated,
        "cost_usd": r.cost_usd,
        "cache_hit": r.cache_hit,
        "cache_saved_usd": r.cache_saved_usd,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "client_disconnected": r.client_disconnected,
        "trace_id": r.trace_id,
        "fallbacks": r.attempts.iter().filter(|a| Some(&a.model) != first_model.as_ref()).count(),
        "attempts": r.attempts.iter().map(|a| json!({
            "provider": a.provider,
            "model": a.model,
            "status": a.status,
            "error_class": a.error_class,
            "latency_ms": a.latency_ms,
        })).collect::<Vec<_>>(),
        "guard_actions": r.guardrail_actions,
        "feedback": feedback,
        "body_stored": r.request_body.is_some(),
        "request_body": r.request_body,
        "response_body": r.response_body,
        "replay_of": links.replay_of,
        "replays": links.replays,
    }))
}

#[derive(Deserialize)]
struct ReplayBody {
    model: String,
}

pub async fn replay(
    State(app): Shared,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Body,
) -> Response {
    let call = open_call!(app, headers);
    let result = run_replay(&call, &id, request).await;
    call.respond(StatusCode::OK, result)
}

async fn run_replay(call: &Call, id: &str, request: Body) -> Result<Value, GatewayError> {
    let ask: ReplayBody = body(call, request).await?;
    let model = ask.model.trim();
    if model.is_empty() {
        return Err(GatewayError::invalid_request(
            "invalid_model",
            "model: name the model or route to replay the request against",
        )
        .with_param("model"));
    }
    let original = load(call, id).await?;
    let chat = stored_chat(&original)?;
    let mut chat = chat;
    chat.model = model.to_owned();
    // The comparison needs the whole answer at once.
    chat.stream = None;
    chat.stream_options = None;

    let admin = call.admin();
    let ctx = replay_context(call);
    admin
        .db
        .link_replay(&ctx.id, id, &call.actor, unix_ms())
        .await
        .map_err(store_error)?;
    admin
        .audit(
            &call.actor,
            "request.replay",
            id,
            json!({"replay": ctx.id, "model": model}),
        )
        .await;
    let outcome = call.app.gateway.chat(&ctx, chat).await;
    let (answer, error) = match outcome {
        Ok(response) => (answer_of(response), None),
        Err(e) => (None, Some(json!({"code": e.code, "message": e.message}))),
    };
    // The replay's record holds its cost and latency: wait for it to be written.
    call.app.gateway.recorder().flush().await;
    let stored = admin.db.request(&ctx.id).await.map_err(store_error)?;
    Ok(json!({
        "original": {
            "request_id": original.request_id,
            "model": original.model.clone().unwrap_or_else(|| original.requested_model.clone()),
            "answer": original.response_body.as_deref().map(answer_from_body),
            "cost_usd": original.cost_usd,
            "latency_ms": original.latency_ms,
            "status": original.status,
        },
        "replay": {
            "request_id": ctx.id,
            "model": stored.as_ref().and_then(|s| s.model.clone()).unwrap_or_else(|| model.to_owned()),
            "answer": answer,
            "cost_usd": stored.as_ref().map(|s| s.cost_usd),
            "latency_ms": stored.as_ref().map(|s| s.latency_ms),
            "status": stored.as_ref().map_or(if error.is_some() { 500 } else { 200 }, |s| s.status),
            "error": error,
        },
    }))
}

/// The chat request a stored record was made of, or why it cannot be replayed.
fn stored_chat(original: &StoredRequest) -> Result<ChatCompletionRequest, GatewayError> {
    let Some(body) = &original.request_body else {
        return Err(GatewayError::new(
            409,
            "invalid_request_error",
            "body_not_stored",
            format!(
                "request {} cannot be replayed: its body was not kept. Set record_bodies: true on the route{} to keep the bodies of new requests",
                original.request_id,
                original
                    .route
                    .as_deref()
                    .map(|r| format!(" \"{r}\""))
                    .unwrap_or_default()
            ),
        ));
    };
    serde_json::from_str(body).map_err(|e| {
        GatewayError::new(
            409,
            "invalid_request_error",
            "body_not_replayable",
            format!(
                "request {} cannot be replayed: its stored body is not a whole chat request ({e}); bodies longer than records.max_body_size are cut",
                original.request_id
            ),
        )
    })
}

/// A request of its own (a fresh id, no client headers) that runs as the admin who asked.
fn replay_context(call: &Call) -> RequestContext {
    let mut ctx = RequestContext::new(Endpoint::ChatCompletions, HeaderMap::new());
    ctx.acting_as = Some(Principal {
        key_id: Some(call.actor.clone()),
        ..Principal::default()
    });
    ctx
}

/// The text of a chat answer.
fn answer_of(response: ChatResponse) -> Option<String> {
    match response {
        ChatResponse::Complete(r, _) => serde_json::to_value(&r)
            .ok()
            .map(|v| text_of_completion(&v)),
        ChatResponse::Raw(raw, _) => Some(answer_from_body(&String::from_utf8_lossy(&raw.body))),
        ChatResponse::Stream(..) => None,
    }
}

/// The answer in a stored or raw response body: the first choice's message when it is a chat
/// completion, else the body itself (cut).
fn answer_from_body(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) if v.get("choices").is_some() => text_of_completion(&v),
        _ => body.chars().take(ANSWER_CHARS).collect(),
    }
}

fn text_of_completion(v: &Value) -> String {
    let message = &v["choices"][0]["message"];
    let text = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Null => match &message["tool_calls"] {
            Value::Null => String::new(),
            calls => format!("(tool calls) {calls}"),
        },
        other => other.to_string(),
    };
    text.chars().take(ANSWER_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_completions_and_raw_bodies() {
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"Paris."}}]}"#;
        assert_eq!(answer_from_body(body), "Paris.");
        assert_eq!(answer_from_body("data: partial"), "data: partial");
    }
}
