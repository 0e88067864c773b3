//! Account: the [`Ledger`] of one request, and the [`AccountedStream`] that carries it along a
//! streamed response.
//!
//! A ledger is opened when a request arrives; the stages fill its [`RequestRecord`] as they run
//! (who, which route and deployment, guardrail actions, usage). It is closed exactly once —
//! when the response is complete, when it fails, or when it is dropped because the client went
//! away — and closing it prices the usage, settles the admission permit (real tokens and cost
//! against what was reserved) and hands the record to the [`Recorder`]. For streams the ledger
//! travels inside [`AccountedStream`], which also enforces the request deadline, screens each
//! chunk, and keeps the usage chunk away from clients that did not ask for it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::Stream;
use switchyard_wire::openai::{ChatCompletionChunk, Usage};

use crate::admit::{Admission, Permit, Settlement};
use crate::auth::Principal;
use crate::error::GatewayError;
use crate::guard::GuardAction;
use crate::guard::stream::StreamScreen;
use crate::pipeline::StreamKeeper;
use crate::provider::{ChunkStream, Deployment};
use crate::record::{Recorder, RequestRecord};
use crate::request::RequestContext;
use crate::usage;

/// Accounting for one request: fills the record as stages run, settles the admission permit,
/// and sends the record exactly once (on success, failure, or drop).
pub struct Ledger {
    pub(crate) record: RequestRecord,
    started: Instant,
    recorder: Recorder,
    price: Option<crate::config::Price>,
    hold: Option<(Arc<dyn Admission>, Principal, Permit)>,
    closed: bool,
    /// Set when the route keeps bodies in its records: the most bytes kept of each.
    body_cap: Option<usize>,
}

impl Ledger {
    pub(crate) fn open(
        ctx: &RequestContext,
        model: &str,
        stream: bool,
        recorder: Recorder,
    ) -> Ledger {
        Ledger {
            record: RequestRecord {
                request_id: ctx.id.clone(),
                started_at_ms: ctx.received_unix_ms,
                endpoint: ctx.endpoint.as_str(),
                dialect: ctx.dialect,
                trace: ctx.trace,
                requested_model: model.to_owned(),
                stream,
                ..Default::default()
            },
            started: ctx.received,
            recorder,
            price: None,
            hold: None,
            closed: false,
            body_cap: None,
        }
    }

    /// Keeps the request's body (as it left for the provider, after redaction) and, later, the
    /// response's, each cut at `cap` bytes.
    pub(crate) fn keep_bodies(&mut self, cap: usize, request: &impl serde::Serialize) {
        self.body_cap = Some(cap);
        self.record.request_body = serde_json::to_string(request).ok().map(|b| capped(b, cap));
    }

    /// The response body, when the route keeps bodies.
    pub(crate) fn keep_response(&mut self, body: impl FnOnce() -> Option<String>) {
        if let Some(cap) = self.body_cap {
            self.record.response_body = body().map(|b| capped(b, cap));
        }
    }

    pub(crate) fn principal(&mut self, p: &Principal) {
        self.record.key_id = p.key_id.clone();
        self.record.user = p.user.clone();
        self.record.team = p.team.clone();
        self.record.tags.clone_from(&p.tags);
    }

    /// Adds the quota the serving deployment holds to the permit settled at close.
    pub(crate) fn hold_more(&mut self, held: Vec<crate::admit::governor::Held>) {
        if let Some((_, _, permit)) = &mut self.hold {
            permit.held.extend(held);
        }
    }

    pub(crate) fn hold(
        &mut self,
        admission: Arc<dyn Admission>,
        principal: Principal,
        permit: Permit,
    ) {
        self.hold = Some((admission, principal, permit));
    }

    pub(crate) fn guard_actions(&mut self, actions: &[GuardAction]) {
        self.record
            .guardrail_actions
            .extend(actions.iter().map(GuardAction::to_record));
    }

    pub(crate) fn served(&mut self, d: &Deployment) {
        self.record.provider = Some(d.provider_name.clone());
        self.record.model = Some(d.name.clone());
        self.record.upstream_model = Some(d.upstream_model.clone());
        self.price = Some(d.price);
    }

    pub(crate) fn estimated(&mut self, prompt_tokens: u64, generated_chars: usize) {
        self.record.prompt_tokens = prompt_tokens;
        self.record.completion_tokens = usage::estimate_completion_tokens(generated_chars);
        self.record.usage_estimated = true;
    }

