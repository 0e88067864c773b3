//! The second half of a chat call: execute, then the output guard — the answer's format
//! (retried once through the route when it is wrong), the guardrails on the answer or on the
//! stream, the usage estimate when the provider gave none, and the answer handed to the cache.

use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse};

use super::cached::{CacheMiss, StreamKeeper};
use super::{
    Admitted, ChatOutcome, Gateway, Ledger, Runtime, Served, ask_stream_usage, unreadable,
};
use crate::error::GatewayError;
use crate::guard::{Screen, format};
use crate::provider::ChatReply;
use crate::request::RequestContext;
use crate::route::Plan;

/// What the later stages of one chat call share.
pub(super) struct Call<'a> {
    pub runtime: &'a Runtime,
    pub ctx: &'a RequestContext,
    pub plan: &'a Plan,
    /// Prompt tokens estimated, and the output cap: what admission and quotas reserved.
    pub estimate: (u64, Option<u32>),
}

impl Gateway {
    /// Executes the plan and screens what comes back.
    pub(super) async fn answer(
        &self,
        call: &Call<'_>,
        mut request: ChatCompletionRequest,
        ledger: &mut Ledger,
        (mut screen, miss): (Screen, CacheMiss),
        admitted: &Admitted,
    ) -> Result<ChatOutcome, GatewayError> {
        let prompt_estimate = call.estimate.0;
        // Always ask a stream for its usage, so that streams are accounted too.
        let wants_usage = request.wants_stream_usage();
        if request.is_stream() {
            ask_stream_usage(&mut request);
        }
        let (reply, served) = self.execute_call(call, &mut request, ledger).await?;
        let mut served = admitted.serve(served);
        served.cache = miss.status;
        let mut response = match reply {
            ChatReply::Stream(stream) => {
                let keeper =
                    (miss.pending).map(|p| Box::new(StreamKeeper::new(self.cache.clone(), p)));
                let outcome = ChatOutcome::Stream(
                    stream,
                    served,
                    wants_usage,
                    prompt_estimate,
                    screen,
                    keeper,
                );
                return Ok(outcome);
            }
            // Forwarded as the upstream's bytes, unless a stage must look inside.
            ChatReply::Raw(raw)
                if !screen.checks_format()
                    && (!screen.screens_output() || screen.passes_raw(&raw)) =>
            {
                if raw.usage.is_none() {
                    ledger.estimated(prompt_estimate, raw.body.len());
                }
                self.keep_raw(miss.pending, &raw, &served.model);
                return Ok(ChatOutcome::Raw(raw, served));
            }
            ChatReply::Raw(raw) => raw.decode().map_err(|e| unreadable(&served.provider, e))?,
            ChatReply::Complete(response) => response,
        };
        if let Some(problem) = format_problem(&screen, &request, &response) {
            let (again, served_again) = self
                .retry_for_format(call, &mut request, ledger, &mut screen, problem)
                .await?;
            response = again;
            served = admitted.serve(served_again);
            served.cache = miss.status;
        }
        let screened = screen.output(&request, &mut response).await;
        ledger.guard_actions(&screen.take_actions());
        screened?;
        self.settle_answer(&response, ledger, prompt_estimate);
        self.keep_answer(miss.pending, &response);
        Ok(ChatOutcome::Complete(response, served))
    }

    async fn execute_call(
        &self,
        call: &Call<'_>,
        request: &mut ChatCompletionRequest,
        ledger: &mut Ledger,
    ) -> Result<(ChatReply, Served), GatewayError> {
        self.execute(
            call.runtime,
            call.ctx,
            call.plan,
            request,
            ledger,
            call.estimate,
        )
        .await
    }

    /// The answer did not have the format the request asked for: one more call through the
    /// route, and if that one fails too, an error that says why.
    async fn retry_for_format(
        &self,
        call: &Call<'_>,
        request: &mut ChatCompletionRequest,
        ledger: &mut Ledger,
        screen: &mut Screen,
        problem: String,
    ) -> Result<(ChatCompletionResponse, Served), GatewayError> {
        screen.note_format("retried", short(&problem));
        let (reply, served) = self.execute_call(call, request, ledger).await?;
        let response = match reply {
            ChatReply::Raw(raw) => raw.decode().map_err(|e| unreadable(&served.provider, e))?,
            ChatReply::Complete(response) => response,
            ChatReply::Stream(_) => {
                return Err(GatewayError::internal("a format retry returned a stream"));
            }
        };
        let Some(problem) = format_problem(screen, request, &response) else {
            return Ok((response, served));
        };
        screen.note_format("blocked", short(&problem));
        ledger.guard_actions(&screen.take_actions());
        Err(GatewayError::new(
            502,
            "upstream_error",
            "invalid_response_format",
            format!(
                "the model's answer did not have the format the request asked for (response_format), twice: {problem}"
            ),
        ))
    }

    /// The usage of a complete answer, estimated when the provider gave none.
    fn settle_answer(
        &self,
        response: &ChatCompletionResponse,
        ledger: &mut Ledger,
        prompt_estimate: u64,
    ) {
        if response.usage.is_none() {
            let chars = response
                .choices
                .iter()
                .map(|c| c.message.content.as_ref().map_or(0, String::len))
                .sum();
            ledger.estimated(prompt_estimate, chars);
        }
    }
}

/// Why the answer fails the format guardrail, when one applies and the request asked for JSON.
fn format_problem(
    screen: &Screen,
    request: &ChatCompletionRequest,
    response: &ChatCompletionResponse,
) -> Option<String> {
    if !screen.checks_format() {
        return None;
    }
    format::problem(&format::wanted(request)?, response)
}

/// The first words of a problem, for the record: a schema error can quote the answer.
fn short(problem: &str) -> String {
    let cut = problem
        .find(" (")
        .or_else(|| problem.find(':'))
        .unwrap_or(problem.len());
    problem[..cut].replace(' ', "_")
}
