//! Routing and resilience end to end: an in-process gateway in front of in-process upstreams
//! that speak the OpenAI wire format, one axum app per deployment on its own port. Each
//! upstream counts what it receives (in total and per `Authorization` key), answers with its
//! own name so a test can tell who served, and misbehaves on demand: 500, a 429 with
//! Retry-After for one key, 401, a context-length 400, a plain 400, a fixed latency, a request
//! held open until the test releases it, or no answer at all.
//!
//! Every assertion is about what a user of the gateway would notice (status, body, headers,
//! which upstream served) or what the upstreams themselves counted; none is about timing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
use switchyard_core::Config;
use switchyard_server::ingress::AppState;
use tokio::sync::Semaphore;

// ---------------------------------------------------------------------------------------------
// The mock upstream
// ---------------------------------------------------------------------------------------------

/// How an upstream answers.
#[derive(Clone, Debug, PartialEq)]
enum Behaviour {
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
const BAD_REQUEST_MESSAGE: &str =
    "Invalid value for 'temperature': 7 is greater than the maximum of 2 - 'temperature'";

struct Upstream {
    name: String,
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
    async fn start(name: &str) -> Arc<Upstream> {
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

    fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    /// Holds the next `n` requests open until [`Upstream::release`].
    fn hold(&self, n: usize) {
        self.hold_next.store(n, Ordering::SeqCst);
    }

    fn release(&self, n: usize) {
        self.release.add_permits(n);
    }

    fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn key_count(&self, key: &str) -> usize {
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

/// A provider entry for `up` (a provider per deployment), with optional extra fields.
fn provider(up: &Upstream, extra: &str) -> String {
    format!(
        "  p-{}: {{ kind: openai_compatible, base_url: \"{}\"{}{} }}\n",
        up.name,
        up.url(),
        if extra.is_empty() { "" } else { ", " },
        extra
    )
}

/// A model entry named after `up`, served by its provider.
fn model(up: &Upstream, extra: &str) -> String {
    format!(
        "  {}: {{ provider: p-{}{}{} }}\n",
        up.name,
        up.name,
        if extra.is_empty() { "" } else { ", " },
        extra
    )
}

/// A port with nothing listening on it: connections are refused.
async fn dead_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

// ---------------------------------------------------------------------------------------------
// The gateway
// ---------------------------------------------------------------------------------------------

/// Small backoffs keep the retries fast; tests override what they need.
const FAST_RETRY: &str = "{ backoff: 1ms, max_backoff: 5ms }";

struct Gateway {
    url: String,
    client: reqwest::Client,
    state: Arc<AppState>,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    /// The upstream that served, from the content it answered with.
    fn served_by(&self) -> String {
        let content = self.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no content in {}", self.body));
        content
            .strip_prefix("served by ")
            .unwrap_or(content)
            .to_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

async fn start_gateway(config: Config) -> Gateway {
    let built = switchyard_server::build(config).await.unwrap();
    let state = built.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchyard_server::serve(
        listener,
        built,
        std::future::pending(),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Gateway { url, client, state }
}

/// A gateway for a YAML config; `records` are turned off.
async fn gateway(yaml: &str) -> Gateway {
    let yaml = format!("{yaml}\ndatabase: {{ url: none }}\n");
    let config = Config::from_yaml(&yaml, &|_| None)
        .unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
    start_gateway(config).await
}

fn chat_body(model: &str, prompt: &str, stream: bool) -> Value {
    json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": prompt}]
    })
}

impl Gateway {
    async fn send(&self, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut rb = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb.send().await.unwrap()
    }

    async fn chat_full(&self, model: &str, prompt: &str, headers: &[(&str, &str)]) -> Reply {
        let response = self.send(&chat_body(model, prompt, false), headers).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn chat(&self, model: &str) -> Reply {
        self.chat_full(model, "Say hi.", &[]).await
    }

    /// A request that must succeed; returns who served it.
    async fn served(&self, model: &str) -> String {
        let r = self.chat(model).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.served_by()
    }

    /// A streamed request: the status and the whole SSE text.
    async fn stream(&self, model: &str) -> (u16, String) {
        let response = self.send(&chat_body(model, "Say hi.", true), &[]).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    async fn admin_health(&self) -> Value {
        self.client
            .get(format!("{}/admin/health", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn breaker(&self, deployment: &str) -> String {
        let h = self.admin_health().await;
        h["deployments"][deployment]["breaker"]
            .as_str()
            .unwrap_or_else(|| panic!("no breaker for {deployment} in {h}"))
            .to_owned()
    }
}

/// The content of an SSE text, concatenated from its `delta.content`s.
fn sse_content(text: &str) -> String {
    let mut out = String::new();
    for frame in text.split("\n\n") {
        let Some(data) = frame.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
        assert!(v.get("error").is_none(), "an error frame: {text}");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(c);
        }
    }
    out
}

/// Polls `cond` every 20 ms for at most `limit`.
async fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

// ---------------------------------------------------------------------------------------------
// 1. Error classes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rate_limited_key_moves_to_the_other_key_and_stays_out_of_rotation() {
    let up = Upstream::start("pooled").await;
    up.set(Behaviour::RateLimitKey("key-a".into()));
    let gw = gateway(&format!(
        "providers:\n{}models:\n{}resilience: {{ retry: {FAST_RETRY} }}",
        provider(&up, "api_keys: [key-a, key-b]"),
        model(&up, ""),
    ))
    .await;

    // The pool starts with key A; whichever key the first request drew, A is hit by the
    // second at the latest, and its 429 is answered through key B on the same deployment.
    for _ in 0..2 {
        let r = gw.chat("pooled").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.served_by(), "pooled");
        assert_eq!(r.header("x-switchyard-model").as_deref(), Some("pooled"));
    }
    assert_eq!(up.key_count("key-a"), 1, "key A is called once");

    // Key A is cooling down for its Retry-After (30 s): nothing more reaches it.
    for _ in 0..10 {
        assert_eq!(gw.served("pooled").await, "pooled");
    }
    assert_eq!(
        up.key_count("key-a"),
        1,
        "a rate-limited key was used again"
    );
    assert_eq!(up.key_count("key-b"), 12);
    let health = gw.admin_health().await;
    let keys = health["providers"]["p-pooled"]["keys"].as_array().unwrap();
    // Rate limits are per model: key A cools down for this deployment's upstream model only.
    let limited = keys[0]["rate_limited"].as_object().unwrap();
    assert_eq!(limited.len(), 1, "{health}");
    assert!(
        limited.values().all(|ms| ms.as_u64().unwrap() > 20_000),
        "{health}"
    );
    assert!(
        keys[1]["rate_limited"].as_object().unwrap().is_empty(),
        "{health}"
    );
    assert_eq!(keys[1]["state"], "ready", "{health}");
}

#[tokio::test]
async fn a_5xx_is_retried_on_the_same_target_then_falls_back() {
    let primary = Upstream::start("primary").await;
    let backup = Upstream::start("backup").await;
    primary.set(Behaviour::ServerError);
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  smart:\n    targets: [primary, backup]\n    retry: {{ retries_per_target: 1, backoff: 1ms, max_backoff: 5ms }}",
        provider(&primary, ""),
        provider(&backup, ""),
        model(&primary, ""),
        model(&backup, ""),
    ))
    .await;

    let r = gw.chat("smart").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "backup");
    assert_eq!(primary.count(), 2, "one call and one retry on the primary");
    assert_eq!(backup.count(), 1);
    assert_eq!(r.header("x-switchyard-model").as_deref(), Some("backup"));
    assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("3"));
    let path = r.header("x-switchyard-fallback-path").unwrap_or_default();
    assert!(path.contains("primary"), "fallback path: {path:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_zero_falls_back_instead_of_hammering_the_same_target() {
    // A keyless provider and a one-key provider: neither has another key to turn to.
    for (name, keys) in [("keyless", ""), ("onekey", "api_key: sk-only")] {
        let limited = Upstream::start(name).await;
        let backup = Upstream::start("backup").await;
        limited.set(Behaviour::RateLimitedNow);
        let gw = gateway(&format!(
            "providers:\n{}{}models:\n{}{}routes:\n  smart:\n    targets: [{name}, backup]\n    retry: {{ max_attempts: 5, retries_per_target: 1, backoff: 1ms, max_backoff: 5ms }}",
            provider(&limited, keys),
            provider(&backup, ""),
            model(&limited, ""),
            model(&backup, ""),
        ))
        .await;

        let r = gw.chat("smart").await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.served_by(), "backup", "{name}");
        assert_eq!(
            limited.count(),
            1,
            "{name}: the rate-limited target was called again"
        );
        assert_eq!(r.header("x-switchyard-attempts").as_deref(), Some("2"));
    }
}

#[tokio::test]
async fn a_rejected_credential_moves_to_the_next_provider() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    a.set(Behaviour::Unauthorized);
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  smart: {{ targets: [a, b], retry: {FAST_RETRY} }}",
        provider(&a, "api_key: sk-rejected"),
        provider(&b, "api_key: sk-good"),
        model(&a, ""),
        model(&b, ""),
    ))
    .await;

