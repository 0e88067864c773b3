//! Pure translation between the canonical (OpenAI) chat structs and Anthropic Messages, for
//! requests and whole responses. Streaming lives in [`super::stream`].
//!
//! The mapping (see `reference/wire-formats.md`): system and developer messages become the
//! top-level `system`; image parts become image blocks (data URLs as base64 sources, other URLs
//! as URL sources); assistant `tool_calls` become `tool_use` blocks with parsed arguments; `tool`
//! messages become `tool_result` blocks, and consecutive messages of the same role merge into
//! one (Anthropic wants all results of a turn in one user message); `max_tokens` gets a default;
//! `temperature` is clamped to Anthropic's 0–1; `stop` becomes `stop_sequences`; `tool_choice`
//! `required` becomes `any`, and `parallel_tool_calls: false` becomes
//! `disable_parallel_tool_use`. Fields Anthropic does not accept are left out (the adapter has
//! already refused those a client would miss, see `params`), except the Anthropic-only ones a
//! client may send on purpose (`top_k`, `thinking`, `service_tier`).

use serde_json::Value;
use switchyard_wire::anthropic as a;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, Extra,
    FunctionCall, MessageContent, ResponseMessage, Role, Tool, ToolCall, ToolChoice, Usage,
};

/// Anthropic-only parameters a client may put in an OpenAI request to reach Claude.
const PASS_THROUGH: &[&str] = &[
    "top_k",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
];

/// Translates a chat request; the error is a message for the client.
pub fn to_messages_request(
    req: &ChatCompletionRequest,
    default_max_tokens: u32,
) -> Result<a::MessagesRequest, String> {
    let (system, messages) = conversation(req)?;
    let tools = req
        .tools
        .as_ref()
        .map(|tools| tools.iter().map(tool).collect::<Vec<_>>());
    let tool_choice = tool_choice(req, tools.is_some())?;
    let mut extra = Extra::new();
    for key in PASS_THROUGH {
        if let Some(v) = req.extra.get(*key) {
            extra.insert((*key).to_owned(), v.clone());
        }
    }
    Ok(a::MessagesRequest {
        model: req.model.clone(),
        messages,
        system,
        max_tokens: req.output_token_limit().unwrap_or(default_max_tokens),
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        stream: req.stream.filter(|s| *s),
        tools,
        tool_choice,
        metadata: req
            .user
            .as_ref()
            .map(|u| serde_json::json!({ "user_id": u })),
        extra,
    })
}

/// The system prompt (system and developer messages, wherever they are) and the messages, with
/// consecutive turns of one role joined and tool results as user turns.
fn conversation(
    req: &ChatCompletionRequest,
) -> Result<(Option<a::SystemPrompt>, Vec<a::Message>), String> {
    let mut system: Vec<a::ContentBlock> = Vec::new();
    let mut messages: Vec<a::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => system.extend(text_blocks(m)),
            Role::User => push_blocks(&mut messages, a::Role::User, user_blocks(m, i)?),
            Role::Assistant => {
                push_blocks(&mut messages, a::Role::Assistant, assistant_blocks(m, i)?)
            }
            Role::Tool | Role::Function => {
                let tool_use_id = m
                    .tool_call_id
                    .clone()
                    .or_else(|| m.name.clone())
                    .ok_or_else(|| format!("messages[{i}]: a tool message needs tool_call_id"))?;
                let content = m
                    .content
                    .as_ref()
                    .map(|c| a::ToolResultContent::Text(c.text()));
                let block = a::ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error: None,
                };
                push_blocks(&mut messages, a::Role::User, vec![block]);
            }
        }
    }
    if messages.is_empty() {
        return Err("messages: at least one user or assistant message is required".into());
    }
    let system = match system.as_slice() {
        [] => None,
        [
            a::ContentBlock::Text {
                text,
                cache_control: None,
            },
        ] => Some(a::SystemPrompt::Text(text.clone())),
        _ => Some(a::SystemPrompt::Blocks(system)),
    };
    Ok((system, messages))
}

/// A function tool as Anthropic declares it (a tool without parameters takes an empty object).
fn tool(t: &Tool) -> a::Tool {
    a::Tool {
        name: t.function.name.clone(),
        kind: None,
        description: t.function.description.clone(),
        input_schema: Some(
            t.function
                .parameters
                .clone()
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        ),
        extra: Extra::new(),
    }
}

/// `tool_choice` in Anthropic's terms (`required` is `any`), with `parallel_tool_calls: false`
/// as `disable_parallel_tool_use`.
fn tool_choice(
    req: &ChatCompletionRequest,
    has_tools: bool,
) -> Result<Option<a::ToolChoice>, String> {
    let choice = |kind: &str, name: Option<String>| a::ToolChoice {
        kind: kind.into(),
        name,
        disable_parallel_tool_use: None,
    };
    let mut tool_choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => Some(choice(
            match mode.as_str() {
                "auto" => "auto",
                "none" => "none",
                "required" => "any",
                other => return Err(format!("tool_choice: unknown value \"{other}\"")),
            },
            None,
        )),
        Some(ToolChoice::Named(named)) => Some(choice("tool", Some(named.function.name.clone()))),
    };
    if req.parallel_tool_calls == Some(false) && has_tools {
        let choice = tool_choice.get_or_insert_with(|| choice("auto", None));
        if choice.kind != "none" {
            choice.disable_parallel_tool_use = Some(true);
        }
    }
    Ok(tool_choice)
}

