//! The in-process answer store: a few shards, each a ring of bytes that answers are written into
//! one after the other, and a small set-associative index from a key's hash to where its answer
//! lies. The oldest answers are overwritten as the ring comes round; an answer read while it is
//! about to be is written again at the front, so answers that are asked for stay.
//!
//! Why by hand rather than a general cache crate (moka, then quick_cache, were measured here):
//! the exact cache is written on every miss, and on a full cache a general one frees an evicted
//! entry's blocks, updates its eviction queues and ghost lists, and allocates the new entry's
//! blocks from memory the allocator last saw long ago: a dozen or more cold cache lines per
//! miss, which cost more than everything else the cache does. Here a miss touches one line of
//! the index and writes its answer next to the previous one; eviction is the writer moving on,
//! and an index entry that points at overwritten bytes is simply found dead when next looked at.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::store::{AnswerStore, CachedAnswer, Purge};

/// Index entries per bucket: 4 × 16 bytes, one cache line.
const WAYS: usize = 4;
/// Before each answer: its expiry (ms since the store was made), key length, answer length.
const HEADER: usize = 16;
/// A ring's bytes per index entry: answers are rarely smaller, so the index seldom overflows,
/// and it costs 1/16 to 1/8 of the store's size (buckets are a power of two).
const BYTES_PER_SLOT: usize = 256;

/// The in-process backend, bounded by `cache.max_size` (rings and index together).
pub struct MemoryAnswers {
    shards: Box<[Mutex<Ring>]>,
    hasher: foldhash::fast::FixedState,
    /// Expiries are kept as milliseconds since then.
    epoch: Instant,
}

