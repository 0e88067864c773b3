//! Counting a prompt's tokens without generating (`POST /v1/messages/count_tokens`): asked of
//! the provider that would serve the request, when it can count the client's own body exactly
//! (Anthropic), else estimated the way admission estimates (about four characters a token).
//!
//! A count is authenticated and checked against the key's models like a call, and routed like
//! one, but it is neither admitted against limits nor recorded: nothing is generated or spent.

use switchyard_wire::openai::ChatCompletionRequest;

use super::{Gateway, forbidden_model};
use crate::error::GatewayError;
use crate::request::RequestContext;
use crate::route::Traits;
use crate::usage;

impl Gateway {
    /// The prompt tokens of `request`. A provider that fails to count falls back to the
    /// estimate: a client budgeting its context wants a number, not an outage.
    pub async fn count_tokens(
        &self,
        ctx: &RequestContext,
        request: &ChatCompletionRequest,
    ) -> Result<u64, GatewayError> {
        let runtime = self.runtime.load_full();
        let principal = runtime.auth.authenticate(ctx.credential.as_deref()).await?;
        if !principal.may_use(&request.model) {
            return Err(forbidden_model(&request.model));
        }
        let estimate = usage::estimate_prompt_tokens(request);
        let traits = Traits::of_chat(request, &ctx.headers, &principal.tags, estimate);
        let plan = runtime.router.plan(&request.model, &traits, &self.health)?;
        let (Some(native), Some(first)) = (request.origin.native.as_deref(), plan.targets.first())
        else {
            return Ok(estimate);
        };
        let Some(counting) = first.provider.count_tokens(native, first) else {
            return Ok(estimate);
        };
        match counting.await {
            Ok(tokens) => Ok(tokens),
            Err(e) => {
                tracing::warn!(provider = %e.provider, error = %e.message, "count_tokens failed upstream; answering with the estimate");
                Ok(estimate)
            }
        }
    }
}
