//! `GET /admin/budgets`: every spend cap of every key, user and team, with what has been spent
//! in its current window and when the window resets, for the console's finance page.
//!
//! The figures come from the same counters that admission checks (and that
//! `GET /admin/{keys,users,teams}/{id}/usage` reports), so a bar at 100 % is a caller being
//! refused. Keys, users and teams without a budget are left out; revoked keys too.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use switchyard_core::GatewayError;
use switchyard_core::admit::limits::Limits;
use switchyard_store::{KeyFilter, MemberKind};

use super::{Call, open_call, store_error};
use crate::ingress::Shared;

/// One budget and its current window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRow {
    /// `key`, `user` or `team`.
    pub scope: &'static str,
    pub id: String,
    pub name: Option<String>,
    /// The budget's period (`day`, `week`, `month`, …).
    pub window: Value,
    pub limit_usd: f64,
    pub spent_usd: f64,
    pub resets_at_ms: Option<i64>,
}

pub async fn list(State(app): Shared, headers: HeaderMap) -> Response {
    let call = open_call!(app, headers);
    let result = all_budgets(&call).await;
    call.respond(
        StatusCode::OK,
        result.map(|data| serde_json::json!({ "data": data })),
    )
}

async fn all_budgets(call: &Call) -> Result<Vec<BudgetRow>, GatewayError> {
    let db = &call.admin().db;
    let mut owners: Vec<(&'static str, String, Option<String>, Limits)> = Vec::new();
    for kind in [MemberKind::Team, MemberKind::User] {
        let members = db.list_members(kind).await.map_err(store_error)?;
        owners.extend(
            (members.into_iter())
                .map(|m| (kind.as_str(), m.id, m.name, m.limits))
                .filter(|o| !o.3.budgets.is_empty()),
        );
    }
    let keys = db
        .list_keys(&KeyFilter::default())
        .await
        .map_err(store_error)?;
    owners.extend(
        (keys.into_iter())
            .map(|k| ("key", k.id, k.name, k.limits))
            .filter(|o| !o.3.budgets.is_empty()),
    );
    let mut rows = Vec::new();
    for (scope, id, name, limits) in owners {
        let usage = super::usage_report(call, scope, &id, &limits).await?;
        rows.extend(rows_of(scope, &id, name.as_deref(), &usage));
    }
    Ok(rows)
}

/// The budgets in a usage report (`{"usage": {"budgets": [{period, budget_usd, spent_usd,
/// resets_at}]}}`).
fn rows_of(scope: &'static str, id: &str, name: Option<&str>, usage: &Value) -> Vec<BudgetRow> {
    let budgets = usage["usage"]["budgets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    budgets
        .iter()
        .map(|b| BudgetRow {
            scope,
            id: id.to_owned(),
            name: name.map(str::to_owned),
            window: b["period"].clone(),
            limit_usd: b["budget_usd"].as_f64().unwrap_or(0.0),
            spent_usd: b["spent_usd"].as_f64().unwrap_or(0.0),
            resets_at_ms: b["resets_at"].as_str().and_then(epoch_ms),
        })
        .collect()
}

fn epoch_ms(rfc3339: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(rfc3339).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_read_from_a_usage_report() {
        let usage = serde_json::json!({"id": "t", "usage": {"budgets": [{
            "period": "month", "budget_usd": 100.0, "spent_usd": 12.5,
            "remaining_usd": 87.5, "resets_at": "2026-01-01T00:00:00Z"
        }]}});
        let rows = rows_of("team", "t", Some("Team T"), &usage);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].window, "month");
        assert_eq!((rows[0].limit_usd, rows[0].spent_usd), (100.0, 12.5));
        assert_eq!(rows[0].resets_at_ms, Some(1_767_225_600_000));
    }
}
