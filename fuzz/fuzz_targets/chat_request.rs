//! Fuzz target: the chat completions entrance's request decoding (`ingress::decode` into the
//! canonical `ChatCompletionRequest`), then what a provider does first with it: serialize it for
//! an OpenAI-compatible upstream and translate it for an Anthropic one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::provider::anthropic::translate;
use switchyard_server::ingress;
use switchyard_wire::openai::ChatCompletionRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ingress::decode::<ChatCompletionRequest>(data) else {
        return;
    };
    let _ = serde_json::to_vec(&req).expect("a decoded request serializes");
    if let Ok(messages) = translate::to_messages_request(&req, 1024) {
        let _ = serde_json::to_vec(&messages).expect("a translated request serializes");
    }
});
