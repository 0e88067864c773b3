//! Tests of the Bedrock translation, event-stream decoding, error classification and provider
//! set-up. Streams are encoded here frame by frame from the event-stream specification (prelude,
//! headers, payload, two CRC32s), independently of the decoding crate, and fed to the
//! [`FrameReader`] a few bytes at a time before they reach the [`Translator`].

use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use switchyard_wire::bedrock::ConverseResponse;
use switchyard_wire::openai::{ChatCompletionChunk, ChatCompletionRequest};

use super::stream::{Frame, FrameReader, Translator};
use super::translate::{from_converse_response, to_converse_request};
use super::*;
use crate::config::ServerConfig;
use crate::error::ErrorClass;

const PROVIDER: &str = "bedrock-test";
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

fn request(body: Value) -> ChatCompletionRequest {
    serde_json::from_value(body).unwrap()
}

fn converse(body: Value) -> Value {
    serde_json::to_value(to_converse_request(&request(body), 1024).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[test]
fn a_simple_request_gets_system_blocks_and_inference_config() {
    let body = converse(json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Hello"}
        ],
        "temperature": 1.7,
        "top_p": 0.9,
        "stop": "END",
        "user": "u-1"
    }));
    assert_eq!(
        body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
            "system": [{"text": "Be brief."}, {"text": "Use metric units."}],
            "inferenceConfig": {"maxTokens": 1024, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]}
        })
    );
    let explicit = converse(json!({
        "model": MODEL, "max_completion_tokens": 77,
        "messages": [{"role": "user", "content": "Hi"}]
    }));
    assert_eq!(explicit["inferenceConfig"]["maxTokens"], 77);
}

#[test]
fn a_tool_round_trip_alternates_roles_with_all_results_in_one_user_turn() {
    let body = converse(json!({
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "Weather in Paris and London?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "tooluse_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "18 degrees"},
            {"role": "tool", "tool_call_id": "tooluse_2", "content": [{"type": "text", "text": "12 degrees"}]},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                   "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}],
        "tool_choice": "required"
    }));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"text": "Weather in Paris and London?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Paris"}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {}}}
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "18 degrees"}]}},
                {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "12 degrees"}]}},
                {"text": "Thanks"}
            ]}
        ])
    );
    assert_eq!(
        body["toolConfig"],
        json!({
            "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}}}}}}],
            "toolChoice": {"any": {}}
        })
    );
}

#[test]
fn tool_choice_maps_to_auto_any_tool_and_none_drops_tools_when_it_can() {
    let with = |choice: Value, history: bool| {
        let mut messages = vec![json!({"role": "user", "content": "go"})];
        if history {
            messages.push(json!({"role": "assistant", "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}));
            messages.push(json!({"role": "tool", "tool_call_id": "t1", "content": "done"}));
        }
        converse(json!({
            "model": MODEL, "messages": messages, "tool_choice": choice,
            "tools": [{"type": "function", "function": {"name": "f"}}]
        }))
    };
    assert_eq!(
        with(json!("auto"), false)["toolConfig"]["toolChoice"],
        json!({"auto": {}})
    );
    assert_eq!(
        with(
            json!({"type": "function", "function": {"name": "f"}}),
            false
        )["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    assert_eq!(
        with(json!("auto"), false)["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object", "properties": {}})
    );
    assert!(with(json!("none"), false).get("toolConfig").is_none());
    let kept = with(json!("none"), true);
    assert!(
        kept["toolConfig"]["tools"].is_array(),
        "Converse needs toolConfig with tool blocks"
    );
    assert!(kept["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn images_must_be_inline_data_urls_of_a_supported_format() {
    let image = |url: &str| {
        to_converse_request(
            &request(
                json!({"model": MODEL, "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url}}
                ]}]}),
            ),
            1024,
        )
    };
    let ok = serde_json::to_value(image("data:image/jpeg;base64,/9j/4AAQ").unwrap()).unwrap();
    assert_eq!(
        ok["messages"][0]["content"][1],
        json!({"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}})
    );
    let remote = image("https://example.com/cat.png").unwrap_err();
    assert!(
        remote.contains("data: URL") && remote.contains("content[1]"),
        "{remote}"
    );
    let tiff = image("data:image/tiff;base64,AAAA").unwrap_err();
    assert!(tiff.contains("image/tiff"), "{tiff}");
}

#[test]
fn cache_control_becomes_a_cache_point_and_bedrock_fields_pass_through() {
    let body = converse(json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "Hi"}
        ],
        "additionalModelRequestFields": {"top_k": 200},
        "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
        "seed": 3
    }));
    assert_eq!(
        body["system"],
        json!([{"text": "Long rules"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(body["additionalModelRequestFields"], json!({"top_k": 200}));
    assert_eq!(body["guardrailConfig"]["guardrailIdentifier"], "g1");
    assert!(
        body.get("seed").is_none(),
        "only Converse members pass through"
    );
}

#[test]
fn requests_converse_cannot_express_are_refused_with_a_reason() {
    let fails = |body: Value| to_converse_request(&request(body), 1024).unwrap_err();
    assert!(
        fails(json!({"model": MODEL, "messages": [{"role": "system", "content": "x"}]}))
            .contains("at least one")
    );
    let bad_args = fails(json!({"model": MODEL, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}
    ]}));
    assert!(bad_args.contains("messages[1].tool_calls[0]"), "{bad_args}");
    let audio = fails(
        json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]}),
    );
    assert!(audio.contains("input_audio"), "{audio}");
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

