//! Feedback on a stored request: a score (and an optional comment) set on its row and added to
//! its hour's and its day's rollup rows, so that the reports average it by model, route and feature. Posting again
//! replaces the earlier score; the rollup is corrected by the difference.

use sqlx::Row;

use super::query_error;
use super::rollup::{day_of, hour_of};
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;

/// Feedback for one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Feedback<'a> {
    pub request_id: &'a str,
    pub score: f64,
    pub comment: Option<&'a str>,
    pub at_ms: i64,
}

/// What the request that feedback is for looks like, as far as who may post it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackTarget {
    pub key_id: Option<String>,
}

macro_rules! sql {
    ($sqlite:expr, $postgres:expr) => {
        ($sqlite, $postgres)
    };
}

const FIND: (&str, &str) = sql!(
    "SELECT started_at_ms, key_id, user_id, team, feature, route, provider, \
     COALESCE(model, requested_model) AS model, feedback_score FROM requests WHERE request_id = ?",
    "SELECT started_at_ms, key_id, user_id, team, feature, route, provider, \
     COALESCE(model, requested_model) AS model, feedback_score FROM requests WHERE request_id = $1"
);
const SET: (&str, &str) = sql!(
    "UPDATE requests SET feedback_score = ?, feedback_comment = ?, feedback_at_ms = ? \
     WHERE request_id = ?",
    "UPDATE requests SET feedback_score = $1, feedback_comment = $2, feedback_at_ms = $3 \
     WHERE request_id = $4"
);
/// Adds to the request's row of a usage rollup (`$3` is its hour, or its day).
macro_rules! add_feedback {
    ($table:literal, $time:literal) => {
        concat!(
            "UPDATE ",
            $table,
            " SET feedback_count = feedback_count + $1, feedback_sum = feedback_sum + $2 WHERE ",
            $time,
            " = $3 AND key_id = $4 AND user_id = $5 AND team = $6 AND feature = $7 \
             AND route = $8 AND provider = $9 AND model = $10"
        )
    };
}
/// An update of one rollup, and how a request's start maps to its row there.
type RollupUpdate = (&'static str, fn(i64) -> i64);

const ADD: [RollupUpdate; 2] = [
    (add_feedback!("usage_hourly", "hour_ms"), hour_of),
    (add_feedback!("usage_daily", "day_ms"), day_of),
];

impl Database {
    /// Whose request `request_id` is; `None` when no such request is stored.
    pub async fn feedback_target(
        &self,
        request_id: &str,
    ) -> Result<Option<FeedbackTarget>, StoreError> {
        Ok(self
            .request(request_id)
            .await?
            .map(|r| FeedbackTarget { key_id: r.key_id }))
    }

    /// Sets the feedback of a stored request. `Ok(false)` when no such request is stored.
    pub async fn set_feedback(&self, feedback: &Feedback<'_>) -> Result<bool, StoreError> {
        if feedback.request_id.contains('\0') {
            return Ok(false);
        }
        match self {
            Database::Sqlite(pool) => {
                // IMMEDIATE takes the write lock before the read: a deferred transaction that
                // read before the recorder committed a batch could not then write, and SQLite
                // fails it at once (SQLITE_BUSY_SNAPSHOT) rather than waiting its busy timeout.
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(query_error(SQLITE))?;
                let done = apply::<sqlx::Sqlite>(&mut tx, feedback, FIND.0, SET.0).await;
                finish(tx, done, SQLITE).await
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(query_error(POSTGRES))?;
                let done = apply::<sqlx::Postgres>(&mut tx, feedback, FIND.1, SET.1).await;
                finish(tx, done, POSTGRES).await
            }
        }
    }
}

async fn finish<DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    done: Result<bool, sqlx::Error>,
    kind: &'static str,
) -> Result<bool, StoreError> {
    let found = done.map_err(query_error(kind))?;
    tx.commit().await.map_err(query_error(kind))?;
    Ok(found)
}

async fn apply<DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    f: &Feedback<'_>,
    find: &'static str,
    set: &'static str,
) -> Result<bool, sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> f64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> i64: sqlx::Decode<'r, DB>,
    for<'r> f64: sqlx::Decode<'r, DB>,
    for<'s> &'s str: sqlx::ColumnIndex<DB::Row>,
{
    let Some(row) = sqlx::query(find)
        .bind(f.request_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(false);
    };
    let started: i64 = row.try_get("started_at_ms")?;
    let text = |c: &str| -> Result<String, sqlx::Error> {
        Ok(row.try_get::<Option<String>, _>(c)?.unwrap_or_default())
    };
    let old: Option<f64> = row.try_get("feedback_score")?;
    sqlx::query(set)
        .bind(f.score)
        .bind(f.comment)
        .bind(f.at_ms)
        .bind(f.request_id)
        .execute(&mut **tx)
        .await?;
    for (add, bucket_of) in ADD {
        sqlx::query(add)
            .bind(i64::from(old.is_none()))
            .bind(f.score - old.unwrap_or(0.0))
            .bind(bucket_of(started))
            .bind(text("key_id")?.as_str())
            .bind(text("user_id")?.as_str())
            .bind(text("team")?.as_str())
            .bind(text("feature")?.as_str())
            .bind(text("route")?.as_str())
            .bind(text("provider")?.as_str())
            .bind(text("model")?.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}
