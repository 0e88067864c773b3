//! The events report: failed upstream attempts by provider, model and error class, and
//! guardrail actions by guardrail and action, from `events_hourly`.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::{Covered, TimeRange};
use crate::db::{Database, POSTGRES, SQLITE};
use crate::error::StoreError;
use crate::records::query_error;

const EVENTS: &str = "SELECT provider, model, kind, label, CAST(SUM(n) AS BIGINT) \
    FROM events_hourly WHERE hour_ms >= $1 AND hour_ms < $2 GROUP BY provider, model, kind, label";

/// Failed upstream attempts of one provider and model with one error class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptErrors {
    pub provider: String,
    pub model: String,
    pub error_class: String,
    pub count: i64,
}

/// How often one guardrail took one action (`redacted`, `blocked`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardrailActions {
    pub guardrail: String,
    pub action: String,
    pub count: i64,
}

/// Failed attempts and guardrail actions over a range, most frequent first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventsReport {
    #[serde(flatten)]
    pub range: Covered,
    pub attempt_errors: Vec<AttemptErrors>,
    pub guardrails: Vec<GuardrailActions>,
}

impl Database {
    /// Failed upstream attempts by provider, model and error class (a request that was retried
    /// and then succeeded counts here too), and guardrail actions by guardrail and action, over
    /// `range` rounded out to whole hours.
    pub async fn events_report(&self, range: TimeRange) -> Result<EventsReport, StoreError> {
        let range = range.hours();
        let (from, to) = (range.from_ms, range.to_ms);
        let events: Vec<(String, String, String, String, i64)> =
            fetch_all!(self, EVENTS, [from, to], |row| {
                Ok::<_, sqlx::Error>((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                ))
            })?;
        let mut attempt_errors = Vec::new();
        let mut guardrails: BTreeMap<String, i64> = BTreeMap::new();
        for (provider, model, kind, label, count) in events {
            match kind.as_str() {
                "attempt_error" => attempt_errors.push(AttemptErrors {
                    provider,
                    model,
                    error_class: label,
                    count,
                }),
                "guardrail" => *guardrails.entry(label).or_default() += count,
                _ => {}
            }
        }
        attempt_errors.sort_by(|a, b| {
            (b.count, &a.provider, &a.model, &a.error_class).cmp(&(
                a.count,
                &b.provider,
                &b.model,
                &b.error_class,
            ))
        });
        let mut guardrails: Vec<GuardrailActions> = guardrails
            .into_iter()
            .map(|(label, count)| {
                let (guardrail, action) = label.split_once(':').unwrap_or((&label, ""));
                GuardrailActions {
                    guardrail: guardrail.to_owned(),
                    action: action.to_owned(),
                    count,
                }
            })
            .collect();
        guardrails.sort_by_key(|g| std::cmp::Reverse(g.count));
        Ok(EventsReport {
            range: range.into(),
            attempt_errors,
            guardrails,
        })
    }
}
