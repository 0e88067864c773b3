//! The reports against real databases: SQLite in a temporary file and the PostgreSQL server of
//! this machine (one fresh schema per test, dropped at the end). Known records go in through
//! `Database::write_records` (which fills the rollups); the reports must give back exactly what
//! the records add up to, computed here independently, per group, over the asked range.
//!
//! Costs are multiples of 1/256 and latencies whole milliseconds, so that sums are exact in
//! floating point whatever order the database adds them in.

mod common;

use std::collections::HashMap;

use switchyard_core::record::{AttemptRecord, RequestRecord};
use switchyard_store::reports::{DAY_MS, UsageRow, format_utc};
use switchyard_store::{
    Database, Feedback, GroupBy, ReportError, TimeBucket, TimeRange, UsageQuery, UsageReport,
};

const HOUR: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z.
const BASE: i64 = 1_767_225_600_000;
const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet"),
];
const STATUSES: &[u16] = &[200, 200, 200, 429, 500, 499, 400, 200, 502];

/// `n` records over three days, every dimension varied, some absent, every outcome present.
fn dataset(n: usize) -> Vec<RequestRecord> {
    (0..n).map(record).collect()
}

fn record(i: usize) -> RequestRecord {
    let status = STATUSES[i % STATUSES.len()];
    let served = !matches!(status, 429 | 400);
    let (provider, model) = MODELS[i % MODELS.len()];
    let retried = i.is_multiple_of(5) && served;
    let mut attempts = Vec::new();
    if retried {
        attempts.push(attempt(provider, model, Some("server_error")));
    }
    if served {
        // Every 10th request falls back to the next model.
        let (p, m) = if i.is_multiple_of(10) {
            MODELS[(i + 1) % MODELS.len()]
        } else {
            (provider, model)
        };
        attempts.push(attempt(p, m, (status >= 500).then_some("timeout")));
    }
    RequestRecord {
        request_id: format!("req-{i:06}"),
        started_at_ms: BASE + (i as i64 * 7 * 60_000 + i as i64 % 13) % (3 * DAY_MS),
        endpoint: "chat.completions",
        dialect: "openai",
        key_id: Some(format!("key-{}", i % 7)),
        user: (!i.is_multiple_of(6)).then(|| format!("user-{}", i % 5)),
        team: (!i.is_multiple_of(3)).then(|| format!("team-{}", i % 4)),
        feature: (!i.is_multiple_of(4)).then(|| ["search", "chat"][i % 2].to_owned()),
        requested_model: "smart".into(),
        route: (!i.is_multiple_of(8)).then(|| "smart".to_owned()),
        provider: served.then(|| provider.to_owned()),
        model: served.then(|| model.to_owned()),
        stream: i % 2 == 1,
        status,
        admission: match status {
            429 if i.is_multiple_of(2) => Some("rate_limited"),
            429 => Some("budget_exceeded"),
            _ => None,
        },
        prompt_tokens: 100 + i as u64,
        completion_tokens: if served { 10 + (i % 50) as u64 } else { 0 },
        cached_tokens: (i % 4) as u64,
        cost_usd: (i % 17) as f64 / 256.0,
        cache_hit: i.is_multiple_of(11),
        cache_saved_usd: if i.is_multiple_of(11) { 0.5 } else { 0.0 },
        latency_ms: 20.0 + (i % 100) as f64,
        ttft_ms: (i % 2 == 1 && served).then_some(5.0 + (i % 10) as f64),
        attempts,
        guardrail_actions: match i % 20 {
            0 => vec!["pii:redacted:email".into()],
            1 => vec!["secrets:blocked".into()],
            _ => Vec::new(),
        },
        ..RequestRecord::default()
    }
}

fn attempt(provider: &str, model: &str, error: Option<&'static str>) -> AttemptRecord {
    AttemptRecord {
        provider: provider.into(),
        model: model.into(),
        status: Some(if error.is_some() { 500 } else { 200 }),
        error_class: error,
        started_at_us: 0,
        latency_ms: 10.0,
    }
}

/// What the usage report must say of a group, computed from the records themselves.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    requests: i64,
    errors: i64,
    retried: i64,
    fallbacks: i64,
    cache_hits: i64,
    rate_limited: i64,
    budget_exceeded: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cost_usd: f64,
    cache_saved_usd: f64,
    latency_ms_sum: f64,
}

