//! The governor against in-process counters (and a counter store that always fails): limits per
//! scope, reserve-then-reconcile, the three over-limit policies, fail modes, alerts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::*;
use crate::admit::config::{BudgetAlerts, OverLimit};
use crate::admit::counters::MemoryCounters;
use crate::admit::limits::Budget;
use crate::auth::PrincipalLimits;

fn principal(key: Limits, team: Option<Limits>) -> Principal {
    Principal {
        key_id: Some("k1".into()),
        team: team.as_ref().map(|_| "research".into()),
        limits: Some(Arc::new(PrincipalLimits {
            key,
            user: None,
            team,
        })),
        ..Principal::default()
    }
}

fn governor(config: GovernanceConfig) -> Governor {
    let shared = GovernanceShared::new(Arc::new(MemoryCounters::default()));
    Governor::new(config, shared, Duration::from_secs(60))
}

const PRICE: Price = Price {
    input: 1000.0,
    output: 2000.0,
    cached_input: None,
};

fn demand<'a>(over_limit: &'a OverLimit) -> Demand<'a> {
    Demand {
        model: "m",
        estimated_prompt_tokens: 10,
        max_output_tokens: Some(5),
        feature: None,
        price: Some(PRICE),
        over_limit,
        downgrade_price: Some(Price {
            input: 1.0,
            output: 1.0,
            cached_input: None,
        }),
    }
}

async fn settled() {
    // Settlement runs in a spawned task.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn rpm_is_exact_and_the_refusal_says_when_to_retry() {
    let g = governor(GovernanceConfig::default());
    let p = principal(
        Limits {
            rpm: Some(2),
            ..Limits::default()
        },
        None,
    );
    let reject = OverLimit::default();
    let first = g.admit(&p, demand(&reject)).await.unwrap();
    assert_eq!(first.rate.requests.unwrap().remaining, 1);
    g.admit(&p, demand(&reject)).await.unwrap();
    let e = g.admit(&p, demand(&reject)).await.unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (429, "rate_limit_exceeded"));
    assert!(
        e.message
            .contains("key \"k1\" allows 2 requests per minute"),
        "{}",
        e.message
    );
    assert!(e.retry_after.is_some_and(|r| r <= Duration::from_secs(60)));
    assert_eq!(e.rate.unwrap().requests.unwrap().remaining, 0);
}

#[tokio::test]
async fn budgets_reserve_the_estimate_and_settle_the_real_cost() {
    let g = governor(GovernanceConfig::default());
    // One request reserves 10 × $1000/M + 5 × $2000/M = $0.02.
    let team = Limits {
        budgets: vec![Budget {
            usd: 0.05,
            period: Period::Day,
        }],
        ..Limits::default()
    };
    let p = principal(Limits::default(), Some(team.clone()));
    let reject = OverLimit::default();
    let a = g.admit(&p, demand(&reject)).await.unwrap();
    let b = g.admit(&p, demand(&reject)).await.unwrap();
    let e = g.admit(&p, demand(&reject)).await.unwrap_err();
    assert_eq!(e.code, "budget_exceeded");
    assert!(
        e.message
            .contains("team \"research\" has spent $0.0400 of its $0.05 daily budget"),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("it resets at ") && e.message.ends_with("T00:00:00Z"),
        "{}",
        e.message
    );
    // Both cost a tenth of their reservation: room for more.
    g.settle(
        &p,
        a,
        Settlement {
            total_tokens: 3,
            cost_usd: 0.002,
        },
    );
    g.settle(
        &p,
        b,
        Settlement {
            total_tokens: 3,
            cost_usd: 0.002,
        },
    );
    settled().await;
    let usage = g.usage("team", "research", &team).await.unwrap();
    assert_eq!(usage["budgets"][0]["spent_usd"], 0.004);
    g.admit(&p, demand(&reject)).await.unwrap();
}

