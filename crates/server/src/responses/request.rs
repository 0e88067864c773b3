//! A Responses API request into the canonical chat request. Every request gets it: routing,
//! limits and accounting read the canonical request, and every deployment that does not serve
//! the Responses API itself (Anthropic, Gemini, Bedrock, vLLM, Ollama, the mock…) is sent it.
//!
//! `instructions` become a system message. Input items become chat messages: message items by
//! role (`developer` as `system`, which every chat API knows), their `input_text` /
//! `output_text` parts as text, `input_image` parts by URL as `image_url` parts, `input_file`
//! parts sent inline as `file` parts; a `function_call` item becomes a tool call of the
//! assistant message before it (or of a new one), its `call_id` the tool call's id; a
//! `function_call_output` item becomes a `tool` message, its images a user message right after
//! the tool messages (a tool message holds text only). Reasoning items of earlier turns are left
//! out: their encrypted content means something to OpenAI only. `function` tools map to chat
//! tools, `max_output_tokens` to `max_tokens`, `text.format` to `response_format`,
//! `reasoning.effort` to `reasoning_effort`. What has no canonical form — a built-in tool
//! (web search, file search, code interpreter, computer use…), an item or a part by OpenAI file
//! id, an unknown field — is listed in `origin.untranslated`, so a translating adapter refuses it
//! by name (unless the route drops unsupported parameters), while OpenAI still gets it.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchyard_core::GatewayError;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, Extra, FunctionCall, FunctionDefinition,
    FunctionName, ImageUrl, MessageContent, NamedToolChoice, Origin, Role, StreamOptions, Tool,
    ToolCall, ToolChoice,
};
use switchyard_wire::responses::{self as r, Content, Item, Part};

/// Fields that change nothing another provider would do differently, or that the entrance
/// itself honours (`store`, `metadata`, `previous_response_id`).
const HINTS: &[&str] = &[
    "include",
    "truncation",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
];

