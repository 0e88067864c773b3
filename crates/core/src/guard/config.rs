//! The `guardrails:` section: the guardrails defined by name, which of them apply to every
//! request, to a team's requests, and the streaming window. Routes add theirs with
//! `routes.<name>.guardrails`, keys with a `guardrail:<name>` tag.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Problems, duration, invalid};

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsConfig {
    /// Guardrails that screen every request, by name, in order.
    #[serde(default)]
    pub apply: Vec<String>,
    /// Every guardrail, by a name of your choosing.
    #[serde(default)]
    pub define: BTreeMap<String, GuardrailConfig>,
    /// Guardrails for every request of a team's keys, by team name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub teams: BTreeMap<String, Vec<String>>,
    /// How many bytes of a streamed answer are held back so that a secret or a card number split
    /// across two chunks is still caught: no chunk is delayed by more than this.
    #[serde(default = "default_window")]
    pub stream_window: usize,
}

impl Default for GuardrailsConfig {
    fn default() -> Self {
        GuardrailsConfig {
            apply: Vec::new(),
            define: BTreeMap::new(),
            teams: BTreeMap::new(),
            stream_window: default_window(),
        }
    }
}

fn default_window() -> usize {
    128
}

/// One guardrail: what it checks, on which side, and what it does when it finds something.
/// Read through [`GuardrailConfig::try_from`]: serde cannot refuse unknown keys of a struct
/// with a flattened part, and a misspelt key must not pass unnoticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct GuardrailConfig {
    #[serde(flatten)]
    pub check: CheckConfig,
    /// `input` (what goes to the provider), `output` (what comes back) or `both`; by default
    /// `input` for `injection` (an attack on the model's input), `both` for the others.
    #[serde(default)]
    pub on: Side,
    #[serde(default)]
    pub action: Action,
    /// For `redact` on input: put the original values back into the answer, for this request
    /// only, so that it stays useful (`[EMAIL_1]` becomes the address again).
    #[serde(default)]
    pub restore: bool,
    /// For `restrict`: the model tag a request with a finding may be routed to (e.g.
    /// `self-hosted`); models carry tags in `models.<name>.tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict_to: Option<String>,
}

/// The keys every guardrail takes, beside its `type` and the type's own.
const COMMON_KEYS: [&str; 4] = ["on", "action", "restore", "restrict_to"];

/// The common keys, read apart from the check.
#[derive(Deserialize, schemars::JsonSchema)]
struct Common {
    /// `input` (what goes to the provider), `output` (what comes back) or `both`; by default
    /// `input` for `injection`, `both` for the others.
    #[serde(default)]
    on: Option<Side>,
    /// `block`, `redact`, `monitor` or `restrict`.
    #[serde(default)]
    action: Action,
    /// For `redact` on input: put the original values back into the answer.
    #[serde(default)]
    restore: bool,
    /// For `restrict`: the model tag a request with a finding may be routed to.
    #[serde(default)]
    restrict_to: Option<String>,
}