#[test]
fn a_response_with_text_and_a_tool_call_translates() {
    let reply: ConverseResponse = serde_json::from_value(json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Let me check."},
            {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                         "input": {"location": "Paris", "unit": "celsius"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 50,
                  "cacheReadInputTokens": 6, "cacheWriteInputTokens": 2},
        "metrics": {"latencyMs": 812}
    }))
    .unwrap();
    let out = from_converse_response(reply, "chatcmpl-r1".into(), MODEL, 7);
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(v["id"], "chatcmpl-r1");
    assert_eq!(v["model"], MODEL);
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Let me check.");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris", "unit": "celsius"}));
    assert_eq!(
        v["usage"]["prompt_tokens"], 38,
        "cached tokens count as prompt tokens"
    );
    assert_eq!(v["usage"]["completion_tokens"], 12);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, want) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ] {
        assert_eq!(translate::finish_reason(stop), want, "{stop}");
    }
}

// ---------------------------------------------------------------------------------------------
// Event stream
// ---------------------------------------------------------------------------------------------

/// CRC-32 (IEEE), as zlib computes it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One event-stream message with string headers (value type 7).
fn frame(headers: &[(&str, &str)], payload: &str) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::new();
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload.as_bytes());
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    let headers = [
        (":event-type", kind),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ];
    frame(&headers, &payload.to_string())
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    let headers = [
        (":exception-type", kind),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ];
    frame(&headers, &json!({ "message": message }).to_string())
}

/// Feeds `body` to a reader `step` bytes at a time and translates every frame.
fn translate_stream(body: &[u8], step: usize) -> Vec<Result<ChatCompletionChunk, ProviderError>> {
    let mut reader = FrameReader::new(1 << 20);
    let mut translator = Translator::new("chatcmpl-s".into(), MODEL.into(), 9);
    let mut out = Vec::new();
    for piece in body.chunks(step) {
        reader.push(piece);
        while let Some(frame) = reader.next_frame().unwrap() {
            let result = translator.on_frame(PROVIDER, &frame);
            let failed = result.is_err();
            if let Some(r) = result.transpose() {
                out.push(r);
            }
            if failed {
                return out;
            }
        }
    }
    assert!(!reader.has_partial_frame());
    out
}

