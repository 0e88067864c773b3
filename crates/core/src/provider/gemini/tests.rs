//! Tests of the Gemini adapter on payloads in the shapes Google's API reference and the live
//! API show (`generateContent` responses with thought signatures and usage details, `alt=sse`
//! streams with `\r\n` framing, error bodies with their google.rpc status). Streams go
//! through the real SSE parser in small reads before they reach the [`Translator`].

use serde_json::{Value, json};
use switchyard_wire::gemini::GenerateContentResponse;
use switchyard_wire::openai::{ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse};
use switchyard_wire::sse::{Event, Parser};

use super::stream::Translator;
use super::translate::{
    from_response, signature_of, to_generate_content, tool_call_id, without_signature,
};
use super::{GeminiProvider, reclassify, retry_delay, schema};
use crate::config::ProviderConfig;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::{Deployment, Provider, http};

const PROVIDER: &str = "gemini-test";
const CREATED: u64 = 1_717_171_717;
/// A thought signature as Gemini sends it: standard base64 with padding and `+`/`/`.
const SIGNATURE: &str = "CiQBjz1rX+8v/Qb0Pz1aA2dDc4pJ8l3yqTQx0VvP1kY3lq2nHwA=";

fn request(body: Value) -> ChatCompletionRequest {
    serde_json::from_value(body).expect("a valid chat request")
}

fn translate(body: Value) -> Value {
    let out = to_generate_content(&request(body)).expect("translates");
    serde_json::to_value(&out).expect("serializes")
}

fn translate_err(body: Value) -> String {
    to_generate_content(&request(body)).expect_err("must be refused")
}

fn respond(raw: &str) -> Result<ChatCompletionResponse, ProviderError> {
    let parsed: GenerateContentResponse = serde_json::from_str(raw).expect("the payload parses");
    from_response(parsed, "gemini-2.5-flash", CREATED, PROVIDER)
}

// ---------------------------------------------------------------------------------------------
// Tool-call ids carry thought signatures.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_tool_call_id_carries_the_signature_in_an_openai_safe_alphabet() {
    let id = tool_call_id(Some(SIGNATURE));
    assert!(id.starts_with("call_"), "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "{id}"
    );
    assert_eq!(signature_of(&id).as_deref(), Some(SIGNATURE));

    let plain = tool_call_id(None);
    assert_eq!(plain.len(), "call_".len() + 32);
    assert_eq!(signature_of(&plain), None);
    assert_eq!(without_signature(&plain), plain);
    assert_eq!(
        without_signature(&id).len(),
        plain.len(),
        "short enough for OpenAI's 40"
    );
    assert!(id.starts_with(without_signature(&id)));
    // Ids that other providers or clients made carry nothing.
    for foreign in [
        "call_abc_def",
        "toolu_01A09q90qw90lq917835lq9",
        "call_x_ts_AAAA",
        "",
    ] {
        assert_eq!(signature_of(foreign), None, "{foreign}");
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------------------------

#[test]
fn system_and_turns_become_system_instruction_and_merged_user_and_model_turns() {
    let out = translate(json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "there"}, {"type": "text", "text": ""}]},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Again"}
        ]
    }));
    assert_eq!(
        out["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]})
    );
    assert_eq!(
        out["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
            {"role": "model", "parts": [{"text": "Bonjour"}]},
            {"role": "user", "parts": [{"text": "Again"}]}
        ])
    );
    assert!(out.get("generationConfig").is_none());
    assert!(out.get("tools").is_none());
}

