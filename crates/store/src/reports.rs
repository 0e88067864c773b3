//! Reports over the request log, read from its hourly rollups (`usage_hourly`,
//! `latency_hourly`, `events_hourly`; see [`crate::records::rollup`]) on both engines: spend and
//! outcomes grouped by any combination of team, user, key, feature, model, provider, route and a
//! day or hour bucket ([`Database::usage_report`]), latency and time-to-first-token percentiles
//! per provider and model ([`Database::latency_report`]), and failed attempts and guardrail
//! actions ([`Database::events_report`]).
//!
//! The rollups hold whole hours, so every range is rounded out to whole hours: `from` down to the
//! start of its hour, `to` up to the end of its hour ([`TimeRange::hours`]); the reports say which
//! range they really covered. Days and hours are UTC. Group-by names are parsed into
//! [`Dimension`]s ([`GroupBy::parse`]), whose column names are constants: nothing a caller writes
//! reaches the SQL text except as a bound parameter. Each statement is written once with `$N`
//! parameters, which SQLite reads too, and sums are cast so that both engines return the same
//! types (PostgreSQL's `SUM(BIGINT)` is `NUMERIC`).
//!
//! This module does not parse dates or speak HTTP: the admin API (`switchyard-server`) does.

use serde::Serialize;

pub use crate::records::rollup::DAY_MS;
use crate::records::rollup::{HOUR_MS, hour_of};

/// The most rows a usage report returns without a `limit`; past it the report says `truncated`.
pub const MAX_ROWS: u32 = 100_000;

/// A reason a report cannot be run as asked. The messages name what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "unknown group_by {0:?}: use a comma-separated list of team, user, key, feature, model, provider, route, and at most one of day or hour"
    )]
    UnknownGroupBy(String),
    #[error("group_by names {0:?} twice")]
    RepeatedGroupBy(String),
    #[error("group_by takes at most one of day or hour")]
    TwoTimeBuckets,
    #[error(
        "empty range: from ({}) must be before to ({})",
        format_utc(*from_ms, true),
        format_utc(*to_ms, true)
    )]
    EmptyRange { from_ms: i64, to_ms: i64 },
    #[error("limit must be between 1 and {MAX_ROWS}, not {0}")]
    Limit(u64),
}

/// What a usage report can be grouped by besides time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dimension {
    Team,
    User,
    Key,
    Feature,
    Model,
    Provider,
    Route,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Team,
        Dimension::User,
        Dimension::Key,
        Dimension::Feature,
        Dimension::Model,
        Dimension::Provider,
        Dimension::Route,
    ];

    /// The name in `group_by` and in the report's rows.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Team => "team",
            Dimension::User => "user",
            Dimension::Key => "key",
            Dimension::Feature => "feature",
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Route => "route",
        }
    }

    /// The column of `usage_hourly`: a constant, never caller input.
    fn column(self) -> &'static str {
        match self {
            Dimension::Team => "team",
            Dimension::User => "user_id",
            Dimension::Key => "key_id",
            Dimension::Feature => "feature",
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::Route => "route",
        }
    }
}

/// The time bucket of a usage report (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBucket {
    Hour,
    Day,
}

impl TimeBucket {
    pub fn name(self) -> &'static str {
        match self {
            TimeBucket::Hour => "hour",
            TimeBucket::Day => "day",
        }
    }

    /// The bucket's start, from `hour_ms`.
    fn expression(self) -> &'static str {
        match self {
            TimeBucket::Hour => "hour_ms",
            TimeBucket::Day => "hour_ms - hour_ms % 86400000",
        }
    }

    /// `2026-01-05` for a day, `2026-01-05T13:00:00Z` for an hour.
    pub fn label(self, start_ms: i64) -> String {
        match self {
            TimeBucket::Day => format_utc(start_ms, false),
            TimeBucket::Hour => format_utc(start_ms, true),
        }
    }
}

/// How a usage report groups its rows, in the order given (which is also the order of the
/// columns and of the sort after cost). Empty: one row for the whole range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub dimensions: Vec<Dimension>,
    pub time: Option<TimeBucket>,
    /// Where the time bucket goes among the dimensions (its index in the `group_by` list).
    time_at: usize,
}

impl GroupBy {
    /// Parses `team,day`: names separated by commas (spaces allowed, case ignored); an empty
    /// string groups nothing.
    pub fn parse(list: &str) -> Result<GroupBy, ReportError> {
        let mut group = GroupBy::default();
        for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = raw.to_ascii_lowercase();
            let time = match name.as_str() {
                "day" => Some(TimeBucket::Day),
                "hour" => Some(TimeBucket::Hour),
                _ => None,
            };
            if let Some(time) = time {
                if group.time.is_some() {
                    return Err(ReportError::TwoTimeBuckets);
                }
                group.time = Some(time);
                group.time_at = group.dimensions.len();
                continue;
            }
            let dimension = Dimension::ALL
                .into_iter()
                .find(|d| d.name() == name || d.column() == name)
                .ok_or_else(|| ReportError::UnknownGroupBy(raw.to_owned()))?;
            if group.dimensions.contains(&dimension) {
                return Err(ReportError::RepeatedGroupBy(raw.to_owned()));
            }
            group.dimensions.push(dimension);
        }
        Ok(group)
    }

    /// Groups by these dimensions, then by `time` if any.
    pub fn of(dimensions: &[Dimension], time: Option<TimeBucket>) -> GroupBy {
        GroupBy {
            dimensions: dimensions.to_vec(),
            time,
            time_at: dimensions.len(),
        }
    }

    /// The names of the grouping columns, in order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.dimensions.iter().map(|d| d.name()).collect();
        if let Some(time) = self.time {
            names.insert(self.time_at, time.name());
        }
        names
    }
}

