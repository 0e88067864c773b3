//! Pure translation between the canonical (OpenAI) chat structs and Bedrock Converse, for
//! requests and whole responses. Streaming lives in [`super::stream`].
//!
//! The mapping (see `reference/wire-formats.md`): system and developer messages become `system`
//! text blocks; user content parts become text and image blocks (images only as base64 data:
//! URLs: Converse takes image bytes, not links); assistant `tool_calls` become `toolUse` blocks
//! with parsed input; `tool` messages become `toolResult` blocks in a user turn. Converse wants
//! strictly alternating roles, so consecutive messages of one role merge into one message, which
//! also puts all results of a turn together. A `cache_control` marker on a text part becomes a
//! `cachePoint` block after it. `max_tokens` gets the deployment's default; `temperature` is
//! clamped to Converse's 0–1; `stop` becomes `stopSequences`; `tool_choice` `required` becomes
//! `any`. Converse-native members a client sends on purpose (`additionalModelRequestFields`,
//! `guardrailConfig`, …) pass through. Parameters Converse cannot honour are refused before
//! translation, by the adapter.

use serde_json::Value;
use switchyard_wire::bedrock as b;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, Extra,
    FunctionCall, MessageContent, ResponseMessage, Role, ToolCall, ToolChoice, Usage,
};

/// Converse request members a client may put in an OpenAI request to reach Bedrock.
const PASS_THROUGH: &[&str] = &[
    "guardrailConfig",
    "additionalModelResponseFieldPaths",
    "performanceConfig",
    "requestMetadata",
    "promptVariables",
];

/// Translates a chat request; the error is a message for the client.
pub fn to_converse_request(
    req: &ChatCompletionRequest,
    default_max_tokens: u32,
) -> Result<b::ConverseRequest, String> {
    let mut system = Vec::new();
    let mut messages: Vec<b::Message> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => system.extend(text_blocks(m.content.as_ref())),
            Role::User => push_blocks(&mut messages, b::Role::User, user_blocks(m, i)?),
            Role::Assistant => {
                push_blocks(&mut messages, b::Role::Assistant, assistant_blocks(m, i)?)
            }
            Role::Tool | Role::Function => {
                push_blocks(&mut messages, b::Role::User, vec![tool_result(m, i)?])
            }
        }
    }
    if messages.is_empty() {
        return Err("messages: at least one user or assistant message is required".into());
    }
    let tool_config = tool_config(req, &messages)?;
    let mut extra = Extra::new();
    for key in PASS_THROUGH {
        if let Some(v) = req.extra.get(*key) {
            extra.insert((*key).to_owned(), v.clone());
        }
    }
    Ok(b::ConverseRequest {
        messages,
        system,
        inference_config: Some(b::InferenceConfig {
            max_tokens: Some(req.output_token_limit().unwrap_or(default_max_tokens)),
            temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
            top_p: req.top_p,
            stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        }),
        tool_config,
        additional_model_request_fields: req
            .extra
            .get("additionalModelRequestFields")
            .filter(|v| !v.is_null())
            .cloned(),
        extra,
    })
}

/// Appends blocks to the last message when it has the same role, else starts a new message.
fn push_blocks(messages: &mut Vec<b::Message>, role: b::Role, blocks: Vec<b::ContentBlock>) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => messages.push(b::Message {
            role,
            content: blocks,
        }),
    }
}

/// The text parts of a content as text blocks, a `cache_control` marker as a cache point.
fn text_blocks(content: Option<&MessageContent>) -> Vec<b::ContentBlock> {
    match content {
        None => vec![],
        Some(MessageContent::Text(t)) => vec![b::ContentBlock::text(t.clone())],
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::new();
            for p in parts {
                if let Some(t) = &p.text {
                    blocks.push(b::ContentBlock::text(t.clone()));
                    if p.extra.contains_key("cache_control") {
                        blocks.push(b::ContentBlock::cache_point());
                    }
                }
            }
            blocks
        }
    }
}

fn user_blocks(m: &ChatMessage, i: usize) -> Result<Vec<b::ContentBlock>, String> {
    match &m.content {
        None => Err(format!(
            "messages[{i}].content: a user message needs content"
        )),
        Some(MessageContent::Text(t)) => Ok(vec![b::ContentBlock::text(t.clone())]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                blocks.push(part_block(p).map_err(|e| format!("messages[{i}].content[{j}]: {e}"))?);
                if p.extra.contains_key("cache_control") {
                    blocks.push(b::ContentBlock::cache_point());
                }
            }
            Ok(blocks)
        }
    }
}

fn part_block(part: &ContentPart) -> Result<b::ContentBlock, String> {
    match part.kind.as_str() {
        "text" => Ok(b::ContentBlock::text(part.text.clone().unwrap_or_default())),
        "image_url" => {
            let url = &part
                .image_url
                .as_ref()
                .ok_or("an image_url part needs image_url.url")?
                .url;
            Ok(b::ContentBlock {
                image: Some(image_block(url)?),
                ..Default::default()
            })
        }
        other => Err(format!(
            "content part type \"{other}\" is not supported by Bedrock models"
        )),
    }
}