#[tokio::test]
async fn a_refused_request_uses_up_no_other_limit() {
    let g = governor(GovernanceConfig::default());
    let key = Limits {
        rpm: Some(100),
        tpm: Some(20),
        ..Limits::default()
    };
    let p = principal(key.clone(), None);
    let reject = OverLimit::default();
    g.admit(&p, demand(&reject)).await.unwrap(); // 15 tokens of 20
    let e = g.admit(&p, demand(&reject)).await.unwrap_err();
    assert!(e.message.contains("20 tokens per minute"), "{}", e.message);
    let usage = g.usage("key", "k1", &key).await.unwrap();
    assert_eq!(
        usage["requests_per_minute"]["used"], 1,
        "the refused request was not counted"
    );

    let mut huge = demand(&reject);
    huge.max_output_tokens = Some(1000);
    let e = g.admit(&p, huge).await.unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.retry_after),
        ("request_too_large", None)
    );
}

#[tokio::test]
async fn downgrade_serves_from_the_cheaper_model_within_its_own_limits() {
    let mut config = GovernanceConfig::default();
    config.models.insert(
        "mini".into(),
        Limits {
            rpm: Some(1),
            ..Limits::default()
        },
    );
    // "mini" is a route here: its limits apply at admission.
    let g = governor(config).with_routes(["mini".to_owned()]);
    let p = principal(
        Limits {
            rpm: Some(1),
            ..Limits::default()
        },
        None,
    );
    let down = OverLimit {
        policy: Policy::Downgrade,
        downgrade_to: Some("mini".into()),
        ..OverLimit::default()
    };
    assert_eq!(
        g.admit(&p, demand(&down)).await.unwrap().downgraded_to,
        None
    );
    let second = g.admit(&p, demand(&down)).await.unwrap();
    assert_eq!(second.downgraded_to.as_deref(), Some("mini"));
    let e = g.admit(&p, demand(&down)).await.unwrap_err();
    assert!(e.message.contains("model \"mini\""), "{}", e.message);
    assert_eq!(g.shared().stats.downgraded.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn queue_waits_for_a_slot_until_its_deadline() {
    let g = Arc::new(governor(GovernanceConfig::default()));
    let p = principal(
        Limits {
            max_parallel: Some(1),
            ..Limits::default()
        },
        None,
    );
    let queue = OverLimit {
        policy: Policy::Queue,
        queue_timeout: Duration::from_secs(5),
        ..OverLimit::default()
    };
    let held = g.admit(&p, demand(&queue)).await.unwrap();
    let (g2, p2) = (g.clone(), p.clone());
    let waiter = tokio::spawn(async move {
        let q = OverLimit {
            policy: Policy::Queue,
            queue_timeout: Duration::from_secs(5),
            ..OverLimit::default()
        };
        g2.admit(&p2, demand(&q)).await.map(|_| ())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the second request waits while the slot is taken"
    );
    g.settle(&p, held, Settlement::default());
    waiter.await.unwrap().unwrap();

    let short = OverLimit {
        policy: Policy::Queue,
        queue_timeout: Duration::from_millis(50),
        ..OverLimit::default()
    };
    let e = g.admit(&p, demand(&short)).await.unwrap_err();
    assert!(e.message.contains("1 in flight"), "{}", e.message);
}

/// A counter store that is down.
struct Down;

impl Counters for Down {
    fn reserve<'a>(&'a self, _: &'a [Charge]) -> BoxFuture<'a, Result<Reserved, CounterError>> {
        Box::pin(std::future::ready(Err(CounterError(
            "redis at redis://x: connection refused".into(),
        ))))
    }
    fn adjust<'a>(
        &'a self,
        _: &'a [(String, i64)],
    ) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        Box::pin(std::future::ready(Err(CounterError("down".into()))))
    }
    fn seed<'a>(
        &'a self,
        _: &'a str,
        _: i64,
        _: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(std::future::ready(Err(CounterError("down".into()))))
    }
    fn read<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        Box::pin(std::future::ready(Err(CounterError("down".into()))))
    }
    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[tokio::test]
