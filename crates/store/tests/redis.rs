//! Redis counters and the key-invalidation bus against real Redis servers: the one of this
//! machine (`redis://127.0.0.1:6379`, a fresh key prefix per test, its keys deleted at the end)
//! and, for outages, a `redis-server` of the test's own on a free port, killed and restarted.
//!
//! The counters must do exactly what `MemoryCounters` does: the same scenarios run on both and
//! must give the same answers.

mod common;

use common::unique;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_core::admit::config::RedisConfig;
use switchyard_core::admit::counters::{Charge, Counters, MemoryCounters, Reserved};
use switchyard_store::redis::{KeyEvents, RedisCounters, subscribe};
use tokio::sync::mpsc;

const URL: &str = "redis://127.0.0.1:6379";

/// A fresh prefix on the machine's Redis; its keys are deleted when it is dropped, failed test
/// included.
struct Prefix {
    config: RedisConfig,
}

impl Prefix {
    fn new() -> Prefix {
        Prefix {
            config: RedisConfig {
                url: Some(URL.into()),
                prefix: format!("sytest_{}", unique()),
                timeout: Duration::from_secs(2),
            },
        }
    }

    fn key(&self, counter: &str) -> String {
        format!("{}:c:{counter}", self.config.prefix)
    }

    async fn counters(&self) -> RedisCounters {
        RedisCounters::connect(&self.config)
            .await
            .expect("Redis at 127.0.0.1:6379 (start it: redis-server --daemonize yes)")
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = delete_matching(URL, &format!("{}*", self.config.prefix));
    }
}

fn sync_conn(url: &str) -> redis::RedisResult<redis::Connection> {
    redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))
}

fn delete_matching(url: &str, pattern: &str) -> redis::RedisResult<()> {
    let mut con = sync_conn(url)?;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)?;
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query::<i64>(&mut con)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn pttl(key: &str) -> i64 {
    let mut con = sync_conn(URL).unwrap();
    redis::cmd("PTTL").arg(key).query(&mut con).unwrap()
}

fn subscribers(channel: &str) -> i64 {
    let mut con = sync_conn(URL).unwrap();
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut con)
        .unwrap();
    n
}

fn charge(key: &str, amount: i64, limit: Option<i64>) -> Charge {
    Charge {
        key: key.into(),
        amount,
        limit,
        ttl: Duration::from_secs(60),
    }
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| k.to_string()).collect()
}

/// Every answer of a scenario of reservations, adjustments and reads, in order.
#[derive(Debug, PartialEq)]
enum Answer {
    Reserve(Reserved),
    Values(Vec<i64>),
}

async fn scenario(c: &dyn Counters) -> Vec<Answer> {
    let mut out = Vec::new();
    let both = [charge("a", 1, Some(2)), charge("b", 5, Some(6))];
    let reserve = async |charges: &[Charge]| Answer::Reserve(c.reserve(charges).await.unwrap());
    out.push(reserve(&both).await);
    // "b" would reach 10 > 6: nothing is added, "a" included.
    out.push(reserve(&both).await);
    out.push(Answer::Values(
        c.read(&keys(&["a", "b", "missing"])).await.unwrap(),
    ));
    out.push(Answer::Values(
        c.adjust(&[("a".into(), 0), ("b".into(), -5)])
            .await
            .unwrap(),
    ));
    out.push(reserve(&both).await);
    // Unchecked charges always count, even past a limit other charges had.
    out.push(reserve(&[charge("a", 10, None)]).await);
    out.push(reserve(&[charge("a", 1, Some(2))]).await);
    // A charge exactly at its limit fits; one past it does not.
    out.push(reserve(&[charge("exact", 3, Some(3))]).await);
    out.push(reserve(&[charge("exact", 1, Some(3))]).await);
    // The same counter twice: each charge is checked against the counter as it was.
    out.push(reserve(&[charge("dup", 1, Some(1)), charge("dup", 1, Some(1))]).await);
    // Negative limits are limits, not "unchecked".
    out.push(reserve(&[charge("neg", 0, Some(-1))]).await);
    out.push(reserve(&[charge("neg", -2, Some(-1))]).await);
    // An unchecked charge before a denied one is not added either.
    out.push(reserve(&[charge("u", 4, None), charge("exact", 1, Some(3))]).await);
    out.push(Answer::Values(
        c.read(&keys(&["u", "neg", "dup"])).await.unwrap(),
    ));
    // Adjusting a counter that does not exist creates it.
    out.push(Answer::Values(
        c.adjust(&[("new".into(), 7), ("new".into(), -2)])
            .await
            .unwrap(),
    ));
    out.push(reserve(&[]).await);
    out.push(Answer::Values(c.read(&[]).await.unwrap()));
    out.push(Answer::Values(c.adjust(&[]).await.unwrap()));
    out
}