fn tool_stream() -> Vec<u8> {
    let p = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"; // the padding field real streams carry
    [
        event("messageStart", json!({"role": "assistant", "p": p})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Let me "}, "p": p})),
        event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "check."}, "p": p})),
        event("contentBlockStop", json!({"contentBlockIndex": 0, "p": p})),
        event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather"}}, "p": p})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"location\":"}}, "p": p})),
        event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": " \"Paris\"}"}}, "p": p})),
        event("contentBlockStop", json!({"contentBlockIndex": 1, "p": p})),
        event("messageStop", json!({"stopReason": "tool_use", "p": p})),
        event("metadata", json!({"usage": {"inputTokens": 40, "outputTokens": 20, "totalTokens": 60}, "metrics": {"latencyMs": 420}, "p": p})),
    ]
    .concat()
}

#[test]
fn the_crc_of_the_test_encoder_is_zlibs() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn a_tool_stream_becomes_role_text_tool_fragments_finish_and_usage() {
    for step in [1, 7, 64, 100_000] {
        let chunks: Vec<ChatCompletionChunk> = translate_stream(&tool_stream(), step)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        let v: Vec<Value> = chunks
            .iter()
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        assert_eq!(v.len(), 8, "step {step}: {v:#?}");
        assert_eq!(
            v[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(v[0]["id"], "chatcmpl-s");
        assert_eq!(v[0]["model"], MODEL);
        assert_eq!(v[1]["choices"][0]["delta"]["content"], "Let me ");
        assert_eq!(
            v[3]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "tooluse_abc", "type": "function",
                   "function": {"name": "get_weather", "arguments": ""}})
        );
        let args: String = v[4..6]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(args, "{\"location\": \"Paris\"}");
        assert_eq!(v[5]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
        assert_eq!(v[6]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v[7]["choices"], json!([]));
        assert_eq!(v[7]["usage"]["total_tokens"], 60);
    }
}

#[test]
fn an_exception_frame_mid_stream_is_a_classified_error() {
    let body = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        exception(
            "throttlingException",
            "Too many requests, please wait before trying again.",
        ),
    ]
    .concat();
    let out = translate_stream(&body, 5);
    assert_eq!(out.len(), 3);
    let e = out[2].as_ref().unwrap_err();
    assert_eq!(e.class, ErrorClass::RateLimited);
    assert_eq!(e.upstream_code.as_deref(), Some("throttlingException"));
    assert!(e.message.contains("Too many requests"));
    let g = crate::error::GatewayError::from(e.clone());
    assert_eq!(g.status, 429);

    for (kind, want) in [
        ("modelStreamErrorException", ErrorClass::Overloaded),
        ("validationException", ErrorClass::InvalidRequest),
        ("serviceUnavailableException", ErrorClass::Overloaded),
        ("modelTimeoutException", ErrorClass::Timeout),
        ("internalServerException", ErrorClass::Overloaded),
    ] {
        let out = translate_stream(&exception(kind, "boom"), 3);
        assert_eq!(out[0].as_ref().unwrap_err().class, want, "{kind}");
    }
}

#[test]
fn corrupt_truncated_and_oversized_frames_are_refused() {
    let mut body = event("messageStart", json!({"role": "assistant"}));
    let last = body.len() - 1;
    body[last] ^= 0xFF;
    let mut reader = FrameReader::new(1 << 20);
    reader.push(&body);
    assert!(reader.next_frame().unwrap_err().contains("unreadable"));

    let body = event("messageStart", json!({"role": "assistant"}));
    let mut reader = FrameReader::new(1 << 20);
    reader.push(&body[..body.len() - 3]);
    assert_eq!(reader.next_frame().unwrap(), None);
    assert!(
        reader.has_partial_frame(),
        "a truncated body must not pass for a complete one"
    );

    let mut reader = FrameReader::new(64);
    reader.push(&event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "x".repeat(100)}}),
    ));
    assert!(reader.next_frame().unwrap_err().contains("larger than"));
}