#[test]
fn images_become_inline_data_or_file_data() {
    let out = translate(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.JPG?size=2"}},
            {"type": "image_url", "image_url": {"url": "gs://bucket/dog.webp"}}
        ]}]
    }));
    let parts = &out["contents"][0]["parts"];
    assert_eq!(
        parts[1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    assert_eq!(
        parts[2],
        json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=2"}})
    );
    assert_eq!(parts[3]["fileData"]["mimeType"], "image/webp");

    let e = translate_err(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/render"}}]}]}),
    );
    assert!(
        e.contains("messages[0].content[0]") && e.contains("data: URL"),
        "{e}"
    );
}

#[test]
fn a_tool_round_trip_names_the_response_and_restores_the_signature() {
    let signed = tool_call_id(Some(SIGNATURE));
    let out = translate(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris and London?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": signed, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_from_elsewhere", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": signed, "content": "{\"temp\": 21}"},
            {"role": "tool", "tool_call_id": "call_from_elsewhere", "content": "noon"}
        ]
    }));
    assert_eq!(
        out["contents"][1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE},
            {"functionCall": {"name": "get_time", "args": {}}}
        ]})
    );
    assert_eq!(
        out["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}}
        ]})
    );

    let e = translate_err(json!({"model": "m", "messages": [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_unknown", "content": "1"}]}));
    assert!(e.contains("call_unknown") && e.contains("name"), "{e}");
    let e = translate_err(json!({"model": "m", "messages": [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}));
    assert!(e.contains("JSON object"), "{e}");
}

#[test]
fn tools_and_tool_choice_become_declarations_and_function_calling_config() {
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    ]);
    let cases = [
        (json!("auto"), json!({"mode": "AUTO"})),
        (json!("none"), json!({"mode": "NONE"})),
        (json!("required"), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "now"}}),
            json!({"mode": "ANY", "allowedFunctionNames": ["now"]}),
        ),
    ];
    for (choice, expected) in cases {
        let out = translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": tools, "tool_choice": choice}),
        );
        assert_eq!(out["toolConfig"]["functionCallingConfig"], expected);
        assert_eq!(
            out["tools"],
            json!([{"functionDeclarations": [
                {"name": "get_weather", "description": "Weather", "parameters":
                    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "now"}
            ]}])
        );
    }
    let e = translate_err(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search", "function": {"name": "s"}}]}),
    );
    assert!(e.contains("web_search"), "{e}");
}

#[test]
fn sampling_parameters_and_response_format_go_to_generation_config() {
    let out = translate(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_completion_tokens": 300, "stop": "END",
        "n": 2, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true, "schema":
            {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"], "additionalProperties": false}}}
    }));
    assert_eq!(
        out["generationConfig"],
        json!({
            "temperature": 0.2, "topP": 0.9, "topK": 40, "maxOutputTokens": 300, "stopSequences": ["END"],
            "candidateCount": 2, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"a": {"type": "string", "nullable": true}}, "required": ["a"]},
            "thinkingConfig": {"thinkingBudget": 1024}
        })
    );
    let out = translate(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1,
        "response_format": {"type": "json_object"},
        "thinking_config": {"include_thoughts": true, "thinking_budget": 2048}, "reasoning_effort": "high"}),
    );
    assert_eq!(
        out["generationConfig"],
        json!({"responseMimeType": "application/json",
            "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 2048}})
    );
    assert!(
        translate_err(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": "x"})
        )
        .contains("seed")
    );
}

// ---------------------------------------------------------------------------------------------
// Schemas.
// ---------------------------------------------------------------------------------------------

#[test]
fn schemas_are_reduced_to_geminis_subset() {
    let reduced = schema::to_gemini(&json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {
            "Unit": {"type": "string", "enum": ["c", "f"], "description": "unit"},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
        },
        "type": "object",
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "which unit"},
            "tree": {"$ref": "#/$defs/Node"},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email", "pattern": "^.+@.+$"},
            "count": {"anyOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "null"}]},
            "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "kind": {"const": "point"},
            "level": {"enum": [1, 2, 3], "type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
            "merged": {"allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "number"}}, "required": ["b"]}
            ]}
        },
        "required": ["unit", "ghost"],
        "additionalProperties": false
    }));
    let p = &reduced["properties"];
    assert_eq!(
        p["unit"],
        json!({"type": "string", "enum": ["c", "f"], "description": "which unit"})
    );
    assert_eq!(
        p["tree"],
        json!({"type": "object", "properties": {"next": {"type": "object"}}}),
        "a recursive reference is cut off after one expansion"
    );
    assert_eq!(p["when"], json!({"type": "string", "format": "date-time"}));
    assert_eq!(p["email"], json!({"type": "string", "pattern": "^.+@.+$"}));
    assert_eq!(p["count"], json!({"type": "integer", "nullable": true}));
    assert_eq!(
        p["either"],
        json!({"anyOf": [{"type": "string"}, {"type": "number"}]})
    );
    assert_eq!(p["kind"], json!({"type": "string", "enum": ["point"]}));
    assert_eq!(p["level"], json!({"type": "integer"}));
    assert_eq!(
        p["tags"],
        json!({"type": "array", "items": {"type": "string"}})
    );
    assert_eq!(p["meta"], json!({"type": "object"}));
    assert_eq!(
        p["merged"],
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a", "b"]})
    );
    assert_eq!(reduced["required"], json!(["unit"]));
    for dropped in ["$schema", "$defs", "additionalProperties"] {
        assert!(reduced.get(dropped).is_none(), "{dropped} kept");
    }
}

