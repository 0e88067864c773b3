//! The semantic cache's vector index: exact (flat) nearest-neighbour search over normalised
//! embeddings, partitioned by scope, with the correctness guard applied to every candidate.
//!
//! A scope (the hash of model, system prompt, earlier turns, parameters and tenant, computed by
//! the caller) owns one contiguous row-major `Vec<f32>` of its vectors, so a lookup is one pass
//! of dot products over memory that the CPU prefetches well; the dot product is written with
//! eight accumulators over `chunks_exact(8)` so it compiles to SIMD. Candidates at or above the
//! threshold are tried best first; the first the guard does not refuse is the hit, else the best
//! refused one is reported so the caller can log why. Entries past their expiry are skipped and
//! swept lazily; past `max_entries` the oldest entry (across scopes) is evicted.
//!
//! Where exact search stops scaling (`bench/src/bin/cache-cost.rs`, 384-d, release build, one
//! core of the shared 2-core dev machine): a lookup scans a whole scope: 52 µs at 1,000
//! entries, 0.84 ms at 10,000, 27 ms at 100,000 (150 MB: the scan is memory-bound). Scopes are
//! small in practice (one model and system prompt of one tenant), so flat search is right up
//! to a few thousand entries per scope; beyond that, smaller vectors (int8 or f16) and then an
//! approximate index (HNSW) per scope are the steps to take. Memory: 1.5 KB of vector per entry
//! plus its signature.
//!
//! Concurrency: many readers, few writers. The scope map sits behind one `RwLock` and each scope
//! behind its own, so lookups in different scopes never contend and lookups in one scope only
//! wait for an insert into that scope. No lock is held across an `.await` (there are none).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::guard::{Guard, Refusal, Signature};

/// How often an insert sweeps its scope of expired entries even when no lookup saw one.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The result of [`SemanticIndex::lookup`].
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<V> {
    /// The most similar entry the guard accepts.
    Hit {
        value: V,
        similarity: f32,
    },
    /// Entries were similar enough but the guard refused all of them; the best one and why.
    Refused {
        similarity: f32,
        why: Refusal,
    },
    Miss,
}

pub struct SemanticIndex<V> {
    scopes: RwLock<HashMap<u64, Arc<RwLock<Scope<V>>>>>,
    /// (scope, entry id) in insertion order, for evicting the oldest. Holds ids already removed
    /// by purge or expiry too; eviction skips them and `compact_order` drops them.
    order: Mutex<VecDeque<(u64, u64)>>,
    max_entries: usize,
    len: AtomicUsize,
    next_id: AtomicU64,
}

struct Scope<V> {
    dimensions: usize,
    /// Row-major: entry `i`'s vector is `vectors[i * dimensions..(i + 1) * dimensions]`.
    vectors: Vec<f32>,
    entries: Vec<Entry<V>>,
    /// Entry id → row, kept in step with the swap-removes.
    rows: HashMap<u64, usize>,
    /// Set by a lookup that skipped an expired entry: the next insert sweeps.
    saw_expired: AtomicBool,
    next_sweep: Instant,
}

struct Entry<V> {
    id: u64,
    tenant: Box<str>,
    signature: Signature,
    value: V,
    expires_at: Instant,
}

impl<V: Clone> SemanticIndex<V> {
    /// An index holding at most `max_entries` entries across all scopes (0 stores nothing).
    pub fn new(max_entries: usize) -> Self {
        SemanticIndex {
            scopes: RwLock::new(HashMap::new()),
            order: Mutex::new(VecDeque::new()),
            max_entries,
            len: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
        }
    }

    /// Adds an entry to `scope`. `embedding` must be normalised (the score is a dot product)
    /// and have the scope's dimensions; one that does not (a different model under the same
    /// scope, which the scope hash should prevent) is dropped. Evicts the oldest entries past
    /// the cap.
    pub fn insert(
        &self,
        scope: u64,
        tenant: &str,
        embedding: Vec<f32>,
        signature: Signature,
        value: V,
        expires_at: Instant,
    ) {
        if self.max_entries == 0 || embedding.is_empty() {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            id,
            tenant: tenant.into(),
            signature,
            value,
            expires_at,
        };
        if !self.push(scope, embedding, entry) {
            return;
        }
        let mut order = lock(&self.order);
        order.push_back((scope, id));
        while self.len.load(Ordering::Relaxed) > self.max_entries {
            let Some((oldest_scope, oldest_id)) = order.pop_front() else {
                break;
            };
            self.remove_entry(oldest_scope, oldest_id);
        }
        if order.len() > 2 * self.len.load(Ordering::Relaxed) + 1024 {
            self.compact_order(&mut order);
        }
    }

