//! The exact cache in Redis, shared by every replica: [`RedisAnswers`] implements
//! `switchyard-core`'s `AnswerStore`. An entry is one string, `{prefix}:cache:{tenant}|{hash}`,
//! holding the encoded answer, with the TTL as its expiry (`SET … PX`). A Redis that fails or is
//! slow makes a lookup a miss and a write a no-op (logged at most once a minute per kind):
//! the cache is never why a request fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use switchyard_core::cache::{AnswerStore, CachedAnswer, Purge};
use switchyard_core::request::unix_ms;

use crate::redis::Conn;

/// Keys deleted per `SCAN` page of a purge.
const PURGE_PAGE: usize = 500;

pub struct RedisAnswers {
    conn: Conn,
    /// When a failure was last logged (ms), so that a Redis outage is one line a minute.
    last_logged_ms: Arc<AtomicU64>,
}

impl RedisAnswers {
    /// A cache on `config.url` that connects on first use: a Redis that is down at start only
    /// makes lookups miss until it answers.
    pub fn connect_lazy(
        config: &switchyard_core::admit::config::RedisConfig,
    ) -> Result<RedisAnswers, String> {
        Ok(RedisAnswers::on(Conn::lazy(config)?))
    }

    pub(crate) fn on(conn: Conn) -> RedisAnswers {
        RedisAnswers {
            conn,
            last_logged_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:cache:{key}", self.conn.prefix)
    }

    fn log_failure(&self, what: &str, error: &str) {
        log_failure(&self.last_logged_ms, what, error);
    }

    /// The glob that selects a purge's keys (tenant ids are percent-encoded, so they hold no
    /// glob characters of their own).
    fn pattern(&self, purge: &Purge) -> Vec<String> {
        let prefix = format!("{}:cache:", self.conn.prefix);
        match purge {
            Purge::All => vec![format!("{prefix}*")],
            Purge::Team(team) => vec![format!("{prefix}{team}|*"), format!("{prefix}{team}/*")],
            Purge::Key(key) => vec![format!("{prefix}{key}|*"), format!("{prefix}*/{key}|*")],
        }
    }

    async fn delete_matching(&self, pattern: String) -> Result<u64, String> {
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let pattern = pattern.clone();
            let (next, keys): (u64, Vec<String>) = self
                .conn
                .call(|mut m| async move {
                    ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(PURGE_PAGE)
                        .query_async(&mut m)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .conn
                    .call(|mut m| async move {
                        ::redis::cmd("UNLINK").arg(&keys).query_async(&mut m).await
                    })
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

impl AnswerStore for RedisAnswers {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedAnswer>>> {
        Box::pin(async move {
            let key = self.key(key);
            let got: Result<Option<Vec<u8>>, String> = self
                .conn
                .call(
                    |mut m| async move { ::redis::cmd("GET").arg(&key).query_async(&mut m).await },
                )
                .await;
            match got {
                Ok(Some(bytes)) => match CachedAnswer::decode(bytes) {
                    Ok(answer) => Some(Arc::new(answer)),
                    Err(e) => {
                        self.log_failure("read", &format!("an entry does not decode: {e}"));
                        None
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    self.log_failure("read", &e);
                    None
                }
            }
        })
    }

    fn put(&self, key: String, value: Vec<u8>, ttl: Duration) {
        let conn = self.conn.clone();
        let failures = Arc::clone(&self.last_logged_ms);
        let key = self.key(&key);
        // Written off the response's path: the client does not wait for Redis.
        tokio::spawn(async move {
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set: Result<(), String> = conn
                .call(|mut m| async move {
                    ::redis::cmd("SET")
                        .arg(&key)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl_ms)
                        .query_async(&mut m)
                        .await
                })
                .await;
            if let Err(e) = set {
                log_failure(&failures, "write", &e);
            }
        });
    }

    fn purge<'a>(&'a self, purge: &'a Purge) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            let mut deleted = 0;
            for pattern in self.pattern(purge) {
                deleted += self.delete_matching(pattern).await?;
            }
            Ok(deleted)
        })
    }
}

/// Logs a failure unless one was logged less than a minute ago.
fn log_failure(last_logged_ms: &AtomicU64, what: &str, error: &str) {
    let now = u64::try_from(unix_ms()).unwrap_or(0);
    let last = last_logged_ms.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && last_logged_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            error,
            "cache {what} failed: served without the cache meanwhile"
        );
    }
}
