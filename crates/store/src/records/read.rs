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
    let json =
        |column: &'static str| -> Result<String, StoreError> { row.try_get(column).map_err(err) };
    let attempts =
        serde_json::from_str(&json("attempts")?).map_err(|e| corrupt("attempts", e.to_string()))?;
    let guardrail_actions = serde_json::from_str(&json("guardrail_actions")?)
        .map_err(|e| corrupt("guardrail_actions", e.to_string()))?;
    let tags = serde_json::from_str(&json("tags")?).map_err(|e| corrupt("tags", e.to_string()))?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column).map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(StoredRequest {
        started_at_ms: row.try_get("started_at_ms").map_err(err)?,
        endpoint: row.try_get("endpoint").map_err(err)?,
        dialect: row.try_get("dialect").map_err(err)?,
        key_id: row.try_get("key_id").map_err(err)?,
        user: row.try_get("user_id").map_err(err)?,
        team: row.try_get("team").map_err(err)?,
        feature: row.try_get("feature").map_err(err)?,
        tags,
        requested_model: row.try_get("requested_model").map_err(err)?,
        route: row.try_get("route").map_err(err)?,
        provider: row.try_get("provider").map_err(err)?,
        model: row.try_get("model").map_err(err)?,
        upstream_model: row.try_get("upstream_model").map_err(err)?,
        stream: row.try_get("stream").map_err(err)?,
        status,
        error_code: row.try_get("error_code").map_err(err)?,
        admission: row.try_get("admission").map_err(err)?,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        cached_tokens: count("cached_tokens")?,
        usage_estimated: row.try_get("usage_estimated").map_err(err)?,
        cost_usd: row.try_get("cost_usd").map_err(err)?,
        cache_hit: row.try_get("cache_hit").map_err(err)?,
        cache_saved_usd: row.try_get("cache_saved_usd").map_err(err)?,
        latency_ms: row.try_get("latency_ms").map_err(err)?,
        ttft_ms: row.try_get("ttft_ms").map_err(err)?,
        attempts,
        guardrail_actions,
        client_disconnected: row.try_get("client_disconnected").map_err(err)?,
        downgraded_from: row.try_get("downgraded_from").map_err(err)?,
        trace_id: row.try_get("trace_id").map_err(err)?,
        request_body: row.try_get("request_body").map_err(err)?,
        response_body: row.try_get("response_body").map_err(err)?,
        feedback_score: row.try_get("feedback_score").map_err(err)?,
        feedback_comment: row.try_get("feedback_comment").map_err(err)?,
        request_id,
    })
}
