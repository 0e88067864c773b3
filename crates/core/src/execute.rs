//! Execute: walks a [`Plan`], one upstream call at a time, until one succeeds or the budget for
//! trying (attempts, deadline) is spent. Each failure's [`ErrorClass`] decides the next step:
//!
//! | class | next step |
//! |---|---|
//! | rate limited | the adapter cooled the key down; another ready key of the same provider (one the call has not used) is tried at once, else the next target (the last target waits out a Retry-After up to `max_retry_wait`) |
//! | overloaded, 5xx, timeout, connection, unreadable | retry the same target after an exponential backoff with full jitter (`retries_per_target`), then the next target |
//! | auth, billing | the adapter set the credential aside; targets whose provider has no ready key are skipped |
//! | context length | only targets (and `fallbacks.context_window`) with a larger context window remain |
//! | content policy | `fallbacks.content_policy` if the route has them, else fail |
//! | invalid request | fail at once: no other target will accept it |
//! | not found | the next target |
//!
//! Before each attempt, the deployment's own quota ([`Quotas`]: its `governance.models` limits)
//! is reserved; a deployment over its quota is skipped like one whose breaker is open, so the
//! plan's next target serves instead and a provider's quota is never exceeded.
//!
//! Every attempt feeds the deployment's health (breaker, latency EWMA, in-flight) and is
//! recorded. A deployment whose breaker is open is skipped. For streams, an attempt succeeds only
//! when its first chunk arrives (within `ttft_timeout`): until then nothing has reached the
//! client, so falling back is still possible; after that, errors travel down the stream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use rand::Rng;
use switchyard_wire::openai::{ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse};

use crate::config::{BreakerConfig, RetryConfig};
use crate::error::{ErrorClass, GatewayError, ProviderError};
use crate::health::{Admit, Health, counts_against_deployment};
use crate::provider::{ChatReply, Deployment};
use crate::record::AttemptRecord;
use crate::route::Plan;

/// What a deployment's quota holds for an attempt, until the request settles.
pub type QuotaHold = Vec<crate::admit::governor::Held>;

/// The quotas of deployments, reserved before each attempt.
pub trait Quotas: Send + Sync {
    /// `Ok(None)`: no quota to hold; `Err`: over quota (the error to report if no target serves).
    fn enter<'a>(
        &'a self,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<Option<QuotaHold>, GatewayError>>;

    /// Gives back what a failed attempt held.
    fn release(&self, hold: QuotaHold);
}

/// A request the executor can send to a deployment.
pub trait Call: Send + Sync {
    type Output: Send;

    fn model_mut(&mut self) -> &mut String;

    /// One attempt: returns the output and the time its first byte took.
    fn call<'a>(
        &'a self,
        deployment: &'a Deployment,
        retry: &'a RetryConfig,
    ) -> BoxFuture<'a, Result<(Self::Output, Duration), ProviderError>>;
}

impl Call for ChatCompletionRequest {
    type Output = ChatReply;

    fn model_mut(&mut self) -> &mut String {
        &mut self.model
    }

    fn call<'a>(
        &'a self,
        deployment: &'a Deployment,
        retry: &'a RetryConfig,
    ) -> BoxFuture<'a, Result<(ChatReply, Duration), ProviderError>> {
        Box::pin(async move {
            let started = Instant::now();
            let reply = deployment.provider.chat(self, deployment).await?;
            let ChatReply::Stream(mut stream) = reply else {
                return Ok((reply, started.elapsed()));
            };
            let first = match retry.ttft_timeout {
                Some(limit) => tokio::time::timeout(limit, stream.next())
                    .await
                    .map_err(|_| {
                        ProviderError::new(
                            ErrorClass::Timeout,
                            &deployment.provider_name,
                            format!("no first token within {limit:?} (ttft_timeout)"),
                        )
                    })?,
                None => stream.next().await,
            };
            let first_byte = started.elapsed();
            match first {
                Some(Ok(chunk)) => {
                    let rest = futures_util::stream::once(async { Ok(chunk) }).chain(stream);
                    Ok((ChatReply::Stream(Box::pin(rest)), first_byte))
                }
                Some(Err(e)) => Err(e),
                None => Err(ProviderError::new(
                    ErrorClass::Protocol,
                    &deployment.provider_name,
                    "the stream ended before its first chunk",
                )),
            }
        })
    }
}

impl Call for EmbeddingsRequest {
    type Output = EmbeddingsResponse;

    fn model_mut(&mut self) -> &mut String {
        &mut self.model
    }

    fn call<'a>(
        &'a self,
        deployment: &'a Deployment,
        _retry: &'a RetryConfig,
    ) -> BoxFuture<'a, Result<(EmbeddingsResponse, Duration), ProviderError>> {
        Box::pin(async move {
            let started = Instant::now();
            let out = deployment.provider.embed(self, deployment).await?;
            Ok((out, started.elapsed()))
        })
    }
}

