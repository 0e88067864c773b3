//! Redis: the state that several replicas of the gateway must share to act as one.
//!
//! This module owns two things, both under the `redis.prefix` of the config so that several
//! gateways can share one Redis:
//!
//! - [`RedisCounters`], the shared implementation of `switchyard-core`'s [`Counters`]: the same
//!   all-or-nothing arithmetic as the in-process `MemoryCounters`, done by one Lua script per
//!   reservation so that no other replica can slip in between a check and an increment. Keys are
//!   `{prefix}:c:{counter}` and expire with their window.
//! - [`KeyEvents`] and [`subscribe`], the invalidation bus of the virtual-key cache: a replica
//!   that changes or revokes a key publishes on `{prefix}:keys`, and every replica's subscriber
//!   drops what it cached. A subscriber that lost its connection cannot know what it missed, so
//!   after every (re)subscription it reports `"*"`: everything may have changed.
//!
//! Redis is on the request path, so nothing here may hang or panic: every call is bounded by
//! `redis.timeout` and fails with a [`CounterError`] (or a `String`) naming the URL, password
//! masked; the caller's `on_*_error` mode decides what a failure means. Connections are
//! [`ConnectionManager`]s, which reconnect by themselves after Redis comes back.
//!
//! What the counters mean, and when they are reserved and settled, is decided in
//! `switchyard-core`; this module only does the arithmetic.

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script, Value};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use switchyard_core::admit::config::RedisConfig;
use switchyard_core::admit::counters::{Charge, CounterError, Counters, Reserved};
use tokio::task::JoinHandle;

use crate::db::mask_url;

/// How long [`RedisCounters::connect`] and [`KeyEvents::connect`] wait for a first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one TCP connection attempt of a [`ConnectionManager`] may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection attempts per failure, and their delays. Few and short: while Redis is down, a
/// call fails fast (connection refused) instead of waiting out its timeout behind a long retry
/// loop, and the next call starts a new attempt.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// The TTL given by [`Counters::adjust`] to a counter that had expired and is created again, so
/// that no key lives forever (the same as `MemoryCounters`).
const ADJUST_TTL_MS: i64 = 3_600_000;
/// The subscriber's reconnection backoff: doubles from the first to the second.
const SUBSCRIBE_MIN_BACKOFF: Duration = Duration::from_millis(100);
const SUBSCRIBE_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often an idle subscriber checks its connection with a PING (a connection whose peer
/// vanished without closing it would otherwise look idle forever), and how long the PONG may
/// take.
const SUBSCRIBE_PING_EVERY: Duration = Duration::from_secs(15);
const SUBSCRIBE_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The reservation, atomically. `KEYS[i]` is charge `i`'s counter; `ARGV[3i-2]`, `ARGV[3i-1]`,
/// `ARGV[3i]` are its amount, its limit (`""` when unchecked) and its TTL in milliseconds.
///
/// First pass: every checked charge must fit (each against the counter as it is, like
/// `MemoryCounters`), else `{0, index (0-based), current}` and nothing is written. Second pass:
/// `INCRBY` and `PEXPIRE` each counter; `{1, new values…}`.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 1, #KEYS do
  local limit = ARGV[3 * i - 1]
  if limit ~= '' then
    local current = tonumber(redis.call('GET', KEYS[i]) or '0')
    if current + tonumber(ARGV[3 * i - 2]) > tonumber(limit) then
      return {0, i - 1, current}
    end
  end
end
local out = {1}
for i = 1, #KEYS do
  out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
  redis.call('PEXPIRE', KEYS[i], ARGV[3 * i])
end
return out
",
    )
});

/// The settlement: `INCRBY KEYS[i] ARGV[i]` for each counter, keeping its TTL; a counter left
/// without one (it had expired and was created again) gets `ARGV[#KEYS + 1]` milliseconds.
/// Returns the new values.
static ADJUST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ttl = ARGV[#KEYS + 1]
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('INCRBY', KEYS[i], ARGV[i])
  if redis.call('PTTL', KEYS[i]) == -1 then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return out
",
    )
});

/// One managed connection and what every call needs to report on it. Cloning is cheap: the
/// connection is shared (multiplexed).
#[derive(Clone)]
pub(crate) struct Conn {
    pub(crate) manager: ConnectionManager,
    /// The URL with its password masked, for messages.
    pub(crate) shown: String,
    pub(crate) prefix: String,
    timeout: Duration,
}

