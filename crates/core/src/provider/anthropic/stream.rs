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

use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use switchyard_wire::anthropic::{self as a, BlockDelta, StreamEvent};
use switchyard_wire::openai::{ChatCompletionChunk, Delta, Role, ToolCallDelta};
use switchyard_wire::sse;

use super::translate;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::ChunkStream;
use crate::provider::tool_calls::ToolCallNumbers;
use crate::request::unix_secs;

#[derive(Debug, Default)]
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    usage: a::Usage,
    tool_calls: ToolCallNumbers,
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
            } => self.on_block_start(index, content_block),
            StreamEvent::ContentBlockDelta { index, delta } => self.on_block_delta(index, delta),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.add_usage(&u);
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
            StreamEvent::Error { error } => return Err(stream_error(provider, error)),
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Unknown => None,
        })
    }

    /// A content block opens: a client tool call starts (its id and name), text may start.
    fn on_block_start(
        &mut self,
        index: u32,
        block: a::ContentBlock,
    ) -> Option<ChatCompletionChunk> {
        match block {
            a::ContentBlock::ToolUse { id, name, .. } => {
                let k = self.tool_calls.open(index);
                let start = ToolCallDelta::start(k, Some(id), Some(name), String::new());
                Some(self.chunk(Delta::tool_call(start)))
            }
            a::ContentBlock::Text { text, .. } if !text.is_empty() => {
                Some(self.chunk(Delta::text(text)))
            }
            _ => None,
        }
    }

    fn on_block_delta(&mut self, index: u32, delta: BlockDelta) -> Option<ChatCompletionChunk> {
        match delta {
            BlockDelta::TextDelta { text } => Some(self.chunk(Delta::text(text))),
            BlockDelta::InputJsonDelta { partial_json } => {
                // Input of a block that is not a client tool call (a server tool such as
                // web search, which Anthropic runs itself) is not the client's business.
                let k = self.tool_calls.of(index)?;
                Some(self.chunk(Delta::tool_call(ToolCallDelta::arguments(k, partial_json))))
            }
            BlockDelta::ThinkingDelta { thinking } => Some(self.chunk(Delta::reasoning(thinking))),
            BlockDelta::SignatureDelta { .. } | BlockDelta::Unknown => None,
        }
    }

    /// `message_delta`'s usage: `output_tokens` is cumulative; newer responses repeat the
    /// input counts.
    fn add_usage(&mut self, u: &a::Usage) {
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

/// An `error` event after HTTP 200, classified by the status its type stands for.
fn stream_error(provider: &str, error: a::ErrorInfo) -> ProviderError {
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
    e
}