#[test]
fn parameterless_functions_send_no_parameters() {
    assert_eq!(schema::function_parameters(None), None);
    assert_eq!(
        schema::function_parameters(Some(&json!({"type": "object", "properties": {}}))),
        None
    );
    assert_eq!(
        schema::function_parameters(Some(&json!({"type": "object"}))),
        None
    );
    assert_eq!(
        schema::function_parameters(Some(&json!({"properties": {"q": {"type": "string"}}}))),
        Some(json!({"type": "object", "properties": {"q": {"type": "string"}}})),
        "a missing type is inferred"
    );
}

// ---------------------------------------------------------------------------------------------
// Whole responses.
// ---------------------------------------------------------------------------------------------

/// A Gemini 2.5 answer that thinks, says something and calls a function with a signature.
const FUNCTION_CALL_RESPONSE: &str = r#"{
  "candidates": [{
    "content": {"role": "model", "parts": [
      {"text": "Let me check.", "thoughtSignature": "c2lnLW9uLXRleHQ="},
      {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}, "thoughtSignature": "CiQBjz1rX+8v/Qb0Pz1aA2dDc4pJ8l3yqTQx0VvP1kY3lq2nHwA="}
    ]},
    "finishReason": "STOP", "index": 0
  }],
  "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 18, "totalTokenCount": 200,
    "cachedContentTokenCount": 64, "thoughtsTokenCount": 62,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
  "modelVersion": "gemini-2.5-flash",
  "responseId": "mW1JaKjZJ8iu1MkP2oKx-Ag"
}"#;

#[test]
fn a_function_call_response_becomes_tool_calls_with_usage_details() {
    let r = respond(FUNCTION_CALL_RESPONSE).unwrap();
    assert_eq!(r.id, "chatcmpl-mW1JaKjZJ8iu1MkP2oKx-Ag");
    assert_eq!(r.model, "gemini-2.5-flash");
    let choice = &r.choices[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(choice.message.content.as_deref(), Some("Let me check."));
    let call = &choice.message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&call.function.arguments).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(signature_of(&call.id).as_deref(), Some(SIGNATURE));

    let usage = serde_json::to_value(r.usage.unwrap()).unwrap();
    assert_eq!(usage["prompt_tokens"], 120);
    assert_eq!(usage["completion_tokens"], 80, "candidates + thoughts");
    assert_eq!(usage["total_tokens"], 200);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 64);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 62);
}

