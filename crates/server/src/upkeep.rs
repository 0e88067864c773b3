//! Background upkeep of a gateway with a database: record retention (`records.retention_days`,
//! checked hourly), deleting the kept Responses API responses past their `responses.ttl`
//! (hourly), and the spend anomaly alert (`alerts.spend_anomaly`): a key, team or feature
//! whose spend over the last hour runs at more than `factor` × its average hourly spend over
//! the previous `baseline_days` gets a log line and a webhook POST — the runaway agent loop is
//! caught within minutes, long before it exhausts a monthly budget.
//!
//! Retention and the alert read the config at each tick, so a reload applies; all three only
//! read the rollups or delete in small transactions, never holding up the record writer.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use std::sync::Arc;

use crate::ingress::AppState;
use switchyard_core::config::AnomalyConfig;
use switchyard_core::request::unix_ms;
use switchyard_store::records::rollup::{DAY_MS, HOUR_MS, hour_of};
use switchyard_store::{Database, SpendOwner, SpendWindow};

const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Starts the upkeep tasks; abort the handles on shutdown.
pub fn spawn(db: &Database, app: &Arc<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let runtime = app.gateway.runtime();
    let mut tasks = Vec::new();
    if runtime.config.records.retention_days > 0 {
        tasks.push(tokio::spawn(retention(db.clone(), app.clone())));
    }
    tasks.push(tokio::spawn(expire_responses(db.clone())));
    if let Some(anomaly) = &runtime.config.alerts.spend_anomaly {
        let every = anomaly.check_every.max(Duration::from_secs(1));
        tasks.push(tokio::spawn(watch_spend(db.clone(), app.clone(), every)));
    }
    tasks
}

async fn retention(db: Database, app: Arc<AppState>) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        let days = app.gateway.runtime().config.records.retention_days;
        if days == 0 {
            continue;
        }
        let cutoff = unix_ms() - i64::from(days) * DAY_MS;
        match db.purge_records_before(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                retention_days = days,
                "old request records deleted"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete old request records; will retry in an hour")
            }
        }
    }
}

/// Deletes the kept responses past their TTL (also after storing was turned off: they were
/// kept for a time, not for ever).
async fn expire_responses(db: Database) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tick.tick().await;
        match db.purge_expired_responses(unix_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired responses deleted"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot delete expired responses; will retry in an hour")
            }
        }
    }
}

/// A spend that ran away from its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub owner: SpendOwner,
    pub id: String,
    /// Spend per hour over the recent window.
    pub recent_hourly_usd: f64,
    /// Average spend per hour over the baseline window.
    pub baseline_hourly_usd: f64,
}

/// Whether `w` is an anomaly: its recent hourly spend (over `recent_hours`) is at least
/// `min_spend_usd` and more than `factor` × its baseline hourly spend.
pub fn judge(
    owner: SpendOwner,
    w: SpendWindow,
    recent_hours: f64,
    config: &AnomalyConfig,
) -> Option<Anomaly> {
    let baseline_hours = f64::from(config.baseline_days.max(1)) * 24.0;
    let recent_hourly_usd = w.recent_usd / recent_hours.max(1.0);
    let baseline_hourly_usd = w.baseline_usd / baseline_hours;
    let runaway = w.recent_usd >= config.min_spend_usd
        && recent_hourly_usd > config.factor * baseline_hourly_usd;
    runaway.then_some(Anomaly {
        owner,
        id: w.id,
        recent_hourly_usd,
        baseline_hourly_usd,
    })
}

async fn watch_spend(db: Database, app: Arc<AppState>, every: Duration) {
    let http = reqwest::Client::new();
    let mut reported = Reported::default();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let Some(config) = app.gateway.runtime().config.alerts.spend_anomaly.clone() else {
            continue;
        };
        for anomaly in new_anomalies(&db, &config, unix_ms(), &mut reported).await {
            alert(&http, &config, &anomaly).await;
        }
    }
}

/// What this replica has already looked at: (owner, id) → the hour. Beside the database's
/// claims, it keeps a replica from claiming the same alert every tick, and from sending it every
/// tick while the database cannot take claims.
#[derive(Default)]
pub struct Reported {
    by_owner: HashMap<(&'static str, String), i64>,
    /// The hour old claims were last deleted in.
    forgotten_in: i64,
}

/// The anomalies at `now` that this replica is to report: one alert per owner per hour, claimed
/// in the database first so that of several replicas only one sends it (and a restarted
/// gateway does not send it again).
pub async fn new_anomalies(
    db: &Database,
    config: &AnomalyConfig,
    now: i64,
    reported: &mut Reported,
) -> Vec<Anomaly> {
    let hour = hour_of(now);
    // The last full hour and the one under way, so that a loop that starts at :59 counts.
    let recent_from = hour - HOUR_MS;
    let recent_hours = 1.0 + (now - hour) as f64 / HOUR_MS as f64;
    let baseline_from = recent_from - i64::from(config.baseline_days.max(1)) * DAY_MS;
    let mut out = Vec::new();
    for owner in [SpendOwner::Key, SpendOwner::Team, SpendOwner::Feature] {
        let windows = match db
            .spend_windows(owner, recent_from, baseline_from, config.min_spend_usd)
            .await
        {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read spend for the anomaly alert");
                continue;
            }
        };
        for anomaly in windows
            .into_iter()
            .filter_map(|w| judge(owner, w, recent_hours, config))
        {
            let key = (owner.as_str(), anomaly.id.clone());
            if reported.by_owner.insert(key, hour) == Some(hour) {
                continue;
            }
            if first_claim(db, &anomaly, hour).await {
                out.push(anomaly);
            }
        }
    }
    reported.by_owner.retain(|_, at| *at == hour);
    if reported.forgotten_in != hour {
        reported.forgotten_in = hour;
        if let Err(e) = db.forget_alerts_before(hour - DAY_MS).await {
            tracing::warn!(error = %e, "cannot delete old alert claims");
        }
    }
    out
}

