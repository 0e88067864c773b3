//! Health: what the gateway has learned about each deployment from its own attempts — a
//! circuit breaker, the latency EWMAs the `lowest_latency` strategy reads, the in-flight count
//! `least_busy` reads — kept per replica, in memory, keyed by deployment name so that it
//! survives a config reload.
//!
//! The breaker opens after `consecutive_failures` failures in a row, or when the failure share
//! over `window` reaches `error_rate` (with at least `min_requests`), or when the p95 latency
//! over the window passes `p95_latency`. While open, the deployment is skipped. After `cooldown`
//! exactly one probe request is let through (half-open); its success closes the breaker, its
//! failure opens it for another cooldown. Only failures that say the deployment is unwell count
//! (overload, 5xx, timeouts, broken connections, unreadable answers); a rate-limited key, a
//! rejected credential or a bad request say nothing about the deployment. Locks here are held
//! for a few instructions and never across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::BreakerConfig;
use crate::error::ErrorClass;

/// Weight of a new latency sample in the EWMAs.
const EWMA_ALPHA: f64 = 0.3;
/// Samples kept per deployment for the error rate and the p95.
const WINDOW_CAP: usize = 1024;
/// Successful calls between two p95 checks.
const P95_CHECK_EVERY: u32 = 32;

/// Whether a failure of this class counts against the deployment's health.
pub fn counts_against_deployment(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Overloaded
            | ErrorClass::Timeout
            | ErrorClass::Connection
            | ErrorClass::Protocol
    )
}

#[derive(Default)]
pub struct Health {
    deployments: RwLock<HashMap<String, Arc<DeploymentHealth>>>,
}

impl Health {
    /// The health of a deployment, created on first use.
    pub fn deployment(&self, name: &str) -> Arc<DeploymentHealth> {
        if let Some(h) = self
            .deployments
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return h.clone();
        }
        let mut map = self.deployments.write().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }
}

#[derive(Default)]
pub struct DeploymentHealth {
    in_flight: AtomicU64,
    /// Microseconds; 0 means no sample yet.
    ewma_first_byte_us: AtomicU64,
    ewma_total_us: AtomicU64,
    breaker: Mutex<Breaker>,
}

#[derive(Default)]
struct Breaker {
    mode: Mode,
    consecutive_failures: u32,
    /// (when, failed, latency)
    window: VecDeque<(Instant, bool, Duration)>,
    opened: u64,
    since_p95_check: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Mode {
    #[default]
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen,
}

/// The breaker's answer to "may I call this deployment now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Yes, as the one probe of a half-open breaker.
    Probe,
    /// No: open (or half-open with its probe in flight).
    No,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentSnapshot {
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub open_for_ms: Option<u64>,
    pub times_opened: u64,
    pub consecutive_failures: u32,
    pub in_flight: u64,
    pub ewma_first_byte_ms: Option<f64>,
    pub ewma_total_ms: Option<f64>,
    pub window_requests: usize,
    pub window_error_rate: Option<f64>,
    pub window_p95_ms: Option<f64>,
}

/// Decrements the in-flight count when the call ends, however it ends.
pub struct InFlight(Arc<DeploymentHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl DeploymentHealth {
    pub fn admit(&self, now: Instant) -> Admit {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match b.mode {
            Mode::Closed => Admit::Yes,
            Mode::Open { until } if now < until => Admit::No,
            Mode::Open { .. } => {
                b.mode = Mode::HalfOpen;
                Admit::Probe
            }
            Mode::HalfOpen => Admit::No,
        }
    }

    /// Whether the breaker would let a call through now, without taking the probe.
    pub fn is_available(&self, now: Instant) -> bool {
        let b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match b.mode {
            Mode::Closed => true,
            Mode::Open { until } => now >= until,
            Mode::HalfOpen => false,
        }
    }

    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency EWMA used to rank deployments: time to first byte when known.
    pub fn latency_score(&self) -> Option<Duration> {
        let us = match self.ewma_first_byte_us.load(Ordering::Relaxed) {
            0 => self.ewma_total_us.load(Ordering::Relaxed),
            n => n,
        };
        (us > 0).then(|| Duration::from_micros(us))
    }

    /// A call that got an answer (or an error that says nothing about the deployment).
    pub fn on_success(&self, cfg: &BreakerConfig, first_byte: Duration, total: Duration) {
        update_ewma(&self.ewma_first_byte_us, first_byte);
        update_ewma(&self.ewma_total_us, total);
        let now = Instant::now();
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        b.consecutive_failures = 0;
        if b.mode == Mode::HalfOpen {
            b.mode = Mode::Closed;
            b.window.clear();
        }
        b.push(now, false, total, cfg.window);
        // The p95 sorts the window: checked every P95_CHECK_EVERY samples, not on every call.
        b.since_p95_check += 1;
        if let Some(limit) = cfg.p95_latency
            && b.window.len() >= cfg.min_requests as usize
            && b.since_p95_check >= P95_CHECK_EVERY.min(cfg.min_requests.max(1))
        {
            b.since_p95_check = 0;
            if b.p95().is_some_and(|p| p > limit) {
                b.open(now, cfg.cooldown);
            }
        }
    }

    /// A call that failed in a way that counts against the deployment.
    pub fn on_failure(&self, cfg: &BreakerConfig, elapsed: Duration) {
        let now = Instant::now();
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if b.mode == Mode::HalfOpen {
            b.open(now, cfg.cooldown);
            return;
        }
        b.consecutive_failures += 1;
        b.push(now, true, elapsed, cfg.window);
        let failures = b.window.iter().filter(|s| s.1).count();
        let rate_tripped = b.window.len() >= cfg.min_requests as usize
            && failures as f64 / b.window.len() as f64 >= cfg.error_rate;
        if b.consecutive_failures >= cfg.consecutive_failures || rate_tripped {
            b.open(now, cfg.cooldown);
        }
    }

    /// A probe whose outcome says nothing either way (the caller gave up): let the next one in.
    pub fn release_probe(&self) {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if b.mode == Mode::HalfOpen {
            b.mode = Mode::Open {
                until: Instant::now(),
            };
        }
    }

    pub fn snapshot(&self, cfg: &BreakerConfig) -> DeploymentSnapshot {
        let now = Instant::now();
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        b.trim(now, cfg.window);
        let (breaker, open_for_ms) = match b.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { until } => (
                "open",
                Some(until.saturating_duration_since(now).as_millis() as u64),
            ),
            Mode::HalfOpen => ("half_open", None),
        };
        let failures = b.window.iter().filter(|s| s.1).count();
        let ms = |us: u64| (us > 0).then(|| us as f64 / 1000.0);
        DeploymentSnapshot {
            breaker,
            open_for_ms,
            times_opened: b.opened,
            consecutive_failures: b.consecutive_failures,
            in_flight: self.in_flight(),
            ewma_first_byte_ms: ms(self.ewma_first_byte_us.load(Ordering::Relaxed)),
            ewma_total_ms: ms(self.ewma_total_us.load(Ordering::Relaxed)),
            window_requests: b.window.len(),
            window_error_rate: (!b.window.is_empty())
                .then(|| failures as f64 / b.window.len() as f64),
            window_p95_ms: b.p95().map(|d| d.as_secs_f64() * 1000.0),
        }
    }
}

impl Breaker {
    fn push(&mut self, now: Instant, failed: bool, latency: Duration, window: Duration) {
        self.trim(now, window);
        if self.window.len() == WINDOW_CAP {
            self.window.pop_front();
        }
        self.window.push_back((now, failed, latency));
    }