    /// Appends streamed text to the kept response body, up to the cap.
    fn keep_streamed(&mut self, text: &str) {
        let Some(cap) = self.body_cap else { return };
        let body = self.record.response_body.get_or_insert_with(String::new);
        if body.len() < cap {
            body.push_str(text);
            if body.len() > cap {
                *body = capped(std::mem::take(body), cap);
            }
        }
    }

    fn set_usage(&mut self, u: &Usage) {
        self.record.prompt_tokens = u.prompt_tokens;
        self.record.completion_tokens = u.completion_tokens;
        self.record.cached_tokens = u.cached_tokens();
        self.record.usage_estimated = false;
    }

    pub(crate) fn close_ok(&mut self, usage: Option<&Usage>) {
        if let Some(u) = usage {
            self.set_usage(u);
        }
        self.record.status = 200;
        self.close();
    }

    pub(crate) fn close_err(&mut self, e: &GatewayError) {
        self.record.status = e.status;
        self.record.error_code = Some(e.code.clone());
        self.close();
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let usage = Usage::new(
            self.record.prompt_tokens,
            self.record.completion_tokens,
            Some(self.record.cached_tokens),
        );
        if let Some(price) = &self.price {
            self.record.cost_usd = usage::cost_usd(&usage, price);
        }
        self.record.latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        if let Some((admission, principal, permit)) = self.hold.take() {
            admission.settle(
                &principal,
                permit,
                Settlement {
                    total_tokens: usage.total_tokens,
                    cost_usd: self.record.cost_usd,
                },
            );
        }
        self.recorder.record(std::mem::take(&mut self.record));
    }
}

impl Drop for Ledger {
    /// A ledger dropped open means the client went away mid-request: the request is still
    /// accounted, with what is known, as HTTP 499 (client closed request).
    fn drop(&mut self) {
        if !self.closed {
            self.record.client_disconnected = true;
            self.record.status = 499;
            self.record.error_code = Some("client_disconnected".into());
            self.close();
        }
    }
}

