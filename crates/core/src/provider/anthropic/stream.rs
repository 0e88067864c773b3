//! Streaming translation: Anthropic's named SSE events into OpenAI `chat.completion.chunk`s,
//! as a state machine ([`Translator`]) that is pure and tested on recorded event sequences,
//! and a thin stream ([`chunks`]) that feeds it from the HTTP body.
//!
//! `message_start` opens with the assistant role; text deltas become `delta.content`;
//! a `tool_use` block start becomes the first fragment of a tool call (its OpenAI `index`
//! counts tool calls, not Anthropic's block index) and `input_json_delta`s its argument
//! fragments; `message_delta` carries the finish_reason; `message_stop` ends the stream with a
//! usage chunk (`choices: []`). An `error` event, which can arrive after HTTP 200, ends the
//! stream with an error; so does a body that ends before `message_stop`.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use serde_json::Value;
use switchyard_wire::anthropic::{self as a, BlockDelta, StreamEvent};
use switchyard_wire::openai::{ChatCompletionChunk, Delta, FunctionCallDelta, Role, ToolCallDelta};
use switchyard_wire::sse;

use super::translate;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::ChunkStream;
use crate::request::unix_secs;

#[derive(Debug, Default)]
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    usage: a::Usage,
    /// Anthropic block index → OpenAI tool-call index.
    tool_index: HashMap<u32, u32>,
    tool_calls: u32,
    finished: bool,
}

impl Translator {
    pub fn new(created: u64) -> Self {
        Translator {
            created,
            ..Default::default()
        }
    }

    /// Whether `message_stop` has been seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Consumes one event's JSON data, yielding at most one chunk.
    pub fn on_event(
        &mut self,
        provider: &str,
        data: &str,
    ) -> Result<Option<ChatCompletionChunk>, ProviderError> {
        let event: StreamEvent = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ErrorClass::Protocol,
                provider,
                format!("unreadable stream event: {e}"),
            )
        })?;
        Ok(match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.usage = message.usage;
                Some(self.chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Default::default()
                }))
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                a::ContentBlock::ToolUse { id, name, .. } => {
                    let k = self.tool_calls;
                    self.tool_calls += 1;
                    self.tool_index.insert(index, k);
                    Some(self.tool_chunk(ToolCallDelta {
                        index: k,
                        id: Some(id),
                        kind: Some("function".into()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(String::new()),
                        }),
                    }))
                }
                a::ContentBlock::Text { text, .. } if !text.is_empty() => {
                    Some(self.text_chunk(text))
                }
                _ => None,
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => Some(self.text_chunk(text)),
                BlockDelta::InputJsonDelta { partial_json } => {
                    // Input of a block that is not a client tool call (a server tool such as
                    // web search, which Anthropic runs itself) is not the client's business.
                    let Some(&k) = self.tool_index.get(&index) else {
                        return Ok(None);
                    };
                    Some(self.tool_chunk(ToolCallDelta {
                        index: k,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(partial_json),
                        }),
                    }))
                }
                BlockDelta::ThinkingDelta { thinking } => {
                    let mut delta = Delta::default();
                    delta
                        .extra
                        .insert("reasoning_content".into(), Value::String(thinking));
                    Some(self.chunk(delta))
                }
                BlockDelta::SignatureDelta { .. } | BlockDelta::Unknown => None,
            },
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    // `output_tokens` is cumulative; newer responses repeat the input counts.
                    self.usage.output_tokens = u.output_tokens;
                    if u.input_tokens > 0 {
                        self.usage.input_tokens = u.input_tokens;
                    }
                    if u.cache_read_input_tokens.is_some() {
                        self.usage.cache_read_input_tokens = u.cache_read_input_tokens;
                    }
                    if u.cache_creation_input_tokens.is_some() {
                        self.usage.cache_creation_input_tokens = u.cache_creation_input_tokens;
                    }
                }
                let reason =
                    translate::finish_reason(delta.stop_reason.as_deref().unwrap_or("end_turn"));
                let mut chunk = self.chunk(Delta::default());
                chunk.choices[0].finish_reason = Some(reason.into());
                Some(chunk)
            }
            StreamEvent::MessageStop => {
                self.finished = true;
                let mut chunk = self.chunk(Delta::default());
                chunk.choices.clear();
                chunk.usage = Some(translate::usage(&self.usage));
                Some(chunk)
            }
            StreamEvent::Error { error } => {
                let status = match error.kind.as_str() {
                    "overloaded_error" => 529,
                    "rate_limit_error" => 429,
                    "api_error" => 500,
                    "timeout_error" => 504,
                    "authentication_error" => 401,
                    "permission_error" => 403,
                    "not_found_error" => 404,
                    "request_too_large" => 413,
                    _ => 400,
                };
                let mut e = ProviderError::new(
                    ErrorClass::from_http(status, &error.kind, &error.message),
                    provider,
                    error.message,
                );
                e.upstream_code = Some(error.kind);
                return Err(e);
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => None,
        })
    }

    /// A chunk with no choices: carries the frame of an event that means nothing to the
    /// canonical stream (ping, content_block_stop, a thinking signature).
    fn carrier(&self) -> ChatCompletionChunk {
        let mut chunk = self.chunk(Delta::default());
        chunk.choices.clear();
        chunk
    }

    fn chunk(&self, delta: Delta) -> ChatCompletionChunk {
        ChatCompletionChunk::with_delta(&self.id, self.created, &self.model, delta)
    }

    fn text_chunk(&self, text: String) -> ChatCompletionChunk {
        self.chunk(Delta {
            content: Some(text),
            ..Default::default()
        })
    }

    fn tool_chunk(&self, call: ToolCallDelta) -> ChatCompletionChunk {
        self.chunk(Delta {
            tool_calls: Some(vec![call]),
            ..Default::default()
        })
    }
}

/// Turns the SSE events of an Anthropic stream into canonical chunks. With `keep_native` (the
/// client speaks the Messages API too), every event's frame rides along in the chunk it produced
/// (`native`), or in a chunk of its own when it produced none, so the client's egress can
/// forward the stream exactly as it came while the gateway still accounts it.
pub fn chunks(
    provider: Arc<str>,
    events: impl Stream<Item = Result<sse::Event, ProviderError>> + Send + 'static,
    keep_native: bool,
) -> ChunkStream {
    struct State<S> {
        events: S,
        provider: Arc<str>,
        translator: Translator,
        keep_native: bool,
        failed: bool,
    }
    let state = State {
        events: Box::pin(events),
        provider,
        translator: Translator::new(unix_secs()),
        keep_native,
        failed: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        if st.failed || st.translator.is_finished() {
            return None;
        }
        loop {
            match st.events.next().await {
                Some(Ok(event)) => match st.translator.on_event(&st.provider, &event.data) {
                    Ok(chunk) if st.keep_native => {
                        let mut chunk = chunk.unwrap_or_else(|| st.translator.carrier());
                        chunk.native = Some(event.to_frame());
                        return Some((Ok(chunk), st));
                    }
                    Ok(Some(chunk)) => return Some((Ok(chunk), st)),
                    Ok(None) => continue,
                    Err(e) => {
                        st.failed = true;
                        return Some((Err(e), st));
                    }
                },
                Some(Err(e)) => {
                    st.failed = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.failed = true;
                    let e = ProviderError::new(
                        ErrorClass::Connection,
                        &st.provider,
                        "the stream ended before message_stop",
                    );
                    return Some((Err(e), st));
                }
            }
        }
    }))
}
