//! The governor: Switchyard's [`Admission`]. For each request it finds every scope that limits
//! it (the key, its user, its team, the feature, the requested model, the gateway), turns their
//! limits into [`Charge`]s on the current windows, and reserves them all in one
//! [`Counters::reserve`] call; at settlement it gives back what the estimate over-reserved (or
//! charges what it under-reserved) and the request's slot in flight.
//!
//! Over a limit, the route's [`OverLimit`] policy decides: reject with 429 and `Retry-After`;
//! queue until the window resets or a slot frees, within a deadline; or downgrade to a cheaper
//! model, still held to that model's and the gateway's limits. When the counter store fails,
//! `on_counter_error` / `on_budget_error` decide between admitting and 503, and the failure is
//! counted for the health endpoint. Budget alerts fire here too, at settlement, once per budget,
//! threshold and period across all replicas.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;

use super::config::{FailMode, GovernanceConfig, Policy};
use super::counters::{Charge, CounterError, Counters, Reserved};
use super::history::{Seeder, SpendHistory};
use super::limits::{Limits, Period, Window, nanos_to_usd, rfc3339, usd_to_nanos};
use super::{Admission, Demand, Permit, RateInfo, Remaining, Settlement};
use crate::auth::Principal;
use crate::config::Price;
use crate::error::GatewayError;
use crate::request::unix_ms;

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Requests,
    Tokens,
    Parallel,
    /// Nano-dollars.
    Spend(Period),
}

/// One counter a permit holds, and what it reserved there.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub key: Arc<str>,
    pub what: Quantity,
    pub reserved: i64,
    pub limit: Option<i64>,
    /// `key`, `user`, `team`, `feature`, `model` or `global`.
    pub scope: &'static str,
    pub id: Arc<str>,
    pub resets_at_ms: Option<i64>,
}

/// Counts for the health endpoint.
#[derive(Debug, Default)]
pub struct GovernanceStats {
    pub counter_errors: AtomicU64,
    pub admitted_failing_open: AtomicU64,
    pub refused_failing_closed: AtomicU64,
    pub rejected: AtomicU64,
    pub queued: AtomicU64,
    pub downgraded: AtomicU64,
    pub alerts: AtomicU64,
}

/// The parts of governance that outlive a config reload.
pub struct GovernanceShared {
    pub counters: Arc<dyn Counters>,
    pub stats: GovernanceStats,
    /// Starts budget windows from the request log; `None` without one.
    seeder: Option<Seeder>,
    fired_alerts: Mutex<HashSet<String>>,
    last_error_log: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

impl GovernanceShared {
    pub fn new(counters: Arc<dyn Counters>) -> Arc<GovernanceShared> {
        GovernanceShared::with_history(counters, None)
    }

    /// With `history`, each budget window starts from what the request log says was spent.
    pub fn with_history(
        counters: Arc<dyn Counters>,
        history: Option<Arc<dyn SpendHistory>>,
    ) -> Arc<GovernanceShared> {
        Arc::new(GovernanceShared {
            counters,
            stats: GovernanceStats::default(),
            seeder: history.map(Seeder::new),
            fired_alerts: Mutex::default(),
            last_error_log: Mutex::default(),
            http: reqwest::Client::new(),
        })
    }

    /// Counts a counter-store failure; logs it at most every five seconds.
    fn counter_error(&self, e: &CounterError) {
        self.stats.counter_errors.fetch_add(1, Ordering::Relaxed);
        let mut last = self
            .last_error_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(5)) {
            *last = Some(Instant::now());
            let total = self.stats.counter_errors.load(Ordering::Relaxed);
            tracing::error!(error = %e, backend = self.counters.backend(), errors_so_far = total,
                "rate-limit and budget counters are unavailable; on_counter_error / on_budget_error apply");
        }
    }
}

/// How long a request's slot in flight is kept if its replica dies before giving it back.
const PARALLEL_TTL_MARGIN: Duration = Duration::from_secs(60);
/// How often a queued request looks for a free slot or returned tokens.
const QUEUE_POLL: Duration = Duration::from_millis(20);
const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 86_400);

pub struct Governor {
    config: GovernanceConfig,
    shared: Arc<GovernanceShared>,
    parallel_ttl: Duration,
    /// The route aliases: their `governance.models` limits apply at admission; the limits of a
    /// model (a deployment) apply to each attempt on it ([`Governor::enter_deployment`]).
    routes: std::collections::HashSet<String>,
}

