//! What identifies a cached answer: the tenant that may see it, and a hash of everything in the
//! request that changes the answer (model or alias, messages, tools, sampling parameters, the
//! dialect the client speaks) — never `stream`, `user` or metadata, so a streamed and a plain
//! request share an entry. The semantic cache's scope is the same hash without the last user
//! message, which is what it compares by meaning.

use serde::Serialize;
use serde::ser::SerializeMap;
use sha2::{Digest, Sha256};
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatMessage, Extra, MessageContent, Native, Role,
};

use super::config::CacheScope;
use crate::guard::text::role_name;

/// Parameters that change nothing in the answer (who asks, where it is logged, how fast).
const IGNORED: &[&str] = &[
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
];

/// Who may read an entry, as a key prefix that purges can match: `t:TEAM`, `t:TEAM/k:KEY`,
/// `k:KEY`, `anon` or `global`. Ids are percent-encoded, so they hold no `|`, `/`, `:` or glob
/// characters of their own.
pub fn tenant(scope: CacheScope, team: Option<&str>, key_id: Option<&str>) -> String {
    let mut out = String::with_capacity(48);
    match (scope, team, key_id) {
        (CacheScope::Global, _, _) => out.push_str("global"),
        (CacheScope::Team, Some(team), _) => push_id(&mut out, "t:", team),
        (CacheScope::Key, Some(team), Some(key)) => {
            push_id(&mut out, "t:", team);
            push_id(&mut out, "/k:", key);
        }
        (_, _, Some(key)) => push_id(&mut out, "k:", key),
        (_, Some(team), None) => push_id(&mut out, "t:", team),
        (_, None, None) => out.push_str("anon"),
    }
    out
}

/// The tenant prefix that selects a team's or a key's entries for a purge.
pub fn team_prefix(team: &str) -> String {
    let mut out = String::new();
    push_id(&mut out, "t:", team);
    out
}

pub fn key_marker(key_id: &str) -> String {
    let mut out = String::new();
    push_id(&mut out, "k:", key_id);
    out
}

/// `label` and the id, percent-encoding everything but ASCII letters, digits, `-`, `_` and `.`.
fn push_id(out: &mut String, label: &str, id: &str) {
    out.push_str(label);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The exact key of a request: a SHA-256 of its normalized form (hex). SHA-256 rather than a
/// faster hash because entries are shared across the callers of a tenant: a crafted collision
/// must not let one of them plant an answer for another's prompt.
pub fn exact(request: &ChatCompletionRequest, dialect: &str) -> String {
    let mut key = String::with_capacity(64);
    push_exact(&mut key, request, dialect);
    key
}

/// Appends the exact key of a request (hex) to `out`, which holds its tenant and `|`.
pub fn push_exact(out: &mut String, request: &ChatCompletionRequest, dialect: &str) {
    let view = Normalized::of(request, dialect, &request.messages);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(digest(&view, request), &mut hex);
    out.extend(hex.iter().map(|&b| char::from(b)));
}

/// The semantic scope of a request and the text compared by meaning: the last message, when it
/// is the user's and is text; `None` when the request has nothing to compare.
pub fn semantic(request: &ChatCompletionRequest, dialect: &str) -> Option<(u64, String)> {
    let (last, earlier) = request.messages.split_last()?;
    if last.role != Role::User {
        return None;
    }
    // An image or a file is what embeddings of the words alone would miss.
    let content = last.content.as_ref()?;
    if let MessageContent::Parts(parts) = content
        && parts.iter().any(|p| p.kind != "text")
    {
        return None;
    }
    let text = content.text();
    if text.trim().is_empty() {
        return None;
    }
    let view = Normalized::of(request, dialect, earlier);
    let hash = digest(&view, request);
    let scope = u64::from_le_bytes(hash[..8].try_into().unwrap_or_default());
    Some((scope, text))
}

fn digest(view: &Normalized<'_>, request: &ChatCompletionRequest) -> [u8; 32] {
    let mut hasher = HashWriter(Sha256::new());
    // Gathered into a buffer and hashed at once: fed piece by piece, the hasher's per-call
    // bookkeeping cost more than the hashing.
    let mut parameters = Vec::with_capacity(256);
    view.write_parameters(&mut parameters);
    hasher.0.update(&parameters);
    for message in view.messages {
        hash_message(&mut hasher, message);
    }
    if let Some(native) = &request.origin.native {
        // What the client's own dialect says beyond the canonical request (a thinking budget,
        // top_k…) changes the answer too.
        let body = match native.as_ref() {
            Native::Anthropic { body, .. } | Native::Responses { body } => body,
        };
        if let Some(fields) = body.as_object() {
            let _ = serde_json::to_writer(&mut hasher, &Filtered(fields));
        }
    }
    hasher.0.finalize().into()
}

/// The parts of a request that change its answer, besides its messages.
struct Normalized<'a> {
    dialect: &'a str,
    model: &'a str,
    messages: &'a [ChatMessage],
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: &'a Option<switchyard_wire::openai::Stop>,
    tools: &'a Option<Vec<switchyard_wire::openai::Tool>>,
    tool_choice: &'a Option<switchyard_wire::openai::ToolChoice>,
    parallel_tool_calls: Option<bool>,
    n: Option<u32>,
    extra: Filtered<'a>,
}

