//! Where the text of a request and of an answer is: every message's content (a string or the
//! text of its parts), the arguments of tool calls, with the role each belongs to. The
//! guardrails read and rewrite text only through these walks, so a new place for text is added
//! here once.

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
