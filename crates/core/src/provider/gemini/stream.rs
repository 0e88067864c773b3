//! Streaming translation: the frames of `streamGenerateContent?alt=sse` into OpenAI
//! `chat.completion.chunk`s, as a state machine ([`Translator`]) that is pure and tested on
//! recorded frames, and a thin stream ([`chunks`]) that feeds it from the HTTP body.
//!
//! Every Gemini frame is a whole `GenerateContentResponse` carrying only what is new, with no
//! event names and no end marker. A candidate's first appearance opens its choice with the
//! assistant role; text parts become `delta.content`, thought parts `reasoning_content`;
//! function calls arrive whole, so each becomes one tool-call delta with its id (carrying the
//! thought signature, see [`super::translate`]), name and complete arguments, its `index`
//! counting the candidate's calls; a `finishReason` becomes the finish chunk. Usage comes on
//! many frames (the last one complete), so it is sent once, as the final `choices: []` chunk,
//! when the body ends. A body that ends before any `finishReason` is an error, and so is a
//! frame holding an `error`, which Gemini can send after HTTP 200. A first frame with a
//! `promptFeedback.blockReason` and no candidates is the content-policy error, before any
//! chunk, so the executor can still fall back.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use serde_json::Value;
use switchyard_wire::gemini as g;
use switchyard_wire::openai::{ChatCompletionChunk, Delta, Role, ToolCallDelta};
use switchyard_wire::sse;

use super::translate;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::ChunkStream;
use crate::request::unix_secs;

#[derive(Debug, Default)]
struct CandidateState {
    tool_calls: u32,
    finished: bool,
}

#[derive(Debug)]
pub struct Translator {
    id: Option<String>,
    model: String,
    created: u64,
    candidates: BTreeMap<u32, CandidateState>,
    usage: Option<g::UsageMetadata>,
}

impl Translator {
    /// `model` names the answer until Gemini says which model version served it.
    pub fn new(model: &str, created: u64) -> Self {
        Translator {
            id: None,
            model: model.to_owned(),
            created,
            candidates: BTreeMap::new(),
            usage: None,
        }
    }

    /// Consumes one frame's JSON data, yielding the chunks it makes.
    pub fn on_frame(
        &mut self,
        provider: &str,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, ProviderError> {
        let frame: g::GenerateContentResponse = serde_json::from_str(data).map_err(|e| {
            ProviderError::new(
                ErrorClass::Protocol,
                provider,
                format!("unreadable stream frame: {e}"),
            )
        })?;
        if let Some(error) = &frame.error {
            return Err(super::stream_error(provider, error));
        }
        if self.id.is_none() {
            if frame.candidates.is_empty()
                && let Some(feedback) = frame
                    .prompt_feedback
                    .as_ref()
                    .filter(|f| f.block_reason.is_some())
            {
                return Err(translate::blocked(feedback, provider));
            }
            self.id = Some(translate::completion_id(frame.response_id.as_deref()));
        }
        if let Some(version) = frame.model_version {
            self.model = version;
        }
        if frame.usage_metadata.is_some() {
            self.usage = frame.usage_metadata;
        }
        let mut out = Vec::new();
        for (position, candidate) in frame.candidates.into_iter().enumerate() {
            self.on_candidate(provider, candidate, position as u32, &mut out)?;
        }
        Ok(out)
    }

    fn on_candidate(
        &mut self,
        provider: &str,
        candidate: g::Candidate,
        position: u32,
        out: &mut Vec<ChatCompletionChunk>,
    ) -> Result<(), ProviderError> {
        let index = candidate.index.unwrap_or(position);
        if let Entry::Vacant(slot) = self.candidates.entry(index) {
            slot.insert(CandidateState::default());
            out.push(self.chunk(
                index,
                Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Default::default()
                },
            ));
        }
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(delta) = self.part_delta(index, part) {
                out.push(self.chunk(index, delta));
            }
        }
        if let Some(reason) = candidate.finish_reason {
            let state = self.candidates.entry(index).or_default();
            let finish = translate::finish_reason(
                &reason,
                state.tool_calls > 0,
                provider,
                candidate.finish_message.as_deref(),
            )?;
            state.finished = true;
            let mut chunk = self.chunk(index, Delta::default());
            chunk.choices[0].finish_reason = Some(finish.into());
            out.push(chunk);
        }
        Ok(())
    }

    /// The delta of one part, if it says anything the client sees.
    fn part_delta(&mut self, index: u32, part: g::Part) -> Option<Delta> {
        if let Some(call) = part.function_call {
            let state = self.candidates.entry(index).or_default();
            let k = state.tool_calls;
            state.tool_calls += 1;
            let arguments = call
                .args
                .unwrap_or_else(|| Value::Object(Default::default()));
            let id = translate::tool_call_id(part.thought_signature.as_deref());
            let start = ToolCallDelta::start(k, Some(id), Some(call.name), arguments.to_string());
            return Some(Delta::tool_call(start));
        }
        let text = part.text.filter(|t| !t.is_empty())?;
        Some(match part.thought {
            Some(true) => Delta::reasoning(text),
            _ => Delta::text(text),
        })
    }

    /// The end of the body: the usage chunk, or an error if no candidate finished.
    pub fn on_end(&mut self, provider: &str) -> Result<Option<ChatCompletionChunk>, ProviderError> {
        if !self.candidates.values().any(|c| c.finished) {
            return Err(ProviderError::new(
                ErrorClass::Connection,
                provider,
                "the stream ended before a finishReason",
            ));
        }
        Ok(self.usage.as_ref().map(|u| {
            let mut chunk = self.chunk(0, Delta::default());
            chunk.choices.clear();
            chunk.usage = Some(translate::usage(u));
            chunk
        }))
    }

    fn chunk(&self, index: u32, delta: Delta) -> ChatCompletionChunk {
        let id = self.id.as_deref().unwrap_or("chatcmpl-gemini");
        let mut chunk = ChatCompletionChunk::with_delta(id, self.created, &self.model, delta);
        chunk.choices[0].index = index;
        chunk
    }
}

/// Turns the SSE events of a Gemini stream into canonical chunks.
pub fn chunks(
    provider: Arc<str>,
    model: &str,
    events: impl Stream<Item = Result<sse::Event, ProviderError>> + Send + 'static,
) -> ChunkStream {
    struct State<S> {
        events: S,
        provider: Arc<str>,
        translator: Translator,
        ready: VecDeque<ChatCompletionChunk>,
        done: bool,
    }
    let state = State {
        events: Box::pin(events),
        provider,
        translator: Translator::new(model, unix_secs()),
        ready: VecDeque::new(),
        done: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        loop {
            if let Some(chunk) = st.ready.pop_front() {
                return Some((Ok(chunk), st));
            }
            if st.done {
                return None;
            }
            let outcome = match st.events.next().await {
                Some(Ok(event)) if event.data.trim().is_empty() => continue,
                Some(Ok(event)) => st.translator.on_frame(&st.provider, &event.data),
                Some(Err(e)) => Err(e),
                None => {
                    st.done = true;
                    st.translator
                        .on_end(&st.provider)
                        .map(|usage| usage.into_iter().collect())
                }
            };
            match outcome {
                Ok(chunks) => st.ready.extend(chunks),
                Err(e) => {
                    st.done = true;
                    st.ready.clear();
                    return Some((Err(e), st));
                }
            }
        }
    }))
}
