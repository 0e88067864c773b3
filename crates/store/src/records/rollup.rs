//! The hourly rollups of the request log, added to in the transaction that stores the records:
//! `usage_hourly` (requests, outcomes, tokens, spend per hour and per key, user, team, feature,
//! route, provider and model), `latency_hourly` (latency and time-to-first-token histograms per
//! hour, provider and model) and `events_hourly` (failed attempts by error class, guardrail
//! actions).
//!
//! Reports read these instead of the log, so a month of a million requests is answered from a
//! few thousand rows, and the log needs no index per report. A batch is summed in memory first:
//! the database sees one upsert per distinct group, not one per record.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The groups are in-process and short-lived: no need for SipHash's flood resistance.
type Fast = foldhash::fast::RandomState;

use sqlx::{Encode, Executor, QueryBuilder, Type};
use switchyard_core::record::RequestRecord;

use super::{finite, query_error, text, tokens};
use crate::db::{POSTGRES, SQLITE};
use crate::error::StoreError;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Histogram buckets per doubling of latency: 8 keeps a percentile within about 4.5 %.
const BUCKETS_PER_OCTAVE: f64 = 8.0;
/// Groups per upsert statement (26 parameters each).
const GROUPS_PER_UPSERT: usize = 256;

/// The start of the UTC day that `ms` falls in.
pub fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// The start of the hour that `ms` falls in.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

/// The histogram bucket of a latency: 0 below 1 ms, then 8 per doubling.
pub fn latency_bucket(ms: f64) -> i32 {
    if ms.is_nan() || ms < 1.0 {
        0
    } else {
        ((ms.log2() * BUCKETS_PER_OCTAVE).floor() as i32 + 1).min(1_000)
    }
}

/// The value a bucket stands for in a percentile: the geometric middle of its bounds.
pub fn bucket_value_ms(bucket: i32) -> f64 {
    if bucket <= 0 {
        0.5
    } else {
        2f64.powf((f64::from(bucket) - 0.5) / BUCKETS_PER_OCTAVE)
    }
}

#[derive(Hash, PartialEq, Eq, PartialOrd, Ord)]
struct UsageKey<'a> {
    hour_ms: i64,
    key_id: &'a str,
    user_id: &'a str,
    team: &'a str,
    feature: &'a str,
    route: &'a str,
    provider: &'a str,
    model: &'a str,
}

impl<'a> UsageKey<'a> {
    /// The text dimensions, in the column order of `USAGE_DIMS`.
    fn dims(&self) -> [&'a str; 7] {
        [
            self.key_id,
            self.user_id,
            self.team,
            self.feature,
            self.route,
            self.provider,
            self.model,
        ]
    }
}

#[derive(Default)]
struct UsageSums {
    requests: i64,
    errors: i64,
    server_errors: i64,
    disconnects: i64,
    attempts: i64,
    retried: i64,
    fallbacks: i64,
    cache_hits: i64,
    rate_limited: i64,
    budget_exceeded: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    cost_usd: f64,
    cache_saved_usd: f64,
    latency_ms_sum: f64,
}

impl UsageSums {
    /// What one record adds.
    fn of(r: &RequestRecord) -> UsageSums {
        let flag = |b: bool| i64::from(b);
        UsageSums {
            requests: 1,
            errors: flag(r.status >= 400 && r.status != 499),
            server_errors: flag(r.status >= 500),
            disconnects: flag(r.status == 499),
            attempts: r.attempts.len() as i64,
            retried: flag(r.attempts.len() > 1),
            fallbacks: flag(r.attempts.iter().any(|a| a.model != r.attempts[0].model)),
            cache_hits: flag(r.cache_hit),
            rate_limited: flag(matches!(r.admission, Some("rate_limited" | "too_large"))),
            budget_exceeded: flag(r.admission == Some("budget_exceeded")),
            prompt_tokens: tokens(r.prompt_tokens),
            completion_tokens: tokens(r.completion_tokens),
            cached_tokens: tokens(r.cached_tokens),
            cost_usd: finite(r.cost_usd),
            cache_saved_usd: finite(r.cache_saved_usd),
            latency_ms_sum: finite(r.latency_ms),
        }
    }