/// `body` cut to at most `cap` bytes, on a character boundary.
fn capped(mut body: String, cap: usize) -> String {
    if body.len() > cap {
        let mut end = cap;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    body
}

/// A chat stream on its way to the client, accounted as it flows.
pub struct AccountedStream {
    inner: ChunkStream,
    /// `None` once the stream has ended.
    ledger: Option<Ledger>,
    /// The output guardrails' sliding window; `None` when nothing in the stream is screened.
    screen: Option<StreamScreen>,
    /// The id, model and time of the stream's chunks, for a last chunk of held-back text.
    last: Option<ChatCompletionChunk>,
    /// The upstream stream has ended (it must not be polled again).
    inner_done: bool,
    wants_usage: bool,
    prompt_estimate: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    usage: Option<Usage>,
    generated_chars: usize,
    /// Assembles the answer for the cache, when it keeps this one.
    keeper: Option<Box<StreamKeeper>>,
}

impl AccountedStream {
    /// `usage`: whether the client asked for a usage chunk, and the prompt's estimated tokens.
    pub(crate) fn new(
        inner: ChunkStream,
        ledger: Ledger,
        screen: StreamScreen,
        (wants_usage, prompt_estimate): (bool, u64),
        deadline: Instant,
        keeper: Option<Box<StreamKeeper>>,
    ) -> AccountedStream {
        AccountedStream {
            inner,
            ledger: Some(ledger),
            screen: screen.is_active().then_some(screen),
            last: None,
            inner_done: false,
            wants_usage,
            prompt_estimate,
            deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
            usage: None,
            generated_chars: 0,
            keeper,
        }
    }

    /// Hands the ledger what the stream carried: the usage it reported, or an estimate.
    fn take_ledger(&mut self) -> Option<Ledger> {
        let mut ledger = self.ledger.take()?;
        if let Some(screen) = &mut self.screen {
            ledger.guard_actions(&screen.take_actions());
        }
        match &self.usage {
            Some(u) => ledger.set_usage(u),
            None => ledger.estimated(self.prompt_estimate, self.generated_chars),
        }
        Some(ledger)
    }

    fn end_ok(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.finish(self.usage.as_ref());
        }
        if let Some(mut ledger) = self.take_ledger() {
            ledger.record.status = 200;
            ledger.close();
        }
    }

    /// Takes in one chunk of the upstream's stream: its usage kept (and passed on only when
    /// the client asked for it), its text screened, the answer kept for the cache. Whether the
    /// chunk goes on to the client.
    fn take_in(&mut self, chunk: &mut ChatCompletionChunk) -> Result<bool, GatewayError> {
        if let Some(u) = chunk.usage.take() {
            if self.wants_usage {
                chunk.usage = Some(u.clone());
            }
            self.usage = Some(u);
        }
        if let Some(screen) = &mut self.screen {
            // Screened text differs from the upstream's own frames: translate instead.
            chunk.native = None;
            screen.chunk(chunk)?;
            if self.last.is_none() {
                self.last = Some(ChatCompletionChunk::with_delta(
                    &chunk.id,
                    chunk.created,
                    &chunk.model,
                    Default::default(),
                ));
            }
        }
        if let Some(keeper) = &mut self.keeper {
            keeper.add(chunk);
        }
        Ok(!(chunk.choices.is_empty() && chunk.usage.is_none() && chunk.native.is_none()))
    }

    /// Counts what the chunk generated (text, tool-call arguments) for the token estimate and
    /// the ledger, and times the first token.
    fn count_generated(&mut self, chunk: &ChatCompletionChunk) {
        let mut first_content = false;
        for choice in &chunk.choices {
            if let Some(text) = &choice.delta.content {
                first_content |= self.generated_chars == 0 && !text.is_empty();
                self.generated_chars += text.len();
                if let Some(ledger) = &mut self.ledger {
                    ledger.keep_streamed(text);
                }
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                let args = call.function.as_ref().and_then(|f| f.arguments.as_ref());
                let len = args.map_or(0, String::len) + 1;
                first_content |= self.generated_chars == 0;
                self.generated_chars += len;
            }
        }
        if first_content && let Some(ledger) = &mut self.ledger {
            ledger.record.ttft_ms = Some(ledger.started.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn end_err(&mut self, e: &GatewayError) {
        if let Some(mut ledger) = self.take_ledger() {
            // The client got HTTP 200 and an error event; the record keeps the error's status.
            ledger.close_err(e);
        }
    }
}

impl AccountedStream {
    /// At the end of a stream that gave no finish reason, the text the window still holds, as
    /// one last chunk (or the guardrail's error). `None` when nothing is held.
    fn held_back(&mut self) -> Option<Result<ChatCompletionChunk, GatewayError>> {
        let screen = self.screen.as_mut()?;
        match screen.flush() {
            Ok(text) if text.is_empty() => None,
            Ok(text) => {
                let mut chunk = self.last.clone()?;
                chunk.choices[0].delta.content = Some(text);
                if let Some(keeper) = &mut self.keeper {
                    keeper.add(&chunk);
                }
                Some(Ok(chunk))
            }
            Err(e) => {
                self.end_err(&e);
                Some(Err(e))
            }
        }
    }
}

impl Drop for AccountedStream {
    /// Dropped before its end: the client went away. The ledger records it as such (see
    /// `Ledger::drop`), with the tokens streamed so far.
    fn drop(&mut self) {
        drop(self.take_ledger());
    }
}

impl Stream for AccountedStream {
    type Item = Result<ChatCompletionChunk, GatewayError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ledger.is_none() {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let e = GatewayError::new(
                504,
                "timeout_error",
                "request_deadline_exceeded",
                "the stream ran past the request's overall deadline (server.request_deadline)",
            );
            this.end_err(&e);
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            let polled = if this.inner_done {
                Poll::Ready(None)
            } else {
                this.inner.as_mut().poll_next(cx)
            };
            let mut chunk = match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.inner_done = true;
                    if let Some(held) = this.held_back() {
                        return Poll::Ready(Some(held));
                    }
                    this.end_ok();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    let e = GatewayError::from(e);
                    this.end_err(&e);
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(chunk))) => chunk,
            };
            match this.take_in(&mut chunk) {
                Err(e) => {
                    this.end_err(&e);
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(false) => continue, // a usage chunk the client did not ask for
                Ok(true) => {}
            }
            this.count_generated(&chunk);
            return Poll::Ready(Some(Ok(chunk)));
        }
    }
}
