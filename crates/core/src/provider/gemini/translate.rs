//! Pure translation between the canonical (OpenAI) chat structs and Gemini's
//! `generateContent`, for requests and whole responses; streaming lives in [`super::stream`],
//! schemas in [`super::schema`].
//!
//! Requests: system and developer messages become `systemInstruction`; user and assistant
//! messages become `user` and `model` turns, consecutive turns of one role merged into one (as
//! Gemini requires); images become `inlineData` (data URLs) or `fileData` (http(s) and gs://
//! URLs, whose type is read from the file extension); assistant `tool_calls` become
//! `functionCall` parts and `tool` messages `functionResponse` parts, named after the call
//! they answer (Gemini pairs them by name; OpenAI by id, so the id is looked up in the earlier
//! assistant messages); tools become `functionDeclarations` with their schema reduced;
//! `tool_choice` becomes `functionCallingConfig`; sampling parameters, `n`, `stop`,
//! `response_format`, `seed`, penalties and `reasoning_effort` go to `generationConfig`.
//!
//! Thought signatures: Gemini attaches an opaque `thoughtSignature` to function-call parts and
//! rejects the next turn if it does not come back on the same part. The gateway keeps no
//! state between requests (replicas share nothing for this), so the signature travels inside
//! the tool-call id handed to the client: `call_<32 hex>` alone, or followed by `_ts_` and the
//! signature's bytes in unpadded base64url. Both alphabets stay within `[A-Za-z0-9_-]`, which
//! OpenAI clients accept, and hex has no `_`, so the first `_` after `call_` always starts the
//! suffix. When the client sends the conversation back, [`signature_of`] restores the
//! signature onto the `functionCall` part. Signatures on text parts are not kept: Gemini does
//! not require them.
//!
//! Responses: text parts are joined into `content`; thought parts (sent only when the client
//! asks with `thinking_config.include_thoughts`) into the non-standard `reasoning_content`;
//! function calls become `tool_calls`. Usage counts thoughts as completion tokens.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use switchyard_wire::gemini as g;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice, ContentPart, Extra,
    FunctionCall, MessageContent, ResponseMessage, Role, ToolCall, ToolChoice, Usage,
};

use super::schema;
use crate::error::{ErrorClass, ProviderError};

/// Between the random part of a tool-call id and the thought signature it carries.
const SIGNATURE_MARK: &str = "_ts_";

// ---------------------------------------------------------------------------------------------
// Tool-call ids that carry thought signatures.
// ---------------------------------------------------------------------------------------------

/// A fresh tool-call id, carrying `signature` when Gemini gave one.
pub fn tool_call_id(signature: Option<&str>) -> String {
    let id = format!("call_{}", uuid::Uuid::new_v4().simple());
    let Some(signature) = signature else {
        return id;
    };
    match STANDARD.decode(signature) {
        Ok(bytes) => format!("{id}{SIGNATURE_MARK}{}", URL_SAFE_NO_PAD.encode(bytes)),
        Err(_) => {
            // Gemini's signatures are protobuf bytes, so always base64; anything else cannot
            // be carried faithfully in an id.
            tracing::warn!("Gemini sent a thoughtSignature that is not base64; it is dropped");
            id
        }
    }
}

/// The thought signature carried by a tool-call id made by [`tool_call_id`], if any.
pub fn signature_of(id: &str) -> Option<String> {
    let rest = id.strip_prefix("call_")?;
    let (random, suffix) = rest.split_once('_')?;
    if !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let encoded = suffix.strip_prefix(&SIGNATURE_MARK[1..])?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    Some(STANDARD.encode(bytes))
}

