//! Tests of the Anthropic translation against payloads from Anthropic's own documentation
//! (Messages API reference, "Streaming Messages", "How to implement tool use", "Streaming
//! refusals", the web search tool page). Streams are fed through the real SSE parser in small
//! reads before they reach the [`Translator`], so the framing is exercised too.

use serde_json::{Value, json};
use switchyard_wire::anthropic::MessagesResponse;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Role, ToolCallDelta,
};
use switchyard_wire::sse::{Event, Parser};

use super::stream::Translator;
use super::translate::{finish_reason, from_messages_response, to_messages_request};
use crate::error::{ErrorClass, ProviderError};

const PROVIDER: &str = "claude-test";
const CREATED: u64 = 1_717_171_717;
const DEFAULT_MAX_TOKENS: u32 = 4096;

// ---------------------------------------------------------------------------------------------
// Fixtures, as the documentation shows them.
// ---------------------------------------------------------------------------------------------

/// "Streaming Messages" → "Basic streaming request", the response exactly as documented.
const DOC_TEXT_STREAM: &str = r##"event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-6", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"##;

/// "Streaming Messages" → "Streaming request with tool use", the response exactly as documented
/// (a text block at index 0, then the tool_use block at index 1; it ends without a final blank
/// line, as the documentation shows it).
const DOC_TOOL_STREAM: &str = r##"event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" let"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'s"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" for"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" Francisco"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" CA"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":":"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":","}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"unit\": \"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}"##;

/// Two parallel tool calls after a text block, in the documented event shapes (block indexes
/// 0 text, 1 and 2 tool_use), with a ping between the calls.
const TWO_TOOLS_STREAM: &str = r##"event: message_start
data: {"type":"message_start","message":{"id":"msg_01ParallelTools","type":"message","role":"assistant","model":"claude-opus-4-6","stop_sequence":null,"usage":{"input_tokens":520,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check both."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01WeatherSF","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02TimeLA","name":"get_time","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"timezone\": "}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"America/Los_Angeles\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":120}}

event: message_stop
data: {"type":"message_stop"}

"##;

/// Text already sent (HTTP 200), then the documented error event of "Streaming Messages" →
/// "Error events".
const ERROR_AFTER_TEXT_STREAM: &str = r##"event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-6", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: error
data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

"##;

/// The web search tool page, "Streaming": a `server_tool_use` block whose input also arrives
/// as `input_json_delta`s, then a `web_search_tool_result` block that arrives whole. The
/// documentation elides part of it with `...`; those elisions are removed here (one search
/// result kept, the middle text deltas dropped), nothing else is changed.
const DOC_WEB_SEARCH_STREAM: &str = r##"event: message_start
data: {"type":"message_start","message":{"id":"msg_01G...","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2679,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the current weather in New York City for you"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"server_tool_use","id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","name":"web_search","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"query"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" NY"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"C to"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"day\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1 }

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_014hJH82Qum7Td6UV8gDXThB","content":[{"type":"web_search_result","title":"Weather in New York City in May 2025 (New York) - detailed Weather Forecast for a month","url":"https://world-weather.info/forecast/usa/new_york/may-2025/","encrypted_content":"Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k...","page_age":null}]}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: content_block_start
data: {"type":"content_block_start","index":3,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"Here's the current weather information for New York"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":" City:\n\n# Weather"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":" in New York City"}}

event: content_block_delta
data: {"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"\n\n"}}

event: content_block_stop
data: {"type":"content_block_stop","index":17}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":10682,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":510,"server_tool_use":{"web_search_requests":1}}}

event: message_stop
data: {"type":"message_stop"}

"##;

/// Messages API reference, the documented 200 response of `POST /v1/messages`.
const DOC_TEXT_RESPONSE: &str = r##"{
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  "container": {
    "id": "container_011CpZohnwH4vuy7gazohgSP",
    "expires_at": "2019-12-27T18:11:19.117Z",
    "skills": [
      {
        "skill_id": "pdf",
        "type": "anthropic",
        "version": "latest"
      }
    ]
  },
  "content": [
    {
      "citations": [
        {
          "cited_text": "The grass is green. The sky is blue.",
          "document_index": 0,
          "document_title": "My Document",
          "end_char_index": 0,
          "file_id": "file_011CNha8iCJcU1wXNR6q4V8w",
          "start_char_index": 0,
          "type": "char_location"
        }
      ],
      "text": "Hi! My name is Claude.",
      "type": "text"
    }
  ],
  "model": "claude-opus-4-6",
  "role": "assistant",
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "type": "message",
  "usage": {
    "cache_creation": {
      "ephemeral_1h_input_tokens": 0,
      "ephemeral_5m_input_tokens": 0
    },
    "cache_creation_input_tokens": 2051,
    "cache_read_input_tokens": 2051,
    "inference_geo": "global",
    "input_tokens": 2095,
    "output_tokens": 503,
    "server_tool_use": {
      "web_fetch_requests": 2,
      "web_search_requests": 0
    },
    "service_tier": "standard"
  }
}"##;

