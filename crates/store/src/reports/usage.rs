//! The usage report: requests, outcomes, tokens, spend and feedback from `usage_hourly`,
//! grouped by the [`GroupBy`] a caller asked for, most expensive first, with the total of the
//! whole range. The statement is assembled from the constant column names of [`Dimension`] and
//! [`TimeBucket`]; the range and the limit are bound parameters.

use serde::Serialize;
use serde::ser::SerializeMap;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{Covered, GroupBy, MAX_ROWS, ReportError, TimeRange};
#[cfg(doc)]
use super::{Dimension, TimeBucket};
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;
use crate::records::query_error;

/// What a usage report asks for: a range, a grouping, and optionally only the top rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    range: TimeRange,
    group_by: GroupBy,
    limit: Option<u32>,
}

impl UsageQuery {
    /// `limit`: at most this many rows, most expensive first (top spenders: group by key, user,
    /// team or feature with a limit); `None`: every group, up to [`MAX_ROWS`].
    pub fn new(
        range: TimeRange,
        group_by: GroupBy,
        limit: Option<u64>,
    ) -> Result<UsageQuery, ReportError> {
        let limit = match limit {
            None => None,
            Some(n @ 1..=100_000) => Some(n as u32),
            Some(n) => return Err(ReportError::Limit(n)),
        };
        Ok(UsageQuery {
            range,
            group_by,
            limit,
        })
    }
}

/// The sums of `usage_hourly` over a group.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UsageSums {
    pub requests: i64,
    pub errors: i64,
    pub server_errors: i64,
    pub disconnects: i64,
    pub attempts: i64,
    pub retried: i64,
    pub fallbacks: i64,
    pub cache_hits: i64,
    pub rate_limited: i64,
    pub budget_exceeded: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_saved_usd: f64,
    pub latency_ms_sum: f64,
    pub feedback_count: i64,
    pub feedback_sum: f64,
}

/// The summed columns of `usage_hourly`: integers first, then reals, in [`UsageSums`] order.
const INT_COLUMNS: [&str; 14] = [
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
    "feedback_count",
];
const REAL_COLUMNS: [&str; 4] = [
    "cost_usd",
    "cache_saved_usd",
    "latency_ms_sum",
    "feedback_sum",
];
const SUMMED: usize = INT_COLUMNS.len() + REAL_COLUMNS.len();

impl UsageSums {
    fn ratio(&self, n: i64) -> Option<f64> {
        (self.requests > 0).then(|| n as f64 / self.requests as f64)
    }

    /// The sums and what is derived from them, as the report shows them.
    pub fn metrics(&self) -> UsageMetrics {
        UsageMetrics {
            requests: self.requests,
            errors: self.errors,
            error_rate: self.ratio(self.errors),
            retry_rate: self.ratio(self.retried),
            fallback_rate: self.ratio(self.fallbacks),
            cache_hit_rate: self.ratio(self.cache_hits),
            server_errors: self.server_errors,
            disconnects: self.disconnects,
            attempts: self.attempts,
            retried: self.retried,
            fallbacks: self.fallbacks,
            cache_hits: self.cache_hits,
            rate_limited: self.rate_limited,
            budget_exceeded: self.budget_exceeded,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens: self.cached_tokens,
            cost_usd: self.cost_usd,
            cache_saved_usd: self.cache_saved_usd,
            avg_latency_ms: (self.requests > 0).then(|| self.latency_ms_sum / self.requests as f64),
            feedback_count: self.feedback_count,
            feedback_avg: (self.feedback_count > 0)
                .then(|| self.feedback_sum / self.feedback_count as f64),
        }
    }
}

/// One row's numbers; rates are fractions of `requests` (null when there are none).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageMetrics {
    pub requests: i64,
    pub errors: i64,
    pub error_rate: Option<f64>,
    pub retry_rate: Option<f64>,
    pub fallback_rate: Option<f64>,
    pub cache_hit_rate: Option<f64>,
    pub server_errors: i64,
    pub disconnects: i64,
    pub attempts: i64,
    pub retried: i64,
    pub fallbacks: i64,
    pub cache_hits: i64,
    pub rate_limited: i64,
    pub budget_exceeded: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub cache_saved_usd: f64,
    pub avg_latency_ms: Option<f64>,
    pub feedback_count: i64,
    pub feedback_avg: Option<f64>,
}

/// One group of a usage report: its key (an absent dimension is `None`), then its sums.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// `(name, value)` in `group_by` order; a time bucket's value is its label.
    pub group: Vec<(&'static str, Option<String>)>,
    /// The start of the row's time bucket, if grouped by time.
    pub bucket_ms: Option<i64>,
    pub sums: UsageSums,
}

impl Serialize for UsageRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            #[serde(flatten)]
            group: Group<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            bucket_ms: Option<i64>,
            #[serde(flatten)]
            metrics: UsageMetrics,
        }
        View {
            group: Group(&self.group),
            bucket_ms: self.bucket_ms,
            metrics: self.sums.metrics(),
        }
        .serialize(s)
    }
}

