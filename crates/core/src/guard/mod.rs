//! Guard: guardrails that screen what goes out to a provider and what comes back: PII, secrets,
//! prompt injection, banned patterns, custom webhooks.
//!
//! A [`Guardrail`] looks at a request, a response or one stream chunk and answers with a
//! [`Verdict`]: allow, redact (it has rewritten the value in place) or block. [`GuardChain`] runs
//! the configured guardrails in order, stops at the first block, and reports every action so that
//! it is recorded. Streamed chunks are screened one at a time, as they flow, never buffered. An
//! empty chain (today's default) allows everything at the cost of an empty loop.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use switchyard_wire::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};

use crate::error::GatewayError;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow,
    /// The guardrail rewrote the value; the string says what it removed (never the content).
    Redacted(String),
    /// Stop: the string is the reason shown to the client.
    Block(String),
}

pub trait Guardrail: Send + Sync {
    fn name(&self) -> &str;
    fn check_request<'a>(
        &'a self,
        request: &'a mut ChatCompletionRequest,
    ) -> BoxFuture<'a, Verdict>;
    fn check_response(&self, response: &mut ChatCompletionResponse) -> Verdict;
    fn check_chunk(&self, chunk: &mut ChatCompletionChunk) -> Verdict;
}

/// One guardrail action, for the request record.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardAction {
    pub guardrail: String,
    pub verdict: Verdict,
}

#[derive(Clone, Default)]
pub struct GuardChain {
    guards: Vec<Arc<dyn Guardrail>>,
}

impl GuardChain {
    pub fn new(guards: Vec<Arc<dyn Guardrail>>) -> Self {
        GuardChain { guards }
    }

    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }

    pub async fn screen_request(
        &self,
        request: &mut ChatCompletionRequest,
        actions: &mut Vec<GuardAction>,
    ) -> Result<(), GatewayError> {
        for g in &self.guards {
            let verdict = g.check_request(request).await;
            if matches!(verdict, Verdict::Redacted(_)) {
                // The client's own body still holds what was redacted: translate instead.
                request.origin.native = None;
            }
            self.note(g.as_ref(), verdict, actions)?;
        }
        Ok(())
    }

    pub fn screen_response(
        &self,
        response: &mut ChatCompletionResponse,
        actions: &mut Vec<GuardAction>,
    ) -> Result<(), GatewayError> {
        for g in &self.guards {
            let verdict = g.check_response(response);
            self.note(g.as_ref(), verdict, actions)?;
        }
        Ok(())
    }

    pub fn screen_chunk(
        &self,
        chunk: &mut ChatCompletionChunk,
        actions: &mut Vec<GuardAction>,
    ) -> Result<(), GatewayError> {
        for g in &self.guards {
            let verdict = g.check_chunk(chunk);
            if matches!(verdict, Verdict::Redacted(_)) {
                // The upstream's own frames still hold what was redacted.
                chunk.native = None;
            }
            self.note(g.as_ref(), verdict, actions)?;
        }
        Ok(())
    }

    fn note(
        &self,
        guard: &dyn Guardrail,
        verdict: Verdict,
        actions: &mut Vec<GuardAction>,
    ) -> Result<(), GatewayError> {
        match verdict {
            Verdict::Allow => Ok(()),
            Verdict::Redacted(_) => {
                actions.push(GuardAction {
                    guardrail: guard.name().to_owned(),
                    verdict,
                });
                Ok(())
            }
            Verdict::Block(ref reason) => {
                let err = GatewayError::new(
                    400,
                    "invalid_request_error",
                    "guardrail_blocked",
                    format!("blocked by guardrail \"{}\": {reason}", guard.name()),
                );
                actions.push(GuardAction {
                    guardrail: guard.name().to_owned(),
                    verdict,
                });
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_wire::openai::{ChatMessage, MessageContent, Role};

    /// Redacts the word "secret" and blocks "forbidden".
    struct WordGuard;

    impl Guardrail for WordGuard {
        fn name(&self) -> &str {
            "words"
        }
        fn check_request<'a>(
            &'a self,
            request: &'a mut ChatCompletionRequest,
        ) -> BoxFuture<'a, Verdict> {
            let mut verdict = Verdict::Allow;
            for m in &mut request.messages {
                if let Some(MessageContent::Text(t)) = &mut m.content {
                    if t.contains("forbidden") {
                        verdict = Verdict::Block("forbidden word".into());
                    } else if t.contains("secret") {
                        *t = t.replace("secret", "[REDACTED]");
                        verdict = Verdict::Redacted("secret".into());
                    }
                }
            }
            Box::pin(std::future::ready(verdict))
        }
        fn check_response(&self, _: &mut ChatCompletionResponse) -> Verdict {
            Verdict::Allow
        }
        fn check_chunk(&self, _: &mut ChatCompletionChunk) -> Verdict {
            Verdict::Allow
        }
    }

    fn request(text: &str) -> ChatCompletionRequest {
        ChatCompletionRequest {
            model: "m".into(),
            messages: vec![ChatMessage::new(Role::User, text)],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn the_chain_redacts_blocks_and_records() {
        let chain = GuardChain::new(vec![Arc::new(WordGuard)]);
        let mut actions = Vec::new();
        let mut req = request("my secret");
        chain.screen_request(&mut req, &mut actions).await.unwrap();
        assert_eq!(
            req.messages[0].content.as_ref().unwrap().text(),
            "my [REDACTED]"
        );
        assert_eq!(actions.len(), 1);

        let err = chain
            .screen_request(&mut request("forbidden"), &mut actions)
            .await
            .unwrap_err();
        assert_eq!(err.code, "guardrail_blocked");
    }
}
