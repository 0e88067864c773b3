//! The request log: [`RecordSink`] for [`Database`] (batches of [`RequestRecord`] into the
//! `requests` table) and the queries that read it back ([`StoredRequest`]).
//!
//! A batch is written in one transaction of multi-row `INSERT`s, split so that no statement
//! binds more parameters than the database allows, with `ON CONFLICT (request_id) DO NOTHING`:
//! writing the same batch again (a retry after an unclear failure) stores every request once.
//!
//! One odd record must not cost the whole batch, so values are made storable on the way in: NUL
//! characters (which PostgreSQL refuses in text and JSON) become U+FFFD, token counts past
//! `i64::MAX` are capped, and non-finite costs and latencies are stored as 0 (`ttft_ms` as NULL).
//!
//! This module does not batch, retry or decide what a failure means: the recorder of
//! `switchyard-core` does. Aggregations for spend reports belong next to these queries.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use sqlx::query_builder::Separated;
use sqlx::{ColumnIndex, Decode, Encode, Postgres, QueryBuilder, Row, Sqlite, Type};
use switchyard_core::record::{AttemptRecord, RecordSink, RequestRecord};

use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;

/// Every column of `requests`, in insert order.
const INSERT_INTO: &str = "INSERT INTO requests (request_id, started_at_ms, endpoint, key_id, \
    user_id, team, requested_model, route, provider, model, upstream_model, stream, status, \
    error_code, prompt_tokens, completion_tokens, cached_tokens, usage_estimated, cost_usd, \
    latency_ms, ttft_ms, attempts, cache_hit, guardrail_actions, client_disconnected, \
    downgraded_from) ";
const COLUMNS: usize = 26;
/// Bind parameters per statement: `SQLITE_MAX_VARIABLE_NUMBER` (since SQLite 3.32) and the
/// 16-bit parameter count of PostgreSQL's wire protocol.
const SQLITE_MAX_BINDS: usize = 32_766;
const POSTGRES_MAX_BINDS: usize = 65_535;
const _: () = assert!(SQLITE_MAX_BINDS / COLUMNS >= 1 && POSTGRES_MAX_BINDS / COLUMNS >= 1);

/// The `SELECT … FROM requests` of [`StoredRequest`]; `$json` turns a JSON column into text.
macro_rules! select_requests {
    ($json:literal) => {
        concat!(
            "SELECT request_id, started_at_ms, endpoint, key_id, user_id, team, requested_model, \
             route, provider, model, upstream_model, stream, status, error_code, prompt_tokens, \
             completion_tokens, cached_tokens, usage_estimated, cost_usd, latency_ms, ttft_ms, \
             attempts",
            $json,
            " AS attempts, cache_hit, guardrail_actions",
            $json,
            " AS guardrail_actions, client_disconnected, downgraded_from FROM requests"
        )
    };
}

const SQLITE_RECENT: &str = concat!(
    select_requests!(""),
    " ORDER BY started_at_ms DESC, request_id DESC LIMIT ?"
);
const POSTGRES_RECENT: &str = concat!(
    select_requests!("::text"),
    " ORDER BY started_at_ms DESC, request_id DESC LIMIT $1"
);
const COUNT: &str = "SELECT COUNT(*) FROM requests";

/// One upstream call of a stored request (the `attempts` JSON array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAttempt {
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub error_class: Option<String>,
    pub latency_ms: f64,
}

/// A row of `requests`: a [`RequestRecord`] as it was stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRequest {
    pub request_id: String,
    pub started_at_ms: i64,
    pub endpoint: String,
    pub key_id: Option<String>,
    /// The `user_id` column.
    pub user: Option<String>,
    pub team: Option<String>,
    pub requested_model: String,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    pub status: u16,
    pub error_code: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub usage_estimated: bool,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub attempts: Vec<StoredAttempt>,
    pub cache_hit: bool,
    pub guardrail_actions: Vec<String>,
    pub client_disconnected: bool,
    pub downgraded_from: Option<String>,
}

impl RecordSink for Database {
    fn write<'a>(
        &'a self,
        batch: &'a [RequestRecord],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move { self.write_records(batch).await.map_err(|e| e.to_string()) })
    }
}

