//! Virtual keys: the keys Switchyard issues to applications, what is stored of them, and how a
//! presented key becomes a [`Principal`] on the hot path.
//!
//! A key is `sk-sy-` followed by 43 random base62 characters (256 bits). The store never sees
//! it: it keeps [`KeyHasher::hash`], an HMAC-SHA256 under a server secret, and a display
//! prefix. High-entropy keys need no slow password hash, and the secret means a stolen table
//! cannot even be used to test guesses.
//!
//! [`VirtualKeys`] resolves a key through an in-process cache (moka) in front of the
//! [`KeyLookup`] store: once warm, a request costs one HMAC and one hash-map read, never a
//! database round trip. Unknown keys are cached too (briefly), so a flood of bad keys cannot
//! reach the database either. Entries expire after a TTL and are dropped at once when an
//! invalidation arrives (Redis pub/sub between replicas, see `switchyard-store`), which is how a
//! revocation reaches every replica within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Principal, PrincipalLimits};
use crate::admit::limits::Limits;
use crate::error::GatewayError;
use crate::request::unix_ms;

pub const KEY_PREFIX: &str = "sk-sy-";
const KEY_RANDOM_CHARS: usize = 43;
/// Characters of a key kept for display: `sk-sy-` and four of the random part.
const DISPLAY_CHARS: usize = 10;

/// A virtual key as stored: everything but the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    /// The first characters of the key, to recognise it (`sk-sy-Ab3x…`).
    pub prefix: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub team_id: Option<String>,
    /// Models and route aliases the key may call; `None` means all.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
    #[serde(default)]
    pub revoked_at_ms: Option<i64>,
    /// Set on a key that was rotated: the key that replaced it.
    #[serde(default)]
    pub replaced_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A user or a team: who keys belong to, with limits of their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// For a user: the team it belongs to (its keys are held to that team's limits too).
    #[serde(default)]
    pub team_id: Option<String>,
    /// Models and aliases allowed to every key of this user or team; `None` means all.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub metadata: serde_json::Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Where keys, users and teams are read from on a cache miss.
pub trait KeyLookup: Send + Sync {
    fn key_by_hash<'a>(&'a self, hash: &'a str)
    -> BoxFuture<'a, Result<Option<KeyRecord>, String>>;
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>>;
    fn team<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>>;
}

/// Makes keys and computes the stored hash of a key.
#[derive(Clone)]
pub struct KeyHasher {
    /// The HMAC with the secret already absorbed: each hash starts from a copy of it, which
    /// saves the two block compressions of keying (half the cost of a hash) on every request.
    keyed: Hmac<Sha256>,
}

impl KeyHasher {
    pub fn new(secret: &[u8]) -> KeyHasher {
        // An HMAC accepts a key of any length: new_from_slice cannot fail.
        let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        KeyHasher { keyed }
    }

    /// HMAC-SHA256 of `key` under the server secret, hex-encoded.
    pub fn hash(&self, key: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new random key and its display prefix.
    pub fn generate() -> (String, String) {
        const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut rng = rand::rng();
        let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_RANDOM_CHARS);
        key.push_str(KEY_PREFIX);
        for _ in 0..KEY_RANDOM_CHARS {
            key.push(BASE62[rng.random_range(0..BASE62.len())] as char);
        }
        let prefix = format!("{}…", &key[..DISPLAY_CHARS]);
        (key, prefix)
    }
}

/// What the cache holds for a key hash.
#[derive(Clone)]
enum Resolved {
    Known(Arc<Principal>),
    Unknown,
}

/// How long an unknown key stays cached: short, so that a key created on another replica
/// works at once even where no invalidation reaches this one.
const UNKNOWN_TTL: Duration = Duration::from_secs(1);
const CACHE_CAPACITY: u64 = 100_000;

/// Virtual-key authentication through the cache.
pub struct VirtualKeys {
    hasher: KeyHasher,
    store: Arc<dyn KeyLookup>,
    known: moka::future::Cache<String, Resolved>,
    unknown: moka::future::Cache<String, Resolved>,
    lookups: AtomicU64,
    store_errors: AtomicU64,
}

impl VirtualKeys {
    /// `ttl`: how long a resolved key is trusted without asking the store again.
    pub fn new(hasher: KeyHasher, store: Arc<dyn KeyLookup>, ttl: Duration) -> VirtualKeys {
        let cache = |ttl| {
            moka::future::Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(ttl)
                .build()
        };
        VirtualKeys {
            hasher,
            store,
            known: cache(ttl),
            unknown: cache(UNKNOWN_TTL.min(ttl)),
            lookups: AtomicU64::new(0),
            store_errors: AtomicU64::new(0),
        }
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// Forgets one key (by its stored hash), e.g. after it was revoked or edited.
    pub async fn invalidate(&self, hash: &str) {
        self.known.invalidate(hash).await;
        self.unknown.invalidate(hash).await;
    }

    /// Forgets every key, e.g. after a user's or team's limits changed.
    pub fn invalidate_all(&self) {
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// Store lookups so far (cache misses), and how many of them failed.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.lookups.load(Ordering::Relaxed),
            self.store_errors.load(Ordering::Relaxed),
        )
    }