/// The id without the signature it carries, for upstreams other than Gemini: OpenAI caps tool-call
/// ids at 40 characters. Applied alike to an assistant's `tool_calls[].id` and to the `tool`
/// message's `tool_call_id`, it keeps them paired.
pub fn without_signature(id: &str) -> &str {
    match signature_of(id) {
        Some(_) => id.find(SIGNATURE_MARK).map_or(id, |at| &id[..at]),
        None => id,
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------------------------

/// Translates a chat request; the error is a message for the client.
pub fn to_generate_content(
    req: &ChatCompletionRequest,
) -> Result<g::GenerateContentRequest, String> {
    let names = tool_names(&req.messages);
    let mut system: Vec<g::Part> = Vec::new();
    let mut contents: Vec<g::Content> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        match m.role {
            Role::System | Role::Developer => system.extend(text_parts(m.content.as_ref())),
            Role::User => push_parts(&mut contents, g::Role::User, user_parts(m, i)?),
            Role::Assistant => push_parts(&mut contents, g::Role::Model, model_parts(m, i)?),
            Role::Tool | Role::Function => {
                let part = function_response(m, i, &names)?;
                push_parts(&mut contents, g::Role::User, vec![part]);
            }
        }
    }
    if contents.is_empty() {
        return Err(
            "messages: at least one user or assistant message with content is required".into(),
        );
    }
    let function_calling = function_calling_config(req)?;
    Ok(g::GenerateContentRequest {
        contents,
        system_instruction: (!system.is_empty()).then_some(g::Content {
            role: None,
            parts: system,
        }),
        tools: declarations(req)?,
        tool_config: function_calling.map(|config| g::ToolConfig {
            function_calling_config: Some(config),
        }),
        generation_config: generation_config(req)?,
        safety_settings: req.extra.get("safety_settings").cloned(),
        cached_content: req
            .extra
            .get("cached_content")
            .and_then(Value::as_str)
            .map(str::to_owned),
        extra: Extra::new(),
    })
}

/// Tool-call id → function name, over every assistant message.
fn tool_names(messages: &[ChatMessage]) -> HashMap<&str, &str> {
    messages
        .iter()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .map(|call| (call.id.as_str(), call.function.name.as_str()))
        .collect()
}

/// Appends parts to the last turn when it has the same role, else starts a new turn.
fn push_parts(contents: &mut Vec<g::Content>, role: g::Role, parts: Vec<g::Part>) {
    if parts.is_empty() {
        return;
    }
    match contents.last_mut() {
        Some(last) if last.role == Some(role) => last.parts.extend(parts),
        _ => contents.push(g::Content {
            role: Some(role),
            parts,
        }),
    }
}

/// The non-empty text of a content as parts (Gemini refuses empty text parts).
fn text_parts(content: Option<&MessageContent>) -> Vec<g::Part> {
    let texts: Vec<&str> = match content {
        None => vec![],
        Some(MessageContent::Text(t)) => vec![t.as_str()],
        Some(MessageContent::Parts(parts)) => {
            parts.iter().filter_map(|p| p.text.as_deref()).collect()
        }
    };
    texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(g::Part::text)
        .collect()
}

fn user_parts(m: &ChatMessage, i: usize) -> Result<Vec<g::Part>, String> {
    match &m.content {
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .enumerate()
            .filter(|(_, p)| !(p.kind == "text" && p.text.as_deref().unwrap_or("").is_empty()))
            .map(|(j, p)| content_part(p).map_err(|e| format!("messages[{i}].content[{j}]: {e}")))
            .collect(),
        other => Ok(text_parts(other.as_ref())),
    }
}

fn content_part(part: &ContentPart) -> Result<g::Part, String> {
    match part.kind.as_str() {
        "text" => Ok(g::Part::text(part.text.clone().unwrap_or_default())),
        "image_url" => {
            let url = &part
                .image_url
                .as_ref()
                .ok_or("an image_url part needs image_url.url")?
                .url;
            media_part(url)
        }
        "input_audio" => {
            let audio = part
                .extra
                .get("input_audio")
                .ok_or("an input_audio part needs input_audio")?;
            let data = audio
                .get("data")
                .and_then(Value::as_str)
                .ok_or("input_audio.data is required")?;
            let format = audio.get("format").and_then(Value::as_str).unwrap_or("wav");
            Ok(inline(format!("audio/{format}"), data.to_owned()))
        }
        "file" => {
            let data = part
                .extra
                .get("file")
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str)
                .ok_or("a file part needs file.file_data as a base64 data: URL (file ids are OpenAI's)")?;
            media_part(data)
        }
        other => Err(format!(
            "content part type \"{other}\" is not supported by Gemini models"
        )),
    }
}