/// Translates `req` whose conversation is `items` (the client's input, after any
/// `previous_response_id` was expanded). The result's `origin.native` is left for the caller.
pub fn to_chat_request(
    req: &r::ResponsesRequest,
    items: &[Item],
) -> Result<ChatCompletionRequest, GatewayError> {
    let mut conversation = Conversation::default();
    if let Some(instructions) = req.instructions.as_deref().filter(|i| !i.is_empty()) {
        conversation
            .messages
            .push(ChatMessage::new(Role::System, instructions));
    }
    for (i, item) in items.iter().enumerate() {
        conversation.add(item, i)?;
    }
    conversation.flush_images();
    let mut untranslated = conversation.untranslated;
    let (tools, tool_choice) = tools(req, &mut untranslated);
    let mut extra = Extra::new();
    if let Some(format) = response_format(req.text.as_ref(), &mut untranslated) {
        extra.insert("response_format".into(), format);
    }
    let effort = req.reasoning.as_ref().and_then(|r| r.get("effort"));
    if let Some(effort) = effort.filter(|e| !e.is_null()) {
        extra.insert("reasoning_effort".into(), effort.clone());
    }
    for (key, value) in &req.extra {
        let asks_nothing = value.is_null() || value == &Value::Bool(false);
        if !HINTS.contains(&key.as_str()) && !asks_nothing {
            untranslated.push(key.clone());
        }
    }
    let stream = req.stream.unwrap_or(false);
    Ok(ChatCompletionRequest {
        model: req.model.clone(),
        messages: conversation.messages,
        stream: req.stream,
        // The egress needs the usage for `response.completed`, whatever the client asked.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        max_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        tools,
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls,
        user: req.user.clone(),
        extra,
        origin: Origin {
            untranslated,
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The chat messages of a conversation, built item by item.
#[derive(Default)]
struct Conversation {
    messages: Vec<ChatMessage>,
    /// Images of function outputs, for the user message after the run of tool messages.
    pending_images: Vec<ContentPart>,
    /// Call ids of the function calls so far, which function outputs must answer.
    calls: HashSet<String>,
    /// An item that refers to something stored at OpenAI: calls may be answered that this
    /// conversation does not show.
    has_references: bool,
    untranslated: Vec<String>,
}

impl Conversation {
    fn add(&mut self, item: &Item, i: usize) -> Result<(), GatewayError> {
        let kind = item.kind();
        if kind != "function_call_output" {
            self.flush_images();
        }
        match kind {
            "message" => self.message(item, i),
            "function_call" => self.call(item, i),
            "function_call_output" => self.output(item, i),
            // Earlier turns' reasoning: encrypted for OpenAI, meaningless elsewhere.
            "reasoning" => Ok(()),
            "" => Err(bad_item(i, "an item needs a \"type\" (or a \"role\")")),
            other => {
                self.has_references |= other == "item_reference";
                self.untranslated.push(format!("input[{i}] ({other})"));
                Ok(())
            }
        }
    }

    fn message(&mut self, item: &Item, i: usize) -> Result<(), GatewayError> {
        let role = match item.role.as_deref() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("system" | "developer") => Role::System,
            _ => {
                return Err(bad_item(
                    i,
                    "\"role\" must be user, assistant, system or developer",
                ));
            }
        };
        let Some(content) = &item.content else {
            return Err(bad_item(i, "a message needs \"content\""));
        };
        let content = match (role, content) {
            (_, Content::Text(text)) => MessageContent::Text(text.clone()),
            (Role::User, Content::Parts(parts)) => self.user_parts(parts, i),
            (_, Content::Parts(parts)) => MessageContent::Text(self.text_of(parts, i)),
            (_, Content::Other(_)) => {
                return Err(bad_item(
                    i,
                    "a message's \"content\" must be a string or a list of content parts",
                ));
            }
        };
        let mut message = ChatMessage::new(role, "");
        message.content = Some(content);
        self.messages.push(message);
        Ok(())
    }

    /// A user message's parts: text, images by URL and inline files.
    fn user_parts(&mut self, parts: &[Part], i: usize) -> MessageContent {
        let mut out = Vec::with_capacity(parts.len());
        for (j, part) in parts.iter().enumerate() {
            match canonical_part(part) {
                Some(p) => out.push(p),
                None => self
                    .untranslated
                    .push(format!("input[{i}].content[{j}] ({})", part_name(part))),
            }
        }
        match out.as_slice() {
            [only] if only.kind == "text" => {
                MessageContent::Text(only.text.clone().unwrap_or_default())
            }
            _ => MessageContent::Parts(out),
        }
    }

    /// The text of an assistant or system message's parts; other parts are untranslated.
    fn text_of(&mut self, parts: &[Part], i: usize) -> String {
        let mut text = String::new();
        for (j, part) in parts.iter().enumerate() {
            match part_text(part) {
                Some(t) => text.push_str(t),
                None => self
                    .untranslated
                    .push(format!("input[{i}].content[{j}] ({})", part_name(part))),
            }
        }
        text
    }

    /// A function call joins the assistant message right before it, as OpenAI's chat API wants
    /// a turn's calls on one message.
    fn call(&mut self, item: &Item, i: usize) -> Result<(), GatewayError> {
        let (Some(call_id), Some(name)) = (&item.call_id, &item.name) else {
            return Err(bad_item(
                i,
                "a function_call needs \"call_id\" and \"name\"",
            ));
        };
        self.calls.insert(call_id.clone());
        let call = ToolCall {
            id: call_id.clone(),
            kind: "function".into(),
            function: FunctionCall {
                name: name.clone(),
                arguments: match &item.arguments {
                    None => "{}".into(),
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                },
            },
        };
        match self.messages.last_mut() {
            Some(last) if last.role == Role::Assistant => {
                if last.content.as_ref().is_some_and(|c| c.text().is_empty()) {
                    last.content = None;
                }
                last.tool_calls.get_or_insert_with(Vec::new).push(call);
            }
            _ => {
                let mut message = ChatMessage::new(Role::Assistant, "");
                message.content = None;
                message.tool_calls = Some(vec![call]);
                self.messages.push(message);
            }
        }
        Ok(())
    }

    fn output(&mut self, item: &Item, i: usize) -> Result<(), GatewayError> {
        let Some(call_id) = &item.call_id else {
            return Err(bad_item(i, "a function_call_output needs \"call_id\""));
        };
        if !self.calls.contains(call_id) && !self.has_references {
            return Err(bad_item(
                i,
                &format!("no function_call with call_id \"{call_id}\" comes before this output"),
            ));
        }
        let text = match &item.output {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = Vec::new();
                for (j, part) in parts.iter().enumerate() {
                    match (part_text(part), canonical_part(part)) {
                        (Some(t), _) => text.push(t.to_owned()),
                        (None, Some(p)) => self.pending_images.push(p),
                        (None, None) => self
                            .untranslated
                            .push(format!("input[{i}].output[{j}] ({})", part_name(part))),
                    }
                }
                text.join("\n")
            }
            Some(Content::Other(_)) => {
                self.untranslated.push(format!("input[{i}].output"));
                String::new()
            }
        };
        let mut message = ChatMessage::new(Role::Tool, text);
        message.tool_call_id = Some(call_id.clone());
        self.messages.push(message);
        Ok(())
    }

    fn flush_images(&mut self) {
        if self.pending_images.is_empty() {
            return;
        }
        let mut message = ChatMessage::new(Role::User, "");
        message.content = Some(MessageContent::Parts(std::mem::take(
            &mut self.pending_images,
        )));
        self.messages.push(message);
    }
}

fn bad_item(i: usize, what: &str) -> GatewayError {
    GatewayError::invalid_request("invalid_input_item", format!("input[{i}]: {what}"))
        .with_param(&format!("input[{i}]"))
}

/// The text a part holds, if it is a text part.
fn part_text(part: &Part) -> Option<&str> {
    match part.kind.as_str() {
        "input_text" | "output_text" | "text" => Some(part.text.as_deref().unwrap_or_default()),
        "refusal" => Some(part.refusal.as_deref().unwrap_or_default()),
        _ => None,
    }
}

/// A part as a chat content part, where one exists (not for OpenAI file ids or file URLs).
fn canonical_part(part: &Part) -> Option<ContentPart> {
    if let Some(text) = part_text(part) {
        return Some(ContentPart::text(text));
    }
    match part.kind.as_str() {
        "input_image" => Some(ContentPart {
            kind: "image_url".into(),
            text: None,
            image_url: Some(ImageUrl {
                url: part.image_url.clone()?,
                detail: part.detail.clone().filter(|d| d != "auto"),
            }),
            extra: Extra::new(),
        }),
        "input_file" => {
            let mut extra = Extra::new();
            extra.insert(
                "file".into(),
                json!({
                    "filename": part.filename.as_deref().unwrap_or("document.pdf"),
                    "file_data": part.file_data.as_ref()?,
                }),
            );
            Some(ContentPart {
                kind: "file".into(),
                text: None,
                image_url: None,
                extra,
            })
        }
        _ => None,
    }
}

/// How an untranslatable part is named in an error.
fn part_name(part: &Part) -> String {
    if part.file_id.is_some() {
        format!("{} by file_id", part.kind)
    } else if part.file_url.is_some() {
        format!("{} by file_url", part.kind)
    } else {
        part.kind.clone()
    }
}

/// Function tools as chat tools, and `tool_choice`. Built-in tools go to `untranslated`.
fn tools(
    req: &r::ResponsesRequest,
    untranslated: &mut Vec<String>,
) -> (Option<Vec<Tool>>, Option<ToolChoice>) {
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match (&t.kind[..], &t.name) {
                ("function", Some(name)) => Some(Tool {
                    kind: "function".into(),
                    function: FunctionDefinition {
                        name: name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.clone(),
                        strict: t.strict,
                    },
                }),
                _ => {
                    untranslated.push(format!("tools[{i}] ({})", t.kind));
                    None
                }
            })
            .collect::<Vec<_>>()
    });
    let choice = match &req.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(mode)) => Some(ToolChoice::Mode(mode.clone())),
        Some(choice) => match (
            choice.get("type").and_then(Value::as_str),
            choice.get("name"),
        ) {
            (Some("function"), Some(Value::String(name))) => {
                Some(ToolChoice::Named(NamedToolChoice {
                    kind: "function".into(),
                    function: FunctionName { name: name.clone() },
                }))
            }
            (kind, _) => {
                untranslated.push(format!("tool_choice ({})", kind.unwrap_or("object")));
                None
            }
        },
    };
    (tools, choice)
}

/// `text.format` as chat's `response_format`; `text` (the default) asks for nothing.
fn response_format(text: Option<&Value>, untranslated: &mut Vec<String>) -> Option<Value> {
    let format = text?.get("format")?;
    match format.get("type").and_then(Value::as_str)? {
        "text" => None,
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let mut schema = serde_json::Map::new();
            for key in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(key) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        other => {
            untranslated.push(format!("text.format ({other})"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