async fn a_failing_counter_store_follows_the_configured_mode_per_kind_of_check() {
    let g = Governor::new(
        GovernanceConfig::default(),
        GovernanceShared::new(Arc::new(Down)),
        Duration::from_secs(60),
    );
    let reject = OverLimit::default();
    let rates = principal(
        Limits {
            rpm: Some(5),
            ..Limits::default()
        },
        None,
    );
    assert!(
        g.admit(&rates, demand(&reject)).await.is_ok(),
        "rate limits fail open by default"
    );
    let budget = principal(
        Limits {
            budgets: vec![Budget {
                usd: 1.0,
                period: Period::Month,
            }],
            ..Limits::default()
        },
        None,
    );
    let e = g.admit(&budget, demand(&reject)).await.unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (503, "limits_unavailable"));
    let stats = &g.shared().stats;
    assert_eq!(stats.counter_errors.load(Ordering::Relaxed), 2);
    assert_eq!(stats.admitted_failing_open.load(Ordering::Relaxed), 1);
    assert_eq!(stats.refused_failing_closed.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn budget_alerts_fire_once_per_threshold() {
    let config = GovernanceConfig {
        budget_alerts: BudgetAlerts {
            thresholds: vec![0.5, 1.0],
            webhook: None,
        },
        ..GovernanceConfig::default()
    };
    let g = governor(config);
    let p = principal(
        Limits {
            budgets: vec![Budget {
                usd: 0.1,
                period: Period::Total,
            }],
            ..Limits::default()
        },
        None,
    );
    let reject = OverLimit::default();
    for _ in 0..4 {
        let permit = g.admit(&p, demand(&reject)).await.unwrap();
        g.settle(
            &p,
            permit,
            Settlement {
                total_tokens: 10,
                cost_usd: 0.02,
            },
        );
        settled().await;
    }
    // $0.08 of $0.10: the 50 % alert fired once, the 100 % one not yet.
    assert_eq!(g.shared().stats.alerts.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_deployment_quota_is_held_per_attempt_and_given_back_when_it_fails() {
    let mut config = GovernanceConfig::default();
    config.models.insert(
        "gpt".into(),
        Limits {
            tpm: Some(100),
            max_parallel: Some(1),
            ..Limits::default()
        },
    );
    let g = governor(config.clone());
    assert_eq!(
        g.enter_deployment("other", PRICE, 10, Some(10))
            .await
            .unwrap(),
        None
    );
    let held = g
        .enter_deployment("gpt", PRICE, 30, Some(20))
        .await
        .unwrap()
        .unwrap();
    let e = g
        .enter_deployment("gpt", PRICE, 30, Some(20))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("model \"gpt\" allows 1 in flight"),
        "{}",
        e.message
    );
    g.release(held); // the attempt failed: its slot and tokens go back
    settled().await;
    let held = g
        .enter_deployment("gpt", PRICE, 30, Some(20))
        .await
        .unwrap()
        .unwrap();
    let usage = g
        .usage("model", "gpt", &config.models["gpt"])
        .await
        .unwrap();
    assert_eq!(usage["tokens_per_minute"]["used"], 50);
    // The attempt served: its permit settles with the real usage.
    let permit = Permit {
        held,
        ..Permit::default()
    };
    g.settle(
        &Principal::default(),
        permit,
        Settlement {
            total_tokens: 12,
            cost_usd: 0.0,
        },
    );
    settled().await;
    let usage = g
        .usage("model", "gpt", &config.models["gpt"])
        .await
        .unwrap();
    assert_eq!(
        (
            usage["tokens_per_minute"]["used"].as_i64(),
            usage["in_flight"]["used"].as_i64()
        ),
        (Some(12), Some(0))
    );
    // A model's limits are not charged at admission: only routes are.
    let p = principal(Limits::default(), None);
    let reject = OverLimit::default();
    let mut d = demand(&reject);
    d.model = "gpt";
    let permit = g.admit(&p, d).await.unwrap();
    assert!(permit.held.iter().all(|h| h.scope != "model"));
}

#[tokio::test]
async fn the_global_cap_holds_every_caller_anonymous_included() {
    let config = GovernanceConfig {
        global: Limits {
            rpm: Some(2),
            ..Limits::default()
        },
        ..GovernanceConfig::default()
    };
    let g = governor(config);
    let reject = OverLimit::default();
    let anonymous = Principal::default();
    let keyed = principal(Limits::default(), None);
    g.admit(&anonymous, demand(&reject)).await.unwrap();
    g.admit(&keyed, demand(&reject)).await.unwrap();
    let e = g.admit(&anonymous, demand(&reject)).await.unwrap_err();
    assert!(
        e.message
            .contains("the gateway (global limit) allows 2 requests per minute"),
        "{}",
        e.message
    );
}