impl Conn {
    /// A manager that connects on first use.
    pub(crate) fn lazy(config: &RedisConfig) -> Result<Conn, String> {
        let (client, shown) = open(config)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(ATTEMPT_TIMEOUT))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| format!("redis at {shown}: {e}"))?;
        Ok(Conn {
            manager,
            shown,
            prefix: config.prefix.clone(),
            timeout: config.timeout,
        })
    }

    /// A manager whose first connection answered a PING within [`CONNECT_TIMEOUT`].
    async fn connect(config: &RedisConfig) -> Result<Conn, String> {
        let conn = Conn::lazy(config)?;
        let mut manager = conn.manager.clone();
        let ping = async move {
            ::redis::cmd("PING")
                .query_async::<String>(&mut manager)
                .await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, ping).await {
            Ok(Ok(_)) => {
                tracing::info!(url = %conn.shown, prefix = %conn.prefix, "connected to Redis");
                Ok(conn)
            }
            Ok(Err(e)) => Err(format!("redis at {}: {e}", conn.shown)),
            Err(_) => Err(format!(
                "redis at {}: no answer within {CONNECT_TIMEOUT:?}",
                conn.shown
            )),
        }
    }

    /// Runs `call` on the connection within the timeout.
    pub(crate) async fn call<T, F>(
        &self,
        call: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, String>
    where
        F: Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.timeout, call(self.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("redis at {}: {e}", self.shown)),
            Err(_) => Err(format!(
                "redis at {}: no answer within {:?}",
                self.shown, self.timeout
            )),
        }
    }

    fn counter_key(&self, key: &str) -> String {
        format!("{}:c:{key}", self.prefix)
    }
}

/// The client for `config.url`, and the URL as it may be shown.
fn open(config: &RedisConfig) -> Result<(Client, String), String> {
    let Some(url) = config.url.as_deref().map(str::trim) else {
        return Err("redis.url is not set".into());
    };
    let shown = mask_url(url);
    let client = Client::open(url).map_err(|e| format!("invalid redis URL {shown}: {e}"))?;
    Ok((client, shown))
}

/// The channel of key invalidations.
fn keys_channel(prefix: &str) -> String {
    format!("{prefix}:keys")
}

/// Counters in Redis, shared by every replica. Cloning is cheap (the connection is shared).
#[derive(Clone)]
pub struct RedisCounters {
    conn: Conn,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("url", &self.conn.shown)
            .field("prefix", &self.conn.prefix)
            .finish()
    }
}

impl RedisCounters {
    /// Connects to `config.url`: fails within seconds if Redis does not answer, with the URL
    /// (password masked) in the message. Once connected, a lost connection is re-established
    /// by itself; calls fail meanwhile.
    pub async fn connect(config: &RedisConfig) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            conn: Conn::connect(config).await?,
        })
    }

    /// Like [`RedisCounters::connect`] without waiting for Redis: only an unusable URL fails.
    /// The connection is opened by the first call, so a gateway can start while Redis is down
    /// (its calls fail, and the `on_*_error` modes apply, until Redis answers).
    pub fn connect_lazy(config: &RedisConfig) -> Result<RedisCounters, String> {
        Ok(RedisCounters {
            conn: Conn::lazy(config)?,
        })
    }

    /// The publisher of key invalidations on this connection.
    pub fn key_events(&self) -> KeyEvents {
        KeyEvents::on(self.conn.clone())
    }

    async fn reserve_charges(&self, charges: &[Charge]) -> Result<Reserved, CounterError> {
        if charges.is_empty() {
            return Ok(Reserved::Admitted(Vec::new()));
        }
        let mut invocation = RESERVE.prepare_invoke();
        for c in charges {
            let ttl_ms = i64::try_from(c.ttl.as_millis()).unwrap_or(i64::MAX).max(1);
            invocation
                .key(self.conn.counter_key(&c.key))
                .arg(c.amount)
                .arg(c.limit.map_or_else(String::new, |l| l.to_string()))
                .arg(ttl_ms);
        }
        let reply: Vec<i64> = self
            .conn
            .call(|mut m| async move { invocation.invoke_async(&mut m).await })
            .await
            .map_err(CounterError)?;
        match reply.as_slice() {
            [1, values @ ..] if values.len() == charges.len() => {
                Ok(Reserved::Admitted(values.to_vec()))
            }
            [0, index, current] if usize::try_from(*index).is_ok_and(|i| i < charges.len()) => {
                Ok(Reserved::Denied {
                    index: *index as usize,
                    current: *current,
                })
            }
            other => Err(CounterError(format!(
                "redis at {}: unexpected reply to the reservation script: {other:?}",
                self.conn.shown
            ))),
        }
    }

    async fn adjust_deltas(&self, deltas: &[(String, i64)]) -> Result<Vec<i64>, CounterError> {
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = ADJUST.prepare_invoke();
        for (key, delta) in deltas {
            invocation.key(self.conn.counter_key(key)).arg(*delta);
        }
        invocation.arg(ADJUST_TTL_MS);
        let values: Vec<i64> = self
            .conn
            .call(|mut m| async move { invocation.invoke_async(&mut m).await })
            .await
            .map_err(CounterError)?;
        if values.len() != deltas.len() {
            return Err(CounterError(format!(
                "redis at {}: {} values for {} counters from the adjustment script",
                self.conn.shown,
                values.len(),
                deltas.len()
            )));
        }
        Ok(values)
    }

    async fn read_keys(&self, keys: &[String]) -> Result<Vec<i64>, CounterError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = ::redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.conn.counter_key(key));
        }
        let values: Vec<Option<i64>> = self
            .conn
            .call(|mut m| async move { cmd.query_async(&mut m).await })
            .await
            .map_err(CounterError)?;
        Ok(values.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// `SET key value PX ttl NX`: starts a counter unless one exists.
    async fn seed_key(&self, key: &str, value: i64, ttl: Duration) -> Result<(), CounterError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.conn.counter_key(key))
            .arg(value)
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .arg("NX");
        let _: Option<String> = self
            .conn
            .call(|mut m| async move { cmd.query_async(&mut m).await })
            .await
            .map_err(CounterError)?;
        Ok(())
    }
}