impl Expected {
    fn add(&mut self, r: &RequestRecord) {
        self.requests += 1;
        self.errors += i64::from(r.status >= 400 && r.status != 499);
        self.retried += i64::from(r.attempts.len() > 1);
        self.fallbacks += i64::from(r.attempts.iter().any(|a| a.model != r.attempts[0].model));
        self.cache_hits += i64::from(r.cache_hit);
        self.rate_limited += i64::from(r.admission == Some("rate_limited"));
        self.budget_exceeded += i64::from(r.admission == Some("budget_exceeded"));
        self.prompt_tokens += r.prompt_tokens as i64;
        self.completion_tokens += r.completion_tokens as i64;
        self.cost_usd += r.cost_usd;
        self.cache_saved_usd += r.cache_saved_usd;
        self.latency_ms_sum += r.latency_ms;
    }

    fn of_row(row: &UsageRow) -> Expected {
        let s = &row.sums;
        Expected {
            requests: s.requests,
            errors: s.errors,
            retried: s.retried,
            fallbacks: s.fallbacks,
            cache_hits: s.cache_hits,
            rate_limited: s.rate_limited,
            budget_exceeded: s.budget_exceeded,
            prompt_tokens: s.prompt_tokens,
            completion_tokens: s.completion_tokens,
            cost_usd: s.cost_usd,
            cache_saved_usd: s.cache_saved_usd,
            latency_ms_sum: s.latency_ms_sum,
        }
    }
}

/// The value of one group-by name for a record, as the report labels it.
fn value_of(r: &RequestRecord, name: &str) -> Option<String> {
    match name {
        "team" => r.team.clone(),
        "user" => r.user.clone(),
        "key" => r.key_id.clone(),
        "feature" => r.feature.clone(),
        "route" => r.route.clone(),
        "provider" => r.provider.clone(),
        "model" => Some(r.model.clone().unwrap_or_else(|| r.requested_model.clone())),
        "day" => Some(format_utc(
            r.started_at_ms.div_euclid(DAY_MS) * DAY_MS,
            false,
        )),
        "hour" => Some(format_utc(r.started_at_ms.div_euclid(HOUR) * HOUR, true)),
        other => panic!("no dimension {other}"),
    }
}

fn expected_groups(
    records: &[RequestRecord],
    names: &[&str],
) -> HashMap<Vec<Option<String>>, Expected> {
    let mut groups: HashMap<_, Expected> = HashMap::new();
    for r in records {
        let key = names.iter().map(|n| value_of(r, n)).collect();
        groups.entry(key).or_default().add(r);
    }
    groups
}

async fn usage(db: &Database, range: TimeRange, group_by: &str, limit: Option<u64>) -> UsageReport {
    let query = UsageQuery::new(range, GroupBy::parse(group_by).unwrap(), limit).unwrap();
    db.usage_report(&query).await.expect("usage report")
}

fn whole() -> TimeRange {
    TimeRange::new(BASE - DAY_MS, BASE + 10 * DAY_MS).unwrap()
}

/// Every row is the exact sum of its group's records, rows are sorted by cost, and the total
/// is the sum of every record.
fn assert_matches(report: &UsageReport, records: &[RequestRecord], names: &[&str]) {
    assert_eq!(report.group_by, names);
    let mut expected = expected_groups(records, names);
    assert_eq!(report.rows.len(), expected.len(), "groups of {names:?}");
    for row in &report.rows {
        let labels: Vec<&str> = row.group.iter().map(|(n, _)| *n).collect();
        assert_eq!(labels, names);
        let key: Vec<Option<String>> = row.group.iter().map(|(_, v)| v.clone()).collect();
        let want = expected
            .remove(&key)
            .unwrap_or_else(|| panic!("no group {key:?}"));
        assert_eq!(Expected::of_row(row), want, "group {key:?}");
    }
    for pair in report.rows.windows(2) {
        assert!(
            pair[0].sums.cost_usd >= pair[1].sums.cost_usd,
            "sorted by cost"
        );
    }
    let cost: f64 = records.iter().map(|r| r.cost_usd).sum();
    assert_eq!(report.total.cost_usd, cost, "total cost");
    assert_eq!(report.total.requests, records.len() as i64);
    assert!(!report.truncated);
}

// ---------------------------------------------------------------------------------------------
// The cases, each run on both engines

