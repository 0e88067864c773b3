//! Alert webhooks: one JSON POST, bounded in time, whose failure is a log line. Budget
//! thresholds (the governor) and spend anomalies (the server's upkeep) send theirs through here.

use std::time::Duration;

/// How long an alert may take to deliver before it is given up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// POSTs `event` to `url`; a failure (or a non-2xx answer) is logged, naming `what`.
pub async fn post(http: &reqwest::Client, url: &str, event: &serde_json::Value, what: &str) {
    let sent = http.post(url).timeout(TIMEOUT).json(event).send().await;
    if let Err(e) = sent.and_then(|r| r.error_for_status()) {
        tracing::warn!(error = %e, "{what} webhook failed");
    }
}