#[tokio::test]
async fn redis_counters_answer_exactly_like_memory_counters() {
    let p = Prefix::new();
    let redis = p.counters().await;
    let memory = MemoryCounters::default();
    let from_redis = scenario(&redis).await;
    let from_memory = scenario(&memory).await;
    assert_eq!(from_redis, from_memory);
    // Spot checks, so that two identical bugs cannot agree.
    assert_eq!(
        from_redis[0],
        Answer::Reserve(Reserved::Admitted(vec![1, 5]))
    );
    assert_eq!(
        from_redis[1],
        Answer::Reserve(Reserved::Denied {
            index: 1,
            current: 5
        })
    );
    assert_eq!(from_redis[2], Answer::Values(vec![1, 5, 0]));
    assert_eq!(redis.backend(), "redis");
}

#[tokio::test]
async fn a_denied_reservation_adds_nothing() {
    let p = Prefix::new();
    let c = p.counters().await;
    assert_eq!(
        c.reserve(&[charge("x", 9, Some(10))]).await.unwrap(),
        Reserved::Admitted(vec![9])
    );
    let refused = [
        charge("fresh", 1, Some(100)),
        charge("open", 3, None),
        charge("x", 2, Some(10)),
    ];
    assert_eq!(
        c.reserve(&refused).await.unwrap(),
        Reserved::Denied {
            index: 2,
            current: 9
        }
    );
    assert_eq!(
        c.read(&keys(&["fresh", "open", "x"])).await.unwrap(),
        vec![0, 0, 9]
    );
    // Nothing was even created.
    assert_eq!(pttl(&p.key("fresh")), -2);
    assert_eq!(pttl(&p.key("open")), -2);
}

#[tokio::test]
async fn unchecked_charges_count_without_limit() {
    let p = Prefix::new();
    let c = p.counters().await;
    for i in 1..=5 {
        assert_eq!(
            c.reserve(&[charge("spend", 1_000_000, None)])
                .await
                .unwrap(),
            Reserved::Admitted(vec![i * 1_000_000])
        );
    }
    // A checked charge on the same counter now sees it over its limit.
    assert_eq!(
        c.reserve(&[charge("spend", 1, Some(5_000_000))])
            .await
            .unwrap(),
        Reserved::Denied {
            index: 0,
            current: 5_000_000
        }
    );
    // Large values (micro-dollars of a big budget) stay exact.
    let big = 1_i64 << 52;
    assert_eq!(
        c.reserve(&[charge("big", big, Some(big + 1))])
            .await
            .unwrap(),
        Reserved::Admitted(vec![big])
    );
    assert_eq!(
        c.reserve(&[charge("big", 2, Some(big + 1))]).await.unwrap(),
        Reserved::Denied {
            index: 0,
            current: big
        }
    );
}

#[tokio::test]
async fn reservations_set_the_ttl_and_windows_expire() {
    let p = Prefix::new();
    let c = p.counters().await;
    let mut long = charge("long", 1, Some(10));
    long.ttl = Duration::from_secs(90);
    let mut short = charge("short", 3, Some(3));
    short.ttl = Duration::from_millis(50);
    assert_eq!(
        c.reserve(&[long.clone(), short.clone()]).await.unwrap(),
        Reserved::Admitted(vec![1, 3])
    );
    let ttl = pttl(&p.key("long"));
    assert!((85_000..=90_000).contains(&ttl), "PTTL {ttl}");
    // Each reservation renews the TTL.
    long.ttl = Duration::from_secs(200);
    c.reserve(&[long]).await.unwrap();
    let ttl = pttl(&p.key("long"));
    assert!((195_000..=200_000).contains(&ttl), "PTTL {ttl}");
    // A full window that expired starts again from zero.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(c.read(&keys(&["short"])).await.unwrap(), vec![0]);
    assert_eq!(
        c.reserve(&[short]).await.unwrap(),
        Reserved::Admitted(vec![3])
    );
}