impl MemoryAnswers {
    /// Holds at most `max_bytes` of answers, each at most `max_entry_bytes`.
    pub fn new(max_bytes: u64, max_entry_bytes: u64) -> MemoryAnswers {
        // Each shard holds its share of the bytes: fewer shards when that share would not hold
        // a few of the largest entries.
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        let fit = max_bytes / max_entry_bytes.max(1) / 4;
        let count = (parallel * 4)
            .min(usize::try_from(fit).unwrap_or(usize::MAX))
            .max(1);
        let share = usize::try_from(max_bytes).unwrap_or(usize::MAX) / count;
        let shards = (0..count).map(|_| Mutex::new(Ring::new(share))).collect();
        MemoryAnswers {
            shards,
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_cace),
            epoch: Instant::now(),
        }
    }

    /// The key's shard, locked, and its hash.
    fn shard(&self, key: &str) -> (MutexGuard<'_, Ring>, u64) {
        let hash = self.hasher.hash_one(key);
        let at = (hash >> 40) as usize % self.shards.len();
        let ring = self.shards[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        (ring, hash)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn get_now(&self, key: &str) -> Option<Arc<CachedAnswer>> {
        let now = self.now_ms();
        let encoded = {
            let (mut ring, hash) = self.shard(key);
            ring.read(hash, key, now)?
        };
        match CachedAnswer::decode(encoded) {
            Ok(answer) => Some(Arc::new(answer)),
            Err(e) => {
                tracing::warn!(error = %e, "a cached answer does not decode: dropped");
                let (mut ring, hash) = self.shard(key);
                ring.forget(hash, key);
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
        let expires = self.now_ms().saturating_add(ttl.as_millis() as u64);
        let (mut ring, hash) = self.shard(&key);
        ring.write(hash, &key, expires, &encoded);
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>> {
        let removed = self
            .shards
            .iter()
            .map(|shard| {
                let mut ring = shard.lock().unwrap_or_else(PoisonError::into_inner);
                ring.purge(purge)
            })
            .sum();
        Box::pin(std::future::ready(Ok(removed)))
    }
}

/// Where an answer lies: `tag` (never 0 when used) is more of the key's hash, `at` the answer's
/// place in all the bytes the ring has ever written, `len` its length with header and padding,
/// and in its top bit whether it was read since it was written.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    len: u32,
    at: u64,
}

const READ: u32 = 1 << 31;

impl Slot {
    fn len(&self) -> usize {
        (self.len & !READ) as usize
    }

    fn was_read(&self) -> bool {
        self.len & READ != 0
    }
}

/// One shard. Its buffer and index are allocated on the first write: a store that is never
/// written (the cache off) costs nothing.
struct Ring {
    capacity: usize,
    bytes: Vec<u8>,
    /// How many bytes have been written (or skipped at the end of a lap) since the start; the
    /// next answer goes at `written % capacity`.
    written: u64,
    slots: Vec<Slot>,
    buckets: usize,
}

impl Ring {
    fn new(share: usize) -> Ring {
        let buckets = (share / BYTES_PER_SLOT / WAYS).max(1).next_power_of_two();
        let index = buckets * WAYS * std::mem::size_of::<Slot>();
        Ring {
            capacity: share.saturating_sub(index) & !7,
            bytes: Vec::new(),
            written: 0,
            slots: Vec::new(),
            buckets,
        }
    }

    /// The slots of the bucket `hash` falls in, and the tag it would carry there.
    fn bucket(&self, hash: u64) -> (std::ops::Range<usize>, u32) {
        let first = (hash as usize & (self.buckets - 1)) * WAYS;
        let tag = (hash >> 32) as u32 | 1;
        (first..first + WAYS, tag)
    }

    /// Whether the bytes a slot points at are still all there (the writer has not come round
    /// to them).
    fn live(&self, slot: &Slot) -> bool {
        slot.tag != 0 && self.written <= slot.at + self.capacity as u64
    }

    fn entry(&self, slot: &Slot) -> &[u8] {
        let start = (slot.at % self.capacity as u64) as usize;
        &self.bytes[start..start + slot.len()]
    }

    /// The slot that holds `key`, if its answer is still there.
    fn find(&self, hash: u64, key: &str) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let (bucket, tag) = self.bucket(hash);
        bucket.into_iter().find(|&i| {
            let slot = &self.slots[i];
            slot.tag == tag && self.live(slot) && parts(self.entry(slot)).1 == key.as_bytes()
        })
    }

    /// A copy of the answer under `key`, unless it is missing or expired. An answer the
    /// writer is about to reach is written again at the front.
    fn read(&mut self, hash: u64, key: &str, now: u64) -> Option<Vec<u8>> {
        let i = self.find(hash, key)?;
        let slot = self.slots[i];
        let (expires, _, encoded) = parts(self.entry(&slot));
        if expires <= now {
            self.slots[i].tag = 0;
            return None;
        }
        let encoded = encoded.to_vec();
        let age = self.written - slot.at;
        if age > self.capacity as u64 / 4 * 3 {
            self.write(hash, key, expires, &encoded);
        } else {
            self.slots[i].len |= READ;
        }
        Some(encoded)
    }

    fn write(&mut self, hash: u64, key: &str, expires: u64, encoded: &[u8]) {
        let len = (HEADER + key.len() + encoded.len() + 7) & !7;
        if len > self.capacity || len >= READ as usize {
            return;
        }
        if self.bytes.is_empty() {
            // Zeroed by the OS, page by page as the writer reaches it.
            self.bytes = vec![0; self.capacity];
            self.slots = vec![Slot::default(); self.buckets * WAYS];
        }
        let mut start = (self.written % self.capacity as u64) as usize;
        if start + len > self.capacity {
            // An answer never wraps: the rest of this lap is skipped.
            self.written += (self.capacity - start) as u64;
            start = 0;
        }
        let out = &mut self.bytes[start..start + len];
        out[..8].copy_from_slice(&expires.to_le_bytes());
        out[8..12].copy_from_slice(&(key.len() as u32).to_le_bytes());
        out[12..16].copy_from_slice(&(encoded.len() as u32).to_le_bytes());
        out[HEADER..HEADER + key.len()].copy_from_slice(key.as_bytes());
        out[HEADER + key.len()..HEADER + key.len() + encoded.len()].copy_from_slice(encoded);
        let slot = Slot {
            tag: self.bucket(hash).1,
            len: len as u32,
            at: self.written,
        };
        self.written += len as u64;
        let i = self.victim(hash, key);
        self.slots[i] = slot;
    }

    /// Where a new answer for `key` is indexed: the slot of its older answer, else a free or
    /// dead one, else the oldest of the bucket not read since it was written (a second chance:
    /// when all were, none is spared).
    fn victim(&mut self, hash: u64, key: &str) -> usize {
        if let Some(i) = self.find(hash, key) {
            return i;
        }
        let (bucket, _) = self.bucket(hash);
        if let Some(free) = bucket.clone().find(|&i| !self.live(&self.slots[i])) {
            return free;
        }
        let oldest = |read: bool| {
            let slots = &self.slots;
            bucket
                .clone()
                .filter(|&i| read || !slots[i].was_read())
                .min_by_key(|&i| slots[i].at)
        };
        if let Some(unread) = oldest(false) {
            return unread;
        }
        let oldest = oldest(true).unwrap_or(bucket.start);
        for i in bucket {
            self.slots[i].len &= !READ;
        }
        oldest
    }

    fn forget(&mut self, hash: u64, key: &str) {
        if let Some(i) = self.find(hash, key) {
            self.slots[i].tag = 0;
        }
    }

    fn purge(&mut self, purge: &Purge) -> u64 {
        let mut removed = 0;
        for i in 0..self.slots.len() {
            let slot = self.slots[i];
            if !self.live(&slot) {
                continue;
            }
            let key = std::str::from_utf8(parts(self.entry(&slot)).1);
            if key.is_ok_and(|key| purge.matches(key)) {
                self.slots[i].tag = 0;
                removed += 1;
            }
        }
        removed
    }
}

/// An entry's expiry, key and answer.
fn parts(entry: &[u8]) -> (u64, &[u8], &[u8]) {
    let word = |range: std::ops::Range<usize>| {
        let mut le = [0u8; 8];
        le[..range.len()].copy_from_slice(&entry[range]);
        u64::from_le_bytes(le)
    };
    let (expires, key_len, len) = (word(0..8), word(8..12), word(12..16));
    let key_end = HEADER + key_len as usize;
    (
        expires,
        &entry[HEADER..key_end],
        &entry[key_end..key_end + len as usize],
    )
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::answer;
    use super::*;

    fn key(team: &str, n: usize) -> String {
        format!("t:{team}|{n:064}")
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn entries_expire_and_purge() {
        let store = MemoryAnswers::new(1 << 20, 1 << 10);
        let (a, b, c) = (key("a", 1), key("b", 2), key("c", 3));
        store.put(a.clone(), answer("{}").encode(), HOUR);
        store.put(b.clone(), answer("{}").encode(), Duration::from_millis(30));
        store.put(c.clone(), answer("[]").encode(), HOUR);
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

    #[tokio::test]
    async fn a_full_store_keeps_the_newest_answers_and_never_serves_a_wrong_one() {
        // 64 KB in shards of at least 4 KB entries: each ring comes round many times.
        let store = MemoryAnswers::new(64 << 10, 1 << 10);
        let body = |n: usize| format!("[{n},\"{}\"]", "x".repeat(300));
        let total = 5_000;
        for n in 0..total {
            store.put(key("a", n), answer(&body(n)).encode(), HOUR);
        }
        let mut found = 0;
        for n in 0..total {
            if let Some(got) = store.get(&key("a", n)).await {
                assert_eq!(got, answer(&body(n)), "answer {n} served for another");
                found += 1;
            }
        }
        // Entries of ~500 bytes: at most ~120 fit in 64 KB; the last ones written are there.
        assert!((40..=130).contains(&found), "{found} answers kept");
        for n in total - 10..total {
            assert!(store.get(&key("a", n)).await.is_some(), "newest {n} lost");
        }
        assert!(store.get(&key("a", 0)).await.is_none(), "oldest kept");
    }

    #[tokio::test]
    async fn an_answer_that_is_asked_for_stays() {
        let store = MemoryAnswers::new(64 << 10, 1 << 10);
        let hot = key("a", 999_999);
        store.put(hot.clone(), answer("hot").encode(), HOUR);
        let filler = answer(&"x".repeat(300)).encode();
        for n in 0..5_000 {
            store.put(key("a", n), filler.clone(), HOUR);
            if n % 4 == 0 {
                assert!(store.get(&hot).await.is_some(), "hot answer lost by {n}");
            }
        }
    }

    #[tokio::test]
    async fn a_new_answer_replaces_the_old_and_an_oversized_one_is_not_kept() {
        let store = MemoryAnswers::new(64 << 10, 1 << 10);
        store.put(key("a", 1), answer("old").encode(), HOUR);
        store.put(key("a", 1), answer("new").encode(), HOUR);
        assert_eq!(store.get(&key("a", 1)).await, Some(answer("new")));
        assert_eq!(store.purge(&Purge::All).await, Ok(1));
        let huge = "x".repeat(128 << 10);
        store.put(key("a", 2), answer(&huge).encode(), HOUR);
        assert!(store.get(&key("a", 2)).await.is_none());
    }
}