impl Database {
    /// Stores `batch` in one transaction; requests already stored (same `request_id`) are
    /// skipped, so a batch may be written again safely.
    pub async fn write_records(&self, batch: &[RequestRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        match self {
            Database::Sqlite(pool) => {
                let err = query_error(SQLITE);
                let mut tx = pool.begin().await.map_err(err)?;
                for chunk in batch.chunks(SQLITE_MAX_BINDS / COLUMNS) {
                    let mut insert = insert_statement::<Sqlite>(chunk, "")?;
                    // The text depends on the chunk's length: not worth a cached statement.
                    let query = insert.build().persistent(false);
                    query.execute(&mut *tx).await.map_err(err)?;
                }
                tx.commit().await.map_err(err)
            }
            Database::Postgres(pool) => {
                let err = query_error(POSTGRES);
                let mut tx = pool.begin().await.map_err(err)?;
                for chunk in batch.chunks(POSTGRES_MAX_BINDS / COLUMNS) {
                    let mut insert = insert_statement::<Postgres>(chunk, "::jsonb")?;
                    let query = insert.build().persistent(false);
                    query.execute(&mut *tx).await.map_err(err)?;
                }
                tx.commit().await.map_err(err)
            }
        }
    }

    /// The `limit` most recent requests, newest first.
    pub async fn recent_requests(&self, limit: i64) -> Result<Vec<StoredRequest>, StoreError> {
        let limit = limit.max(0);
        match self {
            Database::Sqlite(pool) => {
                let rows = sqlx::query(SQLITE_RECENT)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(query_error(SQLITE))?;
                rows.iter().map(|row| decode_row(row, SQLITE)).collect()
            }
            Database::Postgres(pool) => {
                let rows = sqlx::query(POSTGRES_RECENT)
                    .bind(limit)
                    .fetch_all(pool)
                    .await
                    .map_err(query_error(POSTGRES))?;
                rows.iter().map(|row| decode_row(row, POSTGRES)).collect()
            }
        }
    }

    /// How many requests are stored.
    pub async fn count_requests(&self) -> Result<i64, StoreError> {
        match self {
            Database::Sqlite(pool) => sqlx::query_scalar(COUNT)
                .fetch_one(pool)
                .await
                .map_err(query_error(SQLITE)),
            Database::Postgres(pool) => sqlx::query_scalar(COUNT)
                .fetch_one(pool)
                .await
                .map_err(query_error(POSTGRES)),
        }
    }
}

fn query_error(kind: &'static str) -> impl Fn(sqlx::Error) -> StoreError + Copy {
    move |source| StoreError::Query { kind, source }
}

/// `INSERT INTO requests … VALUES (…), (…) ON CONFLICT (request_id) DO NOTHING` for `rows`;
/// `json_cast` follows each JSON parameter (`::jsonb` on PostgreSQL).
fn insert_statement<DB>(
    rows: &[RequestRecord],
    json_cast: &'static str,
) -> Result<QueryBuilder<DB>, StoreError>
where
    DB: sqlx::Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
{
    let kind = if json_cast.is_empty() {
        SQLITE
    } else {
        POSTGRES
    };
    // JSON first, so that a failure leaves no half-built statement behind.
    let json = rows
        .iter()
        .map(|r| {
            let unencodable = |column| {
                move |e: serde_json::Error| StoreError::Corrupt {
                    kind,
                    request_id: r.request_id.clone(),
                    column,
                    reason: format!("cannot encode JSON: {e}"),
                }
            };
            let attempts = attempts_json(&r.attempts).map_err(unencodable("attempts"))?;
            let guardrails =
                strings_json(&r.guardrail_actions).map_err(unencodable("guardrail_actions"))?;
            Ok((attempts, guardrails))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let mut insert = QueryBuilder::<DB>::new(INSERT_INTO);
    insert.push_values(
        rows.iter().zip(json),
        |mut b, (r, (attempts, guardrails))| {
            push_record(&mut b, r, attempts, guardrails, json_cast);
        },
    );
    insert.push(" ON CONFLICT (request_id) DO NOTHING");
    Ok(insert)
}

fn push_record<DB>(
    b: &mut Separated<'_, DB, &'static str>,
    r: &RequestRecord,
    attempts: String,
    guardrails: String,
    json_cast: &'static str,
) where
    DB: sqlx::Database,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<f64>: Encode<'q, DB> + Type<DB>,
{
    b.push_bind(text(&r.request_id).into_owned());
    b.push_bind(r.started_at_ms);
    b.push_bind(text(r.endpoint).into_owned());
    b.push_bind(opt_text(&r.key_id));
    b.push_bind(opt_text(&r.user));
    b.push_bind(opt_text(&r.team));
    b.push_bind(text(&r.requested_model).into_owned());
    b.push_bind(opt_text(&r.route));
    b.push_bind(opt_text(&r.provider));
    b.push_bind(opt_text(&r.model));
    b.push_bind(opt_text(&r.upstream_model));
    b.push_bind(r.stream);
    b.push_bind(i32::from(r.status));
    b.push_bind(opt_text(&r.error_code));
    b.push_bind(tokens(r.prompt_tokens));
    b.push_bind(tokens(r.completion_tokens));
    b.push_bind(tokens(r.cached_tokens));
    b.push_bind(r.usage_estimated);
    b.push_bind(finite(r.cost_usd));
    b.push_bind(finite(r.latency_ms));
    b.push_bind(r.ttft_ms.filter(|v| v.is_finite()));
    b.push_bind(attempts);
    b.push_unseparated(json_cast);
    b.push_bind(r.cache_hit);
    b.push_bind(guardrails);
    b.push_unseparated(json_cast);
    b.push_bind(r.client_disconnected);
    b.push_bind(opt_text(&r.downgraded_from));
}

/// `s` without NUL characters, which PostgreSQL cannot store in text or JSON.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt_text(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|s| text(s).into_owned())
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// The stored form of an attempt; the field names are the JSON schema of `attempts`.
#[derive(Serialize)]
struct AttemptJson<'a> {
    provider: Cow<'a, str>,
    model: Cow<'a, str>,
    status: Option<u16>,
    error_class: Option<Cow<'a, str>>,
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
            latency_ms: finite(a.latency_ms),
        })
        .collect();
    serde_json::to_string(&attempts)
}

