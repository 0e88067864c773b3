//! The latency report: p50/p95/p99 of latency and time to first token per provider and model,
//! from the log-scale histograms of `latency_daily` and `latency_hourly` (summed over the range,
//! read in Rust), with the request and error counts of the usage rollups. The two scans run side
//! by side.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::{Covered, TimeRange};
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;
use crate::records::query_error;
use crate::records::rollup::bucket_value_ms;

// Whole days `[$3, $4)` come from the daily rollups, the edge hours of `[$1, $2)` from the
// hourly ones (see `usage::whole_days`).
const LATENCY_BUCKETS: &str = "SELECT provider, model, series, bucket, CAST(SUM(n) AS BIGINT) \
    FROM (SELECT provider, model, series, bucket, n FROM latency_daily \
          WHERE day_ms >= $3 AND day_ms < $4 \
          UNION ALL SELECT provider, model, series, bucket, n FROM latency_hourly \
          WHERE hour_ms >= $1 AND hour_ms < $2 AND (hour_ms < $3 OR hour_ms >= $4)) AS h \
    GROUP BY provider, model, series, bucket";
const LATENCY_REQUESTS: &str = "SELECT provider, model, CAST(SUM(requests) AS BIGINT), \
    CAST(SUM(errors) AS BIGINT) \
    FROM (SELECT provider, model, requests, errors FROM usage_daily \
          WHERE day_ms >= $3 AND day_ms < $4 \
          UNION ALL SELECT provider, model, requests, errors FROM usage_hourly \
          WHERE hour_ms >= $1 AND hour_ms < $2 AND (hour_ms < $3 OR hour_ms >= $4)) AS u \
    WHERE provider <> '' GROUP BY provider, model";

/// Latency or time-to-first-token percentiles of one provider and model, read from the
/// histogram: each value is the middle of its bucket, within about 4.5 % of the true one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    /// How many requests the histogram holds.
    pub count: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Percentiles {
    /// From `(bucket, count)` pairs in any order; `None` when they hold nothing.
    pub fn of(buckets: &mut [(i32, i64)]) -> Option<Percentiles> {
        buckets.sort_unstable();
        let count: i64 = buckets.iter().map(|(_, n)| n).sum();
        let at = |p: f64| percentile(buckets, count, p);
        Some(Percentiles {
            count,
            p50_ms: at(0.50)?,
            p95_ms: at(0.95)?,
            p99_ms: at(0.99)?,
        })
    }
}

/// The nearest-rank percentile `p` of sorted `(bucket, count)` pairs holding `count` values.
fn percentile(sorted: &[(i32, i64)], count: i64, p: f64) -> Option<f64> {
    if count <= 0 {
        return None;
    }
    let rank = ((p * count as f64).ceil() as i64).clamp(1, count);
    let mut seen = 0;
    for (bucket, n) in sorted {
        seen += n;
        if seen >= rank {
            return Some(bucket_value_ms(*bucket));
        }
    }
    None
}

/// One provider and model of a latency report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyRow {
    pub provider: String,
    pub model: String,
    /// Requests this provider and model served (every outcome).
    pub requests: i64,
    pub errors: i64,
    pub error_rate: Option<f64>,
    /// Over the successful requests (status below 400).
    pub latency: Option<Percentiles>,
    /// Over the successful streamed requests.
    pub ttft: Option<Percentiles>,
}

/// Latency and time to first token per provider and model, busiest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyReport {
    #[serde(flatten)]
    pub range: Covered,
    pub rows: Vec<LatencyRow>,
}

type Histograms = BTreeMap<(String, String), [Vec<(i32, i64)>; 2]>;

impl Database {
    /// p50/p95/p99 of latency and time to first token per provider and model over `range`
    /// (rounded out to whole hours), with their request and error counts. Requests that no
    /// provider served (rejected before routing) are not in this report.
    pub async fn latency_report(&self, range: TimeRange) -> Result<LatencyReport, StoreError> {
        let range = range.hours();
        let (from, to) = (range.from_ms, range.to_ms);
        let (first_day, last_day) = super::usage::whole_days(from, to);
        let buckets = async {
            let rows: Vec<(String, String, String, i32, i64)> = fetch_all!(
                self,
                LATENCY_BUCKETS,
                [from, to, first_day, last_day],
                |row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                    ))
                }
            )?;
            Ok::<_, StoreError>(rows)
        };
        let counts = async {
            let rows: Vec<(String, String, i64, i64)> = fetch_all!(
                self,
                LATENCY_REQUESTS,
                [from, to, first_day, last_day],
                |row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                    ))
                }
            )?;
            Ok::<_, StoreError>(rows)
        };
        // Two scans of two tables: side by side on two connections.
        let (buckets, counts) = futures_util::future::try_join(buckets, counts).await?;
        let mut histograms = Histograms::new();
        for (provider, model, series, bucket, n) in buckets {
            let which = usize::from(series == "ttft");
            histograms.entry((provider, model)).or_default()[which].push((bucket, n));
        }
        let mut rows: Vec<LatencyRow> = counts
            .into_iter()
            .map(|(provider, model, requests, errors)| {
                let mut h = histograms
                    .remove(&(provider.clone(), model.clone()))
                    .unwrap_or_default();
                latency_row(provider, model, requests, errors, &mut h)
            })
            .collect();
        // Histograms without a usage row (none are expected): still report them.
        for ((provider, model), mut h) in histograms {
            rows.push(latency_row(provider, model, 0, 0, &mut h));
        }
        rows.sort_by(|a, b| {
            (b.requests, &a.provider, &a.model).cmp(&(a.requests, &b.provider, &b.model))
        });
        Ok(LatencyReport {
            range: range.into(),
            rows,
        })
    }
}

fn latency_row(
    provider: String,
    model: String,
    requests: i64,
    errors: i64,
    histograms: &mut [Vec<(i32, i64)>; 2],
) -> LatencyRow {
    let [latency, ttft] = histograms;
    LatencyRow {
        provider,
        model,
        requests,
        errors,
        error_rate: (requests > 0).then(|| errors as f64 / requests as f64),
        latency: Percentiles::of(latency),
        ttft: Percentiles::of(ttft),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_buckets() {
        assert_eq!(Percentiles::of(&mut []), None);
        let mut one = [(40, 1)];
        let p = Percentiles::of(&mut one).unwrap();
        assert_eq!(p.p50_ms, bucket_value_ms(40));
        let mut buckets = [(30, 99), (10, 1), (50, 900)];
        let p = Percentiles::of(&mut buckets).unwrap();
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50_ms, bucket_value_ms(50));
        let mut low = [(10, 50), (20, 50)];
        assert_eq!(
            Percentiles::of(&mut low).unwrap().p50_ms,
            bucket_value_ms(10)
        );
    }
}
