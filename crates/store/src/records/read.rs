//! Reading the request log back: one request by id, the most recent ones, how many there are.
//! Aggregations live in [`crate::reports`], over the rollups.

use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::query_error;
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;

/// The `SELECT … FROM requests` of [`StoredRequest`]; `$json` turns a JSON column into text.
macro_rules! select_requests {
    ($json:literal) => {
        concat!(
            "SELECT request_id, started_at_ms, endpoint, dialect, key_id, user_id, team, feature, \
             tags",
            $json,
            " AS tags, requested_model, route, provider, model, upstream_model, stream, status, \
             error_code, admission, prompt_tokens, completion_tokens, cached_tokens, \
             usage_estimated, cost_usd, cache_hit, cache_saved_usd, latency_ms, ttft_ms, attempts",
            $json,
            " AS attempts, guardrail_actions",
            $json,
            " AS guardrail_actions, client_disconnected, downgraded_from, trace_id, request_body, \
             response_body, feedback_score, feedback_comment FROM requests"
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
const SQLITE_ONE: &str = concat!(select_requests!(""), " WHERE request_id = ?");
const POSTGRES_ONE: &str = concat!(select_requests!("::text"), " WHERE request_id = $1");
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
    #[serde(default)]
    pub started_at_us: i64,
    pub latency_ms: f64,
}

/// A row of `requests`: a `RequestRecord` as it was stored, with its feedback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredRequest {
    pub request_id: String,
    pub started_at_ms: i64,
    pub endpoint: String,
    pub dialect: String,
    pub key_id: Option<String>,
    /// The `user_id` column.
    pub user: Option<String>,
    pub team: Option<String>,
    pub feature: Option<String>,
    pub tags: Vec<String>,
    pub requested_model: String,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub upstream_model: Option<String>,
    pub stream: bool,
    pub status: u16,
    pub error_code: Option<String>,
    pub admission: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub usage_estimated: bool,
    pub cost_usd: f64,
    pub cache_hit: bool,
    pub cache_saved_usd: f64,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub attempts: Vec<StoredAttempt>,
    pub guardrail_actions: Vec<String>,
    pub client_disconnected: bool,
    pub downgraded_from: Option<String>,
    pub trace_id: Option<String>,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
    pub feedback_score: Option<f64>,
    pub feedback_comment: Option<String>,
}

impl Database {
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

    /// One request by id.
    pub async fn request(&self, request_id: &str) -> Result<Option<StoredRequest>, StoreError> {
        if request_id.contains('\0') {
            return Ok(None); // PostgreSQL cannot even compare it; no stored id has one
        }
        match self {
            Database::Sqlite(pool) => {
                let row = sqlx::query(SQLITE_ONE)
                    .bind(request_id)
                    .fetch_optional(pool)
                    .await
                    .map_err(query_error(SQLITE))?;
                row.map(|row| decode_row(&row, SQLITE)).transpose()
            }
            Database::Postgres(pool) => {
                let row = sqlx::query(POSTGRES_ONE)
                    .bind(request_id)
                    .fetch_optional(pool)
                    .await
                    .map_err(query_error(POSTGRES))?;
                row.map(|row| decode_row(&row, POSTGRES)).transpose()
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

/// A row of `requests` being decoded, whichever the backend: its columns by name, with errors
/// that name the backend and the request. Both the log's readers here and the explorer's
/// search decode through it.
pub(super) struct Columns<'r, R> {
    row: &'r R,
    kind: &'static str,
    pub request_id: String,
}

impl<'r, R> Columns<'r, R>
where
    R: Row,
    for<'s> &'s str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    pub fn new(row: &'r R, kind: &'static str) -> Result<Self, StoreError> {
        let request_id = row.try_get("request_id").map_err(query_error(kind))?;
        Ok(Columns {
            row,
            kind,
            request_id,
        })
    }

    pub fn get<T>(&self, column: &str) -> Result<T, StoreError>
    where
        T: Decode<'r, R::Database> + Type<R::Database>,
    {
        self.row.try_get(column).map_err(query_error(self.kind))
    }

    /// A token count: never negative.
    pub fn count(&self, column: &str) -> Result<u64, StoreError> {
        Ok(u64::try_from(self.get::<i64>(column)?).unwrap_or(0))
    }

    /// A JSON column (stored as text, or cast to text by the query).
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        column: &'static str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(&self.get::<String>(column)?)
            .map_err(|e| self.corrupt(column, e.to_string()))
    }

    pub fn corrupt(&self, column: &'static str, reason: String) -> StoreError {
        StoreError::Corrupt {
            kind: self.kind,
            request_id: self.request_id.clone(),
            column,
            reason,
        }
    }
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
    let c = Columns::new(row, kind)?;
    let status: i32 = c.get("status")?;
    let status = u16::try_from(status).map_err(|_| c.corrupt("status", status.to_string()))?;
    Ok(StoredRequest {
        started_at_ms: c.get("started_at_ms")?,
        endpoint: c.get("endpoint")?,
        dialect: c.get("dialect")?,
        key_id: c.get("key_id")?,
        user: c.get("user_id")?,
        team: c.get("team")?,
        feature: c.get("feature")?,
        tags: c.json("tags")?,
        requested_model: c.get("requested_model")?,
        route: c.get("route")?,
        provider: c.get("provider")?,
        model: c.get("model")?,
        upstream_model: c.get("upstream_model")?,
        stream: c.get("stream")?,
        status,
        error_code: c.get("error_code")?,
        admission: c.get("admission")?,
        prompt_tokens: c.count("prompt_tokens")?,
        completion_tokens: c.count("completion_tokens")?,
        cached_tokens: c.count("cached_tokens")?,
        usage_estimated: c.get("usage_estimated")?,
        cost_usd: c.get("cost_usd")?,
        cache_hit: c.get("cache_hit")?,
        cache_saved_usd: c.get("cache_saved_usd")?,
        latency_ms: c.get("latency_ms")?,
        ttft_ms: c.get("ttft_ms")?,
        attempts: c.json("attempts")?,
        guardrail_actions: c.json("guardrail_actions")?,
        client_disconnected: c.get("client_disconnected")?,
        downgraded_from: c.get("downgraded_from")?,
        trace_id: c.get("trace_id")?,
        request_body: c.get("request_body")?,
        response_body: c.get("response_body")?,
        feedback_score: c.get("feedback_score")?,
        feedback_comment: c.get("feedback_comment")?,
        request_id: c.request_id,
    })
}
