//! Responses: Anthropic Message → OpenAI chat.completion.

use super::*;

#[test]
fn documented_text_response_becomes_a_chat_completion() {
    let out = response(DOC_TEXT_RESPONSE);
    assert_eq!(out.id, "msg_013Zva2CMHLNnXjNJJKqJ2EF");
    assert_eq!(out.object, "chat.completion");
    assert_eq!(out.created, CREATED);
    assert_eq!(out.model, "claude-opus-4-6");
    assert_eq!(out.choices.len(), 1);
    let choice = &out.choices[0];
    assert_eq!(choice.message.role, Role::Assistant);
    assert_eq!(
        choice.message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
    assert!(choice.message.tool_calls.is_none());
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));

    // Anthropic's input_tokens excludes the cache: the prompt is all three together.
    let usage = out.usage.as_ref().expect("usage");
    assert_eq!(usage.prompt_tokens, 2095 + 2051 + 2051);
    assert_eq!(usage.completion_tokens, 503);
    assert_eq!(usage.total_tokens, 2095 + 2051 + 2051 + 503);
    assert_eq!(usage.cached_tokens(), 2051);

    let body = serde_json::to_value(&out).unwrap();
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        2051
    );
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hi! My name is Claude."
    );
}

#[test]
fn documented_tool_use_response_becomes_tool_calls() {
    let out = response(DOC_TOOL_USE_RESPONSE);
    let choice = &out.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        choice.message.content.as_deref(),
        Some("I'll check the current weather in San Francisco for you.")
    );
    let calls = choice.message.tool_calls.as_ref().expect("tool_calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(calls[0].kind, "function");
    assert_eq!(calls[0].function.name, "get_weather");
    // OpenAI clients expect a JSON string that parses to the input object.
    let args: Value = serde_json::from_str(&calls[0].function.arguments).expect("JSON arguments");
    assert_eq!(
        args,
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    // The documented example carries no usage: zeros, not a failure.
    assert_eq!(out.usage.as_ref().map(|u| u.total_tokens), Some(0));
}

#[test]
fn a_tool_use_only_response_has_null_content() {
    let out = response(TOOL_USE_ONLY_RESPONSE);
    let choice = &out.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().expect("tool_calls");
    assert_eq!(calls[0].id, "toolu_01D7FLrfh4GYq7yT1ULFeyMV");
    assert_eq!(calls[0].function.name, "get_stock_price");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"ticker": "^GSPC"}));

    let body = serde_json::to_value(&out).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(body["usage"]["prompt_tokens"], 410);
    assert_eq!(body["usage"]["completion_tokens"], 57);
}

#[test]
fn max_tokens_stop_is_length() {
    let mut msg: Value = serde_json::from_str(DOC_TEXT_RESPONSE).unwrap();
    msg["stop_reason"] = json!("max_tokens");
    let out = response(&msg.to_string());
    assert_eq!(out.choices[0].finish_reason.as_deref(), Some("length"));
    assert_eq!(
        out.choices[0].message.content.as_deref(),
        Some("Hi! My name is Claude.")
    );
}

#[test]
fn documented_refusal_is_content_filter() {
    let out = response(DOC_REFUSAL_RESPONSE);
    assert_eq!(
        out.choices[0].finish_reason.as_deref(),
        Some("content_filter")
    );
    assert_eq!(out.choices[0].message.content.as_deref(), Some("Hello.."));
}

#[test]
fn every_documented_stop_reason_has_an_openai_finish_reason() {
    assert_eq!(finish_reason("end_turn"), "stop");
    assert_eq!(finish_reason("stop_sequence"), "stop");
    assert_eq!(finish_reason("pause_turn"), "stop");
    assert_eq!(finish_reason("max_tokens"), "length");
    assert_eq!(finish_reason("model_context_window_exceeded"), "length");
    assert_eq!(finish_reason("tool_use"), "tool_calls");
    assert_eq!(finish_reason("refusal"), "content_filter");
}