    fn trim(&mut self, now: Instant, window: Duration) {
        while let Some(&(t, _, _)) = self.window.front() {
            if now.duration_since(t) > window {
                self.window.pop_front();
            } else {
                break;
            }
        }
    }

    fn p95(&self) -> Option<Duration> {
        if self.window.is_empty() {
            return None;
        }
        let mut l: Vec<Duration> = self.window.iter().map(|s| s.2).collect();
        l.sort_unstable();
        let i = ((l.len() as f64 * 0.95).ceil() as usize).clamp(1, l.len()) - 1;
        Some(l[i])
    }

    fn open(&mut self, now: Instant, cooldown: Duration) {
        self.mode = Mode::Open {
            until: now + cooldown,
        };
        self.opened += 1;
        self.consecutive_failures = 0;
        self.window.clear();
        tracing::warn!(
            cooldown_ms = cooldown.as_millis() as u64,
            "circuit breaker opened"
        );
    }
}

fn update_ewma(cell: &AtomicU64, sample: Duration) {
    let x = sample.as_micros().max(1) as f64;
    let old = cell.load(Ordering::Relaxed);
    let new = if old == 0 {
        x
    } else {
        old as f64 * (1.0 - EWMA_ALPHA) + x * EWMA_ALPHA
    };
    // A lost update under a race only drops one sample from an average.
    cell.store(new.max(1.0) as u64, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_requests: 10,
            window: Duration::from_secs(60),
            p95_latency: None,
            cooldown: Duration::from_millis(50),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_then_probes_once_and_closes() {
        let h = DeploymentHealth::default();
        let c = cfg();
        let ms = Duration::from_millis(1);
        for _ in 0..2 {
            h.on_failure(&c, ms);
            assert_eq!(h.admit(Instant::now()), Admit::Yes);
        }
        h.on_failure(&c, ms);
        assert_eq!(h.admit(Instant::now()), Admit::No);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(h.admit(Instant::now()), Admit::Probe);
        assert_eq!(
            h.admit(Instant::now()),
            Admit::No,
            "only one probe at a time"
        );
        h.on_success(&c, ms, ms);
        assert_eq!(h.admit(Instant::now()), Admit::Yes);
    }

    #[test]
    fn a_failed_probe_reopens() {
        let h = DeploymentHealth::default();
        let c = cfg();
        let ms = Duration::from_millis(1);
        for _ in 0..3 {
            h.on_failure(&c, ms);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(h.admit(Instant::now()), Admit::Probe);
        h.on_failure(&c, ms);
        assert_eq!(h.admit(Instant::now()), Admit::No);
    }

    #[test]
    fn opens_on_error_rate_without_a_streak() {
        let h = DeploymentHealth::default();
        let c = cfg();
        let ms = Duration::from_millis(1);
        // Alternate: never 3 failures in a row, but 50% over 10 requests.
        for _ in 0..5 {
            h.on_success(&c, ms, ms);
            h.on_failure(&c, ms);
        }
        assert_eq!(h.admit(Instant::now()), Admit::No);
    }

    #[test]
    fn opens_on_p95_latency() {
        let h = DeploymentHealth::default();
        let c = BreakerConfig {
            p95_latency: Some(Duration::from_millis(100)),
            ..cfg()
        };
        for _ in 0..10 {
            h.on_success(&c, Duration::from_millis(5), Duration::from_millis(500));
        }
        assert_eq!(h.admit(Instant::now()), Admit::No);
    }

    #[test]
    fn ewma_moves_toward_new_samples() {
        let h = DeploymentHealth::default();
        let c = cfg();
        h.on_success(&c, Duration::from_millis(100), Duration::from_millis(100));
        assert_eq!(h.latency_score(), Some(Duration::from_millis(100)));
        h.on_success(&c, Duration::from_millis(200), Duration::from_millis(200));
        assert_eq!(h.latency_score(), Some(Duration::from_millis(130)));
    }
}
