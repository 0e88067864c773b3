//! Strategies and conditional routing: weighted splits, lowest latency, least busy, lowest
//! cost, and rules on headers and prompt length.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::{config, deployment, eventually, gateway};
use crate::upstream::Upstream;

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn weighted_70_30_splits_traffic_70_30() {
    let heavy = Upstream::start("heavy").await;
    let light = Upstream::start("light").await;
    let gw = Arc::new(
        gateway(&config(
            &[deployment(&heavy), deployment(&light)],
            "routes:\n  split:\n    strategy: weighted\n    targets: [{ model: heavy, weight: 70 }, { model: light, weight: 30 }]",
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
    let gw = gateway(&config(
        &[deployment(&fast), deployment(&slow)],
        "routes:\n  quick: { strategy: lowest_latency, targets: [slow, fast] }",
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
        gateway(&config(
            &[deployment(&a), deployment(&b)],
            "routes:\n  busy: { strategy: least_busy, targets: [a, b] }",
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
    let gw = gateway(&config(
        &[
            deployment(&expensive).model("price: { input: 10, output: 30 }"),
            deployment(&cheap).model("price: { input: 0.1, output: 0.1 }"),
        ],
        "routes:\n  thrifty: { strategy: lowest_cost, targets: [expensive, cheap] }",
    ))
    .await;

    for _ in 0..20 {
        assert_eq!(gw.served("thrifty").await, "cheap");
    }
    assert_eq!((expensive.count(), cheap.count()), (0, 20));
}

// ---------------------------------------------------------------------------------------------
// Conditional routing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_header_rule_sends_premium_requests_to_the_premium_model() {
    let premium = Upstream::start("premium").await;
    let standard = Upstream::start("standard").await;
    let gw = gateway(&config(
        &[deployment(&premium), deployment(&standard)],
        "routes:\n  chat:\n    targets: [standard]\n    rules:\n      - when: { headers: { x-tier: premium } }\n        targets: [premium]",
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
    let gw = gateway(&config(
        &[deployment(&long).model("context_window: 128000"), deployment(&short).model("context_window: 8192")],
        "routes:\n  chat:\n    targets: [short]\n    rules:\n      - when: { min_prompt_tokens: 500 }\n        targets: [long]",
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
