//! The APIs loadgen speaks, one [`Dialect`] each: where a request goes, which headers it needs,
//! the ~1 KB body it sends, and how its SSE stream is read — which event carries a token (for
//! TTFT and inter-chunk gaps) and which one ends the stream. The rest of loadgen (scheduling,
//! timing, reporting) is the same for every dialect, so their rows compare. Another entrance
//! of the gateway is one more variant here.

use std::borrow::Cow;

use clap::ValueEnum;
use serde::Deserialize;
use serde_json::json;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    /// OpenAI chat completions: `POST /v1/chat/completions`; a token is a chunk with non-empty
    /// `delta.content`; the stream ends with `data: [DONE]`.
    Openai,
    /// Anthropic Messages: `POST /v1/messages` with `anthropic-version` and `x-api-key`; a token
    /// is a `content_block_delta` with a non-empty `text_delta`; the stream ends with
    /// `event: message_stop`.
    Anthropic,
}

/// What one SSE event means to the measurement.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// It carries part of the answer's text.
    Content,
    /// It ends the stream.
    Done,
    /// It reports a failure inside the stream (Anthropic's `error` event).
    Error,
    /// Anything else: role-only, stop and usage chunks, pings, block starts, comments.
    Other,
}

/// The key sent as `x-api-key` when the command line gives no credential (the mock does not
/// check it, only that it is there).
pub const DEFAULT_API_KEY: &str = "bench-key";

impl Dialect {
    /// The request path appended to `--url`.
    pub fn path(self) -> &'static str {
        match self {
            Dialect::Openai => "/v1/chat/completions",
            Dialect::Anthropic => "/v1/messages",
        }
    }

    /// Headers every request of this dialect carries unless the command line sets them.
    pub fn default_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Dialect::Openai => &[],
            Dialect::Anthropic => &[("anthropic-version", "2023-06-01")],
        }
    }

    /// The header a credential goes in when none is given (`None`: send none).
    pub fn default_key_header(self) -> Option<&'static str> {
        match self {
            Dialect::Openai => None,
            Dialect::Anthropic => Some("x-api-key"),
        }
    }

    /// The error kind of a stream that ended without its end event.
    pub fn unfinished(self) -> &'static str {
        match self {
            Dialect::Openai => "stream_without_done",
            Dialect::Anthropic => "stream_without_message_stop",
        }
    }

    /// A request of about `size` bytes: a system line and a user message padded with filler
    /// words, `max_tokens: 64`; streaming OpenAI requests ask for the usage chunk.
    pub fn body(self, model: &str, size: usize, stream: bool) -> String {
        const SYSTEM: &str = "You are a terse assistant used for benchmarking.";
        let text = filler(size);
        let mut body = match self {
            Dialect::Openai => json!({
                "model": model,
                "messages": [
                    { "role": "system", "content": SYSTEM },
                    { "role": "user", "content": text },
                ],
                "max_tokens": 64,
            }),
            Dialect::Anthropic => json!({
                "model": model,
                "system": SYSTEM,
                "messages": [{ "role": "user", "content": text }],
                "max_tokens": 64,
            }),
        };
        if stream {
            body["stream"] = json!(true);
            if self == Dialect::Openai {
                body["stream_options"] = json!({ "include_usage": true });
            }
        }
        body.to_string()
    }

    /// What one SSE event (its lines, without the blank line that ends it) means.
    pub fn classify(self, event: &[u8]) -> Event {
        match self {
            Dialect::Openai => classify_chunk(event),
            Dialect::Anthropic => classify_anthropic(event),
        }
    }
}

/// Filler text for a body of about `size` bytes.
fn filler(size: usize) -> String {
    const FILLER: &str = "Summarise the following benchmark filler text in one sentence. ";
    let mut text = String::with_capacity(size);
    while text.len() + FILLER.len() <= size.saturating_sub(200).max(FILLER.len()) {
        text.push_str(FILLER);
    }
    text.truncate(text.trim_end().len());
    text
}