#[test]
fn thoughts_candidates_and_finish_reasons() {
    let r = respond(r#"{"candidates": [
        {"content": {"role": "model", "parts": [{"text": "Weighing it up.", "thought": true}, {"text": "Blue."}]}, "finishReason": "STOP", "index": 0},
        {"content": {"role": "model", "parts": [{"text": "Azure and"}]}, "finishReason": "MAX_TOKENS", "index": 1},
        {"finishReason": "SAFETY", "index": 2}
    ]}"#)
    .unwrap();
    assert_eq!(r.choices[0].message.content.as_deref(), Some("Blue."));
    assert_eq!(
        r.choices[0].message.extra["reasoning_content"],
        "Weighing it up."
    );
    let finishes: Vec<_> = r
        .choices
        .iter()
        .map(|c| c.finish_reason.as_deref().unwrap())
        .collect();
    assert_eq!(finishes, ["stop", "length", "content_filter"]);
    assert_eq!(r.choices[2].message.content.as_deref(), Some(""));
    assert!(r.usage.is_none());
}

#[test]
fn a_blocked_prompt_is_a_content_policy_error_and_a_malformed_call_a_retryable_one() {
    let e = respond(r#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-flash"}"#)
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::ContentPolicy);
    assert_eq!(e.upstream_code.as_deref(), Some("PROHIBITED_CONTENT"));
    assert!(e.message.contains("blocked the prompt"), "{}", e.message);

    let e = respond(
        r#"{"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL",
        "finishMessage": "Malformed function call: print(default_api.f(x=))", "index": 0}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::Overloaded);
    assert!(
        e.message.contains("MALFORMED_FUNCTION_CALL") && e.message.contains("print("),
        "{}",
        e.message
    );

    let e = respond(r#"{"candidates": []}"#).unwrap_err();
    assert_eq!(e.class, ErrorClass::Protocol);
}

// ---------------------------------------------------------------------------------------------
// Streams.
// ---------------------------------------------------------------------------------------------

/// `streamGenerateContent?alt=sse` as the API sends it: `\r\n` line ends, usage on every frame.
const TEXT_STREAM: &str = "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The sky\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 2,\"totalTokenCount\": 10},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\ndata: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" is blue.\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 5,\"totalTokenCount\": 40,\"thoughtsTokenCount\": 27},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n";

const TOOL_STREAM: &str = r#"data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"location": "Paris"}},"thoughtSignature": "CiQBjz1rX+8v/Qb0Pz1aA2dDc4pJ8l3yqTQx0VvP1kY3lq2nHwA="},{"functionCall": {"name": "get_weather","args": {"location": "London"}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 50,"candidatesTokenCount": 20,"totalTokenCount": 70},"modelVersion": "gemini-2.5-flash","responseId": "r2"}

"#;

fn sse_events(raw: &str, read: usize) -> Vec<Event> {
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    for piece in raw.as_bytes().chunks(read) {
        parser.push(piece);
        while let Some(ev) = parser.next_event().expect("valid SSE") {
            events.push(ev);
        }
    }
    events.extend(parser.finish().expect("valid SSE"));
    events
}

fn run(raw: &str) -> (Vec<ChatCompletionChunk>, Option<ProviderError>) {
    let mut translator = Translator::new("gemini-x", CREATED);
    let mut chunks = Vec::new();
    for ev in sse_events(raw, 7) {
        match translator.on_frame(PROVIDER, &ev.data) {
            Ok(more) => chunks.extend(more),
            Err(e) => return (chunks, Some(e)),
        }
    }
    match translator.on_end(PROVIDER) {
        Ok(usage) => chunks.extend(usage),
        Err(e) => return (chunks, Some(e)),
    }
    (chunks, None)
}

