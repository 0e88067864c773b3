//! The request log: [`RecordSink`] for [`Database`] (batches of [`RequestRecord`] into the
//! `requests` table and its hourly rollups), feedback on a stored request ([`feedback`]), the
//! queries that read the log back ([`read`]) and the request explorer's search ([`search`]).
//!
//! A batch is written in one transaction: multi-row `INSERT`s of a fixed number of rows (so
//! that each statement is prepared once per connection and reused), with `ON CONFLICT
//! (request_id) DO NOTHING RETURNING request_id`; then the requests that were really inserted
//! are added to the rollups ([`rollup`]) in the same transaction. Writing the same batch again (a
//! retry after an unclear failure) therefore stores every request once and counts it once.
//!
//! One odd record must not cost the whole batch, so values are made storable on the way in: NUL
//! characters (which PostgreSQL refuses in text and JSON) become U+FFFD, token counts past
//! `i64::MAX` are capped, and non-finite costs and latencies are stored as 0 (`ttft_ms` as NULL).
//!
//! This module does not batch, retry or decide what a failure means: the recorder of
//! `switchyard-core` does.

pub mod feedback;
pub mod read;
pub mod rollup;
pub mod search;
mod sqlite_log;
pub mod upkeep;

use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use sqlx::query_builder::Separated;
use sqlx::{Encode, Executor, Postgres, QueryBuilder, Sqlite, Type};
use switchyard_core::record::{AttemptRecord, Batch, RecordSink, RequestRecord};

use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;
pub use read::{StoredAttempt, StoredRequest};

/// Every column of `requests` that a record fills, in insert order.
pub(crate) const INSERT_INTO: &str = "INSERT INTO requests (request_id, started_at_ms, endpoint, dialect, \
    key_id, user_id, team, feature, tags, requested_model, route, provider, model, \
    upstream_model, stream, status, error_code, admission, prompt_tokens, completion_tokens, \
    cached_tokens, usage_estimated, cost_usd, cache_hit, cache_saved_usd, latency_ms, ttft_ms, \
    attempts, guardrail_actions, client_disconnected, downgraded_from, trace_id, request_body, \
    response_body) ";
pub(crate) const COLUMNS: usize = 34;
/// Rows per `INSERT`. Every full chunk reuses one prepared statement; 64 rows keep a statement
/// (2,176 parameters) well inside SQLite's and PostgreSQL's limits, and its preparation cost
/// spread thin.
const ROWS_PER_INSERT: usize = 64;
const _: () = assert!(ROWS_PER_INSERT * COLUMNS <= 32_766);

impl RecordSink for Database {
    fn write<'a>(
        &'a self,
        batch: &'a Batch,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let written = self
                .write_batch(batch.clone())
                .await
                .map_err(|e| e.to_string())?;
            if written < batch.len() {
                tracing::warn!(
                    records = batch.len(),
                    already_stored = batch.len() - written,
                    "request records with a request id already in the log were not stored again (a batch written twice, or clients reusing x-request-id)"
                );
            }
            Ok(())
        })
    }

    fn durable(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "database"
    }
}

impl Database {
    /// Stores `batch` in one transaction and adds it to the rollups; requests already stored
    /// (same `request_id`) are skipped. Returns how many were stored.
    pub async fn write_batch(&self, batch: Batch) -> Result<usize, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        match self {
            Database::Sqlite(pool) => match sqlite_log::writer_for(pool) {
                Some(log) => tokio::task::spawn_blocking(move || log.write(&batch))
                    .await
                    .map_err(|e| StoreError::Write {
                        kind: SQLITE,
                        reason: format!("the writer thread failed: {e}"),
                    })?,
                None => self.write_with_sqlx(&batch).await,
            },
            Database::Postgres(_) => self.write_with_sqlx(&batch).await,
        }
    }

    /// [`Database::write_batch`] for a borrowed batch (it is copied when the write runs on a
    /// thread of its own).
    pub async fn write_records(&self, batch: &[RequestRecord]) -> Result<usize, StoreError> {
        self.write_batch(Arc::new(batch.to_vec())).await
    }

    /// Multi-row `INSERT … RETURNING` through sqlx: PostgreSQL, and in-memory SQLite.
    async fn write_with_sqlx(&self, batch: &[RequestRecord]) -> Result<usize, StoreError> {
        let json = encode_json(batch)?;
        match self {
            Database::Sqlite(pool) => {
                let err = query_error(SQLITE);
                let mut tx = pool.begin().await.map_err(err)?;
                let stored = insert_rows::<Sqlite>(&mut tx, batch, &json, "").await?;
                let added = rollup::Rollup::of(newly(batch, &stored));
                added.write_sqlite(&mut tx).await?;
                tx.commit().await.map_err(err)?;
                Ok(stored.len())
            }
            Database::Postgres(pool) => {
                let err = query_error(POSTGRES);
                let mut tx = pool.begin().await.map_err(err)?;
                let stored = insert_rows::<Postgres>(&mut tx, batch, &json, "::jsonb").await?;
                let added = rollup::Rollup::of(newly(batch, &stored));
                added.write_postgres(&mut tx).await?;
                tx.commit().await.map_err(err)?;
                Ok(stored.len())
            }
        }
    }
}

