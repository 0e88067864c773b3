//! Upkeep of the request log: retention (deleting records past their age, in small
//! transactions so that writers are never held up for long) and the spend figures that the
//! spend anomaly alert compares (recent hour against a trailing baseline, from the rollup), and
//! the claims by which replicas sharing the database send each alert once.

use super::query_error;
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;

/// Rows deleted per transaction by [`Database::purge_records_before`].
const PURGE_CHUNK: i64 = 5_000;

const PURGE: (&str, &str) = (
    "DELETE FROM requests WHERE request_id IN \
     (SELECT request_id FROM requests WHERE started_at_ms < ? LIMIT ?)",
    "DELETE FROM requests WHERE request_id IN \
     (SELECT request_id FROM requests WHERE started_at_ms < $1 LIMIT $2)",
);

const CLAIM_ALERT: (&str, &str) = (
    "INSERT INTO alerts_sent (kind, scope, id, hour_ms) VALUES (?, ?, ?, ?) \
     ON CONFLICT DO NOTHING",
    "INSERT INTO alerts_sent (kind, scope, id, hour_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT DO NOTHING",
);
const FORGET_ALERTS: (&str, &str) = (
    "DELETE FROM alerts_sent WHERE hour_ms < ?",
    "DELETE FROM alerts_sent WHERE hour_ms < $1",
);

/// Whose spend the anomaly alert watches: a column of `usage_hourly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendOwner {
    Key,
    Team,
    Feature,
}

impl SpendOwner {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendOwner::Key => "key",
            SpendOwner::Team => "team",
            SpendOwner::Feature => "feature",
        }
    }
}

/// One owner's spend: in the recent window, and over the baseline window before it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendWindow {
    pub id: String,
    pub recent_usd: f64,
    pub baseline_usd: f64,
}

macro_rules! spend_windows {
    ($column:literal, $p1:literal, $p2:literal, $p3:literal) => {
        concat!(
            "SELECT ",
            $column,
            " AS id, SUM(CASE WHEN hour_ms >= ",
            $p1,
            " THEN cost_usd ELSE 0 END) AS recent, SUM(CASE WHEN hour_ms < ",
            $p1,
            " THEN cost_usd ELSE 0 END) AS baseline FROM usage_hourly WHERE hour_ms >= ",
            $p2,
            " AND ",
            $column,
            " <> '' GROUP BY ",
            $column,
            " HAVING SUM(CASE WHEN hour_ms >= ",
            $p1,
            " THEN cost_usd ELSE 0 END) >= ",
            $p3
        )
    };
}

fn spend_sql(owner: SpendOwner, postgres: bool) -> &'static str {
    match (owner, postgres) {
        (SpendOwner::Key, false) => spend_windows!("key_id", "?1", "?2", "?3"),
        (SpendOwner::Team, false) => spend_windows!("team", "?1", "?2", "?3"),
        (SpendOwner::Feature, false) => spend_windows!("feature", "?1", "?2", "?3"),
        (SpendOwner::Key, true) => spend_windows!("key_id", "$1", "$2", "$3"),
        (SpendOwner::Team, true) => spend_windows!("team", "$1", "$2", "$3"),
        (SpendOwner::Feature, true) => spend_windows!("feature", "$1", "$2", "$3"),
    }
}

/// Runs one of the `(sqlite, postgres)` statement pairs above with the same bound values on
/// either backend; evaluates to how many rows it changed (or returns the error).
macro_rules! rows_changed {
    ($db:expr, $sql:expr $(, $bind:expr)*) => {
        match $db {
            Database::Sqlite(pool) => sqlx::query($sql.0)
                $(.bind($bind))*
                .execute(pool)
                .await
                .map_err(query_error(SQLITE))?
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query($sql.1)
                $(.bind($bind))*
                .execute(pool)
                .await
                .map_err(query_error(POSTGRES))?
                .rows_affected(),
        }
    };
}

impl Database {
    /// Deletes the records of requests started before `cutoff_ms`; returns how many. The
    /// rollups are kept: they hold no request content, and reports over long periods read them.
    pub async fn purge_records_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = rows_changed!(self, PURGE, cutoff_ms, PURGE_CHUNK);
            total += deleted;
            if deleted < PURGE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }

    /// Spend per owner in the hours from `recent_from_ms` on, and in the hours from
    /// `baseline_from_ms` up to `recent_from_ms`; only owners whose recent spend is at least
    /// `min_recent_usd`.
    pub async fn spend_windows(
        &self,
        owner: SpendOwner,
        recent_from_ms: i64,
        baseline_from_ms: i64,
        min_recent_usd: f64,
    ) -> Result<Vec<SpendWindow>, StoreError> {
        let rows: Vec<(String, f64, f64)> = match self {
            Database::Sqlite(pool) => sqlx::query_as(spend_sql(owner, false))
                .bind(recent_from_ms)
                .bind(baseline_from_ms)
                .bind(min_recent_usd)
                .fetch_all(pool)
                .await
                .map_err(query_error(SQLITE))?,
            Database::Postgres(pool) => sqlx::query_as(spend_sql(owner, true))
                .bind(recent_from_ms)
                .bind(baseline_from_ms)
                .bind(min_recent_usd)
                .fetch_all(pool)
                .await
                .map_err(query_error(POSTGRES))?,
        };
        Ok(rows
            .into_iter()
            .map(|(id, recent_usd, baseline_usd)| SpendWindow {
                id,
                recent_usd,
                baseline_usd,
            })
            .collect())
    }

    /// Claims the alert `kind` about `scope` `id` in the hour starting at `hour_ms`: `true` for
    /// the first claim, `false` when it was already claimed (by this replica or another one).
    pub async fn claim_alert(
        &self,
        kind: &str,
        scope: &str,
        id: &str,
        hour_ms: i64,
    ) -> Result<bool, StoreError> {
        if id.contains('\0') {
            return Ok(true); // PostgreSQL cannot store it; no replica can claim it either
        }
        let inserted = rows_changed!(self, CLAIM_ALERT, kind, scope, id, hour_ms);
        Ok(inserted == 1)
    }

    /// Deletes the claims of alerts for hours before `before_ms`.
    pub async fn forget_alerts_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(rows_changed!(self, FORGET_ALERTS, before_ms))
    }
}
