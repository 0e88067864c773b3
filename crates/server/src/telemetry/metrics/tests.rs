//! Tests of the metrics sink: records in, exposition out, with bounded labels.

use super::*;
use switchyard_core::record::AttemptRecord;

fn attempt(model: &str, error_class: Option<&'static str>) -> AttemptRecord {
    AttemptRecord {
        provider: format!("p-{model}"),
        model: model.into(),
        status: Some(if error_class.is_some() { 500 } else { 200 }),
        error_class,
        started_at_us: 0,
        latency_ms: 10.0,
    }
}

fn served(route: Option<&str>, model: &str, status: u16) -> RequestRecord {
    RequestRecord {
        request_id: "req-secret-id".into(),
        endpoint: "chat.completions",
        requested_model: model.into(),
        route: route.map(Into::into),
        provider: Some(format!("p-{model}")),
        model: Some(model.into()),
        status,
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_usd: 0.25,
        latency_ms: 1500.0,
        attempts: vec![attempt(model, None)],
        key_id: Some("key-secret".into()),
        user: Some("alice".into()),
        ..RequestRecord::default()
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn records_become_samples_with_bounded_labels() {
    let sink = MetricsSink::new();
    let mut stream = served(Some("smart"), "gpt", 200);
    stream.stream = true;
    stream.ttft_ms = Some(120.0);
    let mut fallback = served(Some("smart"), "gpt", 200);
    fallback.attempts = vec![
        attempt("claude", Some("server_error")),
        attempt("claude", Some("server_error")),
        attempt("gpt", None),
    ];
    let mut hostile = served(None, "gpt", 404);
    hostile.requested_model = "evil\"} 1\nswitchyard_pwned 1 #".into();
    hostile.provider = None;
    hostile.model = Some(String::new());
    hostile.prompt_tokens = 0;
    hostile.completion_tokens = 0;
    hostile.cost_usd = 0.0;
    hostile.attempts.clear();
    let mut limited = served(None, "gpt", 429);
    limited.admission = Some("rate_limited");
    limited.provider = None;
    limited.model = None;
    limited.prompt_tokens = 0;
    limited.completion_tokens = 0;
    limited.cost_usd = 0.0;
    limited.attempts.clear();
    let mut downgraded = served(Some("smart"), "gpt", 200);
    downgraded.admission = Some("downgraded");
    let mut guarded = served(Some("smart"), "gpt", 499);
    guarded.guardrail_actions = vec![
        "pii:redacted:EMAIL".into(),
        "secrets:blocked".into(),
        "pii:redacted:PHONE".into(),
    ];
    let mut cached = served(Some("smart"), "gpt", 200);
    cached.cache_hit = true;
    cached.cache_saved_usd = 0.5;
    cached.cost_usd = 0.0;
    cached.attempts.clear();
    let batch = [
        stream, fallback, hostile, limited, downgraded, guarded, cached,
    ];
    sink.write(&std::sync::Arc::new(batch.to_vec()))
        .await
        .unwrap();

    let live = Live {
        records_buffered: 3,
        records_dropped: 2,
        records_written: 7,
        deployments: vec![
            DeploymentLive {
                name: "claude".into(),
                breaker: 1.0,
                times_opened: 1,
                in_flight: 0,
            },
            DeploymentLive {
                name: "gpt".into(),
                breaker: 0.5,
                times_opened: 2,
                in_flight: 4,
            },
        ],
        governance: vec![("governance_rejected", "Refused.", 5)],
        ..Live::default()
    };
    let text = sink.render(&live);
    let s = |prefix: &str| sample(&text, prefix);

    let req = |route: &str, provider: &str, model: &str, class: &str| {
        format!(
            "switchyard_requests_total{{endpoint=\"chat.completions\",route=\"{route}\",provider=\"{provider}\",model=\"{model}\",status_class=\"{class}\"}}"
        )
    };
    assert_eq!(s(&req("smart", "p-gpt", "gpt", "2xx")), Some(4.0), "{text}");
    assert_eq!(s(&req("smart", "p-gpt", "gpt", "client_closed")), Some(1.0));
    assert_eq!(s(&req("none", "none", "none", "4xx")), Some(2.0));
    assert_eq!(
        s("switchyard_tokens_total{direction=\"input\",provider=\"p-gpt\",model=\"gpt\"}"),
        Some(50.0)
    );
    assert_eq!(
        s("switchyard_tokens_total{direction=\"output\",provider=\"p-gpt\",model=\"gpt\"}"),
        Some(25.0)
    );
    assert_eq!(
        s("switchyard_cost_usd_total{provider=\"p-gpt\",model=\"gpt\"}"),
        Some(1.0)
    );
    assert_eq!(
        s(
            "switchyard_upstream_errors_total{provider=\"p-claude\",model=\"claude\",error_class=\"server_error\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        s("switchyard_retries_total{provider=\"p-claude\",model=\"claude\"}"),
        Some(1.0)
    );
    assert_eq!(s("switchyard_fallbacks_total{route=\"smart\"}"), Some(1.0));
    assert_eq!(s("switchyard_cache_hits_total{route=\"smart\"}"), Some(1.0));
    assert_eq!(
        s("switchyard_cache_saved_usd_total{route=\"smart\"}"),
        Some(0.5)
    );
    assert_eq!(
        s("switchyard_guardrail_actions_total{guardrail=\"pii\",action=\"redacted\"}"),
        Some(2.0)
    );
    assert_eq!(
        s("switchyard_guardrail_actions_total{guardrail=\"secrets\",action=\"blocked\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("switchyard_admission_rejections_total{reason=\"rate_limited\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("switchyard_admission_downgrades_total{route=\"smart\"}"),
        Some(1.0)
    );
    assert_eq!(
        s("switchyard_request_duration_seconds_count{provider=\"p-gpt\",model=\"gpt\"}"),
        Some(5.0)
    );
    assert_eq!(
        s(
            "switchyard_request_duration_seconds_bucket{le=\"2.0\",provider=\"p-gpt\",model=\"gpt\"}"
        ),
        Some(5.0)
    );
    assert_eq!(
        s(
            "switchyard_request_duration_seconds_bucket{le=\"1.0\",provider=\"p-gpt\",model=\"gpt\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        s("switchyard_time_to_first_token_seconds_count{provider=\"p-gpt\",model=\"gpt\"}"),
        Some(1.0)
    );
    assert_eq!(s("switchyard_records_buffered"), Some(3.0));
    assert_eq!(s("switchyard_records_dropped_total"), Some(2.0));
    assert_eq!(s("switchyard_records_lost_total"), Some(0.0));
    assert_eq!(s("switchyard_record_write_errors_total"), Some(0.0));
    assert_eq!(
        s("switchyard_breaker_open{deployment=\"claude\"}"),
        Some(1.0)
    );
    assert_eq!(s("switchyard_breaker_open{deployment=\"gpt\"}"), Some(0.5));
    assert_eq!(
        s("switchyard_upstream_in_flight{deployment=\"gpt\"}"),
        Some(4.0)
    );
    assert_eq!(s("switchyard_governance_rejected_total"), Some(5.0));

    // Nothing client-controlled or per-request became a label or a sample.
    for secret in ["evil", "pwned", "req-secret-id", "key-secret", "alice"] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
    assert!(!text.contains("EMAIL") && !text.contains("PHONE"));
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(text.matches("# EOF").count(), 1);
}

#[test]
fn status_classes() {
    assert_eq!(status_class(200), "2xx");
    assert_eq!(status_class(404), "4xx");
    assert_eq!(status_class(429), "4xx");
    assert_eq!(status_class(499), "client_closed");
    assert_eq!(status_class(502), "5xx");
    assert_eq!(status_class(0), "other");
}
