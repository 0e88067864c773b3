//! `mock-upstream`: a fast upstream for benchmarks, speaking the wire formats the gateway's
//! providers speak. It owns the fake provider side of every scenario and routes each request
//! to the module of its wire format: [`openai`] answers `POST /v1/chat/completions` (a fixed
//! `chat.completion`, or an SSE stream of `--chunks` one-word chunks `--chunk-interval-ms`
//! apart), `POST /v1/embeddings` and `GET /v1/models`; [`anthropic`] answers `POST /v1/messages`
//! with the same reply and token counts in the Messages API's format (a JSON `message`, or its
//! named stream events paced alike). Streams of every format share one pacing body
//! ([`paced`]). `--latency-ms` delays every answer's headers;
//! `--fail-percent` answers a share of chat and messages requests with `--fail-status` instead. It does as little work per request
//! as it can so that the gateway under test, not the mock, dominates.

mod anthropic;
mod openai;
mod paced;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};

use paced::{Paced, Script};

#[derive(Parser, Debug)]
#[command(about = "OpenAI- and Anthropic-compatible mock upstream for Switchyard benchmarks")]
struct Args {
    /// Address to listen on (127.0.0.1 only is sensible).
    #[arg(long, default_value = "127.0.0.1:4201")]
    listen: SocketAddr,
    /// Content chunks (tokens) per streamed answer.
    #[arg(long, default_value_t = 100)]
    chunks: usize,
    /// Milliseconds between streamed content chunks (0 = back to back).
    #[arg(long, default_value_t = 10)]
    chunk_interval_ms: u64,
    /// Milliseconds to wait before answering any request (0 = none).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Tokio worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Percentage (0-100) of chat and messages requests answered with an error instead
    /// (a fixed pseudo-random sequence, so failures sometimes come in a row), for fallback and
    /// soak runs.
    #[arg(long, default_value_t = 0)]
    fail_percent: u64,
    /// HTTP status of those errors (repeatable: the failures cycle through the list).
    #[arg(long = "fail-status", default_values_t = [500u16])]
    fail_statuses: Vec<u16>,
}

/// Settings shared by every request handler.
pub struct Config {
    chunks: usize,
    chunk_interval: Duration,
    latency: Duration,
    fail_percent: u64,
    fail_statuses: Vec<StatusCode>,
    /// Chat and messages requests seen, and the failures answered (for --fail-percent).
    requests: AtomicU64,
    failures: AtomicU64,
    /// The Anthropic stream frames that do not depend on the request.
    anthropic: Arc<anthropic::Prebuilt>,
}

/// A fixed body, or a streamed answer in any wire format.
pub type RespBody = Either<Full<Bytes>, Paced>;

/// Words the streamed answers cycle through, one per content chunk.
pub const WORDS: &[&str] = &[
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];
/// The text of every non-streamed answer (no characters that need JSON escaping).
pub const REPLY: &str = "This is a fixed reply from the Switchyard benchmark mock.";
/// Output tokens reported for [`REPLY`].
pub const COMPLETION_TOKENS: u64 = 14;
pub const CREATED: u64 = 1_700_000_000;

fn main() {
    let args = Args::parse();
    let config = Arc::new(Config {
        chunks: args.chunks,
        chunk_interval: Duration::from_millis(args.chunk_interval_ms),
        latency: Duration::from_millis(args.latency_ms),
        fail_percent: args.fail_percent.min(100),
        fail_statuses: args
            .fail_statuses
            .iter()
            .filter_map(|code| StatusCode::from_u16(*code).ok())
            .collect(),
        requests: AtomicU64::new(0),
        failures: AtomicU64::new(0),
        anthropic: Arc::new(anthropic::Prebuilt::new(args.chunks)),
    });
    let rt = switchyard_bench::runtime(args.threads);
    eprintln!("mock-upstream listening on {}", args.listen);
    let result = rt.block_on(switchyard_bench::serve(args.listen, move |req| {
        handle(req, config.clone())
    }));
    if let Err(err) = result {
        eprintln!("mock-upstream: cannot serve on {}: {err}", args.listen);
        std::process::exit(1);
    }
}

async fn handle(
    req: Request<Incoming>,
    config: Arc<Config>,
) -> Result<Response<RespBody>, Infallible> {
    let (parts, body) = req.into_parts();
    // Always drain the request body so the connection stays reusable.
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(error(StatusCode::BAD_REQUEST, "unreadable request body")),
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    let response = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/v1/chat/completions" | "/v1/messages") if injected_failure(&config) => {
            let n = config.failures.fetch_add(1, Ordering::Relaxed) as usize;
            let status = config.fail_statuses[n % config.fail_statuses.len()];
            let mut response = error(status, "injected failure (--fail-percent)");
            if status == StatusCode::TOO_MANY_REQUESTS {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("0"));
            }
            response
        }
        (&Method::POST, "/v1/chat/completions") => openai::chat(&body, &config),
        (&Method::POST, "/v1/messages") => anthropic::messages(&parts.headers, &body, &config),
        (&Method::POST, "/v1/embeddings") => json_response(openai::embeddings(&body)),
        (&Method::GET, "/v1/models") => json_response(openai::MODELS.to_owned()),
        (_, "/health") => json_response("{\"status\":\"ok\"}".to_owned()),
        _ => error(StatusCode::NOT_FOUND, "no such route on the mock upstream"),
    };
    Ok(response)
}

/// Whether this chat or messages request is one of the `--fail-percent` that fail: request n
/// fails when a hash of n (splitmix64's finalizer: the same sequence every run, as if random)
/// falls in the first P of 100 buckets.
fn injected_failure(config: &Config) -> bool {
    if config.fail_percent == 0 || config.fail_statuses.is_empty() {
        return false;
    }
    let n = config.requests.fetch_add(1, Ordering::Relaxed);
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % 100 < config.fail_percent
}

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"mock-model\"".to_owned())
}

pub fn json_response(body: String) -> Response<RespBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A `text/event-stream` answer releasing `script`'s frames at the configured pace.
pub fn event_stream(script: Box<dyn Script>, config: &Config) -> Response<RespBody> {
    let sse = Paced::new(script, config.chunks, config.chunk_interval);
    let mut response = Response::new(Either::Right(sse));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An error in OpenAI's shape.
pub fn error(status: StatusCode, message: &str) -> Response<RespBody> {
    let mut response = json_response(format!(
        "{{\"error\":{{\"message\":{},\"type\":\"invalid_request_error\"}}}}",
        json_string(message)
    ));
    *response.status_mut() = status;
    response
}