/// Whether this replica sends the alert: the first to claim it. A claim that cannot be made
/// (the database is down) sends anyway: an alert twice beats none.
async fn first_claim(db: &Database, a: &Anomaly, hour: i64) -> bool {
    match db
        .claim_alert("spend_anomaly", a.owner.as_str(), &a.id, hour)
        .await
    {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim the spend anomaly alert; sending it anyway");
            true
        }
    }
}

async fn alert(http: &reqwest::Client, config: &AnomalyConfig, a: &Anomaly) {
    tracing::warn!(
        scope = a.owner.as_str(),
        id = %a.id,
        recent_hourly_usd = a.recent_hourly_usd,
        baseline_hourly_usd = a.baseline_hourly_usd,
        factor = config.factor,
        "spend anomaly: spending far faster than usual"
    );
    let Some(url) = &config.webhook else { return };
    let event = json!({
        "event": "spend_anomaly",
        "scope": a.owner.as_str(),
        "id": a.id,
        "recent_hourly_usd": a.recent_hourly_usd,
        "baseline_hourly_usd": a.baseline_hourly_usd,
        "factor": config.factor,
        "baseline_days": config.baseline_days,
    });
    switchyard_core::webhook::post(http, url, &event, "spend anomaly").await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(factor: f64, min: f64) -> AnomalyConfig {
        serde_json::from_value(json!({"factor": factor, "min_spend_usd": min, "baseline_days": 7}))
            .unwrap()
    }

    fn window(recent: f64, baseline: f64) -> SpendWindow {
        SpendWindow {
            id: "k".into(),
            recent_usd: recent,
            baseline_usd: baseline,
        }
    }

    #[test]
    fn a_spend_far_above_its_baseline_is_an_anomaly() {
        // Baseline: $168 over 7 days = $1/hour. Recent: $12 over 1.5 hours = $8/hour.
        let c = config(5.0, 1.0);
        let a = judge(SpendOwner::Team, window(12.0, 168.0), 1.5, &c).expect("anomaly");
        assert_eq!(a.recent_hourly_usd, 8.0);
        assert_eq!(a.baseline_hourly_usd, 1.0);
        // $6 over 1.5 hours = $4/hour: under 5× the baseline.
        assert_eq!(judge(SpendOwner::Team, window(6.0, 168.0), 1.5, &c), None);
    }

    /// Two replicas watching one database (here in-memory SQLite; the claim's store test runs
    /// on PostgreSQL too, with a pool per replica): the runaway team is reported once, by
    /// whichever looks first, and not again within the hour by either.
    #[tokio::test]
    async fn of_two_replicas_only_one_reports_an_anomaly() {
        let db = Database::connect("sqlite::memory:")
            .await
            .expect("database");
        let now = unix_ms();
        let spent = |id: &str, at: i64, usd: f64| switchyard_core::record::RequestRecord {
            request_id: id.into(),
            started_at_ms: at,
            team: Some("runaway".into()),
            requested_model: "m".into(),
            status: 200,
            cost_usd: usd,
            ..Default::default()
        };
        // $1 two days ago as a baseline, then $50 within the hour.
        let records = [spent("old", now - 2 * DAY_MS, 1.0), spent("new", now, 50.0)];
        db.write_records(&records).await.expect("write");
        let c = config(5.0, 1.0);
        let (mut first, mut second) = (Reported::default(), Reported::default());

        let reported = new_anomalies(&db, &c, now, &mut first).await;
        let teams: Vec<_> = reported
            .iter()
            .filter(|a| a.owner == SpendOwner::Team)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(teams, ["runaway"], "{reported:?}");
        assert_eq!(new_anomalies(&db, &c, now, &mut second).await, []);
        assert_eq!(new_anomalies(&db, &c, now + 1000, &mut first).await, []);
        // The next hour is another alert, for the replica that claims it first.
        let next = new_anomalies(&db, &c, now + HOUR_MS, &mut second).await;
        assert!(next.iter().any(|a| a.id == "runaway"), "{next:?}");
    }

    #[test]
    fn small_spend_never_alerts_even_without_a_baseline() {
        let c = config(5.0, 1.0);
        assert_eq!(judge(SpendOwner::Key, window(0.5, 0.0), 1.0, &c), None);
        assert!(judge(SpendOwner::Key, window(2.0, 0.0), 1.0, &c).is_some());
    }
}
