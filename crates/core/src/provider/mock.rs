//! The mock adapter: answers locally, with no network, so that the gateway runs and can be
//! demonstrated (and benchmarked) on a machine with no provider keys.
//!
//! It answers with fixed text or echoes the last user message, waits `latency` before the first
//! byte, streams `chunk_words` words per chunk every `chunk_interval`, fails a configurable
//! fraction of calls with a real-looking error, and returns deterministic embeddings (the same
//! text always gives the same unit vector). Usage is counted as the real thing would be roughly:
//! about four characters per prompt token, one token per output word.

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice, Delta, Embedding,
    EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse, EmbeddingsUsage, Extra,
    ResponseMessage, Role, Usage,
};

use super::{ChatReply, Deployment, Provider};
use crate::config::MockConfig;
use crate::error::{ErrorClass, ProviderError};
use crate::request::{new_request_id, unix_secs};
use crate::usage::estimate_prompt_tokens;

pub struct MockProvider {
    name: String,
    config: MockConfig,
}

impl MockProvider {
    pub fn new(name: &str, config: MockConfig) -> Self {
        MockProvider {
            name: name.to_owned(),
            config,
        }
    }

    async fn maybe_fail(&self) -> Result<(), ProviderError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        if self.config.failure_rate > 0.0 && rand::random::<f64>() < self.config.failure_rate {
            let status = self.config.failure_status;
            let mut e = ProviderError::new(
                ErrorClass::from_http(status, "", ""),
                &self.name,
                format!(
                    "simulated failure (mock failure_rate {})",
                    self.config.failure_rate
                ),
            );
            e.status = Some(status);
            if status == 429 {
                e.retry_after = Some(Duration::from_secs(1));
            }
            return Err(e);
        }
        Ok(())
    }

    fn answer(&self, request: &ChatCompletionRequest) -> String {
        if self.config.echo {
            request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .and_then(|m| m.content.as_ref())
                .map(|c| c.text())
                .unwrap_or_default()
        } else {
            self.config.text.clone()
        }
    }
}

impl Provider for MockProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        _deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            self.maybe_fail().await?;
            let mut text = self.answer(request);
            let mut finish_reason = "stop";
            // Honour max_tokens the way a model would: stop after that many words.
            if let Some(limit) = request.output_token_limit() {
                let words: Vec<&str> = text.split_inclusive(' ').collect();
                if words.len() > limit as usize {
                    text = words[..limit as usize].concat().trim_end().to_owned();
                    finish_reason = "length";
                }
            }
            let usage = Usage::new(
                estimate_prompt_tokens(request),
                text.split_whitespace().count() as u64,
                None,
            );
            let id = format!("chatcmpl-mock-{}", new_request_id());
            let created = unix_secs();
            if !request.is_stream() {
                return Ok(ChatReply::Complete(ChatCompletionResponse {
                    id,
                    object: "chat.completion".into(),
                    created,
                    model: request.model.clone(),
                    choices: vec![Choice {
                        index: 0,
                        message: ResponseMessage {
                            role: Role::Assistant,
                            content: Some(text),
                            tool_calls: None,
                            extra: Extra::new(),
                        },
                        finish_reason: Some(finish_reason.into()),
                        extra: Extra::new(),
                    }],
                    usage: Some(usage),
                    extra: Extra::new(),
                }));
            }
            let model = request.model.clone();
            let chunk =
                move |delta: Delta| ChatCompletionChunk::with_delta(&id, created, &model, delta);
            let mut chunks = vec![chunk(Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Default::default()
            })];
            let words: Vec<&str> = text.split_inclusive(' ').collect();
            for group in words.chunks(self.config.chunk_words.max(1)) {
                chunks.push(chunk(Delta {
                    content: Some(group.concat()),
                    ..Default::default()
                }));
            }
            let mut last = chunk(Delta::default());
            last.choices[0].finish_reason = Some(finish_reason.into());
            chunks.push(last);
            let mut usage_chunk = chunk(Delta::default());
            usage_chunk.choices.clear();
            usage_chunk.usage = Some(usage);
            chunks.push(usage_chunk);

            let interval = self.config.chunk_interval;
            let stream = stream::unfold(
                (chunks.into_iter(), true),
                move |(mut it, first)| async move {
                    let chunk = it.next()?;
                    if !first && !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                    Some((Ok(chunk), (it, false)))
                },
            );
            Ok(ChatReply::Stream(Box::pin(stream)))
        })
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingsRequest,
        _deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<EmbeddingsResponse, ProviderError>> {
        Box::pin(async move {
            self.maybe_fail().await?;
            let texts = request.texts().ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::InvalidRequest,
                    &self.name,
                    "the mock provider embeds strings or lists of strings",
                )
            })?;
            let dims = request
                .dimensions
                .map(|d| d as usize)
                .unwrap_or(self.config.embedding_dimensions)
                .max(1);
            let data = texts
                .iter()
                .enumerate()
                .map(|(i, t)| Embedding {
                    object: "embedding".into(),
                    index: i as u32,
                    embedding: EmbeddingVector::Float(pseudo_embedding(t, dims)),
                })
                .collect();
            let tokens: u64 = texts.iter().map(|t| t.len().div_ceil(4) as u64).sum();
            Ok(EmbeddingsResponse {
                object: "list".into(),
                data,
                model: request.model.clone(),
                usage: Some(EmbeddingsUsage {
                    prompt_tokens: tokens,
                    total_tokens: tokens,
                }),
                extra: Extra::new(),
            })
        })
    }
}

/// A deterministic unit vector derived from the text (FNV-1a seeded xorshift).
fn pseudo_embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = pseudo_embedding("hello", 32);
        assert_eq!(a, pseudo_embedding("hello", 32));
        assert_ne!(a, pseudo_embedding("hellp", 32));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}
