//! `mock-upstream`: a fast OpenAI-compatible upstream for benchmarks. It owns
//! the fake provider side of every scenario: `POST /v1/chat/completions`
//! answers a fixed ~300-byte `chat.completion` or, when the request has
//! `"stream": true`, an SSE stream of `--chunks` one-word
//! `chat.completion.chunk` frames `--chunk-interval-ms` apart, a final
//! `finish_reason: "stop"` chunk, a usage chunk when
//! `stream_options.include_usage` is set, and `data: [DONE]`.
//! `POST /v1/embeddings` and `GET /v1/models` return small fixed bodies.
//! `--latency-ms` delays every answer's headers. It does as little work per
//! request as it can so that the gateway under test, not the mock, dominates.

use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tokio::time::{Interval, MissedTickBehavior};

#[derive(Parser, Debug)]
#[command(about = "OpenAI-compatible mock upstream for Switchyard benchmarks")]
struct Args {
    /// Address to listen on (127.0.0.1 only is sensible).
    #[arg(long, default_value = "127.0.0.1:4201")]
    listen: SocketAddr,
    /// Content chunks per streamed completion.
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
}

/// Settings shared by every request handler.
struct Config {
    chunks: usize,
    chunk_interval: Duration,
    latency: Duration,
}

type RespBody = Either<Full<Bytes>, SseBody>;

/// The fields of a chat request the mock looks at; everything else (the
/// messages) is skipped without allocation.
#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Words the streamed completion cycles through, one per chunk.
const WORDS: &[&str] = &[
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];
const CREATED: u64 = 1_700_000_000;
const COMPLETION_TOKENS: u64 = 14;

fn main() {
    let args = Args::parse();
    let config = Arc::new(Config {
        chunks: args.chunks,
        chunk_interval: Duration::from_millis(args.chunk_interval_ms),
        latency: Duration::from_millis(args.latency_ms),
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
        (&Method::POST, "/v1/chat/completions") => chat(&body, &config),
        (&Method::POST, "/v1/embeddings") => json_response(embeddings(&body)),
        (&Method::GET, "/v1/models") => json_response(MODELS.to_owned()),
        (_, "/health") => json_response("{\"status\":\"ok\"}".to_owned()),
        _ => error(StatusCode::NOT_FOUND, "no such route on the mock upstream"),
    };
    Ok(response)
}

fn chat(body: &[u8], config: &Config) -> Response<RespBody> {
    let request: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "request body is not a chat request",
            );
        }
    };
    let model = json_string(request.model.as_deref().unwrap_or("mock-model"));
    let prompt_tokens = (body.len() as u64 / 4).max(1);
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        let sse = SseBody::new(model, prompt_tokens, include_usage, config);
        let mut response = Response::new(Either::Right(sse));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    }
    let total = prompt_tokens + COMPLETION_TOKENS;
    json_response(format!(
        concat!(
            "{{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":{created},",
            "\"model\":{model},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",",
            "\"content\":\"This is a fixed reply from the Switchyard benchmark mock.\"}},",
            "\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":{prompt},",
            "\"completion_tokens\":{completion},\"total_tokens\":{total}}}}}"
        ),
        created = CREATED,
        model = model,
        prompt = prompt_tokens,
        completion = COMPLETION_TOKENS,
        total = total,
    ))
}

fn embeddings(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct EmbeddingRequest<'a> {
        #[serde(default, borrow)]
        model: Option<Cow<'a, str>>,
    }
    let model = serde_json::from_slice::<EmbeddingRequest<'_>>(body)
        .ok()
        .and_then(|r| r.model.map(|m| json_string(&m)))
        .unwrap_or_else(|| "\"mock-embedding\"".to_owned());
    format!(
        concat!(
            "{{\"object\":\"list\",\"data\":[{{\"object\":\"embedding\",\"index\":0,",
            "\"embedding\":[0.0023,-0.0091,0.0154,-0.0042,0.0311,0.0007,-0.0208,0.0119]}}],",
            "\"model\":{model},\"usage\":{{\"prompt_tokens\":8,\"total_tokens\":8}}}}"
        ),
        model = model
    )
}

const MODELS: &str = concat!(
    "{\"object\":\"list\",\"data\":[",
    "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},",
    "{\"id\":\"text-embedding-3-small\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}",
    "]}"
);

/// `s` as a JSON string literal, quotes included.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"mock-model\"".to_owned())
}

fn json_response(body: String) -> Response<RespBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<RespBody> {
    let mut response = json_response(format!(
        "{{\"error\":{{\"message\":{},\"type\":\"invalid_request_error\"}}}}",
        json_string(message)
    ));
    *response.status_mut() = status;
    response
}

/// The SSE body of one streamed completion, produced lazily: content chunk 0
/// is released at once and chunk `i` on the `i`-th tick of an interval,
/// then the stop chunk, the optional usage chunk and `[DONE]` follow at once.
struct SseBody {
    model: String,
    prompt_tokens: u64,
    include_usage: bool,
    chunks: usize,
    interval: Option<Interval>,
    /// Index of the next event: `0..chunks` content, `chunks` stop,
    /// `chunks + 1` usage, `chunks + 2` `[DONE]`, beyond that the end.
    next: usize,
}

impl SseBody {
    fn new(model: String, prompt_tokens: u64, include_usage: bool, config: &Config) -> Self {
        let interval = (!config.chunk_interval.is_zero()).then(|| {
            // The first content chunk goes out at once (see `poll_frame`); the
            // interval paces the rest. Polling an already-due tokio timer would
            // cost up to a millisecond of timer-wheel granularity.
            let start = tokio::time::Instant::now() + config.chunk_interval;
            let mut interval = tokio::time::interval_at(start, config.chunk_interval);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Self {
            model,
            prompt_tokens,
            include_usage,
            chunks: config.chunks,
            interval,
            next: 0,
        }
    }

    fn content_chunk(&self, i: usize) -> String {
        let word = WORDS[i % WORDS.len()];
        let role = if i == 0 {
            "\"role\":\"assistant\","
        } else {
            ""
        };
        format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[{{\"index\":0,",
                "\"delta\":{{{role}\"content\":\"{word}\"}},\"logprobs\":null,",
                "\"finish_reason\":null}}]}}\n\n"
            ),
            created = CREATED,
            model = self.model,
            role = role,
            word = word,
        )
    }

    fn stop_chunk(&self) -> String {
        format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[{{\"index\":0,",
                "\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
            ),
            created = CREATED,
            model = self.model,
        )
    }

    fn usage_chunk(&self) -> String {
        let completion = self.chunks as u64;
        format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[],",
                "\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},",
                "\"total_tokens\":{total}}}}}\n\n"
            ),
            created = CREATED,
            model = self.model,
            prompt = self.prompt_tokens,
            completion = completion,
            total = self.prompt_tokens + completion,
        )
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            let i = this.next;
            let text = if i < this.chunks {
                if i > 0
                    && let Some(interval) = this.interval.as_mut()
                    && interval.poll_tick(cx).is_pending()
                {
                    return Poll::Pending;
                }
                this.content_chunk(i)
            } else if i == this.chunks {
                this.stop_chunk()
            } else if i == this.chunks + 1 {
                if !this.include_usage {
                    this.next += 1;
                    continue;
                }
                this.usage_chunk()
            } else if i == this.chunks + 2 {
                "data: [DONE]\n\n".to_owned()
            } else {
                return Poll::Ready(None);
            };
            this.next += 1;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(text)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.next > self.chunks + 2
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
