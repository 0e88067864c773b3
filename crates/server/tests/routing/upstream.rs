//! The mock upstream: an OpenAI-compatible chat endpoint on a port of its own that answers
//! with its name, counts what it receives, and fails, slows down or holds requests on demand.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// How an upstream answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// 200 with its name as the content.
    Ok,
    /// 500 `server_error`.
    ServerError,
    /// 429 with `retry-after: 30` for this key; 200 for every other key.
    RateLimitKey(String),
    /// 429 with `retry-after: 0` for every key.
    RateLimitedNow,
    /// 401 `invalid_api_key`.
    Unauthorized,
    /// 400 `context_length_exceeded` (an 8k model).
    ContextLength,
    /// 400 `invalid_request_error`.
    BadRequest,
    /// Never answers.
    Hang,
}

/// The message of [`Behaviour::BadRequest`], which the client must see unchanged.
pub const BAD_REQUEST_MESSAGE: &str =
    "Invalid value for 'temperature': 7 is greater than the maximum of 2 - 'temperature'";

pub struct Upstream {
    pub name: String,
    addr: SocketAddr,
    behaviour: Mutex<Behaviour>,
    latency: Mutex<Duration>,
    /// The next this-many requests wait for a permit of `release` before answering.
    hold_next: AtomicUsize,
    release: Semaphore,
    requests: AtomicUsize,
    by_key: Mutex<HashMap<String, usize>>,
}

impl Upstream {
    pub async fn start(name: &str) -> Arc<Upstream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Arc::new(Upstream {
            name: name.to_owned(),
            addr: listener.local_addr().unwrap(),
            behaviour: Mutex::new(Behaviour::Ok),
            latency: Mutex::new(Duration::ZERO),
            hold_next: AtomicUsize::new(0),
            release: Semaphore::new(0),
            requests: AtomicUsize::new(0),
            by_key: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(answer))
            .with_state(up.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        up
    }

    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    pub fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    /// Holds the next `n` requests open until [`Upstream::release`].
    pub fn hold(&self, n: usize) {
        self.hold_next.store(n, Ordering::SeqCst);
    }

    pub fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn key_count(&self, key: &str) -> usize {
        self.by_key
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or_default()
    }
}

/// OpenAI's 429 for too many requests, with its `retry-after` (seconds).
fn rate_limited(retry_after: &'static str) -> Response {
    let mut r = openai_error(
        429,
        "Rate limit reached",
        "requests",
        None,
        Some("rate_limit_exceeded"),
    );
    r.headers_mut().insert(
        "retry-after",
        axum::http::HeaderValue::from_static(retry_after),
    );
    r
}

fn openai_error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn chunk_frame(id: &str, model: &str, delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

async fn answer(State(up): State<Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> Response {
    up.requests.fetch_add(1, Ordering::SeqCst);
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    *up.by_key.lock().unwrap().entry(key.clone()).or_default() += 1;
    let held = up
        .hold_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if held {
        up.release.acquire().await.unwrap().forget();
    }
    let latency = *up.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let behaviour = up.behaviour.lock().unwrap().clone();
    match behaviour {
        Behaviour::Ok => {}
        Behaviour::RateLimitKey(k) if k != key => {}
        Behaviour::RateLimitKey(_) => return rate_limited("30"),
        Behaviour::RateLimitedNow => return rate_limited("0"),
        Behaviour::ServerError => {
            return openai_error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
                None,
            );
        }
        Behaviour::Unauthorized => {
            return openai_error(
                401,
                "Incorrect API key provided: sk-rej***ted. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                Some("invalid_api_key"),
            );
        }
        Behaviour::ContextLength => {
            return openai_error(
                400,
                "This model's maximum context length is 8192 tokens. However, your messages resulted in 9211 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                Some("messages"),
                Some("context_length_exceeded"),
            );
        }
        Behaviour::BadRequest => {
            return openai_error(
                400,
                BAD_REQUEST_MESSAGE,
                "invalid_request_error",
                Some("temperature"),
                None,
            );
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Response::new(Body::empty());
        }
    }

    let id = format!("chatcmpl-{}", up.name);
    let content = format!("served by {}", up.name);
    if request["stream"].as_bool() == Some(true) {
        let mut frames = vec![
            chunk_frame(
                &id,
                &model,
                json!({"role": "assistant", "content": ""}),
                None,
            ),
            chunk_frame(&id, &model, json!({"content": "served by "}), None),
            chunk_frame(&id, &model, json!({"content": up.name}), None),
            chunk_frame(&id, &model, json!({}), Some("stop")),
        ];
        if request["stream_options"]["include_usage"].as_bool() == Some(true) {
            let usage = json!({
                "id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                "model": model, "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
            });
            frames.push(format!("data: {usage}\n\n"));
        }
        frames.push("data: [DONE]\n\n".to_owned());
        let stream = futures_util::stream::iter(
            frames
                .into_iter()
                .map(|f| Ok::<_, std::io::Error>(Bytes::from(f))),
        );
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let body = json!({
        "id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A port with nothing listening on it: connections are refused.
pub async fn dead_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}
