//! What the gateway knows about one request besides its body: its id, when it arrived, which
//! endpoint and dialect it came through, the credential it presented and its headers.
//!
//! Ingress fills this in; every later stage reads it. Request bodies are the wire crate's
//! canonical structs, not wrapped here.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// The client-facing API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
    Models,
    Admin,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat.completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Models => "models",
            Endpoint::Admin => "admin",
        }
    }
}

#[derive(Debug)]
pub struct RequestContext {
    /// The client's `x-request-id` when it sent a sane one, else a fresh UUID.
    pub id: String,
    pub received: Instant,
    pub received_unix_ms: i64,
    pub endpoint: Endpoint,
    /// The bearer token or `x-api-key`, if any.
    pub credential: Option<String>,
    pub headers: HeaderMap,
}

impl RequestContext {
    pub fn new(endpoint: Endpoint, headers: HeaderMap) -> Self {
        let id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(new_request_id);
        let credential = credential_from(&headers);
        RequestContext {
            id,
            received: Instant::now(),
            received_unix_ms: unix_ms(),
            endpoint,
            credential,
            headers,
        }
    }
}

/// A fresh request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `Authorization: Bearer X`, else `x-api-key: X` (the Anthropic SDK's header), else `api-key`
/// (Azure's).
fn credential_from(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(token.trim().to_owned());
    }
    ["x-api-key", "api-key"].iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    })
}

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
