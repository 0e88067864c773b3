//! The semantic half of a cache lookup: embeds the request's last user message, finds the most
//! similar cached prompt of the same scope (model, system prompt, earlier turns, parameters and
//! tenant) that the guard does not refuse, and remembers a missed prompt's embedding so that
//! storing its answer does not embed it twice.
//!
//! The index maps prompts to exact-cache keys rather than holding answers: one copy of each
//! answer (in process or in Redis), and a purge of the exact cache empties the semantic one too.
//! The index itself is in process: each replica learns its own prompts.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::guard::{Guard, Signature};
use super::index::{self, SemanticIndex};
use crate::cache::config::SemanticConfig;
use crate::cache::store::Purge;

/// Turns a prompt into a normalized vector: the in-process model, or an embeddings model of
/// the gateway.
pub trait Embedder: Send + Sync {
    fn embed<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<f32>, String>>;
}

/// A prompt that missed, ready to be indexed with its answer's key.
pub struct Remembered {
    scope: u64,
    tenant: String,
    embedding: Vec<f32>,
    signature: Signature,
}

/// What the semantic lookup found: the exact-cache key of the most similar answer the guard
/// accepts and its similarity, and the prompt embedded, to index with its own answer on a miss.
/// Both `None` when the prompt could not be embedded (logged).
#[derive(Default)]
pub struct Found {
    pub hit: Option<(Arc<str>, f32)>,
    pub prompt: Option<Remembered>,
}

pub struct Semantic {
    index: SemanticIndex<Arc<str>>,
    guard: Guard,
    embedder: OnceLock<Arc<dyn Embedder>>,
}

impl Semantic {
    pub fn new(config: &SemanticConfig) -> Semantic {
        let opposites: Vec<(String, String)> = (config.opposites.iter())
            .map(|[a, b]| (a.clone(), b.clone()))
            .collect();
        Semantic {
            index: SemanticIndex::new(config.max_entries),
            guard: Guard::new(&opposites),
            embedder: OnceLock::new(),
        }
    }

    /// Sets what embeds prompts (once, when the gateway starts).
    pub fn attach(&self, embedder: Arc<dyn Embedder>) {
        if self.embedder.set(embedder).is_err() {
            tracing::warn!("the semantic cache's embedder is already set; keeping the first");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.embedder.get().is_some()
    }

    /// `scope` already covers the tenant (see [`scoped`]).
    pub async fn find(&self, scope: u64, tenant: &str, text: &str, threshold: f32) -> Found {
        let Some(embedder) = self.embedder.get() else {
            return Found::default();
        };
        let embedding = match embedder.embed(text).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot embed a prompt for the semantic cache: exact cache only");
                return Found::default();
            }
        };
        let signature = self.guard.signature(text);
        let hit = match (self.index).lookup(scope, &embedding, &signature, threshold, &self.guard) {
            index::Lookup::Hit { value, similarity } => Some((value, similarity)),
            index::Lookup::Refused { similarity, why } => {
                tracing::debug!(
                    similarity,
                    why = why.as_str(),
                    "semantic candidate refused by the guard"
                );
                None
            }
            index::Lookup::Miss => None,
        };
        let prompt = Remembered {
            scope,
            tenant: tenant.to_owned(),
            embedding,
            signature,
        };
        Found {
            hit,
            prompt: Some(prompt),
        }
    }

    pub fn remember(&self, prompt: Remembered, key: Arc<str>, ttl: Duration) {
        let expires_at = Instant::now() + ttl;
        (self.index).insert(
            prompt.scope,
            &prompt.tenant,
            prompt.embedding,
            prompt.signature,
            key,
            expires_at,
        );
    }

    pub fn purge(&self, purge: &Purge) -> usize {
        self.index.purge_if(|tenant| purge.matches(tenant))
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// The index scope of a request: its semantic scope hash, with the tenant mixed in so that no
/// lookup ever compares with another tenant's prompts.
pub fn scoped(scope: u64, tenant: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    scope.hash(&mut h);
    tenant.hash(&mut h);
    h.finish()
}
