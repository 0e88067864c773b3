//! Execute: walks a [`Plan`], calling provider adapters, and records every attempt (deployment,
//! upstream status, error class, latency) for the request record.
//!
//! Today one attempt is made, on the plan's first deployment, bounded by the request's overall
//! deadline. The error class of a failed attempt ([`crate::error::ErrorClass`]) is what retries,
//! key rotation and fallback to the next target are decided on.

use std::sync::Arc;
use std::time::Instant;

use switchyard_wire::openai::{ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse};

use crate::error::{ErrorClass, GatewayError, ProviderError};
use crate::provider::{ChatReply, Deployment};
use crate::record::AttemptRecord;
use crate::route::Plan;

/// Sends a chat request along the plan. `request.model` is swapped for each deployment's
/// upstream model name during the call and restored after.
pub async fn chat(
    plan: &Plan,
    request: &mut ChatCompletionRequest,
    attempts: &mut Vec<AttemptRecord>,
    deadline: tokio::time::Instant,
) -> Result<(ChatReply, Arc<Deployment>), GatewayError> {
    let deployment = first(plan)?;
    let requested = std::mem::replace(&mut request.model, deployment.upstream_model.clone());
    let started = Instant::now();
    let call = deployment.provider.chat(request, &deployment);
    let result = bounded(call, deadline, &deployment).await;
    request.model = requested;
    attempts.push(attempt(&deployment, started, result.as_ref().err()));
    result
        .map(|reply| (reply, deployment))
        .map_err(GatewayError::from)
}

/// Sends an embeddings request along the plan.
pub async fn embeddings(
    plan: &Plan,
    request: &mut EmbeddingsRequest,
    attempts: &mut Vec<AttemptRecord>,
    deadline: tokio::time::Instant,
) -> Result<(EmbeddingsResponse, Arc<Deployment>), GatewayError> {
    let deployment = first(plan)?;
    let requested = std::mem::replace(&mut request.model, deployment.upstream_model.clone());
    let started = Instant::now();
    let call = deployment.provider.embed(request, &deployment);
    let result = bounded(call, deadline, &deployment).await;
    request.model = requested;
    attempts.push(attempt(&deployment, started, result.as_ref().err()));
    result
        .map(|reply| (reply, deployment))
        .map_err(GatewayError::from)
}

fn first(plan: &Plan) -> Result<Arc<Deployment>, GatewayError> {
    plan.targets
        .first()
        .cloned()
        .ok_or_else(|| GatewayError::internal("the routing plan is empty"))
}

async fn bounded<T>(
    call: impl Future<Output = Result<T, ProviderError>>,
    deadline: tokio::time::Instant,
    deployment: &Deployment,
) -> Result<T, ProviderError> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::new(
            ErrorClass::Timeout,
            &deployment.provider_name,
            "the request's overall deadline (server.request_deadline) passed",
        )),
    }
}

fn attempt(
    deployment: &Deployment,
    started: Instant,
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
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}
