//! The Responses API passthrough of the OpenAI adapter: a client that spoke `POST /v1/responses`
//! to a model served by OpenAI or Azure OpenAI gets its own body sent to the upstream's
//! `/responses` (with the upstream model name), and the upstream's answer back as it came —
//! the JSON object untouched, or every streamed event's frame riding along the canonical chunk
//! it produced, so that the entrance forwards the stream byte for byte while the gateway still
//! accounts it.
//!
//! The state machine [`Translator`] reads the Responses events into canonical chunks: the text
//! deltas, the function calls (an `output_item.added` of type `function_call` opens one, its
//! `function_call_arguments.delta`s carry the arguments), and the finish reason and usage of
//! `response.completed` / `response.incomplete`. `response.failed` and `error` end the stream
//! with an error. [`to_chat_completion`] reads a whole `response` object the same way, for the
//! stages that look inside an answer. Other OpenAI-dialect servers (vLLM, Ollama, Groq…)
//! mostly have no `/responses`: they get the canonical chat request, translated by the entrance.

use std::sync::Arc;

use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice, Delta, Extra,
    FunctionCall, ResponseMessage, Role, ToolCall, ToolCallDelta, Usage,
};
use switchyard_wire::responses::{self as r, StreamEvent};
use switchyard_wire::sse;

use super::OpenAiProvider;
use crate::config::ProviderKind;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::tool_calls::ToolCallNumbers;
use crate::provider::{ChatReply, ChunkStream, Deployment, RawResponse, http};
use crate::request::unix_secs;

impl OpenAiProvider {
    /// Whether the upstream serves the Responses API itself. Other OpenAI-compatible servers
    /// mostly do not: they are sent the translated chat request instead.
    pub(super) fn serves_responses(&self) -> bool {
        matches!(self.kind, ProviderKind::Openai | ProviderKind::Azure)
    }

    /// Sends the client's own Responses body. A `previous_response_id` was already expanded by
    /// the entrance into the whole conversation in `input`.
    pub(super) async fn respond(
        &self,
        request: &ChatCompletionRequest,
        body: &Value,
        deployment: &Deployment,
    ) -> Result<ChatReply, ProviderError> {
        let mut body = body.clone();
        body["model"] = request.model.clone().into();
        let bytes = serde_json::to_vec(&body).map_err(|e| self.protocol_error(e))?;
        let url = self.responses_url.clone();
        let response = self.post(url, &deployment.upstream_model, bytes).await?;
        if request.is_stream() {
            let events = http::events(
                self.name.clone(),
                response,
                self.timeouts.idle,
                self.max_event,
            );
            return Ok(ChatReply::Stream(chunks(self.name.clone(), events)));
        }
        let body =
            http::read_body(&self.name, response, self.timeouts.idle, self.chat_body).await?;
        let raw = RawResponse::responses(body).map_err(|e| {
            ProviderError::new(
                ErrorClass::Protocol,
                &self.name,
                format!("the response is not a Responses API response: {e}"),
            )
        })?;
        Ok(ChatReply::Raw(raw))
    }
}

/// The Responses endpoint of a provider: `{base}/responses`, or Azure's v1 path, which names
/// the deployment in the body's `model` rather than in the URL.
pub(super) fn url(kind: ProviderKind, base_url: &str) -> String {
    match kind {
        ProviderKind::Azure => format!("{base_url}/openai/v1/responses"),
        _ => format!("{base_url}/responses"),
    }
}

/// The translation state of one Responses stream.
#[derive(Debug, Default)]
pub struct Translator {
    id: String,
    model: String,
    created: u64,
    /// Output items that are function calls, numbered as tool calls.
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