    let r = gw.chat("smart").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "b");
    assert_eq!(a.count(), 1, "a 401 is not retried on the same provider");
    assert_eq!(b.key_count("sk-good"), 1);

    // The rejected key is set aside: the next request goes straight to B.
    assert_eq!(gw.served("smart").await, "b");
    assert_eq!(a.count(), 1);
}

#[tokio::test]
async fn a_context_length_error_goes_only_to_a_larger_context_target() {
    let small = Upstream::start("small").await;
    let mid = Upstream::start("mid").await;
    let large = Upstream::start("large").await;
    small.set(Behaviour::ContextLength);
    mid.set(Behaviour::ContextLength);
    let gw = gateway(&format!(
        "providers:\n{}{}{}models:\n{}{}{}routes:\n  long: {{ targets: [small, mid, large], retry: {FAST_RETRY} }}",
        provider(&small, ""),
        provider(&mid, ""),
        provider(&large, ""),
        model(&small, "context_window: 8192"),
        model(&mid, "context_window: 8192"),
        model(&large, "context_window: 128000"),
    ))
    .await;

    // The prompt is short by the gateway's estimate; only the upstream knows it does not fit.
    let r = gw.chat("long").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "large");
    assert_eq!(
        (small.count(), mid.count(), large.count()),
        (1, 0, 1),
        "(small, mid, large) calls"
    );
}