fn inline(mime_type: String, data: String) -> g::Part {
    g::Part {
        inline_data: Some(g::Blob { mime_type, data }),
        ..Default::default()
    }
}

/// `data:…;base64,…` → `inlineData`; an http(s) or gs:// URL → `fileData`, which Gemini
/// fetches itself, with its type read from the extension (Vertex requires one).
fn media_part(url: &str) -> Result<g::Part, String> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or("a data: URL needs a comma before its data")?;
        let mime_type = meta
            .strip_suffix(";base64")
            .ok_or("only base64 data: URLs are supported")?;
        return Ok(inline(mime_type.to_owned(), data.to_owned()));
    }
    if !["https://", "http://", "gs://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        return Err("a media URL must be https://, gs:// or a base64 data: URL".into());
    }
    let mime_type = mime_from_extension(url).ok_or(
        "Gemini needs the type of a linked file and this URL does not end in a known extension \
         (.png, .jpg, .jpeg, .webp, .gif, .heic, .heif, .pdf): send it as a base64 data: URL",
    )?;
    Ok(g::Part {
        file_data: Some(g::FileData {
            mime_type: Some(mime_type.to_owned()),
            file_uri: url.to_owned(),
        }),
        ..Default::default()
    })
}

fn mime_from_extension(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let extension = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// An assistant message as model parts: its text, then its function calls with their
/// signatures restored from the ids.
fn model_parts(m: &ChatMessage, i: usize) -> Result<Vec<g::Part>, String> {
    let mut parts = text_parts(m.content.as_ref());
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let raw = call.function.arguments.trim();
        let args = if raw.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(raw).map_err(|e| {
                format!("messages[{i}].tool_calls[{j}].function.arguments is not valid JSON: {e}")
            })?
        };
        if !args.is_object() {
            return Err(format!(
                "messages[{i}].tool_calls[{j}].function.arguments must be a JSON object for Gemini"
            ));
        }
        parts.push(g::Part {
            function_call: Some(g::FunctionCall {
                name: call.function.name.clone(),
                args: Some(args),
                id: None,
            }),
            thought_signature: signature_of(&call.id),
            ..Default::default()
        });
    }
    Ok(parts)
}

/// A tool result as a `functionResponse` named after the call it answers. Its content goes in
/// as the JSON object it is, or else as `{"output": text}`.
fn function_response(
    m: &ChatMessage,
    i: usize,
    names: &HashMap<&str, &str>,
) -> Result<g::Part, String> {
    let name = match (&m.tool_call_id, &m.name) {
        (Some(id), _) if names.contains_key(id.as_str()) => names[id.as_str()].to_owned(),
        (_, Some(name)) => name.clone(),
        (Some(id), None) => {
            return Err(format!(
                "messages[{i}].tool_call_id \"{id}\" matches no tool call of an earlier assistant message; Gemini needs the function's name"
            ));
        }
        (None, None) => return Err(format!("messages[{i}]: a tool message needs tool_call_id")),
    };
    let text = m
        .content
        .as_ref()
        .map(MessageContent::text)
        .unwrap_or_default();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({ "output": text }),
    };
    Ok(g::Part {
        function_response: Some(g::FunctionResponse {
            name,
            response,
            id: None,
        }),
        ..Default::default()
    })
}

fn declarations(req: &ChatCompletionRequest) -> Result<Option<Vec<g::Tool>>, String> {
    let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return Err(format!(
                "tools[{i}]: tool type \"{}\" is not supported by Gemini models",
                tool.kind
            ));
        }
        functions.push(g::FunctionDeclaration {
            name: tool.function.name.clone(),
            description: tool.function.description.clone(),
            parameters: schema::function_parameters(tool.function.parameters.as_ref()),
        });
    }
    Ok(Some(vec![g::Tool {
        function_declarations: Some(functions),
        extra: Extra::new(),
    }]))
}

/// `tool_choice`: auto → AUTO, none → NONE, required → ANY, a named function → ANY limited to it.
fn function_calling_config(
    req: &ChatCompletionRequest,
) -> Result<Option<g::FunctionCallingConfig>, String> {
    let config = |mode: &str, names: Option<Vec<String>>| g::FunctionCallingConfig {
        mode: mode.into(),
        allowed_function_names: names,
    };
    Ok(match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => config("AUTO", None),
            "none" => config("NONE", None),
            "required" => config("ANY", None),
            other => return Err(format!("tool_choice: unknown value \"{other}\"")),
        }),
        Some(ToolChoice::Named(named)) => {
            Some(config("ANY", Some(vec![named.function.name.clone()])))
        }
    })
}