/// Sends `request` along the plan. `request`'s model is swapped for each deployment's upstream
/// model name during its attempt and restored after. Returns what served, with the quota it
/// holds.
pub async fn run<C: Call>(
    plan: &Plan,
    request: &mut C,
    health: &Health,
    breaker: &BreakerConfig,
    deadline: tokio::time::Instant,
    attempts: &mut Vec<AttemptRecord>,
    quotas: &dyn Quotas,
) -> Result<(C::Output, Arc<Deployment>, Option<QuotaHold>), GatewayError> {
    let mut walk = Walk::new(plan, deadline);
    'targets: while let Some(d) = walk.queue.pop_front() {
        let mut here = OnTarget::default();
        loop {
            if walk.calls >= plan.retry.max_attempts {
                break 'targets;
            }
            if tokio::time::Instant::now() >= deadline {
                walk.last_error = Some(deadline_error(&d));
                break 'targets;
            }
            if !walk.may_call(&d) {
                continue 'targets;
            }
            let h = health.deployment(&d.name);
            if h.admit(Instant::now()) == Admit::No {
                walk.skipped_open.push(d.name.clone());
                continue 'targets;
            }
            let quota = match quotas.enter(&d).await {
                Ok(hold) => hold,
                Err(e) => {
                    tracing::debug!(deployment = %d.name, "over its quota: {}", e.message);
                    walk.over_quota = Some(e);
                    continue 'targets;
                }
            };
            walk.calls += 1;
            let in_flight = h.start();
            let started = Instant::now();
            let result = call_once(request, &d, &plan.retry, deadline).await;
            drop(in_flight);
            let elapsed = started.elapsed();
            let e = match result {
                Ok((output, first_byte)) => {
                    h.on_success(breaker, first_byte, elapsed);
                    attempts.push(attempt(&d, elapsed, None));
                    return Ok((output, d, quota));
                }
                Err(e) => e,
            };
            if let Some(hold) = quota {
                quotas.release(hold);
            }
            attempts.push(attempt(&d, elapsed, Some(&e)));
            if counts_against_deployment(e.class) {
                h.on_failure(breaker, elapsed);
            } else {
                // The deployment answered: it is alive, whatever it thought of the request.
                h.on_success(breaker, elapsed, elapsed);
            }
            match walk.after_failure(&d, e, &mut here) {
                Next::Fail(e) => return Err(e),
                // A zero pause (another key of the pool) is no sleep: tokio's would wait a tick.
                Next::Again(pause) if pause.is_zero() => {}
                Next::Again(pause) => tokio::time::sleep(pause).await,
                Next::Target => continue 'targets,
            }
        }
    }
    Err(walk.into_error())
}

/// One attempt on `d`, within the attempt timeout and the request's deadline.
async fn call_once<C: Call>(
    request: &mut C,
    d: &Deployment,
    retry: &RetryConfig,
    deadline: tokio::time::Instant,
) -> Result<(C::Output, Duration), ProviderError> {
    let limit = retry
        .attempt_timeout
        .map_or(deadline, |t| deadline.min(tokio::time::Instant::now() + t));
    let requested = std::mem::replace(request.model_mut(), d.upstream_model.clone());
    let result = match tokio::time::timeout_at(limit, request.call(d, retry)).await {
        Ok(r) => r,
        Err(_) if limit < deadline => Err(ProviderError::new(
            ErrorClass::Timeout,
            &d.provider_name,
            "no response within attempt_timeout",
        )),
        Err(_) => Err(deadline_error(d)),
    };
    *request.model_mut() = requested;
    result
}

/// Where a call is along its plan: the targets still to try and what stopped the others.
struct Walk<'p> {
    plan: &'p Plan,
    deadline: tokio::time::Instant,
    queue: VecDeque<Arc<Deployment>>,
    used_policy_fallbacks: bool,
    last_error: Option<ProviderError>,
    skipped_open: Vec<String>,
    over_quota: Option<GatewayError>,
    calls: u32,
}

/// What has been tried on the current target.
#[derive(Default)]
struct OnTarget {
    retries: u32,
    /// Keys of this target's pool tried after a 429 on another one.
    key_switches: usize,
}

/// What follows a failed attempt.
enum Next {
    /// The same target again, after this pause.
    Again(Duration),
    /// The next target in the queue.
    Target,
    /// No other target will do: this is the answer.
    Fail(GatewayError),
}