#[tokio::test]
async fn a_context_length_error_uses_the_context_window_fallbacks() {
    let small = Upstream::start("small").await;
    let mid = Upstream::start("mid").await;
    let large = Upstream::start("large").await;
    small.set(Behaviour::ContextLength);
    mid.set(Behaviour::ContextLength);
    let gw = gateway(&format!(
        "providers:\n{}{}{}models:\n{}{}{}routes:\n  chat:\n    targets: [small, mid]\n    fallbacks: {{ context_window: [mid, large] }}\n    retry: {FAST_RETRY}",
        provider(&small, ""),
        provider(&mid, ""),
        provider(&large, ""),
        model(&small, "context_window: 8192"),
        model(&mid, "context_window: 8192"),
        model(&large, "context_window: 128000"),
    ))
    .await;

    let r = gw.chat("chat").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "large");
    assert_eq!(
        (small.count(), mid.count(), large.count()),
        (1, 0, 1),
        "(small, mid, large) calls"
    );
}

#[tokio::test]
async fn a_plain_bad_request_is_returned_at_once_with_the_upstream_message() {
    let primary = Upstream::start("primary").await;
    let backup = Upstream::start("backup").await;
    primary.set(Behaviour::BadRequest);
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  smart: {{ targets: [primary, backup], retry: {FAST_RETRY} }}",
        provider(&primary, ""),
        provider(&backup, ""),
        model(&primary, ""),
        model(&backup, ""),
    ))
    .await;

    let r = gw.chat("smart").await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.body["error"]["message"], BAD_REQUEST_MESSAGE,
        "{}",
        r.body
    );
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(primary.count(), 1, "a bad request is not retried");
    assert_eq!(backup.count(), 0, "a bad request does not fall back");
}

// ---------------------------------------------------------------------------------------------
// 2. Primary down
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_primary_is_invisible_to_the_application() {
    let primary = Upstream::start("primary").await;
    let backup = Upstream::start("backup").await;
    primary.set(Behaviour::ServerError);
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  smart: {{ targets: [primary, backup] }}\nresilience: {{ retry: {FAST_RETRY} }}",
        provider(&primary, ""),
        provider(&backup, ""),
        model(&primary, ""),
        model(&backup, ""),
    ))
    .await;

    assert_eq!(gw.served("smart").await, "backup");

    let (status, text) = gw.stream("smart").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(sse_content(&text), "served by backup", "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(primary.count() >= 2, "the primary was tried both times");
    assert_eq!(backup.count(), 2);
}