#[test]
fn decoded_frames_expose_their_type_and_payload() {
    let mut reader = FrameReader::new(1 << 20);
    reader.push(&exception("throttlingException", "slow"));
    let frame = reader.next_frame().unwrap().unwrap();
    assert_eq!(
        frame,
        Frame {
            message_type: "exception".into(),
            kind: "throttlingException".into(),
            payload: bytes::Bytes::from(r#"{"message":"slow"}"#),
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

fn http_error(status: u16, error_type: Option<&str>, body: &str) -> ProviderError {
    let mut headers = HeaderMap::new();
    if let Some(t) = error_type {
        headers.insert("x-amzn-errortype", t.parse().unwrap());
    }
    error_from_response(PROVIDER, status, &headers, body.as_bytes())
}

#[test]
fn http_errors_are_classified_from_their_aws_type() {
    let throttled = http_error(
        429,
        Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        r#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!(throttled.class, ErrorClass::RateLimited);
    assert_eq!(
        throttled.upstream_code.as_deref(),
        Some("ThrottlingException")
    );
    assert!(throttled.message.starts_with("Too many requests"));

    let cases = [
        (
            429,
            Some("ModelNotReadyException"),
            r#"{"message":"Model is not ready"}"#,
            ErrorClass::Overloaded,
        ),
        (
            400,
            Some("ServiceQuotaExceededException"),
            r#"{"message":"Too many tokens per day"}"#,
            ErrorClass::Billing,
        ),
        (
            400,
            Some("ValidationException"),
            r#"{"message":"Input is too long for requested model."}"#,
            ErrorClass::ContextLength,
        ),
        (
            400,
            Some("ValidationException"),
            r#"{"message":"A conversation must start with a user message."}"#,
            ErrorClass::InvalidRequest,
        ),
        (
            403,
            None,
            r#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","Message":"The security token included in the request is invalid."}"#,
            ErrorClass::Auth,
        ),
        (
            403,
            Some("AccessDeniedException"),
            r#"{"Message":"You don't have access to the model"}"#,
            ErrorClass::Auth,
        ),
        (
            403,
            Some("ExpiredTokenException"),
            r#"{"message":"The security token included in the request is expired"}"#,
            ErrorClass::Auth,
        ),
        (
            408,
            Some("ModelTimeoutException"),
            r#"{"message":"timed out"}"#,
            ErrorClass::Timeout,
        ),
        (
            424,
            Some("ModelErrorException"),
            r#"{"message":"model error"}"#,
            ErrorClass::Overloaded,
        ),
        (
            503,
            Some("ServiceUnavailableException"),
            r#"{"message":"unavailable"}"#,
            ErrorClass::Overloaded,
        ),
        (
            404,
            Some("ResourceNotFoundException"),
            r#"{"message":"no such model"}"#,
            ErrorClass::NotFound,
        ),
        (
            502,
            None,
            "<html>Bad Gateway</html>",
            ErrorClass::Overloaded,
        ),
    ];
    for (status, kind, body, want) in cases {
        let e = http_error(status, kind, body);
        assert_eq!(e.class, want, "{status} {kind:?} {body}");
        assert!(!e.message.is_empty());
    }
    let unknown = http_error(403, None, r#"{"Message":"denied"}"#);
    assert_eq!(
        (unknown.class, unknown.message.as_str()),
        (ErrorClass::Auth, "denied")
    );
}

// ---------------------------------------------------------------------------------------------
// Parameters and set-up
// ---------------------------------------------------------------------------------------------

fn deployment(drop: bool) -> Deployment {
    Deployment {
        name: "claude-bedrock".into(),
        provider_name: PROVIDER.into(),
        provider: Arc::new(crate::provider::mock::MockProvider::new(
            "m",
            Default::default(),
        )),
        upstream_model: MODEL.into(),
        price: Default::default(),
        context_window: None,
        default_max_tokens: 1024,
        capabilities: Vec::new(),
        drop_unsupported_params: drop,
        tags: Vec::new(),
    }
}

#[test]
fn parameters_converse_cannot_honour_are_refused_by_name() {
    let base = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let check = |extra: Value, drop: bool| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        refuse_unsupported(&request(body), &deployment(drop))
    };
    for (extra, name) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"n": 2}), "\"n\""),
        (json!({"seed": 1}), "seed"),
        (json!({"frequency_penalty": 0.5}), "frequency_penalty"),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
        ),
        (json!({"parallel_tool_calls": false}), "parallel_tool_calls"),
    ] {
        let e = check(extra.clone(), false).unwrap_err();
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert!(
            e.message.contains(name) && e.message.contains("Bedrock"),
            "{}",
            e.message
        );
        assert!(
            check(extra, true).is_ok(),
            "drop_unsupported_params lets {name} through"
        );
    }
    assert!(check(json!({"response_format": {"type": "text"}}), false).is_ok());
    assert!(check(json!({"parallel_tool_calls": true, "n": 1}), false).is_ok());
}

