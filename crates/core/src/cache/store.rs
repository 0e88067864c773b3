//! Where exact-cache entries live: [`AnswerStore`] is the seam, [`MemoryAnswers`] the in-process
//! backend (quick_cache, bounded by bytes, a TTL per entry); the Redis backend, shared by replicas, is
//! in `switchyard-store`. An entry is a [`CachedAnswer`] as [`encode_answer`] writes it: a header
//! line (kind, model, usage), then the answer's bytes as they were sent, in the API they were sent
//! in, so a hit decodes its header line and serves the body as it is.

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

/// The in-process backend: a `quick_cache` (S3-FIFO eviction, weighed in bytes), each entry
/// carrying its own expiry, checked when it is read (an expired entry never read again ages out
/// like any cold one).
///
/// The cache is written on every miss, so what a write leaves behind matters more than what a
/// read costs. quick_cache's insert is a hash-table insert under a shard lock (moka's per-entry
/// expiry wheel and write buffers cost several times more). And an entry is two allocations, its
/// key and one block holding the answer as [`CachedAnswer::encode`] writes it, rather than the
/// six of a key and the answer's own parts (body, the body's shared header, model, usage, the
/// `Arc`): every block a cached answer holds is freed cold when it is evicted and handed out
/// cold again by the allocator, on the path of a later request. Measured on a full cache, that
/// cost more than the cache's own work.
pub struct MemoryAnswers {
    entries: quick_cache::sync::Cache<String, Entry, ByBytes>,
}

#[derive(Clone)]
struct Entry {
    encoded: Arc<[u8]>,
    expires: Instant,
}

/// An entry weighs its key, its encoded answer and what the allocator and the table add.
#[derive(Clone)]
struct ByBytes;

impl quick_cache::Weighter<String, Entry> for ByBytes {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        (key.len() + entry.encoded.len() + 96) as u64
    }
}

impl MemoryAnswers {
    /// Holds at most `max_bytes` of answers, each at most `max_entry_bytes`.
    pub fn new(max_bytes: u64, max_entry_bytes: u64) -> MemoryAnswers {
        // Each shard holds its share of the bytes: fewer shards when that share would not hold
        // a few of the largest entries.
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        let fit = max_bytes / max_entry_bytes.max(1) / 4;
        let shards = (parallel * 4)
            .min(usize::try_from(fit).unwrap_or(usize::MAX))
            .max(1);
        // A guess at the number of entries, for the table's first size; it grows when wrong.
        let estimate = usize::try_from(max_bytes >> 10).map_or(1 << 16, |n| n.min(1 << 16));
        let options = quick_cache::OptionsBuilder::new()
            .shards(shards)
            .weight_capacity(max_bytes)
            .estimated_items_capacity(estimate.max(16))
            .build()
            .expect("weight capacity and item estimate are set");
        let entries = quick_cache::sync::Cache::with_options(
            options,
            ByBytes,
            Default::default(),
            Default::default(),
        );
        MemoryAnswers { entries }
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedAnswer>> {
        let entry = self.entries.get(key)?;
        let now = Instant::now();
        if entry.expires <= now {
            self.entries.remove_if(key, |e| e.expires <= now);
            return None;
        }
        match CachedAnswer::decode(&entry.encoded) {
            Ok(answer) => Some(Arc::new(answer)),
            Err(e) => {
                tracing::warn!(error = %e, "a cached answer does not decode: dropped");
                self.entries.remove(key);
                None
            }
        }
    }
}

impl AnswerStore for MemoryAnswers {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedAnswer>>> {
        Box::pin(std::future::ready(self.get_now(key)))
    }

    fn put(&self, key: String, encoded: Vec<u8>, ttl: Duration) {
        let entry = Entry {
            // Copied into a block of its own size, with the counts beside it: the one block
            // the answer holds.
            encoded: encoded.into(),
            expires: Instant::now() + ttl,
        };
        self.entries.insert(key, entry);
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>> {
        let before = self.entries.len();
        self.entries.retain(|key, _| !purge.matches(key));
        let removed = before.saturating_sub(self.entries.len()) as u64;
        Box::pin(std::future::ready(Ok(removed)))
    }
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

    pub fn decode(bytes: &[u8]) -> Result<CachedAnswer, String> {
        let newline = memchr::memchr(b'\n', bytes).ok_or("no header line")?;
        let header: ReadHeader<'_> =
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
        let store = MemoryAnswers::new(1 << 20, 1 << 10);
        let (a, b, c) = (
            format!("t:a|{}", "1".repeat(64)),
            format!("t:b|{}", "2".repeat(64)),
            format!("t:c|{}", "3".repeat(64)),
        );
        let ttl = Duration::from_secs(60);
        store.put(a.clone(), answer("{}").encode(), ttl);
        store.put(b.clone(), answer("{}").encode(), Duration::from_millis(30));
        store.put(c.clone(), answer("[]").encode(), ttl);
        assert_eq!(store.get(&a).await, Some(answer("{}")));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(store.get(&b).await.is_none(), "expired entry served");
        assert_eq!(store.purge(&Purge::Team("t:a".into())).await, Ok(1));
        assert!(store.get(&a).await.is_none(), "purged entry served");
        assert_eq!(
            store.get(&c).await,
            Some(answer("[]")),
            "purge took another team's"
        );
    }
}