#[test]
fn a_text_stream_opens_with_the_role_and_ends_with_finish_and_usage() {
    let (chunks, error) = run(TEXT_STREAM);
    assert!(error.is_none(), "{error:?}");
    let v: Vec<Value> = chunks
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    assert_eq!(
        v[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(v[1]["choices"][0]["delta"], json!({"content": "The sky"}));
    assert_eq!(v[2]["choices"][0]["delta"], json!({"content": " is blue."}));
    assert_eq!(v[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(v[4]["choices"], json!([]));
    assert_eq!(v[4]["usage"]["completion_tokens"], 32);
    assert_eq!(v[4]["usage"]["total_tokens"], 40);
    assert!(
        v.iter()
            .all(|c| c["id"] == "chatcmpl-r1" && c["model"] == "gemini-2.5-flash")
    );
    assert_eq!(v.len(), 5);
}

#[test]
fn function_calls_stream_whole_with_their_signatures_in_the_ids() {
    let (chunks, error) = run(TOOL_STREAM);
    assert!(error.is_none(), "{error:?}");
    let calls: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.choices.first()?.delta.tool_calls.clone())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].index, calls[1].index), (0, 1));
    let f = calls[0].function.as_ref().unwrap();
    assert_eq!(f.name.as_deref(), Some("get_weather"));
    assert_eq!(f.arguments.as_deref(), Some(r#"{"location":"Paris"}"#));
    assert_eq!(
        signature_of(calls[0].id.as_deref().unwrap()).as_deref(),
        Some(SIGNATURE)
    );
    assert_eq!(
        signature_of(calls[1].id.as_deref().unwrap()),
        None,
        "only the first parallel call is signed"
    );
    let finish = chunks
        .iter()
        .find_map(|c| c.choices.first()?.finish_reason.clone());
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

#[test]
fn stream_failures_are_errors() {
    let blocked = "data: {\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": {\"promptTokenCount\": 4}}\r\n\r\n";
    let (chunks, error) = run(blocked);
    assert!(
        chunks.is_empty(),
        "nothing reached the client before the refusal"
    );
    assert_eq!(error.unwrap().class, ErrorClass::ContentPolicy);

    let cut = TEXT_STREAM.split("\r\n\r\n").next().unwrap().to_owned() + "\r\n\r\n";
    let (chunks, error) = run(&cut);
    assert_eq!(chunks.len(), 2);
    let error = error.unwrap();
    assert_eq!(error.class, ErrorClass::Connection);
    assert!(error.message.contains("finishReason"), "{}", error.message);

    let failing = "data: {\"error\": {\"code\": 503, \"message\": \"The model is overloaded.\", \"status\": \"UNAVAILABLE\"}}\n\n";
    let error = run(failing).1.unwrap();
    assert_eq!(error.class, ErrorClass::Overloaded);
    assert_eq!(error.upstream_code.as_deref(), Some("UNAVAILABLE"));
}

// ---------------------------------------------------------------------------------------------
// Errors, parameters, config.
// ---------------------------------------------------------------------------------------------

fn http_error(status: u16, body: &str) -> ProviderError {
    reclassify(http::error_from_response(
        PROVIDER,
        status,
        &Default::default(),
        body.as_bytes(),
    ))
}

#[test]
fn gemini_error_bodies_are_classified() {
    let bad_key = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
    assert_eq!(http_error(400, bad_key).class, ErrorClass::Auth);
    let quota = r#"{"error": {"code": 429, "message": "You exceeded your current quota, please check your plan and billing details. Please retry in 37.52s.", "status": "RESOURCE_EXHAUSTED"}}"#;
    let e = http_error(429, quota);
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.retry_after.map(|d| d.as_millis()), Some(37_520));
    assert_eq!(e.upstream_code, None, "the numeric code repeats the status");
    let cases = [
        (
            403,
            "PERMISSION_DENIED",
            "Permission denied on resource project p.",
            ErrorClass::Auth,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ErrorClass::ContextLength,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            ErrorClass::InvalidRequest,
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-9 is not found for API version v1beta",
            ErrorClass::NotFound,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            ErrorClass::Overloaded,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            ErrorClass::Overloaded,
        ),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
            ErrorClass::Timeout,
        ),
    ];
    for (status, name, message, class) in cases {
        let body =
            json!({"error": {"code": status, "message": message, "status": name}}).to_string();
        assert_eq!(http_error(status, &body).class, class, "{status} {name}");
    }
    assert_eq!(
        retry_delay("please retry in 250ms."),
        Some(std::time::Duration::from_millis(250))
    );
    assert_eq!(retry_delay("no hint"), None);
}

fn provider(config: Value) -> Result<GeminiProvider, String> {
    let config: ProviderConfig = serde_json::from_value(config).expect("a valid provider config");
    GeminiProvider::new("g", &config, &Default::default())
}

#[test]
fn urls_of_both_apis() {
    let gemini = provider(json!({"kind": "gemini", "api_key": "k"})).unwrap();
    assert_eq!(
        gemini
            .url("models/gemini-2.5-flash", super::Method::StreamGenerate)
            .unwrap()
            .as_str(),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    let vertex = provider(json!({"kind": "vertex", "api_key": "ya29.token",
        "vertex": {"project": "acme", "location": "europe-west4"}}))
    .unwrap();
    assert_eq!(
        vertex
            .url("gemini-2.5-pro", super::Method::Generate)
            .unwrap()
            .as_str(),
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/acme/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    let global = provider(json!({"kind": "vertex", "api_key": "t", "vertex": {"project": "acme", "location": "global"}})).unwrap();
    assert!(
        global
            .url("m", super::Method::BatchEmbed)
            .unwrap()
            .as_str()
            .starts_with("https://aiplatform.googleapis.com/v1/projects/acme/locations/global/")
    );
}

#[test]
fn vertex_settings_are_checked_when_the_provider_is_built() {
    let err = |config: Value| provider(config).err().expect("refused");
    assert!(err(json!({"kind": "vertex", "api_key": "t"})).contains("providers.g.vertex"));
    assert!(
        err(json!({"kind": "gemini", "api_key": "k", "vertex": {"project": "p", "location": "l"}}))
            .contains("only a kind: vertex")
    );
    assert!(
        err(json!({"kind": "vertex", "vertex": {"project": "p", "location": "us-central1"}}))
            .contains("credentials_file")
    );
    assert!(err(json!({"kind": "vertex", "api_key": "t", "vertex": {"project": "p", "location": "l", "credentials_file": "/x.json"}})).contains("not both"));
    assert!(err(json!({"kind": "vertex", "vertex": {"project": "p", "location": "l", "credentials_file": "/nonexistent.json"}})).contains("cannot read"));
    assert!(
        err(
            json!({"kind": "vertex", "api_key": "t", "vertex": {"project": "a/b", "location": "l"}})
        )
        .contains("project")
    );
}

#[tokio::test]
async fn parameters_gemini_cannot_honour_are_refused_before_any_call() {
    // Nothing listens at this address: a refusal must come before any connection.
    let gemini = std::sync::Arc::new(
        provider(
            json!({"kind": "gemini", "api_key": "k", "base_url": "http://127.0.0.1:9/v1beta"}),
        )
        .unwrap(),
    );
    let deployment = |drop: bool| Deployment {
        name: "flash".into(),
        provider_name: "g".into(),
        provider: gemini.clone(),
        upstream_model: "gemini-2.5-flash".into(),
        price: Default::default(),
        context_window: None,
        default_max_tokens: 1024,
        capabilities: Vec::new(),
        drop_unsupported_params: drop,
        tags: Vec::new(),
    };
    for (field, value) in [
        ("logprobs", json!(true)),
        ("logit_bias", json!({"1": 2})),
        ("parallel_tool_calls", json!(false)),
    ] {
        let mut body =
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        let Err(e) = gemini
            .chat(&request(body.clone()), &deployment(false))
            .await
        else {
            panic!("{field} must be refused");
        };
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert!(
            e.message.contains(field) && e.message.contains("Gemini"),
            "{}",
            e.message
        );
        // Dropping: the request goes out (and fails to connect, proving it got that far).
        let Err(e) = gemini.chat(&request(body), &deployment(true)).await else {
            panic!("nothing listens");
        };
        assert_eq!(e.class, ErrorClass::Connection, "{field}: {}", e.message);
    }
}
