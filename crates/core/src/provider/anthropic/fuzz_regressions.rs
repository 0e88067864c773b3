//! Inputs the fuzz targets (`fuzz/`) found to panic the Anthropic translation, each pinned inline
//! with what a client must see instead.

use serde_json::json;
use switchyard_wire::anthropic::MessagesResponse;

use super::stream::Translator;
use super::translate::from_messages_response;

/// Found by the `anthropic_stream` fuzz target: usage counts whose sum passes `u64::MAX`
/// (input plus cache reads) overflowed; the client gets the saturated count.
#[test]
fn a_stream_whose_usage_overflows_u64_reports_saturated_counts() {
    let events = [
        r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"model":"c","usage":{"input_tokens":18446744073709551615,"output_tokens":1,"cache_read_input_tokens":5}}}"#,
        r#"{"type":"message_stop"}"#,
    ];
    let mut translator = Translator::new(0);
    let mut last = None;
    for data in events {
        last = translator.on_event("anthropic", data).unwrap();
    }
    let usage = last.and_then(|chunk| chunk.usage).unwrap();
    assert_eq!(usage.prompt_tokens, u64::MAX);
    assert_eq!(usage.completion_tokens, 1);
    assert_eq!(usage.total_tokens, u64::MAX);
}

/// The same counts in a whole (non-streamed) answer.
#[test]
fn an_answer_whose_usage_overflows_u64_reports_saturated_counts() {
    let message: MessagesResponse = serde_json::from_value(json!({
        "id": "m", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "text", "text": "hi"}],
        "usage": {"input_tokens": u64::MAX, "output_tokens": 2,
                  "cache_creation_input_tokens": 7}
    }))
    .unwrap();
    let usage = from_messages_response(message, 0).usage.unwrap();
    assert_eq!(usage.prompt_tokens, u64::MAX);
    assert_eq!(usage.total_tokens, u64::MAX);
}
