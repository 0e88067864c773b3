//! Budgets that survive a restart: the first time this process charges a budget window (of a
//! key, user, team, feature, model or the whole gateway), it starts the counter from what the
//! request log's hourly rollup says was already spent in that window, unless the counter
//! already exists (Redis shared with running replicas).
//!
//! Counters are the fast path and the request log is the truth: in-process counters start from
//! zero on every start, and a Redis without persistence does too after it restarts. One query
//! per budget window per process — never one per request — closes that gap.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::counters::Counters;
use super::governor::{Held, Quantity};
use super::limits::usd_to_nanos;

/// Where settled spend is read from: the request log (`switchyard-store`).
pub trait SpendHistory: Send + Sync {
    /// US dollars spent by `scope` (`key`, `user`, `team`, `feature`, `model` or `global`)
    /// `id` since `since_ms`.
    fn spent_since<'a>(
        &'a self,
        scope: &'static str,
        id: &'a str,
        since_ms: i64,
    ) -> BoxFuture<'a, Result<f64, String>>;
}

/// The budget windows this process has started from the request log.
pub struct Seeder {
    history: Arc<dyn SpendHistory>,
    seeded: Mutex<HashSet<String>>,
}

impl Seeder {
    pub fn new(history: Arc<dyn SpendHistory>) -> Seeder {
        Seeder {
            history,
            seeded: Mutex::default(),
        }
    }

    /// Starts every budget counter of `held` that this process has not seen yet from the
    /// request log. A failure is logged and retried on the next request: the request itself
    /// goes on, held to the counter as it is.
    pub async fn seed(&self, counters: &dyn Counters, held: &[(super::counters::Charge, Held)]) {
        for (charge, h) in held {
            let Quantity::Spend(period) = h.what else {
                continue;
            };
            if self.is_seeded(&charge.key) {
                continue;
            }
            let since = period.window(super::super::request::unix_ms()).starts_at_ms;
            let spent = match self.history.spent_since(h.scope, &h.id, since).await {
                Ok(usd) => usd_to_nanos(usd),
                Err(e) => {
                    tracing::warn!(error = %e, scope = h.scope, id = %h.id, "cannot read past spend; the budget counts from what this process has seen");
                    continue;
                }
            };
            match counters.seed(&charge.key, spent, charge.ttl).await {
                Ok(()) => {
                    self.seeded
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(charge.key.to_string());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start a budget counter from past spend")
                }
            }
        }
    }

    fn is_seeded(&self, key: &str) -> bool {
        self.seeded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }
}
