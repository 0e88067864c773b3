//! Where the text of a request and of an answer is: every message's content (a string or the
//! text of its parts), the arguments of tool calls, with the role each belongs to (and, for an
//! answer still in the upstream's bytes, the same texts read straight from them). The
//! guardrails read and rewrite text only through these walks, so a new place for text is added
//! here once.

use std::borrow::Cow;

use switchyard_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, MessageContent, Role,
};

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        Role::Function => "function",
    }
}

/// Calls `f` with each text of the request and the role of its message.
pub fn each_request_text(
    request: &mut ChatCompletionRequest,
    mut f: impl FnMut(&mut String, Role),
) {
    for m in &mut request.messages {
        let role = m.role;
        match &mut m.content {
            Some(MessageContent::Text(t)) => f(t, role),
            Some(MessageContent::Parts(parts)) => {
                for text in parts.iter_mut().filter_map(|p| p.text.as_mut()) {
                    f(text, role);
                }
            }
            None => {}
        }
        for call in m.tool_calls.iter_mut().flatten() {
            f(&mut call.function.arguments, role);
        }
    }
}

/// Calls `f` with each text of the answer: every choice's content and tool-call arguments.
pub fn each_answer_text(response: &mut ChatCompletionResponse, mut f: impl FnMut(&mut String)) {
    for choice in &mut response.choices {
        if let Some(content) = &mut choice.message.content {
            f(content);
        }
        for call in choice.message.tool_calls.iter_mut().flatten() {
            f(&mut call.function.arguments);
        }
    }
}

/// The texts [`each_answer_text`] would walk, read from an OpenAI chat completion as the
/// upstream sent it: the string values of its `content` and `arguments` keys, borrowed from the
/// bytes unless they hold escapes. Found by a substring search rather than a parse, because
/// serde reading the whole object only to skip its ids, timestamps and usage costs several
/// times what screening the answer does. A match is a key only when a `:` follows it
/// (`"content"` may be a value), and a key cannot hide inside a string, where quotes are
/// escaped. `None` when such a key holds neither a string nor `null` (log probabilities): the
/// body is read whole then.
pub fn raw_answer_texts(body: &[u8]) -> Option<Vec<Cow<'_, str>>> {
    let mut texts = Vec::new();
    for key in [&b"\"content\""[..], b"\"arguments\""] {
        for at in memchr::memmem::find_iter(body, key) {
            let Some(value) = skip_ws(&body[at + key.len()..]).strip_prefix(b":") else {
                continue;
            };
            let value = skip_ws(value);
            if value.starts_with(b"null") {
                continue;
            }
            texts.push(json_string(value)?);
        }
    }
    Some(texts)
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// The JSON string at the start of `b`: borrowed when it has no escapes, else decoded.
fn json_string(b: &[u8]) -> Option<Cow<'_, str>> {
    let body = b.strip_prefix(b"\"")?;
    let mut escaped = false;
    let mut i = 0;
    loop {
        i += memchr::memchr2(b'"', b'\\', &body[i..])?;
        if body[i] == b'"' {
            break;
        }
        escaped = true;
        i += 2;
        if i > body.len() {
            return None;
        }
    }
    if escaped {
        serde_json::from_slice::<String>(&b[..i + 2])
            .ok()
            .map(Cow::Owned)
    } else {
        std::str::from_utf8(&body[..i]).ok().map(Cow::Borrowed)
    }
}

/// The context a RAG request carried: its system, developer and tool messages.
pub fn context_of(request: &ChatCompletionRequest) -> String {
    let mut context = String::new();
    for m in &request.messages {
        if matches!(
            m.role,
            Role::System | Role::Developer | Role::Tool | Role::Function
        ) && let Some(c) = &m.content
        {
            context.push_str(&c.text());
            context.push('\n');
        }
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the decoding path screens: the answer decoded, then walked.
    fn decoded_texts(body: &str) -> Vec<String> {
        let mut answer: ChatCompletionResponse = serde_json::from_str(body).unwrap();
        let mut texts = Vec::new();
        each_answer_text(&mut answer, |t| texts.push(t.clone()));
        texts
    }

    #[test]
    fn the_texts_read_from_the_bytes_are_those_of_the_decoded_answer() {
        let head =
            r#""id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m""#;
        let usage = r#""usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}"#;
        let message = |m: &str| {
            format!(
                r#"{{{head},"choices":[{{"index":0,"message":{m},"finish_reason":"stop"}}],{usage}}}"#
            )
        };
        let bodies = [
            message(r#"{"role":"assistant","content":"Plain text."}"#),
            message(r#"{"role":"assistant","content":"Say \"hi\" \\ caf\u00e9 \ud83d\ude00\n"}"#),
            message(
                r#"{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"content\": \"x\"}"}}]}"#,
            ),
            format!(
                "{{{head},\n  \"choices\" : [\n {{\"index\": 0, \"message\": {{\"role\": \"assistant\", \"content\" :  \"Pretty.\"}}, \"finish_reason\": \"stop\"}},\n {{\"index\": 1, \"message\": {{\"role\": \"assistant\", \"content\": \"Second.\"}}, \"finish_reason\": \"stop\"}}]}}"
            ),
        ];
        for body in &bodies {
            let raw: Vec<String> = raw_answer_texts(body.as_bytes())
                .unwrap_or_else(|| panic!("read {body}"))
                .into_iter()
                .map(Cow::into_owned)
                .collect();
            assert_eq!(raw, decoded_texts(body), "{body}");
        }
    }

    #[test]
    fn a_value_named_content_is_no_key_and_odd_shapes_are_read_whole() {
        let texts = raw_answer_texts(br#"{"type":"content","choices":[]}"#).unwrap();
        assert!(texts.is_empty());
        let logprobs =
            br#"{"choices":[{"message":{"content":"a"},"logprobs":{"content":[{"token":"a"}]}}]}"#;
        assert!(raw_answer_texts(logprobs).is_none());
        assert!(raw_answer_texts(br#"{"choices":[{"message":{"content":"cut \"#).is_none());
        assert!(raw_answer_texts(br#"{"choices":[{"message":{"content":"cut"#).is_none());
    }
}
