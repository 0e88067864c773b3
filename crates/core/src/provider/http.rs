//! The HTTP plumbing every remote adapter shares: building a pooled client, sending with a
//! first-byte timeout, reading bodies with an idle timeout and within a size cap
//! ([`BodyLimit`]), turning error responses of any vendor into a classified [`ProviderError`]
//! with the request's credentials scrubbed out, and reading an SSE body as a stream of events.
//!
//! Streams never get a total timeout (a long answer is not a failure); they get a limit on the
//! silence between two reads instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use reqwest::header::HeaderMap;
use serde_json::Value;
use switchyard_wire::sse;

use crate::config::{ServerConfig, Timeouts};
use crate::error::{ErrorClass, ProviderError, RESPONSE_TOO_LARGE};

/// Largest error body read from an upstream.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The most a non-streamed upstream body may hold, and the config key that raises it: the
/// refusal names the key so that an operator knows what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    pub bytes: usize,
    pub key: Option<&'static str>,
}

impl BodyLimit {
    /// The cap on a chat (or Messages, or Responses) answer: `server.max_upstream_body_size`.
    pub fn chat(server: &ServerConfig) -> Self {
        BodyLimit {
            bytes: usize::try_from(server.max_upstream_body_size).unwrap_or(usize::MAX),
            key: Some("server.max_upstream_body_size"),
        }
    }

    /// The cap on an embeddings answer, larger because big batches are legitimately large:
    /// `server.max_upstream_embeddings_body_size`.
    pub fn embeddings(server: &ServerConfig) -> Self {
        BodyLimit {
            bytes: usize::try_from(server.max_upstream_embeddings_body_size).unwrap_or(usize::MAX),
            key: Some("server.max_upstream_embeddings_body_size"),
        }
    }
}

/// A fixed internal cap (error bodies, token endpoints) that no config key raises.
impl From<usize> for BodyLimit {
    fn from(bytes: usize) -> Self {
        BodyLimit { bytes, key: None }
    }
}

/// A client with its own connection pool, tuned for many concurrent calls to one host.
pub fn client(timeouts: &Timeouts) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        // The executor decides retries and fallback from the error class; a provider's
        // redirect is an error to report, not to follow with the key attached.
        .retry(reqwest::retry::never())
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeouts.connect)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Sends a request and waits for the response headers, at most `first_byte`. A non-2xx status
/// is read and returned as a classified error, with the request's credentials scrubbed out.
pub async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
) -> Result<reqwest::Response, ProviderError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| transport_error(provider, &e))?;
    let credentials = Credentials::of(request.headers());
    let sent = tokio::time::timeout(timeouts.first_byte, client.execute(request)).await;
    let response = match sent {
        Err(_) => {
            return Err(ProviderError::new(
                ErrorClass::Timeout,
                provider,
                format!("no response within {:?}", timeouts.first_byte),
            ));
        }
        Ok(Err(e)) => return Err(transport_error(provider, &e)),
        Ok(Ok(r)) => r,
    };
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_body(provider, response, timeouts.idle, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    Err(credentials.scrub(error_from_response(provider, status, &headers, &body)))
}

/// The credentials a request carries, to scrub from what the upstream says back: some
/// providers quote the key they rejected in full, and the error's message is logged, recorded
/// and (for most classes) shown to the client. Taken on every call but read only on an error,
/// so it keeps the header values as they are (a reference count each) and splits them later.
pub struct Credentials(Vec<reqwest::header::HeaderValue>);

/// Every header that carries a key in some dialect. Names, not strings: looking a header up by
/// a string parses the name on every call.
static CREDENTIAL_HEADERS: [reqwest::header::HeaderName; 4] = [
    reqwest::header::AUTHORIZATION,
    reqwest::header::HeaderName::from_static("x-api-key"),
    reqwest::header::HeaderName::from_static("api-key"),
    reqwest::header::HeaderName::from_static("x-goog-api-key"),
];

impl Credentials {
    pub fn of(headers: &HeaderMap) -> Self {
        let values = CREDENTIAL_HEADERS
            .iter()
            .flat_map(|name| headers.get_all(name));
        Credentials(values.cloned().collect())
    }

    /// Each whole value, and its tokens alone (`Bearer sk-…` is often quoted as just `sk-…`),
    /// longest first so that a whole value goes before the token inside it.
    fn secrets(&self) -> Vec<&str> {
        /// Shorter pieces are scheme names and SigV4 field labels, not secrets.
        const MIN_SECRET: usize = 8;
        let mut secrets = Vec::new();
        for value in self.0.iter().filter_map(|v| v.to_str().ok()) {
            secrets.push(value.trim());
            secrets.extend(value.split(|c: char| c.is_whitespace() || c == ','));
        }
        secrets.retain(|s| s.len() >= MIN_SECRET);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }

    /// The error with every credential in its message and code replaced by `[REDACTED]`.
    pub fn scrub(&self, mut e: ProviderError) -> ProviderError {
        for secret in self.secrets() {
            if e.message.contains(secret) {
                e.message = e.message.replace(secret, "[REDACTED]");
            }
            if let Some(code) = &mut e.upstream_code
                && code.contains(secret)
            {
                *code = code.replace(secret, "[REDACTED]");
            }
        }
        e
    }
}