async fn sums_per_group(db: &Database) {
    let records = dataset(900);
    assert_eq!(db.write_records(&records).await.unwrap(), records.len());
    let by_team = usage(db, whole(), "team", None).await;
    assert_matches(&by_team, &records, &["team"]);
    // Requests without a team form their own group, shown as null.
    assert!(by_team.rows.iter().any(|r| r.group[0].1.is_none()));

    let total = usage(db, whole(), "", None).await;
    assert_eq!(total.rows.len(), 1);
    assert_matches(&total, &records, &[]);
    let m = total.rows[0].sums.metrics();
    let e = expected_groups(&records, &[]).remove(&vec![]).unwrap();
    assert_eq!(m.error_rate, Some(e.errors as f64 / e.requests as f64));
    assert_eq!(m.retry_rate, Some(e.retried as f64 / e.requests as f64));
    assert_eq!(
        m.fallback_rate,
        Some(e.fallbacks as f64 / e.requests as f64)
    );
    assert_eq!(
        m.cache_hit_rate,
        Some(e.cache_hits as f64 / e.requests as f64)
    );
    assert_eq!(m.avg_latency_ms, Some(e.latency_ms_sum / e.requests as f64));
    assert!(e.retried > 0 && e.fallbacks > 0 && e.rate_limited > 0 && e.budget_exceeded > 0);

    // The JSON form: group columns first, in order, then the numbers.
    let json = serde_json::to_value(&by_team).unwrap();
    assert_eq!(json["group_by"], serde_json::json!(["team"]));
    assert_eq!(json["total"]["cost_usd"], serde_json::json!(e.cost_usd));
    assert!(json["rows"][0]["requests"].is_i64());
    assert!(json["from"].as_str().unwrap().ends_with(":00:00Z"));
}

async fn group_by_combinations(db: &Database) {
    let records = dataset(700);
    db.write_records(&records).await.unwrap();
    for combo in [
        "key",
        "user,feature",
        "provider,model",
        "route,hour",
        "day,team",
        "team,day,model",
        "feature,user,key,route,provider,model,team",
    ] {
        let names: Vec<&str> = combo.split(',').collect();
        let report = usage(db, whole(), combo, None).await;
        assert_matches(&report, &records, &names);
        if let Some(at) = names.iter().position(|n| *n == "day" || *n == "hour") {
            for row in &report.rows {
                let ms = row.bucket_ms.expect("a time bucket");
                let bucket = if names[at] == "day" {
                    TimeBucket::Day
                } else {
                    TimeBucket::Hour
                };
                assert_eq!(row.group[at].1.as_deref(), Some(bucket.label(ms).as_str()));
            }
        }
    }
}

async fn top_spenders(db: &Database) {
    let records = dataset(600);
    db.write_records(&records).await.unwrap();
    let all = usage(db, whole(), "key", None).await;
    let top = usage(db, whole(), "key", Some(3)).await;
    assert_eq!(top.rows.len(), 3);
    assert_eq!(top.rows, all.rows[..3]);
    // The total is the whole range's, not only the three rows'.
    assert_eq!(top.total, all.total);
    assert_eq!(top.total.requests, 600);
}

