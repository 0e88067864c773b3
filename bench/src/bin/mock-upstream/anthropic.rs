//! The Anthropic side of the mock: `POST /v1/messages` in the Messages API's wire format, sized
//! like the chat completions of [`crate::openai`] so that rows of either dialect compare: the
//! same fixed reply and 14 output tokens as a JSON `message`, or with `"stream": true` the
//! event sequence Anthropic sends — `message_start`, `content_block_start`, `ping`, one
//! `content_block_delta` (`text_delta`, one word) per `--chunks`, paced alike, then
//! `content_block_stop`, `message_delta` (stop reason and usage) and `message_stop`.
//!
//! Like the real API it requires the `x-api-key` and `anthropic-version` headers and a body with
//! `model`, `max_tokens` and `messages`, and answers errors in Anthropic's shape. Everything but
//! `message_start` (which echoes the model and counts the prompt) is built once at start-up.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::paced::Script;
use crate::{COMPLETION_TOKENS, Config, REPLY, RespBody, WORDS, event_stream, json_response};

/// The stream frames that do not depend on the request, built once.
pub struct Prebuilt {
    /// One `content_block_delta` frame per word of [`WORDS`].
    deltas: Vec<Bytes>,
    /// `message_delta` with the stop reason and `output_tokens` = `--chunks`.
    message_delta: Bytes,
}

impl Prebuilt {
    pub fn new(chunks: usize) -> Self {
        let deltas = WORDS
            .iter()
            .map(|word| {
                Bytes::from(format!(
                    concat!(
                        "event: content_block_delta\n",
                        "data: {{\"type\":\"content_block_delta\",\"index\":0,",
                        "\"delta\":{{\"type\":\"text_delta\",\"text\":{word}}}}}\n\n"
                    ),
                    word = crate::json_string(word),
                ))
            })
            .collect();
        let message_delta = Bytes::from(format!(
            concat!(
                "event: message_delta\n",
                "data: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",",
                "\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{chunks}}}}}\n\n"
            ),
            chunks = chunks,
        ));
        Self {
            deltas,
            message_delta,
        }
    }
}

const CONTENT_BLOCK_START: &str = concat!(
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,",
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
);
const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";
const CONTENT_BLOCK_STOP: &str =
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
const MESSAGE_STOP: &str = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/// The fields of a Messages request the mock looks at or requires; the messages themselves
/// are skipped without allocation.
#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[allow(dead_code)] // required, as the real API requires it
    max_tokens: u32,
    #[allow(dead_code)] // required, as the real API requires it
    messages: IgnoredAny,
    #[serde(default)]
    stream: bool,
}

pub fn messages(headers: &HeaderMap, body: &[u8], config: &Config) -> Response<RespBody> {
    if !headers.contains_key("x-api-key") {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if !headers.contains_key("anthropic-version") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let request: MessagesRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            let message = format!("the body is not a Messages request: {e}");
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
        }
    };
    let model = crate::json_string(&request.model);
    let prompt_tokens = (body.len() as u64 / 4).max(1);
    if request.stream {
        let script = EventScript {
            message_start: message_start(&model, prompt_tokens),
            prebuilt: config.anthropic.clone(),
        };
        return event_stream(Box::new(script), config);
    }
    json_response(format!(
        concat!(
            "{{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":{model},",
            "\"content\":[{{\"type\":\"text\",\"text\":\"{reply}\"}}],\"stop_reason\":\"end_turn\",",
            "\"stop_sequence\":null,\"usage\":{{\"input_tokens\":{prompt},",
            "\"output_tokens\":{completion}}}}}"
        ),
        model = model,
        reply = REPLY,
        prompt = prompt_tokens,
        completion = COMPLETION_TOKENS,
    ))
}

fn message_start(model: &str, prompt_tokens: u64) -> Bytes {
    Bytes::from(format!(
        concat!(
            "event: message_start\n",
            "data: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_mock\",",
            "\"type\":\"message\",\"role\":\"assistant\",\"model\":{model},\"content\":[],",
            "\"stop_reason\":null,\"stop_sequence\":null,",
            "\"usage\":{{\"input_tokens\":{prompt},\"output_tokens\":1}}}}}}\n\n"
        ),
        model = model,
        prompt = prompt_tokens,
    ))
}

/// An error in Anthropic's shape: `{"type":"error","error":{"type":…,"message":…}}`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response<RespBody> {
    let mut response = json_response(format!(
        "{{\"type\":\"error\",\"error\":{{\"type\":\"{kind}\",\"message\":{}}}}}",
        crate::json_string(message)
    ));
    *response.status_mut() = status;
    response
}

/// One streamed message: `message_start`, `content_block_start` and `ping` at once, a
/// `text_delta` per word, then `content_block_stop`, `message_delta` and `message_stop`.
pub struct EventScript {
    message_start: Bytes,
    prebuilt: Arc<Prebuilt>,
}

impl Script for EventScript {
    fn head_len(&self) -> usize {
        3
    }

    fn head(&self, i: usize) -> Bytes {
        match i {
            0 => self.message_start.clone(),
            1 => Bytes::from_static(CONTENT_BLOCK_START.as_bytes()),
            _ => Bytes::from_static(PING.as_bytes()),
        }
    }

    fn content(&self, i: usize) -> Bytes {
        let deltas = &self.prebuilt.deltas;
        deltas[i % deltas.len()].clone()
    }

    fn tail_len(&self) -> usize {
        3
    }

    fn tail(&self, i: usize) -> Bytes {
        match i {
            0 => Bytes::from_static(CONTENT_BLOCK_STOP.as_bytes()),
            1 => self.prebuilt.message_delta.clone(),
            _ => Bytes::from_static(MESSAGE_STOP.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of a short stream, in order, as text.
    fn frames(chunks: usize) -> Vec<String> {
        let script = EventScript {
            message_start: message_start("\"m\"", 7),
            prebuilt: Arc::new(Prebuilt::new(chunks)),
        };
        let head = (0..script.head_len()).map(|i| script.head(i));
        let content = (0..chunks).map(|i| script.content(i));
        let tail = (0..script.tail_len()).map(|i| script.tail(i));
        head.chain(content)
            .chain(tail)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn stream_has_anthropics_event_sequence_and_valid_json() {
        let frames = frames(2);
        let names: Vec<&str> = frames
            .iter()
            .map(|f| f.lines().next().unwrap().trim_start_matches("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        for frame in &frames {
            assert!(frame.ends_with("\n\n"), "{frame:?}");
            let data = frame
                .lines()
                .nth(1)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap();
            let event: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(event["type"], frame.lines().next().unwrap()[7..]);
        }
        let delta: serde_json::Value =
            serde_json::from_str(&frames[6].lines().nth(1).unwrap()[6..]).unwrap();
        assert_eq!(delta["usage"]["output_tokens"], 2);
        assert!(frames[3].contains("\"text\":\"The\""));
    }
}
