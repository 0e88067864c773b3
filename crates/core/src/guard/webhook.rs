//! The webhook guardrail: an external policy service, POSTed
//! `{"guardrail", "side", "model", "texts": [...]}` and answering
//! `{"action": "allow" | "block", "reason": "..."}`, within a timeout. A service that fails,
//! answers late or answers something else is allowed through (`fail: open`, recorded) or blocks
//! (`fail: closed`).

use std::time::Duration;

use serde::Deserialize;

use super::config::FailMode;

pub struct Webhook {
    url: String,
    timeout: Duration,
    fail: FailMode,
    http: reqwest::Client,
}

/// What the service decided.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Allow,
    Block(String),
    /// The service could not answer; `fail: open` let the request through.
    FailedOpen(String),
}

#[derive(Deserialize)]
struct Answer {
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

impl Webhook {
    pub fn new(url: &str, timeout: Duration, fail: FailMode) -> Result<Webhook, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the webhook's HTTP client: {e}"))?;
        Ok(Webhook {
            url: url.to_owned(),
            timeout,
            fail,
            http,
        })
    }

    pub async fn ask(&self, guardrail: &str, side: &str, model: &str, texts: &[&str]) -> Decision {
        let body = serde_json::json!({
            "guardrail": guardrail, "side": side, "model": model, "texts": texts,
        });
        let asked = async {
            let response = self.http.post(&self.url).json(&body).send().await?;
            response.error_for_status()?.json::<Answer>().await
        };
        let problem = match tokio::time::timeout(self.timeout, asked).await {
            Ok(Ok(answer)) => match answer.action.as_str() {
                "allow" => return Decision::Allow,
                "block" => {
                    let reason = answer.reason.unwrap_or_else(|| "refused by policy".into());
                    return Decision::Block(reason);
                }
                other => format!("answered an unknown action \"{other}\""),
            },
            Ok(Err(e)) => format!("failed: {e}"),
            Err(_) => format!("did not answer within {:?}", self.timeout),
        };
        match self.fail {
            FailMode::Open => Decision::FailedOpen(problem),
            FailMode::Closed => Decision::Block(format!("the policy service {problem}")),
        }
    }
}
