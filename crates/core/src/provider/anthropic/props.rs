//! Property tests of the Anthropic translation on generated conversations: what a client sent
//! (texts, roles, tool calls, tool results) reaches Claude unchanged in substance, and what
//! Claude answered (text, tool calls, usage) reaches the client. The example-based tests next
//! door pin the exact shapes; these check that nothing is lost on any small conversation.

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_wire::anthropic as a;
use switchyard_wire::openai::ChatCompletionRequest;

use super::translate::{from_messages_response, to_messages_request};

/// One message of a generated OpenAI conversation.
#[derive(Debug, Clone)]
enum Turn {
    System(String),
    /// A user message, as a plain string or as text parts.
    User(String, bool),
    /// Assistant text (possibly empty) and tool calls `(id, name, arguments)`; never both empty.
    Assistant(String, Vec<(String, String, Value)>),
    /// A tool result: the call id and its text.
    Tool(String, String),
}

/// What the translation must keep, in order: `(Anthropic role, kind, payload)`.
type Atom = (a::Role, &'static str, Value);

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .,!?'\"é中\\n]{0,12}"
}

/// A tool call's arguments: a small JSON object.
fn arguments() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    prop::collection::btree_map("[a-z_]{1,6}", leaf, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn call() -> impl Strategy<Value = (String, String, Value)> {
    ("call_[a-z0-9]{1,6}", "[a-z_]{1,10}", arguments())
}

fn turn() -> impl Strategy<Value = Turn> {
    prop_oneof![
        1 => text().prop_map(Turn::System),
        3 => (text(), any::<bool>()).prop_map(|(t, parts)| Turn::User(t, parts)),
        3 => (text(), prop::collection::vec(call(), 0..3))
            .prop_filter("an assistant message needs content or tool calls", |(t, calls)| {
                !t.is_empty() || !calls.is_empty()
            })
            .prop_map(|(t, calls)| Turn::Assistant(t, calls)),
        2 => ("call_[a-z0-9]{1,6}", text()).prop_map(|(id, t)| Turn::Tool(id, t)),
    ]
}

/// A conversation with at least one message that is not a system message.
fn conversation() -> impl Strategy<Value = Vec<Turn>> {
    prop::collection::vec(turn(), 1..8).prop_filter("needs a user or assistant turn", |turns| {
        turns.iter().any(|t| !matches!(t, Turn::System(_)))
    })
}

/// The request a client would send for `turns`.
fn request(turns: &[Turn]) -> ChatCompletionRequest {
    let messages: Vec<Value> = turns
        .iter()
        .map(|t| match t {
            Turn::System(s) => json!({"role": "system", "content": s}),
            Turn::User(s, false) => json!({"role": "user", "content": s}),
            Turn::User(s, true) => {
                json!({"role": "user", "content": [{"type": "text", "text": s}]})
            }
            Turn::Assistant(s, calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|(id, name, args)| {
                        json!({"id": id, "type": "function",
                               "function": {"name": name, "arguments": args.to_string()}})
                    })
                    .collect();
                let mut m = json!({"role": "assistant", "content": s});
                if !calls.is_empty() {
                    m["tool_calls"] = Value::Array(calls);
                }
                m
            }
            Turn::Tool(id, s) => json!({"role": "tool", "tool_call_id": id, "content": s}),
        })
        .collect();
    serde_json::from_value(json!({"model": "claude-x", "messages": messages})).unwrap()
}

/// What Claude must receive for `turns`, besides the system prompt.
fn expected_atoms(turns: &[Turn]) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for t in turns {
        match t {
            Turn::System(_) => {}
            Turn::User(s, _) => atoms.push((a::Role::User, "text", json!(s))),
            Turn::Assistant(s, calls) => {
                if !s.is_empty() {
                    atoms.push((a::Role::Assistant, "text", json!(s)));
                }
                for (id, name, args) in calls {
                    atoms.push((a::Role::Assistant, "tool_use", json!([id, name, args])));
                }
            }
            Turn::Tool(id, s) => atoms.push((a::Role::User, "tool_result", json!([id, s]))),
        }
    }
    atoms
}

