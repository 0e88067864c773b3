//! A canonical chat completion into a Messages API `message`, and gateway errors into
//! Anthropic's error shape.
//!
//! Text becomes a text block and tool calls `tool_use` blocks (arguments parsed back into JSON);
//! the finish reason becomes `stop_reason`; usage splits cached prompt tokens out of
//! `input_tokens` into `cache_read_input_tokens`, as Anthropic counts them. Reasoning text of
//! other providers is left out: a thinking block without an Anthropic signature would be
//! refused if the client sent it back to Claude.

use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_wire::openai::{ChatCompletionResponse, Usage};

/// The `message` object for `response`.
pub fn to_message(response: &ChatCompletionResponse) -> Value {
    let choice = response.choices.first();
    let mut content = Vec::new();
    if let Some(text) = choice.and_then(|c| c.message.content.as_deref())
        && !text.is_empty()
    {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in choice
        .and_then(|c| c.message.tool_calls.as_ref())
        .into_iter()
        .flatten()
    {
        content.push(json!({
            "type": "tool_use",
            "id": call.id,
            "name": call.function.name,
            "input": tool_input(&call.function.arguments),
        }));
    }
    if content.is_empty() {
        content.push(json!({"type": "text", "text": ""}));
    }
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    json!({
        "id": message_id(&response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": usage(response.usage.as_ref()),
    })
}

/// Anthropic message ids start with `msg_`.
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{}", id.trim_start_matches("chatcmpl-"))
    }
}

/// A tool call's arguments as the `input` object. Arguments that are not a JSON object (a model
/// that produced broken JSON) are kept as a string under `_raw` rather than lost.
pub fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ if arguments.trim().is_empty() => json!({}),
        _ => json!({ "_raw": arguments }),
    }
}

pub fn stop_reason(finish: Option<&str>) -> &'static str {
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") | Some("function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic's usage: `input_tokens` without the cached ones.
pub fn usage(usage: Option<&Usage>) -> Value {
    let Some(u) = usage else {
        return json!({"input_tokens": 0, "output_tokens": 0});
    };
    let cached = u.cached_tokens();
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(cached),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    })
}

/// Anthropic's error `type` for a status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 415 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// `{"type":"error","error":{"type","message"},"request_id"}`; 413 keeps Anthropic's own type.
pub fn error_body(e: &GatewayError, request_id: &str) -> Value {
    let kind = if e.status == 413 {
        "request_too_large"
    } else {
        error_type(e.status)
    };
    json!({
        "type": "error",
        "error": {"type": kind, "message": e.message},
        "request_id": request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_with_tool_calls_becomes_a_tool_use_message() {
        let response: ChatCompletionResponse = serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.",
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35,
                "prompt_tokens_details": {"cached_tokens": 10}}
        }))
        .unwrap();
        let m = to_message(&response);
        assert_eq!(m["id"], "msg_1");
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(
            m["content"][0],
            json!({"type": "text", "text": "Let me look."})
        );
        assert_eq!(m["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(m["content"][1]["id"], "call_1");
        assert_eq!(m["usage"]["input_tokens"], 20);
        assert_eq!(m["usage"]["cache_read_input_tokens"], 10);
        assert_eq!(m["usage"]["output_tokens"], 5);
    }

    #[test]
    fn broken_tool_arguments_are_kept_not_lost() {
        assert_eq!(tool_input("{\"a\":"), json!({"_raw": "{\"a\":"}));
        assert_eq!(tool_input(""), json!({}));
    }

    #[test]
    fn errors_take_anthropic_types() {
        let e = GatewayError::new(429, "rate_limit_error", "rate_limited", "slow down");
        let body = error_body(&e, "r1");
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(error_type(529), "overloaded_error");
        assert_eq!(error_type(502), "api_error");
    }
}