    /// Whether the response reached its last event (`response.completed` or `.incomplete`).
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
                format!("unreadable Responses stream event: {e}"),
            )
        })?;
        Ok(match event {
            StreamEvent::Created { response } => {
                self.id = response.id;
                self.model = response.model;
                if response.created_at > 0.0 {
                    self.created = response.created_at as u64;
                }
                Some(self.chunk(Delta {
                    role: Some(Role::Assistant),
                    content: Some(String::new()),
                    ..Default::default()
                }))
            }
            StreamEvent::OutputItemAdded { output_index, item } => {
                if item.kind() != "function_call" {
                    return Ok(None);
                }
                let k = self.tool_calls.open(output_index);
                let arguments = item.arguments().unwrap_or_default().to_owned();
                let start = ToolCallDelta::start(k, item.call_id, item.name, arguments);
                Some(self.chunk(Delta::tool_call(start)))
            }
            StreamEvent::OutputTextDelta { delta } if !delta.is_empty() => {
                Some(self.chunk(Delta::text(delta)))
            }
            StreamEvent::FunctionCallArgumentsDelta {
                output_index,
                delta,
            } => {
                let Some(k) = self.tool_calls.of(output_index) else {
                    return Ok(None);
                };
                Some(self.chunk(Delta::tool_call(ToolCallDelta::arguments(k, delta))))
            }
            StreamEvent::Completed { response } | StreamEvent::Incomplete { response } => {
                self.finished = true;
                let mut chunk = self.chunk(Delta::default());
                chunk.choices[0].finish_reason =
                    Some(finish_reason(&response, self.tool_calls.count() > 0).into());
                chunk.usage = response.usage.as_ref().map(usage);
                Some(chunk)
            }
            StreamEvent::Failed { response } => {
                let error = response.error.unwrap_or_default();
                return Err(upstream_error(provider, error.code, error.message));
            }
            StreamEvent::Error { code, message } => {
                return Err(upstream_error(provider, code, message));
            }
            StreamEvent::OutputTextDelta { .. } | StreamEvent::Other => None,
        })
    }

    /// A chunk with no choices: carries the frame of an event that means nothing to the
    /// canonical stream.
    fn carrier(&self) -> ChatCompletionChunk {
        let mut chunk = self.chunk(Delta::default());
        chunk.choices.clear();
        chunk
    }

    fn chunk(&self, delta: Delta) -> ChatCompletionChunk {
        ChatCompletionChunk::with_delta(&self.id, self.created, &self.model, delta)
    }
}

/// An error the upstream reported inside a stream (`response.failed` or `error`).
fn upstream_error(provider: &str, code: Option<String>, message: String) -> ProviderError {
    let code = code.unwrap_or_default();
    let status = match code.as_str() {
        "rate_limit_exceeded" => 429,
        "invalid_prompt" | "invalid_request_error" => 400,
        _ => 500,
    };
    let message = if message.is_empty() {
        format!("the upstream reported a failure ({code})")
    } else {
        message
    };
    let mut e = ProviderError::new(
        ErrorClass::from_http(status, &code, &message),
        provider,
        message,
    );
    e.upstream_code = Some(code).filter(|c| !c.is_empty());
    e
}

/// The canonical finish reason of a finished response.
fn finish_reason(response: &r::ResponseObject, called_tools: bool) -> &'static str {
    let reason = response
        .incomplete_details
        .as_ref()
        .and_then(|d| d.reason.as_deref());
    match (response.status.as_deref(), reason) {
        (Some("incomplete"), Some("content_filter")) => "content_filter",
        (Some("incomplete"), _) => "length",
        _ if called_tools => "tool_calls",
        _ => "stop",
    }
}

/// A Responses usage block as the canonical usage (reasoning tokens kept in the details).
pub fn usage(u: &r::Usage) -> Usage {
    let cached = u.input_tokens_details.as_ref().map(|d| d.cached_tokens);
    let mut usage = Usage::new(u.input_tokens, u.output_tokens, cached);
    if let Some(details) = &u.output_tokens_details {
        usage.extra.insert(
            "completion_tokens_details".into(),
            json!({ "reasoning_tokens": details.reasoning_tokens }),
        );
    }
    usage
}

/// A whole `response` object as a chat completion: the text of its messages, its function
/// calls, its finish reason and usage. Built-in tool calls and reasoning items have no
/// canonical form and are left out.
pub fn to_chat_completion(response: r::ResponseObject) -> ChatCompletionResponse {
    let mut text = String::new();
    let mut calls = Vec::new();
    for item in &response.output {
        match item.kind() {
            "message" => {
                if let Some(r::Content::Parts(parts)) = &item.content {
                    for part in parts {
                        text.push_str(part.text.as_deref().unwrap_or_default());
                    }
                } else if let Some(r::Content::Text(t)) = &item.content {
                    text.push_str(t);
                }
            }
            "function_call" => calls.push(ToolCall {
                id: item.call_id.clone().unwrap_or_default(),
                kind: "function".into(),
                function: FunctionCall {
                    name: item.name.clone().unwrap_or_default(),
                    arguments: item.arguments().unwrap_or_default().to_owned(),
                },
            }),
            _ => {}
        }
    }
    let finish = finish_reason(&response, !calls.is_empty());
    ChatCompletionResponse {
        id: response.id,
        object: "chat.completion".into(),
        created: response.created_at as u64,
        model: response.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Role::Assistant,
                content: (!text.is_empty() || calls.is_empty()).then_some(text),
                tool_calls: (!calls.is_empty()).then_some(calls),
                extra: Extra::new(),
            },
            finish_reason: Some(finish.into()),
            extra: Extra::new(),
        }],
        usage: response.usage.as_ref().map(usage),
        extra: Extra::new(),
    }
}