/// The records of `batch` whose ids are in `stored`.
fn newly<'a>(
    batch: &'a [RequestRecord],
    stored: &'a HashSet<String>,
) -> impl Iterator<Item = &'a RequestRecord> {
    batch.iter().filter(|r| stored.contains(&r.request_id))
}

pub(crate) fn query_error(kind: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Query { kind, source }
}

fn kind_of(json_cast: &str) -> &'static str {
    if json_cast.is_empty() {
        SQLITE
    } else {
        POSTGRES
    }
}

/// Inserts `rows` in chunks; returns the ids that were new.
async fn insert_rows<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    rows: &[RequestRecord],
    json: &[RowJson],
    json_cast: &'static str,
) -> Result<HashSet<String>, StoreError>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> Cow<'q, str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB>,
    (String,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let mut stored = HashSet::with_capacity(rows.len());
    for (chunk, json) in rows
        .chunks(ROWS_PER_INSERT)
        .zip(json.chunks(ROWS_PER_INSERT))
    {
        let mut insert = insert_statement::<DB>(chunk, json, json_cast);
        let ids: Vec<(String,)> = insert
            .build_query_as()
            .fetch_all(&mut **tx)
            .await
            .map_err(query_error(kind_of(json_cast)))?;
        stored.extend(ids.into_iter().map(|(id,)| id));
    }
    Ok(stored)
}

/// The JSON columns of one record, encoded before any statement is built so that a failure
/// leaves nothing half-done.
pub(crate) struct RowJson {
    pub(crate) tags: Cow<'static, str>,
    pub(crate) attempts: String,
    pub(crate) guardrails: Cow<'static, str>,
}

pub(crate) fn encode_json(rows: &[RequestRecord]) -> Result<Vec<RowJson>, StoreError> {
    rows.iter()
        .map(|r| {
            let unencodable = |column| {
                move |e: serde_json::Error| StoreError::Corrupt {
                    kind: "JSON",
                    request_id: r.request_id.clone(),
                    column,
                    reason: format!("cannot encode JSON: {e}"),
                }
            };
            Ok(RowJson {
                tags: strings_json(&r.tags).map_err(unencodable("tags"))?,
                attempts: attempts_json(&r.attempts).map_err(unencodable("attempts"))?,
                guardrails: strings_json(&r.guardrail_actions)
                    .map_err(unencodable("guardrail_actions"))?,
            })
        })
        .collect()
}

/// `INSERT INTO requests … VALUES (…), (…) ON CONFLICT (request_id) DO NOTHING RETURNING
/// request_id` for `rows`; `json_cast` follows each JSON parameter (`::jsonb` on PostgreSQL).
fn insert_statement<'a, DB>(
    rows: &'a [RequestRecord],
    json: &'a [RowJson],
    json_cast: &'static str,
) -> QueryBuilder<DB>
where
    DB: sqlx::Database,
    for<'q> Cow<'q, str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    let mut insert = QueryBuilder::<DB>::new(INSERT_INTO);
    insert.push_values(rows.iter().zip(json), |mut b, (r, json)| {
        push_record(&mut b, r, json, json_cast);
    });
    insert.push(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id");
    insert
}