fn strings_json(items: &[String]) -> Result<String, serde_json::Error> {
    let items: Vec<Cow<'_, str>> = items.iter().map(|s| text(s)).collect();
    serde_json::to_string(&items)
}

fn decode_row<'r, R>(row: &'r R, kind: &'static str) -> Result<StoredRequest, StoreError>
where
    R: Row,
    for<'s> &'s str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let err = query_error(kind);
    let request_id: String = row.try_get("request_id").map_err(err)?;
    let corrupt = |column: &'static str, reason: String| StoreError::Corrupt {
        kind,
        request_id: request_id.clone(),
        column,
        reason,
    };
    let status: i32 = row.try_get("status").map_err(err)?;
    let status = u16::try_from(status).map_err(|_| corrupt("status", status.to_string()))?;
    let attempts: String = row.try_get("attempts").map_err(err)?;
    let attempts =
        serde_json::from_str(&attempts).map_err(|e| corrupt("attempts", e.to_string()))?;
    let guardrails: String = row.try_get("guardrail_actions").map_err(err)?;
    let guardrail_actions = serde_json::from_str(&guardrails)
        .map_err(|e| corrupt("guardrail_actions", e.to_string()))?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column).map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(StoredRequest {
        started_at_ms: row.try_get("started_at_ms").map_err(err)?,
        endpoint: row.try_get("endpoint").map_err(err)?,
        key_id: row.try_get("key_id").map_err(err)?,
        user: row.try_get("user_id").map_err(err)?,
        team: row.try_get("team").map_err(err)?,
        requested_model: row.try_get("requested_model").map_err(err)?,
        route: row.try_get("route").map_err(err)?,
        provider: row.try_get("provider").map_err(err)?,
        model: row.try_get("model").map_err(err)?,
        upstream_model: row.try_get("upstream_model").map_err(err)?,
        stream: row.try_get("stream").map_err(err)?,
        status,
        error_code: row.try_get("error_code").map_err(err)?,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        cached_tokens: count("cached_tokens")?,
        usage_estimated: row.try_get("usage_estimated").map_err(err)?,
        cost_usd: row.try_get("cost_usd").map_err(err)?,
        latency_ms: row.try_get("latency_ms").map_err(err)?,
        ttft_ms: row.try_get("ttft_ms").map_err(err)?,
        attempts,
        cache_hit: row.try_get("cache_hit").map_err(err)?,
        guardrail_actions,
        client_disconnected: row.try_get("client_disconnected").map_err(err)?,
        downgraded_from: row.try_get("downgraded_from").map_err(err)?,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_gets_one_parameter() {
        assert_eq!(INSERT_INTO.matches(',').count() + 1, COLUMNS);
        let rows = vec![RequestRecord::default(), RequestRecord::default()];
        let sqlite = insert_statement::<Sqlite>(&rows, "").unwrap().into_string();
        assert_eq!(sqlite.matches('?').count(), 2 * COLUMNS, "{sqlite}");
        let postgres = insert_statement::<Postgres>(&rows, "::jsonb")
            .unwrap()
            .into_string();
        assert!(
            postgres.contains(&format!("${}", 2 * COLUMNS)),
            "{postgres}"
        );
        assert!(
            !postgres.contains(&format!("${}", 2 * COLUMNS + 1)),
            "{postgres}"
        );
        assert_eq!(postgres.matches("::jsonb").count(), 4, "{postgres}");
        assert!(postgres.ends_with(" ON CONFLICT (request_id) DO NOTHING"));
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
                latency_ms: 0.0,
            }]
        );
    }
}
