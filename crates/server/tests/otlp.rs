//! OpenTelemetry trace export end to end: an in-process gateway in front of two in-process
//! OpenAI-compatible upstreams (one failing with 500, one answering), exporting to an
//! in-process OTLP/HTTP receiver that decodes what it gets. Plus the sampling decision and the
//! span mapping of records that are hard to provoke over HTTP (a client disconnect).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use prost::Message;
use serde_json::json;
use switchyard_core::Config;
use switchyard_core::record::config::OtlpConfig;
use switchyard_core::record::{AttemptRecord, RequestRecord, TraceContext};
use switchyard_server::telemetry::otlp::{OtlpSink, sampled};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Starts `app` on a free local port.
async fn listen(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An OpenAI-compatible upstream that fails every request with 500, or answers every one.
async fn upstream(fail: bool) -> SocketAddr {
    let answer = move |body: axum::Json<serde_json::Value>| async move {
        if fail {
            let error = json!({"error": {"message": "boom", "type": "server_error"}});
            return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(error));
        }
        let reply = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000u64,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        });
        (StatusCode::OK, axum::Json(reply))
    };
    listen(Router::new().route("/v1/chat/completions", post(answer))).await
}

/// What the receiver got: each export's headers and decoded body.
type Exports = Arc<Mutex<Vec<(HeaderMap, ExportTraceServiceRequest)>>>;

/// An OTLP/HTTP trace receiver on `/v1/traces`.
async fn receiver() -> (SocketAddr, Exports) {
    let exports = Exports::default();
    let receive = |State(exports): State<Exports>, headers: HeaderMap, body: Bytes| async move {
        let request = ExportTraceServiceRequest::decode(body).expect("a protobuf export");
        exports.lock().unwrap().push((headers, request));
        StatusCode::OK
    };
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(exports.clone());
    (listen(app).await, exports)
}

fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv: &&KeyValue| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn str_attr<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attr(span, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int_attr(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key) {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spans(request: &ExportTraceServiceRequest) -> impl Iterator<Item = &Span> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

#[tokio::test]
async fn a_request_that_fell_back_exports_its_span_and_one_client_span_per_attempt() {
    let (failing, working) = (upstream(true).await, upstream(false).await);
    let (collector, exports) = receiver().await;
    let yaml = format!(
        r#"
database: {{ url: none }}
providers:
  p-failing: {{ kind: openai_compatible, base_url: "http://{failing}/v1" }}
  p-working: {{ kind: openai_compatible, base_url: "http://{working}/v1" }}
models:
  failing: {{ provider: p-failing, upstream: gpt-4o-2024-08-06 }}
  working: {{ provider: p-working, upstream: gpt-4o-2024-08-06 }}
routes:
  gpt-4o:
    targets: [failing, working]
    retry: {{ retries_per_target: 0, backoff: 1ms, max_backoff: 5ms }}
telemetry:
  otlp:
    endpoint: "http://{collector}/v1/traces"
    headers: {{ x-collector-key: secret }}
    sample_ratio: 0.0
    service_name: gateway-under-test
    timeout: 5s
"#
    );
    let config = Config::from_yaml(&yaml, &|_| None).unwrap();
    let built = switchyard_server::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchyard_server::serve(listener, built, async {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hi."}]});
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let sampled_in = client
        .post(&url)
        .header("traceparent", traceparent)
        .header("x-request-id", "req-traced")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sampled_in.status(),
        200,
        "{}",
        sampled_in.text().await.unwrap()
    );
    // No traceparent: a new trace, which sample_ratio 0.0 keeps out of the export.
    let new_trace = client
        .post(&url)
        .header("x-request-id", "req-untraced")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(new_trace.status(), 200);
    drop(client);

    // Shutdown writes the buffered records, so the export has happened when serve returns.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the gateway stops")
        .unwrap()
        .unwrap();

    let exports = exports.lock().unwrap();
    assert_eq!(exports.len(), 1, "one export request for the batch");
    let (headers, request) = &exports[0];
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(headers["x-collector-key"], "secret");
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"
        && kv.value.as_ref().and_then(|v| v.value.as_ref())
            == Some(&Value::StringValue("gateway-under-test".into()))));

    let all: Vec<&Span> = spans(request).collect();
    let servers: Vec<&&Span> = all
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(
        servers.len(),
        1,
        "only the sampled request is exported: {all:#?}"
    );
    let root = servers[0];
    assert_eq!(hex(&root.trace_id), TRACE);
    assert_eq!(hex(&root.parent_span_id), CALLER_SPAN);
    assert_eq!(root.span_id.len(), 8);
    assert_eq!(root.name, "chat gpt-4o");
    assert_eq!(str_attr(root, "switchyard.request_id"), Some("req-traced"));
    assert_eq!(str_attr(root, "gen_ai.operation.name"), Some("chat"));
    assert_eq!(str_attr(root, "gen_ai.request.model"), Some("gpt-4o"));
    assert_eq!(
        str_attr(root, "gen_ai.response.model"),
        Some("gpt-4o-2024-08-06")
    );
    assert_eq!(str_attr(root, "gen_ai.provider.name"), Some("p-working"));
    assert_eq!(str_attr(root, "switchyard.route"), Some("gpt-4o"));
    assert_eq!(int_attr(root, "gen_ai.usage.input_tokens"), Some(9));
    assert_eq!(int_attr(root, "gen_ai.usage.output_tokens"), Some(3));
    assert_eq!(int_attr(root, "http.response.status_code"), Some(200));
    assert_eq!(int_attr(root, "switchyard.attempts"), Some(2));
    assert_eq!(str_attr(root, "error.type"), None);
    assert!(root.end_time_unix_nano >= root.start_time_unix_nano);

    let clients: Vec<&&Span> = all
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    assert_eq!(clients.len(), 2, "one span per attempt: {all:#?}");
    for child in &clients {
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id, root.span_id);
        assert_ne!(child.span_id, root.span_id);
    }
    let failed = clients
        .iter()
        .find(|s| str_attr(s, "switchyard.deployment") == Some("failing"))
        .expect("a span for the failing attempt");
    assert!(str_attr(failed, "error.type").is_some(), "{failed:#?}");
    assert_eq!(int_attr(failed, "http.response.status_code"), Some(500));
    assert_eq!(
        failed.status.as_ref().map(|s| s.code),
        Some(SpanStatus::Error as i32)
    );
    let served = clients
        .iter()
        .find(|s| str_attr(s, "switchyard.deployment") == Some("working"))
        .expect("a span for the attempt that served");
    assert_eq!(str_attr(served, "error.type"), None);
    assert_eq!(str_attr(served, "gen_ai.provider.name"), Some("p-working"));
}

fn trace(trace_id: [u8; 16], parent_sampled: Option<bool>) -> TraceContext {
    TraceContext {
        trace_id,
        span_id: [7; 8],
        parent_span_id: parent_sampled.map(|_| [9; 8]),
        parent_sampled,
    }
}

#[test]
fn the_callers_sampling_decision_wins_and_new_traces_follow_the_ratio() {
    let low = [0u8; 16]; // the lowest possible id: kept by any ratio above 0
    let mut high = [0u8; 16];
    high[8..].copy_from_slice(&u64::MAX.to_be_bytes()); // kept only by 1.0
    assert!(sampled(&trace(high, Some(true)), 0.0), "sampled upstream");
    assert!(
        !sampled(&trace(low, Some(false)), 1.0),
        "not sampled upstream"
    );
    assert!(sampled(&trace(high, None), 1.0));
    assert!(!sampled(&trace(high, None), 0.999));
    assert!(!sampled(&trace(low, None), 0.0));
    assert!(sampled(&trace(low, None), 0.001));
    // The decision is a function of the id: the same trace is decided the same way each time,
    // and about the configured share of random ids is kept.
    let mut kept = 0;
    for i in 0u64..10_000 {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        assert_eq!(
            sampled(&trace(id, None), 0.25),
            sampled(&trace(id, None), 0.25)
        );
        kept += usize::from(sampled(&trace(id, None), 0.25));
    }
    assert!(
        (2_000..3_000).contains(&kept),
        "kept {kept} of 10000 at 0.25"
    );
}