/// Appends blocks to the last message when it has the same role, else starts a new message.
fn push_blocks(messages: &mut Vec<a::Message>, role: a::Role, blocks: Vec<a::ContentBlock>) {
    if let Some(last) = messages.last_mut()
        && last.role == role
    {
        if let a::MessageContent::Text(text) = &last.content {
            last.content = a::MessageContent::Blocks(vec![text_block(text.clone(), None)]);
        }
        if let a::MessageContent::Blocks(existing) = &mut last.content {
            existing.extend(blocks);
            return;
        }
    }
    let content = match blocks.as_slice() {
        [
            a::ContentBlock::Text {
                text,
                cache_control: None,
            },
        ] => a::MessageContent::Text(text.clone()),
        _ => a::MessageContent::Blocks(blocks),
    };
    messages.push(a::Message { role, content });
}

fn text_block(text: String, cache_control: Option<Value>) -> a::ContentBlock {
    a::ContentBlock::Text {
        text,
        cache_control,
    }
}

/// The text parts of a message as text blocks, keeping any `cache_control` marker.
fn text_blocks(m: &ChatMessage) -> Vec<a::ContentBlock> {
    match &m.content {
        None => vec![],
        Some(MessageContent::Text(t)) => vec![text_block(t.clone(), None)],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| {
                p.text
                    .as_ref()
                    .map(|t| text_block(t.clone(), p.extra.get("cache_control").cloned()))
            })
            .collect(),
    }
}

fn user_blocks(m: &ChatMessage, i: usize) -> Result<Vec<a::ContentBlock>, String> {
    match &m.content {
        None => Err(format!(
            "messages[{i}].content: a user message needs content"
        )),
        Some(MessageContent::Text(t)) => Ok(vec![text_block(t.clone(), None)]),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| part_block(p).map_err(|e| format!("messages[{i}].content[{j}]: {e}")))
            .collect(),
    }
}

fn part_block(part: &ContentPart) -> Result<a::ContentBlock, String> {
    match part.kind.as_str() {
        "text" => Ok(text_block(
            part.text.clone().unwrap_or_default(),
            part.extra.get("cache_control").cloned(),
        )),
        "image_url" => {
            let url = &part
                .image_url
                .as_ref()
                .ok_or("an image_url part needs image_url.url")?
                .url;
            Ok(a::ContentBlock::Image {
                source: image_source(url)?,
            })
        }
        other => Err(format!(
            "content part type \"{other}\" is not supported by Anthropic models"
        )),
    }
}

/// `data:image/png;base64,XXXX` → a base64 source; `https://…` → a URL source.
fn image_source(url: &str) -> Result<a::ImageSource, String> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or("a data: URL needs a comma before its data")?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or("only base64 data: URLs are supported for images")?;
        return Ok(a::ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(a::ImageSource::Url {
            url: url.to_owned(),
        });
    }
    Err("an image URL must be https:// or a base64 data: URL".into())
}

fn assistant_blocks(m: &ChatMessage, i: usize) -> Result<Vec<a::ContentBlock>, String> {
    let mut blocks: Vec<a::ContentBlock> = text_blocks(m)
        .into_iter()
        .filter(|b| !matches!(b, a::ContentBlock::Text { text, .. } if text.is_empty()))
        .collect();
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let args = call.function.arguments.trim();
        let input = if args.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(args).map_err(|e| {
                format!("messages[{i}].tool_calls[{j}].function.arguments is not valid JSON: {e}")
            })?
        };
        blocks.push(a::ContentBlock::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input,
        });
    }
    if blocks.is_empty() {
        return Err(format!(
            "messages[{i}]: an assistant message needs content or tool_calls"
        ));
    }
    Ok(blocks)
}

/// The OpenAI finish_reason for an Anthropic stop_reason.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

/// OpenAI usage from Anthropic usage: Anthropic's `input_tokens` excludes cached tokens. The
/// counts are the upstream's word: absurd ones saturate rather than overflow.
pub fn usage(u: &a::Usage) -> Usage {
    let cache_read = u.cache_read_input_tokens.unwrap_or(0);
    let prompt = u
        .input_tokens
        .saturating_add(cache_read)
        .saturating_add(u.cache_creation_input_tokens.unwrap_or(0));
    Usage::new(prompt, u.output_tokens, Some(cache_read))
}

/// Translates a whole Messages response.
pub fn from_messages_response(msg: a::MessagesResponse, created: u64) -> ChatCompletionResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in msg.content {
        match block {
            a::ContentBlock::Text { text: t, .. } => text.push_str(&t),
            a::ContentBlock::Thinking { thinking, .. } => reasoning.push_str(&thinking),
            a::ContentBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            _ => {}
        }
    }
    let mut message_extra = Extra::new();
    if !reasoning.is_empty() {
        message_extra.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let content = if text.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(text)
    };
    ChatCompletionResponse {
        id: msg.id,
        object: "chat.completion".into(),
        created,
        model: msg.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Role::Assistant,
                content,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                extra: message_extra,
            },
            finish_reason: Some(
                finish_reason(msg.stop_reason.as_deref().unwrap_or("end_turn")).into(),
            ),
            extra: Extra::new(),
        }],
        usage: Some(usage(&msg.usage)),
        extra: Extra::new(),
    }
}
