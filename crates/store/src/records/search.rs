//! The request explorer's queries: a filtered, newest-first page of the request log with a
//! keyset cursor ([`Database::search_requests`]), and the links between a request and its
//! replays ([`Database::link_replay`], [`Database::replay_links`]).
//!
//! A page walks the `started_at_ms` index backwards from the cursor (or from `to`) and stops at
//! `limit + 1` matching rows, so its cost grows with how many rows it must skip to find a page,
//! not with the size of the log; the time range bounds that walk. No index per filter: every
//! index on the log is paid for by every record written, and the rollups answer the
//! aggregations. The cursor is `<started_at_ms>:<request_id>` of the last row, which is stable
//! while new requests arrive (they sort before it).

use serde::Serialize;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::query_error;
use super::read::{Columns, StoredAttempt};
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;

/// Largest page.
pub const MAX_LIMIT: i64 = 500;

/// Which requests a search returns: every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// Requests started at or after this time (epoch ms).
    pub from_ms: Option<i64>,
    /// Requests started before this time (epoch ms).
    pub to_ms: Option<i64>,
    pub key_id: Option<String>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub feature: Option<String>,
    /// The deployment that served, or (when none did) the model asked for.
    pub model: Option<String>,
    pub provider: Option<String>,
    pub route: Option<String>,
    pub status: Option<StatusFilter>,
    /// Some attempt failed with this class (`rate_limited`, `timeout`, …).
    pub error_class: Option<String>,
    /// Rows per page, 1 to [`MAX_LIMIT`].
    pub limit: i64,
    /// Continue after this row (the `cursor` of the previous page's last row).
    pub before: Option<Cursor>,
}

/// What the client got: success, any error, or one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Ok,
    Error,
    Code(u16),
}

impl StatusFilter {
    /// `ok`, `error`, or an HTTP status code.
    pub fn parse(s: &str) -> Option<StatusFilter> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ok" | "success" => Some(StatusFilter::Ok),
            "error" | "failed" => Some(StatusFilter::Error),
            code => code
                .parse::<u16>()
                .ok()
                .filter(|c| (100..600).contains(c))
                .map(StatusFilter::Code),
        }
    }
}

/// A position in the newest-first order: the last row seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub started_at_ms: i64,
    pub request_id: String,
}

impl Cursor {
    /// `<started_at_ms>:<request_id>`, as [`Cursor::encode`] writes it.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (ms, id) = s.split_once(':')?;
        Some(Cursor {
            started_at_ms: ms.parse().ok()?,
            request_id: id.to_owned(),
        })
        .filter(|c| !c.request_id.is_empty() && !c.request_id.contains('\0'))
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.started_at_ms, self.request_id)
    }
}

/// One line of the explorer: what a person scans a list for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    pub request_id: String,
    pub at_ms: i64,
    pub key_id: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub feature: Option<String>,
    pub route: Option<String>,
    pub model: String,
    pub provider: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    /// The class of the last attempt that failed, if any did.
    pub error_class: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub cache_hit: bool,
    /// Upstream calls made.
    pub attempts: usize,
    /// Attempts on another model than the first one's.
    pub fallbacks: usize,
    /// The request this one replayed, when it is a replay.
    pub replay_of: Option<String>,
    pub cursor: String,
}

/// A page of rows and the cursor of the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPage {
    pub rows: Vec<RequestRow>,
    pub next: Option<String>,
}

/// What links a request to replays.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayLinks {
    /// The request this one replayed.
    pub replay_of: Option<String>,
    /// The requests that replayed this one, oldest first.
    pub replays: Vec<String>,
}

/// A bound value of a search.
enum Param {
    Text(String),
    Int(i64),
}

const SELECT_ROWS: &str = "SELECT request_id, started_at_ms, key_id, user_id, team, feature, \
    route, COALESCE(model, requested_model) AS served_model, provider, status, error_code, \
    prompt_tokens, completion_tokens, cost_usd, latency_ms, ttft_ms, cache_hit, attempts{json} \
    AS attempts, (SELECT replay_of FROM request_replays rr WHERE rr.request_id = \
    requests.request_id) AS replay_of FROM requests";