#[tokio::test]
async fn a_primary_refusing_connections_is_invisible_to_the_application() {
    let backup = Upstream::start("backup").await;
    let dead = dead_port().await;
    let gw = gateway(&format!(
        "providers:\n  p-down: {{ kind: openai_compatible, base_url: \"http://{dead}/v1\", timeouts: {{ connect: 2s }} }}\n{}models:\n  down: {{ provider: p-down }}\n{}routes:\n  smart: {{ targets: [down, backup] }}\nresilience: {{ retry: {FAST_RETRY} }}",
        provider(&backup, ""),
        model(&backup, ""),
    ))
    .await;

    let r = gw.chat("smart").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "backup");
    let path = r.header("x-switchyard-fallback-path").unwrap_or_default();
    assert!(path.contains("down"), "fallback path: {path:?}");

    let (status, text) = gw.stream("smart").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(sse_content(&text), "served by backup", "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(backup.count(), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Circuit breaker
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_then_probes_and_closes() {
    let flaky = Upstream::start("flaky").await;
    let backup = Upstream::start("backup").await;
    flaky.set(Behaviour::ServerError);
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  smart:\n    targets: [flaky, backup]\n    retry: {{ retries_per_target: 0, backoff: 1ms, max_backoff: 5ms }}\nresilience:\n  breaker: {{ consecutive_failures: 3, cooldown: 500ms }}",
        provider(&flaky, ""),
        provider(&backup, ""),
        model(&flaky, ""),
        model(&backup, ""),
    ))
    .await;

    for _ in 0..3 {
        assert_eq!(gw.served("smart").await, "backup");
    }
    assert_eq!(flaky.count(), 3);
    assert_eq!(gw.breaker("flaky").await, "open");

    // While open, the flaky deployment is not called and requests still succeed.
    for _ in 0..10 {
        assert_eq!(gw.served("smart").await, "backup");
    }
    assert_eq!(flaky.count(), 3, "an open breaker let requests through");

    // After the cooldown, one probe goes through; its success closes the breaker.
    tokio::time::sleep(Duration::from_millis(600)).await;
    flaky.set(Behaviour::Ok);
    assert_eq!(gw.served("smart").await, "flaky");
    assert_eq!(flaky.count(), 4, "exactly one probe");
    assert_eq!(gw.breaker("flaky").await, "closed");
    for _ in 0..3 {
        assert_eq!(gw.served("smart").await, "flaky");
    }
    assert_eq!(flaky.count(), 7);
}

// ---------------------------------------------------------------------------------------------
// 4. Strategies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn weighted_70_30_splits_traffic_70_30() {
    let heavy = Upstream::start("heavy").await;
    let light = Upstream::start("light").await;
    let gw = Arc::new(
        gateway(&format!(
            "providers:\n{}{}models:\n{}{}routes:\n  split:\n    strategy: weighted\n    targets: [{{ model: heavy, weight: 70 }}, {{ model: light, weight: 30 }}]",
            provider(&heavy, ""),
            provider(&light, ""),
            model(&heavy, ""),
            model(&light, ""),
        ))
        .await,
    );

    const N: usize = 2000;
    const CONCURRENCY: usize = 16;
    let mut served = HashMap::<String, usize>::new();
    for _ in 0..N / CONCURRENCY {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let gw = gw.clone();
            batch.spawn(async move { gw.served("split").await });
        }
        while let Some(who) = batch.join_next().await {
            *served.entry(who.unwrap()).or_default() += 1;
        }
    }
    let total = (N / CONCURRENCY) * CONCURRENCY;
    assert_eq!(heavy.count() + light.count(), total, "one call per request");
    assert_eq!(
        served.get("heavy").copied().unwrap_or_default(),
        heavy.count()
    );
    let share = heavy.count() as f64 / total as f64;
    assert!(
        (0.65..=0.75).contains(&share),
        "heavy got {:.1}% of {total} requests",
        share * 100.0
    );
}

