//! Resilience: each error class handled as it should be (a rate-limited key set aside, a 5xx
//! retried then fallen back from, a 429 with Retry-After 0 not hammered, a rejected credential,
//! context-length errors to larger models only, a plain 400 returned at once), a primary that
//! fails or refuses connections hidden from the application, the circuit breaker's cycle, and
//! the overall deadline.

use std::time::Duration;

use crate::gateway::{FAST_RETRY, config, deployment, gateway, model, provider, sse_content};
use crate::upstream::{BAD_REQUEST_MESSAGE, Behaviour, Upstream, dead_port};

// ---------------------------------------------------------------------------------------------
// Error classes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rate_limited_key_moves_to_the_other_key_and_stays_out_of_rotation() {
    let up = Upstream::start("pooled").await;
    up.set(Behaviour::RateLimitKey("key-a".into()));
    let gw = gateway(&config(
        &[deployment(&up).provider("api_keys: [key-a, key-b]")],
        &format!("resilience: {{ retry: {FAST_RETRY} }}"),
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
    let gw = gateway(&config(
        &[deployment(&primary), deployment(&backup)],
        "routes:\n  smart:\n    targets: [primary, backup]\n    retry: { retries_per_target: 1, backoff: 1ms, max_backoff: 5ms }",
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
        let gw = gateway(&config(
            &[deployment(&limited).provider(keys), deployment(&backup)],
            &format!("routes:\n  smart:\n    targets: [{name}, backup]\n    retry: {{ max_attempts: 5, retries_per_target: 1, backoff: 1ms, max_backoff: 5ms }}"),
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
    let gw = gateway(&config(
        &[
            deployment(&a).provider("api_key: sk-rejected"),
            deployment(&b).provider("api_key: sk-good"),
        ],
        &format!("routes:\n  smart: {{ targets: [a, b], retry: {FAST_RETRY} }}"),
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
    let gw = gateway(&config(
        &[
            deployment(&small).model("context_window: 8192"),
            deployment(&mid).model("context_window: 8192"),
            deployment(&large).model("context_window: 128000"),
        ],
        &format!("routes:\n  long: {{ targets: [small, mid, large], retry: {FAST_RETRY} }}"),
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
    let gw = gateway(&config(
        &[deployment(&small).model("context_window: 8192"), deployment(&mid).model("context_window: 8192"), deployment(&large).model("context_window: 128000")],
        &format!("routes:\n  chat:\n    targets: [small, mid]\n    fallbacks: {{ context_window: [mid, large] }}\n    retry: {FAST_RETRY}"),
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
    let gw = gateway(&config(
        &[deployment(&primary), deployment(&backup)],
        &format!("routes:\n  smart: {{ targets: [primary, backup], retry: {FAST_RETRY} }}"),
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
// Primary down
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_primary_is_invisible_to_the_application() {
    let primary = Upstream::start("primary").await;
    let backup = Upstream::start("backup").await;
    primary.set(Behaviour::ServerError);
    let gw = gateway(&config(
        &[deployment(&primary), deployment(&backup)],
        &format!("routes:\n  smart: {{ targets: [primary, backup] }}\nresilience: {{ retry: {FAST_RETRY} }}"),
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
// Circuit breaker
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_then_probes_and_closes() {
    let flaky = Upstream::start("flaky").await;
    let backup = Upstream::start("backup").await;
    flaky.set(Behaviour::ServerError);
    let gw = gateway(&config(
        &[deployment(&flaky), deployment(&backup)],
        "routes:\n  smart:\n    targets: [flaky, backup]\n    retry: { retries_per_target: 0, backoff: 1ms, max_backoff: 5ms }\nresilience:\n  breaker: { consecutive_failures: 3, cooldown: 500ms }",
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
// Overall deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_request_deadline_caps_all_attempts_together() {
    let stuck_a = Upstream::start("stuck-a").await;
    let stuck_b = Upstream::start("stuck-b").await;
    stuck_a.set(Behaviour::Hang);
    stuck_b.set(Behaviour::Hang);
    // Without the deadline, four attempts of 200 ms each (plus backoffs) would be allowed.
    let gw = gateway(&config(
        &[deployment(&stuck_a), deployment(&stuck_b)],
        "routes:\n  stuck:\n    targets: [stuck-a, stuck-b]\n    retry: { max_attempts: 4, retries_per_target: 2, attempt_timeout: 200ms, backoff: 1ms, max_backoff: 5ms }\nserver: { request_deadline: 500ms }",
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
