//! Where exact-cache entries live: [`AnswerStore`] is the seam, [`MemoryAnswers`] the in-process
//! backend (moka, bounded by bytes, a TTL per entry); the Redis backend, shared by replicas, is
//! in `switchyard-store`. An entry is a [`CachedAnswer`]: the answer's bytes as they were sent,
//! in the API they were sent in, so a hit is served without decoding anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Whether an entry stored under `key` (`TENANT|HASH`) is purged.
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

    fn put(&self, key: String, answer: Arc<CachedAnswer>, ttl: Duration) -> BoxFuture<'_, ()>;

    /// Removes the entries `purge` selects; how many, when the backend can tell.
    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>>;
}

/// The in-process backend.
pub struct MemoryAnswers {
    entries: moka::future::Cache<String, (Arc<CachedAnswer>, Duration)>,
}

/// Each entry expires after its own TTL (routes may set theirs).
struct PerEntryTtl;

impl moka::Expiry<String, (Arc<CachedAnswer>, Duration)> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &(Arc<CachedAnswer>, Duration),
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.1)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &(Arc<CachedAnswer>, Duration),
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.1)
    }
}

impl MemoryAnswers {
    /// Holds at most `max_bytes` of answers (bodies, keys and a little bookkeeping).
    pub fn new(max_bytes: u64) -> MemoryAnswers {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, value: &(Arc<CachedAnswer>, Duration)| {
                let size = key.len() + value.0.body.len() + value.0.model.len() + 128;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        MemoryAnswers { entries }
    }
}

impl AnswerStore for MemoryAnswers {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedAnswer>>> {
        Box::pin(async move { self.entries.get(key).await.map(|(a, _)| a) })
    }

    fn put(&self, key: String, answer: Arc<CachedAnswer>, ttl: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.entries.insert(key, (answer, ttl)))
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let before = self.entries.entry_count();
            let purge = purge.clone();
            self.entries
                .invalidate_entries_if(move |key, _| purge.matches(key))
                .map_err(|e| e.to_string())?;
            self.entries.run_pending_tasks().await;
            Ok(before.saturating_sub(self.entries.entry_count()))
        })
    }
}

/// How an answer is written to a shared store: one JSON line of metadata, then the body as sent.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    kind: &'a str,
    model: &'a str,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

impl CachedAnswer {
    pub fn encode(&self) -> Vec<u8> {
        let header = Header {
            kind: kind_name(self.kind),
            model: &self.model,
            usage: self.usage.clone(),
        };
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<CachedAnswer, String> {
        let newline = memchr::memchr(b'\n', bytes).ok_or("no header line")?;
        let header: Header<'_> =
            serde_json::from_slice(&bytes[..newline]).map_err(|e| e.to_string())?;
        let kind = match header.kind {
            "chat.completion" => BodyKind::ChatCompletion,
            "message" => BodyKind::AnthropicMessage,
            "response" => BodyKind::Response,
            other => return Err(format!("unknown answer kind {other:?}")),
        };
        Ok(CachedAnswer {
            kind,
            model: header.model.to_owned(),
            usage: header.usage,
            body: Bytes::copy_from_slice(&bytes[newline + 1..]),
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
mod tests {
    use super::*;

    fn answer(body: &str) -> Arc<CachedAnswer> {
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
        assert_eq!(CachedAnswer::decode(&a.encode()).unwrap(), *a);
        assert!(CachedAnswer::decode(b"garbage").is_err());
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

    #[tokio::test]
    async fn memory_entries_expire_and_purge() {
        let store = MemoryAnswers::new(1 << 20);
        store
            .put("t:a|1".into(), answer("{}"), Duration::from_secs(60))
            .await;
        store
            .put("t:b|1".into(), answer("{}"), Duration::from_millis(30))
            .await;
        assert!(store.get("t:a|1").await.is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(store.get("t:b|1").await.is_none(), "expired entry served");
        store.purge(&Purge::Team("t:a".into())).await.unwrap();
        assert!(store.get("t:a|1").await.is_none(), "purged entry served");
    }
}
