//! Fuzz target: the Anthropic Messages entrance's request decoding, checks and translation into
//! the canonical request (`messages::from_body`, what `POST /v1/messages` does with the body),
//! and the canonical request serialized as an OpenAI-compatible upstream would receive it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_server::messages;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = messages::from_body(data, Some("fuzz-beta".into())) else {
        return;
    };
    let _ = serde_json::to_vec(&req).expect("a translated request serializes");
});
