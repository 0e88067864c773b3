//! The HTTP plumbing every remote adapter shares: building a pooled client, sending with a
//! first-byte timeout, reading bodies with an idle timeout, turning error responses of any
//! vendor into a classified [`ProviderError`], and reading an SSE body as a stream of events.
//!
//! Streams never get a total timeout (a long answer is not a failure); they get a limit on the
//! silence between two reads instead.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use reqwest::header::HeaderMap;
use serde_json::Value;
use switchyard_wire::sse;

use crate::config::Timeouts;
use crate::error::{ErrorClass, ProviderError};

/// Largest error body read from an upstream.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
/// is read and returned as a classified error.
pub async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    timeouts: &Timeouts,
) -> Result<reqwest::Response, ProviderError> {
    let response = match tokio::time::timeout(timeouts.first_byte, request.send()).await {
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
    Err(error_from_response(provider, status, &headers, &body))
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
pub async fn read_body(
    provider: &str,
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
) -> Result<Bytes, ProviderError> {
    let mut body = response.bytes_stream();
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorClass::Timeout,
                    provider,
                    format!("the response body stalled for {idle:?}"),
                ));
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(transport_error(provider, &e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(ProviderError::new(
                        ErrorClass::Protocol,
                        provider,
                        format!("the response body is larger than {limit} bytes"),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}

/// Reads a JSON body into `T`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    provider: &str,
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
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