/// The group columns of a row, as map entries in order.
struct Group<'a>(&'a [(&'static str, Option<String>)]);

impl Serialize for Group<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A usage report: the range it covered, its rows (most expensive first) and the total of the
/// whole range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    #[serde(flatten)]
    pub range: Covered,
    pub group_by: Vec<&'static str>,
    pub rows: Vec<UsageRow>,
    /// Every request of the range, whether or not its group is among the rows.
    #[serde(serialize_with = "as_metrics")]
    pub total: UsageSums,
    /// More than [`MAX_ROWS`] groups and no `limit`: only the first [`MAX_ROWS`] are returned.
    pub truncated: bool,
}

fn as_metrics<S: serde::Serializer>(sums: &UsageSums, s: S) -> Result<S::Ok, S::Error> {
    sums.metrics().serialize(s)
}

/// `SELECT <keys>, <sums>[, <totals>] FROM <source> GROUP BY <keys> ORDER BY cost, <keys> LIMIT
/// $3`: every name in it is a constant of [`Dimension`], [`TimeBucket`] or this module. With
/// `totals`, each row also carries the sums of every group (a window over the groups, computed
/// before the limit), so the range's total costs no second scan.
///
/// The source is `usage_hourly` over `[$1, $2)` when grouping by hour; otherwise the whole days
/// `[$4, $5)` come from `usage_daily` (a month is then some thousands of rows, not hundreds of
/// thousands) and only the hours at the edges of the range from `usage_hourly`.
fn usage_sql(group: &GroupBy, totals: bool) -> String {
    let mut keys: Vec<&str> = group.dimensions.iter().map(|d| d.column()).collect();
    if let Some(time) = group.time {
        keys.insert(group.time_at, time.expression());
    }
    let mut columns: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    let casts = INT_COLUMNS
        .iter()
        .map(|c| (c, "BIGINT"))
        .chain(REAL_COLUMNS.iter().map(|c| (c, "DOUBLE PRECISION")));
    for (column, cast) in casts.clone() {
        columns.push(format!("CAST(SUM({column}) AS {cast}) AS sum_{column}"));
    }
    if totals {
        for (column, cast) in casts {
            columns.push(format!("CAST(SUM(SUM({column})) OVER () AS {cast})"));
        }
    }
    let source = if group.time == Some(super::TimeBucket::Hour) {
        // $4 and $5 are compared so that both engines see every parameter used.
        "usage_hourly WHERE hour_ms >= $1 AND hour_ms < $2 AND CAST($4 AS BIGINT) <= CAST($5 AS BIGINT)".to_owned()
    } else {
        let summed = [super::Dimension::ALL.map(|d| d.column()).join(", ")]
            .into_iter()
            .chain(
                INT_COLUMNS
                    .iter()
                    .chain(&REAL_COLUMNS)
                    .map(|c| c.to_string()),
            )
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "(SELECT day_ms AS hour_ms, {summed} FROM usage_daily WHERE day_ms >= $4 AND day_ms < $5 \
             UNION ALL SELECT hour_ms, {summed} FROM usage_hourly WHERE hour_ms >= $1 AND hour_ms < $2 \
             AND (hour_ms < $4 OR hour_ms >= $5)) AS usage"
        )
    };
    let mut sql = format!("SELECT {} FROM {source}", columns.join(", "));
    if !keys.is_empty() {
        let keys = keys.join(", ");
        sql.push_str(&format!(
            " GROUP BY {keys} ORDER BY sum_cost_usd DESC, {keys}"
        ));
    }
    sql.push_str(" LIMIT $3");
    sql
}

/// The whole UTC days within `[from, to)`: `[first, last)`, empty (`first == last`) when the
/// range holds no whole day.
pub(super) fn whole_days(from: i64, to: i64) -> (i64, i64) {
    let first = from + (super::DAY_MS - from.rem_euclid(super::DAY_MS)) % super::DAY_MS;
    let last = to - to.rem_euclid(super::DAY_MS);
    if first < last {
        (first, last)
    } else {
        (from, from)
    }
}