/// The statement and its parameters; `pg` numbers placeholders (`$1`) instead of `?`.
fn search_sql(filter: &RequestFilter, pg: bool) -> (String, Vec<Param>) {
    let mut sql = SELECT_ROWS.replace("{json}", if pg { "::text" } else { "" });
    let mut params: Vec<Param> = Vec::new();
    let mut conditions: Vec<String> = Vec::new();
    let bind = |params: &mut Vec<Param>, p: Param| -> String {
        params.push(p);
        if pg {
            format!("${}", params.len())
        } else {
            "?".to_owned()
        }
    };
    if let Some(from) = filter.from_ms {
        conditions.push(format!(
            "started_at_ms >= {}",
            bind(&mut params, Param::Int(from))
        ));
    }
    // Always a bound on the time, even without `to`: with none, SQLite's planner reads the
    // whole log and sorts it (0.5 s on a million rows) instead of walking the time index
    // backwards and stopping at the page (2 ms).
    let to = filter.to_ms.unwrap_or(i64::MAX);
    conditions.push(format!(
        "started_at_ms < {}",
        bind(&mut params, Param::Int(to))
    ));
    if let Some(c) = &filter.before {
        let ms = bind(&mut params, Param::Int(c.started_at_ms));
        let ms_again = bind(&mut params, Param::Int(c.started_at_ms));
        let id = bind(&mut params, Param::Text(c.request_id.clone()));
        conditions.push(format!(
            "started_at_ms <= {ms} AND (started_at_ms < {ms_again} OR request_id < {id})"
        ));
    }
    let columns = [
        ("key_id", &filter.key_id),
        ("team", &filter.team),
        ("user_id", &filter.user),
        ("feature", &filter.feature),
        ("COALESCE(model, requested_model)", &filter.model),
        ("provider", &filter.provider),
        ("route", &filter.route),
    ];
    for (column, value) in columns {
        if let Some(v) = value {
            let p = bind(&mut params, Param::Text(v.clone()));
            conditions.push(format!("{column} = {p}"));
        }
    }
    match filter.status {
        Some(StatusFilter::Ok) => conditions.push("status < 400".into()),
        Some(StatusFilter::Error) => conditions.push("status >= 400".into()),
        Some(StatusFilter::Code(code)) => {
            let p = bind(&mut params, Param::Int(i64::from(code)));
            conditions.push(format!("status = {p}"));
        }
        None => {}
    }
    if let Some(class) = &filter.error_class {
        let p = bind(&mut params, Param::Text(class.clone()));
        conditions.push(if pg {
            format!("EXISTS (SELECT 1 FROM jsonb_array_elements(attempts) a WHERE a->>'error_class' = {p})")
        } else {
            format!("EXISTS (SELECT 1 FROM json_each(attempts) a WHERE json_extract(a.value, '$.error_class') = {p})")
        });
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    let limit = bind(
        &mut params,
        Param::Int(filter.limit.clamp(1, MAX_LIMIT) + 1),
    );
    sql.push_str(&format!(
        " ORDER BY started_at_ms DESC, request_id DESC LIMIT {limit}"
    ));
    (sql, params)
}

macro_rules! bind_all {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for p in $params {
            query = match p {
                Param::Text(s) => query.bind(s),
                Param::Int(n) => query.bind(n),
            };
        }
        query
    }};
}

