//! A canonical chunk stream as the Messages API's event sequence: `message_start`, `ping`, then
//! for each content block `content_block_start`, its deltas (`text_delta`, or `input_json_delta`
//! for a tool call) and `content_block_stop`, then `message_delta` (stop reason and usage) and
//! `message_stop`. A failure after the stream started is an `error` event, as Anthropic sends.
//!
//! Chunks that carry the upstream's own frames (an Anthropic deployment answering an Anthropic
//! client) are forwarded as they came, byte for byte: thinking blocks with their signatures,
//! citations and server-tool blocks arrive untouched.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_wire::openai::{ChatCompletionChunk, Usage};
use switchyard_wire::sse;

use super::response;

/// Which content block is open.
#[derive(Debug, PartialEq)]
enum Block {
    None,
    Text,
    /// A tool call, by its OpenAI index.
    Tool(u32),
}

/// The translation state of one stream.
pub struct Encoder {
    /// The model the client asked for, until a chunk names the one that served.
    model: String,
    started: bool,
    /// The upstream's own frames were forwarded: they carry the whole sequence, `message_stop`
    /// included.
    forwarded: bool,
    /// Index of the open block (Anthropic counts every block).
    index: u32,
    block: Block,
    finish: Option<String>,
    usage: Option<Usage>,
}

impl Encoder {
    pub fn new(model: &str) -> Encoder {
        Encoder {
            model: model.to_owned(),
            started: false,
            forwarded: false,
            index: 0,
            block: Block::None,
            finish: None,
            usage: None,
        }
    }

    /// The frames for one chunk.
    pub fn chunk(&mut self, chunk: &ChatCompletionChunk) -> Bytes {
        if let Some(native) = &chunk.native {
            self.started = true;
            self.forwarded = true;
            return native.clone();
        }
        let mut out = BytesMut::new();
        if !self.started {
            self.started = true;
            if !chunk.model.is_empty() {
                self.model.clone_from(&chunk.model);
            }
            let start = json!({"type": "message_start", "message": {
                "id": response::message_id(&chunk.id),
                "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }});
            event(&mut out, "message_start", &start);
            event(&mut out, "ping", &json!({"type": "ping"}));
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.open(&mut out, Block::Text, None);
                let delta = json!({"type": "text_delta", "text": text});
                self.delta(&mut out, delta);
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                if self.block != Block::Tool(call.index) {
                    let start = (
                        call.id.clone().unwrap_or_default(),
                        call.function
                            .as_ref()
                            .and_then(|f| f.name.clone())
                            .unwrap_or_default(),
                    );
                    self.open(&mut out, Block::Tool(call.index), Some(start));
                }
                let args = call.function.as_ref().and_then(|f| f.arguments.as_deref());
                if let Some(args) = args.filter(|a| !a.is_empty()) {
                    let delta = json!({"type": "input_json_delta", "partial_json": args});
                    self.delta(&mut out, delta);
                }
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish = Some(reason.clone());
            }
        }
        out.freeze()
    }

    /// The closing frames, once the stream has ended well.
    pub fn end(&mut self) -> Bytes {
        if self.forwarded {
            return Bytes::new();
        }
        let mut out = BytesMut::new();
        if !self.started {
            // An empty stream still gets a well-formed message.
            out.put(self.chunk(&ChatCompletionChunk::with_delta(
                "",
                0,
                "",
                Default::default(),
            )));
        }
        self.close(&mut out);
        let mut usage = response::usage(self.usage.as_ref());
        if let Value::Object(map) = &mut usage {
            map.remove("cache_creation_input_tokens");
        }
        let delta = json!({"type": "message_delta",
            "delta": {"stop_reason": response::stop_reason(self.finish.as_deref()), "stop_sequence": null},
            "usage": usage});
        event(&mut out, "message_delta", &delta);
        event(&mut out, "message_stop", &json!({"type": "message_stop"}));
        out.freeze()
    }

    fn open(&mut self, out: &mut BytesMut, block: Block, tool: Option<(String, String)>) {
        if self.block == block {
            return;
        }
        self.close(out);
        let content_block = match tool {
            Some((id, name)) => json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
            None => json!({"type": "text", "text": ""}),
        };
        let start = json!({"type": "content_block_start", "index": self.index,
            "content_block": content_block});
        event(out, "content_block_start", &start);
        self.block = block;
    }

    fn close(&mut self, out: &mut BytesMut) {
        if self.block == Block::None {
            return;
        }
        let stop = json!({"type": "content_block_stop", "index": self.index});
        event(out, "content_block_stop", &stop);
        self.block = Block::None;
        self.index += 1;
    }

    fn delta(&self, out: &mut BytesMut, delta: Value) {
        let frame = json!({"type": "content_block_delta", "index": self.index, "delta": delta});
        event(out, "content_block_delta", &frame);
    }
}

/// The `error` event for a failure after the stream started.
pub fn error_event(e: &GatewayError, request_id: &str) -> Bytes {
    let mut out = BytesMut::new();
    event(&mut out, "error", &response::error_body(e, request_id));
    out.freeze()
}

fn event(out: &mut BytesMut, name: &str, data: &Value) {
    sse::put_named_json(out, name, data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(frames: &[Bytes]) -> Vec<(String, Value)> {
        let text: String = frames
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let mut lines = f.lines();
                let name = lines
                    .next()
                    .unwrap()
                    .trim_start_matches("event: ")
                    .to_owned();
                let data = lines.next().unwrap().trim_start_matches("data: ");
                (name, serde_json::from_str(data).unwrap())
            })
            .collect()
    }

    fn chunk(v: Value) -> ChatCompletionChunk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn text_then_a_tool_call_make_two_blocks_in_anthropic_order() {
        let mut enc = Encoder::new("claude");
        let mut frames = vec![
            enc.chunk(&chunk(json!({"id": "c1", "model": "gpt", "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}}]}))),
            enc.chunk(&chunk(json!({"id": "c1", "choices": [
                {"index": 0, "delta": {"content": "Checking."}}]}))),
            enc.chunk(&chunk(
                json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": ""}}]}}]}),
            )),
            enc.chunk(&chunk(
                json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "{\"city\":"}}]}}]}),
            )),
            enc.chunk(&chunk(
                json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": "\"Paris\"}"}}]}}]}),
            )),
            enc.chunk(&chunk(json!({"id": "c1", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}))),
            enc.chunk(&chunk(json!({"id": "c1", "choices": [], "usage":
                {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}}))),
        ];
        frames.push(enc.end());
        let names: Vec<String> = events(&frames).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let all = events(&frames);
        assert_eq!(all[0].1["message"]["model"], "gpt");
        assert_eq!(all[5].1["index"], 1);
        assert_eq!(all[5].1["content_block"]["name"], "weather");
        assert_eq!(all[9].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(all[9].1["usage"]["output_tokens"], 7);
        assert_eq!(all[9].1["usage"]["input_tokens"], 12);
    }

    #[test]
    fn native_frames_pass_as_they_came() {
        let mut enc = Encoder::new("claude");
        let mut c = chunk(json!({"id": "m", "choices": []}));
        c.native = Some(Bytes::from_static(
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n",
        ));
        assert_eq!(
            &enc.chunk(&c)[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        assert!(
            enc.end().is_empty(),
            "the upstream's frames end the stream themselves"
        );
    }

    #[test]
    fn an_empty_stream_is_still_a_whole_message() {
        let mut enc = Encoder::new("claude");
        let names: Vec<String> = events(&[enc.end()]).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["message_start", "ping", "message_delta", "message_stop"]
        );
    }
}
