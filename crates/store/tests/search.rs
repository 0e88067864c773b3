//! The request explorer's search against real databases (an SQLite file and a fresh schema of
//! this machine's PostgreSQL): each filter returns exactly the records that match it, newest
//! first; walking the pages with the cursor visits every match once; replays link both ways.

mod common;

use switchyard_core::record::{AttemptRecord, RequestRecord};
use switchyard_store::{Cursor, Database, RequestFilter, StatusFilter};

/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;
const TEAMS: &[&str] = &["finance", "search", "support"];
const STATUSES: &[u16] = &[200, 200, 429, 500, 200];

fn record(i: usize) -> RequestRecord {
    let status = STATUSES[i % STATUSES.len()];
    let mut attempts = vec![AttemptRecord {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        status: Some(if i.is_multiple_of(4) { 503 } else { status }),
        error_class: i.is_multiple_of(4).then_some("server_error"),
        started_at_us: 0,
        latency_ms: 5.0,
    }];
    if i.is_multiple_of(4) {
        // The fallback that served.
        attempts.push(AttemptRecord {
            provider: "anthropic".into(),
            model: "claude-haiku".into(),
            status: Some(status),
            error_class: None,
            started_at_us: 0,
            latency_ms: 5.0,
        });
    }
    let served = attempts
        .last()
        .map(|a| (a.provider.clone(), a.model.clone()));
    RequestRecord {
        request_id: format!("req-{i:04}"),
        // Two records share each millisecond: the cursor must order them by id.
        started_at_ms: BASE + (i as i64 / 2) * 60_000,
        endpoint: "chat.completions",
        dialect: "openai",
        key_id: Some(format!("key-{}", i % 5)),
        user: Some(format!("user-{}", i % 7)),
        team: Some(TEAMS[i % TEAMS.len()].into()),
        feature: i.is_multiple_of(2).then(|| "chat".to_owned()),
        requested_model: "smart".into(),
        route: Some("smart".into()),
        provider: served.as_ref().map(|s| s.0.clone()),
        model: served.map(|s| s.1),
        status,
        error_code: (status >= 400).then(|| "upstream_error".to_owned()),
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_usd: 0.25,
        latency_ms: 100.0,
        attempts,
        ..RequestRecord::default()
    }
}

fn filter() -> RequestFilter {
    RequestFilter {
        limit: 500,
        ..RequestFilter::default()
    }
}

/// Every page of `f`, following the cursor; the ids in order.
async fn all_pages(db: &Database, mut f: RequestFilter) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let page = db.search_requests(&f).await.expect("search");
        assert!(page.rows.len() <= f.limit as usize);
        ids.extend(page.rows.iter().map(|r| r.request_id.clone()));
        match page.next {
            Some(next) => f.before = Some(Cursor::parse(&next).expect("a valid cursor")),
            None => return ids,
        }
    }
}

/// The ids of `records` that `keep` accepts, newest first (as the explorer orders them).
fn expected(records: &[RequestRecord], keep: impl Fn(&RequestRecord) -> bool) -> Vec<String> {
    let mut matching: Vec<&RequestRecord> = records.iter().filter(|r| keep(r)).collect();
    matching
        .sort_by(|a, b| (b.started_at_ms, &b.request_id).cmp(&(a.started_at_ms, &a.request_id)));
    matching.iter().map(|r| r.request_id.clone()).collect()
}

async fn filters_and_pages(db: Database) {
    let records: Vec<RequestRecord> = (0..120).map(record).collect();
    db.write_records(&records).await.expect("write");

    let everything = all_pages(
        &db,
        RequestFilter {
            limit: 7,
            ..filter()
        },
    )
    .await;
    assert_eq!(everything, expected(&records, |_| true), "pages of 7");

    let by_team = RequestFilter {
        team: Some("search".into()),
        ..filter()
    };
    assert_eq!(
        all_pages(&db, by_team).await,
        expected(&records, |r| r.team.as_deref() == Some("search"))
    );
    let errors = RequestFilter {
        status: Some(StatusFilter::Error),
        limit: 10,
        ..filter()
    };
    assert_eq!(
        all_pages(&db, errors).await,
        expected(&records, |r| r.status >= 400)
    );
    let throttled = RequestFilter {
        status: Some(StatusFilter::Code(429)),
        key_id: Some("key-2".into()),
        ..filter()
    };
    assert_eq!(
        all_pages(&db, throttled).await,
        expected(&records, |r| r.status == 429
            && r.key_id.as_deref() == Some("key-2"))
    );
    let fell_back = RequestFilter {
        error_class: Some("server_error".into()),
        model: Some("claude-haiku".into()),
        ..filter()
    };
    let fallbacks = expected(&records, |r| r.attempts.len() == 2);
    assert_eq!(all_pages(&db, fell_back).await, fallbacks);
    let window = RequestFilter {
        from_ms: Some(BASE + 10 * 60_000),
        to_ms: Some(BASE + 20 * 60_000),
        feature: Some("chat".into()),
        ..filter()
    };
    assert_eq!(
        all_pages(&db, window).await,
        expected(&records, |r| r.started_at_ms >= BASE + 10 * 60_000
            && r.started_at_ms < BASE + 20 * 60_000
            && r.feature.is_some())
    );
    let nobody = RequestFilter {
        user: Some("nobody\0".into()),
        ..filter()
    };
    assert!(db.search_requests(&nobody).await.unwrap().rows.is_empty());

    // What a row says of a request that fell back.
    let one = RequestFilter {
        limit: 1,
        before: Cursor::parse(&format!("{}:req-0001", BASE)),
        ..filter()
    };
    let page = db.search_requests(&one).await.unwrap();
    let row = &page.rows[0];
    assert_eq!(row.request_id, "req-0000");
    assert_eq!((row.attempts, row.fallbacks), (2, 1));
    assert_eq!(row.error_class.as_deref(), Some("server_error"));
    assert_eq!(row.model, "claude-haiku");
    assert_eq!(row.provider.as_deref(), Some("anthropic"));
    assert_eq!(row.cost_usd, 0.25);
    assert_eq!(page.next, None, "the oldest row ends the log");
}

async fn replays_link_both_ways(db: Database) {
    let records: Vec<RequestRecord> = (0..3).map(record).collect();
    db.write_records(&records).await.expect("write");
    db.link_replay("req-0001", "req-0000", "admin-0", BASE)
        .await
        .unwrap();
    db.link_replay("req-0002", "req-0000", "admin-0", BASE + 1)
        .await
        .unwrap();
    let original = db.replay_links("req-0000").await.unwrap();
    assert_eq!(original.replay_of, None);
    assert_eq!(original.replays, ["req-0001", "req-0002"]);
    let replay = db.replay_links("req-0002").await.unwrap();
    assert_eq!(replay.replay_of.as_deref(), Some("req-0000"));
    let page = db.search_requests(&filter()).await.unwrap();
    let of: Vec<Option<&str>> = page.rows.iter().map(|r| r.replay_of.as_deref()).collect();
    assert_eq!(of, [Some("req-0000"), Some("req-0000"), None]);
}

#[tokio::test]
async fn sqlite_filters_and_pages() {
    common::with_sqlite(filters_and_pages).await;
}

#[tokio::test]
async fn postgres_filters_and_pages() {
    common::with_postgres(filters_and_pages).await;
}

#[tokio::test]
async fn sqlite_replays_link_both_ways() {
    common::with_sqlite(replays_link_both_ways).await;
}

#[tokio::test]
async fn postgres_replays_link_both_ways() {
    common::with_postgres(replays_link_both_ways).await;
}
