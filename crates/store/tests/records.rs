//! The request log against real databases: SQLite in a temporary file and the PostgreSQL server
//! of this machine (`postgres://postgres@127.0.0.1:5432/test`, one fresh schema per test,
//! dropped at the end). Records go in through `RecordSink`, the way the recorder writes them, and
//! come back through the query API.

mod common;

use common::{PG_URL, TempDb, unique, with_postgres, with_sqlite};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard_core::record::{AttemptRecord, Batch, RecordSink, RequestRecord};
use switchyard_store::{Database, StoreError, StoredRequest};

const UNICODE: &[&str] = &[
    "gpt-4o",
    "模型-🚀",
    "مرحبا بالعالم",
    "e\u{301}te\u{301}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "quote \" backslash \\ newline \n tab \t",
    "'); DROP TABLE requests; --",
];
const ENDPOINTS: &[&str] = &["chat", "messages", "embeddings", "responses"];
const ERROR_CLASSES: &[&str] = &["rate_limited", "timeout", "server_error", "auth"];

/// `n` records exercising every column: optional fields present and absent, attempts, unicode,
/// and several requests sharing a start time (so that the order of `recent_requests` is tested
/// on its tie-breaker too).
fn records(n: usize, tag: &str) -> Vec<RequestRecord> {
    (0..n)
        .map(|i| {
            let word = UNICODE[i % UNICODE.len()];
            let some = |s: String| (i % 3 != 0).then_some(s);
            RequestRecord {
                request_id: format!("{tag}-{i:06}"),
                started_at_ms: 1_790_000_000_000 + (i / 3) as i64 * 17,
                endpoint: ENDPOINTS[i % ENDPOINTS.len()],
                dialect: ["openai", "anthropic"][i % 2],
                feature: (i % 3 == 1).then(|| format!("feature {word}")),
                tags: (0..i % 3).map(|t| format!("tag-{t} {word}")).collect(),
                admission: [None, Some("rate_limited"), Some("downgraded")][i % 3],
                cache_saved_usd: if i % 9 == 0 { 0.25 } else { 0.0 },
                trace: switchyard_core::request::TraceContext::fresh(),
                request_body: (i % 5 == 2).then(|| format!("{{\"prompt\": \"{word}\"}}")),
                response_body: (i % 5 == 2).then(|| word.to_owned()),
                key_id: some(format!("key-{}", i % 11)),
                user: (i % 2 == 0).then(|| format!("user {word}")),
                team: some(format!("team-{}", i % 5)),
                requested_model: format!("{word}/{i}"),
                route: (i % 4 != 0).then(|| "smart".to_owned()),
                provider: some(format!("provider-{}", i % 3)),
                model: some(word.to_owned()),
                upstream_model: (i % 5 != 0).then(|| format!("{word}-2026-01-01")),
                stream: i % 2 == 1,
                status: [200, 429, 500, 502, 400][i % 5],
                error_code: (i % 5 != 0).then(|| format!("error {word}")),
                prompt_tokens: (i as u64) * 1_000 + 7,
                completion_tokens: (i as u64) * 3,
                cached_tokens: if i % 7 == 0 {
                    0
                } else {
                    u64::from(u32::MAX) + i as u64
                },
                usage_estimated: i % 6 == 0,
                cost_usd: i as f64 * 0.000_123_456_789 + 1e-9,
                latency_ms: 12.345 + i as f64 / 7.0,
                ttft_ms: (i % 2 == 1).then_some(0.5 + i as f64 / 3.0),
                attempts: (0..i % 4)
                    .map(|a| AttemptRecord {
                        provider: format!("provider-{a} {word}"),
                        model: word.to_owned(),
                        status: (a % 2 == 0).then_some(500 + a as u16),
                        error_class: (a + 1 < i % 4).then_some(ERROR_CLASSES[a % 4]),
                        started_at_us: 1_790_000_000_000_000 + a as i64,
                        latency_ms: a as f64 * 1.25 + 1e-7,
                    })
                    .collect(),
                cache_hit: i % 9 == 0,
                guardrail_actions: (0..i % 3)
                    .map(|g| format!("redact:{g} \"{word}\""))
                    .collect(),
                client_disconnected: i % 13 == 0,
                downgraded_from: (i % 4 == 1).then(|| format!("big {word}")),
            }
        })
        .collect()
}

/// A batch as the recorder hands it to its sinks.
fn batch_of(records: &[RequestRecord]) -> Batch {
    std::sync::Arc::new(records.to_vec())
}