fn sink(ratio: f64) -> OtlpSink {
    OtlpSink::new(&OtlpConfig {
        endpoint: "http://127.0.0.1:4318/v1/traces".into(),
        headers: Default::default(),
        sample_ratio: ratio,
        service_name: "switchyard".into(),
        timeout: Duration::from_secs(1),
    })
    .unwrap()
}

fn record(status: u16, error_code: Option<&str>) -> RequestRecord {
    RequestRecord {
        request_id: format!("req-{status}"),
        started_at_ms: 1_700_000_000_000,
        latency_ms: 12.5,
        endpoint: "embeddings",
        requested_model: "text-embedding-3-small".into(),
        status,
        error_code: error_code.map(str::to_owned),
        client_disconnected: status == 499,
        trace: trace([1; 16], Some(true)),
        attempts: vec![AttemptRecord {
            provider: "openai".into(),
            model: "embed".into(),
            status: None,
            error_class: Some("timeout"),
            started_at_us: 1_700_000_000_001_000,
            latency_ms: 5.0,
        }],
        ..Default::default()
    }
}

#[test]
fn a_client_disconnect_is_not_an_error_and_a_rejection_is() {
    let batch = [
        record(499, Some("client_disconnected")),
        record(429, Some("rate_limited")),
    ];
    let request = sink(1.0).export_request(&batch).expect("sampled records");
    let roots: Vec<&Span> = spans(&request)
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(roots.len(), 2);
    let (gone, limited) = (roots[0], roots[1]);
    assert_eq!(gone.name, "embeddings text-embedding-3-small");
    assert_eq!(
        gone.status, None,
        "a client that went away is not the gateway's error"
    );
    assert_eq!(
        attr(gone, "switchyard.client_disconnected"),
        Some(&Value::BoolValue(true))
    );
    assert_eq!(str_attr(gone, "error.type"), None);
    assert_eq!(
        gone.end_time_unix_nano - gone.start_time_unix_nano,
        12_500_000
    );
    assert_eq!(
        limited.status,
        Some(Status {
            message: "rate_limited".into(),
            code: SpanStatus::Error as i32
        })
    );
    assert_eq!(str_attr(limited, "error.type"), Some("rate_limited"));
    assert!(
        sink(0.0)
            .export_request(&[RequestRecord {
                trace: trace([1; 16], None),
                ..record(200, None)
            }])
            .is_none(),
        "nothing sampled, nothing to send"
    );
}

#[test]
fn a_bad_otlp_config_is_refused_with_the_key_at_fault() {
    let base = OtlpConfig {
        endpoint: "http://127.0.0.1:4318/v1/traces".into(),
        headers: Default::default(),
        sample_ratio: 1.0,
        service_name: "switchyard".into(),
        timeout: Duration::from_secs(1),
    };
    let refused = |c: OtlpConfig| OtlpSink::new(&c).err().expect("refused");
    let endpoint = refused(OtlpConfig {
        endpoint: "127.0.0.1:4318".into(),
        ..base.clone()
    });
    assert!(endpoint.contains("telemetry.otlp.endpoint"), "{endpoint}");
    let ratio = refused(OtlpConfig {
        sample_ratio: 1.5,
        ..base.clone()
    });
    assert!(ratio.contains("telemetry.otlp.sample_ratio"), "{ratio}");
    let header = refused(OtlpConfig {
        headers: [("bad header".to_owned(), "x".to_owned())].into(),
        ..base
    });
    assert!(header.contains("telemetry.otlp.headers"), "{header}");
}
