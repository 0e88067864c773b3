//! Admit: decides whether a request may proceed now: rate limits (requests and tokens per
//! window, requests in flight) and budgets (spend per period), per key, user, team, feature,
//! model and globally.
//!
//! [`Admission`] is the seam. It is called with the principal and an estimate of the request's
//! tokens and cost before anything is sent upstream, and settled with the real usage and cost
//! afterwards (reserve, then reconcile), so that token limits and budgets hold under
//! concurrency. [`governor::Governor`] is the implementation, over the [`counters::Counters`]
//! of this process or of Redis; [`AdmitAll`] admits everything (tests, tools).

pub mod config;
pub mod counters;
pub mod governor;
pub mod history;
pub mod limits;

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::auth::Principal;
use crate::config::Price;
use crate::error::GatewayError;
use config::OverLimit;

/// What admission needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// The model or route alias the client asked for.
    pub model: &'a str,
    /// Prompt tokens, estimated before the call.
    pub estimated_prompt_tokens: u64,
    /// The output cap the request asks for, if any (else the model's default, if any).
    pub max_output_tokens: Option<u32>,
    /// The feature the request is for (`x-switchyard-feature`, or a key tag `feature:NAME`).
    pub feature: Option<&'a str>,
    /// The highest price among the targets that may serve it, to reserve spend.
    pub price: Option<Price>,
    /// What happens over a limit.
    pub over_limit: &'a OverLimit,
    /// The price of `over_limit.downgrade_to`, when there is one.
    pub downgrade_price: Option<Price>,
}

/// What was reserved for a request, handed back at settlement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permit {
    /// The counters charged, with what kind of quantity each holds and how much was reserved.
    pub held: Vec<governor::Held>,
    /// The caller's remaining requests and tokens after this reservation.
    pub rate: RateInfo,
    /// Set when the request was admitted on the route's cheaper target instead.
    pub downgraded_to: Option<String>,
}

/// Remaining capacity, sent to clients as OpenAI-style `x-ratelimit-*` headers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateInfo {
    pub requests: Option<Remaining>,
    pub tokens: Option<Remaining>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Remaining {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window resets.
    pub reset: Duration,
}

/// The real consumption of an admitted request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Settlement {
    pub total_tokens: u64,
    pub cost_usd: f64,
}

pub trait Admission: Send + Sync {
    fn admit<'a>(
        &'a self,
        principal: &'a Principal,
        demand: Demand<'a>,
    ) -> BoxFuture<'a, Result<Permit, GatewayError>>;

    fn settle(&self, principal: &Principal, permit: Permit, settlement: Settlement);
}

/// Admits every request.
pub struct AdmitAll;

impl Admission for AdmitAll {
    fn admit<'a>(
        &'a self,
        _principal: &'a Principal,
        _demand: Demand<'a>,
    ) -> BoxFuture<'a, Result<Permit, GatewayError>> {
        Box::pin(std::future::ready(Ok(Permit::default())))
    }

    fn settle(&self, _principal: &Principal, _permit: Permit, _settlement: Settlement) {}
}
