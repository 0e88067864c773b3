//! Streams and the cache: [`stream_of`] plays a cached answer back as the chunks of a stream
//! (so a streamed request is answered from an entry a plain one stored, and the other way round),
//! and [`StreamCapture`] assembles a streamed answer, as the client received it, into the one
//! answer the cache keeps.

use std::collections::BTreeMap;

use futures_util::stream;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionResponse, Choice, ChunkChoice, Delta, FunctionCall,
    FunctionCallDelta, ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};

use crate::provider::ChunkStream;

/// A cached answer as a stream: per choice, its text, then its tool calls, then its finish
/// reason; then the usage. Whole texts in one chunk each: the answer is already complete, and
/// fewer frames are less to send.
pub fn stream_of(answer: &ChatCompletionResponse) -> ChunkStream {
    let chunk = |delta: Delta, index: u32, finish: Option<String>| ChatCompletionChunk {
        choices: vec![ChunkChoice {
            index,
            delta,
            finish_reason: finish,
            extra: Default::default(),
        }],
        ..ChatCompletionChunk::with_delta(
            &answer.id,
            answer.created,
            &answer.model,
            Delta::default(),
        )
    };
    let mut chunks = Vec::new();
    for choice in &answer.choices {
        let message = &choice.message;
        chunks.push(chunk(
            Delta {
                role: Some(Role::Assistant),
                content: message.content.clone(),
                ..Default::default()
            },
            choice.index,
            None,
        ));
        if let Some(calls) = &message.tool_calls {
            let deltas = calls.iter().enumerate().map(|(i, call)| ToolCallDelta {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                id: Some(call.id.clone()),
                kind: Some(call.kind.clone()),
                function: Some(FunctionCallDelta {
                    name: Some(call.function.name.clone()),
                    arguments: Some(call.function.arguments.clone()),
                }),
            });
            let delta = Delta {
                tool_calls: Some(deltas.collect()),
                ..Default::default()
            };
            chunks.push(chunk(delta, choice.index, None));
        }
        let finish = choice.finish_reason.clone().or(Some("stop".into()));
        chunks.push(chunk(Delta::default(), choice.index, finish));
    }
    if let Some(usage) = &answer.usage {
        let mut last = chunk(Delta::default(), 0, None);
        last.choices.clear();
        last.usage = Some(usage.clone());
        chunks.push(last);
    }
    Box::pin(stream::iter(chunks.into_iter().map(Ok)))
}

/// A streamed answer being assembled, chunk by chunk.
#[derive(Default)]
pub struct StreamCapture {
    id: String,
    model: String,
    created: u64,
    choices: BTreeMap<u32, Assembling>,
    usage: Option<Usage>,
    /// A chunk the capture could not follow (a choice index past reason): nothing is stored.
    spoiled: bool,
}

#[derive(Default)]
struct Assembling {
    content: Option<String>,
    calls: BTreeMap<u32, ToolCall>,
    finish: Option<String>,
}

impl StreamCapture {
    pub fn add(&mut self, chunk: &ChatCompletionChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.model.clone_from(&chunk.model);
            self.created = chunk.created;
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in &chunk.choices {
            if choice.index > 16 {
                self.spoiled = true;
                return;
            }
            let at = self.choices.entry(choice.index).or_default();
            if let Some(text) = &choice.delta.content {
                at.content.get_or_insert_with(String::new).push_str(text);
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                at.add_call(call);
            }
            if let Some(finish) = &choice.finish_reason {
                at.finish = Some(finish.clone());
            }
        }
    }

    /// The usage the stream reported, which its consumer may have taken out of the chunks.
    pub fn set_usage(&mut self, usage: Option<&Usage>) {
        if let Some(u) = usage {
            self.usage = Some(u.clone());
        }
    }

    /// The whole answer, when the stream finished every choice normally: an answer cut short or
    /// filtered for content is never cached.
    pub fn finish(self) -> Option<ChatCompletionResponse> {
        if self.spoiled || self.choices.is_empty() {
            return None;
        }
        let finished = |c: &Assembling| {
            c.finish
                .as_deref()
                .is_some_and(|f| f != "content_filter" && f != "error")
        };
        if !self.choices.values().all(finished) {
            return None;
        }
        let choices = self.choices.into_iter().map(|(index, c)| Choice {
            index,
            message: ResponseMessage {
                role: Role::Assistant,
                content: c.content,
                tool_calls: (!c.calls.is_empty()).then(|| c.calls.into_values().collect()),
                extra: Default::default(),
            },
            finish_reason: c.finish,
            extra: Default::default(),
        });
        Some(ChatCompletionResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: self.created,
            model: self.model,
            choices: choices.collect(),
            usage: self.usage,
            extra: Default::default(),
        })
    }
}

impl Assembling {
    fn add_call(&mut self, delta: &ToolCallDelta) {
        let call = self.calls.entry(delta.index).or_insert_with(|| ToolCall {
            id: String::new(),
            kind: "function".into(),
            function: FunctionCall {
                name: String::new(),
                arguments: String::new(),
            },
        });
        if let Some(id) = &delta.id {
            call.id.clone_from(id);
        }
        if let Some(kind) = &delta.kind {
            call.kind.clone_from(kind);
        }
        if let Some(f) = &delta.function {
            if let Some(name) = &f.name {
                call.function.name.push_str(name);
            }
            if let Some(args) = &f.arguments {
                call.function.arguments.push_str(args);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn answer() -> ChatCompletionResponse {
        serde_json::from_value(serde_json::json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "lookup", "arguments": "{\"q\":1}"}}]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_answer_played_as_a_stream_and_captured_is_the_same_answer() {
        let chunks: Vec<_> = stream_of(&answer()).collect().await;
        let mut capture = StreamCapture::default();
        for chunk in &chunks {
            capture.add(chunk.as_ref().unwrap());
        }
        assert_eq!(capture.finish().unwrap(), answer());
    }

    #[test]
    fn streams_cut_short_or_filtered_are_not_kept() {
        let chunk = |finish: Option<&str>| {
            let mut c = ChatCompletionChunk::with_delta(
                "id",
                1,
                "m",
                Delta {
                    content: Some("Hello".into()),
                    ..Default::default()
                },
            );
            c.choices[0].finish_reason = finish.map(str::to_owned);
            c
        };
        let mut cut = StreamCapture::default();
        cut.add(&chunk(None));
        assert!(cut.finish().is_none());
        let mut filtered = StreamCapture::default();
        filtered.add(&chunk(Some("content_filter")));
        assert!(filtered.finish().is_none());
        let mut whole = StreamCapture::default();
        whole.add(&chunk(None));
        whole.add(&chunk(Some("stop")));
        let answer = whole.finish().unwrap();
        assert_eq!(
            answer.choices[0].message.content.as_deref(),
            Some("HelloHello")
        );
    }
}