impl Governor {
    /// `request_deadline` bounds how long a request holds a slot in flight.
    pub fn new(
        config: GovernanceConfig,
        shared: Arc<GovernanceShared>,
        request_deadline: Duration,
    ) -> Governor {
        Governor {
            config,
            shared,
            parallel_ttl: request_deadline + PARALLEL_TTL_MARGIN,
            routes: std::collections::HashSet::new(),
        }
    }

    /// Names the route aliases of the config (see the `routes` field).
    pub fn with_routes(mut self, routes: impl IntoIterator<Item = String>) -> Governor {
        self.routes = routes.into_iter().collect();
        self
    }

    /// The scopes that limit a request, most specific first.
    fn scopes<'a>(
        &'a self,
        p: &'a Principal,
        model: &'a str,
        feature: Option<&'a str>,
    ) -> Vec<Scope<'a>> {
        let mut scopes = Vec::with_capacity(6);
        if let (Some(id), Some(limits)) = (&p.key_id, &p.limits) {
            scopes.push(Scope::new("key", id, &limits.key));
            if let (Some(id), Some(l)) = (&p.user, &limits.user) {
                scopes.push(Scope::new("user", id, l));
            }
            if let (Some(id), Some(l)) = (&p.team, &limits.team) {
                scopes.push(Scope::new("team", id, l));
            }
        }
        if let Some((id, l)) = feature.and_then(|f| self.config.features.get_key_value(f)) {
            scopes.push(Scope::new("feature", id, l));
        }
        if self.routes.contains(model)
            && let Some((id, l)) = self.config.models.get_key_value(model)
        {
            scopes.push(Scope::new("model", id, l));
        }
        scopes.push(Scope::new("global", "*", &self.config.global));
        scopes.retain(|s| !s.limits.is_empty());
        scopes
    }

    /// The charges a request of `tokens` and `cost` (nano-dollars) makes on `scopes`.
    fn charges(
        &self,
        scopes: &[Scope<'_>],
        tokens: i64,
        cost: i64,
        now_ms: i64,
    ) -> Vec<(Charge, Held)> {
        let minute = Window::minute(now_ms);
        let mut out = Vec::new();
        for s in scopes {
            let checked = |limit: u64| s.checked.then(|| i64::try_from(limit).unwrap_or(i64::MAX));
            let id: Arc<str> = Arc::from(s.id);
            let mut add = |what,
                           suffix: std::fmt::Arguments<'_>,
                           amount,
                           limit: Option<i64>,
                           window: Option<Window>,
                           ttl| {
                let key: Arc<str> = Arc::from(format!("{}:{}:{suffix}", s.kind, s.id));
                let charge = Charge {
                    key: key.clone(),
                    amount,
                    limit,
                    ttl,
                };
                let held = Held {
                    key,
                    what,
                    reserved: amount,
                    limit,
                    scope: s.kind,
                    id: id.clone(),
                    resets_at_ms: window.and_then(|w| w.ends_at_ms),
                };
                out.push((charge, held));
            };
            let minute_ttl = minute.remaining(now_ms).unwrap_or_default() + Duration::from_secs(60);
            if let Some(rpm) = s.limits.rpm {
                add(
                    Quantity::Requests,
                    format_args!("rpm:{}", minute.id),
                    1,
                    checked(rpm),
                    Some(minute),
                    minute_ttl,
                );
            }
            if let Some(tpm) = s.limits.tpm {
                add(
                    Quantity::Tokens,
                    format_args!("tpm:{}", minute.id),
                    tokens,
                    checked(tpm),
                    Some(minute),
                    minute_ttl,
                );
            }
            if let Some(max) = s.limits.max_parallel {
                add(
                    Quantity::Parallel,
                    format_args!("par"),
                    1,
                    checked(max),
                    None,
                    self.parallel_ttl,
                );
            }
            for b in &s.limits.budgets {
                let window = b.period.window(now_ms);
                let ttl = window
                    .remaining(now_ms)
                    .map_or(TEN_YEARS, |r| r + Duration::from_secs(86_400));
                let limit = s.checked.then(|| usd_to_nanos(b.usd));
                add(
                    Quantity::Spend(b.period),
                    format_args!("usd:{}:{}", b.period.as_str(), window.id),
                    cost,
                    limit,
                    Some(window),
                    ttl,
                );
            }
        }
        out
    }

    /// The tokens (prompt, plus the output cap or the assumed output) and the cost in
    /// nano-dollars at `price` that a request may use: what admission reserves.
    fn estimate(&self, prompt: u64, max_output: Option<u32>, price: Option<Price>) -> (i64, i64) {
        let output = max_output.unwrap_or(self.config.assumed_output_tokens);
        let tokens = i64::try_from(prompt.saturating_add(u64::from(output))).unwrap_or(i64::MAX);
        (tokens, estimate_nanos(price, prompt, output))
    }

    /// Reserves `planned` in one call, after starting any budget window this process has not
    /// seen from the request log; hands back what is held, whatever the answer.
    async fn reserve(
        &self,
        planned: Vec<(Charge, Held)>,
    ) -> (Vec<Held>, Result<Reserved, CounterError>) {
        if let Some(seeder) = &self.shared.seeder {
            seeder.seed(self.shared.counters.as_ref(), &planned).await;
        }
        let (charges, held): (Vec<Charge>, Vec<Held>) = planned.into_iter().unzip();
        let reserved = self.shared.counters.reserve(&charges).await;
        (held, reserved)
    }

    async fn admit_request(
        &self,
        p: &Principal,
        demand: Demand<'_>,
    ) -> Result<Permit, GatewayError> {
        let prompt = demand.estimated_prompt_tokens;
        let (tokens, cost) = self.estimate(prompt, demand.max_output_tokens, demand.price);
        let scopes = self.scopes(p, demand.model, demand.feature);
        let started = Instant::now();
        loop {
            let planned = self.charges(&scopes, tokens, cost, unix_ms());
            if planned.is_empty() {
                return Ok(Permit::default());
            }
            let (held, reserved) = self.reserve(planned).await;
            let (index, current) = match reserved {
                Ok(Reserved::Admitted(values)) => return Ok(permit(held, &values, None)),
                Ok(Reserved::Denied { index, current }) => (index, current),
                Err(e) => return self.failed(&e, &held),
            };
            let denial = Denial {
                held: &held[index],
                current,
            };
            let policy = demand.over_limit;
            if policy.policy == Policy::Queue
                && let Some(wait) = denial.wait(started + policy.queue_timeout)
            {
                self.shared.stats.queued.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
                continue;
            }
            if policy.policy == Policy::Downgrade
                && let Some(to) = &policy.downgrade_to
                && to != demand.model
            {
                return self.downgrade(p, demand, to).await;
            }
            self.shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(denial.error());
        }
    }

    /// Admits the request on the route's cheaper model: its caller's limits are counted but not
    /// checked; the cheaper model's limits and the global ones still are.
    async fn downgrade(
        &self,
        p: &Principal,
        demand: Demand<'_>,
        to: &str,
    ) -> Result<Permit, GatewayError> {
        let prompt = demand.estimated_prompt_tokens;
        let (tokens, cost) =
            self.estimate(prompt, demand.max_output_tokens, demand.downgrade_price);
        let mut scopes = self.scopes(p, to, demand.feature);
        for s in &mut scopes {
            s.checked = matches!(s.kind, "model" | "global");
        }
        let (held, reserved) = self
            .reserve(self.charges(&scopes, tokens, cost, unix_ms()))
            .await;
        match reserved {
            Ok(Reserved::Admitted(values)) => {
                self.shared.stats.downgraded.fetch_add(1, Ordering::Relaxed);
                Ok(permit(held, &values, Some(to.to_owned())))
            }
            Ok(Reserved::Denied { index, current }) => Err(Denial {
                held: &held[index],
                current,
            }
            .error()),
            Err(e) => self.failed(&e, &held),
        }
    }

    /// The counter store failed: admit (uncounted) or refuse, as configured per kind of check.
    fn failed(&self, e: &CounterError, held: &[Held]) -> Result<Permit, GatewayError> {
        self.shared.counter_error(e);
        let budgets = held.iter().any(|h| matches!(h.what, Quantity::Spend(_)));
        let rates = held.iter().any(|h| !matches!(h.what, Quantity::Spend(_)));
        let closed = (budgets && self.config.on_budget_error == FailMode::FailClosed)
            || (rates && self.config.on_counter_error == FailMode::FailClosed);
        if closed {
            self.shared
                .stats
                .refused_failing_closed
                .fetch_add(1, Ordering::Relaxed);
            return Err(GatewayError::new(
                503,
                "api_error",
                "limits_unavailable",
                "the gateway cannot check rate limits and budgets right now (its counter store is unavailable) and is configured to refuse until it can; retry shortly",
            ));
        }
        self.shared
            .stats
            .admitted_failing_open
            .fetch_add(1, Ordering::Relaxed);
        Ok(Permit::default())
    }

    /// Reserves one attempt on `deployment` against its own limits (`governance.models`), the
    /// quota of the provider behind it. `Ok(None)`: it has none, or the counters failed open.
    /// The held charges join the request's permit when the attempt serves it, and go back with
    /// [`Governor::release`] when it fails.
    pub async fn enter_deployment(
        &self,
        deployment: &str,
        price: Price,
        prompt_tokens: u64,
        max_output_tokens: Option<u32>,
    ) -> Result<Option<Vec<Held>>, GatewayError> {
        let Some((id, limits)) = self.config.models.get_key_value(deployment) else {
            return Ok(None);
        };
        let (tokens, cost) = self.estimate(prompt_tokens, max_output_tokens, Some(price));
        let scopes = [Scope::new("model", id, limits)];
        let (held, reserved) = self
            .reserve(self.charges(&scopes, tokens, cost, unix_ms()))
            .await;
        match reserved {
            Ok(Reserved::Admitted(_)) => Ok(Some(held)),
            Ok(Reserved::Denied { index, current }) => Err(Denial {
                held: &held[index],
                current,
            }
            .error()),
            Err(e) => self.failed(&e, &held).map(|_| None),
        }
    }

    /// Gives back what a failed attempt reserved on its deployment (the request stays counted).
    pub fn release(&self, held: Vec<Held>) {
        let permit = Permit {
            held,
            ..Permit::default()
        };
        self.settle(&Principal::default(), permit, Settlement::default());
    }

    /// Current use and what is left of `limits` for one key, user, team, feature or model.
    pub async fn usage(
        &self,
        scope: &'static str,
        id: &str,
        limits: &Limits,
    ) -> Result<serde_json::Value, CounterError> {
        let now = unix_ms();
        let scopes = [Scope::new(scope, id, limits)];
        let (charges, held): (Vec<Charge>, Vec<Held>) =
            self.charges(&scopes, 0, 0, now).into_iter().unzip();
        let keys: Vec<String> = charges.into_iter().map(|c| c.key.to_string()).collect();
        let values = self.shared.counters.read(&keys).await?;
        let mut report = serde_json::Map::new();
        let mut budgets = Vec::new();
        for (h, used) in held.iter().zip(values) {
            let limit = h.limit.unwrap_or(i64::MAX);
            let resets_at = h.resets_at_ms.map(rfc3339);
            let entry = json!({"used": used, "limit": limit, "remaining": (limit - used).max(0), "resets_at": resets_at});
            match h.what {
                Quantity::Requests => drop(report.insert("requests_per_minute".into(), entry)),
                Quantity::Tokens => drop(report.insert("tokens_per_minute".into(), entry)),
                Quantity::Parallel => drop(report.insert("in_flight".into(), entry)),
                Quantity::Spend(period) => budgets.push(json!({
                    "period": period,
                    "budget_usd": nanos_to_usd(limit),
                    "spent_usd": nanos_to_usd(used),
                    "remaining_usd": nanos_to_usd((limit - used).max(0)),
                    "resets_at": resets_at,
                })),
            }
        }
        report.insert("budgets".into(), budgets.into());
        Ok(report.into())
    }

    pub fn shared(&self) -> &Arc<GovernanceShared> {
        &self.shared
    }
}

