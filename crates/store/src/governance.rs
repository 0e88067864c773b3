//! Governance in SQL: virtual keys (`virtual_keys`, in [`keys`](self::keys)), users and teams
//! (`users`, `teams`, in [`members`](self::members)), the admin audit log (`audit_log`), server
//! settings (`settings`: the secret keys are hashed under), and the spend sums budgets start
//! from. [`KeyLookup`] for [`Database`] is how the key cache of `switchyard-core` reads a key, its
//! user and its team on a miss.
//!
//! Each statement is written once with `$N` parameters, which SQLite reads too: the two dialects
//! differ only in the cast of JSON parameters (`::jsonb` on PostgreSQL), and JSON columns are
//! read back as text (`CAST(… AS TEXT)`) on both. Values are checked on the way in so that what
//! is stored reads back the same on both engines: a NUL character (PostgreSQL refuses it) or a
//! budget that is not a finite number is refused with [`StoreError::Invalid`], not stored; an id
//! holding a NUL is simply not found.
//!
//! This module never sees a key in clear: it stores the hash and the display prefix its caller
//! computed. It does not decide who may do what, validate limits beyond what storage needs, cache
//! anything, or tell other replicas about changes: the admin API, `switchyard-core` and the Redis
//! side do.

use std::future::Future;
use std::pin::Pin;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{Encode, FromRow, Type};
use switchyard_core::admit::limits::Limits;
use switchyard_core::auth::keys::{KeyLookup, KeyRecord, Member};

use crate::db::Database;
use crate::error::StoreError;

/// One statement in both dialects. `sql!("… $7", J, ", $8", J, " …")`: every `J` becomes the
/// cast of a JSON parameter (nothing on SQLite, `::jsonb` on PostgreSQL); the other parts are
/// literals or macros expanding to one.
macro_rules! sql {
    (@part $cast:literal, J) => { $cast };
    (@part $cast:literal, $text:literal) => { $text };
    (@part $cast:literal, $name:ident ! $args:tt) => { $name!$args };
    ($($part:tt $(! $args:tt)?),+ $(,)?) => {
        $crate::governance::Sql {
            sqlite: concat!($(sql!(@part "", $part $(! $args)?)),+),
            postgres: concat!($(sql!(@part "::jsonb", $part $(! $args)?)),+),
        }
    };
}

mod keys;
mod members;

/// Users or teams: the two kinds of [`Member`], one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Team,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Team => "team",
        }
    }
}

/// Which keys [`Database::list_keys`] returns: every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    /// Revoked keys are left out unless this is set.
    pub include_revoked: bool,
}

/// One line of the audit log: who did what to which object, and the details (never a key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

/// Whose requests [`Database::spend_since`] adds up: a key, user, team or feature; a model
/// (the deployment that served, or the route alias asked for); or the whole gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendScope {
    Key,
    User,
    Team,
    Feature,
    Model,
    Global,
}

pub(crate) struct Sql {
    pub(crate) sqlite: &'static str,
    pub(crate) postgres: &'static str,
}

/// A bind parameter.
#[derive(Debug)]
enum Param {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl Param {
    fn text(s: &str) -> Param {
        Param::Text(Some(s.to_owned()))
    }

    /// Text no stored value can equal: PostgreSQL cannot even compare it.
    fn unmatchable(&self) -> bool {
        matches!(self, Param::Text(Some(s)) if s.contains('\0'))
    }
}

fn bind<'q, DB>(
    mut query: Query<'q, DB, DB::Arguments>,
    params: Vec<Param>,
) -> Query<'q, DB, DB::Arguments>
where
    DB: sqlx::Database,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> bool: Encode<'t, DB> + Type<DB>,
{
    for param in params {
        query = match param {
            Param::Text(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
            Param::Bool(v) => query.bind(v),
        };
    }
    query
}

/// A statement and its parameters.
type Step<'a> = (&'a Sql, Vec<Param>);