impl Database {
    /// Requests, outcomes, tokens and spend over `query`'s range (rounded out to whole hours),
    /// grouped as asked, most expensive first, then by the group's values.
    pub async fn usage_report(&self, query: &UsageQuery) -> Result<UsageReport, StoreError> {
        let range = query.range.hours();
        let group = &query.group_by;
        let grouped = !group.names().is_empty();
        let sql = usage_sql(group, grouped);
        // One row past the cap tells whether the cap cut anything.
        let limit = i64::from(query.limit.unwrap_or(MAX_ROWS + 1));
        let (from, to) = (range.from_ms, range.to_ms);
        let (first_day, last_day) = whole_days(from, to);
        let rows: Vec<(UsageRow, Option<UsageSums>)> =
            fetch_all!(self, sql, [from, to, limit, first_day, last_day], |row| {
                decode_usage(row, group, grouped)
            })?;
        let total = match rows.first() {
            Some((_, Some(total))) => *total,
            // Not grouped: the one row is the total.
            Some((row, None)) => row.sums,
            None => UsageSums::default(),
        };
        let mut rows: Vec<UsageRow> = rows.into_iter().map(|(row, _)| row).collect();
        let truncated = query.limit.is_none() && rows.len() > MAX_ROWS as usize;
        rows.truncate(MAX_ROWS as usize);
        Ok(UsageReport {
            range: range.into(),
            group_by: group.names(),
            rows,
            total,
            truncated,
        })
    }
}

fn decode_usage<'r, R>(
    row: &'r R,
    group: &GroupBy,
    totals: bool,
) -> Result<(UsageRow, Option<UsageSums>), sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    let names = group.names();
    let mut key = Vec::with_capacity(names.len());
    let mut bucket_ms = None;
    for (i, name) in names.iter().enumerate() {
        if group.time.is_some() && i == group.time_at {
            let start: i64 = row.try_get(i)?;
            bucket_ms = Some(start);
            key.push((*name, group.time.map(|t| t.label(start))));
        } else {
            let value: String = row.try_get(i)?;
            key.push((*name, Some(value).filter(|v| !v.is_empty())));
        }
    }
    let sums = decode_sums(row, names.len())?;
    let total = totals
        .then(|| decode_sums(row, names.len() + SUMMED))
        .transpose()?;
    let row = UsageRow {
        group: key,
        bucket_ms,
        sums,
    };
    Ok((row, total))
}

/// The sums in columns `at..at + SUMMED` (a sum over no rows, NULL, is 0).
fn decode_sums<'r, R>(row: &'r R, at: usize) -> Result<UsageSums, sqlx::Error>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    let int = |i: usize| -> Result<i64, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(at + i)?.unwrap_or(0))
    };
    let real = |i: usize| -> Result<f64, sqlx::Error> {
        Ok(row
            .try_get::<Option<f64>, _>(at + INT_COLUMNS.len() + i)?
            .unwrap_or(0.0))
    };
    Ok(UsageSums {
        requests: int(0)?,
        errors: int(1)?,
        server_errors: int(2)?,
        disconnects: int(3)?,
        attempts: int(4)?,
        retried: int(5)?,
        fallbacks: int(6)?,
        cache_hits: int(7)?,
        rate_limited: int(8)?,
        budget_exceeded: int(9)?,
        prompt_tokens: int(10)?,
        completion_tokens: int(11)?,
        cached_tokens: int(12)?,
        feedback_count: int(13)?,
        cost_usd: real(0)?,
        cache_saved_usd: real(1)?,
        latency_ms_sum: real(2)?,
        feedback_sum: real(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_sql_names_only_constants() {
        let g = GroupBy::parse("user,day").unwrap();
        let sql = usage_sql(&g, true);
        let day = "hour_ms - hour_ms % 86400000";
        assert!(
            sql.starts_with(&format!(
                "SELECT user_id, {day}, CAST(SUM(requests) AS BIGINT) AS sum_requests, "
            )),
            "{sql}"
        );
        assert!(
            sql.contains(", CAST(SUM(SUM(feedback_sum)) OVER () AS DOUBLE PRECISION) FROM"),
            "{sql}"
        );
        assert!(
            sql.ends_with(&format!(
                " GROUP BY user_id, {day} ORDER BY sum_cost_usd DESC, user_id, {day} LIMIT $3"
            )),
            "{sql}"
        );
        assert_eq!(sql.matches("OVER ()").count(), SUMMED);
        let total = usage_sql(&GroupBy::default(), false);
        assert!(
            total.ends_with("AND (hour_ms < $4 OR hour_ms >= $5)) AS usage LIMIT $3"),
            "{total}"
        );
        assert!(
            total.contains("FROM usage_daily WHERE day_ms >= $4 AND day_ms < $5"),
            "{total}"
        );
        assert!(!total.contains("OVER"), "{total}");
        let hourly = usage_sql(&GroupBy::parse("hour").unwrap(), true);
        assert!(!hourly.contains("usage_daily"), "{hourly}");
    }

    #[test]
    fn whole_days_are_read_from_the_daily_rollup() {
        const D: i64 = 86_400_000;
        // 06:00 on day 1 to 18:00 on day 4: days 2 and 3 are whole.
        assert_eq!(whole_days(D + D / 4, 4 * D + 3 * D / 4), (2 * D, 4 * D));
        assert_eq!(whole_days(2 * D, 4 * D), (2 * D, 4 * D));
        // Within one day: none.
        assert_eq!(
            whole_days(D + 3_600_000, D + 7_200_000),
            (D + 3_600_000, D + 3_600_000)
        );
    }
}
