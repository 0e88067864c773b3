//! A Messages API request into the canonical chat request, for every deployment that does not
//! speak the Messages API itself (an Anthropic deployment gets the client's own body).
//!
//! `system` becomes one system message; `tool_result` blocks become `tool` messages placed
//! before the rest of their user turn (OpenAI wants results right after the calls); images
//! become `image_url` parts and PDF documents `file` parts; `tool_use` blocks become tool calls;
//! `stop_sequences`, `metadata.user_id`, `tool_choice` and `disable_parallel_tool_use` map to
//! their OpenAI names; `thinking` becomes `reasoning_effort` (by its budget), which OpenAI's
//! reasoning models and Gemini's thinking budget understand; `top_k` travels in the canonical
//! extras for the adapters that take it. Thinking blocks of earlier turns are left out: their
//! signatures mean something only to Anthropic, which itself ignores earlier turns' thinking.
//! `cache_control` markers are hints that other providers' automatic caching does not need.
//! What has no canonical form at all (a server tool, a document by URL, an unknown field) is
//! listed in `origin.untranslated`, so a translating adapter refuses it by name.

use serde_json::{Value, json};
use switchyard_wire::anthropic as a;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatMessage, ContentPart, Extra, FunctionCall, FunctionDefinition,
    FunctionName, ImageUrl, MessageContent, NamedToolChoice, Role, Stop, StreamOptions, Tool,
    ToolCall, ToolChoice,
};

/// Top-level fields of the Messages API that the canonical request carries in its extras, for
/// the adapters that know them (`top_k`: Gemini, vLLM and most open-model servers).
const CARRIED: &[&str] = &["top_k"];

/// Fields that change nothing another provider would do differently.
const HINTS: &[&str] = &["anthropic_version"];