/// A failure to reach the provider or to read from it: timeout, else connection.
pub fn transport_error(provider: &str, e: &reqwest::Error) -> ProviderError {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else {
        ErrorClass::Connection
    };
    // reqwest's message includes the URL but never headers, so no key can leak through it.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::new(class, provider, message)
}

/// Reads a whole body, at most `limit` bytes, with at most `idle` between two reads.
///
/// Memory stays close to the body's size (see [`BodyBuffer`]); a declared length over the cap
/// is refused before reading a byte. A refused body is not drained: dropping the response
/// closes the upstream connection instead of downloading the rest.
pub async fn read_body(
    provider: &str,
    response: reqwest::Response,
    idle: Duration,
    limit: impl Into<BodyLimit>,
) -> Result<Bytes, ProviderError> {
    let limit = limit.into();
    let declared = response.content_length();
    if let Some(length) = declared
        && length > limit.bytes as u64
    {
        return Err(too_large(provider, limit, Some(length)));
    }
    let mut buf = BodyBuffer::new(declared);
    let mut body = response.bytes_stream();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorClass::Timeout,
                    provider,
                    format!("the response body stalled for {idle:?}"),
                ));
            }
            Ok(None) => return Ok(buf.finish()),
            Ok(Some(Err(e))) => return Err(transport_error(provider, &e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit.bytes {
                    return Err(too_large(provider, limit, None));
                }
                buf.push(chunk);
            }
        }
    }
}

/// A body being read, never reallocated: growing one buffer by doubling copied it each time
/// and left the outgrown buffers resident in the allocator, four times the cap for a body
/// refused at the cap.
enum BodyBuffer {
    /// Content-Length known (and within the cap): one buffer of exactly that size.
    Sized(Vec<u8>),
    /// Length unknown: the chunks as they came (hyper's own buffers, not copies), joined once
    /// at the end, so a body refused at the cap never cost much more than the cap.
    Chunks { parts: Vec<Bytes>, len: usize },
}

impl BodyBuffer {
    fn new(declared: Option<u64>) -> Self {
        match declared {
            Some(length) => BodyBuffer::Sized(Vec::with_capacity(length as usize)),
            None => BodyBuffer::Chunks {
                parts: Vec::new(),
                len: 0,
            },
        }
    }

    fn len(&self) -> usize {
        match self {
            BodyBuffer::Sized(buf) => buf.len(),
            BodyBuffer::Chunks { len, .. } => *len,
        }
    }

    fn push(&mut self, chunk: Bytes) {
        match self {
            BodyBuffer::Sized(buf) => buf.extend_from_slice(&chunk),
            BodyBuffer::Chunks { parts, len } => {
                *len += chunk.len();
                parts.push(chunk);
            }
        }
    }

    fn finish(self) -> Bytes {
        match self {
            BodyBuffer::Sized(buf) => Bytes::from(buf),
            BodyBuffer::Chunks { mut parts, len } => {
                if parts.len() == 1 {
                    return parts.pop().unwrap_or_default();
                }
                let mut joined = Vec::with_capacity(len);
                for part in parts {
                    joined.extend_from_slice(&part);
                }
                Bytes::from(joined)
            }
        }
    }
}

/// `8 MiB` rather than `8388608 bytes` when the size is a whole number of MiB.
fn readable_size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The refusal of a body over its cap, naming the cap and the key that raises it.
fn too_large(provider: &str, limit: BodyLimit, declared: Option<u64>) -> ProviderError {
    let size = match declared {
        Some(length) => format!("of {length} bytes"),
        None => "that kept growing".to_owned(),
    };
    let raise = match limit.key {
        Some(key) => format!("; raise {key} to accept larger responses"),
        None => String::new(),
    };
    let mut e = ProviderError::new(
        ErrorClass::Protocol,
        provider,
        format!(
            "the upstream sent a response {size}, past the {} allowed{raise}",
            readable_size(limit.bytes)
        ),
    );
    e.upstream_code = Some(RESPONSE_TOO_LARGE.to_owned());
    e
}

/// Reads a JSON body into `T`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    response: reqwest::Response,
    idle: Duration,
    limit: impl Into<BodyLimit>,
) -> Result<T, ProviderError> {
    let body = read_body(provider, response, idle, limit).await?;
    serde_json::from_slice(&body).map_err(|e| {
        ProviderError::new(
            ErrorClass::Protocol,
            provider,
            format!("the response is not the expected JSON: {e}"),
        )
    })
}

/// Builds a classified error from an upstream error response of any vendor: OpenAI/Azure
/// `{"error":{message,type,code}}`, Anthropic `{"type":"error","error":{type,message}}`, vLLM
/// `{"object":"error",message,type,code}`, Gemini `{"error":{code,message,status}}`, Bedrock
/// `{"message"}`, or plain text.
pub fn error_from_response(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let (kind, code, message) = parse_error_body(body);
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    let class = ErrorClass::from_http(status, &format!("{kind} {code}"), &message);
    ProviderError {
        class,
        provider: provider.to_owned(),
        status: Some(status),
        upstream_code: Some(if code.is_empty() { kind } else { code }).filter(|c| !c.is_empty()),
        message,
        retry_after: retry_after(headers),
    }
}

