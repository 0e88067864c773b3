//! Fuzz target: the Anthropic stream translator (Anthropic SSE events → OpenAI chunks) on
//! arbitrary event sequences, and the chunks it yields through the two encoders that stream them
//! to clients (the Messages API and the Responses API), as a client of either would receive them.
//!
//! Input layout: one event's `data` per line (`\n`-separated). Like `stream::chunks`, the
//! sequence stops at the first error or at `message_stop`; an error or the end of the events
//! ends both client streams as the entrances do.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::GatewayError;
use switchyard_core::provider::anthropic::stream::Translator;
use switchyard_server::messages::stream::Encoder as MessagesEncoder;
use switchyard_server::responses::response::Meta;
use switchyard_server::responses::stream::Encoder as ResponsesEncoder;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut translator = Translator::new(1_700_000_000);
    let mut messages = MessagesEncoder::new("claude-fuzz");
    let mut responses = ResponsesEncoder::new(Meta {
        id: "resp_fuzz".into(),
        created_at: 1_700_000_000,
        model: "claude-fuzz".into(),
        echo: Default::default(),
    });
    for line in text.split('\n') {
        match translator.on_event("anthropic", line) {
            Ok(Some(chunk)) => {
                let _ = serde_json::to_vec(&chunk).expect("a chunk serializes");
                let _ = messages.chunk(&chunk);
                let _ = responses.chunk(&chunk);
            }
            Ok(None) => {}
            Err(e) => {
                let e = GatewayError::from(e);
                let _ = switchyard_server::messages::stream::error_event(&e, "req_fuzz");
                let _ = responses.fail(&e);
                return;
            }
        }
        if translator.is_finished() {
            break;
        }
    }
    let _ = messages.end();
    let _ = responses.end();
    let _ = responses.take_final();
});