impl Database {
    /// Runs one statement; how many rows it changed.
    async fn execute(&self, sql: &Sql, params: Vec<Param>) -> Result<u64, sqlx::Error> {
        if params.iter().any(Param::unmatchable) {
            return Ok(0);
        }
        let done = match self {
            Database::Sqlite(pool) => bind(sqlx::query(sql.sqlite), params)
                .execute(pool)
                .await?
                .rows_affected(),
            Database::Postgres(pool) => bind(sqlx::query(sql.postgres), params)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(done)
    }

    /// Runs one query and decodes its rows.
    async fn rows<T>(&self, sql: &Sql, params: Vec<Param>) -> Result<Vec<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow>,
    {
        if params.iter().any(Param::unmatchable) {
            return Ok(Vec::new());
        }
        match self {
            Database::Sqlite(pool) => {
                let rows = bind(sqlx::query(sql.sqlite), params)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(T::from_row).collect()
            }
            Database::Postgres(pool) => {
                let rows = bind(sqlx::query(sql.postgres), params)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(T::from_row).collect()
            }
        }
    }

    /// In one transaction: runs `first`, and `then` only if `first` changed a row. Whether it
    /// did; nothing is changed when it did not.
    async fn execute_if(&self, first: Step<'_>, then: Step<'_>) -> Result<bool, sqlx::Error> {
        if first.1.iter().chain(&then.1).any(Param::unmatchable) {
            return Ok(false);
        }
        match self {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let done = bind(sqlx::query(first.0.sqlite), first.1)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                bind(sqlx::query(then.0.sqlite), then.1)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let done = bind(sqlx::query(first.0.postgres), first.1)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                bind(sqlx::query(then.0.postgres), then.1)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    fn failed(&self) -> impl Fn(sqlx::Error) -> StoreError + Copy {
        let kind = self.kind();
        move |source| StoreError::Query { kind, source }
    }

    /// Like [`Self::failed`], but a unique violation means `what` already exists.
    fn insert_failed(&self, what: impl Fn() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
        let kind = self.kind();
        move |source| match &source {
            sqlx::Error::Database(e) if e.is_unique_violation() => {
                StoreError::Conflict { kind, what: what() }
            }
            _ => StoreError::Query { kind, source },
        }
    }

    fn invalid(&self, what: String) -> impl FnOnce(String) -> StoreError {
        let kind = self.kind();
        move |reason| StoreError::Invalid { kind, what, reason }
    }

    fn corrupt(
        &self,
        table: &'static str,
        id: &str,
    ) -> impl Fn(&'static str, String) -> StoreError + use<> {
        let kind = self.kind();
        let id = id.to_owned();
        move |column, reason| StoreError::CorruptRow {
            kind,
            table,
            id: id.clone(),
            column,
            reason,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values going in and coming out

/// `s` for a text column: refused if it holds a NUL, which PostgreSQL cannot store.
fn stored(column: &str, s: &str) -> Result<Param, String> {
    stored_opt(column, Some(s))
}

fn stored_opt(column: &str, s: Option<&str>) -> Result<Param, String> {
    match s {
        Some(s) if s.contains('\0') => Err(format!("{column} contains a NUL character")),
        s => Ok(Param::Text(s.map(str::to_owned))),
    }
}

/// `value` for a JSON column, refused if it would not read back as it was written.
fn json<T: Serialize>(column: &str, value: &T) -> Result<Param, String> {
    let value = serde_json::to_value(value).map_err(|e| format!("{column}: {e}"))?;
    if has_nul(&value) {
        return Err(format!("{column} contains a NUL character"));
    }
    Ok(Param::Text(Some(value.to_string())))
}

fn json_opt<T: Serialize>(column: &str, value: Option<&T>) -> Result<Param, String> {
    match value {
        Some(value) => json(column, value),
        None => Ok(Param::Text(None)),
    }
}

fn limits_json(limits: &Limits) -> Result<Param, String> {
    if let Some(i) = limits.budgets.iter().position(|b| !b.usd.is_finite()) {
        return Err(format!("limits.budgets[{i}].usd is not a finite amount"));
    }
    json("limits", limits)
}

fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The value of a JSON column read back as text.
fn parse<T: serde::de::DeserializeOwned>(
    corrupt: &impl Fn(&'static str, String) -> StoreError,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e.to_string()))
}

fn parse_opt<T: serde::de::DeserializeOwned>(
    corrupt: &impl Fn(&'static str, String) -> StoreError,
    column: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, StoreError> {
    text.map(|text| parse(corrupt, column, text)).transpose()
}

// ---------------------------------------------------------------------------------------------
// Audit log, settings, spend

const INSERT_AUDIT: Sql = sql!(
    "INSERT INTO audit_log (at_ms, actor, action, target, details) VALUES ($1, $2, $3, $4, $5",
    J,
    ")"
);
const SELECT_AUDIT: Sql = sql!(
    "SELECT id, at_ms, actor, action, target, CAST(details AS TEXT) AS details FROM audit_log \
     ORDER BY at_ms DESC, id DESC LIMIT $1"
);
const SELECT_SETTING: Sql = sql!("SELECT value FROM settings WHERE name = $1");
const INSERT_SETTING_IF_ABSENT: Sql =
    sql!("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING");
const KEY_SECRET: &str = "key_secret";
/// Bytes of a fresh key secret (hex-encoded in the table).
const KEY_SECRET_BYTES: usize = 32;

/// `SUM(cost_usd)` over one scope, `0` when nothing matches. Read from the hourly rollup: budget
/// windows start on hour boundaries (UTC days, weeks, months), so the sum is exact.
macro_rules! spend_sql {
    ($condition:literal) => {
        Sql {
            sqlite: concat!(
                "SELECT TOTAL(cost_usd) FROM usage_hourly WHERE ",
                $condition,
                " AND hour_ms >= $2"
            ),
            postgres: concat!(
                "SELECT CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) FROM usage_hourly WHERE ",
                $condition,
                " AND hour_ms >= $2"
            ),
        }
    };
}
const SPEND_BY_KEY: Sql = spend_sql!("key_id = $1");
const SPEND_BY_USER: Sql = spend_sql!("user_id = $1");
const SPEND_BY_TEAM: Sql = spend_sql!("team = $1");
const SPEND_BY_FEATURE: Sql = spend_sql!("feature = $1");
// A name is a model or a route, never both (the config refuses it): one of the two matches.
const SPEND_BY_MODEL: Sql = spend_sql!("(model = $1 OR route = $1)");
// `$1` is `*`; it is compared so that every scope binds the same two parameters.
const SPEND_GLOBAL: Sql = spend_sql!("$1 = '*'");

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    at_ms: i64,
    actor: String,
    action: String,
    target: String,
    details: String,
}

impl Database {
    /// Appends one entry to the audit log.
    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let params = audit_params(e)
            .map_err(self.invalid(format!("audit entry {:?} on {:?}", e.action, e.target)))?;
        self.execute(&INSERT_AUDIT, params)
            .await
            .map_err(self.failed())?;
        Ok(())
    }

    /// The `limit` most recent audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = self
            .rows(&SELECT_AUDIT, vec![Param::Int(Some(limit.max(0)))])
            .await
            .map_err(self.failed())?;
        rows.into_iter()
            .map(|row| {
                let corrupt = self.corrupt("audit_log", &row.id.to_string());
                Ok(AuditEntry {
                    details: parse(&corrupt, "details", &row.details)?,
                    at_ms: row.at_ms,
                    actor: row.actor,
                    action: row.action,
                    target: row.target,
                })
            })
            .collect()
    }

    /// The secret virtual keys are hashed under, created (32 random bytes, hex) on first use.
    ///
    /// Replicas starting together agree: each inserts its own only if none is stored yet, then
    /// every one reads back the one that won.
    pub async fn key_secret(&self) -> Result<String, StoreError> {
        if let Some(secret) = self.setting(KEY_SECRET).await? {
            return Ok(secret);
        }
        let bytes: [u8; KEY_SECRET_BYTES] = rand::rng().random();
        let fresh: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.execute(
            &INSERT_SETTING_IF_ABSENT,
            vec![Param::text(KEY_SECRET), Param::Text(Some(fresh))],
        )
        .await
        .map_err(self.failed())?;
        self.setting(KEY_SECRET)
            .await?
            .ok_or_else(|| self.failed()(sqlx::Error::RowNotFound))
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let rows: Vec<(String,)> = self
            .rows(&SELECT_SETTING, vec![Param::text(name)])
            .await
            .map_err(self.failed())?;
        Ok(rows.into_iter().next().map(|(value,)| value))
    }

    /// US dollars spent by the requests of one key, user or team in the hours starting at or
    /// after `since_ms` (a budget window's start, always on an hour boundary).
    pub async fn spend_since(
        &self,
        scope: SpendScope,
        id: &str,
        since_ms: i64,
    ) -> Result<f64, StoreError> {
        let sql = match scope {
            SpendScope::Key => &SPEND_BY_KEY,
            SpendScope::User => &SPEND_BY_USER,
            SpendScope::Team => &SPEND_BY_TEAM,
            SpendScope::Feature => &SPEND_BY_FEATURE,
            SpendScope::Model => &SPEND_BY_MODEL,
            SpendScope::Global => &SPEND_GLOBAL,
        };
        let rows: Vec<(f64,)> = self
            .rows(sql, vec![Param::text(id), Param::Int(Some(since_ms))])
            .await
            .map_err(self.failed())?;
        Ok(rows.first().map_or(0.0, |(usd,)| *usd))
    }
}

fn audit_params(e: &AuditEntry) -> Result<Vec<Param>, String> {
    Ok(vec![
        Param::Int(Some(e.at_ms)),
        stored("actor", &e.actor)?,
        stored("action", &e.action)?,
        stored("target", &e.target)?,
        json("details", &e.details)?,
    ])
}

type Lookup<'a, T> = Pin<Box<dyn Future<Output = Result<Option<T>, String>> + Send + 'a>>;

impl KeyLookup for Database {
    fn key_by_hash<'a>(&'a self, hash: &'a str) -> Lookup<'a, KeyRecord> {
        Box::pin(async move { self.find_key_by_hash(hash).await.map_err(|e| e.to_string()) })
    }

    fn user<'a>(&'a self, id: &'a str) -> Lookup<'a, Member> {
        Box::pin(async move {
            self.member(MemberKind::User, id)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn team<'a>(&'a self, id: &'a str) -> Lookup<'a, Member> {
        Box::pin(async move {
            self.member(MemberKind::Team, id)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl switchyard_core::admit::history::SpendHistory for Database {
    fn spent_since<'a>(
        &'a self,
        scope: &'static str,
        id: &'a str,
        since_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Result<f64, String>> + Send + 'a>> {
        Box::pin(async move {
            let scope = match scope {
                "key" => SpendScope::Key,
                "user" => SpendScope::User,
                "team" => SpendScope::Team,
                "feature" => SpendScope::Feature,
                "model" => SpendScope::Model,
                "global" => SpendScope::Global,
                other => return Err(format!("no spend history per {other}")),
            };
            self.spend_since(scope, id, since_ms)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parameters_are_cast_on_postgres_only() {
        assert_eq!(
            INSERT_AUDIT.sqlite,
            "INSERT INTO audit_log (at_ms, actor, action, target, details) \
             VALUES ($1, $2, $3, $4, $5)"
        );
        assert!(INSERT_AUDIT.postgres.ends_with("$5::jsonb)"));
        assert_eq!(SELECT_AUDIT.sqlite, SELECT_AUDIT.postgres);
    }

    #[test]
    fn values_that_would_not_read_back_are_refused() {
        assert!(stored("name", "a\0b").is_err());
        assert!(stored_opt("name", None).is_ok());
        let nested = serde_json::json!({"a": [1, {"b\0": true}]});
        assert!(json("metadata", &nested).unwrap_err().contains("NUL"));
        let mut limits = Limits::default();
        limits.budgets.push(switchyard_core::admit::limits::Budget {
            usd: f64::NAN,
            period: Default::default(),
        });
        assert!(limits_json(&limits).unwrap_err().contains("budgets[0]"));
        assert!(Param::text("x\0").unmatchable() && !Param::text("x").unmatchable());
    }
}