fn push_record<DB>(
    b: &mut Separated<'_, DB, &'static str>,
    r: &RequestRecord,
    json: &RowJson,
    json_cast: &'static str,
) where
    DB: sqlx::Database,
    for<'q> Cow<'q, str>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<Cow<'q, str>>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
{
    b.push_bind(text(&r.request_id));
    b.push_bind(r.started_at_ms);
    b.push_bind(r.endpoint);
    b.push_bind(r.dialect);
    b.push_bind(opt_text(&r.key_id));
    b.push_bind(opt_text(&r.user));
    b.push_bind(opt_text(&r.team));
    b.push_bind(opt_text(&r.feature));
    b.push_bind(json.tags.as_ref());
    b.push_unseparated(json_cast);
    b.push_bind(text(&r.requested_model));
    b.push_bind(opt_text(&r.route));
    b.push_bind(opt_text(&r.provider));
    b.push_bind(opt_text(&r.model));
    b.push_bind(opt_text(&r.upstream_model));
    b.push_bind(r.stream);
    b.push_bind(i32::from(r.status));
    b.push_bind(opt_text(&r.error_code));
    b.push_bind(r.admission);
    b.push_bind(tokens(r.prompt_tokens));
    b.push_bind(tokens(r.completion_tokens));
    b.push_bind(tokens(r.cached_tokens));
    b.push_bind(r.usage_estimated);
    b.push_bind(finite(r.cost_usd));
    b.push_bind(r.cache_hit);
    b.push_bind(finite(r.cache_saved_usd));
    b.push_bind(finite(r.latency_ms));
    b.push_bind(r.ttft_ms.filter(|v| v.is_finite()));
    b.push_bind(json.attempts.as_str());
    b.push_unseparated(json_cast);
    b.push_bind(json.guardrails.as_ref());
    b.push_unseparated(json_cast);
    b.push_bind(r.client_disconnected);
    b.push_bind(opt_text(&r.downgraded_from));
    b.push_bind(Cow::<str>::Owned(r.trace.trace_id_hex()));
    b.push_bind(opt_text(&r.request_body));
    b.push_bind(opt_text(&r.response_body));
}

/// `s` without NUL characters, which PostgreSQL cannot store in text or JSON.
pub(crate) fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

pub(crate) fn opt_text(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(text)
}

pub(crate) fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// The stored form of an attempt; the field names are the JSON schema of `attempts`.
#[derive(Serialize)]
struct AttemptJson<'a> {
    provider: Cow<'a, str>,
    model: Cow<'a, str>,
    status: Option<u16>,
    error_class: Option<Cow<'a, str>>,
    started_at_us: i64,
    latency_ms: f64,
}

fn attempts_json(attempts: &[AttemptRecord]) -> Result<String, serde_json::Error> {
    let attempts: Vec<AttemptJson<'_>> = attempts
        .iter()
        .map(|a| AttemptJson {
            provider: text(&a.provider),
            model: text(&a.model),
            status: a.status,
            error_class: a.error_class.map(text),
            started_at_us: a.started_at_us,
            latency_ms: finite(a.latency_ms),
        })
        .collect();
    serde_json::to_string(&attempts)
}

/// Most records have no tags and no guardrail actions: `[]` costs no allocation.
fn strings_json(items: &[String]) -> Result<Cow<'static, str>, serde_json::Error> {
    if items.is_empty() {
        return Ok(Cow::Borrowed("[]"));
    }
    let items: Vec<Cow<'_, str>> = items.iter().map(|s| text(s)).collect();
    serde_json::to_string(&items).map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_gets_one_parameter() {
        assert_eq!(INSERT_INTO.matches(',').count() + 1, COLUMNS);
        let rows = vec![RequestRecord::default(), RequestRecord::default()];
        let json = encode_json(&rows).unwrap();
        let sqlite = insert_statement::<Sqlite>(&rows, &json, "").into_string();
        assert_eq!(sqlite.matches('?').count(), 2 * COLUMNS, "{sqlite}");
        let postgres = insert_statement::<Postgres>(&rows, &json, "::jsonb").into_string();
        assert!(
            postgres.contains(&format!("${}", 2 * COLUMNS)),
            "{postgres}"
        );
        assert!(
            !postgres.contains(&format!("${}", 2 * COLUMNS + 1)),
            "{postgres}"
        );
        assert_eq!(postgres.matches("::jsonb").count(), 6, "{postgres}");
        assert!(postgres.ends_with(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id"));
    }

    #[test]
    fn values_are_made_storable() {
        assert_eq!(text("a\0b"), "a\u{FFFD}b");
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
        assert_eq!(tokens(u64::MAX), i64::MAX);
        assert_eq!(finite(f64::NAN), 0.0);
        assert_eq!(finite(f64::INFINITY), 0.0);
        let json = attempts_json(&[AttemptRecord {
            provider: "p\0".into(),
            model: "m".into(),
            status: Some(429),
            error_class: Some("rate_limited"),
            started_at_us: 7,
            latency_ms: f64::NAN,
        }])
        .unwrap();
        let back: Vec<StoredAttempt> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back,
            vec![StoredAttempt {
                provider: "p\u{FFFD}".into(),
                model: "m".into(),
                status: Some(429),
                error_class: Some("rate_limited".into()),
                started_at_us: 7,
                latency_ms: 0.0,
            }]
        );
    }
}