#[tokio::test]
async fn lowest_latency_prefers_the_fast_upstream() {
    let fast = Upstream::start("fast").await;
    let slow = Upstream::start("slow").await;
    fast.set_latency(Duration::from_millis(50));
    slow.set_latency(Duration::from_millis(300));
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  quick: {{ strategy: lowest_latency, targets: [slow, fast] }}",
        provider(&fast, ""),
        provider(&slow, ""),
        model(&fast, ""),
        model(&slow, ""),
    ))
    .await;

    // Warm both so that each has a latency measurement.
    assert_eq!(gw.served("fast").await, "fast");
    assert_eq!(gw.served("slow").await, "slow");
    let (fast0, slow0) = (fast.count(), slow.count());

    const N: usize = 60;
    for _ in 0..N {
        gw.served("quick").await;
    }
    let to_fast = fast.count() - fast0;
    assert_eq!(to_fast + slow.count() - slow0, N);
    assert!(
        to_fast * 100 > N * 80,
        "only {to_fast} of {N} requests went to the fast upstream"
    );
}

#[tokio::test]
async fn least_busy_avoids_the_upstream_with_requests_in_flight() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gw = Arc::new(
        gateway(&format!(
            "providers:\n{}{}models:\n{}{}routes:\n  busy: {{ strategy: least_busy, targets: [a, b] }}",
            provider(&a, ""),
            provider(&b, ""),
            model(&a, ""),
            model(&b, ""),
        ))
        .await,
    );

    // Three requests held open on A (sent to A directly, so that all three land there).
    a.hold(3);
    let mut held = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let gw = gw.clone();
        held.spawn(async move { gw.served("a").await });
    }
    assert!(
        eventually(Duration::from_secs(10), || a.count() == 3).await,
        "the held requests did not reach A"
    );

    // A random pick would choose A half the time; least_busy must pick B every time.
    for _ in 0..5 {
        assert_eq!(gw.served("busy").await, "b");
    }
    assert_eq!((a.count(), b.count()), (3, 5));

    a.release(3);
    while let Some(who) = held.join_next().await {
        assert_eq!(who.unwrap(), "a");
    }
}

#[tokio::test]
async fn lowest_cost_sends_everything_to_the_cheap_model() {
    let expensive = Upstream::start("expensive").await;
    let cheap = Upstream::start("cheap").await;
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  thrifty: {{ strategy: lowest_cost, targets: [expensive, cheap] }}",
        provider(&expensive, ""),
        provider(&cheap, ""),
        model(&expensive, "price: { input: 10, output: 30 }"),
        model(&cheap, "price: { input: 0.1, output: 0.1 }"),
    ))
    .await;

    for _ in 0..20 {
        assert_eq!(gw.served("thrifty").await, "cheap");
    }
    assert_eq!((expensive.count(), cheap.count()), (0, 20));
}

// ---------------------------------------------------------------------------------------------
// 5. Conditional routing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_header_rule_sends_premium_requests_to_the_premium_model() {
    let premium = Upstream::start("premium").await;
    let standard = Upstream::start("standard").await;
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  chat:\n    targets: [standard]\n    rules:\n      - when: {{ headers: {{ x-tier: premium }} }}\n        targets: [premium]",
        provider(&premium, ""),
        provider(&standard, ""),
        model(&premium, ""),
        model(&standard, ""),
    ))
    .await;

    let r = gw
        .chat_full("chat", "Say hi.", &[("x-tier", "premium")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "premium");
    let r = gw.chat_full("chat", "Say hi.", &[("x-tier", "free")]).await;
    assert_eq!(r.served_by(), "standard");
    assert_eq!(gw.served("chat").await, "standard");
    assert_eq!((premium.count(), standard.count()), (1, 2));
}

#[tokio::test]
async fn a_prompt_length_rule_sends_long_prompts_to_the_long_context_model() {
    let long = Upstream::start("long").await;
    let short = Upstream::start("short").await;
    let gw = gateway(&format!(
        "providers:\n{}{}models:\n{}{}routes:\n  chat:\n    targets: [short]\n    rules:\n      - when: {{ min_prompt_tokens: 500 }}\n        targets: [long]",
        provider(&long, ""),
        provider(&short, ""),
        model(&long, "context_window: 128000"),
        model(&short, "context_window: 8192"),
    ))
    .await;

    let long_prompt = "Summarise this paragraph please. ".repeat(125); // ~4,000 characters
    assert!(long_prompt.len() >= 4000);
    let r = gw.chat_full("chat", &long_prompt, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.served_by(), "long");
    assert_eq!(gw.served("chat").await, "short");
    assert_eq!((long.count(), short.count()), (1, 1));
}