    fn add(&mut self, d: &UsageSums) {
        self.requests += d.requests;
        self.errors += d.errors;
        self.server_errors += d.server_errors;
        self.disconnects += d.disconnects;
        self.attempts += d.attempts;
        self.retried += d.retried;
        self.fallbacks += d.fallbacks;
        self.cache_hits += d.cache_hits;
        self.rate_limited += d.rate_limited;
        self.budget_exceeded += d.budget_exceeded;
        self.prompt_tokens = self.prompt_tokens.saturating_add(d.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(d.completion_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(d.cached_tokens);
        self.cost_usd += d.cost_usd;
        self.cache_saved_usd += d.cache_saved_usd;
        self.latency_ms_sum += d.latency_ms_sum;
    }

    /// The counts, in the column order of `USAGE_SUMS`.
    fn counts(&self) -> [i64; 13] {
        [
            self.requests,
            self.errors,
            self.server_errors,
            self.disconnects,
            self.attempts,
            self.retried,
            self.fallbacks,
            self.cache_hits,
            self.rate_limited,
            self.budget_exceeded,
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
        ]
    }

    /// The sums, after the counts.
    fn sums(&self) -> [f64; 3] {
        [self.cost_usd, self.cache_saved_usd, self.latency_ms_sum]
    }
}

/// (hour or day, provider, model, series, bucket) of a histogram count.
type LatencyKey<'a> = (i64, &'a str, &'a str, &'static str, i32);

/// What one batch adds to the rollups.
#[derive(Default)]
pub(crate) struct Rollup<'a> {
    usage: HashMap<UsageKey<'a>, UsageSums, Fast>,
    /// The same sums per day (`UsageKey::hour_ms` holds the start of the day).
    usage_daily: HashMap<UsageKey<'a>, UsageSums, Fast>,
    /// (hour, provider, model, series, bucket) → count.
    latency: HashMap<LatencyKey<'a>, i64, Fast>,
    /// (hour, provider, model, kind, label) → count.
    events: HashMap<(i64, &'a str, &'a str, &'static str, &'a str), i64, Fast>,
}

impl<'a> Rollup<'a> {
    /// Sums `records` (the ones a write inserted).
    pub(crate) fn of(records: impl Iterator<Item = &'a RequestRecord>) -> Rollup<'a> {
        let mut rollup = Rollup::default();
        for r in records {
            rollup.add(r);
        }
        rollup
    }

    /// Adds to the rollups through rusqlite, one cached upsert per group (see `sqlite_log`).
    pub(crate) fn write_rusqlite(&self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
        for (table, groups) in USAGE_TABLES.iter().zip([&self.usage, &self.usage_daily]) {
            let mut usage = tx.prepare_cached(&format!(
                "{}VALUES ({}){}",
                table.insert,
                numbered(24),
                table.merge
            ))?;
            for (k, s) in groups {
                let dims = k.dims().map(text);
                let (counts, sums) = (s.counts(), s.sums());
                let values: Vec<&dyn rusqlite::ToSql> =
                    std::iter::once(&k.hour_ms as &dyn rusqlite::ToSql)
                        .chain(dims.iter().map(|d| d as &dyn rusqlite::ToSql))
                        .chain(counts.iter().map(|n| n as &dyn rusqlite::ToSql))
                        .chain(sums.iter().map(|v| v as &dyn rusqlite::ToSql))
                        .collect();
                usage.execute(rusqlite::params_from_iter(values))?;
            }
        }
        let daily = self.latency_daily();
        for ((insert, merge), groups) in LATENCY_TABLES.iter().zip([&self.latency, &daily]) {
            let mut latency =
                tx.prepare_cached(&format!("{insert}VALUES ({}){merge}", numbered(6)))?;
            for ((at, provider, model, series, bucket), n) in groups {
                latency.execute(rusqlite::params![
                    at,
                    text(provider),
                    text(model),
                    series,
                    bucket,
                    n
                ])?;
            }
        }
        let mut events = tx.prepare_cached(&format!(
            "{EVENTS_INSERT}VALUES ({}){EVENTS_MERGE}",
            numbered(6)
        ))?;
        for ((hour, provider, model, kind, label), n) in &self.events {
            events.execute(rusqlite::params![
                hour,
                text(provider),
                text(model),
                kind,
                text(label),
                n
            ])?;
        }
        Ok(())
    }

    /// The batch's histograms summed per day.
    fn latency_daily(&self) -> HashMap<LatencyKey<'a>, i64, Fast> {
        let mut daily: HashMap<LatencyKey<'a>, i64, Fast> = HashMap::default();
        for ((hour, provider, model, series, bucket), n) in &self.latency {
            let day = day_of(*hour);
            *daily
                .entry((day, provider, model, series, *bucket))
                .or_default() += n;
        }
        daily
    }

