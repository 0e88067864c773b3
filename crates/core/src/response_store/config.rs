//! The `responses:` section: whether the gateway keeps the Responses API responses it serves
//! (for `previous_response_id` and `GET /v1/responses/{id}`) and for how long.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Problems, duration};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponsesConfig {
    /// Keep served responses. Default: on when a database is configured (`database.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// How long a kept response can be continued or read back.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_ttl", with = "duration")]
    pub ttl: Duration,
}

impl Default for ResponsesConfig {
    fn default() -> Self {
        ResponsesConfig {
            store: None,
            ttl: default_ttl(),
        }
    }
}

fn default_ttl() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl ResponsesConfig {
    /// Whether responses are kept, given whether there is a database to keep them in.
    pub fn stores(&self, has_database: bool) -> bool {
        has_database && self.store.unwrap_or(true)
    }

    /// `database_url` is the `database.url` setting.
    pub(crate) fn check(&self, database_url: &str, problems: &mut Problems) {
        let url = database_url.trim();
        let no_database = url.is_empty() || url.eq_ignore_ascii_case("none");
        if self.store == Some(true) && no_database {
            problems.add(
                "responses.store",
                "keeping responses needs a database: set database.url (sqlite://FILE or postgres://…), or remove responses.store",
            );
        }
        if self.ttl.is_zero() {
            problems.add(
                "responses.ttl",
                "must be longer than 0, e.g. 30d; set responses.store: false to keep nothing",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    fn checked(config: &ResponsesConfig, database_url: &str) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        config.check(database_url, &mut problems);
        problems.finish()
    }

    fn parse(yaml: serde_json::Value) -> ResponsesConfig {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn storing_follows_the_database_unless_told() {
        let default = ResponsesConfig::default();
        assert!(default.stores(true) && !default.stores(false));
        assert_eq!(default.ttl, Duration::from_secs(30 * 86400));
        let off = parse(serde_json::json!({"store": false, "ttl": "2h"}));
        assert!(!off.stores(true));
        assert_eq!(off.ttl, Duration::from_secs(7200));
    }

    #[test]
    fn storing_without_a_database_or_for_no_time_is_refused() {
        let on = parse(serde_json::json!({"store": true}));
        let e = checked(&on, "none").unwrap_err().to_string();
        assert!(
            e.starts_with("responses.store:") && e.contains("database.url"),
            "{e}"
        );
        assert!(checked(&on, "sqlite://x.db").is_ok());
        let zero = parse(serde_json::json!({"ttl": "0s"}));
        assert!(
            checked(&zero, "sqlite://x.db")
                .unwrap_err()
                .to_string()
                .starts_with("responses.ttl")
        );
    }
}
