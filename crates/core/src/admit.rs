//! Admit: decides whether a request may proceed now: rate limits (requests and tokens per
//! window) and budgets (spend per window), per key, user, team, feature, model and globally.
//!
//! [`Admission`] is the seam. It is called with the principal and an estimate of the request's
//! tokens before anything is sent upstream, and settled with the real usage and cost afterwards
//! (reserve, then reconcile), so that token limits and budgets hold under concurrency.
//! [`AdmitAll`] is today's implementation: it admits everything and keeps no counters.

use futures_util::future::BoxFuture;

use crate::auth::Principal;
use crate::error::GatewayError;

/// What admission needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    pub model: &'a str,
    /// Prompt tokens, estimated before the call.
    pub estimated_prompt_tokens: u64,
    /// The output cap the request asks for, if any.
    pub max_output_tokens: Option<u32>,
}

/// What was reserved for a request, handed back at settlement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permit {
    pub reserved_tokens: u64,
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