    fn add(&mut self, r: &'a RequestRecord) {
        let hour_ms = hour_of(r.started_at_ms);
        let provider = r.provider.as_deref().unwrap_or("");
        let model = r.model.as_deref().unwrap_or(&r.requested_model);
        let key = UsageKey {
            hour_ms,
            key_id: r.key_id.as_deref().unwrap_or(""),
            user_id: r.user.as_deref().unwrap_or(""),
            team: r.team.as_deref().unwrap_or(""),
            feature: r.feature.as_deref().unwrap_or(""),
            route: r.route.as_deref().unwrap_or(""),
            provider,
            model,
        };
        let delta = UsageSums::of(r);
        let daily = UsageKey {
            hour_ms: day_of(r.started_at_ms),
            ..key
        };
        self.usage.entry(key).or_default().add(&delta);
        self.usage_daily.entry(daily).or_default().add(&delta);

        if r.status < 400 && !provider.is_empty() {
            let bucket = latency_bucket(r.latency_ms);
            *self
                .latency
                .entry((hour_ms, provider, model, "latency", bucket))
                .or_default() += 1;
            if let Some(ttft) = r.ttft_ms {
                let bucket = latency_bucket(ttft);
                *self
                    .latency
                    .entry((hour_ms, provider, model, "ttft", bucket))
                    .or_default() += 1;
            }
        }
        for a in &r.attempts {
            if let Some(class) = a.error_class {
                let at = (hour_ms, a.provider.as_str(), a.model.as_str());
                *self
                    .events
                    .entry((at.0, at.1, at.2, "attempt_error", class))
                    .or_default() += 1;
            }
        }
        for action in &r.guardrail_actions {
            *self
                .events
                .entry((hour_ms, provider, model, "guardrail", guard_label(action)))
                .or_default() += 1;
        }
    }

    pub(crate) async fn write_sqlite(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ) -> Result<(), StoreError> {
        self.write::<sqlx::Sqlite>(tx, SQLITE).await
    }