    /// Pushes under the map lock (read, or write to create the scope) so that a scope being
    /// dropped as empty cannot swallow the entry.
    fn push(&self, scope: u64, embedding: Vec<f32>, entry: Entry<V>) -> bool {
        let scopes = read(&self.scopes);
        if let Some(existing) = scopes.get(&scope) {
            return self.push_into(&mut write(existing), embedding, entry);
        }
        drop(scopes);
        let mut scopes = write(&self.scopes);
        let created = scopes
            .entry(scope)
            .or_insert_with(|| Arc::new(RwLock::new(Scope::new(embedding.len()))));
        self.push_into(&mut write(created), embedding, entry)
    }

    fn push_into(&self, scope: &mut Scope<V>, embedding: Vec<f32>, entry: Entry<V>) -> bool {
        if scope.entries.is_empty() {
            scope.dimensions = embedding.len();
        }
        if embedding.len() != scope.dimensions {
            tracing::warn!(
                expected = scope.dimensions,
                got = embedding.len(),
                "semantic cache: embedding size differs from its scope's; not cached"
            );
            return false;
        }
        let now = Instant::now();
        if scope.saw_expired.swap(false, Ordering::Relaxed) || now >= scope.next_sweep {
            let swept = scope.sweep(now);
            self.len.fetch_sub(swept, Ordering::Relaxed);
        }
        scope.rows.insert(entry.id, scope.entries.len());
        scope.vectors.extend_from_slice(&embedding);
        scope.entries.push(entry);
        self.len.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The most similar entry of `scope` at or above `threshold` that has not expired and that
    /// `guard` does not refuse for `signature` (the incoming prompt's, from the same guard).
    pub fn lookup(
        &self,
        scope: u64,
        query: &[f32],
        signature: &Signature,
        threshold: f32,
        guard: &Guard,
    ) -> Lookup<V> {
        let Some(scope) = read(&self.scopes).get(&scope).cloned() else {
            return Lookup::Miss;
        };
        let scope = read(&scope);
        if query.len() != scope.dimensions || scope.entries.is_empty() {
            return Lookup::Miss;
        }
        let mut candidates: Vec<(f32, usize)> = scope
            .vectors
            .chunks_exact(scope.dimensions)
            .enumerate()
            .filter_map(|(row, vector)| {
                let similarity = dot(query, vector);
                (similarity >= threshold).then_some((similarity, row))
            })
            .collect();
        candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let now = Instant::now();
        let mut best_refused = Lookup::Miss;
        for (similarity, row) in candidates {
            let entry = &scope.entries[row];
            if entry.expires_at <= now {
                scope.saw_expired.store(true, Ordering::Relaxed);
                continue;
            }
            match guard.refuses_signatures(signature, &entry.signature) {
                None => {
                    return Lookup::Hit {
                        value: entry.value.clone(),
                        similarity,
                    };
                }
                Some(why) if matches!(best_refused, Lookup::Miss) => {
                    best_refused = Lookup::Refused { similarity, why };
                }
                Some(_) => {}
            }
        }
        best_refused
    }

    /// Removes every entry whose tenant starts with `tenant_prefix` ("" removes all); returns
    /// how many were removed.
    pub fn purge(&self, tenant_prefix: &str) -> usize {
        self.purge_if(|tenant| tenant.starts_with(tenant_prefix))
    }

    /// Removes every entry whose tenant `selected` picks; returns how many were removed.
    pub fn purge_if(&self, selected: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for scope in read(&self.scopes).values() {
            let mut scope = write(scope);
            for row in (0..scope.entries.len()).rev() {
                if selected(&scope.entries[row].tenant) {
                    scope.remove_row(row);
                    removed += 1;
                }
            }
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        self.drop_empty_scopes();
        removed
    }

    /// Removes expired entries from every scope; returns how many. Lookups and inserts sweep
    /// lazily on their own; this is for a periodic upkeep task.
    pub fn sweep_expired(&self) -> usize {
        let now = Instant::now();
        let swept: usize = read(&self.scopes)
            .values()
            .map(|scope| write(scope).sweep(now))
            .sum();
        self.len.fetch_sub(swept, Ordering::Relaxed);
        self.drop_empty_scopes();
        swept
    }

    /// Entries held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_entry(&self, scope_id: u64, id: u64) {
        let emptied = {
            let scopes = read(&self.scopes);
            let Some(scope) = scopes.get(&scope_id) else {
                return;
            };
            let mut scope = write(scope);
            let Some(&row) = scope.rows.get(&id) else {
                return;
            };
            scope.remove_row(row);
            self.len.fetch_sub(1, Ordering::Relaxed);
            scope.entries.is_empty()
        };
        if emptied {
            let mut scopes = write(&self.scopes);
            if scopes
                .get(&scope_id)
                .is_some_and(|s| read(s).entries.is_empty())
            {
                scopes.remove(&scope_id);
            }
        }
    }

    fn drop_empty_scopes(&self) {
        write(&self.scopes).retain(|_, scope| !read(scope).entries.is_empty());
    }

    /// Rebuilds the eviction order from the live entries (ids grow with insertion time).
    fn compact_order(&self, order: &mut VecDeque<(u64, u64)>) {
        let mut live: Vec<(u64, u64)> = Vec::with_capacity(self.len());
        for (&scope_id, scope) in read(&self.scopes).iter() {
            live.extend(read(scope).entries.iter().map(|e| (e.id, scope_id)));
        }
        live.sort_unstable();
        *order = live.into_iter().map(|(id, scope)| (scope, id)).collect();
    }
}

impl<V> Scope<V> {
    fn new(dimensions: usize) -> Self {
        Scope {
            dimensions,
            vectors: Vec::new(),
            entries: Vec::new(),
            rows: HashMap::new(),
            saw_expired: AtomicBool::new(false),
            next_sweep: Instant::now() + SWEEP_EVERY,
        }
    }