impl Admission for Governor {
    fn admit<'a>(
        &'a self,
        principal: &'a Principal,
        demand: Demand<'a>,
    ) -> BoxFuture<'a, Result<Permit, GatewayError>> {
        Box::pin(self.admit_request(principal, demand))
    }

    fn settle(&self, _principal: &Principal, permit: Permit, used: Settlement) {
        if permit.held.is_empty() {
            return;
        }
        let tokens = i64::try_from(used.total_tokens).unwrap_or(i64::MAX);
        let cost = usd_to_nanos(used.cost_usd);
        let deltas: Vec<(String, i64)> = permit
            .held
            .iter()
            .filter_map(|h| match h.what {
                Quantity::Requests => None,
                Quantity::Tokens => Some((h.key.to_string(), tokens - h.reserved)),
                Quantity::Parallel => Some((h.key.to_string(), -1)),
                Quantity::Spend(_) => Some((h.key.to_string(), cost - h.reserved)),
            })
            .collect();
        let shared = self.shared.clone();
        let alerts = self.config.budget_alerts.clone();
        let settle = async move {
            let values = match shared.counters.adjust(&deltas).await {
                Ok(values) => values,
                Err(e) => return shared.counter_error(&e),
            };
            let spent = deltas.iter().map(|(k, _)| k).zip(values);
            let budgets = permit
                .held
                .iter()
                .filter(|h| matches!(h.what, Quantity::Spend(_)));
            for (h, value) in budgets.filter_map(|h| {
                spent
                    .clone()
                    .find(|(k, _)| k.as_str() == &*h.key)
                    .map(|(_, v)| (h, v))
            }) {
                check_alerts(&shared, &alerts, h, value).await;
            }
        };
        // In-process counters settle at once: polling once saves a task per request. What
        // must wait (Redis, a webhook) finishes in a task of its own.
        let mut settle = Box::pin(settle);
        if settle.as_mut().now_or_never().is_none()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(settle);
        }
    }
}

