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
    /// Anthropic's `POST /v1/messages`.
    Messages,
    /// OpenAI's `POST /v1/responses`.
    Responses,
    Embeddings,
    Models,
    Admin,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat.completions",
            Endpoint::Messages => "messages",
            Endpoint::Responses => "responses",
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
    /// The caller's W3C trace context (`traceparent`), or a fresh trace.
    pub trace: TraceContext,
    /// The API the client spoke: `openai`, `anthropic` or `responses`.
    pub dialect: &'static str,
    /// Who the request runs as when the server itself established it (a console replay runs
    /// as the signed-in admin): the auth stage takes it instead of checking `credential`.
    pub acting_as: Option<crate::auth::Principal>,
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
        let trace = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::from_traceparent)
            .unwrap_or_else(TraceContext::fresh);
        RequestContext {
            id,
            received: Instant::now(),
            received_unix_ms: unix_ms(),
            endpoint,
            credential,
            headers,
            trace,
            dialect: "openai",
            acting_as: None,
        }
    }
}

/// A fresh request id: a UUIDv7, time-ordered so that the request log's primary key grows at
/// its end instead of at random pages (cheaper inserts, a warmer index).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A request's place in a distributed trace (W3C Trace Context).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The gateway's own span for this request.
    pub span_id: [u8; 8],
    /// The caller's span, when the request came with a `traceparent`.
    pub parent_span_id: Option<[u8; 8]>,
    /// The caller's sampling decision, when it sent one.
    pub parent_sampled: Option<bool>,
}

impl TraceContext {
    /// A new trace with a random id.
    pub fn fresh() -> TraceContext {
        let mut trace_id = [0u8; 16];
        rand::fill(&mut trace_id);
        TraceContext {
            trace_id,
            span_id: random_span_id(),
            parent_span_id: None,
            parent_sampled: None,
        }
    }

    /// Joins the caller's trace from a `traceparent` header (`00-{trace}-{span}-{flags}`);
    /// `None` for a malformed one, which starts a new trace instead, as the spec asks.
    pub fn from_traceparent(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let (trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") || trace.len() != 32 {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut parent_id = [0u8; 8];
        hex::decode_to_slice(trace, &mut trace_id).ok()?;
        hex::decode_to_slice(parent, &mut parent_id).ok()?;
        let flags = u8::from_str_radix(flags, 16)
            .ok()
            .filter(|_| flags.len() == 2)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceContext {
            trace_id,
            span_id: random_span_id(),
            parent_span_id: Some(parent_id),
            parent_sampled: Some(flags & 1 == 1),
        })
    }

    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }
}

/// Hex ids, as in `traceparent` and in every tracing backend's search box.
impl serde::Serialize for TraceContext {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("TraceContext", 3)?;
        t.serialize_field("trace_id", &hex::encode(self.trace_id))?;
        t.serialize_field("span_id", &hex::encode(self.span_id))?;
        t.serialize_field("parent_span_id", &self.parent_span_id.map(hex::encode))?;
        t.end()
    }
}

/// A random, non-zero span id.
pub fn random_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
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

pub fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_joins_the_callers_trace() {
        let t = TraceContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id, Some(hex_8("00f067aa0ba902b7")));
        assert_eq!(t.parent_sampled, Some(true));
        assert_ne!(t.span_id, [0; 8]);
        assert_ne!(Some(t.span_id), t.parent_span_id);
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad}");
        }
    }

    fn hex_8(s: &str) -> [u8; 8] {
        let mut out = [0; 8];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }
}