/// "How to implement tool use" → "Example API response with a `tool_use` content block".
const DOC_TOOL_USE_RESPONSE: &str = r##"{
  "id": "msg_01Aq9w938a90dw8q",
  "model": "claude-opus-4-6",
  "stop_reason": "tool_use",
  "role": "assistant",
  "content": [
    {
      "type": "text",
      "text": "I'll check the current weather in San Francisco for you."
    },
    {
      "type": "tool_use",
      "id": "toolu_01A09q90qw90lq917835lq9",
      "name": "get_weather",
      "input": {"location": "San Francisco, CA", "unit": "celsius"}
    }
  ]
}"##;

/// The Messages API reference's `tool_use` example block (`get_stock_price`), alone in a
/// message, as Claude returns it when it calls a tool without commentary.
const TOOL_USE_ONLY_RESPONSE: &str = r##"{
  "id": "msg_01StockPrice",
  "type": "message",
  "role": "assistant",
  "model": "claude-opus-4-6",
  "content": [
    {
      "type": "tool_use",
      "id": "toolu_01D7FLrfh4GYq7yT1ULFeyMV",
      "name": "get_stock_price",
      "input": { "ticker": "^GSPC" }
    }
  ],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "usage": {"input_tokens": 410, "output_tokens": 57}
}"##;

/// "Streaming refusals" → "API response format". The documentation abbreviates the message to
/// role, content and stop_reason; `id` and `model`, which every real response carries, are
/// added.
const DOC_REFUSAL_RESPONSE: &str = r##"{
  "id": "msg_01Refusal",
  "model": "claude-sonnet-4-5",
  "role": "assistant",
  "content": [
    {
      "type": "text",
      "text": "Hello.."
    }
  ],
  "stop_reason": "refusal"
}"##;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

fn request(body: Value) -> ChatCompletionRequest {
    serde_json::from_value(body).expect("a valid OpenAI chat request")
}

/// Translates an OpenAI request body and returns the Anthropic body as JSON.
fn translate(body: Value) -> Value {
    let out = to_messages_request(&request(body), DEFAULT_MAX_TOKENS).expect("translates");
    serde_json::to_value(&out).expect("serializes")
}

fn translate_err(body: Value) -> String {
    to_messages_request(&request(body), DEFAULT_MAX_TOKENS).expect_err("must be refused")
}

fn response(raw: &str) -> ChatCompletionResponse {
    let msg: MessagesResponse = serde_json::from_str(raw).expect("a documented Message parses");
    from_messages_response(msg, CREATED)
}

/// Splits raw SSE text into events with the real parser, fed in reads of `read` bytes so that
/// lines and events straddle read boundaries.
fn sse_events(raw: &str, read: usize) -> Vec<Event> {
    let mut parser = Parser::new(1 << 20);
    let mut events = Vec::new();
    for piece in raw.as_bytes().chunks(read) {
        parser.push(piece);
        while let Some(ev) = parser.next_event().expect("valid SSE") {
            events.push(ev);
        }
    }
    if let Some(ev) = parser.finish().expect("valid SSE") {
        events.push(ev);
    }
    events
}

/// What a stream turned into.
struct Run {
    /// Per event consumed: its SSE name and the chunk it produced, if any.
    steps: Vec<(String, Option<ChatCompletionChunk>)>,
    /// The error that ended the stream, if one did.
    error: Option<ProviderError>,
    finished: bool,
}

impl Run {
    fn chunks(&self) -> Vec<&ChatCompletionChunk> {
        self.steps.iter().filter_map(|(_, c)| c.as_ref()).collect()
    }

    /// All `delta.content` concatenated, as a client would display it.
    fn text(&self) -> String {
        self.chunks()
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|choice| choice.delta.content.as_deref())
            .collect()
    }

    fn tool_deltas(&self) -> Vec<&ToolCallDelta> {
        self.chunks()
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|choice| choice.delta.tool_calls.as_ref())
            .flatten()
            .collect()
    }

    /// The arguments of tool call `index`, concatenated from its fragments.
    fn arguments(&self, index: u32) -> String {
        self.tool_deltas()
            .iter()
            .filter(|d| d.index == index)
            .filter_map(|d| d.function.as_ref()?.arguments.as_deref())
            .collect()
    }

    fn finish_reasons(&self) -> Vec<&str> {
        self.chunks()
            .iter()
            .flat_map(|c| c.choices.iter())
            .filter_map(|choice| choice.finish_reason.as_deref())
            .collect()
    }

    /// The chunks produced by events of this SSE name.
    fn produced_by(&self, name: &str) -> Vec<&Option<ChatCompletionChunk>> {
        self.steps
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| c)
            .collect()
    }
}

/// Drives a raw Anthropic SSE body through the parser and a fresh translator, stopping at the
/// first error as the adapter's stream does.
fn run(raw: &str) -> Run {
    run_in_reads(raw, 7)
}

fn run_in_reads(raw: &str, read: usize) -> Run {
    let mut translator = Translator::new(CREATED);
    let mut steps = Vec::new();
    let mut error = None;
    for ev in sse_events(raw, read) {
        let name = ev.event.clone().expect("Anthropic names every event");
        let data: Value = serde_json::from_str(&ev.data).expect("event data is JSON");
        assert_eq!(
            data["type"],
            name.as_str(),
            "the data's type repeats the event name"
        );
        match translator.on_event(PROVIDER, &ev.data) {
            Ok(chunk) => steps.push((name, chunk)),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    Run {
        steps,
        error,
        finished: translator.is_finished(),
    }
}

mod requests;
mod responses;
mod streaming;