impl<'a> Normalized<'a> {
    fn of(
        request: &'a ChatCompletionRequest,
        dialect: &'a str,
        messages: &'a [ChatMessage],
    ) -> Self {
        Normalized {
            dialect,
            model: &request.model,
            messages,
            // Either spelling of the output cap means the same.
            max_tokens: request.output_token_limit(),
            temperature: request.temperature,
            top_p: request.top_p,
            stop: &request.stop,
            tools: &request.tools,
            tool_choice: &request.tool_choice,
            parallel_tool_calls: request.parallel_tool_calls,
            n: request.n,
            extra: Filtered(&request.extra),
        }
    }

    /// Every parameter, in a fixed order, each either of a fixed size or with its length, so
    /// that no two requests write alike: scalars as bytes, the parameters rarely set (stop,
    /// tools, the others) as JSON. Serializing them all as one JSON object, absent ones
    /// included, was most of what a short request's key cost.
    fn write_parameters(&self, out: &mut Vec<u8>) {
        push_text(out, self.dialect.as_bytes());
        push_text(out, self.model.as_bytes());
        let number = |out: &mut Vec<u8>, n: Option<u64>| match n {
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
            None => out.push(0),
        };
        number(out, self.max_tokens.map(u64::from));
        number(out, self.temperature.map(f64::to_bits));
        number(out, self.top_p.map(f64::to_bits));
        number(out, self.parallel_tool_calls.map(u64::from));
        number(out, self.n.map(u64::from));
        push_json(out, self.stop.as_ref());
        push_json(out, self.tools.as_ref());
        push_json(out, self.tool_choice.as_ref());
        let has_extra = self.extra.0.keys().any(|k| !IGNORED.contains(&k.as_str()));
        push_json(out, has_extra.then_some(&self.extra));
    }
}

/// A length, then the bytes.
fn push_text(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Whether a parameter is there, and if so its JSON with its length.
fn push_json<T: Serialize>(out: &mut Vec<u8>, value: Option<&T>) {
    let Some(value) = value else {
        out.push(0);
        return;
    };
    out.push(1);
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    // Parameters that deserialized from JSON always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
    let len = (out.len() - start - 8) as u64;
    out[start..start + 8].copy_from_slice(&len.to_le_bytes());
}

/// A parameter map without the parameters in [`IGNORED`].
struct Filtered<'a>(&'a Extra);

