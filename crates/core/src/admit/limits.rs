//! Limits: what a key, user, team, feature, model or the whole gateway may consume
//! ([`Limits`]: requests and tokens per minute, requests in flight, spend per period), and the
//! clock windows they are counted in.
//!
//! Windows are fixed and aligned to the UTC clock — the minute for RPM/TPM, the day, the ISO
//! week (from Monday), the calendar month — so that every replica agrees on which window a
//! request falls in without talking to the others, and the reset time a client is told is
//! exact. Calendar arithmetic is done here by hand (a dozen lines of the well-known
//! days-from-civil algorithm) rather than by pulling a date crate into the hot path.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Limits of one scope. Every field is optional: unset means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Tokens (prompt + completion) per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u64>,
    /// Spend caps, at most one per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<Budget>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none()
            && self.tpm.is_none()
            && self.max_parallel.is_none()
            && self.budgets.is_empty()
    }

    /// Checks what serde cannot; `path` names the limits in the message.
    pub fn validate(&self, path: &str) -> Result<(), String> {
        for (i, b) in self.budgets.iter().enumerate() {
            if !(b.usd.is_finite() && b.usd >= 0.0) {
                return Err(format!(
                    "{path}.budgets[{i}].usd: must be a non-negative amount"
                ));
            }
            if self.budgets[..i].iter().any(|o| o.period == b.period) {
                return Err(format!(
                    "{path}.budgets[{i}]: a second {} budget; keep one per period",
                    b.period.as_str()
                ));
            }
        }
        Ok(())
    }
}

/// A spend cap in US dollars per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub usd: f64,
    #[serde(default)]
    pub period: Period,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    #[default]
    Month,
    /// Never resets.
    Total,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Total => "total",
        }
    }

    /// The window `now_ms` falls in: an id that names it in counter keys, and its end.
    pub fn window(self, now_ms: i64) -> Window {
        const DAY: i64 = 86_400_000;
        let day = now_ms.div_euclid(DAY);
        match self {
            Period::Day => Window {
                id: day,
                starts_at_ms: day * DAY,
                ends_at_ms: Some((day + 1) * DAY),
            },
            Period::Week => {
                // 1970-01-01 was a Thursday: day 4 is the first Monday.
                let week = (day - 4).div_euclid(7);
                Window {
                    id: week,
                    starts_at_ms: (week * 7 + 4) * DAY,
                    ends_at_ms: Some((week * 7 + 4 + 7) * DAY),
                }
            }
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                Window {
                    id: y * 12 + i64::from(m) - 1,
                    starts_at_ms: days_from_civil(y, m, 1) * DAY,
                    ends_at_ms: Some(days_from_civil(ny, nm, 1) * DAY),
                }
            }
            Period::Total => Window {
                id: 0,
                starts_at_ms: 0,
                ends_at_ms: None,
            },
        }
    }
}

/// One window of a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub id: i64,
    pub starts_at_ms: i64,
    /// `None` for a window that never ends.
    pub ends_at_ms: Option<i64>,
}

impl Window {
    /// The minute `now_ms` falls in, for RPM and TPM.
    pub fn minute(now_ms: i64) -> Window {
        let id = now_ms.div_euclid(60_000);
        Window {
            id,
            starts_at_ms: id * 60_000,
            ends_at_ms: Some((id + 1) * 60_000),
        }
    }

    /// Time left in the window (at least one millisecond), or `None` if it never ends.
    pub fn remaining(&self, now_ms: i64) -> Option<Duration> {
        self.ends_at_ms
            .map(|end| Duration::from_millis(u64::try_from(end - now_ms).unwrap_or(0).max(1)))
    }
}

/// US dollars as integer nano-dollars, the unit counters add up: exact sums, no float drift
/// across replicas, and room for nine billion dollars in an `i64`.
pub fn usd_to_nanos(usd: f64) -> i64 {
    if usd.is_finite() {
        (usd * 1e9).round().clamp(i64::MIN as f64, i64::MAX as f64) as i64
    } else {
        0
    }
}

pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

/// `2026-12-01T00:00:00Z` for epoch milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-30T07:02:05Z, a Monday.
    const NOW: i64 = 1_796_022_125_000;

    #[test]
    fn windows_end_on_the_utc_calendar() {
        assert_eq!(rfc3339(NOW), "2026-11-30T07:02:05Z");
        let end = |p: Period| rfc3339(p.window(NOW).ends_at_ms.unwrap());
        assert_eq!(end(Period::Day), "2026-12-01T00:00:00Z");
        assert_eq!(end(Period::Week), "2026-12-07T00:00:00Z");
        assert_eq!(end(Period::Month), "2026-12-01T00:00:00Z");
        let start = |p: Period| rfc3339(p.window(NOW).starts_at_ms);
        assert_eq!(start(Period::Day), "2026-11-30T00:00:00Z");
        assert_eq!(start(Period::Week), "2026-11-30T00:00:00Z");
        assert_eq!(start(Period::Month), "2026-11-01T00:00:00Z");
        assert_eq!(Period::Total.window(NOW).ends_at_ms, None);
        assert_eq!(
            rfc3339(Window::minute(NOW).ends_at_ms.unwrap()),
            "2026-11-30T07:03:00Z"
        );
        let dec = days_from_civil(2026, 12, 31) * 86_400_000;
        assert_eq!(
            rfc3339(Period::Month.window(dec).ends_at_ms.unwrap()),
            "2027-01-01T00:00:00Z"
        );
        // Sunday night belongs to the week that started on Monday.
        let sunday = days_from_civil(2026, 12, 6) * 86_400_000 + 3_600_000;
        assert_eq!(Period::Week.window(sunday), Period::Week.window(NOW));
        assert_ne!(Period::Month.window(dec), Period::Month.window(NOW));
    }

    #[test]
    fn money_is_counted_exactly() {
        assert_eq!(usd_to_nanos(0.01), 10_000_000);
        assert_eq!(usd_to_nanos(f64::NAN), 0);
        assert_eq!(nanos_to_usd(usd_to_nanos(12.345)), 12.345);
        let cents: i64 = (0..100).map(|_| usd_to_nanos(0.01)).sum();
        assert_eq!(cents, usd_to_nanos(1.0));
    }

    #[test]
    fn a_second_budget_for_one_period_is_refused() {
        let limits = Limits {
            budgets: vec![
                Budget {
                    usd: 1.0,
                    period: Period::Day,
                },
                Budget {
                    usd: 2.0,
                    period: Period::Day,
                },
            ],
            ..Limits::default()
        };
        assert!(
            limits
                .validate("keys.k")
                .unwrap_err()
                .contains("budgets[1]")
        );
    }
}