async fn range_boundaries(db: &Database) {
    let t0 = BASE + 5 * HOUR;
    let at = [t0 - 1, t0, t0 + 1, t0 + HOUR - 1, t0 + HOUR, t0 + 2 * HOUR];
    let records: Vec<RequestRecord> = at
        .iter()
        .enumerate()
        .map(|(i, &ms)| RequestRecord {
            started_at_ms: ms,
            ..record(i * 9) // status 200, served
        })
        .collect();
    db.write_records(&records).await.unwrap();
    let count = |from: i64, to: i64| async move {
        let report = usage(db, TimeRange::new(from, to).unwrap(), "", None).await;
        (
            report.total.requests,
            report.range.from_ms,
            report.range.to_ms,
        )
    };
    // [t0, t0 + 1h): the hour of t0 exactly.
    assert_eq!(count(t0, t0 + HOUR).await, (3, t0, t0 + HOUR));
    // Rounded out: from down to t0, to up to t0 + 2h.
    assert_eq!(
        count(t0 + 1_800_000, t0 + HOUR + 1).await,
        (4, t0, t0 + 2 * HOUR)
    );
    assert_eq!(count(t0 - 1, t0).await, (1, t0 - HOUR, t0));
    assert_eq!(
        count(t0 + 3 * HOUR, t0 + 4 * HOUR).await,
        (0, t0 + 3 * HOUR, t0 + 4 * HOUR)
    );
    let empty = usage(
        db,
        TimeRange::new(BASE - 9 * DAY_MS, BASE - 8 * DAY_MS).unwrap(),
        "team",
        None,
    )
    .await;
    assert!(empty.rows.is_empty());
    assert_eq!(empty.total.requests, 0);

    // Across days: whole days are read from the daily rollup, the edges from the hourly one.
    let later = [BASE + DAY_MS + 3 * HOUR, BASE + 2 * DAY_MS + 6 * HOUR];
    let records: Vec<RequestRecord> = later
        .iter()
        .enumerate()
        .map(|(i, &ms)| RequestRecord {
            started_at_ms: ms,
            ..record(90 + i * 9)
        })
        .collect();
    db.write_records(&records).await.unwrap();
    // [03:00 day 0, 05:00 day 2): the six records of day 0 (an edge), one of day 1 (whole).
    assert_eq!(
        count(t0 - 2 * HOUR, BASE + 2 * DAY_MS + 5 * HOUR).await,
        (7, t0 - 2 * HOUR, BASE + 2 * DAY_MS + 5 * HOUR)
    );
    let by_day = usage(
        db,
        TimeRange::new(BASE, BASE + 3 * DAY_MS).unwrap(),
        "day",
        None,
    )
    .await;
    assert_eq!(by_day.total.requests, 8);
    assert_eq!(by_day.rows.len(), 3);
    assert_eq!(empty.total.metrics().error_rate, None);
}

async fn percentiles(db: &Database) {
    // 1,000 successful requests with latencies 1..=1000 ms (shuffled over the hour), 200 failed
    // ones that count as requests but not in the histogram, 500 streams with a TTFT.
    let mut records = Vec::new();
    for i in 0..1_200usize {
        let latency = ((i * 7_919) % 1_000 + 1) as f64;
        records.push(RequestRecord {
            request_id: format!("lat-{i}"),
            started_at_ms: BASE + (i as i64 * 2_999) % HOUR,
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            requested_model: "gpt-4o".into(),
            status: if i < 1_000 { 200 } else { 503 },
            latency_ms: if i < 1_000 { latency } else { 30_000.0 },
            ttft_ms: (i < 500).then_some(latency / 10.0 + 2.0),
            ..RequestRecord::default()
        });
    }
    db.write_records(&records).await.unwrap();
    let report = db.latency_report(whole()).await.expect("latency report");
    assert_eq!(report.rows.len(), 1);
    let row = &report.rows[0];
    assert_eq!(
        (row.provider.as_str(), row.model.as_str()),
        ("openai", "gpt-4o")
    );
    assert_eq!((row.requests, row.errors), (1_200, 200));
    let latency = row.latency.expect("latency percentiles");
    assert_eq!(latency.count, 1_000);
    let ok: Vec<f64> = (1..=1_000).map(f64::from).collect();
    within_a_bucket(latency.p50_ms, nearest_rank(&ok, 0.50));
    within_a_bucket(latency.p95_ms, nearest_rank(&ok, 0.95));
    within_a_bucket(latency.p99_ms, nearest_rank(&ok, 0.99));
    let ttft = row.ttft.expect("ttft percentiles");
    assert_eq!(ttft.count, 500);
    let ttfts: Vec<f64> = records[..500].iter().filter_map(|r| r.ttft_ms).collect();
    within_a_bucket(ttft.p50_ms, nearest_rank(&ttfts, 0.50));
    within_a_bucket(ttft.p99_ms, nearest_rank(&ttfts, 0.99));
}

