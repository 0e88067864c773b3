//! The request log's upkeep and feedback against real databases (a temporary SQLite file and a
//! fresh PostgreSQL schema): retention deletes old records only and keeps the rollups; the
//! anomaly alert's spend windows add up per owner; feedback lands on the record and in its
//! rollup row, and a second score replaces the first, even while the log is being written; an
//! alert is claimed once per hour, whichever replica claims it.

mod common;

use common::{with_postgres, with_sqlite};
use switchyard_core::record::RequestRecord;
use switchyard_store::{Database, Feedback, SpendOwner};

const H: i64 = 3_600_000;

fn request(id: &str, at: i64, key: &str, team: &str, usd: f64) -> RequestRecord {
    RequestRecord {
        request_id: id.into(),
        started_at_ms: at,
        key_id: Some(key.into()),
        team: Some(team.into()),
        feature: Some(format!("feature-{team}")),
        requested_model: "m".into(),
        status: 200,
        cost_usd: usd,
        ..RequestRecord::default()
    }
}

async fn retention(db: &Database) {
    let batch: Vec<_> = (0..12_000)
        .map(|i| {
            request(
                &format!("r{i}"),
                i64::from(i % 2) * 10 * H + 1,
                "k",
                "t",
                0.001,
            )
        })
        .collect();
    db.write_records(&batch).await.expect("write");
    // Half the records are from hour 0, half from hour 10; more than one purge chunk each.
    let deleted = db.purge_records_before(5 * H).await.expect("purge");
    assert_eq!(deleted, 6_000);
    assert_eq!(db.count_requests().await.expect("count"), 6_000);
    assert!(
        db.request("r1").await.expect("read").is_some(),
        "recent records stay"
    );
    assert!(
        db.request("r0").await.expect("read").is_none(),
        "old records go"
    );
    // The rollups keep the whole history.
    let windows = db
        .spend_windows(SpendOwner::Key, 10 * H, 0, 0.0)
        .await
        .expect("spend");
    assert_eq!(windows.len(), 1);
    assert!((windows[0].recent_usd - 6.0).abs() < 1e-6, "{windows:?}");
    assert!((windows[0].baseline_usd - 6.0).abs() < 1e-6, "{windows:?}");
}

async fn spend_windows(db: &Database) {
    let batch = [
        request("a1", 2 * H, "ka", "alpha", 10.0),
        request("a2", 9 * H, "ka", "alpha", 30.0),
        request("b1", 9 * H + 5, "kb", "beta", 0.5),
        request("b2", 3 * H, "kb", "beta", 70.0),
        request("old", 0, "kb", "beta", 1_000.0),
    ];
    db.write_records(&batch).await.expect("write");
    // Recent: hours from 8 on; baseline: hours 1 to 7; at least $1 recent.
    let mut teams = db
        .spend_windows(SpendOwner::Team, 8 * H, H, 1.0)
        .await
        .expect("teams");
    teams.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(teams.len(), 1, "beta spent under $1 recently: {teams:?}");
    assert_eq!(
        (
            teams[0].id.as_str(),
            teams[0].recent_usd,
            teams[0].baseline_usd
        ),
        ("alpha", 30.0, 10.0)
    );
    let mut features = db
        .spend_windows(SpendOwner::Feature, 8 * H, H, 0.0)
        .await
        .expect("features");
    features.sort_by(|a, b| a.id.cmp(&b.id));
    let got: Vec<_> = features
        .iter()
        .map(|w| (w.id.as_str(), w.recent_usd, w.baseline_usd))
        .collect();
    assert_eq!(
        got,
        vec![("feature-alpha", 30.0, 10.0), ("feature-beta", 0.5, 70.0)]
    );
}

async fn feedback(db: &Database) {
    db.write_records(&[
        request("f1", H, "k", "t", 1.0),
        request("f2", H, "k", "t", 1.0),
    ])
    .await
    .expect("write");
    let score = |request_id, score, comment| Feedback {
        request_id,
        score,
        comment,
        at_ms: 2 * H,
    };
    assert!(
        db.set_feedback(&score("f1", 5.0, Some("great")))
            .await
            .expect("set")
    );
    assert!(db.set_feedback(&score("f2", 1.0, None)).await.expect("set"));
    assert!(
        db.set_feedback(&score("f1", 3.0, None))
            .await
            .expect("replace")
    );
    assert!(
        !db.set_feedback(&score("nope", 1.0, None))
            .await
            .expect("unknown")
    );
    let f1 = db.request("f1").await.expect("read").expect("f1");
    assert_eq!((f1.feedback_score, f1.feedback_comment), (Some(3.0), None));
    let target = db.feedback_target("f2").await.expect("target").expect("f2");
    assert_eq!(target.key_id.as_deref(), Some("k"));
    assert_eq!(db.feedback_target("nope").await.expect("target"), None);
}

