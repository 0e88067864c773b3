//! The Responses request translation on the shapes the openai SDKs send.

use super::*;
use serde_json::json;

fn translate(body: Value) -> Result<ChatCompletionRequest, GatewayError> {
    let req: r::ResponsesRequest = serde_json::from_value(body).unwrap();
    let items = match req.input.clone() {
        Some(r::Input::Items(items)) => items,
        Some(r::Input::Text(text)) => vec![Item {
            role: Some("user".into()),
            content: Some(Content::Text(text)),
            ..Default::default()
        }],
        None => Vec::new(),
    };
    to_chat_request(&req, &items)
}

fn messages(req: &ChatCompletionRequest) -> Value {
    serde_json::to_value(&req.messages).unwrap()
}

#[test]
fn instructions_and_a_string_input_make_a_system_and_a_user_message() {
    let req = translate(json!({
        "model": "m", "instructions": "Be brief.", "input": "Hi",
        "max_output_tokens": 50, "temperature": 0.2, "user": "u-1", "stream": true,
        "metadata": {"k": "v"}, "store": false, "truncation": "disabled"
    }))
    .unwrap();
    assert_eq!(
        messages(&req),
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    );
    assert_eq!(req.max_tokens, Some(50));
    assert_eq!(req.user.as_deref(), Some("u-1"));
    assert!(req.wants_stream_usage(), "the egress needs the usage");
    assert!(
        req.origin.untranslated.is_empty(),
        "{:?}",
        req.origin.untranslated
    );
    assert!(
        req.extra.is_empty(),
        "nothing Responses-only reaches a chat API: {:?}",
        req.extra
    );
}

#[test]
fn a_function_call_round_trip_becomes_tool_calls_and_a_tool_message() {
    let req = translate(json!({"model": "m", "input": [
        {"role": "developer", "content": "Use tools."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "weather",
         "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
        {"type": "function_call", "call_id": "call_2", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "rain"},
                    {"type": "input_image", "image_url": "https://x/y.png"}]},
        {"role": "user", "content": "Thanks"}
    ]}))
    .unwrap();
    assert_eq!(
        messages(&req),
        json!([
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "user", "content": "Thanks"}
        ])
    );
}

#[test]
fn an_output_must_answer_a_call_and_items_must_be_well_formed() {
    let e = translate(json!({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "call_x", "output": "?"}
    ]}))
    .unwrap_err();
    assert_eq!((e.status, e.param.as_deref()), (400, Some("input[0]")));
    assert!(e.message.contains("call_x"), "{}", e.message);
    let e =
        translate(json!({"model": "m", "input": [{"role": "robot", "content": "x"}]})).unwrap_err();
    assert!(e.message.contains("role"), "{}", e.message);
    // An item_reference may point at a call stored at OpenAI.
    let ok = translate(json!({"model": "m", "input": [
        {"type": "item_reference", "id": "fc_1"},
        {"type": "function_call_output", "call_id": "call_x", "output": "?"}
    ]}))
    .unwrap();
    assert_eq!(ok.origin.untranslated, ["input[0] (item_reference)"]);
}

#[test]
fn tools_choice_format_and_effort_map_and_built_ins_are_named() {
    let req = translate(json!({
        "model": "m", "input": "x",
        "tools": [
            {"type": "function", "name": "f", "description": "d",
             "parameters": {"type": "object", "properties": {}}, "strict": true},
            {"type": "web_search"}
        ],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": false,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "background": false,
        "max_tool_calls": 3
    }))
    .unwrap();
    let tools = req.tools.as_ref().unwrap();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].function.name, "f");
    assert_eq!(tools[0].function.strict, Some(true));
    assert_eq!(
        serde_json::to_value(&req.tool_choice).unwrap(),
        json!({"type": "function", "function": {"name": "f"}})
    );
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(
        req.extra["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}})
    );
    assert_eq!(req.extra["reasoning_effort"], "low");
    assert_eq!(
        req.origin.untranslated,
        ["tools[1] (web_search)", "max_tool_calls"]
    );
}

#[test]
fn parts_only_openai_can_read_are_named_and_inline_files_travel() {
    let req = translate(json!({"model": "m", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Read this"},
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"},
        {"type": "input_image", "file_id": "file-1"},
        {"type": "input_image", "image_url": "data:image/png;base64,BBBB", "detail": "high"}
    ]}]}))
    .unwrap();
    let content = &messages(&req)[0]["content"];
    assert_eq!(content[1]["file"]["filename"], "a.pdf");
    assert_eq!(
        content[2]["image_url"],
        json!({"url": "data:image/png;base64,BBBB", "detail": "high"})
    );
    assert_eq!(
        req.origin.untranslated,
        ["input[0].content[2] (input_image by file_id)"]
    );
}