/// Turns the SSE events of a Responses stream into canonical chunks, each carrying its event's
/// frame (`native`), or a chunk of its own when it produced none. The stream ends after
/// `response.completed` or `response.incomplete`; a body that ends before is an error.
pub fn chunks(
    provider: Arc<str>,
    events: impl Stream<Item = Result<sse::Event, ProviderError>> + Send + 'static,
) -> ChunkStream {
    struct State<S> {
        events: S,
        provider: Arc<str>,
        translator: Translator,
        failed: bool,
    }
    let state = State {
        events: Box::pin(events),
        provider,
        translator: Translator::new(unix_secs()),
        failed: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        if st.failed || st.translator.is_finished() {
            return None;
        }
        let result = loop {
            match st.events.next().await {
                Some(Ok(event)) if event.data.trim().is_empty() => continue,
                Some(Ok(event)) => match st.translator.on_event(&st.provider, &event.data) {
                    Ok(chunk) => {
                        let mut chunk = chunk.unwrap_or_else(|| st.translator.carrier());
                        chunk.native = Some(event.to_frame());
                        break Ok(chunk);
                    }
                    Err(e) => break Err(e),
                },
                Some(Err(e)) => break Err(e),
                None => {
                    break Err(ProviderError::new(
                        ErrorClass::Connection,
                        &st.provider,
                        "the stream ended before response.completed",
                    ));
                }
            }
        };
        st.failed = result.is_err();
        Some((result, st))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded-style stream: text, then a function call, then `response.completed`.
    const EVENTS: &[&str] = &[
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1700000000,"status":"in_progress","model":"gpt-4o-mini","output":[],"usage":null}}"#,
        r#"{"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","created_at":1700000000,"status":"in_progress","model":"gpt-4o-mini","output":[]}}"#,
        r#"{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}"#,
        r#"{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}"#,
        r#"{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Checking.","logprobs":[]}"#,
        r#"{"type":"response.output_item.added","sequence_number":5,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","call_id":"call_9","name":"weather","arguments":""}}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":6,"item_id":"fc_1","output_index":1,"delta":"{\"city\":"}"#,
        r#"{"type":"response.function_call_arguments.delta","sequence_number":7,"item_id":"fc_1","output_index":1,"delta":"\"Paris\"}"}"#,
        r#"{"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","object":"response","created_at":1700000000,"status":"completed","model":"gpt-4o-mini","output":[],"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":10},"output_tokens":12,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":42}}}"#,
    ];

    fn translate(events: &[&str]) -> Vec<Option<ChatCompletionChunk>> {
        let mut t = Translator::new(1);
        events
            .iter()
            .map(|e| t.on_event("openai", e).unwrap())
            .collect()
    }

    #[test]
    fn text_function_calls_finish_and_usage_become_canonical_chunks() {
        let chunks = translate(EVENTS);
        let first = chunks[0].as_ref().unwrap();
        assert_eq!(
            (first.id.as_str(), first.model.as_str()),
            ("resp_1", "gpt-4o-mini")
        );
        assert_eq!(first.choices[0].delta.role, Some(Role::Assistant));
        assert!(chunks[1].is_none() && chunks[2].is_none() && chunks[3].is_none());
        let text = chunks[4].as_ref().unwrap();
        assert_eq!(text.choices[0].delta.content.as_deref(), Some("Checking."));
        let call = &chunks[5].as_ref().unwrap().choices[0]
            .delta
            .tool_calls
            .as_ref()
            .unwrap()[0];
        assert_eq!((call.index, call.id.as_deref()), (0, Some("call_9")));
        assert_eq!(
            call.function.as_ref().unwrap().name.as_deref(),
            Some("weather")
        );
        let args: String = chunks[6..8]
            .iter()
            .map(|c| {
                let c = c.as_ref().unwrap();
                let d = &c.choices[0].delta.tool_calls.as_ref().unwrap()[0];
                d.function.as_ref().unwrap().arguments.clone().unwrap()
            })
            .collect();
        assert_eq!(args, r#"{"city":"Paris"}"#);
        let last = chunks[8].as_ref().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        let u = last.usage.as_ref().unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_tokens()),
            (30, 12, 10)
        );
        assert_eq!(u.extra["completion_tokens_details"]["reasoning_tokens"], 4);
    }

    #[test]
    fn an_incomplete_response_finishes_for_length() {
        let chunks = translate(&[
            EVENTS[0],
            r#"{"type":"response.incomplete","sequence_number":1,"response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"m","output":[]}}"#,
        ]);
        let last = chunks[1].as_ref().unwrap();
        assert_eq!(last.choices[0].finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn failures_inside_the_stream_are_classified_errors() {
        let mut t = Translator::new(1);
        let e = t
            .on_event(
                "openai",
                r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","sequence_number":3}"#,
            )
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::RateLimited);
        let e = t
            .on_event(
                "openai",
                r#"{"type":"response.failed","sequence_number":4,"response":{"id":"r","status":"failed","output":[],"error":{"code":"server_error","message":"boom"}}}"#,
            )
            .unwrap_err();
        assert_eq!(e.message, "boom");
        assert!(t.on_event("openai", "not json").is_err());
    }

    #[tokio::test]
    async fn every_frame_rides_along_and_a_cut_stream_is_an_error() {
        let named = |data: &str| {
            let kind: Value = serde_json::from_str(data).unwrap();
            Ok(sse::Event {
                event: kind["type"].as_str().map(str::to_owned),
                data: data.to_owned(),
            })
        };
        let all: Vec<_> = EVENTS.iter().map(|e| named(e)).collect();
        let out: Vec<_> = chunks("openai".into(), stream::iter(all)).collect().await;
        assert_eq!(out.len(), EVENTS.len(), "one chunk per event");
        let second = out[1].as_ref().unwrap();
        assert!(
            second.choices.is_empty(),
            "in_progress means nothing canonical"
        );
        let frame = String::from_utf8(second.native.clone().unwrap().to_vec()).unwrap();
        assert_eq!(
            frame,
            format!("event: response.in_progress\ndata: {}\n\n", EVENTS[1])
        );

        let cut: Vec<_> = EVENTS[..3].iter().map(|e| named(e)).collect();
        let out: Vec<_> = chunks("openai".into(), stream::iter(cut)).collect().await;
        let e = out.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.class, ErrorClass::Connection);
    }

    #[test]
    fn a_whole_response_reads_as_a_chat_completion() {
        let response: r::ResponseObject = serde_json::from_value(json!({
            "id": "resp_2", "object": "response", "created_at": 5, "status": "completed",
            "model": "gpt-4o-mini",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Hi there", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
                 "arguments": "{}", "status": "completed"}
            ],
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
        }))
        .unwrap();
        let chat = to_chat_completion(response);
        let choice = &chat.choices[0];
        assert_eq!(choice.message.content.as_deref(), Some("Hi there"));
        assert_eq!(choice.message.tool_calls.as_ref().unwrap()[0].id, "call_1");
        assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(chat.usage.unwrap().total_tokens, 7);
    }

    #[test]
    fn a_raw_response_reads_its_usage_and_decodes_for_the_stages_that_look_inside() {
        let body = json!({"id": "resp_3", "object": "response", "status": "completed",
            "model": "m", "output": [{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "ok"}]}],
            "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4,
                "input_tokens_details": {"cached_tokens": 2}}});
        let raw = RawResponse::responses(body.to_string().into()).unwrap();
        assert_eq!(raw.kind, crate::provider::BodyKind::Response);
        assert_eq!(raw.usage.as_ref().unwrap().cached_tokens(), 2);
        let chat = raw.decode().unwrap();
        assert_eq!(chat.choices[0].message.content.as_deref(), Some("ok"));
        let chat_completion = json!({"id": "c", "choices": [], "model": "m"});
        assert!(RawResponse::responses(chat_completion.to_string().into()).is_err());
    }

    #[test]
    fn azure_takes_its_v1_path() {
        assert_eq!(
            url(ProviderKind::Azure, "https://x.openai.azure.com"),
            "https://x.openai.azure.com/openai/v1/responses"
        );
        assert_eq!(
            url(ProviderKind::Openai, "https://api.openai.com/v1"),
            "https://api.openai.com/v1/responses"
        );
    }
}