/// Fires the alerts of every threshold `spent` has reached on budget `h`, each once per period:
/// a local set saves the round trip after the first time, and a shared counter with a limit
/// of 1 makes sure only one replica fires.
async fn check_alerts(
    shared: &GovernanceShared,
    alerts: &super::config::BudgetAlerts,
    h: &Held,
    spent: i64,
) {
    let (Some(limit), Quantity::Spend(period)) = (h.limit, h.what) else {
        return;
    };
    for &t in &alerts.thresholds {
        if limit <= 0 || (spent as f64) < t * limit as f64 {
            continue;
        }
        let key = format!("{}:alert:{t}", h.key);
        if !shared
            .fired_alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone())
        {
            continue;
        }
        let ttl = h.resets_at_ms.map_or(TEN_YEARS, |end| {
            Duration::from_millis(u64::try_from(end - unix_ms()).unwrap_or(0))
                + Duration::from_secs(86_400)
        });
        let first = Charge {
            key: key.into(),
            amount: 1,
            limit: Some(1),
            ttl,
        };
        if !matches!(
            shared.counters.reserve(std::slice::from_ref(&first)).await,
            Ok(Reserved::Admitted(_))
        ) {
            continue;
        }
        shared.stats.alerts.fetch_add(1, Ordering::Relaxed);
        let event = json!({
            "event": "budget_threshold",
            "scope": h.scope,
            "id": &*h.id,
            "period": period,
            "threshold": t,
            "budget_usd": nanos_to_usd(limit),
            "spent_usd": nanos_to_usd(spent),
            "resets_at": h.resets_at_ms.map(rfc3339),
        });
        tracing::warn!(scope = h.scope, id = %h.id, period = period.as_str(), threshold = t,
            spent_usd = nanos_to_usd(spent), budget_usd = nanos_to_usd(limit), "budget alert");
        if let Some(url) = &alerts.webhook {
            crate::webhook::post(&shared.http, url, &event, "budget alert").await;
        }
    }
}