impl Counters for RedisCounters {
    fn reserve<'a>(
        &'a self,
        charges: &'a [Charge],
    ) -> BoxFuture<'a, Result<Reserved, CounterError>> {
        Box::pin(self.reserve_charges(charges))
    }

    fn adjust<'a>(
        &'a self,
        deltas: &'a [(String, i64)],
    ) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        Box::pin(self.adjust_deltas(deltas))
    }

    fn seed<'a>(
        &'a self,
        key: &'a str,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CounterError>> {
        Box::pin(self.seed_key(key, value, ttl))
    }

    fn read<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<i64>, CounterError>> {
        Box::pin(self.read_keys(keys))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// The publishing side of the key-invalidation bus: `PUBLISH {prefix}:keys MESSAGE`. Cloning is
/// cheap (the connection is shared).
#[derive(Clone)]
pub struct KeyEvents {
    conn: Conn,
    channel: String,
}

impl std::fmt::Debug for KeyEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEvents")
            .field("url", &self.conn.shown)
            .field("channel", &self.channel)
            .finish()
    }
}

impl KeyEvents {
    /// Connects a publisher of its own; [`RedisCounters::key_events`] shares the counters'
    /// connection instead.
    pub async fn connect(config: &RedisConfig) -> Result<KeyEvents, String> {
        Ok(KeyEvents::on(Conn::connect(config).await?))
    }

    fn on(conn: Conn) -> KeyEvents {
        let channel = keys_channel(&conn.prefix);
        KeyEvents { conn, channel }
    }

    /// The channel messages are published on.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Publishes `message` to every subscriber (none is fine), within the timeout.
    pub async fn publish(&self, message: &str) -> Result<(), String> {
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg(&self.channel).arg(message);
        self.conn
            .call(|mut m| async move { cmd.query_async::<i64>(&mut m).await })
            .await
            .map(drop)
    }
}

/// Listens to `{prefix}:keys` in a background task, calling `on_message` with each payload
/// (non-UTF-8 bytes replaced), and with `"*"` after every subscription, the first included:
/// messages published while the subscriber was not listening are lost, so everything may have
/// changed.
///
/// A lost connection is logged once per outage and re-opened with a backoff from 100ms to 2s.
/// `on_message` runs on the task: it should return quickly. The task ends when the handle is
/// aborted, or at once if `config.url` is unset or unusable (logged as an error).
pub fn subscribe(
    config: &RedisConfig,
    on_message: impl Fn(String) + Send + Sync + 'static,
) -> JoinHandle<()> {
    let opened = open(config);
    let channel = keys_channel(&config.prefix);
    tokio::spawn(async move {
        let (client, shown) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen to key invalidations");
                return;
            }
        };
        let mut backoff = SUBSCRIBE_MIN_BACKOFF;
        // Set from the first failure of an outage until the next subscription: one warning per
        // outage, not one per attempt.
        let mut failing = false;
        loop {
            let error = listen(&client, &channel, &on_message, &mut || {
                if failing {
                    tracing::info!(url = %shown, %channel, "listening to key invalidations again");
                    failing = false;
                }
                backoff = SUBSCRIBE_MIN_BACKOFF;
            })
            .await;
            if failing {
                tracing::debug!(url = %shown, %error, "redis subscriber still disconnected");
            } else {
                tracing::warn!(
                    url = %shown,
                    %channel,
                    %error,
                    "not listening to key invalidations on redis; retrying",
                );
                failing = true;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(SUBSCRIBE_MAX_BACKOFF);
        }
    })
}

/// One subscription, from connecting to its end: returns why it ended. `subscribed` runs once
/// the subscription is confirmed, before the `"*"`.
async fn listen(
    client: &Client,
    channel: &str,
    on_message: &(impl Fn(String) + Send + Sync),
    subscribed: &mut (impl FnMut() + Send),
) -> String {
    let setup = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    let pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, setup).await {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(e)) => return e.to_string(),
        Err(_) => return format!("no answer within {CONNECT_TIMEOUT:?}"),
    };
    subscribed();
    on_message("*".into());
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(SUBSCRIBE_PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => {
                    on_message(String::from_utf8_lossy(message.get_payload_bytes()).into_owned());
                }
                None => return "connection closed".into(),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(SUBSCRIBE_PING_TIMEOUT, sink.ping::<Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return format!("ping failed: {e}"),
                    Err(_) => return format!("no answer to ping within {SUBSCRIBE_PING_TIMEOUT:?}"),
                }
            }
        }
    }
}