impl<'p> Walk<'p> {
    fn new(plan: &'p Plan, deadline: tokio::time::Instant) -> Walk<'p> {
        Walk {
            plan,
            deadline,
            queue: plan.targets.iter().cloned().collect(),
            used_policy_fallbacks: false,
            last_error: None,
            skipped_open: Vec::new(),
            over_quota: None,
            calls: 0,
        }
    }

    /// Whether `d`'s provider has a key ready for it (a keyless provider always does).
    fn may_call(&mut self, d: &Deployment) -> bool {
        let Some(keys) = d.provider.keys() else {
            return true;
        };
        if keys.has_ready_key(&d.upstream_model) {
            return true;
        }
        if let crate::provider::KeyPick::AllBlocked(wait) = keys.pick(&d.upstream_model) {
            self.last_error = Some(keys.all_blocked_error(&d.provider_name, wait));
        }
        false
    }

    /// The next step after `e` on `d`, by its class (the table at the top of this module).
    fn after_failure(&mut self, d: &Deployment, e: ProviderError, here: &mut OnTarget) -> Next {
        tracing::debug!(
            deployment = %d.name,
            class = e.class.as_str(),
            status = e.status,
            "attempt failed: {}",
            e.message
        );
        let next = match e.class {
            ErrorClass::InvalidRequest => return Next::Fail(e.into()),
            ErrorClass::ContentPolicy => {
                if self.used_policy_fallbacks || self.plan.policy_fallbacks.is_empty() {
                    return Next::Fail(e.into());
                }
                self.used_policy_fallbacks = true;
                self.queue = self.plan.policy_fallbacks.iter().cloned().collect();
                Next::Target
            }
            ErrorClass::ContextLength => {
                self.keep_larger_than(d);
                if self.queue.is_empty() {
                    return Next::Fail(e.into());
                }
                Next::Target
            }
            ErrorClass::RateLimited => self.after_rate_limit(d, &e, here),
            ErrorClass::Overloaded
            | ErrorClass::Timeout
            | ErrorClass::Connection
            | ErrorClass::Protocol => self.after_transient(&e, here),
            ErrorClass::Auth | ErrorClass::Billing | ErrorClass::NotFound => Next::Target,
        };
        self.last_error = Some(e);
        next
    }

    /// After a context-length error: only targets (and context-window fallbacks) with a larger
    /// window than `failed`'s remain.
    fn keep_larger_than(&mut self, failed: &Deployment) {
        let failed = failed.context_window;
        let larger = |t: &Arc<Deployment>| match (t.context_window, failed) {
            (Some(w), Some(f)) => w > f,
            _ => false,
        };
        self.queue.retain(larger);
        for f in &self.plan.context_fallbacks {
            if larger(f) && !self.queue.iter().any(|q| Arc::ptr_eq(q, f)) {
                self.queue.push_back(f.clone());
            }
        }
    }

    fn after_rate_limit(&self, d: &Deployment, e: &ProviderError, here: &mut OnTarget) -> Next {
        let retry = &self.plan.retry;
        // Another key, while the pool has one this call has not used (the pick is round-robin):
        // a keyless provider, or a key whose Retry-After was 0 and is "ready" again at once,
        // must not bring the call straight back here while a healthy fallback waits.
        let another_key = d
            .provider
            .keys()
            .is_some_and(|k| here.key_switches + 1 < k.len() && k.has_ready_key(&d.upstream_model));
        if another_key {
            here.key_switches += 1;
            return Next::Again(Duration::ZERO);
        }
        let wait = e.retry_after.unwrap_or(retry.backoff);
        let can_wait = wait <= retry.max_retry_wait
            && tokio::time::Instant::now() + wait < self.deadline
            && here.retries < retry.retries_per_target;
        if self.queue.is_empty() && can_wait {
            here.retries += 1;
            return Next::Again(wait);
        }
        Next::Target
    }

    fn after_transient(&self, e: &ProviderError, here: &mut OnTarget) -> Next {
        let retry = &self.plan.retry;
        if here.retries >= retry.retries_per_target {
            return Next::Target;
        }
        here.retries += 1;
        let pause = e
            .retry_after
            .filter(|w| *w <= retry.max_retry_wait)
            .unwrap_or_else(|| backoff(retry, here.retries));
        if tokio::time::Instant::now() + pause < self.deadline {
            Next::Again(pause)
        } else {
            Next::Target
        }
    }

    /// The answer when no target served.
    fn into_error(self) -> GatewayError {
        match (self.last_error, self.over_quota) {
            (Some(e), _) => e.into(),
            (None, Some(quota)) => quota,
            (None, None) if !self.skipped_open.is_empty() => GatewayError::new(
                503,
                "upstream_error",
                "all_targets_unavailable",
                format!(
                    "every target is unavailable: the circuit breakers of {} are open; retry shortly",
                    self.skipped_open.join(", ")
                ),
            ),
            (None, None) => GatewayError::new(
                503,
                "upstream_error",
                "no_attempt_possible",
                "no target could be tried within the request's attempt budget",
            ),
        }
    }
}

/// Exponential backoff with full jitter: a random pause in [0, min(max, base × 2^(n-1))].
fn backoff(retry: &RetryConfig, n: u32) -> Duration {
    let exp = retry
        .backoff
        .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX))
        .min(retry.max_backoff);
    exp.mul_f64(rand::rng().random::<f64>())
}

fn deadline_error(d: &Deployment) -> ProviderError {
    ProviderError::new(
        ErrorClass::Timeout,
        &d.provider_name,
        "the request's overall deadline (server.request_deadline) passed",
    )
}

fn attempt(
    deployment: &Deployment,
    elapsed: Duration,
    error: Option<&ProviderError>,
) -> AttemptRecord {
    AttemptRecord {
        provider: deployment.provider_name.clone(),
        model: deployment.name.clone(),
        status: match error {
            None => Some(200),
            Some(e) => e.status,
        },
        error_class: error.map(|e| e.class.as_str()),
        started_at_us: crate::request::unix_us() - elapsed.as_micros() as i64,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
    }
}
