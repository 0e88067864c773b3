//! Behaviour at the edges of an upstream call, against an in-process axum upstream that speaks
//! the OpenAI wire format and misbehaves on purpose: a client that disconnects cancels the
//! upstream call, a hanging upstream never holds a request past the deadline, a stalled stream
//! ends with an error event, a dropped connection mid-stream ends with an error event and
//! `[DONE]`, and requests are recorded as they ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use futures_util::StreamExt;
use switchyard_core::Config;

/// What the upstream saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    /// Streams whose body was dropped before the upstream finished sending: the gateway hung up.
    cancelled: AtomicUsize,
}

/// Sets a flag when dropped before `finished` is set: the receiver went away.
struct DropProbe {
    seen: Arc<Seen>,
    finished: std::cell::Cell<bool>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        if !self.finished.get() {
            self.seen.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn chunk(text: &str) -> Bytes {
    let json = serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "up",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    });
    Bytes::from(format!("data: {json}\n\n"))
}

/// Model names choose the behaviour: `slow-forever` streams a chunk every 100 ms for a minute,
/// `hang` never answers, `stall` sends one chunk then goes silent, `cut` sends one chunk then
/// breaks the connection.
async fn upstream(State(seen): State<Arc<Seen>>, body: Bytes) -> Response {
    seen.requests.fetch_add(1, Ordering::SeqCst);
    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    let sse = |body: Body| {
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(body)
            .unwrap()
    };
    match model.as_str() {
        "hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Body::empty())
        }
        "slow-forever" => {
            let probe = DropProbe {
                seen: seen.clone(),
                finished: std::cell::Cell::new(false),
            };
            let frames = futures_util::stream::unfold((0, probe), |(i, probe)| async move {
                if i == 600 {
                    probe.finished.set(true);
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Some((Ok::<_, std::io::Error>(chunk("tick ")), (i + 1, probe)))
            });
            sse(Body::from_stream(frames))
        }
        "stall" => {
            let frames = futures_util::stream::once(async { Ok::<_, std::io::Error>(chunk("a")) })
                .chain(futures_util::stream::pending());
            sse(Body::from_stream(frames))
        }
        "cut" => {
            // The pause lets the first chunk leave before the connection breaks.
            let frames = futures_util::stream::iter([Ok(chunk("partial"))]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err(std::io::Error::other("upstream crashed"))
                }),
            );
            sse(Body::from_stream(frames))
        }
        _ => Response::new(Body::from("{}")),
    }
}

struct Harness {
    gateway: String,
    seen: Arc<Seen>,
}

async fn start(extra_server_yaml: &str) -> Harness {
    start_recording(extra_server_yaml, "none").await
}

/// A gateway whose request records go to `records_url`.
async fn start_recording(extra_server_yaml: &str, records_url: &str) -> Harness {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(upstream))
        .with_state(seen.clone());
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(up, app).await });

    let yaml = format!(
        r#"
server: {{ {extra_server_yaml} }}
providers:
  up:
    kind: openai_compatible
    base_url: "http://{up_addr}/v1"
    timeouts: {{ connect: 1s, first_byte: 30s, idle: 300ms }}
models:
  slow-forever: {{ provider: up }}
  hang: {{ provider: up }}
  stall: {{ provider: up }}
  cut: {{ provider: up }}
database: {{ url: "{records_url}" }}
"#
    );
    let config = Config::from_yaml(&yaml, &|_| None).unwrap();
    let built = switchyard_server::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchyard_server::serve(
        listener,
        built,
        std::future::pending(),
    ));
    Harness { gateway, seen }
}

fn chat_body(model: &str, stream: bool) -> String {
    serde_json::json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]
    })
    .to_string()
}

async fn post_chat(h: &Harness, model: &str, stream: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", h.gateway))
        .header("content-type", "application/json")
        .body(chat_body(model, stream))
        .send()
        .await
        .unwrap()
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

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_cancels_the_upstream_call() {
    let h = start("").await;
    let response = post_chat(&h, "slow-forever", true).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("tick"));
    drop(body); // the client goes away
    let seen = h.seen.clone();
    assert!(
        eventually(Duration::from_secs(10), || seen
            .cancelled
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "the upstream stream was not cancelled after the client left"
    );
}

#[tokio::test]
async fn a_hanging_upstream_never_holds_a_request_past_the_deadline() {
    let h = start("request_deadline: 500ms").await;
    let response = tokio::time::timeout(Duration::from_secs(20), post_chat(&h, "hang", false))
        .await
        .expect("the gateway held the request past its deadline");
    assert_eq!(response.status(), 504);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "timeout_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline")
    );
}

#[tokio::test]
async fn a_stream_past_the_deadline_ends_with_an_error_event() {
    let h = start("request_deadline: 500ms").await;
    let response = post_chat(&h, "slow-forever", true).await;
    assert_eq!(response.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("the stream outlived its deadline")
        .unwrap();
    assert!(text.contains("tick"), "{text}");
    assert!(text.contains("request_deadline_exceeded"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn a_stalled_stream_ends_with_a_timeout_event_after_the_idle_timeout() {
    let h = start("").await;
    let response = post_chat(&h, "stall", true).await;
    let text = tokio::time::timeout(Duration::from_secs(20), response.text())
        .await
        .expect("a stalled upstream stream hung the client")
        .unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert!(frames[0].contains("\"a\""), "{text}");
    assert!(frames[1].contains("upstream_timeout"), "{text}");
    assert_eq!(frames[2], "data: [DONE]");
}

#[tokio::test]
async fn a_connection_cut_mid_stream_ends_with_an_error_event_and_done() {
    let h = start("").await;
    let response = post_chat(&h, "cut", true).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert!(frames[0].contains("partial"), "{text}");
    let error: serde_json::Value =
        serde_json::from_str(frames[1].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(error["error"]["code"], "upstream_connection_failed");
    assert_eq!(frames[2], "data: [DONE]");
    assert_eq!(frames.len(), 3);
}

#[tokio::test]
async fn an_abandoned_stream_is_recorded_with_the_tokens_streamed_so_far() {
    let path = std::env::temp_dir().join(format!(
        "switchyard-abandon-{}-{}.db",
        std::process::id(),
        switchyard_core::request::new_request_id()
    ));
    let url = format!("sqlite://{}", path.display());
    let h = start_recording("", &url).await;
    let response = post_chat(&h, "slow-forever", true).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = response.bytes_stream();
    let mut received = String::new();
    while received.matches("tick").count() < 3 {
        let bytes = body.next().await.unwrap().unwrap();
        received.push_str(&String::from_utf8_lossy(&bytes));
    }
    drop(body); // the client goes away mid-stream

    let db = switchyard_store::Database::connect(&url).await.unwrap();
    let mut record = None;
    for _ in 0..250 {
        let recent = db.recent_requests(10).await.unwrap();
        if let Some(r) = recent.into_iter().find(|r| r.request_id == request_id) {
            record = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = record.expect("the abandoned request was never recorded");
    assert!(record.client_disconnected);
    assert_eq!(record.status, 499);
    assert!(record.stream);
    assert!(
        record.completion_tokens >= 1,
        "the tokens streamed before the client left are accounted: {record:?}"
    );
    db.close().await;
    let _ = std::fs::remove_file(&path);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