fn generation_config(req: &ChatCompletionRequest) -> Result<Option<g::GenerationConfig>, String> {
    let number = |name: &str| -> Result<Option<f64>, String> {
        match req.extra.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or(format!("{name} must be a number")),
        }
    };
    let seed = match req.extra.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().ok_or("seed must be an integer")?),
    };
    let top_k = match req.extra.get("top_k") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|k| u32::try_from(k).ok())
                .ok_or("top_k must be a positive integer")?,
        ),
    };
    let (response_mime_type, response_schema) = response_format(req.extra.get("response_format"))?;
    let config = g::GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k,
        max_output_tokens: req.output_token_limit(),
        stop_sequences: req.stop.as_ref().map(|s| s.to_vec()),
        candidate_count: req.n.filter(|n| *n > 1),
        response_mime_type,
        response_schema,
        seed,
        presence_penalty: number("presence_penalty")?,
        frequency_penalty: number("frequency_penalty")?,
        thinking_config: thinking_config(req)?,
        extra: Extra::new(),
    };
    Ok((config != g::GenerationConfig::default()).then_some(config))
}

/// `json_object` → JSON output; `json_schema` → JSON output with the schema reduced to
/// Gemini's subset; `text` → nothing.
fn response_format(format: Option<&Value>) -> Result<(Option<String>, Option<Value>), String> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok((None, None));
    };
    let json_mime = Some("application/json".to_owned());
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok((None, None)),
        Some("json_object") => Ok((json_mime, None)),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .ok_or("response_format.json_schema.schema is required")?;
            Ok((json_mime, schema::function_parameters(Some(schema))))
        }
        other => Err(format!(
            "response_format.type {other:?} is not supported by Gemini models"
        )),
    }
}

/// `thinking_config` (Gemini's own, passed through with its keys in Gemini's spelling), and
/// `reasoning_effort` as a thinking budget when the client gave no budget or level itself.
fn thinking_config(req: &ChatCompletionRequest) -> Result<Option<Value>, String> {
    let mut config = match req.extra.get("thinking_config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(given)) => given
            .iter()
            .map(|(k, v)| (camel_case(k), v.clone()))
            .collect(),
        Some(_) => return Err("thinking_config must be an object".into()),
    };
    if let Some(effort) = req.extra.get("reasoning_effort").and_then(Value::as_str)
        && !config.contains_key("thinkingBudget")
        && !config.contains_key("thinkingLevel")
    {
        let budget = match effort {
            "none" => 0,
            "minimal" | "low" => 1024,
            "medium" => 8192,
            "high" => 24576,
            other => {
                return Err(format!(
                    "reasoning_effort \"{other}\" is not one of none, minimal, low, medium, high"
                ));
            }
        };
        config.insert("thinkingBudget".into(), budget.into());
    }
    Ok((!config.is_empty()).then_some(Value::Object(config)))
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------

/// The OpenAI finish_reason of a Gemini finishReason; `called_tools` turns STOP into
/// `tool_calls`. A finish that means the answer is unusable is an error.
pub fn finish_reason(
    reason: &str,
    called_tools: bool,
    provider: &str,
    detail: Option<&str>,
) -> Result<&'static str, ProviderError> {
    Ok(match reason {
        "MAX_TOKENS" => "length",
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
            // The model, not the request, went wrong: another attempt may well succeed, so the
            // class is one the executor retries and falls back on.
            let mut e = ProviderError::new(
                ErrorClass::Overloaded,
                provider,
                format!(
                    "the model produced an unusable function call (finishReason {reason}){}",
                    detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
            );
            e.upstream_code = Some(reason.to_owned());
            return Err(e);
        }
        _ if called_tools => "tool_calls",
        _ => "stop", // STOP, OTHER, FINISH_REASON_UNSPECIFIED
    })
}