/// `data:image/png;base64,XXXX` → an image block. Converse takes the bytes themselves, so a
/// link is refused rather than fetched by the gateway.
fn image_block(url: &str) -> Result<b::ImageBlock, String> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(
            "Bedrock accepts images only inline: send the image as a base64 data: URL \
             (data:image/png;base64,…) instead of a link"
                .into(),
        );
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or("a data: URL needs a comma before its data")?;
    let media_type = meta
        .strip_suffix(";base64")
        .ok_or("only base64 data: URLs are supported for images")?;
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(format!(
                "image type \"{other}\" is not supported by Bedrock: use png, jpeg, gif or webp"
            ));
        }
    };
    Ok(b::ImageBlock {
        format: format.into(),
        source: b::ImageSource {
            bytes: data.to_owned(),
        },
    })
}

fn assistant_blocks(m: &ChatMessage, i: usize) -> Result<Vec<b::ContentBlock>, String> {
    // Converse rejects blank text blocks; an assistant turn that only calls tools has "" or null.
    let mut blocks: Vec<b::ContentBlock> = text_blocks(m.content.as_ref())
        .into_iter()
        .filter(|blk| blk.text.as_deref().is_none_or(|t| !t.trim().is_empty()))
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
        blocks.push(b::ContentBlock {
            tool_use: Some(b::ToolUseBlock {
                tool_use_id: call.id.clone(),
                name: call.function.name.clone(),
                input,
            }),
            ..Default::default()
        });
    }
    if blocks.is_empty() {
        return Err(format!(
            "messages[{i}]: an assistant message needs content or tool_calls"
        ));
    }
    Ok(blocks)
}

fn tool_result(m: &ChatMessage, i: usize) -> Result<b::ContentBlock, String> {
    let tool_use_id = m
        .tool_call_id
        .clone()
        .or_else(|| m.name.clone())
        .ok_or_else(|| format!("messages[{i}]: a tool message needs tool_call_id"))?;
    let text = m
        .content
        .as_ref()
        .map(MessageContent::text)
        .unwrap_or_default();
    Ok(b::ContentBlock {
        tool_result: Some(b::ToolResultBlock {
            tool_use_id,
            content: vec![b::ToolResultContent {
                text: Some(text),
                ..Default::default()
            }],
            status: None,
        }),
        ..Default::default()
    })
}

/// `toolConfig` from `tools` and `tool_choice`. `none` drops the tools, except when the
/// conversation already holds tool blocks: Converse then requires a `toolConfig`, so the tools
/// stay and the choice is left to the model.
fn tool_config(
    req: &ChatCompletionRequest,
    messages: &[b::Message],
) -> Result<Option<b::ToolConfig>, String> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let tool_choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(b::ToolChoice::Auto {}),
            "required" => Some(b::ToolChoice::Any {}),
            "none" => {
                let has_tool_blocks = messages
                    .iter()
                    .flat_map(|m| &m.content)
                    .any(|c| c.tool_use.is_some() || c.tool_result.is_some());
                if !has_tool_blocks {
                    return Ok(None);
                }
                None
            }
            other => return Err(format!("tool_choice: unknown value \"{other}\"")),
        },
        Some(ToolChoice::Named(named)) => Some(b::ToolChoice::Tool {
            name: named.function.name.clone(),
        }),
    };
    let tools =
        tools
            .iter()
            .map(|t| b::Tool {
                tool_spec: b::ToolSpec {
                    name: t.function.name.clone(),
                    description: t.function.description.clone(),
                    input_schema: b::InputSchema {
                        json: t.function.parameters.clone().unwrap_or_else(
                            || serde_json::json!({"type": "object", "properties": {}}),
                        ),
                    },
                },
            })
            .collect();
    Ok(Some(b::ToolConfig { tools, tool_choice }))
}

/// The OpenAI finish_reason for a Converse stopReason.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, malformed_* and reasons added later
    }
}

/// OpenAI usage from Converse usage: `inputTokens` leaves out the tokens read from and written
/// to the prompt cache, OpenAI's `prompt_tokens` counts them.
pub fn usage(u: &b::TokenUsage) -> Usage {
    let cache_read = u.cache_read_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens + cache_read + u.cache_write_input_tokens.unwrap_or(0);
    Usage::new(prompt, u.output_tokens, u.cache_read_input_tokens)
}

/// Translates a whole Converse response; Converse names neither the response nor the model.
pub fn from_converse_response(
    resp: b::ConverseResponse,
    id: String,
    model: &str,
    created: u64,
) -> ChatCompletionResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in resp.output.message.map(|m| m.content).unwrap_or_default() {
        if let Some(t) = block.text {
            text.push_str(&t);
        }
        if let Some(r) = block.reasoning_content.and_then(|r| r.reasoning_text) {
            reasoning.push_str(&r.text);
        }
        if let Some(call) = block.tool_use {
            tool_calls.push(ToolCall {
                id: call.tool_use_id,
                kind: "function".into(),
                function: FunctionCall {
                    name: call.name,
                    arguments: call.input.to_string(),
                },
            });
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
        id,
        object: "chat.completion".into(),
        created,
        model: model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Role::Assistant,
                content,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                extra: message_extra,
            },
            finish_reason: Some(finish_reason(&resp.stop_reason).into()),
            extra: Extra::new(),
        }],
        usage: resp.usage.as_ref().map(usage),
        extra: Extra::new(),
    }
}