/// The `data:` payloads of an event's lines (trimmed), and its `event:` name if any.
fn fields(event: &[u8]) -> (Option<&[u8]>, impl Iterator<Item = &[u8]>) {
    let lines = event
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let name = lines
        .clone()
        .find_map(|line| line.strip_prefix(b"event:"))
        .map(<[u8]>::trim_ascii);
    let data = lines.filter_map(|line| line.strip_prefix(b"data:").map(<[u8]>::trim_ascii));
    (name, data)
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

/// An OpenAI chunk: content when some choice has non-empty `delta.content`.
fn classify_chunk(event: &[u8]) -> Event {
    let mut verdict = Event::Other;
    for data in fields(event).1 {
        if data == b"[DONE]" {
            return Event::Done;
        }
        if memchr::memmem::find(data, b"\"content\"").is_none() {
            continue;
        }
        if let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data)
            && chunk.choices.iter().any(|c| {
                c.delta
                    .as_ref()
                    .and_then(|d| d.content.as_ref())
                    .is_some_and(|text| !text.is_empty())
            })
        {
            verdict = Event::Content;
        }
    }
    verdict
}

/// An Anthropic stream event, as far as the measurement reads it.
#[derive(Deserialize)]
struct AnthropicEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<BlockDelta<'a>>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

/// An Anthropic event, by its `event:` name (its data's `type` when unnamed): content when a
/// `content_block_delta` carries a non-empty `text_delta`.
fn classify_anthropic(event: &[u8]) -> Event {
    let (name, mut data) = fields(event);
    let Some(data) = data.next() else {
        return Event::Other;
    };
    let by_name = match name {
        Some(b"message_stop") => return Event::Done,
        Some(b"error") => return Event::Error,
        Some(b"content_block_delta") | None => false,
        Some(_) => return Event::Other,
    };
    let Ok(parsed) = serde_json::from_slice::<AnthropicEvent<'_>>(data) else {
        return Event::Other;
    };
    match parsed.kind.as_ref() {
        "message_stop" if !by_name => Event::Done,
        "error" if !by_name => Event::Error,
        "content_block_delta" => {
            let text = parsed
                .delta
                .filter(|d| d.kind.as_deref() == Some("text_delta"))
                .and_then(|d| d.text);
            if text.is_some_and(|t| !t.is_empty()) {
                Event::Content
            } else {
                Event::Other
            }
        }
        _ => Event::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn classifies_openai_chunks() {
        let classify = |e: &[u8]| Dialect::Openai.classify(e);
        let content = br#"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
        assert_eq!(classify(content), Event::Content);
        let spaced = br#"data:{"choices": [{"delta": {"content": "a\"b"}}]}"#;
        assert_eq!(classify(spaced), Event::Content);
        let role = br#"data: {"choices":[{"delta":{"role":"assistant","content":""}}]}"#;
        assert_eq!(classify(role), Event::Other);
        let usage = br#"data: {"choices":[],"usage":{"total_tokens":3}}"#;
        assert_eq!(classify(usage), Event::Other);
        assert_eq!(classify(b"data: [DONE]"), Event::Done);
        assert_eq!(classify(b": keep-alive"), Event::Other);
        assert_eq!(classify(b"data: {not json \"content\""), Event::Other);
    }

    #[test]
    fn classifies_anthropic_events() {
        let classify = |e: &[u8]| Dialect::Anthropic.classify(e);
        let delta = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}";
        assert_eq!(classify(delta), Event::Content);
        let crlf = b"event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\r";
        assert_eq!(classify(crlf), Event::Content);
        let unnamed = b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}";
        assert_eq!(classify(unnamed), Event::Content);
        let empty = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}";
        assert_eq!(classify(empty), Event::Other);
        let tool = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}";
        assert_eq!(classify(tool), Event::Other);
        let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}";
        assert_eq!(classify(start), Event::Other);
        assert_eq!(
            classify(b"event: ping\ndata: {\"type\": \"ping\"}"),
            Event::Other
        );
        let stop = b"event: message_stop\ndata: {\"type\":\"message_stop\"}";
        assert_eq!(classify(stop), Event::Done);
        assert_eq!(classify(b"data: {\"type\":\"message_stop\"}"), Event::Done);
        let error = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}";
        assert_eq!(classify(error), Event::Error);
    }

    #[test]
    fn bodies_are_about_the_requested_size() {
        for dialect in [Dialect::Openai, Dialect::Anthropic] {
            let body = dialect.body("m", 1024, true);
            assert!((900..=1100).contains(&body.len()), "{}", body.len());
            let parsed: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed["stream"], true);
            assert_eq!(parsed["model"], "m");
            assert_eq!(parsed["max_tokens"], 64);
        }
        let anthropic: Value =
            serde_json::from_str(&Dialect::Anthropic.body("m", 1024, false)).unwrap();
        assert!(anthropic["system"].is_string());
        assert_eq!(anthropic["messages"][0]["role"], "user");
        assert!(anthropic.get("stream_options").is_none());
    }
}