/// A guardrail's schema is each `type`'s own keys plus the common ones, and no others, as
/// [`GuardrailConfig::try_from`] reads it (a derived schema of the flattened enum would let its
/// `additionalProperties: false` refuse the common keys).
impl schemars::JsonSchema for GuardrailConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GuardrailConfig".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let common = Common::json_schema(generator);
        let common = common.get("properties").and_then(|p| p.as_object());
        let mut check = CheckConfig::json_schema(generator);
        if let Some(serde_json::Value::Array(variants)) = check.get_mut("oneOf") {
            for variant in variants {
                let props = variant
                    .as_object_mut()
                    .and_then(|v| v.get_mut("properties"))
                    .and_then(|p| p.as_object_mut());
                if let (Some(props), Some(common)) = (props, common) {
                    props.extend(common.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        check
    }
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for GuardrailConfig {
    type Error = String;

    fn try_from(mut map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let mut common = serde_json::Map::new();
        for key in COMMON_KEYS {
            if let Some(v) = map.remove(key) {
                common.insert(key.to_owned(), v);
            }
        }
        let check: CheckConfig =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())?;
        let common: Common =
            serde_json::from_value(serde_json::Value::Object(common)).map_err(|e| e.to_string())?;
        let on = common.on.unwrap_or(match check {
            CheckConfig::Injection { .. } => Side::Input,
            _ => Side::Both,
        });
        Ok(GuardrailConfig {
            check,
            on,
            action: common.action,
            restore: common.restore,
            restrict_to: common.restrict_to,
        })
    }
}

/// What a guardrail looks for.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckConfig {
    /// Personal data. `kinds` default to all of them.
    Pii {
        #[serde(default)]
        kinds: Vec<String>,
        /// More kinds: a name and a regular expression.
        #[serde(default)]
        custom: BTreeMap<String, String>,
    },
    /// Provider and cloud keys, private keys, tokens, connection strings with a password.
    Secrets,
    /// Prompt injection, scored; at or above `threshold` it acts.
    Injection {
        #[serde(default = "default_threshold")]
        threshold: f32,
        /// Whose messages are screened. Tool results and retrieved content carry most
        /// injections, so they are in by default with the user's.
        #[serde(default = "default_injection_roles")]
        roles: Vec<String>,
    },
    /// Banned words (matched as whole words, any case) and regular expressions.
    Patterns {
        #[serde(default)]
        keywords: Vec<String>,
        #[serde(default)]
        regexes: Vec<String>,
    },
    /// The answer to a request that asked for JSON (`response_format`) must be JSON, and match
    /// the schema when one was given; else the call is retried once, then refused.
    Format,
    /// How much of the answer the context the request carried supports (system and tool
    /// messages), lexically; recorded, and below `threshold` it acts.
    Grounding {
        #[serde(default = "default_grounding")]
        threshold: f32,
    },
    /// An external policy service: POSTed the texts, answers allow or block.
    Webhook {
        url: String,
        #[schemars(schema_with = "crate::config::duration_schema")]
        #[serde(default = "default_webhook_timeout", with = "duration")]
        timeout: Duration,
        /// When the service fails or is late: `open` lets the request through, `closed` blocks.
        #[serde(default)]
        fail: FailMode,
    },
}

fn default_threshold() -> f32 {
    0.5
}

fn default_grounding() -> f32 {
    0.5
}

fn default_injection_roles() -> Vec<String> {
    vec!["user".into(), "tool".into()]
}

fn default_webhook_timeout() -> Duration {
    Duration::from_millis(500)
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Input,
    Output,
    #[default]
    Both,
}

impl Side {
    pub fn input(self) -> bool {
        matches!(self, Side::Input | Side::Both)
    }

    pub fn output(self) -> bool {
        matches!(self, Side::Output | Side::Both)
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the request (or the answer) with a 400-class error naming the guardrail.
    #[default]
    Block,
    /// Replace what was found with a typed, numbered placeholder.
    Redact,
    /// Record only.
    Monitor,
    /// Route the request only to models tagged `restrict_to`.
    Restrict,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

impl GuardrailsConfig {
    /// Checks names, actions that fit their check, and the settings each needs. `routes` are
    /// the route names with the guardrails they add.
    pub fn check<'a>(
        &self,
        routes: impl Iterator<Item = (&'a str, &'a [String])>,
        problems: &mut Problems,
    ) {
        for (i, name) in self.apply.iter().enumerate() {
            problems.check(self.known(name, &format!("guardrails.apply[{i}]")));
        }
        for (team, names) in &self.teams {
            for (i, name) in names.iter().enumerate() {
                problems.check(self.known(name, &format!("guardrails.teams.{team}[{i}]")));
            }
        }
        for (route, names) in routes {
            for (i, name) in names.iter().enumerate() {
                problems.check(self.known(name, &format!("routes.{route}.guardrails[{i}]")));
            }
        }
        for (name, g) in &self.define {
            problems.check(g.check(&format!("guardrails.define.{name}")));
        }
        if self.stream_window == 0 {
            problems.add("guardrails.stream_window", "must be at least 1");
        }
    }

    fn known(&self, name: &str, path: &str) -> Result<(), ConfigError> {
        if self.define.contains_key(name) {
            return Ok(());
        }
        let defined: Vec<&str> = self.define.keys().map(String::as_str).collect();
        Err(invalid(
            path,
            format!(
                "unknown guardrail \"{name}\"; defined in guardrails.define: {}",
                if defined.is_empty() {
                    "none".into()
                } else {
                    defined.join(", ")
                }
            ),
        ))
    }
}

impl GuardrailConfig {
    fn check(&self, path: &str) -> Result<(), ConfigError> {
        let finds_spans = matches!(
            self.check,
            CheckConfig::Pii { .. } | CheckConfig::Secrets | CheckConfig::Patterns { .. }
        );
        if self.action == Action::Redact && !finds_spans {
            return Err(invalid(
                format!("{path}.action"),
                "redact needs a guardrail that finds values (pii, secrets, patterns); use block or monitor",
            ));
        }
        if self.restore && self.action != Action::Redact {
            return Err(invalid(
                format!("{path}.restore"),
                "only a redact guardrail restores",
            ));
        }
        match (self.action, &self.restrict_to) {
            (Action::Restrict, None) => {
                return Err(invalid(
                    format!("{path}.restrict_to"),
                    "restrict needs the model tag it restricts to, e.g. restrict_to: self-hosted",
                ));
            }
            (Action::Restrict, Some(_)) if !self.on.input() => {
                return Err(invalid(format!("{path}.on"), "restrict acts on input"));
            }
            _ => {}
        }
        match &self.check {
            CheckConfig::Injection { threshold, .. } | CheckConfig::Grounding { threshold }
                if !(0.0..=1.0).contains(threshold) =>
            {
                Err(invalid(
                    format!("{path}.threshold"),
                    "must be between 0 and 1",
                ))
            }
            CheckConfig::Webhook { url, .. }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Err(invalid(
                    format!("{path}.url"),
                    "must be an http:// or https:// URL",
                ))
            }
            // Regular expressions are compiled, and their errors reported, when the chain is
            // built (`GuardSet::build`), which check-config and serve both do.
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(config: &GuardrailsConfig) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        config.check(std::iter::empty(), &mut problems);
        problems.finish()
    }

    fn parse(yaml: &str) -> Result<GuardrailsConfig, String> {
        serde_saphyr::from_str::<GuardrailsConfig>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_misspelt_key_is_refused_and_actions_must_fit_their_check() {
        let ok = parse("define:\n  pii: { type: pii, action: redact, restore: true, on: input }\n");
        let g = &ok.unwrap().define["pii"];
        assert_eq!(
            (g.action, g.on, g.restore),
            (Action::Redact, Side::Input, true)
        );

        let e = parse("define:\n  pii: { type: pii, acton: block }\n").unwrap_err();
        assert!(e.contains("acton"), "{e}");
        let e = parse("define:\n  b: { type: patterns, keyword: [x] }\n").unwrap_err();
        assert!(e.contains("keyword"), "{e}");

        let config = parse("define:\n  j: { type: format, action: redact }\n").unwrap();
        let e = checked(&config).unwrap_err().to_string();
        assert!(e.contains("guardrails.define.j.action"), "{e}");
        let config = parse("apply: [nope]\n").unwrap();
        let e = checked(&config).unwrap_err().to_string();
        assert!(
            e.contains("guardrails.apply[0]") && e.contains("nope"),
            "{e}"
        );
    }

    #[test]
    fn injection_screens_requests_unless_told_otherwise() {
        let config = parse(
            "define:
  i: { type: injection }
  o: { type: injection, on: both }
  s: { type: secrets }
",
        )
        .unwrap();
        let sides: Vec<Side> = ["i", "o", "s"]
            .iter()
            .map(|n| config.define[*n].on)
            .collect();
        assert_eq!(sides, [Side::Input, Side::Both, Side::Both]);
    }
}