impl Serialize for Filtered<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !IGNORED.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// A message into the hash: texts as their bytes, length first (so that no two sequences of
/// messages hash alike), rather than through the JSON serializer, whose escaping scan is most
/// of the cost of hashing a long prompt; the rest of the message, rarely more than a role, as
/// JSON.
fn hash_message(hasher: &mut HashWriter, message: &ChatMessage) {
    let text = |hasher: &mut HashWriter, bytes: &[u8]| {
        hasher.0.update((bytes.len() as u64).to_le_bytes());
        hasher.0.update(bytes);
    };
    text(hasher, role_name(message.role).as_bytes());
    match &message.content {
        Some(MessageContent::Text(s)) => text(hasher, s.as_bytes()),
        Some(MessageContent::Parts(parts)) => {
            let json = serde_json::to_vec(parts).unwrap_or_default();
            text(hasher, &json);
        }
        None => text(hasher, b"\0none"),
    }
    let plain = message.name.is_none()
        && message.tool_calls.is_none()
        && message.tool_call_id.is_none()
        && message.extra.is_empty();
    if plain {
        // Most messages are a role and a text: no serializer, no allocation.
        text(hasher, b"\0plain");
        return;
    }
    let rest = (
        &message.name,
        &message.tool_calls,
        &message.tool_call_id,
        &message.extra,
    );
    let json = serde_json::to_vec(&rest).unwrap_or_default();
    text(hasher, &json);
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "What is Rust?"}],
            "temperature": 0
        })
    }

    fn with(key: &str, value: serde_json::Value) -> ChatCompletionRequest {
        let mut json = base();
        json[key] = value;
        request(json)
    }

    #[test]
    fn stream_user_and_metadata_do_not_change_the_key() {
        let key = exact(&request(base()), "openai");
        for (k, v) in [
            ("stream", serde_json::json!(true)),
            ("stream_options", serde_json::json!({"include_usage": true})),
            ("user", serde_json::json!("alice")),
            ("metadata", serde_json::json!({"trace": "x"})),
            ("service_tier", serde_json::json!("flex")),
        ] {
            assert_eq!(exact(&with(k, v), "openai"), key, "{k} changed the key");
        }
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let key = exact(&request(base()), "openai");
        for (k, v) in [
            ("model", serde_json::json!("gpt-4o")),
            ("temperature", serde_json::json!(0.5)),
            ("max_tokens", serde_json::json!(10)),
            ("seed", serde_json::json!(7)),
            (
                "response_format",
                serde_json::json!({"type": "json_object"}),
            ),
            ("stop", serde_json::json!(["\n"])),
            (
                "messages",
                serde_json::json!([{"role": "user", "content": "What is Rust?"}]),
            ),
        ] {
            assert_ne!(
                exact(&with(k, v), "openai"),
                key,
                "{k} did not change the key"
            );
        }
        assert_ne!(exact(&request(base()), "anthropic"), key);
    }

    #[test]
    fn message_boundaries_and_roles_are_part_of_the_key() {
        let two = request(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "ab"}, {"role": "user", "content": "c"}]}));
        let moved = request(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "a"}, {"role": "user", "content": "bc"}]}));
        let role = request(serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "ab"}, {"role": "assistant", "content": "c"}]}));
        let keys = [
            exact(&two, "openai"),
            exact(&moved, "openai"),
            exact(&role, "openai"),
        ];
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
    }

    #[test]
    fn either_spelling_of_the_output_cap_is_one_key() {
        let a = with("max_tokens", serde_json::json!(64));
        let b = with("max_completion_tokens", serde_json::json!(64));
        assert_eq!(exact(&a, "openai"), exact(&b, "openai"));
    }

    #[test]
    fn the_semantic_scope_is_everything_but_the_last_user_message() {
        let (scope, text) = semantic(&request(base()), "openai").unwrap();
        assert_eq!(text, "What is Rust?");
        let mut other = base();
        other["messages"][1]["content"] = "Tell me about Rust".into();
        let (scope2, _) = semantic(&request(other), "openai").unwrap();
        assert_eq!(scope, scope2);
        let mut system = base();
        system["messages"][0]["content"] = "Be verbose.".into();
        assert_ne!(semantic(&request(system), "openai").unwrap().0, scope);
        let mut assistant_last = base();
        assistant_last["messages"][1]["role"] = "assistant".into();
        assert!(semantic(&request(assistant_last), "openai").is_none());
        let mut image = base();
        image["messages"][1]["content"] = serde_json::json!([
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]);
        assert!(semantic(&request(image), "openai").is_none());
    }

    #[test]
    fn tenants_follow_the_scope_and_never_mix_ids() {
        let (team, key) = (Some("a:b/c"), Some("vk_1"));
        assert_eq!(tenant(CacheScope::Team, team, key), "t:a%3Ab%2Fc");
        assert_eq!(tenant(CacheScope::Key, team, key), "t:a%3Ab%2Fc/k:vk_1");
        assert_eq!(tenant(CacheScope::Global, team, key), "global");
        assert_eq!(tenant(CacheScope::Team, None, key), "k:vk_1");
        assert_eq!(tenant(CacheScope::Team, None, None), "anon");
    }
}
