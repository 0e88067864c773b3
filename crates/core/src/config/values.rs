//! Values inside the config: `${VAR}` interpolation of every string, durations (`500ms`, `2m`,
//! or seconds) and byte sizes (`64KB`, `10MB`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::Problems;

/// Replaces `${VAR}` and `${VAR:-default}` in every string of the tree; `$${` escapes. Every
/// reference that cannot be resolved is a problem of its own.
pub(crate) fn interpolate(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) {
    match value {
        Value::String(s) if s.contains("${") => match interpolate_str(s, env) {
            Ok(done) => *s = done,
            Err(message) => problems.add(path, message),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate(v, &child, env, problems);
            }
        }
        _ => {}
    }
}

/// A serde message in the config's own words: serde names the Rust type it expected
/// (`struct ProviderConfig`, `u32`, `untagged enum TargetConfig`), which means nothing to
/// someone editing YAML.
pub(crate) fn in_config_words(message: &str) -> String {
    static RULES: std::sync::LazyLock<Vec<(regex::Regex, &'static str)>> =
        std::sync::LazyLock::new(|| {
            [
                (
                    r"data did not match any variant of untagged enum TargetConfig",
                    "expected a model name or { model: NAME, weight: N }",
                ),
                (
                    r"data did not match any variant of untagged enum \w+",
                    "is not a value this key takes (see docs/configuration.md)",
                ),
                (r"expected struct \w+", "expected a map of settings"),
                (
                    r"expected (?:internally tagged |adjacently tagged )?enum \w+",
                    "expected one of the documented values",
                ),
                (
                    r"expected (?:u8|u16|u32|u64|usize)\b",
                    "expected a whole number, 0 or more",
                ),
                (
                    r"expected (?:i8|i16|i32|i64|isize)\b",
                    "expected a whole number",
                ),
                (r"expected (?:f32|f64)\b", "expected a number"),
            ]
            .into_iter()
            .filter_map(|(pattern, plain)| Some((regex::Regex::new(pattern).ok()?, plain)))
            .collect()
        });
    let mut out = message.to_owned();
    for (pattern, plain) in RULES.iter() {
        out = pattern.replace_all(&out, *plain).into_owned();
    }
    out
}

fn interpolate_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest.as_bytes()[start - 1] == b'$' {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed \"${{\" in \"{s}\""))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "\"${{{expr}}}\" is not a valid environment variable reference"
            ));
        }
        match (
            env(name).filter(|v| !v.is_empty() || default.is_none()),
            default,
        ) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The schema of a duration: text (`500ms`, `2m`, or `${VAR}`) or a number of seconds.
pub(crate) fn duration_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "number"],
        "minimum": 0,
        "examples": ["500ms", "10s", "2m"]
    })
}

/// The schema of a byte size: a number of bytes, or text (`64KB`, `10MB`, or `${VAR}`).
pub(crate) fn byte_size_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": ["string", "integer"],
        "minimum": 0,
        "examples": ["64KB", "10MB"]
    })
}

/// Optional durations.
pub(crate) mod opt_duration {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }
}

/// Durations as humane strings: `250ms`, `10s`, `5m`.
pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => humantime::parse_duration(s.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "\"{s}\" is not a duration ({e}); write e.g. 500ms, 10s or 2m"
                ))
            }),
            // Refuses negative, NaN and more seconds than a Duration holds (where
            // `from_secs_f64` would panic).
            Raw::Seconds(n) => Duration::try_from_secs_f64(n)
                .map_err(|_| serde::de::Error::custom(format!("{n} is not a duration"))),
        }
    }
}

/// Sizes as integers (bytes) or strings: `64KB`, `10MB`, `1GiB`.
pub(crate) fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(n),
        Raw::Text(s) => parse_byte_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a size; write a number of bytes or e.g. 64KB, 10MB"
            ))
        }),
    }
}

fn parse_byte_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" | "kib" => 1024,
        "mb" | "m" | "mib" => 1024 * 1024,
        "gb" | "g" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_lose_rust_type_names() {
        assert_eq!(
            in_config_words("invalid type: integer `5`, expected struct ProviderConfig"),
            "invalid type: integer `5`, expected a map of settings"
        );
        assert_eq!(
            in_config_words("invalid value: integer `-1`, expected u32"),
            "invalid value: integer `-1`, expected a whole number, 0 or more"
        );
    }

    #[test]
    fn interpolation_defaults_and_escapes() {
        let env = |n: &str| (n == "SET").then(|| "v".to_string());
        assert_eq!(interpolate_str("a${SET}b", &env).unwrap(), "avb");
        assert_eq!(interpolate_str("${UNSET:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate_str("$${SET}", &env).unwrap(), "${SET}");
        assert!(interpolate_str("${UNSET}", &env).is_err());
    }

    /// Found by the `config_yaml` fuzz target: a number of seconds beyond what a Duration holds
    /// panicked the config loader (and with it `serve` and `check-config`).
    #[test]
    fn a_duration_too_long_for_a_duration_is_a_config_error_not_a_panic() {
        let crash = "# Local Azures\n\nproviders:\n  demo:\n    kind: mock\n    mock:\n      \
            chunk_interval: 0000000000000407000000000040731106\n  echo:\n   \
            u\"sqlite://switchyard.rd.db\"\n";
        let e = crate::config::Config::from_yaml(crash, &|_| None).unwrap_err();
        assert!(e.to_string().contains("is not a duration"), "{e}");
        let e = crate::config::Config::from_yaml("server: { drain_timeout: 1e300 }", &|_| None)
            .unwrap_err();
        assert!(e.to_string().contains("server.drain_timeout"), "{e}");
    }
}