fn provider_config(body: Value) -> ProviderConfig {
    serde_json::from_value(body).unwrap()
}

fn build(body: Value, env: &[(&str, &str)]) -> Result<BedrockProvider, String> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    BedrockProvider::with_env(
        "br",
        &provider_config(body),
        &ServerConfig::default(),
        &lookup,
    )
}

#[test]
fn the_endpoint_and_credentials_come_from_config_or_environment() {
    let env_creds = [
        ("AWS_ACCESS_KEY_ID", "AKENV"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_REGION", "eu-west-3"),
    ];
    let p = build(json!({"kind": "bedrock"}), &env_creds).unwrap();
    assert_eq!(
        p.endpoint,
        "https://bedrock-runtime.eu-west-3.amazonaws.com"
    );
    assert!(p.signer.is_some() && p.keys().is_none());

    let p = build(
        json!({"kind": "bedrock", "aws": {"region": "us-west-2"}}),
        &env_creds,
    )
    .unwrap();
    assert_eq!(
        p.endpoint,
        "https://bedrock-runtime.us-west-2.amazonaws.com"
    );

    let p = build(
        json!({"kind": "bedrock", "api_key": "bedrock-key", "base_url": "http://127.0.0.1:9/"}),
        &[],
    )
    .unwrap();
    assert_eq!(p.endpoint, "http://127.0.0.1:9");
    assert!(p.signer.is_none());
    assert!(matches!(
        p.keys().unwrap().pick(MODEL),
        KeyPick::Key(_, "bedrock-key")
    ));

    let p = build(
        json!({"kind": "bedrock", "aws": {"region": "us-east-1"}}),
        &[("AWS_BEARER_TOKEN_BEDROCK", "env-key")],
    )
    .unwrap();
    assert!(matches!(
        p.keys().unwrap().pick(MODEL),
        KeyPick::Key(_, "env-key")
    ));

    let no_region = build(json!({"kind": "bedrock"}), &env_creds[..2])
        .err()
        .unwrap();
    assert!(no_region.contains("aws.region"), "{no_region}");
    let no_creds = build(
        json!({"kind": "bedrock", "aws": {"region": "us-east-1"}}),
        &[],
    )
    .err()
    .unwrap();
    assert!(no_creds.contains("AWS_ACCESS_KEY_ID"), "{no_creds}");
    let both = build(
        json!({"kind": "bedrock", "api_key": "k", "aws": {"region": "us-east-1", "access_key_id": "A", "secret_access_key": "S"}}),
        &[],
    )
    .err()
    .unwrap();
    assert!(both.contains("not both"), "{both}");
}

#[test]
fn model_ids_and_profile_arns_are_one_encoded_path_segment() {
    let p = build(
        json!({"kind": "bedrock", "api_key": "k", "base_url": "http://127.0.0.1:9"}),
        &[],
    )
    .unwrap();
    assert_eq!(
        p.url(MODEL, false).unwrap().as_str(),
        "http://127.0.0.1:9/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
    assert_eq!(
        p.url(arn, true).unwrap().path(),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream"
    );
}

#[test]
fn the_secret_is_masked_when_the_config_is_shown() {
    let config = provider_config(json!({"kind": "bedrock", "aws": {
        "region": "us-east-1", "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session_token": "FwoGZXIvYXdzEXAMPLE"}}));
    let shown = serde_json::to_string(&config).unwrap();
    assert!(
        !shown.contains("K7MDENG") && !shown.contains("FwoGZXIvYXdzEXAMPLE"),
        "{shown}"
    );
    assert!(shown.contains("AKIDEXAMPLE"));
    assert!(!format!("{config:?}").contains("K7MDENG"));
}