impl Database {
    /// A page of the request log, newest first, filtered by `filter`.
    pub async fn search_requests(&self, filter: &RequestFilter) -> Result<RequestPage, StoreError> {
        if has_nul(filter) {
            return Ok(RequestPage {
                rows: Vec::new(),
                next: None,
            }); // PostgreSQL cannot compare it; no stored value has one
        }
        let rows = match self {
            Database::Sqlite(pool) => {
                let (sql, params) = search_sql(filter, false);
                let query = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
                let rows = query.fetch_all(pool).await.map_err(query_error(SQLITE))?;
                rows.iter()
                    .map(|r| decode_row(r, SQLITE))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Database::Postgres(pool) => {
                let (sql, params) = search_sql(filter, true);
                let query = bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
                let rows = query.fetch_all(pool).await.map_err(query_error(POSTGRES))?;
                rows.iter()
                    .map(|r| decode_row(r, POSTGRES))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(page(rows, filter.limit.clamp(1, MAX_LIMIT)))
    }

    /// Records that `request_id` replays `replay_of`, on `actor`'s demand.
    pub async fn link_replay(
        &self,
        request_id: &str,
        replay_of: &str,
        actor: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        const SQLITE_SQL: &str = "INSERT INTO request_replays (request_id, replay_of, actor, at_ms) \
            VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING";
        const POSTGRES_SQL: &str = "INSERT INTO request_replays (request_id, replay_of, actor, at_ms) \
            VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING";
        let (request_id, replay_of, actor) = (
            super::text(request_id),
            super::text(replay_of),
            super::text(actor),
        );
        match self {
            Database::Sqlite(pool) => sqlx::query(SQLITE_SQL)
                .bind(request_id)
                .bind(replay_of)
                .bind(actor)
                .bind(at_ms)
                .execute(pool)
                .await
                .map(drop)
                .map_err(query_error(SQLITE)),
            Database::Postgres(pool) => sqlx::query(POSTGRES_SQL)
                .bind(request_id)
                .bind(replay_of)
                .bind(actor)
                .bind(at_ms)
                .execute(pool)
                .await
                .map(drop)
                .map_err(query_error(POSTGRES)),
        }
    }

    /// The request `request_id` replayed, and the requests that replayed it.
    pub async fn replay_links(&self, request_id: &str) -> Result<ReplayLinks, StoreError> {
        const SQLITE_SQL: &str = "SELECT request_id, replay_of FROM request_replays \
            WHERE request_id = ? OR replay_of = ? ORDER BY at_ms, request_id";
        const POSTGRES_SQL: &str = "SELECT request_id, replay_of FROM request_replays \
            WHERE request_id = $1 OR replay_of = $1 ORDER BY at_ms, request_id";
        if request_id.contains('\0') {
            return Ok(ReplayLinks::default());
        }
        let pairs: Vec<(String, String)> = match self {
            Database::Sqlite(pool) => sqlx::query_as(SQLITE_SQL)
                .bind(request_id)
                .bind(request_id)
                .fetch_all(pool)
                .await
                .map_err(query_error(SQLITE))?,
            Database::Postgres(pool) => sqlx::query_as(POSTGRES_SQL)
                .bind(request_id)
                .fetch_all(pool)
                .await
                .map_err(query_error(POSTGRES))?,
        };
        let mut links = ReplayLinks::default();
        for (id, of) in pairs {
            if id == request_id {
                links.replay_of = Some(of);
            } else {
                links.replays.push(id);
            }
        }
        Ok(links)
    }

    /// When the feedback on `request_id` was given, if it was.
    pub async fn feedback_at(&self, request_id: &str) -> Result<Option<i64>, StoreError> {
        const SQLITE_SQL: &str = "SELECT feedback_at_ms FROM requests WHERE request_id = ?";
        const POSTGRES_SQL: &str = "SELECT feedback_at_ms FROM requests WHERE request_id = $1";
        if request_id.contains('\0') {
            return Ok(None);
        }
        let at: Option<Option<i64>> = match self {
            Database::Sqlite(pool) => sqlx::query_scalar(SQLITE_SQL)
                .bind(request_id)
                .fetch_optional(pool)
                .await
                .map_err(query_error(SQLITE))?,
            Database::Postgres(pool) => sqlx::query_scalar(POSTGRES_SQL)
                .bind(request_id)
                .fetch_optional(pool)
                .await
                .map_err(query_error(POSTGRES))?,
        };
        Ok(at.flatten())
    }
}

fn has_nul(filter: &RequestFilter) -> bool {
    [
        &filter.key_id,
        &filter.team,
        &filter.user,
        &filter.feature,
        &filter.model,
        &filter.provider,
        &filter.route,
        &filter.error_class,
    ]
    .into_iter()
    .flatten()
    .any(|v| v.contains('\0'))
}

/// Cuts the `limit + 1` rows fetched into a page: the extra row only says there is more.
fn page(mut rows: Vec<RequestRow>, limit: i64) -> RequestPage {
    let limit = usize::try_from(limit).unwrap_or(1);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more
        .then(|| rows.last().map(|r| r.cursor.clone()))
        .flatten();
    RequestPage { rows, next }
}

fn decode_row<'r, R>(row: &'r R, kind: &'static str) -> Result<RequestRow, StoreError>
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
    let at_ms: i64 = c.get("started_at_ms")?;
    let attempts: Vec<StoredAttempt> = c.json("attempts")?;
    let status: i32 = c.get("status")?;
    let first_model = attempts.first().map(|a| a.model.as_str());
    Ok(RequestRow {
        cursor: Cursor {
            started_at_ms: at_ms,
            request_id: c.request_id.clone(),
        }
        .encode(),
        at_ms,
        key_id: c.get("key_id")?,
        user: c.get("user_id")?,
        team: c.get("team")?,
        feature: c.get("feature")?,
        route: c.get("route")?,
        model: c.get("served_model")?,
        provider: c.get("provider")?,
        status: u16::try_from(status).unwrap_or(0),
        error_code: c.get("error_code")?,
        error_class: attempts.iter().rev().find_map(|a| a.error_class.clone()),
        prompt_tokens: c.count("prompt_tokens")?,
        completion_tokens: c.count("completion_tokens")?,
        cost_usd: c.get("cost_usd")?,
        latency_ms: c.get("latency_ms")?,
        ttft_ms: c.get("ttft_ms")?,
        cache_hit: c.get("cache_hit")?,
        fallbacks: attempts
            .iter()
            .filter(|a| Some(a.model.as_str()) != first_model)
            .count(),
        attempts: attempts.len(),
        replay_of: c.get("replay_of")?,
        request_id: c.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            started_at_ms: 1_767_225_600_000,
            request_id: "req:with:colons".into(),
        };
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        assert_eq!(Cursor::parse("nonsense"), None);
        assert_eq!(Cursor::parse("12:"), None);
        assert_eq!(Cursor::parse("x:req"), None);
    }

    #[test]
    fn statuses_parse() {
        assert_eq!(StatusFilter::parse("ok"), Some(StatusFilter::Ok));
        assert_eq!(StatusFilter::parse("Error"), Some(StatusFilter::Error));
        assert_eq!(StatusFilter::parse("429"), Some(StatusFilter::Code(429)));
        assert_eq!(StatusFilter::parse("42"), None);
        assert_eq!(StatusFilter::parse("teapot"), None);
    }

    #[test]
    fn placeholders_match_parameters() {
        let filter = RequestFilter {
            from_ms: Some(1),
            to_ms: Some(2),
            team: Some("t".into()),
            model: Some("m".into()),
            status: Some(StatusFilter::Code(500)),
            error_class: Some("timeout".into()),
            before: Cursor::parse("5:r"),
            limit: 50,
            ..RequestFilter::default()
        };
        let (sqlite, params) = search_sql(&filter, false);
        assert_eq!(sqlite.matches('?').count(), params.len(), "{sqlite}");
        let (pg, params) = search_sql(&filter, true);
        assert!(pg.contains(&format!("${}", params.len())), "{pg}");
        assert!(!pg.contains(&format!("${}", params.len() + 1)), "{pg}");
    }
}
