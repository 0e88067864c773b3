//! Egress: encodes what the pipeline returns into the client's dialect: JSON bodies, SSE
//! streams (`data: {chunk}` frames, an error frame when the stream fails after it started, and
//! always a final `data: [DONE]`), errors in the OpenAI shape, and the headers every response
//! carries (`x-request-id`, and which provider and model served it).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use switchyard_core::admit::RateInfo;
use switchyard_core::cache::CacheStatus;
use switchyard_core::pipeline::AccountedStream;
use switchyard_core::provider::BodyKind;
use switchyard_core::{ChatResponse, GatewayError, Served};
use switchyard_wire::openai::{EmbeddingsResponse, ErrorBody, ErrorDetail};
use switchyard_wire::sse::DONE_FRAME;

// Parsed once at compile time: inserting by string parses the name on every response.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_PROVIDER: HeaderName = HeaderName::from_static("x-switchyard-provider");
const X_MODEL: HeaderName = HeaderName::from_static("x-switchyard-model");
const X_ATTEMPTS: HeaderName = HeaderName::from_static("x-switchyard-attempts");
const X_FALLBACK_PATH: HeaderName = HeaderName::from_static("x-switchyard-fallback-path");
const X_DOWNGRADED_FROM: HeaderName = HeaderName::from_static("x-switchyard-downgraded-from");
const X_CACHE: HeaderName = HeaderName::from_static("x-switchyard-cache");
const X_CACHE_SIMILARITY: HeaderName = HeaderName::from_static("x-switchyard-cache-similarity");
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pub fn chat(request_id: &str, result: Result<ChatResponse, GatewayError>) -> Response {
    match result {
        Ok(ChatResponse::Raw(raw, served)) if raw.kind != BodyKind::ChatCompletion => {
            match raw.decode() {
                Ok(body) => json(request_id, StatusCode::OK, &body, Some(&served)),
                Err(e) => error(request_id, &GatewayError::internal(e.to_string())),
            }
        }
        Ok(ChatResponse::Raw(raw, served)) => {
            let mut response = Response::new(Body::from(raw.body));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            set_common(headers, request_id, Some(&served));
            response
        }
        Ok(ChatResponse::Complete(body, served)) => {
            json(request_id, StatusCode::OK, &body, Some(&served))
        }
        Ok(ChatResponse::Stream(stream, served)) => sse(request_id, stream, &served),
        Err(e) => error(request_id, &e),
    }
}

pub fn embeddings(
    request_id: &str,
    result: Result<(EmbeddingsResponse, Served), GatewayError>,
) -> Response {
    match result {
        Ok((body, served)) => json(request_id, StatusCode::OK, &body, Some(&served)),
        Err(e) => error(request_id, &e),
    }
}

pub fn json<T: Serialize>(
    request_id: &str,
    status: StatusCode,
    body: &T,
    served: Option<&Served>,
) -> Response {
    let mut buf = BytesMut::with_capacity(512);
    if let Err(e) = serde_json::to_writer((&mut buf).writer(), body) {
        return error(
            request_id,
            &GatewayError::internal(format!("cannot encode the response: {e}")),
        );
    }
    let mut response = json_bytes(request_id, buf.freeze(), served);
    *response.status_mut() = status;
    response
}

/// A 200 whose body is JSON already encoded (an upstream's own, passed through as it came).
pub fn json_bytes(request_id: &str, body: Bytes, served: Option<&Served>) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_common(headers, request_id, served);
    response
}

/// The OpenAI error shape; 429s and 503s carry `Retry-After` when known.
pub fn error(request_id: &str, e: &GatewayError) -> Response {
    let body = error_body(e);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(after) = e.retry_after {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(after)),
        );
    }
    if let Some(rate) = &e.rate {
        set_rate(headers, rate);
    }
    set_common(headers, request_id, None);
    response
}

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers; resets as `12s`.
pub fn set_rate(headers: &mut axum::http::HeaderMap, rate: &RateInfo) {
    const NAMES: [[HeaderName; 3]; 2] = [
        [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ],
        [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ],
    ];
    for ([limit, remaining, reset], r) in NAMES.into_iter().zip([&rate.requests, &rate.tokens]) {
        let Some(r) = r else { continue };
        headers.insert(limit, HeaderValue::from(r.limit));
        headers.insert(remaining, HeaderValue::from(r.remaining));
        if let Ok(v) = HeaderValue::from_str(&format!("{}s", retry_after_secs(r.reset))) {
            headers.insert(reset, v);
        }
    }
}

pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn error_body(e: &GatewayError) -> Vec<u8> {
    let body = ErrorBody {
        error: ErrorDetail {
            message: e.message.clone(),
            kind: Some(e.kind.to_owned()),
            param: e.param.clone(),
            code: Some(serde_json::Value::String(e.code.clone())),
        },
    };
    serde_json::to_vec(&body)
        .unwrap_or_else(|_| br#"{"error":{"message":"internal error"}}"#.to_vec())
}

pub fn set_common(headers: &mut axum::http::HeaderMap, request_id: &str, served: Option<&Served>) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(X_REQUEST_ID, v);
    }
    if let Some(s) = served {
        if let Ok(v) = HeaderValue::from_str(&s.provider) {
            headers.insert(X_PROVIDER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&s.model) {
            headers.insert(X_MODEL, v);
        }
        headers.insert(X_ATTEMPTS, HeaderValue::from(s.attempts));
        set_rate(headers, &s.rate);
        if let Some(from) = &s.downgraded_from
            && let Ok(v) = HeaderValue::from_str(from)
        {
            headers.insert(X_DOWNGRADED_FROM, v);
        }
        if !s.fallback_path.is_empty()
            && let Ok(v) = HeaderValue::from_str(&s.fallback_path.join(", "))
        {
            headers.insert(X_FALLBACK_PATH, v);
        }
        if let Some(status) = s.cache {
            headers.insert(X_CACHE, HeaderValue::from_static(status.as_str()));
            if let CacheStatus::SemanticHit(similarity) = status
                && let Ok(v) = HeaderValue::from_str(&format!("{similarity:.4}"))
            {
                headers.insert(X_CACHE_SIMILARITY, v);
            }
        }
    }
}

/// An SSE response. Each chunk is serialized straight into its frame; an error after the first
/// byte becomes an `{"error":…}` frame (the openai SDKs raise it as `APIError`), and the stream
/// always closes with `[DONE]`.
fn sse(request_id: &str, chunks: Box<AccountedStream>, served: &Served) -> Response {
    let frames = stream::unfold(Some(chunks), |state| async move {
        let mut chunks = state?;
        match chunks.next().await {
            Some(Ok(chunk)) => {
                let mut buf = BytesMut::with_capacity(256);
                buf.put_slice(b"data: ");
                match serde_json::to_writer((&mut buf).writer(), &chunk) {
                    Ok(()) => {
                        buf.put_slice(b"\n\n");
                        Some((buf.freeze(), Some(chunks)))
                    }
                    Err(e) => {
                        let e = GatewayError::internal(format!("cannot encode a chunk: {e}"));
                        Some((error_frame(&e), None))
                    }
                }
            }
            Some(Err(e)) => Some((error_frame(&e), None)),
            None => Some((Bytes::from_static(DONE_FRAME), None)),
        }
    })
    .map(Ok::<Bytes, Infallible>);
    event_stream(request_id, served, frames)
}

/// A `text/event-stream` response of ready-made frames, with the headers every stream carries.
pub fn event_stream(
    request_id: &str,
    served: &Served,
    frames: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies in front of the gateway not to buffer the stream.
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    set_common(headers, request_id, Some(served));
    response
}

/// The error frame followed by `[DONE]`, in one write.
fn error_frame(e: &GatewayError) -> Bytes {
    let body = error_body(e);
    let mut buf = BytesMut::with_capacity(body.len() + 32);
    buf.put_slice(b"data: ");
    buf.put_slice(&body);
    buf.put_slice(b"\n\n");
    buf.put_slice(DONE_FRAME);
    buf.freeze()
}
