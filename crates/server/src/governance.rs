//! Start-up of governance: picks the counters (Redis when `redis.url` is set, else in-process),
//! the server secret keys are hashed under (config, else kept in the database), the virtual-key
//! cache over the database, and the Redis subscription that keeps every replica's cache fresh.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::Config;
use switchyard_core::admit::counters::{Counters, MemoryCounters};
use switchyard_core::admit::governor::GovernanceShared;
use switchyard_core::admit::history::SpendHistory;
use switchyard_core::auth::keys::{KeyHasher, VirtualKeys};
use switchyard_core::pipeline::Governance;
use switchyard_store::Database;
use switchyard_store::redis::RedisCounters;

use crate::admin::Admin;

/// Without Redis, a revoked key is trusted at most this long by another replica.
const KEY_CACHE_TTL_ALONE: Duration = Duration::from_secs(2);
/// With Redis, changes are pushed; the TTL only bounds a missed message.
const KEY_CACHE_TTL_WITH_REDIS: Duration = Duration::from_secs(300);

type Parts = (
    Governance,
    Option<Arc<Admin>>,
    Option<tokio::task::JoinHandle<()>>,
);

pub async fn build(config: &Config, db: Option<Database>) -> Result<Parts, String> {
    let redis = match &config.redis.url {
        Some(_) => Some(connect_redis(config).await?),
        None => None,
    };
    let counters: Arc<dyn Counters> = match &redis {
        Some(r) => Arc::new(r.clone()),
        None => Arc::new(MemoryCounters::default()),
    };
    // Budget windows start from the request log, where there is one.
    let history = db
        .clone()
        .filter(|_| config.records.store)
        .map(|db| Arc::new(db) as Arc<dyn SpendHistory>);
    let shared = GovernanceShared::with_history(counters, history);
    let Some(db) = db else {
        return Ok((
            Governance {
                shared,
                virtual_keys: None,
            },
            None,
            None,
        ));
    };
    let secret = match &config.governance.key_secret {
        Some(s) if !s.is_empty() => s.clone(),
        _ => {
            tracing::info!(
                "governance.key_secret is not set: virtual keys are hashed under a secret kept in the database"
            );
            db.key_secret()
                .await
                .map_err(|e| format!("database.url: cannot read the key secret: {e}"))?
        }
    };
    let default_ttl = if redis.is_some() {
        KEY_CACHE_TTL_WITH_REDIS
    } else {
        KEY_CACHE_TTL_ALONE
    };
    let ttl = config.governance.key_cache_ttl.unwrap_or(default_ttl);
    let keys = Arc::new(VirtualKeys::new(
        KeyHasher::new(secret.as_bytes()),
        Arc::new(db.clone()),
        ttl,
    ));
    let (events, subscription) = if let Some(redis) = &redis {
        let events = redis.key_events();
        let cache = keys.clone();
        let task = switchyard_store::redis::subscribe(&config.redis, move |hash| {
            if hash == "*" {
                cache.invalidate_all();
            } else {
                let cache = cache.clone();
                tokio::spawn(async move { cache.invalidate(&hash).await });
            }
        });
        (Some(events), Some(task))
    } else {
        (None, None)
    };
    let admin = Arc::new(Admin {
        db,
        keys: keys.clone(),
        events,
    });
    let governance = Governance {
        shared,
        virtual_keys: Some(keys),
    };
    Ok((governance, Some(admin), subscription))
}

/// Connects to Redis; a Redis that is down at start is not fatal: the gateway starts, the
/// `on_*_error` modes apply until Redis answers, and the connection recovers by itself.
async fn connect_redis(config: &Config) -> Result<RedisCounters, String> {
    match RedisCounters::connect(&config.redis).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::error!(error = %e, "Redis is unavailable at start; on_counter_error / on_budget_error apply until it answers");
            RedisCounters::connect_lazy(&config.redis).map_err(|e| format!("redis.url: {e}"))
        }
    }
}