// ---------------------------------------------------------------------------------------------
// 6. Hot reload
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("switchyard-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `text` to a temporary file and renames it over `path`, as editors do.
fn save_like_an_editor(path: &Path, text: &str) {
    let tmp = path.with_file_name(".switchyard.yaml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn a_config_change_is_picked_up_without_failing_requests_in_flight() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let config_for = |target: &str| {
        format!(
            "providers:\n{}{}models:\n{}{}routes:\n  smart: {{ targets: [{target}] }}\ndatabase: {{ url: none }}\n",
            provider(&a, ""),
            provider(&b, ""),
            model(&a, ""),
            model(&b, ""),
        )
    };
    let dir = TempDir::new("reload");
    let path = dir.0.join("switchyard.yaml");
    std::fs::write(&path, config_for("a")).unwrap();
    let gw = Arc::new(start_gateway(Config::load(&path).unwrap()).await);
    let _watcher = switchyard_server::reload::watch(path.clone(), gw.state.clone()).unwrap();
    assert_eq!(gw.served("smart").await, "a");

    // A slow request on A, in flight across the swap: held open until the new config serves.
    a.hold(1);
    let in_flight = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.chat("smart").await })
    };
    assert!(
        eventually(Duration::from_secs(10), || a.count() == 2).await,
        "the slow request did not reach A"
    );

    save_like_an_editor(&path, &config_for("b"));
    let mut switched = false;
    for _ in 0..50 {
        // at most 50 × (a request + 100 ms) ≈ 5 s
        if gw.served("smart").await == "b" {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new config was not picked up within 5 s");
    assert_eq!(gw.served("smart").await, "b");

    a.release(1);
    let r = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the in-flight request did not finish")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.served_by(),
        "a",
        "the in-flight request finished on the old config"
    );

    // A broken file is rejected and the running config keeps serving.
    let broken = config_for("b").replace("targets: [b]", "targets: [no-such-model]");
    save_like_an_editor(&path, &broken);
    tokio::time::sleep(Duration::from_millis(800)).await; // past the watcher's debounce
    assert!(
        !switchyard_server::reload::apply(&path, &gw.state),
        "a config with an unknown model was accepted"
    );
    let before = b.count();
    for _ in 0..3 {
        assert_eq!(gw.served("smart").await, "b");
    }
    assert_eq!(b.count(), before + 3);
}

// ---------------------------------------------------------------------------------------------
// 7. Overall deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_request_deadline_caps_all_attempts_together() {
    let stuck_a = Upstream::start("stuck-a").await;
    let stuck_b = Upstream::start("stuck-b").await;
    stuck_a.set(Behaviour::Hang);
    stuck_b.set(Behaviour::Hang);
    // Without the deadline, four attempts of 200 ms each (plus backoffs) would be allowed.
    let gw = gateway(&format!(
        "server: {{ request_deadline: 500ms }}\nproviders:\n{}{}models:\n{}{}routes:\n  stuck:\n    targets: [stuck-a, stuck-b]\n    retry: {{ max_attempts: 4, retries_per_target: 2, attempt_timeout: 200ms, backoff: 1ms, max_backoff: 5ms }}",
        provider(&stuck_a, ""),
        provider(&stuck_b, ""),
        model(&stuck_a, ""),
        model(&stuck_b, ""),
    ))
    .await;

    let r = tokio::time::timeout(Duration::from_secs(10), gw.chat("stuck"))
        .await
        .expect("the gateway held the request past its deadline");
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.body["error"]["type"], "timeout_error", "{}", r.body);

    let (status, text) = tokio::time::timeout(Duration::from_secs(10), gw.stream("stuck"))
        .await
        .expect("the gateway held the stream past its deadline");
    assert_eq!(status, 504, "{text}");
    assert!(stuck_a.count() + stuck_b.count() >= 2);
}
