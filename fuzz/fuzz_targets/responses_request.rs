//! Fuzz target: the Responses API entrance's request decoding and translation into the canonical
//! request, as `responses::prepare` does it for a request without `previous_response_id`: decode
//! the body as JSON and as a `ResponsesRequest`, refuse an empty model, gather the conversation
//! (`continue_with`), translate it (`request::to_chat_request`) and take the echoed settings
//! (`Meta::new`); then serialize the canonical request as an upstream would receive it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchyard_server::ingress;
use switchyard_server::responses::{self, request, response::Meta};
use switchyard_wire::responses::ResponsesRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(native) = ingress::decode::<Value>(data) else {
        return;
    };
    let Ok(mut typed) = ingress::decode::<ResponsesRequest>(data) else {
        return;
    };
    if typed.model.trim().is_empty() {
        return;
    }
    let Ok((_conversation, items)) =
        responses::continue_with(Vec::new(), &native, typed.input.take())
    else {
        return;
    };
    let Ok(req) = request::to_chat_request(&typed, &items) else {
        return;
    };
    let _ = serde_json::to_vec(&req).expect("a translated request serializes");
    let _ = Meta::new(&typed, 1_700_000_000);
});
