//! Governance in-process: a warm virtual-key cache means no database round trip per request,
//! with limits and a budget on the key (acceptance: auth and limits add no query per request).
//! The store is the real SQLite database, wrapped to count the queries the gateway makes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use futures_util::future::BoxFuture;
use switchyard_core::admit::counters::MemoryCounters;
use switchyard_core::admit::governor::GovernanceShared;
use switchyard_core::admit::limits::{Budget, Limits, Period};
use switchyard_core::auth::keys::{KeyHasher, KeyLookup, KeyRecord, Member, VirtualKeys};
use switchyard_core::pipeline::Governance;
use switchyard_core::record::Recorder;
use switchyard_core::{Config, Endpoint, Gateway, RequestContext};
use switchyard_store::{Database, MemberKind};
use switchyard_wire::openai::ChatCompletionRequest;

/// The real store, counting every query made through it.
struct Counting {
    db: Database,
    queries: AtomicU64,
}

impl KeyLookup for Counting {
    fn key_by_hash<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyRecord>, String>> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.db.key_by_hash(hash)
    }
    fn user<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.db.user(id)
    }
    fn team<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        self.db.team(id)
    }
}

const CONFIG: &str = r#"
database: { url: none }
providers:
  demo: { kind: mock, mock: { text: "hi" } }
models:
  demo-model: { provider: demo, price: { input: 1.0, output: 2.0 } }
"#;

#[tokio::test]
async fn a_warm_key_cache_makes_no_database_round_trip() {
    let dir = std::env::temp_dir().join(format!("sy-gov-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Database::connect(&format!("sqlite://{}", dir.join("g.db").display()))
        .await
        .unwrap();
    let now = switchyard_core::request::unix_ms();
    let team = Member {
        id: "t".into(),
        limits: Limits {
            rpm: Some(1000),
            ..Limits::default()
        },
        created_at_ms: now,
        updated_at_ms: now,
        ..Member::default()
    };
    db.insert_member(MemberKind::Team, &team).await.unwrap();
    let hasher = KeyHasher::new(b"test-secret");
    let (key, prefix) = KeyHasher::generate();
    let record = KeyRecord {
        id: "key_1".into(),
        prefix,
        team_id: Some("t".into()),
        limits: Limits {
            rpm: Some(1000),
            tpm: Some(1_000_000),
            budgets: vec![Budget {
                usd: 100.0,
                period: Period::Day,
            }],
            ..Limits::default()
        },
        created_at_ms: now,
        updated_at_ms: now,
        ..KeyRecord::default()
    };
    db.insert_key(&record, &hasher.hash(&key)).await.unwrap();

    let counting = Arc::new(Counting {
        db,
        queries: AtomicU64::new(0),
    });
    let keys = Arc::new(VirtualKeys::new(
        hasher,
        counting.clone(),
        Duration::from_secs(300),
    ));
    let governance = Governance {
        shared: GovernanceShared::new(Arc::new(MemoryCounters::default())),
        virtual_keys: Some(keys),
    };
    let config = Config::from_yaml(CONFIG, &|_| None).unwrap();
    let (recorder, _task) = Recorder::spawn(vec![], 1000);
    let gateway = Gateway::with_governance(config, recorder, governance).unwrap();

    let call = || async {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        let ctx = RequestContext::new(Endpoint::ChatCompletions, headers);
        let request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "demo-model", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 10
        }))
        .unwrap();
        gateway.chat(&ctx, request).await.map(|_| ())
    };
    call().await.unwrap();
    let warm = counting.queries.load(Ordering::SeqCst);
    assert_eq!(warm, 2, "the first request looks up the key and its team");
    for _ in 0..100 {
        call().await.unwrap();
    }
    assert_eq!(
        counting.queries.load(Ordering::SeqCst),
        warm,
        "100 requests with a warm cache made database queries"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A store that answers from memory until it is switched off.
struct Flaky {
    key: KeyRecord,
    hash: String,
    down: std::sync::atomic::AtomicBool,
}

impl KeyLookup for Flaky {
    fn key_by_hash<'a>(
        &'a self,
        hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyRecord>, String>> {
        let answer = if self.down.load(Ordering::SeqCst) {
            Err("PostgreSQL: connection refused".to_owned())
        } else {
            Ok((hash == self.hash).then(|| self.key.clone()))
        };
        Box::pin(std::future::ready(answer))
    }
    fn user<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>> {
        Box::pin(std::future::ready(Ok(None)))
    }
    fn team<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<Member>, String>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}

#[tokio::test]
async fn a_database_outage_refuses_unknown_keys_with_503_and_keeps_cached_ones() {
    let hasher = KeyHasher::new(b"s");
    let (cached, _) = KeyHasher::generate();
    let (uncached, _) = KeyHasher::generate();
    let store = Arc::new(Flaky {
        key: KeyRecord {
            id: "key_c".into(),
            ..KeyRecord::default()
        },
        hash: hasher.hash(&cached),
        down: Default::default(),
    });
    let keys = VirtualKeys::new(hasher, store.clone(), Duration::from_secs(300));
    assert_eq!(
        keys.authenticate(&cached).await.unwrap().key_id.as_deref(),
        Some("key_c")
    );
    store.down.store(true, Ordering::SeqCst);
    assert!(
        keys.authenticate(&cached).await.is_ok(),
        "a cached key keeps working"
    );
    let e = keys.authenticate(&uncached).await.unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (503, "key_store_unavailable"));
    assert_eq!(
        keys.stats().1,
        1,
        "the failure is counted for the health endpoint"
    );
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        keys.authenticate(&uncached).await.unwrap_err().status,
        401,
        "recovered: an unknown key is simply invalid"
    );
}