/// Translates `req`; the result's `origin` is left for the caller to fill.
pub fn to_chat_request(req: &a::MessagesRequest) -> ChatCompletionRequest {
    let mut untranslated = Vec::new();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        messages.push(ChatMessage::new(Role::System, system_text(system)));
    }
    for (i, m) in req.messages.iter().enumerate() {
        match (&m.role, &m.content) {
            (a::Role::User, a::MessageContent::Text(t)) => {
                messages.push(ChatMessage::new(Role::User, t.clone()))
            }
            (a::Role::Assistant, a::MessageContent::Text(t)) => {
                messages.push(ChatMessage::new(Role::Assistant, t.clone()))
            }
            (a::Role::User, a::MessageContent::Blocks(blocks)) => {
                user_turn(blocks, i, &mut messages, &mut untranslated)
            }
            (a::Role::Assistant, a::MessageContent::Blocks(blocks)) => {
                messages.push(assistant_turn(blocks));
            }
        }
    }
    let mut extra = Extra::new();
    for (key, value) in &req.extra {
        if key == "thinking" {
            if let Some(effort) = reasoning_effort(value) {
                extra.insert("reasoning_effort".into(), effort.into());
            }
        } else if CARRIED.contains(&key.as_str()) {
            extra.insert(key.clone(), value.clone());
        } else if !HINTS.contains(&key.as_str()) && !value.is_null() {
            untranslated.push(key.clone());
        }
    }
    if let Some(k) = req.top_k {
        extra.insert("top_k".into(), k.into());
    }
    let (tools, tool_choice, parallel) = tools(req, &mut untranslated);
    let stream = req.stream.unwrap_or(false);
    ChatCompletionRequest {
        model: req.model.clone(),
        messages,
        stream: req.stream,
        // The egress needs the usage for `message_delta`, whatever the client asked.
        stream_options: stream.then(|| StreamOptions {
            include_usage: Some(true),
            extra: Extra::new(),
        }),
        max_tokens: Some(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.clone().map(Stop::Many),
        tools,
        tool_choice,
        parallel_tool_calls: parallel,
        user: req
            .metadata
            .as_ref()
            .and_then(|m| m.get("user_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        extra,
        origin: switchyard_wire::openai::Origin {
            untranslated,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// `thinking: {type: enabled, budget_tokens}` as an OpenAI reasoning effort: under 4k tokens of
/// budget is low, under 16k medium, more is high. Disabled thinking asks for nothing.
fn reasoning_effort(thinking: &Value) -> Option<&'static str> {
    let enabled = thinking.get("type").and_then(Value::as_str) != Some("disabled");
    let budget = thinking.get("budget_tokens").and_then(Value::as_u64);
    match (enabled, budget) {
        (false, _) => None,
        (true, Some(b)) if b < 4096 => Some("low"),
        (true, Some(b)) if b < 16384 => Some("medium"),
        (true, _) => Some("high"),
    }
}

fn system_text(system: &a::SystemPrompt) -> String {
    match system {
        a::SystemPrompt::Text(t) => t.clone(),
        a::SystemPrompt::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                a::ContentBlock::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

/// A user turn: its tool results first, as `tool` messages, then the rest as one user message.
fn user_turn(
    blocks: &[a::ContentBlock],
    index: usize,
    messages: &mut Vec<ChatMessage>,
    untranslated: &mut Vec<String>,
) {
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block {
            a::ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let (text, images) = tool_result_content(content.as_ref());
                let text = if *is_error == Some(true) {
                    format!("[tool error] {text}")
                } else {
                    text
                };
                let mut message = ChatMessage::new(Role::Tool, text);
                message.tool_call_id = Some(tool_use_id.clone());
                messages.push(message);
                parts.extend(images);
            }
            other => match content_part(other) {
                Some(part) => parts.push(part),
                None => {
                    if let Some(what) = untranslatable(other) {
                        untranslated.push(format!("messages[{index}].content[{j}] ({what})"));
                    }
                }
            },
        }
    }
    if !parts.is_empty() {
        let content = match parts.as_slice() {
            [only] if only.kind == "text" => {
                MessageContent::Text(only.text.clone().unwrap_or_default())
            }
            _ => MessageContent::Parts(parts),
        };
        let mut message = ChatMessage::new(Role::User, "");
        message.content = Some(content);
        messages.push(message);
    }
}

/// The text of a tool result, and its images (which an OpenAI tool message cannot hold: they
/// follow in the user message of the same turn).
fn tool_result_content(content: Option<&a::ToolResultContent>) -> (String, Vec<ContentPart>) {
    match content {
        None => (String::new(), Vec::new()),
        Some(a::ToolResultContent::Text(t)) => (t.clone(), Vec::new()),
        Some(a::ToolResultContent::Blocks(blocks)) => {
            let mut text = Vec::new();
            let mut images = Vec::new();
            for b in blocks {
                match b {
                    a::ContentBlock::Text { text: t, .. } => text.push(t.as_str()),
                    other => images.extend(content_part(other)),
                }
            }
            (text.join("\n"), images)
        }
    }
}

/// A content block as an OpenAI content part, where one exists.
fn content_part(block: &a::ContentBlock) -> Option<ContentPart> {
    match block {
        a::ContentBlock::Text { text, .. } => Some(ContentPart::text(text.clone())),
        a::ContentBlock::Image { source } => {
            let url = match source {
                a::ImageSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
                a::ImageSource::Url { url } => url.clone(),
            };
            Some(ContentPart {
                kind: "image_url".into(),
                text: None,
                image_url: Some(ImageUrl { url, detail: None }),
                extra: Extra::new(),
            })
        }
        a::ContentBlock::Document { source, title } => document_part(source, title.as_deref()),
        _ => None,
    }
}

/// A PDF sent inline becomes a `file` part; a plain-text document becomes text.
fn document_part(source: &Value, title: Option<&str>) -> Option<ContentPart> {
    match source.get("type").and_then(Value::as_str)? {
        "base64" => {
            let media_type = source.get("media_type").and_then(Value::as_str)?;
            let data = source.get("data").and_then(Value::as_str)?;
            let mut extra = Extra::new();
            extra.insert(
                "file".into(),
                json!({
                    "filename": title.unwrap_or("document.pdf"),
                    "file_data": format!("data:{media_type};base64,{data}"),
                }),
            );
            Some(ContentPart {
                kind: "file".into(),
                text: None,
                image_url: None,
                extra,
            })
        }
        "text" => {
            let data = source.get("data").and_then(Value::as_str)?;
            Some(ContentPart::text(match title {
                Some(t) => format!("{t}\n\n{data}"),
                None => data.to_owned(),
            }))
        }
        _ => None,
    }
}

/// Why a user block has no canonical form, or `None` when leaving it out loses nothing.
fn untranslatable(block: &a::ContentBlock) -> Option<&'static str> {
    match block {
        a::ContentBlock::Document { .. } => Some("a document by URL or by file id"),
        a::ContentBlock::Thinking { .. } | a::ContentBlock::RedactedThinking { .. } => None,
        _ => Some("a content block other providers do not take"),
    }
}

fn assistant_turn(blocks: &[a::ContentBlock]) -> ChatMessage {
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            a::ContentBlock::Text { text: t, .. } => text.push_str(t),
            a::ContentBlock::ToolUse { id, name, input } => calls.push(ToolCall {
                id: id.clone(),
                kind: "function".into(),
                function: FunctionCall {
                    name: name.clone(),
                    arguments: input.to_string(),
                },
            }),
            // Thinking of earlier turns, and server-tool blocks Anthropic ran: not the
            // business of another provider.
            _ => {}
        }
    }
    let mut message = ChatMessage::new(Role::Assistant, text);
    if !calls.is_empty() {
        if message
            .content
            .as_ref()
            .is_some_and(|c| c.text().is_empty())
        {
            message.content = None;
        }
        message.tool_calls = Some(calls);
    }
    message
}

/// Client tools as functions, `tool_choice`, and `parallel_tool_calls: false` for
/// `disable_parallel_tool_use`. Server tools go to `untranslated`.
fn tools(
    req: &a::MessagesRequest,
    untranslated: &mut Vec<String>,
) -> (Option<Vec<Tool>>, Option<ToolChoice>, Option<bool>) {
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                if !t.is_client_tool() {
                    let kind = t.kind.as_deref().unwrap_or("server tool");
                    untranslated.push(format!("tools[{i}] ({kind})"));
                    return None;
                }
                Some(Tool {
                    kind: "function".into(),
                    function: FunctionDefinition {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.input_schema.clone(),
                        strict: None,
                    },
                })
            })
            .collect::<Vec<_>>()
    });
    let Some(choice) = &req.tool_choice else {
        return (tools, None, None);
    };
    let mapped = match choice.kind.as_str() {
        "any" => Some(ToolChoice::Mode("required".into())),
        "none" => Some(ToolChoice::Mode("none".into())),
        "tool" => choice.name.as_ref().map(|name| {
            ToolChoice::Named(NamedToolChoice {
                kind: "function".into(),
                function: FunctionName { name: name.clone() },
            })
        }),
        _ => Some(ToolChoice::Mode("auto".into())),
    };
    let parallel = choice.disable_parallel_tool_use.map(|d| !d);
    (tools, mapped, parallel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(body: Value) -> ChatCompletionRequest {
        to_chat_request(&serde_json::from_value(body).unwrap())
    }

    #[test]
    fn tool_results_come_before_the_rest_of_their_turn() {
        let req = translate(json!({"model": "m", "max_tokens": 10, "system": [
            {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "and also"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": true,
                     "content": [{"type": "text", "text": "no data"}]}]}]}));
        let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::User
            ]
        );
        let call = &req.messages[2].tool_calls.as_ref().unwrap()[0];
        assert_eq!(
            (call.id.as_str(), call.function.arguments.as_str()),
            ("toolu_1", r#"{"city":"Paris"}"#)
        );
        assert!(
            req.messages[2].content.is_none(),
            "thinking is not carried to other providers"
        );
        assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
        assert_eq!(
            req.messages[3].content.as_ref().unwrap().text(),
            "[tool error] no data"
        );
        assert!(req.origin.untranslated.is_empty());
    }

    #[test]
    fn what_has_no_canonical_form_is_named_not_dropped() {
        let req = translate(json!({"model": "m", "max_tokens": 10,
            "messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "mcp_servers": [{"type": "url", "url": "https://mcp"}],
            "thinking": {"type": "enabled", "budget_tokens": 8000},
            "top_k": 3}));
        assert_eq!(
            req.origin.untranslated.len(),
            3,
            "{:?}",
            req.origin.untranslated
        );
        assert!(
            req.origin
                .untranslated
                .iter()
                .any(|u| u.contains("web_search_20250305"))
        );
        assert!(req.origin.untranslated.iter().any(|u| u == "mcp_servers"));
        assert_eq!(req.extra["reasoning_effort"], "medium");
        assert_eq!(req.extra["top_k"], 3);
        assert!(!req.extra.contains_key("thinking"));
    }

    #[test]
    fn a_pdf_becomes_a_file_part_and_a_stream_asks_for_usage() {
        let req = translate(json!({"model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": [
                {"type": "document", "title": "r.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                {"type": "text", "text": "Summarize"}]}]}));
        let Some(MessageContent::Parts(parts)) = &req.messages[0].content else {
            panic!("expected parts");
        };
        assert_eq!(parts[0].kind, "file");
        assert_eq!(
            parts[0].extra["file"]["file_data"],
            "data:application/pdf;base64,JVBE"
        );
        assert!(req.wants_stream_usage());
    }
}