/// Compares a stored row with the record it came from, column by column.
fn assert_same(stored: &StoredRequest, r: &RequestRecord) {
    let id = &r.request_id;
    assert_eq!(stored.request_id, r.request_id);
    assert_eq!(stored.started_at_ms, r.started_at_ms, "{id}: started_at_ms");
    assert_eq!(stored.endpoint, r.endpoint, "{id}: endpoint");
    assert_eq!(stored.dialect, r.dialect, "{id}: dialect");
    assert_eq!(stored.feature, r.feature, "{id}: feature");
    assert_eq!(stored.tags, r.tags, "{id}: tags");
    assert_eq!(stored.admission.as_deref(), r.admission, "{id}: admission");
    assert_eq!(
        stored.cache_saved_usd, r.cache_saved_usd,
        "{id}: cache_saved_usd"
    );
    assert_eq!(
        stored.trace_id.as_deref(),
        Some(r.trace.trace_id_hex().as_str()),
        "{id}: trace_id"
    );
    assert_eq!(stored.request_body, r.request_body, "{id}: request_body");
    assert_eq!(stored.response_body, r.response_body, "{id}: response_body");
    assert_eq!(stored.key_id, r.key_id, "{id}: key_id");
    assert_eq!(stored.user, r.user, "{id}: user");
    assert_eq!(stored.team, r.team, "{id}: team");
    assert_eq!(
        stored.requested_model, r.requested_model,
        "{id}: requested_model"
    );
    assert_eq!(stored.route, r.route, "{id}: route");
    assert_eq!(stored.provider, r.provider, "{id}: provider");
    assert_eq!(stored.model, r.model, "{id}: model");
    assert_eq!(
        stored.upstream_model, r.upstream_model,
        "{id}: upstream_model"
    );
    assert_eq!(stored.stream, r.stream, "{id}: stream");
    assert_eq!(stored.status, r.status, "{id}: status");
    assert_eq!(stored.error_code, r.error_code, "{id}: error_code");
    assert_eq!(stored.prompt_tokens, r.prompt_tokens, "{id}: prompt_tokens");
    assert_eq!(
        stored.completion_tokens, r.completion_tokens,
        "{id}: completion_tokens"
    );
    assert_eq!(stored.cached_tokens, r.cached_tokens, "{id}: cached_tokens");
    assert_eq!(
        stored.usage_estimated, r.usage_estimated,
        "{id}: usage_estimated"
    );
    assert_eq!(stored.cost_usd, r.cost_usd, "{id}: cost_usd");
    assert_eq!(stored.latency_ms, r.latency_ms, "{id}: latency_ms");
    assert_eq!(stored.ttft_ms, r.ttft_ms, "{id}: ttft_ms");
    assert_eq!(stored.attempts.len(), r.attempts.len(), "{id}: attempts");
    for (s, a) in stored.attempts.iter().zip(&r.attempts) {
        assert_eq!(s.provider, a.provider, "{id}: attempt provider");
        assert_eq!(s.model, a.model, "{id}: attempt model");
        assert_eq!(s.status, a.status, "{id}: attempt status");
        assert_eq!(
            s.error_class.as_deref(),
            a.error_class,
            "{id}: attempt error_class"
        );
        assert_eq!(s.latency_ms, a.latency_ms, "{id}: attempt latency_ms");
        assert_eq!(
            s.started_at_us, a.started_at_us,
            "{id}: attempt started_at_us"
        );
    }
    assert_eq!(stored.cache_hit, r.cache_hit, "{id}: cache_hit");
    assert_eq!(
        stored.guardrail_actions, r.guardrail_actions,
        "{id}: guardrail_actions"
    );
    assert_eq!(
        stored.client_disconnected, r.client_disconnected,
        "{id}: client_disconnected"
    );
    assert_eq!(
        stored.downgraded_from, r.downgraded_from,
        "{id}: downgraded_from"
    );
}

/// Writes 1,000 records in one batch and reads every one back, newest first.
async fn round_trip(db: &Database) {
    let batch = records(1_000, "rt");
    db.write(&batch_of(&batch)).await.expect("write");
    assert_eq!(db.count_requests().await.expect("count"), 1_000);

    let stored = db.recent_requests(5_000).await.expect("read");
    assert_eq!(stored.len(), 1_000);
    let mut expected: Vec<&RequestRecord> = batch.iter().collect();
    expected
        .sort_by(|a, b| (b.started_at_ms, &b.request_id).cmp(&(a.started_at_ms, &a.request_id)));
    let order: Vec<&str> = stored.iter().map(|s| s.request_id.as_str()).collect();
    let expected_order: Vec<&str> = expected.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(order, expected_order, "newest first, ties by request id");

    let by_id: HashMap<&str, &RequestRecord> =
        batch.iter().map(|r| (r.request_id.as_str(), r)).collect();
    for s in &stored {
        assert_same(s, by_id[s.request_id.as_str()]);
    }

    let newest = db.recent_requests(3).await.expect("read 3");
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].request_id, expected_order[0]);
    assert!(db.recent_requests(0).await.expect("read 0").is_empty());
}