/// The error for a prompt Gemini blocked before generating anything (HTTP 200, no
/// candidates): content policy, so the route's content-policy fallbacks apply.
pub fn blocked(feedback: &g::PromptFeedback, provider: &str) -> ProviderError {
    let reason = feedback.block_reason.as_deref().unwrap_or("BLOCKED");
    let mut e = ProviderError::new(
        ErrorClass::ContentPolicy,
        provider,
        format!(
            "Gemini blocked the prompt (blockReason {reason}){}",
            feedback
                .block_reason_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ),
    );
    e.upstream_code = Some(reason.to_owned());
    e
}

/// OpenAI usage from Gemini's: thoughts are completion tokens (and reported as reasoning
/// tokens), cached tokens are part of the prompt.
pub fn usage(u: &g::UsageMetadata) -> Usage {
    let completion = u.candidates_token_count + u.thoughts_token_count;
    let prompt = u.prompt_token_count + u.tool_use_prompt_token_count;
    let mut usage = Usage::new(prompt, completion, u.cached_content_token_count);
    if u.thoughts_token_count > 0 {
        usage.extra.insert(
            "completion_tokens_details".into(),
            json!({ "reasoning_tokens": u.thoughts_token_count }),
        );
    }
    usage
}

/// What a candidate's parts say, sorted into the OpenAI message's fields.
#[derive(Debug, Default)]
pub struct Said {
    pub text: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

impl Said {
    pub fn add(&mut self, part: g::Part) {
        if let Some(call) = part.function_call {
            self.tool_calls.push(ToolCall {
                id: tool_call_id(part.thought_signature.as_deref()),
                kind: "function".into(),
                function: FunctionCall {
                    name: call.name,
                    arguments: call.args.unwrap_or_else(|| json!({})).to_string(),
                },
            });
        } else if let Some(text) = part.text {
            if part.thought == Some(true) {
                self.reasoning.push_str(&text);
            } else {
                self.text.push_str(&text);
            }
        }
    }
}

/// Translates a whole `generateContent` response.
pub fn from_response(
    response: g::GenerateContentResponse,
    model: &str,
    created: u64,
    provider: &str,
) -> Result<ChatCompletionResponse, ProviderError> {
    if response.candidates.is_empty() {
        return Err(match &response.prompt_feedback {
            Some(feedback) if feedback.block_reason.is_some() => blocked(feedback, provider),
            _ => ProviderError::new(
                ErrorClass::Protocol,
                provider,
                "the response has no candidates",
            ),
        });
    }
    let mut choices = Vec::with_capacity(response.candidates.len());
    for (position, candidate) in response.candidates.into_iter().enumerate() {
        let mut said = Said::default();
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            said.add(part);
        }
        let reason = candidate.finish_reason.as_deref().unwrap_or("STOP");
        let finish = finish_reason(
            reason,
            !said.tool_calls.is_empty(),
            provider,
            candidate.finish_message.as_deref(),
        )?;
        choices.push(choice(
            candidate.index.unwrap_or(position as u32),
            said,
            finish,
        ));
    }
    choices.sort_by_key(|c| c.index);
    Ok(ChatCompletionResponse {
        id: completion_id(response.response_id.as_deref()),
        object: "chat.completion".into(),
        created,
        model: response.model_version.unwrap_or_else(|| model.to_owned()),
        choices,
        usage: response.usage_metadata.as_ref().map(usage),
        extra: Extra::new(),
    })
}

fn choice(index: u32, said: Said, finish: &str) -> Choice {
    let mut extra = Extra::new();
    if !said.reasoning.is_empty() {
        extra.insert("reasoning_content".into(), Value::String(said.reasoning));
    }
    let content = if said.text.is_empty() && !said.tool_calls.is_empty() {
        None
    } else {
        Some(said.text)
    };
    Choice {
        index,
        message: ResponseMessage {
            role: Role::Assistant,
            content,
            tool_calls: (!said.tool_calls.is_empty()).then_some(said.tool_calls),
            extra,
        },
        finish_reason: Some(finish.into()),
        extra: Extra::new(),
    }
}

/// `chatcmpl-` and Gemini's response id, or a fresh one.
pub fn completion_id(response_id: Option<&str>) -> String {
    match response_id {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
    }
}