/// One scope's limits, and whether they are enforced or only counted.
struct Scope<'a> {
    kind: &'static str,
    id: &'a str,
    limits: &'a Limits,
    checked: bool,
}

impl<'a> Scope<'a> {
    fn new(kind: &'static str, id: &'a str, limits: &'a Limits) -> Scope<'a> {
        Scope {
            kind,
            id,
            limits,
            checked: true,
        }
    }
}

fn estimate_nanos(price: Option<Price>, prompt: u64, output: u32) -> i64 {
    price.map_or(0, |p| {
        usd_to_nanos((prompt as f64 * p.input + f64::from(output) * p.output) / 1e6)
    })
}

/// The permit of admitted charges, with the tightest request and token limits for headers.
fn permit(held: Vec<Held>, values: &[i64], downgraded_to: Option<String>) -> Permit {
    let now = unix_ms();
    let tightest = |what: Quantity| {
        held.iter()
            .zip(values)
            .filter(|(h, _)| h.what == what)
            .filter_map(|(h, v)| Some((h.limit?, *v, h.resets_at_ms?)))
            .map(|(limit, v, end)| Remaining {
                limit: limit as u64,
                remaining: (limit - v).max(0) as u64,
                reset: Duration::from_millis(u64::try_from(end - now).unwrap_or(0)),
            })
            .min_by_key(|r| r.remaining)
    };
    let rate = RateInfo {
        requests: tightest(Quantity::Requests),
        tokens: tightest(Quantity::Tokens),
    };
    Permit {
        held,
        rate,
        downgraded_to,
    }
}

/// A charge that did not fit.
struct Denial<'a> {
    held: &'a Held,
    current: i64,
}