    pub async fn authenticate(&self, key: &str) -> Result<Principal, GatewayError> {
        let hash = self.hasher.hash(key);
        let resolved = match self.known.get(&hash).await {
            Some(r) => r,
            None => match self.unknown.get(&hash).await {
                Some(r) => r,
                None => self.load(hash).await?,
            },
        };
        let Resolved::Known(principal) = resolved else {
            return Err(invalid_key());
        };
        if principal
            .expires_at_ms
            .is_some_and(|expires| expires <= unix_ms())
        {
            return Err(GatewayError::unauthorized(
                "this API key has expired: ask your Switchyard admin for a new one",
            )
            .with_code("key_expired"));
        }
        Ok(Principal::clone(&principal))
    }

    async fn load(&self, hash: String) -> Result<Resolved, GatewayError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        match self.resolve(&hash).await {
            Ok(Some(principal)) => {
                let r = Resolved::Known(Arc::new(principal));
                self.known.insert(hash, r.clone()).await;
                Ok(r)
            }
            Ok(None) => {
                self.unknown.insert(hash, Resolved::Unknown).await;
                Ok(Resolved::Unknown)
            }
            Err(e) => {
                self.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "cannot look up a virtual key: the database is unavailable");
                Err(GatewayError::new(
                    503,
                    "api_error",
                    "key_store_unavailable",
                    "the gateway cannot check API keys right now (its database is unavailable); retry shortly",
                ))
            }
        }
    }

    /// The principal of a stored key, with its user's and team's limits; `None` for a key that
    /// does not exist or was revoked.
    async fn resolve(&self, hash: &str) -> Result<Option<Principal>, String> {
        let Some(key) = self.store.key_by_hash(hash).await? else {
            return Ok(None);
        };
        if key.revoked_at_ms.is_some() {
            return Ok(None);
        }
        let user = match &key.user_id {
            Some(id) => self.store.user(id).await?,
            None => None,
        };
        let team_id = key
            .team_id
            .clone()
            .or_else(|| user.as_ref().and_then(|u| u.team_id.clone()));
        let team = match &team_id {
            Some(id) => self.store.team(id).await?,
            None => None,
        };
        Ok(Some(principal_of(key, user, team, team_id)))
    }
}

fn principal_of(
    key: KeyRecord,
    user: Option<Member>,
    team: Option<Member>,
    team_id: Option<String>,
) -> Principal {
    // A model must be allowed at every level that restricts models.
    let allowed_models = [
        Some(&key.models),
        user.as_ref().map(|u| &u.models),
        team.as_ref().map(|t| &t.models),
    ]
    .into_iter()
    .flatten()
    .flatten()
    .fold(None::<Vec<String>>, |acc, list| match acc {
        None => Some(list.clone()),
        Some(acc) => Some(acc.into_iter().filter(|m| list.contains(m)).collect()),
    });
    Principal {
        key_id: Some(key.id),
        user: key.user_id,
        team: team_id,
        tags: key.tags,
        allowed_models,
        expires_at_ms: key.expires_at_ms,
        limits: Some(Arc::new(PrincipalLimits {
            key: key.limits,
            user: user.map(|u| u.limits),
            team: team.map(|t| t.limits),
        })),
    }
}

pub(crate) fn invalid_key() -> GatewayError {
    GatewayError::unauthorized("invalid API key: check the key your client sends to Switchyard")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed_under_the_secret() {
        let (a, prefix) = KeyHasher::generate();
        let (b, _) = KeyHasher::generate();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + KEY_RANDOM_CHARS);
        assert!(prefix.starts_with(&a[..DISPLAY_CHARS]));
        let h1 = KeyHasher::new(b"one").hash(&a);
        assert_eq!(h1.len(), 64);
        assert_eq!(h1, KeyHasher::new(b"one").hash(&a));
        assert_ne!(h1, KeyHasher::new(b"two").hash(&a));
        assert!(!h1.contains(&a[KEY_PREFIX.len()..]));
    }

    #[test]
    fn models_must_be_allowed_at_every_level() {
        let key = KeyRecord {
            models: Some(vec!["a".into(), "b".into()]),
            ..KeyRecord::default()
        };
        let team = Member {
            models: Some(vec!["b".into(), "c".into()]),
            ..Member::default()
        };
        let p = principal_of(key, None, Some(team), Some("t".into()));
        assert!(p.may_use("b"));
        assert!(!p.may_use("a") && !p.may_use("c"));
        let open = principal_of(KeyRecord::default(), None, None, None);
        assert!(open.may_use("anything"));
    }
}