/// `[from_ms, to_ms)` in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl TimeRange {
    pub fn new(from_ms: i64, to_ms: i64) -> Result<TimeRange, ReportError> {
        if from_ms >= to_ms {
            return Err(ReportError::EmptyRange { from_ms, to_ms });
        }
        Ok(TimeRange { from_ms, to_ms })
    }

    /// The range the rollups can answer: `from` down to the start of its hour, `to` up to the
    /// next hour boundary (unchanged when already on one).
    pub fn hours(self) -> TimeRange {
        let to = hour_of(self.to_ms.saturating_sub(1)).saturating_add(HOUR_MS);
        TimeRange {
            from_ms: hour_of(self.from_ms),
            to_ms: to,
        }
    }
}

/// The range a report covered, as epoch milliseconds and RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Covered {
    pub from_ms: i64,
    pub to_ms: i64,
    pub from: String,
    pub to: String,
}

impl From<TimeRange> for Covered {
    fn from(r: TimeRange) -> Covered {
        Covered {
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            from: format_utc(r.from_ms, true),
            to: format_utc(r.to_ms, true),
        }
    }
}

/// Memory for one report's hash aggregation on PostgreSQL. With the default 4 MB the planner
/// sorts a month of hourly groups on disk instead of hashing them: `group_by=team,day` over a
/// million records took 0.65 s that way, 0.29 s with this (see bench/README.md).
const POSTGRES_WORK_MEM: &str = "SET LOCAL work_mem = '32MB'";

/// Runs `$sql` with `$binds` on either engine and decodes every row with `$decode`; on
/// PostgreSQL in a transaction of its own, with [`POSTGRES_WORK_MEM`].
macro_rules! fetch_all {
    ($db:expr, $sql:expr, [$($bind:expr),*], $decode:expr) => {
        match $db {
            Database::Sqlite(pool) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe($sql))
                    $(.bind($bind))*
                    .fetch_all(pool)
                    .await
                    .map_err(query_error(SQLITE))?;
                rows.iter().map($decode).collect::<Result<Vec<_>, _>>().map_err(query_error(SQLITE))
            }
            Database::Postgres(pool) => {
                let err = query_error(POSTGRES);
                let mut tx = pool.begin().await.map_err(err)?;
                sqlx::query($crate::reports::POSTGRES_WORK_MEM)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                let rows = sqlx::query(sqlx::AssertSqlSafe($sql))
                    $(.bind($bind))*
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                rows.iter().map($decode).collect::<Result<Vec<_>, _>>().map_err(err)
            }
        }
    };
}

mod events;
mod latency;
mod usage;

pub use events::{AttemptErrors, EventsReport, GuardrailActions};
pub use latency::{LatencyReport, LatencyRow, Percentiles};
pub use usage::{UsageMetrics, UsageQuery, UsageReport, UsageRow, UsageSums};

// ---------------------------------------------------------------------------------------------
// Calendar (UTC, proleptic Gregorian)

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-01-05` or, `with_time`, `2026-01-05T13:00:00Z` (seconds precision; UTC).
pub fn format_utc(ms: i64, with_time: bool) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    if !with_time {
        return format!("{year:04}-{month:02}-{day:02}");
    }
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_is_parsed_against_the_whitelist() {
        let g = GroupBy::parse("team, Day,model").unwrap();
        assert_eq!(g.names(), vec!["team", "day", "model"]);
        assert_eq!(g.dimensions, vec![Dimension::Team, Dimension::Model]);
        assert_eq!(GroupBy::parse("").unwrap(), GroupBy::default());
        assert_eq!(GroupBy::parse("key_id").unwrap().names(), vec!["key"]);
        let bad = GroupBy::parse("team,cost; DROP TABLE usage_hourly").unwrap_err();
        assert!(matches!(bad, ReportError::UnknownGroupBy(_)));
        assert!(
            bad.to_string().contains("team, user, key, feature"),
            "{bad}"
        );
        assert_eq!(
            GroupBy::parse("day,hour").unwrap_err(),
            ReportError::TwoTimeBuckets
        );
        assert!(matches!(
            GroupBy::parse("team,team").unwrap_err(),
            ReportError::RepeatedGroupBy(_)
        ));
    }

    #[test]
    fn ranges_round_out_to_whole_hours() {
        let r = TimeRange::new(HOUR_MS * 10 + 5, HOUR_MS * 12 + 1)
            .unwrap()
            .hours();
        assert_eq!((r.from_ms, r.to_ms), (HOUR_MS * 10, HOUR_MS * 13));
        let exact = TimeRange::new(HOUR_MS, HOUR_MS * 3).unwrap().hours();
        assert_eq!((exact.from_ms, exact.to_ms), (HOUR_MS, HOUR_MS * 3));
        assert!(TimeRange::new(5, 5).is_err());
        assert!(UsageQuery::new(exact, GroupBy::default(), Some(0)).is_err());
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(format_utc(0, true), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400_000, false), "2000-02-29");
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(
            format_utc(1_767_225_600_000 + 13 * HOUR_MS, true),
            "2026-01-01T13:00:00Z"
        );
        for days in [-800_000, -1, 0, 59, 10_000, 20_454, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format_utc(-1, true), "1969-12-31T23:59:59Z");
    }
}