/// Feedback arrives while the recorder writes its batches: on SQLite a transaction that read
/// before another connection committed cannot then write (SQLITE_BUSY_SNAPSHOT, which no busy
/// timeout waits out), so every score must still be saved.
async fn feedback_while_the_log_is_written(db: &Database) {
    db.write_records(&[request("rated", H, "k", "t", 1.0)])
        .await
        .expect("write");
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for batch in 0..150 {
                let records: Vec<_> = (0..20)
                    .map(|i| request(&format!("w{batch}-{i}"), H, "k", "t", 0.001))
                    .collect();
                db.write_records(&records).await.expect("write while rated");
            }
        })
    };
    let mut saved = 0;
    while !writer.is_finished() {
        let score = Feedback {
            request_id: "rated",
            score: f64::from(saved % 5 + 1),
            comment: None,
            at_ms: 2 * H,
        };
        assert!(
            db.set_feedback(&score)
                .await
                .expect("feedback while the log is written")
        );
        saved += 1;
    }
    writer.await.expect("writer");
    assert!(saved > 0);
}

/// Alert claims: the first claim of (kind, scope, id, hour) wins, by whichever handle on the
/// database makes it (`other` is a second connection pool, as another replica has).
async fn alert_claims(db: &Database, other: &Database) {
    assert!(
        db.claim_alert("spend_anomaly", "team", "t", H)
            .await
            .expect("claim")
    );
    assert!(
        !other
            .claim_alert("spend_anomaly", "team", "t", H)
            .await
            .expect("again")
    );
    assert!(
        !db.claim_alert("spend_anomaly", "team", "t", H)
            .await
            .expect("again")
    );
    assert!(
        other
            .claim_alert("spend_anomaly", "team", "t", 2 * H)
            .await
            .expect("next hour")
    );
    assert!(
        other
            .claim_alert("spend_anomaly", "key", "t", H)
            .await
            .expect("another scope")
    );
    assert_eq!(db.forget_alerts_before(2 * H).await.expect("forget"), 2);
    assert!(
        db.claim_alert("spend_anomaly", "team", "t", H)
            .await
            .expect("forgotten")
    );
}

#[tokio::test]
async fn sqlite_retention() {
    with_sqlite(|db| async move { retention(&db).await }).await;
}

#[tokio::test]
async fn postgres_retention() {
    with_postgres(|db| async move { retention(&db).await }).await;
}

#[tokio::test]
async fn sqlite_spend_windows() {
    with_sqlite(|db| async move { spend_windows(&db).await }).await;
}

#[tokio::test]
async fn postgres_spend_windows() {
    with_postgres(|db| async move { spend_windows(&db).await }).await;
}

#[tokio::test]
async fn sqlite_feedback() {
    with_sqlite(|db| async move { feedback(&db).await }).await;
}

#[tokio::test]
async fn postgres_feedback() {
    with_postgres(|db| async move { feedback(&db).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_feedback_while_the_log_is_written() {
    with_sqlite(|db| async move { feedback_while_the_log_is_written(&db).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feedback_while_the_log_is_written() {
    with_postgres(|db| async move { feedback_while_the_log_is_written(&db).await }).await;
}

#[tokio::test]
async fn sqlite_alert_claims() {
    let file = common::TempDb::new();
    let db = Database::connect(&file.url()).await.expect("connect");
    let other = Database::connect(&file.url()).await.expect("connect again");
    alert_claims(&db, &other).await;
}

#[tokio::test]
async fn postgres_alert_claims() {
    let schema = format!("sy_test_{}", common::unique());
    let db = Database::connect_postgres_schema(common::PG_URL, &schema)
        .await
        .expect("connect");
    let other = Database::connect_postgres_schema(common::PG_URL, &schema)
        .await
        .expect("connect again");
    let outcome = tokio::spawn({
        let (db, other) = (db.clone(), other.clone());
        async move { alert_claims(&db, &other).await }
    })
    .await;
    db.close().await;
    other.close().await;
    common::drop_schema(&schema).await;
    outcome.expect("alert claims");
}
