//! A canonical chunk stream as the Responses API's event sequence, every event numbered by a
//! `sequence_number` that starts at 0: `response.created` and `response.in_progress`; for the
//! answer's text `response.output_item.added` (a message), `response.content_part.added`,
//! `response.output_text.delta`s, `response.output_text.done`, `response.content_part.done`,
//! `response.output_item.done`; for each tool call `response.output_item.added` (a
//! function_call), `response.function_call_arguments.delta`s and `.done`,
//! `response.output_item.done`; then `response.completed` (or `response.incomplete`) with the
//! whole response. A failure after the stream started is an `error` event followed by
//! `response.failed`.
//!
//! Chunks that carry the upstream's own frames (OpenAI answering a Responses client) are
//! forwarded as they came, byte for byte; the encoder only picks the final response out of the
//! terminal event, for the gateway to keep. Either way [`Encoder::take_final`] hands out the
//! final `response` object once, before its frame is sent.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_wire::openai::{ChatCompletionChunk, ToolCallDelta, Usage};
use switchyard_wire::sse;

use super::response::{self, Meta, new_id};

/// The output item being streamed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    None,
    /// The message at this output index.
    Text(usize),
    /// The function call at this output index.
    Call(usize),
}

/// The translation state of one stream.
pub struct Encoder {
    meta: Meta,
    seq: u64,
    started: bool,
    /// The upstream's own frames are forwarded: they carry the whole sequence.
    forwarded: bool,
    /// Frames forwarded so far: the next sequence number of the upstream's numbering.
    forwarded_frames: u64,
    /// Output items by output index, as they stand.
    output: Vec<Value>,
    open: Open,
    /// Canonical tool-call index → output index of its function call item.
    calls: HashMap<u32, usize>,
    finish: Option<String>,
    usage: Option<Usage>,
    final_response: Option<Value>,
}

impl Encoder {
    pub fn new(meta: Meta) -> Encoder {
        Encoder {
            meta,
            seq: 0,
            started: false,
            forwarded: false,
            forwarded_frames: 0,
            output: Vec::new(),
            open: Open::None,
            calls: HashMap::new(),
            finish: None,
            usage: None,
            final_response: None,
        }
    }

    /// The final `response` object, once the stream reached it (handed out once).
    pub fn take_final(&mut self) -> Option<Value> {
        self.final_response.take()
    }