/// `(type, code, message)` of an error body, each possibly empty.
pub fn parse_error_body(body: &[u8]) -> (String, String, String) {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let err = match v.get("error") {
                Some(e @ Value::Object(_)) => e,
                Some(Value::String(s)) => return (String::new(), String::new(), s.clone()),
                _ => &v,
            };
            let kind = text(err.get("type").or_else(|| err.get("status")));
            let code = text(err.get("code"));
            let message = text(err.get("message").or_else(|| err.get("detail")));
            (kind, code, message)
        }
        Err(_) => {
            let s = String::from_utf8_lossy(body);
            let s: String = s.trim().chars().take(500).collect();
            (String::new(), String::new(), s)
        }
    }
}

/// `retry-after-ms` (Azure), else `retry-after` in seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// Reads an SSE body as events. The stream yields `Err` once and ends if the body stalls for
/// `idle`, the connection breaks, or an event grows past `max_event`. It ends quietly at the
/// end of the body: whether that end was premature is for the dialect to judge.
pub fn events(
    provider: Arc<str>,
    response: reqwest::Response,
    idle: Duration,
    max_event: usize,
) -> impl Stream<Item = Result<sse::Event, ProviderError>> + Send + 'static {
    struct State<B> {
        body: B,
        parser: sse::Parser,
        provider: Arc<str>,
        finished: bool,
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        parser: sse::Parser::new(max_event),
        provider,
        finished: false,
    };
    stream::unfold(state, move |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            match st.parser.next_event() {
                Ok(Some(event)) => return Some((Ok(event), st)),
                Ok(None) => {}
                Err(e) => {
                    st.finished = true;
                    let err = ProviderError::new(ErrorClass::Protocol, &st.provider, e.to_string());
                    return Some((Err(err), st));
                }
            }
            match tokio::time::timeout(idle, st.body.next()).await {
                Ok(Some(Ok(bytes))) => st.parser.push(&bytes),
                Ok(None) => {
                    st.finished = true;
                    return match st.parser.finish() {
                        Ok(Some(event)) => Some((Ok(event), st)),
                        Ok(None) => None,
                        Err(e) => {
                            let err = ProviderError::new(
                                ErrorClass::Protocol,
                                &st.provider,
                                e.to_string(),
                            );
                            Some((Err(err), st))
                        }
                    };
                }
                Ok(Some(Err(e))) => {
                    st.finished = true;
                    let mut err = transport_error(&st.provider, &e);
                    err.message = format!("the stream broke: {}", err.message);
                    return Some((Err(err), st));
                }
                Err(_) => {
                    st.finished = true;
                    let err = ProviderError::new(
                        ErrorClass::Timeout,
                        &st.provider,
                        format!("the stream stalled for {idle:?}"),
                    );
                    return Some((Err(err), st));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_every_vendor() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            parse_error_body(openai),
            (
                "requests".into(),
                "rate_limit_exceeded".into(),
                "Rate limit reached".into()
            )
        );
        let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(parse_error_body(anthropic).0, "overloaded_error");
        let vllm = br#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#;
        assert_eq!(
            parse_error_body(vllm),
            ("BadRequestError".into(), "400".into(), "bad".into())
        );
        let gemini = br#"{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(parse_error_body(gemini).0, "RESOURCE_EXHAUSTED");
        assert_eq!(
            parse_error_body(b"<html>Bad Gateway</html>").2,
            "<html>Bad Gateway</html>"
        );
    }

    #[test]
    fn a_body_over_its_cap_is_a_502_naming_the_key_to_raise() {
        let limit = BodyLimit::chat(&ServerConfig {
            max_upstream_body_size: 8 * 1024 * 1024,
            ..ServerConfig::default()
        });
        let e = crate::error::GatewayError::from(too_large("oai", limit, Some(300 << 20)));
        assert_eq!((e.status, e.code.as_str()), (502, RESPONSE_TOO_LARGE));
        assert!(e.message.contains("8 MiB"), "{}", e.message);
        assert!(e.message.contains("server.max_upstream_body_size"));
    }

    #[test]
    fn a_key_quoted_back_by_the_upstream_is_scrubbed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "Bearer sk-live-0123456789abcdef".parse().unwrap(),
        );
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-live-0123456789abcdef.","code":"invalid_api_key"}}"#;
        let e = Credentials::of(&headers).scrub(error_from_response("oai", 401, &headers, body));
        assert_eq!(e.message, "Incorrect API key provided: [REDACTED].");
    }

    #[test]
    fn retry_after_in_both_spellings() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn a_context_overflow_400_is_classified_from_its_text() {
        let body = br#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        let e = error_from_response("oai", 400, &HeaderMap::new(), body);
        assert_eq!(e.class, ErrorClass::ContextLength);
        assert_eq!(e.upstream_code.as_deref(), Some("context_length_exceeded"));
    }
}