    pub(crate) async fn write_postgres(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> Result<(), StoreError> {
        self.write::<sqlx::Postgres>(tx, POSTGRES).await
    }

    async fn write<DB>(
        &self,
        tx: &mut sqlx::Transaction<'_, DB>,
        kind: &'static str,
    ) -> Result<(), StoreError>
    where
        DB: sqlx::Database + sqlx::database::HasStatementCache,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        for<'q> &'q str: Encode<'q, DB> + Type<DB>,
        for<'q> std::borrow::Cow<'q, str>: Encode<'q, DB> + Type<DB>,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
        for<'q> i32: Encode<'q, DB> + Type<DB>,
        for<'q> f64: Encode<'q, DB> + Type<DB>,
    {
        let err = query_error(kind);
        // Rows are upserted in key order: an upsert locks its rows in the order it lists them,
        // and two replicas listing the same rows in different orders would deadlock.
        for (table, groups) in USAGE_TABLES.iter().zip([&self.usage, &self.usage_daily]) {
            let usage = sorted(groups);
            for chunk in usage.chunks(GROUPS_PER_UPSERT) {
                let mut q = QueryBuilder::<DB>::new(&table.insert);
                q.push_values(chunk, |mut b, (k, s)| {
                    b.push_bind(k.hour_ms);
                    for dim in k.dims() {
                        b.push_bind(text(dim));
                    }
                    for n in s.counts() {
                        b.push_bind(n);
                    }
                    for v in s.sums() {
                        b.push_bind(v);
                    }
                });
                q.push(&table.merge);
                q.build()
                    .persistent(false)
                    .execute(&mut **tx)
                    .await
                    .map_err(err)?;
            }
        }
        let daily = self.latency_daily();
        for ((insert, merge), groups) in LATENCY_TABLES.iter().zip([&self.latency, &daily]) {
            let latency = sorted(groups);
            for chunk in latency.chunks(GROUPS_PER_UPSERT * 4) {
                let mut q = QueryBuilder::<DB>::new(insert);
                q.push_values(
                    chunk,
                    |mut b, ((at, provider, model, series, bucket), n)| {
                        b.push_bind(*at)
                            .push_bind(text(provider))
                            .push_bind(text(model))
                            .push_bind(*series)
                            .push_bind(*bucket)
                            .push_bind(**n);
                    },
                );
                q.push(merge);
                q.build()
                    .persistent(false)
                    .execute(&mut **tx)
                    .await
                    .map_err(err)?;
            }
        }
        let events = sorted(&self.events);
        for chunk in events.chunks(GROUPS_PER_UPSERT * 4) {
            let mut q = QueryBuilder::<DB>::new(EVENTS_INSERT);
            q.push_values(chunk, |mut b, ((hour, provider, model, kind, label), n)| {
                b.push_bind(*hour)
                    .push_bind(text(provider))
                    .push_bind(text(model))
                    .push_bind(*kind)
                    .push_bind(text(label))
                    .push_bind(**n);
            });
            q.push(EVENTS_MERGE);
            q.build()
                .persistent(false)
                .execute(&mut **tx)
                .await
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A rollup's groups in key order.
fn sorted<K: Ord, V>(groups: &HashMap<K, V, Fast>) -> Vec<(&K, &V)> {
    let mut list: Vec<_> = groups.iter().collect();
    list.sort_unstable_by(|a, b| a.0.cmp(b.0));
    list
}

/// `guardrail:action`, without what was redacted: a bounded label.
fn guard_label(action: &str) -> &str {
    match action.match_indices(':').nth(1) {
        Some((i, _)) => &action[..i],
        None => action,
    }
}

/// `?1, ?2, …, ?n`.
fn numbered(n: usize) -> String {
    (1..=n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The histogram tables' upserts: `latency_hourly` by `hour_ms`, `latency_daily` by `day_ms`.
static LATENCY_TABLES: LazyLock<[(String, String); 2]> = LazyLock::new(|| {
    [("latency_hourly", "hour_ms"), ("latency_daily", "day_ms")].map(|(table, time)| {
        (
            format!("INSERT INTO {table} ({time}, provider, model, series, bucket, n) "),
            format!(
                " ON CONFLICT ({time}, provider, model, series, bucket) \
                 DO UPDATE SET n = {table}.n + excluded.n"
            ),
        )
    })
});
const EVENTS_INSERT: &str = "INSERT INTO events_hourly (hour_ms, provider, model, kind, label, n) ";
const EVENTS_MERGE: &str = " ON CONFLICT (hour_ms, provider, model, kind, label) \
    DO UPDATE SET n = events_hourly.n + excluded.n";

/// The summed columns of the usage tables, in the order of `UsageSums::counts` then `sums`.
const USAGE_SUMS: [&str; 16] = [
    "requests",
    "errors",
    "server_errors",
    "disconnects",
    "attempts",
    "retried",
    "fallbacks",
    "cache_hits",
    "rate_limited",
    "budget_exceeded",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "cache_saved_usd",
    "latency_ms_sum",
];
const USAGE_DIMS: &str = "key_id, user_id, team, feature, route, provider, model";

/// A usage table (`usage_hourly` by `hour_ms`, `usage_daily` by `day_ms`) and its upsert.
pub(crate) struct UsageTable {
    /// `INSERT INTO table (time, dims…, sums…) ` — `VALUES …` follows.
    insert: String,
    /// ` ON CONFLICT (time, dims…) DO UPDATE SET sum = table.sum + excluded.sum, …`
    merge: String,
}

impl UsageTable {
    fn new(table: &str, time: &str) -> UsageTable {
        let sums = USAGE_SUMS.join(", ");
        let adds: Vec<String> = USAGE_SUMS
            .iter()
            .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
            .collect();
        UsageTable {
            insert: format!("INSERT INTO {table} ({time}, {USAGE_DIMS}, {sums}) "),
            merge: format!(
                " ON CONFLICT ({time}, {USAGE_DIMS}) DO UPDATE SET {}",
                adds.join(", ")
            ),
        }
    }
}

static USAGE_TABLES: LazyLock<[UsageTable; 2]> = LazyLock::new(|| {
    [
        UsageTable::new("usage_hourly", "hour_ms"),
        UsageTable::new("usage_daily", "day_ms"),
    ]
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_grow_by_an_eighth_of_an_octave() {
        assert_eq!(latency_bucket(0.2), 0);
        assert_eq!(latency_bucket(f64::NAN), 0);
        assert_eq!(latency_bucket(1.0), 1);
        assert_eq!(latency_bucket(2.0), 9);
        for ms in [3.0, 47.0, 250.0, 1_234.0, 59_000.0] {
            let v = bucket_value_ms(latency_bucket(ms));
            assert!((v / ms - 1.0).abs() < 0.05, "{ms} ms read back as {v}");
        }
    }

    #[test]
    fn guardrail_labels_drop_what_was_redacted() {
        assert_eq!(guard_label("pii:redacted:email"), "pii:redacted");
        assert_eq!(guard_label("secrets:blocked"), "secrets:blocked");
        assert_eq!(guard_label("odd"), "odd");
    }

    #[test]
    fn hours_start_on_the_hour() {
        assert_eq!(hour_of(3_600_000 * 5 + 17), 3_600_000 * 5);
        assert_eq!(hour_of(-1), -HOUR_MS);
    }
}
