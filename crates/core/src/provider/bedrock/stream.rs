//! ConverseStream: the binary `application/vnd.amazon.eventstream` body decoded into frames
//! ([`FrameReader`], built on `aws-smithy-eventstream`'s `MessageFrameDecoder`, fed the body as
//! it arrives), and the frames translated into OpenAI `chat.completion.chunk`s by a pure state
//! machine ([`Translator`]), as `anthropic::stream` does for Anthropic's SSE.
//!
//! `messageStart` opens with the assistant role; a `contentBlockStart` with `toolUse` is the
//! first fragment of a tool call (its OpenAI `index` counts tool calls, not Converse's block
//! index) and `toolUse` deltas its argument fragments; text deltas become `delta.content`,
//! reasoning deltas the non-standard `reasoning_content`; `messageStop` carries the
//! finish_reason; `metadata` ends the stream with a usage chunk (`choices: []`). An exception
//! frame (`:message-type: exception`), which can arrive after HTTP 200, ends the stream with an
//! error classified from its `:exception-type`; so does a body that ends before `messageStop`.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, stream};
use serde::de::DeserializeOwned;
use switchyard_wire::bedrock as b;
use switchyard_wire::openai::{ChatCompletionChunk, Delta, Role, ToolCallDelta};

use super::translate;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::ChunkStream;
use crate::provider::tool_calls::ToolCallNumbers;

/// One decoded event-stream message: the headers the translation reads, and the JSON payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    /// `event`, `exception` or `error`.
    pub message_type: String,
    /// `:event-type` of an event, `:exception-type` of an exception, `:error-code` of an error.
    pub kind: String,
    pub payload: Bytes,
}

/// Cuts an event-stream body into frames. Bytes go in with [`push`](Self::push) as they arrive;
/// [`next_frame`](Self::next_frame) yields each complete frame. A frame larger than the cap is
/// refused as soon as its length prefix is seen, before it is buffered.
pub struct FrameReader {
    buf: BytesMut,
    decoder: MessageFrameDecoder,
    /// The total length of the frame being read, once its first four bytes are in.
    pending: Option<usize>,
    max_frame: usize,
}

impl FrameReader {
    pub fn new(max_frame: usize) -> Self {
        FrameReader {
            buf: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            pending: None,
            max_frame,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        if self.pending.is_none() && self.buf.len() >= 4 {
            let total = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
            if total as usize > self.max_frame {
                return Err(format!(
                    "an event-stream frame of {total} bytes is larger than the {} allowed (server.max_upstream_event_size)",
                    self.max_frame
                ));
            }
            self.pending = Some(total as usize);
        }
        match self.decoder.decode_frame(&mut self.buf) {
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Ok(DecodedFrame::Complete(message)) => {
                self.pending = None;
                let header = |name: &str| {
                    message
                        .headers()
                        .iter()
                        .find(|h| h.name().as_str() == name)
                        .and_then(|h| h.value().as_string().ok())
                        .map(|s| s.as_str().to_owned())
                };
                let message_type = header(":message-type").unwrap_or_else(|| "event".into());
                let kind = match message_type.as_str() {
                    "exception" => header(":exception-type"),
                    "error" => header(":error-code"),
                    _ => header(":event-type"),
                };
                let mut payload = message.payload().clone();
                if message_type == "error" {
                    // An `error` frame carries its text in a header, not in the payload.
                    let text = header(":error-message").unwrap_or_default();
                    payload = Bytes::from(serde_json::json!({ "message": text }).to_string());
                }
                Ok(Some(Frame {
                    message_type,
                    kind: kind.unwrap_or_default(),
                    payload,
                }))
            }
            Err(e) => Err(format!("unreadable event-stream frame: {e}")),
        }
    }

    /// Whether bytes of an unfinished frame are left (checked when the body ends).
    pub fn has_partial_frame(&self) -> bool {
        self.pending.is_some() || !self.buf.is_empty()
    }
}

/// Reads an event-stream body as frames. The stream yields `Err` once and ends if the body
/// stalls for `idle`, the connection breaks, a frame is malformed or larger than `max_frame`,
/// or the body ends inside a frame.
pub fn frames(
    provider: Arc<str>,
    response: reqwest::Response,
    idle: Duration,
    max_frame: usize,
) -> impl Stream<Item = Result<Frame, ProviderError>> + Send + 'static {
    struct State<B> {
        body: B,
        reader: FrameReader,
        provider: Arc<str>,
        finished: bool,
    }
    let state = State {
        body: Box::pin(response.bytes_stream()),
        reader: FrameReader::new(max_frame),
        provider,
        finished: false,
    };
    stream::unfold(state, move |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            match st.reader.next_frame() {
                Ok(Some(frame)) => return Some((Ok(frame), st)),
                Ok(None) => {}
                Err(e) => {
                    st.finished = true;
                    return Some((Err(protocol(&st.provider, e)), st));
                }
            }
            let error = match tokio::time::timeout(idle, st.body.next()).await {
                Ok(Some(Ok(bytes))) => {
                    st.reader.push(&bytes);
                    continue;
                }
                Ok(None) if !st.reader.has_partial_frame() => return None,
                Ok(None) => ProviderError::new(
                    ErrorClass::Connection,
                    &st.provider,
                    "the stream ended inside an event-stream frame",
                ),
                Ok(Some(Err(e))) => crate::provider::http::transport_error(&st.provider, &e),
                Err(_) => ProviderError::new(
                    ErrorClass::Timeout,
                    &st.provider,
                    format!("the stream stalled for {idle:?}"),
                ),
            };
            st.finished = true;
            return Some((Err(error), st));
        }
    })
}