impl Denial<'_> {
    fn whom(&self) -> String {
        match self.held.scope {
            "global" => "the gateway (global limit)".into(),
            scope => format!("{scope} \"{}\"", self.held.id),
        }
    }

    fn reset(&self) -> Option<Duration> {
        self.held
            .resets_at_ms
            .map(|end| Duration::from_millis(u64::try_from(end - unix_ms()).unwrap_or(0).max(1)))
    }

    fn too_large(&self) -> bool {
        self.held.limit.is_some_and(|l| self.held.reserved > l)
    }

    /// How long a queued request should wait before trying again, if capacity can free up
    /// before `deadline`: a slot or returned tokens at any time, requests only when the
    /// window resets. Budgets are not waited for.
    fn wait(&self, deadline: Instant) -> Option<Duration> {
        let left = deadline.checked_duration_since(Instant::now())?;
        let wait = match self.held.what {
            Quantity::Parallel => QUEUE_POLL,
            Quantity::Tokens if !self.too_large() => self.reset()?.min(QUEUE_POLL),
            Quantity::Requests => self.reset()?,
            _ => return None,
        };
        (wait <= left).then_some(wait)
    }

    fn error(&self) -> GatewayError {
        let h = self.held;
        let limit = h.limit.unwrap_or(0);
        let reset = self.reset();
        let secs = reset.map_or(1, |r| r.as_secs_f64().ceil() as u64);
        let (code, message) = match h.what {
            Quantity::Requests => (
                "rate_limit_exceeded",
                format!(
                    "rate limit exceeded: {} allows {limit} requests per minute; retry in {secs}s",
                    self.whom()
                ),
            ),
            Quantity::Tokens if self.too_large() => (
                "request_too_large",
                format!(
                    "this request may use up to {} tokens, more than the {limit} tokens per minute {} allows: lower max_tokens or shorten the prompt",
                    h.reserved,
                    self.whom()
                ),
            ),
            Quantity::Tokens => (
                "rate_limit_exceeded",
                format!(
                    "rate limit exceeded: {} allows {limit} tokens per minute, {} are used and this request may use up to {}; retry in {secs}s",
                    self.whom(),
                    self.current,
                    h.reserved
                ),
            ),
            Quantity::Parallel => (
                "rate_limit_exceeded",
                format!(
                    "too many requests at once: {} allows {limit} in flight; retry when one finishes",
                    self.whom()
                ),
            ),
            Quantity::Spend(period) => (
                "budget_exceeded",
                format!(
                    "budget exceeded: {} has spent ${:.4} of its ${:.2} {} budget and this request may cost up to ${:.4}; {}",
                    self.whom(),
                    nanos_to_usd(self.current),
                    nanos_to_usd(limit),
                    period.as_str(),
                    nanos_to_usd(h.reserved),
                    match h.resets_at_ms {
                        Some(end) => format!("it resets at {}", rfc3339(end)),
                        None => "it does not reset: ask an admin to raise it".into(),
                    }
                ),
            ),
        };
        let mut e = GatewayError::new(429, "rate_limit_error", code, message);
        e.retry_after = match h.what {
            Quantity::Parallel => Some(Duration::from_secs(1)),
            _ if self.too_large() => None,
            _ => reset,
        };
        let remaining = |r: Duration| Remaining {
            limit: limit.max(0) as u64,
            remaining: 0,
            reset: r,
        };
        e.rate = Some(Box::new(match h.what {
            Quantity::Requests => RateInfo {
                requests: reset.map(remaining),
                tokens: None,
            },
            Quantity::Tokens => RateInfo {
                requests: None,
                tokens: reset.map(remaining),
            },
            _ => RateInfo::default(),
        }));
        e
    }
}

#[cfg(test)]
#[path = "governor_tests.rs"]
mod tests;