/// A batch written again, or overlapping an earlier one, stores each request once.
async fn idempotent(db: &Database) {
    let batch = records(1_000, "idem");
    db.write(&batch_of(&batch)).await.expect("first write");
    db.write(&batch_of(&batch)).await.expect("second write");
    assert_eq!(db.count_requests().await.expect("count"), 1_000);

    // Overlap: 500 old, 500 new; and a duplicate inside one batch.
    let mut more = records(1_500, "idem")[500..].to_vec();
    more.push(more[0].clone());
    db.write(&batch_of(&more)).await.expect("overlapping write");
    assert_eq!(db.count_requests().await.expect("count"), 1_500);

    // The first write wins: a retried request does not overwrite what was stored.
    let mut changed = batch[0].clone();
    changed.cost_usd = 99.0;
    db.write(&batch_of(std::slice::from_ref(&changed)))
        .await
        .expect("write");
    let stored = db.recent_requests(2_000).await.expect("read");
    let first = stored
        .iter()
        .find(|s| s.request_id == batch[0].request_id)
        .expect("row");
    assert_eq!(first.cost_usd, batch[0].cost_usd);

    db.write(&batch_of(&[]))
        .await
        .expect("an empty batch is a no-op");
}

/// More rows than one statement can bind: the batch is split into several statements.
async fn large_batch(db: &Database) {
    let batch = records(6_000, "big");
    db.write(&batch_of(&batch)).await.expect("write");
    assert_eq!(db.count_requests().await.expect("count"), 6_000);
}

