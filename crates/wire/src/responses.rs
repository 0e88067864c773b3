//! The OpenAI Responses API (`POST /v1/responses`): the request a client sends, the input and
//! output items a conversation is made of, the usage block, and the streaming events the
//! gateway reads from an upstream.
//!
//! Items are one loose struct rather than an enum per item type: a message item may come with
//! or without `"type": "message"`, the API adds item types often, and the gateway must keep
//! every item it does not translate (a reasoning item, a web search call) to send it back to
//! OpenAI as it came. The translation in `switchyard-server` checks the fields each type needs.
//! A `response` object is read only as far as the gateway needs it ([`ResponseObject`]); the
//! rest is kept as JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::openai::Extra;

/// `POST /v1/responses` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    /// A string (one user message) or a list of items; absent when `previous_response_id`
    /// carries the whole conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `"auto" | "none" | "required"`, or an object naming a function or a built-in tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// `{"format": {"type": "text" | "json_object" | "json_schema", …}, "verbosity": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    /// `{"effort": …, "summary": …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Whether the response may be kept for `previous_response_id` (OpenAI's default: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `input`: one user message as a string, or a list of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Item>),
}

/// One input or output item: a message, a function call, a function call's output, a
/// reasoning item, a built-in tool's call… Which fields are present depends on `type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Absent on the short message form `{"role": …, "content": …}`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Of a `function_call` and of the `function_call_output` that answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A `function_call`'s arguments: a JSON document encoded as a string (other item types
    /// put an object here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// A `function_call_output`'s output: a string or a list of content parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Item {
    /// The arguments of a function call, when they are the string a function call carries.
    pub fn arguments(&self) -> Option<&str> {
        self.arguments.as_ref().and_then(Value::as_str)
    }

    /// The item's type, `message` for the short message form.
    pub fn kind(&self) -> &str {
        match (&self.kind, &self.role) {
            (Some(kind), _) => kind,
            (None, Some(_)) => "message",
            (None, None) => "",
        }
    }
}

/// A message's content, or a function call's output: a string or a list of parts. Other item
/// types put other shapes here (a computer call's output is a screenshot object): those are
/// kept as they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
    Other(Value),
}

/// One content part: `input_text`, `output_text`, `refusal`, `input_image`, `input_file`…
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Of a `refusal` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Of an `input_image`: a URL or a data URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// An uploaded file of OpenAI's (`input_image` or `input_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// Of an `input_file` sent inline: a data URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A tool: a function in the flat shape (`name`, `description`, `parameters`, `strict` beside
/// `type`), or a built-in tool OpenAI runs itself (`web_search`, `file_search`…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A response's `usage`. `input_tokens` counts the cached ones too; `output_tokens` the
/// reasoning ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens_details: Option<InputTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_details: Option<OutputTokensDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

/// A `response` object, as far as the gateway reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ResponseObject {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub created_at: f64,
    /// `completed`, `incomplete`, `failed`, `in_progress`…
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub output: Vec<Item>,
    #[serde(default)]
    pub usage: Option<Usage>,
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    pub error: Option<ResponseError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// The streaming events the gateway reads; every other one is [`StreamEvent::Other`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum StreamEvent {
    #[serde(rename = "response.created")]
    Created { response: ResponseObject },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { output_index: u32, item: Item },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        #[serde(default)]
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        output_index: u32,
        #[serde(default)]
        delta: String,
    },
    #[serde(rename = "response.completed")]
    Completed { response: ResponseObject },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: ResponseObject },
    #[serde(rename = "response.failed")]
    Failed { response: ResponseObject },
    /// A failure after the stream started.
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        message: String,
    },
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_read_in_every_shape_and_keep_what_they_do_not_model() {
        let req: ResponsesRequest = serde_json::from_value(json!({
            "model": "gpt", "input": [
                {"role": "user", "content": "hi"},
                {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                 "content": [{"type": "output_text", "text": "hello", "annotations": []}]},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"}
            ],
            "truncation": "auto"
        }))
        .unwrap();
        let Some(Input::Items(items)) = &req.input else {
            panic!("items expected")
        };
        let kinds: Vec<&str> = items.iter().map(Item::kind).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "message",
                "function_call",
                "function_call_output",
                "reasoning"
            ]
        );
        assert_eq!(items[4].extra["encrypted_content"], "xyz");
        assert_eq!(items[2].arguments(), Some("{}"));
        assert_eq!(req.extra["truncation"], "auto");
        let back = serde_json::to_value(&items[1]).unwrap();
        assert_eq!(back["content"][0]["annotations"], json!([]));
    }

    #[test]
    fn items_of_other_shapes_still_read() {
        let items: Vec<Item> = serde_json::from_value(json!([
            {"type": "computer_call_output", "call_id": "c", "output":
                {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA"}},
            {"type": "tool_search_call", "arguments": {"query": "x"}}
        ]))
        .unwrap();
        assert!(matches!(items[0].output, Some(Content::Other(_))));
        assert_eq!(items[1].arguments(), None);
    }

    #[test]
    fn stream_events_read_what_the_gateway_needs_and_skip_the_rest() {
        let e: StreamEvent = serde_json::from_str(
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":1,"delta":"{\"a\"","sequence_number":7}"#,
        )
        .unwrap();
        assert_eq!(
            e,
            StreamEvent::FunctionCallArgumentsDelta {
                output_index: 1,
                delta: "{\"a\"".into()
            }
        );
        let e: StreamEvent = serde_json::from_str(
            r#"{"type":"response.content_part.added","item_id":"m","output_index":0,"content_index":0,"part":{"type":"output_text","text":""},"sequence_number":3}"#,
        )
        .unwrap();
        assert_eq!(e, StreamEvent::Other);
    }
}
