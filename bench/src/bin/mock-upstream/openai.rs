//! The OpenAI side of the mock: `POST /v1/chat/completions` answers a fixed ~330-byte
//! `chat.completion` or, with `"stream": true`, `--chunks` one-word `chat.completion.chunk`
//! frames paced by [`crate::paced::Paced`], a `finish_reason: "stop"` chunk, a usage chunk (`choices: []`)
//! when `stream_options.include_usage` is set, and `data: [DONE]`. `POST /v1/embeddings` and
//! `GET /v1/models` return small fixed bodies.

use std::borrow::Cow;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde::Deserialize;

use crate::paced::Script;
use crate::{
    COMPLETION_TOKENS, CREATED, Config, REPLY, RespBody, WORDS, error, event_stream, json_response,
    json_string,
};

/// The fields of a chat request the mock looks at; everything else (the
/// messages) is skipped without allocation.
#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

pub fn chat(body: &[u8], config: &Config) -> Response<RespBody> {
    let request: ChatRequest<'_> = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "request body is not a chat request",
            );
        }
    };
    let model = json_string(request.model.as_deref().unwrap_or("mock-model"));
    let prompt_tokens = (body.len() as u64 / 4).max(1);
    if request.stream {
        let script = ChunkScript {
            model,
            prompt_tokens,
            include_usage: request.stream_options.is_some_and(|o| o.include_usage),
            chunks: config.chunks,
        };
        return event_stream(Box::new(script), config);
    }
    let total = prompt_tokens + COMPLETION_TOKENS;
    json_response(format!(
        concat!(
            "{{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\",\"created\":{created},",
            "\"model\":{model},\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",",
            "\"content\":\"{reply}\"}},",
            "\"logprobs\":null,\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":{prompt},",
            "\"completion_tokens\":{completion},\"total_tokens\":{total}}}}}"
        ),
        created = CREATED,
        model = model,
        reply = REPLY,
        prompt = prompt_tokens,
        completion = COMPLETION_TOKENS,
        total = total,
    ))
}

pub fn embeddings(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct EmbeddingRequest<'a> {
        #[serde(default, borrow)]
        model: Option<Cow<'a, str>>,
    }
    let model = serde_json::from_slice::<EmbeddingRequest<'_>>(body)
        .ok()
        .and_then(|r| r.model.map(|m| json_string(&m)))
        .unwrap_or_else(|| "\"mock-embedding\"".to_owned());
    format!(
        concat!(
            "{{\"object\":\"list\",\"data\":[{{\"object\":\"embedding\",\"index\":0,",
            "\"embedding\":[0.0023,-0.0091,0.0154,-0.0042,0.0311,0.0007,-0.0208,0.0119]}}],",
            "\"model\":{model},\"usage\":{{\"prompt_tokens\":8,\"total_tokens\":8}}}}"
        ),
        model = model
    )
}

pub const MODELS: &str = concat!(
    "{\"object\":\"list\",\"data\":[",
    "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"},",
    "{\"id\":\"text-embedding-3-small\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}",
    "]}"
);

/// One streamed chat completion: no head, a chunk per word (the first with the assistant
/// role), then the stop chunk, the optional usage chunk and `[DONE]`.
pub struct ChunkScript {
    model: String,
    prompt_tokens: u64,
    include_usage: bool,
    chunks: usize,
}

impl Script for ChunkScript {
    fn head_len(&self) -> usize {
        0
    }

    fn head(&self, _: usize) -> Bytes {
        Bytes::new()
    }

    fn content(&self, i: usize) -> Bytes {
        let word = WORDS[i % WORDS.len()];
        let role = if i == 0 {
            "\"role\":\"assistant\","
        } else {
            ""
        };
        Bytes::from(format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[{{\"index\":0,",
                "\"delta\":{{{role}\"content\":\"{word}\"}},\"logprobs\":null,",
                "\"finish_reason\":null}}]}}\n\n"
            ),
            created = CREATED,
            model = self.model,
            role = role,
            word = word,
        ))
    }

    fn tail_len(&self) -> usize {
        if self.include_usage { 3 } else { 2 }
    }

    fn tail(&self, i: usize) -> Bytes {
        match (i, self.include_usage) {
            (0, _) => self.stop_chunk(),
            (1, true) => self.usage_chunk(),
            _ => Bytes::from_static(b"data: [DONE]\n\n"),
        }
    }
}

impl ChunkScript {
    fn stop_chunk(&self) -> Bytes {
        Bytes::from(format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[{{\"index\":0,",
                "\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
            ),
            created = CREATED,
            model = self.model,
        ))
    }

    fn usage_chunk(&self) -> Bytes {
        let completion = self.chunks as u64;
        Bytes::from(format!(
            concat!(
                "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",",
                "\"created\":{created},\"model\":{model},\"choices\":[],",
                "\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},",
                "\"total_tokens\":{total}}}}}\n\n"
            ),
            created = CREATED,
            model = self.model,
            prompt = self.prompt_tokens,
            completion = completion,
            total = self.prompt_tokens + completion,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ends_with_stop_optional_usage_and_done() {
        for (include_usage, tail) in [(true, 3), (false, 2)] {
            let script = ChunkScript {
                model: "\"m\"".into(),
                prompt_tokens: 7,
                include_usage,
                chunks: 2,
            };
            assert_eq!(script.head_len(), 0);
            assert_eq!(script.tail_len(), tail);
            assert!(script.content(0).starts_with(b"data: {"));
            let first = String::from_utf8(script.content(0).to_vec()).unwrap();
            assert!(first.contains("\"role\":\"assistant\",\"content\":\"The\""));
            let last = script.tail(tail - 1);
            assert_eq!(&last[..], b"data: [DONE]\n\n");
            let stop = String::from_utf8(script.tail(0).to_vec()).unwrap();
            assert!(stop.contains("\"finish_reason\":\"stop\""));
        }
        let usage = ChunkScript {
            model: "\"m\"".into(),
            prompt_tokens: 7,
            include_usage: true,
            chunks: 2,
        }
        .tail(1);
        assert!(
            String::from_utf8(usage.to_vec())
                .unwrap()
                .contains("\"total_tokens\":9")
        );
    }
}