/// Values a database would refuse do not sink the batch around them.
async fn odd_values(db: &Database) {
    let mut batch = records(10, "odd");
    batch[3].requested_model = "nul\0inside".into();
    batch[3].attempts = vec![AttemptRecord {
        started_at_us: 0,
        provider: "p\0".into(),
        model: "m".into(),
        status: None,
        error_class: None,
        latency_ms: f64::NAN,
    }];
    batch[3].guardrail_actions = vec!["g\0".into()];
    batch[3].downgraded_from = Some("big\0".into());
    batch[4].cost_usd = f64::NAN;
    batch[4].latency_ms = f64::INFINITY;
    batch[4].ttft_ms = Some(f64::NAN);
    batch[5].prompt_tokens = u64::MAX;
    db.write(&batch_of(&batch)).await.expect("write");
    assert_eq!(db.count_requests().await.expect("count"), 10);

    let stored = db.recent_requests(100).await.expect("read");
    let get = |id: &str| stored.iter().find(|s| s.request_id == id).expect("row");
    let nul = get("odd-000003");
    assert_eq!(nul.requested_model, "nul\u{FFFD}inside");
    assert_eq!(nul.attempts[0].provider, "p\u{FFFD}");
    assert_eq!(nul.attempts[0].latency_ms, 0.0);
    assert_eq!(nul.guardrail_actions, vec!["g\u{FFFD}".to_owned()]);
    assert_eq!(nul.downgraded_from.as_deref(), Some("big\u{FFFD}"));
    let nan = get("odd-000004");
    assert_eq!(
        (nan.cost_usd, nan.latency_ms, nan.ttft_ms),
        (0.0, 0.0, None)
    );
    assert_eq!(get("odd-000005").prompt_tokens, i64::MAX as u64);
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[tokio::test]
async fn sqlite_round_trip() {
    with_sqlite(|db| async move { round_trip(&db).await }).await;
}

#[tokio::test]
async fn sqlite_writes_are_idempotent() {
    with_sqlite(|db| async move { idempotent(&db).await }).await;
}

#[tokio::test]
async fn sqlite_large_batch() {
    with_sqlite(|db| async move { large_batch(&db).await }).await;
}

#[tokio::test]
async fn sqlite_odd_values() {
    with_sqlite(|db| async move { odd_values(&db).await }).await;
}

#[tokio::test]
async fn sqlite_data_survives_a_reconnect() {
    let file = TempDb::new();
    let db = Database::connect(&file.url()).await.expect("connect");
    db.write(&batch_of(&records(10, "keep")))
        .await
        .expect("write");
    db.close().await;
    // Connecting again runs the migrations again: a no-op on a migrated database.
    let db = Database::connect(&file.url()).await.expect("reconnect");
    assert_eq!(db.count_requests().await.expect("count"), 10);
    db.close().await;
}

#[tokio::test]
async fn sqlite_in_memory() {
    let db = Database::connect("sqlite::memory:").await.expect("connect");
    db.write(&batch_of(&records(100, "mem")))
        .await
        .expect("write");
    assert_eq!(db.count_requests().await.expect("count"), 100);
    // Another in-memory database is another database.
    let other = Database::connect("sqlite::memory:").await.expect("connect");
    assert_eq!(other.count_requests().await.expect("count"), 0);
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_names_the_file() {
    let url = format!("sqlite:///nonexistent-{}/switchyard.db", unique());
    let err = Database::connect(&url)
        .await
        .expect_err("no such directory");
    let message = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{message}");
    assert!(message.contains(&url), "{message}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// Runs `test` on a database in a fresh schema, then drops the schema, even if `test` panicked.
#[tokio::test]
async fn postgres_round_trip() {
    with_postgres(|db| async move { round_trip(&db).await }).await;
}

#[tokio::test]
async fn postgres_writes_are_idempotent() {
    with_postgres(|db| async move { idempotent(&db).await }).await;
}

#[tokio::test]
async fn postgres_large_batch() {
    with_postgres(|db| async move { large_batch(&db).await }).await;
}

#[tokio::test]
async fn postgres_odd_values() {
    with_postgres(|db| async move { odd_values(&db).await }).await;
}

#[tokio::test]
async fn postgres_down_fails_fast_with_the_url_and_no_password() {
    let started = Instant::now();
    let url = "postgres://postgres:hunter2@127.0.0.1:1/test";
    let err = Database::connect(url)
        .await
        .expect_err("nothing listens on port 1");
    let message = err.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(
        message.contains("postgres://postgres:***@127.0.0.1:1/test"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    // The schema variant masks the password the same way.
    let err = Database::connect_postgres_schema(url, "sy_test_dead")
        .await
        .expect_err("still down");
    assert!(!err.to_string().contains("hunter2"));
}

#[tokio::test]
async fn postgres_sink_errors_are_strings_naming_the_database() {
    with_postgres(|db| async move {
        sqlx::query("DROP TABLE requests")
            .execute(match &db {
                Database::Postgres(pool) => pool,
                Database::Sqlite(_) => unreachable!(),
            })
            .await
            .expect("drop table");
        let err = db
            .write(&batch_of(&records(3, "gone")))
            .await
            .expect_err("no table");
        assert!(err.contains("PostgreSQL"), "{err}");
        assert!(err.contains("requests"), "{err}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// URLs

#[tokio::test]
async fn unknown_schemes_say_what_works() {
    let err = Database::connect("mysql://app:pw123@db/sw")
        .await
        .expect_err("mysql");
    let message = err.to_string();
    assert!(
        matches!(err, StoreError::UnsupportedScheme { .. }),
        "{message}"
    );
    assert!(
        message.contains("unsupported scheme \"mysql\""),
        "{message}"
    );
    assert!(message.contains("sqlite://FILE"), "{message}");
    assert!(message.contains("postgres://"), "{message}");
    assert!(message.contains("none"), "{message}");
    assert!(!message.contains("pw123"), "{message}");

    let err = Database::connect("switchyard.db")
        .await
        .expect_err("no scheme");
    assert!(matches!(err, StoreError::UnsupportedScheme { .. }), "{err}");

    let err = Database::connect("none").await.expect_err("none");
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");

    let err = Database::connect_postgres_schema(PG_URL, "bad-name; DROP")
        .await
        .expect_err("bad schema");
    assert!(matches!(err, StoreError::InvalidSchema(_)), "{err}");
}

/// Three replicas write batches at once whose records fall in the same rollup rows (one hour,
/// the same fifty teams). Each upsert locks its rows in the order it lists them: written in a
/// different order by each, two transactions would each hold a row the other waits for, and
/// PostgreSQL would abort one ("deadlock detected").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replicas_writing_the_same_rollup_rows_do_not_deadlock() {
    with_postgres(|db| async move {
        const BATCHES: usize = 60;
        const TEAMS: usize = 50;
        const REPLICAS: [&str; 3] = ["a", "b", "c"];
        let replica = |name: &'static str| {
            let db = db.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let batch: Vec<_> = (0..TEAMS)
                        .map(|t| RequestRecord {
                            request_id: format!("{name}-{b}-{t}"),
                            started_at_ms: 3_600_000,
                            key_id: Some("k".into()),
                            team: Some(format!("team-{t}")),
                            requested_model: "m".into(),
                            status: 200,
                            latency_ms: 10.0 + t as f64,
                            ..RequestRecord::default()
                        })
                        .collect();
                    db.write_records(&batch)
                        .await
                        .unwrap_or_else(|e| panic!("{name}, batch {b}: {e}"));
                }
            })
        };
        let replicas: Vec<_> = REPLICAS.into_iter().map(replica).collect();
        for r in replicas {
            r.await.expect("a replica's writes");
        }
        let stored = db.count_requests().await.expect("count");
        assert_eq!(stored, (REPLICAS.len() * BATCHES * TEAMS) as i64);
    })
    .await;
}
