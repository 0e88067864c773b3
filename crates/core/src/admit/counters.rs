//! Counters: the shared arithmetic behind every limit and budget. A request's admission is one
//! [`Counters::reserve`] call over all the counters it touches (its key's RPM window, its team's
//! monthly spend, the model's TPM…): either every charge fits under its limit and all are added,
//! or none is added and the first that does not fit is named. Settlement is one
//! [`Counters::adjust`] call that corrects the reservations with what was really used.
//!
//! All-or-nothing is what keeps caps exact under concurrency: no request can slip in between a
//! check and an increment, and a request refused by one limit does not use up another.
//! [`MemoryCounters`] is the in-process implementation (one replica); the Redis one in
//! `switchyard-store` does the same in one Lua script, shared by every replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

/// One counter a request adds to.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// The counter's name, window included (`key:key_ab12:rpm:29933702`); shared with the
    /// permit that settles it, so that it is formatted once per request.
    pub key: Arc<str>,
    pub amount: i64,
    /// The counter may not pass this; `None` counts without checking.
    pub limit: Option<i64>,
    /// How long the counter must outlive its last change: past its window, it is garbage.
    pub ttl: Duration,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reserved {
    /// Every charge was added; the counters' new values, in order.
    Admitted(Vec<i64>),
    /// Nothing was added: charge `index` would have taken its counter from `current` past its
    /// limit.
    Denied { index: usize, current: i64 },
}

/// The counter store did not answer (Redis down, timed out).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CounterError(pub String);

pub trait Counters: Send + Sync {
    /// Adds every charge if each stays within its limit, else adds none.
    fn reserve<'a>(
        &'a self,
        charges: &'a [Charge],
    ) -> BoxFuture<'a, Result<Reserved, CounterError>>;

    /// Adds each delta (negative to give back) without checking limits; returns the new values.
    fn adjust<'a>(
        &'a self,
        deltas: &'a [(String, i64)],
    ) -> BoxFuture<'a, Result<Vec<i64>, CounterError>>;

    /// Creates a counter at `value` unless it already exists (starting a budget window from the
    /// request log).
    fn seed<'a>(
        &'a self,
        key: &'a str,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>>;

    /// Current values (0 for a counter that does not exist).
    fn read<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<i64>, CounterError>>;

    /// `"memory"` or `"redis"`, for the health report.
    fn backend(&self) -> &'static str;
}

/// Counters in this process: exact for one replica, gone on restart.
#[derive(Default)]
pub struct MemoryCounters {
    inner: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    values: HashMap<String, (i64, Instant)>,
    ops_since_sweep: u32,
}

/// Expired counters are swept every this many operations, so the map stays the size of the
/// live windows without a timer task.
const SWEEP_EVERY: u32 = 4096;

impl MemoryState {
    fn current(&self, key: &str, now: Instant) -> i64 {
        match self.values.get(key) {
            Some((v, expires)) if *expires > now => *v,
            _ => 0,
        }
    }

    fn add(&mut self, key: &str, delta: i64, ttl: Option<Duration>, now: Instant) -> i64 {
        // The key is copied only when the counter is new: most charges hit a live window.
        if let Some((value, expires)) = self.values.get_mut(key) {
            if *expires <= now {
                *value = 0;
                *expires = now + ttl.unwrap_or(Duration::from_secs(3600));
            } else if let Some(ttl) = ttl {
                *expires = now + ttl;
            }
            *value = value.saturating_add(delta);
            return *value;
        }
        let expires = now + ttl.unwrap_or(Duration::from_secs(3600));
        self.values.insert(key.to_owned(), (delta, expires));
        delta
    }

    fn maybe_sweep(&mut self, now: Instant) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep >= SWEEP_EVERY {
            self.ops_since_sweep = 0;
            self.values.retain(|_, (_, expires)| *expires > now);
        }
    }
}

impl MemoryCounters {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than refusing every request would: keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reserve_now(&self, charges: &[Charge]) -> Reserved {
        let now = Instant::now();
        let mut state = self.state();
        state.maybe_sweep(now);
        for (index, c) in charges.iter().enumerate() {
            let current = state.current(&c.key, now);
            if c.limit
                .is_some_and(|limit| current.saturating_add(c.amount) > limit)
            {
                return Reserved::Denied { index, current };
            }
        }
        let values = charges
            .iter()
            .map(|c| state.add(&c.key, c.amount, Some(c.ttl), now))
            .collect();
        Reserved::Admitted(values)
    }

    pub fn adjust_now(&self, deltas: &[(String, i64)]) -> Vec<i64> {
        let now = Instant::now();
        let mut state = self.state();
        deltas
            .iter()
            .map(|(key, delta)| state.add(key, *delta, None, now))
            .collect()
    }
}

impl Counters for MemoryCounters {
    fn reserve<'a>(
        &'a self,
        charges: &'a [Charge],
    ) -> BoxFuture<'a, Result<Reserved, CounterError>> {
        Box::pin(std::future::ready(Ok(self.reserve_now(charges))))
    }

    fn adjust<'a>(
        &'a self,
        deltas: &'a [(String, i64)],
    ) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        Box::pin(std::future::ready(Ok(self.adjust_now(deltas))))
    }

    fn seed<'a>(
        &'a self,
        key: &'a str,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        let now = Instant::now();
        let mut state = self.state();
        if !matches!(state.values.get(key), Some((_, expires)) if *expires > now) {
            state.values.insert(key.to_owned(), (value, now + ttl));
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn read<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        let now = Instant::now();
        let state = self.state();
        let values = keys.iter().map(|k| state.current(k, now)).collect();
        Box::pin(std::future::ready(Ok(values)))
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(key: &str, amount: i64, limit: Option<i64>) -> Charge {
        Charge {
            key: key.into(),
            amount,
            limit,
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_reservation_adds_all_or_nothing() {
        let c = MemoryCounters::default();
        let both = [charge("a", 1, Some(2)), charge("b", 5, Some(6))];
        assert_eq!(c.reserve_now(&both), Reserved::Admitted(vec![1, 5]));
        // "b" would reach 10 > 6: nothing is added, "a" included.
        assert_eq!(
            c.reserve_now(&both),
            Reserved::Denied {
                index: 1,
                current: 5
            }
        );
        assert_eq!(
            c.adjust_now(&[("a".into(), 0), ("b".into(), -5)]),
            vec![1, 0]
        );
        assert_eq!(c.reserve_now(&both), Reserved::Admitted(vec![2, 5]));
        // Unchecked charges always count.
        assert_eq!(
            c.reserve_now(&[charge("a", 1, None)]),
            Reserved::Admitted(vec![3])
        );
    }

    #[test]
    fn expired_windows_start_from_zero() {
        let c = MemoryCounters::default();
        let mut short = charge("w", 3, Some(3));
        short.ttl = Duration::from_millis(1);
        assert_eq!(c.reserve_now(&[short.clone()]), Reserved::Admitted(vec![3]));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.reserve_now(&[short]), Reserved::Admitted(vec![3]));
    }
}