fn nearest_rank(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A bucket spans an eighth of an octave: its middle is within 2^(1/16) (4.4 %) of any value in it.
fn within_a_bucket(reported: f64, truth: f64) {
    let ratio = reported / truth;
    assert!(
        (1.0 / 1.045..=1.045).contains(&ratio),
        "reported {reported} ms, true {truth} ms"
    );
}

async fn feedback_averages(db: &Database) {
    let records = dataset(60);
    db.write_records(&records).await.unwrap();
    let scores = [
        ("req-000001", 1.0),
        ("req-000004", 0.0),
        ("req-000007", 0.5),
        ("req-000002", 0.25),
    ];
    for (id, score) in scores {
        let f = Feedback {
            request_id: id,
            score,
            comment: None,
            at_ms: BASE,
        };
        assert!(db.set_feedback(&f).await.unwrap());
    }
    // Posting again replaces the earlier score.
    let again = Feedback {
        request_id: "req-000004",
        score: 1.0,
        comment: Some("better"),
        at_ms: BASE,
    };
    assert!(db.set_feedback(&again).await.unwrap());
    let missing = Feedback {
        request_id: "req-999999",
        score: 1.0,
        comment: None,
        at_ms: BASE,
    };
    assert!(!db.set_feedback(&missing).await.unwrap());

    let report = usage(db, whole(), "model", None).await;
    let row = |model: &str| {
        report
            .rows
            .iter()
            .find(|r| r.group[0].1.as_deref() == Some(model))
            .map(|r| r.sums.metrics())
            .unwrap()
    };
    // req 1, 4 and 7 are gpt-4o-mini (i % 3 == 1); req 2 is claude-sonnet.
    let mini = row("gpt-4o-mini");
    assert_eq!(mini.feedback_count, 3);
    assert_eq!(mini.feedback_avg, Some((1.0 + 1.0 + 0.5) / 3.0));
    let sonnet = row("claude-sonnet");
    assert_eq!(
        (sonnet.feedback_count, sonnet.feedback_avg),
        (1, Some(0.25))
    );
    let gpt = row("gpt-4o");
    assert_eq!((gpt.feedback_count, gpt.feedback_avg), (0, None));
    assert_eq!(report.total.feedback_count, 4);
}

async fn events(db: &Database) {
    let records = dataset(400);
    db.write_records(&records).await.unwrap();
    let report = db.events_report(whole()).await.expect("events report");
    let mut want: HashMap<(String, String, String), i64> = HashMap::new();
    for r in &records {
        for a in &r.attempts {
            if let Some(class) = a.error_class {
                *want
                    .entry((a.provider.clone(), a.model.clone(), class.into()))
                    .or_default() += 1;
            }
        }
    }
    let got: HashMap<_, _> = report
        .attempt_errors
        .iter()
        .map(|e| {
            (
                (e.provider.clone(), e.model.clone(), e.error_class.clone()),
                e.count,
            )
        })
        .collect();
    assert_eq!(got, want);
    let guard = |g: &str, a: &str| {
        report
            .guardrails
            .iter()
            .find(|x| x.guardrail == g && x.action == a)
            .map(|x| x.count)
    };
    assert_eq!(guard("pii", "redacted"), Some(20));
    assert_eq!(guard("secrets", "blocked"), Some(20));
    assert_eq!(report.guardrails.len(), 2);
    let nothing = db
        .events_report(TimeRange::new(BASE - 9 * DAY_MS, BASE - 8 * DAY_MS).unwrap())
        .await
        .unwrap();
    assert!(nothing.attempt_errors.is_empty() && nothing.guardrails.is_empty());
}

#[test]
fn invalid_group_by_is_rejected_naming_the_allowed_values() {
    for bad in [
        "cost",
        "team;drop table usage_hourly",
        "models",
        "team,,nope",
    ] {
        let err = GroupBy::parse(bad).unwrap_err();
        assert!(
            matches!(err, ReportError::UnknownGroupBy(_)),
            "{bad}: {err}"
        );
        let message = err.to_string();
        for allowed in [
            "team", "user", "key", "feature", "model", "provider", "route", "day", "hour",
        ] {
            assert!(message.contains(allowed), "{message}");
        }
    }
    assert_eq!(
        GroupBy::parse("hour,day").unwrap_err(),
        ReportError::TwoTimeBuckets
    );
    assert!(matches!(
        GroupBy::parse("model,MODEL"),
        Err(ReportError::RepeatedGroupBy(_))
    ));
    assert!(matches!(
        TimeRange::new(BASE, BASE - 1),
        Err(ReportError::EmptyRange { .. })
    ));
    let range = whole();
    assert_eq!(
        UsageQuery::new(range, GroupBy::default(), Some(0)),
        Err(ReportError::Limit(0))
    );
    assert!(UsageQuery::new(range, GroupBy::default(), Some(100_001)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Engines (the harness of tests/common: a temporary SQLite file, a fresh PostgreSQL schema)

macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::common::with_sqlite(|db| async move { super::$case(&db).await }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    super::common::with_postgres(|db| async move { super::$case(&db).await }).await;
                }
            )*
        }
    };
}

on_both_engines!(
    sums_per_group,
    group_by_combinations,
    top_spenders,
    range_boundaries,
    percentiles,
    feedback_averages,
    events,
);