/// What Claude receives, flattened the same way.
fn actual_atoms(req: &a::MessagesRequest) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for m in &req.messages {
        match &m.content {
            a::MessageContent::Text(t) => atoms.push((m.role, "text", json!(t))),
            a::MessageContent::Blocks(blocks) => atoms.extend(blocks.iter().map(|b| match b {
                a::ContentBlock::Text { text, .. } => (m.role, "text", json!(text)),
                a::ContentBlock::ToolUse { id, name, input } => {
                    (m.role, "tool_use", json!([id, name, input]))
                }
                a::ContentBlock::ToolResult {
                    tool_use_id,
                    content: Some(a::ToolResultContent::Text(t)),
                    is_error: None,
                } => (m.role, "tool_result", json!([tool_use_id, t])),
                other => (m.role, "unexpected", json!(format!("{other:?}"))),
            })),
        }
    }
    atoms
}

/// The system prompt Claude receives, as one text.
fn system_text(req: &a::MessagesRequest) -> Option<Vec<String>> {
    match req.system.as_ref()? {
        a::SystemPrompt::Text(t) => Some(vec![t.clone()]),
        a::SystemPrompt::Blocks(blocks) => Some(
            blocks
                .iter()
                .map(|b| match b {
                    a::ContentBlock::Text { text, .. } => text.clone(),
                    other => format!("unexpected {other:?}"),
                })
                .collect(),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_openai_request_reaches_anthropic_with_its_texts_roles_tool_calls_and_results(
        turns in conversation()
    ) {
        let translated = to_messages_request(&request(&turns), 1024).unwrap();
        prop_assert_eq!(actual_atoms(&translated), expected_atoms(&turns));
        let systems: Vec<String> = turns
            .iter()
            .filter_map(|t| match t {
                Turn::System(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        prop_assert_eq!(system_text(&translated), (!systems.is_empty()).then_some(systems));
        // Anthropic refuses two consecutive messages of the same role.
        for pair in translated.messages.windows(2) {
            prop_assert_ne!(pair[0].role, pair[1].role);
        }
    }

    #[test]
    fn an_anthropic_answer_reaches_the_client_with_its_text_tool_calls_and_usage(
        texts in prop::collection::vec(text(), 0..4),
        calls in prop::collection::vec(call(), 0..3),
        input_tokens in 0u64..1_000_000,
        output_tokens in 0u64..1_000_000,
    ) {
        let mut content: Vec<Value> = texts
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        content.extend(calls.iter().map(|(id, name, input)| {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }));
        let message: a::MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": content, "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }))
        .unwrap();
        let answer = from_messages_response(message, 0);
        let choice = &answer.choices[0];
        let text = texts.concat();
        if text.is_empty() && !calls.is_empty() {
            prop_assert_eq!(choice.message.content.as_deref(), None);
        } else {
            prop_assert_eq!(choice.message.content.as_deref(), Some(text.as_str()));
        }
        let got: Vec<(String, String, Value)> = choice
            .message
            .tool_calls
            .iter()
            .flatten()
            .map(|c| {
                let args = serde_json::from_str(&c.function.arguments).unwrap();
                (c.id.clone(), c.function.name.clone(), args)
            })
            .collect();
        prop_assert_eq!(got, calls.clone());
        let expected_finish = if calls.is_empty() { "stop" } else { "tool_calls" };
        prop_assert_eq!(choice.finish_reason.as_deref(), Some(expected_finish));
        let usage = answer.usage.as_ref().unwrap();
        prop_assert_eq!(usage.prompt_tokens, input_tokens);
        prop_assert_eq!(usage.completion_tokens, output_tokens);
        prop_assert_eq!(usage.total_tokens, input_tokens + output_tokens);
    }
}
