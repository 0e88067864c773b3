//! Where exact-cache entries live: [`AnswerStore`] is the seam; the in-process backend is
//! [`super::memory::MemoryAnswers`], the Redis backend, shared by replicas, is in
//! `switchyard-store`. An entry is a [`CachedAnswer`] as [`encode_answer`] writes it: a header
//! line (kind, model, usage), then the answer's bytes as they were sent, in the API they were sent
//! in, so a hit decodes its header line and serves the body as it is.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use switchyard_wire::openai::Usage;

use crate::provider::BodyKind;

/// A cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    pub kind: BodyKind,
    pub body: Bytes,
    pub usage: Option<Usage>,
    /// The model that answered it, for `x-switchyard-model`.
    pub model: String,
}

/// Which entries a purge removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purge {
    All,
    /// Every entry of a team (`t:TEAM`), whatever key stored it.
    Team(String),
    /// Every entry only a key may read (`k:KEY`).
    Key(String),
}

impl Purge {
    /// Whether an entry stored under `key` (`TENANT|HASH`, or the tenant alone) is purged.
    pub fn matches(&self, key: &str) -> bool {
        let tenant = key.split_once('|').map_or(key, |(t, _)| t);
        match self {
            Purge::All => true,
            Purge::Team(team) => {
                tenant == team
                    || tenant
                        .strip_prefix(team.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            Purge::Key(marker) => {
                tenant == marker
                    || tenant
                        .strip_suffix(marker.as_str())
                        .is_some_and(|rest| rest.ends_with('/'))
            }
        }
    }
}

pub trait AnswerStore: Send + Sync {
    /// The entry under `key`; `None` on a miss, and on an error (logged by the backend): a cache
    /// that cannot answer is a miss, never a failed request.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedAnswer>>>;

    /// Keeps an answer. Never waited for: the in-process store inserts on the spot (a fraction
    /// of a microsecond), a shared store writes in the background.
    fn put(&self, key: String, encoded: Vec<u8>, ttl: Duration);

    /// Removes the entries `purge` selects; how many, when the backend can tell.
    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>>;
}

/// How an answer is stored: one JSON line of metadata, then the body as sent.
#[derive(Serialize)]
struct Header<'a> {
    kind: &'a str,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
}

#[derive(Deserialize)]
struct ReadHeader<'a> {
    kind: &'a str,
    model: &'a str,
    #[serde(default)]
    usage: Option<Usage>,
}

/// An answer as the stores keep it, from its parts: the caller need not own them.
pub fn encode_answer(kind: BodyKind, model: &str, usage: Option<&Usage>, body: &[u8]) -> Vec<u8> {
    let header = Header {
        kind: kind_name(kind),
        model,
        usage,
    };
    let mut out = Vec::with_capacity(body.len() + 128);
    // A header of strings and numbers always serializes.
    let _ = serde_json::to_writer(&mut out, &header);
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

impl CachedAnswer {
    pub fn encode(&self) -> Vec<u8> {
        encode_answer(self.kind, &self.model, self.usage.as_ref(), &self.body)
    }

    /// An answer from the bytes a store handed over; the body is served from them, not copied.
    pub fn decode(encoded: Vec<u8>) -> Result<CachedAnswer, String> {
        let bytes = encoded.as_slice();
        let newline = memchr::memchr(b'\n', bytes).ok_or("no header line")?;
        let header: ReadHeader<'_> =
            serde_json::from_slice(&bytes[..newline]).map_err(|e| e.to_string())?;
        let kind = match header.kind {
            "chat.completion" => BodyKind::ChatCompletion,
            "message" => BodyKind::AnthropicMessage,
            "response" => BodyKind::Response,
            other => return Err(format!("unknown answer kind {other:?}")),
        };
        let model = header.model.to_owned();
        let usage = header.usage;
        Ok(CachedAnswer {
            kind,
            model,
            usage,
            body: Bytes::from(encoded).slice(newline + 1..),
        })
    }
}

fn kind_name(kind: BodyKind) -> &'static str {
    match kind {
        BodyKind::ChatCompletion => "chat.completion",
        BodyKind::AnthropicMessage => "message",
        BodyKind::Response => "response",
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An answer with `body`, as the stores' tests keep them.
    pub(in crate::cache) fn answer(body: &str) -> Arc<CachedAnswer> {
        Arc::new(CachedAnswer {
            kind: BodyKind::ChatCompletion,
            body: Bytes::copy_from_slice(body.as_bytes()),
            usage: Some(Usage::new(10, 2, None)),
            model: "gpt-4o-mini".into(),
        })
    }

    #[test]
    fn an_answer_survives_its_encoding() {
        let a = answer(r#"{"choices":[]}"#);
        assert_eq!(CachedAnswer::decode(a.encode()).unwrap(), *a);
        assert!(CachedAnswer::decode(b"garbage".to_vec()).is_err());
    }

    #[test]
    fn purges_select_by_tenant() {
        let team = Purge::Team("t:red".into());
        assert!(team.matches("t:red|abc"));
        assert!(team.matches("t:red/k:vk1|abc"));
        assert!(!team.matches("t:redder|abc"));
        assert!(!team.matches("k:vk1|abc"));
        let key = Purge::Key("k:vk1".into());
        assert!(key.matches("k:vk1|abc"));
        assert!(key.matches("t:red/k:vk1|abc"));
        assert!(!key.matches("k:vk10|abc"));
        assert!(!key.matches("t:red|abc"));
        assert!(Purge::All.matches("global|abc"));
    }
}