    /// Swap-removes `row`: the last row moves into its place.
    fn remove_row(&mut self, row: usize) {
        let last = self.entries.len() - 1;
        let width = self.dimensions;
        if row != last {
            self.vectors
                .copy_within(last * width..(last + 1) * width, row * width);
        }
        self.vectors.truncate(last * width);
        let removed = self.entries.swap_remove(row);
        self.rows.remove(&removed.id);
        if let Some(moved) = self.entries.get(row) {
            self.rows.insert(moved.id, row);
        }
    }

    fn sweep(&mut self, now: Instant) -> usize {
        self.next_sweep = now + SWEEP_EVERY;
        let mut swept = 0;
        for row in (0..self.entries.len()).rev() {
            if self.entries[row].expires_at <= now {
                self.remove_row(row);
                swept += 1;
            }
        }
        swept
    }
}

/// Dot product with eight independent accumulators over fixed-size chunks, so the compiler
/// vectorises the loop without bounds checks (one accumulator forces sequential float adds).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (chunks_a, tail_a) = a.as_chunks::<8>();
    let (chunks_b, tail_b) = b.as_chunks::<8>();
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    let mut sums = [0f32; 8];
    for (x, y) in chunks_a.iter().zip(chunks_b) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

// A panic while holding one of these locks leaves consistent data (every mutation completes
// before anything that can panic), so a poisoned lock is used as is.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn later() -> Instant {
        Instant::now() + HOUR
    }

    /// A unit vector along `axis` tilted toward `toward` by `tilt` (0 = exactly `axis`).
    fn unit(axis: usize, toward: usize, tilt: f32) -> Vec<f32> {
        let mut v = vec![0.0; 16];
        v[axis] = (1.0 - tilt * tilt).sqrt();
        v[toward] += tilt;
        v
    }

    fn insert(
        index: &SemanticIndex<&'static str>,
        guard: &Guard,
        scope: u64,
        tenant: &str,
        prompt: &'static str,
        v: Vec<f32>,
    ) {
        index.insert(scope, tenant, v, guard.signature(prompt), prompt, later());
    }

    #[test]
    fn the_closest_entry_above_the_threshold_hits() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        insert(
            &index,
            &guard,
            1,
            "team-a",
            "How do I reset my password?",
            unit(0, 1, 0.0),
        );
        insert(
            &index,
            &guard,
            1,
            "team-a",
            "How do I close my account?",
            unit(1, 0, 0.0),
        );
        let query = unit(0, 2, 0.3);
        let sig = guard.signature("What's the way to reset my password?");
        match index.lookup(1, &query, &sig, 0.9, &guard) {
            Lookup::Hit { value, similarity } => {
                assert_eq!(value, "How do I reset my password?");
                assert!((similarity - 0.9539).abs() < 1e-3, "{similarity}");
            }
            other => panic!("expected a hit, got {other:?}"),
        }
        assert_eq!(index.lookup(1, &query, &sig, 0.96, &guard), Lookup::Miss);
    }

    #[test]
    fn scopes_never_see_each_other() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        insert(
            &index,
            &guard,
            1,
            "team-a",
            "Summarise this",
            unit(0, 1, 0.0),
        );
        let sig = guard.signature("Summarise this");
        assert_eq!(
            index.lookup(2, &unit(0, 1, 0.0), &sig, 0.5, &guard),
            Lookup::Miss
        );
        assert!(matches!(
            index.lookup(1, &unit(0, 1, 0.0), &sig, 0.5, &guard),
            Lookup::Hit { .. }
        ));
    }

    #[test]
    fn a_refused_best_candidate_falls_back_to_the_next_one() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        insert(
            &index,
            &guard,
            1,
            "t",
            "Is the drug unsafe during pregnancy?",
            unit(0, 1, 0.05),
        );
        insert(
            &index,
            &guard,
            1,
            "t",
            "Is the drug safe while pregnant?",
            unit(0, 1, 0.3),
        );
        let sig = guard.signature("Is the drug safe during pregnancy?");
        match index.lookup(1, &unit(0, 1, 0.0), &sig, 0.9, &guard) {
            Lookup::Hit { value, .. } => assert_eq!(value, "Is the drug safe while pregnant?"),
            other => panic!("expected the paraphrase, got {other:?}"),
        }
        match index.lookup(1, &unit(0, 1, 0.0), &sig, 0.99, &guard) {
            Lookup::Refused { why, similarity } => {
                assert_eq!(why, Refusal::Antonym);
                assert!(similarity > 0.99);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn expired_entries_are_skipped_and_swept() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        let sig = guard.signature("hello");
        index.insert(1, "t", unit(0, 1, 0.0), sig.clone(), "old", Instant::now());
        assert_eq!(
            index.lookup(1, &unit(0, 1, 0.0), &sig, 0.5, &guard),
            Lookup::Miss
        );
        index.insert(1, "t", unit(1, 0, 0.0), sig.clone(), "new", later());
        assert_eq!(
            index.len(),
            1,
            "the insert after a lookup saw the expired entry sweeps it"
        );
        assert_eq!(index.sweep_expired(), 0);
    }

    #[test]
    fn the_oldest_entries_are_evicted_past_the_cap() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(2));
        let sig = guard.signature("same");
        for (axis, name) in [(0, "first"), (1, "second"), (2, "third")] {
            index.insert(
                u64::try_from(axis).unwrap_or(0) % 2,
                "t",
                unit(axis, 3, 0.0),
                sig.clone(),
                name,
                later(),
            );
        }
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.lookup(0, &unit(0, 3, 0.0), &sig, 0.9, &guard),
            Lookup::Miss
        );
        assert!(matches!(
            index.lookup(0, &unit(2, 3, 0.0), &sig, 0.9, &guard),
            Lookup::Hit { value: "third", .. }
        ));
        assert!(matches!(
            index.lookup(1, &unit(1, 3, 0.0), &sig, 0.9, &guard),
            Lookup::Hit {
                value: "second",
                ..
            }
        ));
    }

    #[test]
    fn purge_removes_by_tenant_prefix() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        let sig = guard.signature("same");
        for (axis, tenant) in [(0, "team:a"), (1, "team:a"), (2, "team:b"), (3, "key:c")] {
            index.insert(7, tenant, unit(axis, 4, 0.0), sig.clone(), tenant, later());
        }
        assert_eq!(index.purge("team:a"), 2);
        assert!(matches!(
            index.lookup(7, &unit(2, 4, 0.0), &sig, 0.9, &guard),
            Lookup::Hit {
                value: "team:b",
                ..
            }
        ));
        assert_eq!(
            index.lookup(7, &unit(0, 4, 0.0), &sig, 0.9, &guard),
            Lookup::Miss
        );
        assert_eq!(index.purge(""), 2);
        assert!(index.is_empty());
        index.insert(7, "t", unit(0, 4, 0.0), sig.clone(), "back", later());
        assert_eq!(
            index.len(),
            1,
            "inserting after a purge works and eviction order stays sound"
        );
    }

    #[test]
    fn a_vector_of_another_size_is_neither_stored_nor_matched() {
        let (guard, index) = (Guard::default(), SemanticIndex::new(100));
        let sig = guard.signature("x");
        index.insert(1, "t", unit(0, 1, 0.0), sig.clone(), "16-d", later());
        index.insert(1, "t", vec![1.0; 8], sig.clone(), "8-d", later());
        assert_eq!(index.len(), 1);
        assert_eq!(index.lookup(1, &[1.0; 8], &sig, 0.0, &guard), Lookup::Miss);
    }

    #[test]
    fn dot_matches_the_naive_sum_for_every_tail_length() {
        for len in [0, 1, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn concurrent_inserts_and_lookups_keep_the_count_right() {
        let guard = Arc::new(Guard::default());
        let index = Arc::new(SemanticIndex::new(500));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (guard, index) = (Arc::clone(&guard), Arc::clone(&index));
                std::thread::spawn(move || {
                    let sig = guard.signature("same prompt");
                    for i in 0..400u64 {
                        let v = unit(usize::try_from(i % 16).unwrap_or(0), 0, 0.0);
                        index.insert(i % 7, "t", v.clone(), sig.clone(), t, later());
                        let _ = index.lookup(i % 7, &v, &sig, 0.9, &guard);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        assert_eq!(index.len(), 500);
        assert_eq!(index.purge(""), 500);
    }
}