fn protocol(provider: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorClass::Protocol, provider, message)
}

fn parse<T: DeserializeOwned>(provider: &str, frame: &Frame) -> Result<T, ProviderError> {
    serde_json::from_slice(&frame.payload)
        .map_err(|e| protocol(provider, format!("unreadable {} event: {e}", frame.kind)))
}

/// The error an exception frame reports, classified from its type.
pub fn exception_error(provider: &str, frame: &Frame) -> ProviderError {
    let body: b::ErrorBody = serde_json::from_slice(&frame.payload).unwrap_or_default();
    let message = body
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| format!("Bedrock sent {} mid-stream", frame.kind));
    let mut e = ProviderError::new(
        super::classify(&frame.kind, None, &message),
        provider,
        message,
    );
    e.upstream_code = Some(frame.kind.clone()).filter(|k| !k.is_empty());
    e
}

#[derive(Debug, Default)]
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    tool_calls: ToolCallNumbers,
    /// `messageStop` seen: the answer is complete, only the usage may follow.
    stopped: bool,
    /// `metadata` seen: nothing follows.
    finished: bool,
}

impl Translator {
    /// `id` and `model` name the chunks: Converse's events name neither.
    pub fn new(id: String, model: String, created: u64) -> Self {
        Translator {
            id,
            model,
            created,
            ..Default::default()
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Consumes one frame, yielding at most one chunk.
    pub fn on_frame(
        &mut self,
        provider: &str,
        frame: &Frame,
    ) -> Result<Option<ChatCompletionChunk>, ProviderError> {
        if frame.message_type != "event" {
            return Err(exception_error(provider, frame));
        }
        Ok(match frame.kind.as_str() {
            "messageStart" => Some(self.chunk(Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Default::default()
            })),
            "contentBlockStart" => {
                let event: b::ContentBlockStartEvent = parse(provider, frame)?;
                event
                    .start
                    .tool_use
                    .map(|t| self.tool_start(event.content_block_index, t))
            }
            "contentBlockDelta" => {
                let event: b::ContentBlockDeltaEvent = parse(provider, frame)?;
                self.on_delta(event)
            }
            "messageStop" => {
                let event: b::MessageStopEvent = parse(provider, frame)?;
                self.stopped = true;
                let mut chunk = self.chunk(Delta::default());
                chunk.choices[0].finish_reason =
                    Some(translate::finish_reason(&event.stop_reason).into());
                Some(chunk)
            }
            "metadata" => {
                let event: b::MetadataEvent = parse(provider, frame)?;
                self.finished = true;
                let mut chunk = self.chunk(Delta::default());
                chunk.choices.clear();
                chunk.usage = event.usage.as_ref().map(translate::usage);
                Some(chunk)
            }
            // contentBlockStop, and event types added later.
            _ => None,
        })
    }

    fn tool_start(&mut self, block: u32, start: b::ToolUseStart) -> ChatCompletionChunk {
        let k = self.tool_calls.open(block);
        let call =
            ToolCallDelta::start(k, Some(start.tool_use_id), Some(start.name), String::new());
        self.chunk(Delta::tool_call(call))
    }

    fn on_delta(&mut self, event: b::ContentBlockDeltaEvent) -> Option<ChatCompletionChunk> {
        let delta = event.delta;
        if let Some(text) = delta.text {
            return Some(self.chunk(Delta::text(text)));
        }
        if let Some(tool) = delta.tool_use {
            // Input of a block that never announced a tool call has no call to belong to.
            let k = self.tool_calls.of(event.content_block_index)?;
            return Some(self.chunk(Delta::tool_call(ToolCallDelta::arguments(k, tool.input))));
        }
        let text = delta.reasoning_content.and_then(|r| r.text)?;
        Some(self.chunk(Delta::reasoning(text)))
    }

    fn chunk(&self, delta: Delta) -> ChatCompletionChunk {
        ChatCompletionChunk::with_delta(&self.id, self.created, &self.model, delta)
    }
}

/// Turns the frames of a ConverseStream body into canonical chunks.
pub fn chunks(
    provider: Arc<str>,
    translator: Translator,
    frames: impl Stream<Item = Result<Frame, ProviderError>> + Send + 'static,
) -> ChunkStream {
    struct State<S> {
        frames: S,
        provider: Arc<str>,
        translator: Translator,
        failed: bool,
    }
    let state = State {
        frames: Box::pin(frames),
        provider,
        translator,
        failed: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        if st.failed || st.translator.is_finished() {
            return None;
        }
        loop {
            let error = match st.frames.next().await {
                Some(Ok(frame)) => match st.translator.on_frame(&st.provider, &frame) {
                    Ok(Some(chunk)) => return Some((Ok(chunk), st)),
                    Ok(None) => continue,
                    Err(e) => e,
                },
                Some(Err(e)) => e,
                // Ended after messageStop without the metadata event: complete, usage unknown.
                None if st.translator.is_stopped() => return None,
                None => ProviderError::new(
                    ErrorClass::Connection,
                    &st.provider,
                    "the stream ended before messageStop",
                ),
            };
            st.failed = true;
            return Some((Err(error), st));
        }
    }))
}