    /// The frames for one chunk.
    pub fn chunk(&mut self, chunk: &ChatCompletionChunk) -> Bytes {
        if let Some(native) = &chunk.native {
            self.started = true;
            self.forwarded = true;
            self.forwarded_frames += 1;
            if let Some(done) = terminal_response(native) {
                self.final_response = Some(done);
            }
            return native.clone();
        }
        let mut out = BytesMut::new();
        if !self.started {
            if !chunk.model.is_empty() {
                self.meta.model.clone_from(&chunk.model);
            }
            self.start(&mut out);
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        for choice in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
                self.text(&mut out, text);
            }
            for call in choice.delta.tool_calls.iter().flatten() {
                self.call(&mut out, call);
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
            self.start(&mut out);
        }
        self.close(&mut out);
        let (status, reason) = response::status_of(self.finish.as_deref());
        let mut done = response::object(
            &self.meta,
            &self.meta.model,
            status,
            self.output.clone(),
            self.usage.as_ref(),
        );
        done["incomplete_details"] = reason.map_or(Value::Null, |r| json!({"reason": r}));
        let name = if reason.is_some() {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.event(&mut out, name, json!({"response": done}));
        self.final_response = Some(done);
        out.freeze()
    }

    /// The frames for a failure after the stream started: an `error` event and, when the
    /// gateway numbers the events itself, `response.failed`.
    pub fn fail(&mut self, e: &GatewayError) -> Bytes {
        let mut out = BytesMut::new();
        let error = json!({"code": e.code, "message": e.message, "param": e.param});
        if self.forwarded {
            self.seq = self.forwarded_frames;
            self.event(&mut out, "error", error);
            return out.freeze();
        }
        if !self.started {
            self.start(&mut out);
        }
        self.event(&mut out, "error", error);
        let mut failed = response::object(
            &self.meta,
            &self.meta.model,
            "failed",
            self.output.clone(),
            self.usage.as_ref(),
        );
        let code = if e.status == 429 {
            "rate_limit_exceeded"
        } else {
            "server_error"
        };
        failed["error"] = json!({"code": code, "message": e.message});
        self.event(&mut out, "response.failed", json!({"response": failed}));
        out.freeze()
    }

    fn start(&mut self, out: &mut BytesMut) {
        self.started = true;
        let created = response::object(&self.meta, &self.meta.model, "in_progress", vec![], None);
        self.event(out, "response.created", json!({"response": created}));
        self.event(out, "response.in_progress", json!({"response": created}));
    }

    fn text(&mut self, out: &mut BytesMut, delta: &str) {
        let index = match self.open {
            Open::Text(index) => index,
            _ => {
                self.close(out);
                let index = self.output.len();
                let mut item = response::message_item(&new_id("msg"), "", "in_progress");
                item["content"] = json!([]);
                self.event(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                let part = json!({"type": "output_text", "text": "", "annotations": []});
                let added = json!({"item_id": item["id"], "output_index": index,
                    "content_index": 0, "part": part});
                self.event(out, "response.content_part.added", added);
                item["content"] = json!([response::text_part("")]);
                self.output.push(item);
                self.open = Open::Text(index);
                index
            }
        };
        let item = &mut self.output[index];
        let so_far = item["content"][0]["text"].as_str().unwrap_or_default();
        item["content"][0]["text"] = format!("{so_far}{delta}").into();
        let data = json!({"item_id": item["id"], "output_index": index, "content_index": 0,
            "delta": delta, "logprobs": []});
        self.event(out, "response.output_text.delta", data);
    }

    fn call(&mut self, out: &mut BytesMut, call: &ToolCallDelta) {
        let args = call.function.as_ref().and_then(|f| f.arguments.as_deref());
        let index = match self.calls.get(&call.index) {
            Some(&index) => index,
            None => {
                self.close(out);
                let index = self.output.len();
                let name = call.function.as_ref().and_then(|f| f.name.as_deref());
                let call_id = call.id.clone().unwrap_or_else(|| new_id("call"));
                let item = response::function_call_item(
                    &new_id("fc"),
                    &call_id,
                    name.unwrap_or_default(),
                    "",
                    "in_progress",
                );
                self.event(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                );
                self.output.push(item);
                self.calls.insert(call.index, index);
                self.open = Open::Call(index);
                index
            }
        };
        let Some(args) = args.filter(|a| !a.is_empty()) else {
            return;
        };
        let item = &mut self.output[index];
        let so_far = item["arguments"].as_str().unwrap_or_default();
        item["arguments"] = format!("{so_far}{args}").into();
        // Fragments of a call already closed (an upstream that interleaves calls) still count
        // in the final response; their events cannot be sent once the item is done.
        if self.open == Open::Call(index) {
            let data = json!({"item_id": item["id"], "output_index": index, "delta": args});
            self.event(out, "response.function_call_arguments.delta", data);
        }
    }

    /// Closes the open item: its `.done` events, with the item as it ended.
    fn close(&mut self, out: &mut BytesMut) {
        let open = std::mem::replace(&mut self.open, Open::None);
        match open {
            Open::None => {}
            Open::Text(index) => {
                let incomplete = response::status_of(self.finish.as_deref()).1.is_some();
                let item = &mut self.output[index];
                item["status"] = if incomplete {
                    "incomplete"
                } else {
                    "completed"
                }
                .into();
                let (id, text) = (item["id"].clone(), item["content"][0]["text"].clone());
                let part = json!({"type": "output_text", "text": text, "annotations": []});
                let item = item.clone();
                self.event(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.event(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "part": part}),
                );
                self.item_done(out, index, item);
            }
            Open::Call(index) => {
                let item = &mut self.output[index];
                item["status"] = "completed".into();
                let item = item.clone();
                self.event(
                    out,
                    "response.function_call_arguments.done",
                    json!({
                    "item_id": item["id"], "output_index": index, "name": item["name"],
                    "arguments": item["arguments"]}),
                );
                self.item_done(out, index, item);
            }
        }
    }

    fn item_done(&mut self, out: &mut BytesMut, index: usize, item: Value) {
        let data = json!({"output_index": index, "item": item});
        self.event(out, "response.output_item.done", data);
    }

    /// Writes one event: `type` and `sequence_number` join `data`.
    fn event(&mut self, out: &mut BytesMut, name: &str, mut data: Value) {
        if let Value::Object(map) = &mut data {
            map.insert("type".into(), name.into());
            map.insert("sequence_number".into(), self.seq.into());
        }
        self.seq += 1;
        sse::put_named_json(out, name, &data);
    }
}

/// The final `response` of an upstream frame that ends the response (`response.completed` or
/// `response.incomplete`), for the gateway to keep; `None` for every other frame, which is told
/// by its first bytes without parsing it.
fn terminal_response(frame: &[u8]) -> Option<Value> {
    const TERMINAL: [&[u8]; 2] = [b"response.completed", b"response.incomplete"];
    let named = frame.strip_prefix(b"event: ");
    let typed = frame.strip_prefix(b"data: {\"type\":\"");
    let name = named.or(typed)?;
    if !TERMINAL.iter().any(|t| name.starts_with(t)) {
        return None;
    }
    let text = std::str::from_utf8(frame).ok()?;
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect::<Vec<_>>()
        .join("\n");
    let mut event: Value = serde_json::from_str(&data).ok()?;
    Some(event.get_mut("response")?.take())
}

#[cfg(test)]
mod tests;
