//! A canonical chat completion into a Responses API `response` object, and the pieces of one
//! that the stream encoder builds too: output items, usage, status.
//!
//! Text becomes one `message` item with an `output_text` part; each tool call a `function_call`
//! item whose `call_id` is the tool call's id (what the client's `function_call_output` will
//! answer). A `length` finish makes the response `incomplete` with
//! `incomplete_details.reason: max_output_tokens` (`content_filter` likewise). Usage keeps
//! OpenAI's counting: cached tokens inside `input_tokens`, reasoning tokens inside
//! `output_tokens`. The request's settings are echoed back ([`Meta`]), as OpenAI does. Reasoning
//! text of other providers is left out: it has no encrypted form OpenAI would accept back.

use serde_json::{Map, Value, json};
use switchyard_wire::openai::{ChatCompletionResponse, Usage};
use switchyard_wire::responses::ResponsesRequest;

/// What a response says besides its output: its id, when it was made, and the request's
/// settings it echoes.
#[derive(Debug, Clone)]
pub struct Meta {
    pub id: String,
    pub created_at: u64,
    /// The model the client asked for, until an answer names the one that served.
    pub model: String,
    pub echo: Map<String, Value>,
}

impl Meta {
    pub fn new(req: &ResponsesRequest, created_at: u64) -> Meta {
        let or = |v: Option<Value>, default: Value| v.unwrap_or(default);
        let tools = req
            .tools
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok());
        let echo = json!({
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": or(req.metadata.clone(), json!({})),
            "parallel_tool_calls": req.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": req.previous_response_id,
            "reasoning": or(req.reasoning.clone(), json!({"effort": null, "summary": null})),
            "store": req.store.unwrap_or(true),
            "temperature": req.temperature.unwrap_or(1.0),
            "text": or(req.text.clone(), json!({"format": {"type": "text"}})),
            "tool_choice": or(req.tool_choice.clone(), json!("auto")),
            "tools": or(tools, json!([])),
            "top_p": req.top_p.unwrap_or(1.0),
            "truncation": or(req.extra.get("truncation").cloned(), json!("disabled")),
            "user": req.user,
        });
        Meta {
            id: new_id("resp"),
            created_at,
            model: req.model.clone(),
            echo: match echo {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }
}

/// A fresh id in OpenAI's style: `resp_…`, `msg_…`, `fc_…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// The `response` object for a whole chat completion.
pub fn to_response(chat: &ChatCompletionResponse, meta: &Meta) -> Value {
    let choice = chat.choices.first();
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    let (status, reason) = status_of(finish);
    let item_status = if reason.is_some() {
        "incomplete"
    } else {
        "completed"
    };
    let mut output = Vec::new();
    if let Some(text) = choice.and_then(|c| c.message.content.as_deref())
        && !text.is_empty()
    {
        output.push(message_item(&new_id("msg"), text, item_status));
    }
    for call in choice
        .and_then(|c| c.message.tool_calls.as_ref())
        .into_iter()
        .flatten()
    {
        output.push(function_call_item(
            &new_id("fc"),
            &call.id,
            &call.function.name,
            &call.function.arguments,
            "completed",
        ));
    }
    let model = if chat.model.is_empty() {
        &meta.model
    } else {
        &chat.model
    };
    let mut object = object(meta, model, status, output, chat.usage.as_ref());
    object["incomplete_details"] = reason.map_or(Value::Null, |r| json!({"reason": r}));
    object
}

/// A `response` object with the given status, output and usage.
pub fn object(
    meta: &Meta,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let mut object = json!({
        "id": meta.id,
        "object": "response",
        "created_at": meta.created_at,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "model": model,
        "output": output,
        "usage": usage.map(usage_of),
    });
    if status == "completed" {
        object["completed_at"] = switchyard_core::request::unix_secs().into();
    }
    if let Value::Object(map) = &mut object {
        map.extend(meta.echo.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    object
}

/// A response's status and `incomplete_details.reason` for a chat finish reason.
pub fn status_of(finish: Option<&str>) -> (&'static str, Option<&'static str>) {
    match finish {
        Some("length") => ("incomplete", Some("max_output_tokens")),
        Some("content_filter") => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

/// An assistant `message` item with one `output_text` part.
pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)],
    })
}

/// An `output_text` part.
pub fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub fn function_call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    })
}

/// The Responses usage block of a canonical usage.
pub fn usage_of(u: &Usage) -> Value {
    let reasoning = u
        .extra
        .get("completion_tokens_details")
        .and_then(|d| d.get("reasoning_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens()},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": u.prompt_tokens.saturating_add(u.completion_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        let req: ResponsesRequest = serde_json::from_value(json!({
            "model": "claude", "instructions": "Be brief.", "metadata": {"k": "v"},
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
        }))
        .unwrap();
        Meta::new(&req, 1_700_000_000)
    }

    #[test]
    fn a_completion_with_tool_calls_becomes_message_and_function_call_items() {
        let chat: ChatCompletionResponse = serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "claude-4",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
                "prompt_tokens_details": {"cached_tokens": 10}}
        }))
        .unwrap();
        let meta = meta();
        let r = to_response(&chat, &meta);
        assert!(r["id"].as_str().unwrap().starts_with("resp_"));
        assert_eq!(
            (r["object"].as_str(), r["status"].as_str()),
            (Some("response"), Some("completed"))
        );
        assert_eq!(r["model"], "claude-4");
        assert_eq!(r["output"][0]["type"], "message");
        assert_eq!(r["output"][0]["content"][0]["text"], "Let me look.");
        assert_eq!(r["output"][1]["type"], "function_call");
        assert_eq!(r["output"][1]["call_id"], "call_1");
        assert_eq!(r["output"][1]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 30, "input_tokens_details": {"cached_tokens": 10},
                   "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
                   "total_tokens": 35})
        );
        assert_eq!(r["instructions"], "Be brief.");
        assert_eq!(r["metadata"], json!({"k": "v"}));
        assert_eq!(r["tools"][0]["name"], "weather");
        assert_eq!(r["tool_choice"], "auto");
    }

    #[test]
    fn a_length_finish_is_an_incomplete_response() {
        let chat: ChatCompletionResponse = serde_json::from_value(json!({
            "id": "x", "model": "m", "choices": [{"index": 0, "finish_reason": "length",
                "message": {"role": "assistant", "content": "Once upon"}}]
        }))
        .unwrap();
        let r = to_response(&chat, &meta());
        assert_eq!(r["status"], "incomplete");
        assert_eq!(
            r["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(r["output"][0]["status"], "incomplete");
        assert!(r.get("completed_at").is_none());
    }

    /// Found by the `anthropic_stream` fuzz target: an upstream's absurd counts overflowed the
    /// Responses usage block's total.
    #[test]
    fn a_usage_total_beyond_u64_saturates_instead_of_panicking() {
        let usage = Usage::new(u64::MAX, 0, None);
        let usage = Usage {
            completion_tokens: 1,
            ..usage
        };
        assert_eq!(usage_of(&usage)["total_tokens"], u64::MAX);
    }
}