#[tokio::test]
async fn adjustments_keep_the_ttl_and_never_leave_a_key_without_one() {
    let p = Prefix::new();
    let c = p.counters().await;
    let mut window = charge("w", 10, Some(100));
    window.ttl = Duration::from_secs(30);
    c.reserve(&[window]).await.unwrap();
    assert_eq!(
        c.adjust(&[("w".into(), -4), ("gone".into(), 5)])
            .await
            .unwrap(),
        vec![6, 5]
    );
    let ttl = pttl(&p.key("w"));
    assert!((25_000..=30_000).contains(&ttl), "PTTL {ttl}");
    // A counter that had expired (or never existed) gets an hour, not forever.
    let ttl = pttl(&p.key("gone"));
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    assert_eq!(c.read(&keys(&["w", "gone"])).await.unwrap(), vec![6, 5]);
}

#[tokio::test]
async fn reads_of_missing_counters_are_zero() {
    let p = Prefix::new();
    let c = p.counters().await;
    assert_eq!(
        c.read(&keys(&["nothing", "here"])).await.unwrap(),
        vec![0, 0]
    );
    c.adjust(&[("here".into(), 2)]).await.unwrap();
    assert_eq!(
        c.read(&keys(&["nothing", "here", "nothing"]))
            .await
            .unwrap(),
        vec![0, 2, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reservations_from_two_replicas_never_pass_the_limit() {
    let p = Prefix::new();
    let replicas = [Arc::new(p.counters().await), Arc::new(p.counters().await)];
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let c = replicas[i % 2].clone();
            tokio::spawn(async move {
                let charges = [charge("rpm", 1, Some(50)), charge("tokens", 7, None)];
                c.reserve(&charges).await.unwrap()
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut denied = 0;
    for task in tasks {
        match task.await.unwrap() {
            Reserved::Admitted(values) => admitted.push(values[0]),
            Reserved::Denied { index, current } => {
                assert_eq!((index, current), (0, 50));
                denied += 1;
            }
        }
    }
    admitted.sort_unstable();
    assert_eq!(admitted, (1..=50).collect::<Vec<i64>>());
    assert_eq!(denied, 150);
    // The unchecked charge was only added by the admitted requests.
    assert_eq!(
        replicas[0].read(&keys(&["rpm", "tokens"])).await.unwrap(),
        vec![50, 350]
    );
}

/// The messages a subscriber receives.
fn collector() -> (
    impl Fn(String) + Send + Sync + 'static,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (
        move |m: String| {
            let _ = tx.send(m);
        },
        rx,
    )
}

async fn next_message(rx: &mut mpsc::UnboundedReceiver<String>, within: Duration) -> String {
    tokio::time::timeout(within, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no message within {within:?}"))
        .expect("subscriber gone")
}

#[tokio::test]
async fn published_key_events_reach_subscribers() {
    let p = Prefix::new();
    let (on_message, mut rx) = collector();
    let task = subscribe(&p.config, on_message);
    assert_eq!(next_message(&mut rx, Duration::from_secs(5)).await, "*");

    let own = KeyEvents::connect(&p.config).await.unwrap();
    assert_eq!(own.channel(), format!("{}:keys", p.config.prefix));
    own.publish("key_ab12").await.unwrap();
    assert_eq!(
        next_message(&mut rx, Duration::from_secs(5)).await,
        "key_ab12"
    );
    let shared = p.counters().await.key_events();
    shared.publish("team:é 🚀").await.unwrap();
    assert_eq!(
        next_message(&mut rx, Duration::from_secs(5)).await,
        "team:é 🚀"
    );

    // Another prefix is another channel.
    let other = Prefix::new();
    KeyEvents::connect(&other.config)
        .await
        .unwrap()
        .publish("elsewhere")
        .await
        .unwrap();

    // An aborted subscriber stops listening.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // Its connection is closed: Redis counts no subscriber left.
    let deadline = Instant::now() + Duration::from_secs(2);
    while subscribers(own.channel()) != 0 {
        assert!(
            Instant::now() < deadline,
            "the subscription outlived its task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    own.publish("after").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut rest = Vec::new();
    while let Ok(m) = rx.try_recv() {
        rest.push(m);
    }
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast_and_names_the_url() {
    let port = free_port();
    let config = RedisConfig {
        url: Some(format!("redis://:hunter2@127.0.0.1:{port}/0")),
        prefix: format!("sytest_{}", unique()),
        timeout: Duration::from_millis(250),
    };
    let started = Instant::now();
    let err = RedisCounters::connect(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let err = KeyEvents::connect(&config).await.unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");

    let unset = RedisConfig::default();
    assert!(RedisCounters::connect(&unset).await.is_err());
    let bad = RedisConfig {
        url: Some("http://:hunter2@example/".into()),
        ..RedisConfig::default()
    };
    let err = RedisCounters::connect_lazy(&bad).unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
    // A subscriber without a usable URL ends at once instead of retrying forever.
    let (on_message, _rx) = collector();
    tokio::time::timeout(Duration::from_secs(1), subscribe(&unset, on_message))
        .await
        .unwrap()
        .unwrap();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, killed when dropped.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn new() -> OwnRedis {
        OwnRedis {
            port: free_port(),
            child: None,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = sync_conn(&self.url())
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con));
            if pong.is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `reserve` until it succeeds, each call bounded by the timeout.
async fn reserve_until_ok(c: &RedisCounters, charges: &[Charge], within: Duration) -> Reserved {
    let deadline = Instant::now() + within;
    loop {
        let started = Instant::now();
        match c.reserve(charges).await {
            Ok(r) => return r,
            Err(e) => {
                assert!(started.elapsed() < Duration::from_millis(750), "{e}");
                assert!(Instant::now() < deadline, "still failing: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_outage_fails_calls_quickly_and_everything_recovers_after_it() {
    let mut server = OwnRedis::new();
    let config = RedisConfig {
        url: Some(server.url()),
        prefix: format!("sytest_{}", unique()),
        timeout: Duration::from_millis(250),
    };
    let margin = Duration::from_millis(500);
    let rpm = [charge("rpm", 1, Some(100))];

    // Started before Redis: a lazy connection fails calls, then works once Redis is up.
    let lazy = RedisCounters::connect_lazy(&config).unwrap();
    let started = Instant::now();
    let err = lazy.reserve(&rpm).await.unwrap_err();
    assert!(started.elapsed() < config.timeout + margin, "{err}");
    assert!(
        err.0.starts_with(&format!("redis at {}", server.url())),
        "{err}"
    );
    let (on_message, mut rx) = collector();
    let subscriber = subscribe(&config, on_message);
    server.start();
    assert_eq!(
        reserve_until_ok(&lazy, &rpm, Duration::from_secs(5)).await,
        Reserved::Admitted(vec![1])
    );
    assert_eq!(next_message(&mut rx, Duration::from_secs(5)).await, "*");

    let counters = RedisCounters::connect(&config).await.unwrap();
    let events = KeyEvents::connect(&config).await.unwrap();
    assert_eq!(
        counters.reserve(&rpm).await.unwrap(),
        Reserved::Admitted(vec![2])
    );
    events.publish("before").await.unwrap();
    assert_eq!(
        next_message(&mut rx, Duration::from_secs(5)).await,
        "before"
    );

    server.kill();
    for _ in 0..5 {
        let started = Instant::now();
        let err = counters.reserve(&rpm).await.unwrap_err();
        assert!(started.elapsed() < config.timeout + margin, "{err}");
        assert!(
            err.0.starts_with(&format!("redis at {}", server.url())),
            "{err}"
        );
        let started = Instant::now();
        assert!(counters.read(&keys(&["rpm"])).await.is_err());
        assert!(counters.adjust(&[("rpm".into(), -1)]).await.is_err());
        assert!(events.publish("lost").await.is_err());
        assert!(started.elapsed() < 3 * (config.timeout + margin));
    }

    // Same port, empty data and no scripts loaded: the script is loaded again.
    server.start();
    assert_eq!(
        reserve_until_ok(&counters, &rpm, Duration::from_secs(5)).await,
        Reserved::Admitted(vec![1])
    );
    assert_eq!(
        reserve_until_ok(&lazy, &rpm, Duration::from_secs(5)).await,
        Reserved::Admitted(vec![2])
    );
    assert_eq!(next_message(&mut rx, Duration::from_secs(5)).await, "*");
    let deadline = Instant::now() + Duration::from_secs(5);
    while events.publish("after").await.is_err() {
        assert!(Instant::now() < deadline, "publishing does not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(next_message(&mut rx, Duration::from_secs(5)).await, "after");
    subscriber.abort();
}
