//! `switchyard import litellm|portkey FILE [-o OUT]`: turns another gateway's config into a
//! commented Switchyard config, and lists on stderr every setting that does not carry over, with
//! the reason (never dropping one silently).
//!
//! This module owns the command, what both importers share (the report of settings left behind,
//! the reading of a source section key by key, provider de-duplication, value conversions), and
//! the output document; [`litellm`] and [`portkey`] own the mappings. [`yaml`] writes the YAML
//! with its comments.

mod litellm;
mod portkey;
mod yaml;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map as JsonMap, Value};

pub use yaml::{Map, Node};

/// Import another gateway's config as a Switchyard config.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The format of FILE.
    pub from: Source,
    /// The config to import: a LiteLLM proxy config.yaml, or a Portkey gateway config JSON.
    pub file: PathBuf,
    /// Where to write the Switchyard config (default: stdout). Settings that do not carry over
    /// are listed on stderr either way.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Source {
    /// A LiteLLM proxy config.yaml (model_list, router_settings, litellm_settings, general_settings).
    Litellm,
    /// A Portkey gateway config (strategy, targets, retry, request_timeout) in JSON.
    Portkey,
}

pub fn run(args: ImportArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    let imported = match import(args.from, &text, &args.file) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file.display());
            return ExitCode::FAILURE;
        }
    };
    for d in &imported.dropped {
        eprintln!("not carried over: {} — {}", d.key, d.reason);
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &imported.yaml)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            print!("{}", imported.yaml);
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(path) = &args.output {
        eprintln!(
            "wrote {} ({} setting(s) not carried over); check it with: switchyard check-config {}",
            path.display(),
            imported.dropped.len(),
            path.display()
        );
    }
    ExitCode::SUCCESS
}

/// The result of an import: the YAML text and what was left behind.
#[derive(Debug)]
pub struct Imported {
    pub yaml: String,
    pub dropped: Vec<Dropped>,
}

/// A source setting that is not in the output, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    pub key: String,
    pub reason: String,
}

pub fn import(from: Source, text: &str, file: &Path) -> Result<Imported, String> {
    let (tool, draft) = match from {
        Source::Litellm => ("LiteLLM proxy config", litellm::import(text)?),
        Source::Portkey => (
            "Portkey gateway config",
            portkey::import(text, &route_name(file))?,
        ),
    };
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    let mut header = vec![
        format!(
            "Imported from the {tool} {} by `switchyard import` on {now}.",
            file.display()
        ),
        "Review it, then validate it with `switchyard check-config FILE`. Settings that did not"
            .into(),
        "carry over were listed on stderr; they are repeated at the end of this file.".into(),
    ];
    header.extend(draft.header);
    let mut yaml = yaml::render(&header, &draft.doc);
    if !draft.dropped.is_empty() {
        yaml.push_str("\n# Not carried over:\n");
        for d in &draft.dropped {
            yaml.push_str(&format!("#   {} — {}\n", d.key, d.reason));
        }
    }
    Ok(Imported {
        yaml,
        dropped: draft.dropped,
    })
}

/// The route a Portkey config becomes is named after its file: `fallback.json` → `fallback`.
fn route_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if clean.is_empty() {
        "default".into()
    } else {
        clean
    }
}

/// What an importer builds: the document, extra header lines, and the settings left behind.
#[derive(Debug, Default)]
pub struct Draft {
    pub doc: Map,
    pub header: Vec<String>,
    pub dropped: Vec<Dropped>,
}

impl Draft {
    pub fn drop(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.dropped.push(Dropped {
            key: key.into(),
            reason: reason.into(),
        });
    }
}

/// One object of the source, read key by key: whatever is not taken is reported as not carried
/// over, so that a setting the importer does not know is never dropped silently.
pub struct Section {
    path: String,
    map: JsonMap<String, Value>,
}

impl Section {
    /// `value` is the object at `path` (a missing value is an empty section).
    pub fn new(path: impl Into<String>, value: Option<Value>) -> Result<Section, String> {
        let path = path.into();
        match value {
            None | Some(Value::Null) => Ok(Section {
                path,
                map: JsonMap::new(),
            }),
            Some(Value::Object(map)) => Ok(Section { path, map }),
            Some(other) => Err(format!("{path}: expected a mapping, found {other}")),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The dotted path of a key of this section.
    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub fn take_str(&mut self, key: &str) -> Option<String> {
        self.take(key).map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    pub fn take_f64(&mut self, key: &str) -> Option<f64> {
        self.take(key).and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub fn take_bool(&mut self, key: &str) -> Option<bool> {
        self.take(key).and_then(|v| match v {
            Value::Bool(b) => Some(b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
    }

    /// Reports a key as not carried over, if present.
    pub fn drop_key(&mut self, key: &str, reason: &str, draft: &mut Draft) {
        if self.take(key).is_some() {
            draft.drop(self.key(key), reason);
        }
    }

    /// Reports every key not taken: those listed in `known` with their reason, the others as
    /// settings with no Switchyard equivalent.
    pub fn finish(self, known: &[(&str, &str)], draft: &mut Draft) {
        for (key, _) in self.map {
            let reason = known
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, r)| *r)
                .unwrap_or("Switchyard has no equivalent setting");
            let path = if self.path.is_empty() {
                key
            } else {
                format!("{}.{key}", self.path)
            };
            draft.drop(path, reason);
        }
    }
}

/// Providers by name, one per distinct settings: deployments that share an endpoint and key
/// share a provider (and its key cooldowns), as they share the upstream's quota.
#[derive(Debug, Default)]
pub struct Providers {
    entries: Vec<(String, Map)>,
}

impl Providers {
    /// The name of the provider with these settings, added under `base` (or `base-2`, …) if new.
    pub fn name_for(&mut self, base: &str, settings: Map) -> String {
        if let Some((name, _)) = self.entries.iter().find(|(_, m)| *m == settings) {
            return name.clone();
        }
        let name = unique_name(base, |n| self.entries.iter().any(|(e, _)| e == n));
        self.entries.push((name.clone(), settings));
        name
    }

    pub fn into_map(self) -> Map {
        let mut m = Map::new();
        for (name, settings) in self.entries {
            m.put(name, settings);
        }
        m
    }
}

/// `base`, or `base-2`, `base-3`… the first that `taken` does not hold.
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_owned())
}

/// A literal string made safe for Switchyard's interpolation: `${` would read as a variable.
pub fn literal(s: &str) -> String {
    s.replace("${", "$${")
}

/// Seconds as a Switchyard duration (`30s`, `1500ms`).
pub fn seconds(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// USD per token (LiteLLM's unit) as USD per million tokens (Switchyard's), rounded to cents of
/// a micro-dollar so that float noise does not show.
pub fn per_million(per_token: f64) -> f64 {
    (per_token * 1e6 * 1e6).round() / 1e6
}

/// Weights as positive integers in the same proportions (Switchyard's weights are integers,
/// LiteLLM's and Portkey's may be fractions such as 0.7 / 0.3).
pub fn integer_weights(weights: &[f64]) -> Vec<u32> {
    // The smallest power of ten that makes every weight whole (0.7 / 0.2 / 0.1 → 7 / 2 / 1).
    let whole = |m: f64| {
        weights
            .iter()
            .all(|w| ((w * m) - (w * m).round()).abs() < 1e-6)
    };
    let scale = [1.0, 10.0, 100.0, 1000.0]
        .into_iter()
        .find(|m| whole(*m))
        .unwrap_or(1000.0);
    let ints: Vec<u32> = weights
        .iter()
        .map(|w| (w * scale).round().max(0.0) as u32)
        .collect();
    let gcd = ints.iter().fold(0, |a, &b| gcd(a, b)).max(1);
    ints.iter().map(|w| w / gcd).collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The environment variable an upstream SDK reads a provider's key from when the config gives
/// none, so that an imported provider without a key still reads the same credential.
pub fn default_key_env(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "openai" => "OPENAI_API_KEY",
        "azure" => "AZURE_API_KEY",
        "anthropic" => "ANTHROPIC_API_KEY",
        "gemini" => "GEMINI_API_KEY",
        "groq" => "GROQ_API_KEY",
        "together" => "TOGETHERAI_API_KEY",
        "mistral" => "MISTRAL_API_KEY",
        "deepseek" => "DEEPSEEK_API_KEY",
        "openrouter" => "OPENROUTER_API_KEY",
        "xai" => "XAI_API_KEY",
        _ => return None,
    })
}

/// A provider's `api_key`: the source's key as given (with `copied_note` on it, if any), else
/// the variable an SDK would read (with `missing_note`); else none.
pub fn put_api_key(
    s: &mut Map,
    kind: &str,
    key: Option<String>,
    copied_note: Option<&str>,
    missing_note: &str,
) {
    match (key, copied_note) {
        (Some(k), Some(note)) => {
            s.put_noted("api_key", Node::str(k), note);
        }
        (Some(k), None) => {
            s.put("api_key", Node::str(k));
        }
        (None, _) => {
            if let Some(var) = default_key_env(kind) {
                s.put_noted("api_key", Node::str(format!("${{{var}}}")), missing_note);
            }
        }
    }
}

/// Bedrock's `aws` block from the source's region, access key id, secret and session token,
/// named `from` there, each turned by `value`; nothing when the source has none of them.
pub fn put_aws(s: &mut Map, t: &mut Section, from: [&str; 4], value: impl Fn(&str) -> String) {
    let mut aws = Map::new();
    let to = [
        "region",
        "access_key_id",
        "secret_access_key",
        "session_token",
    ];
    for (from, to) in from.into_iter().zip(to) {
        if let Some(v) = t.take_str(from) {
            aws.put(to, Node::str(value(&v)));
        }
    }
    if !aws.is_empty() {
        s.put("aws", aws);
    }
}

/// Vertex's `vertex` block with the source's project and location, or the variables Google's
/// tools read when it has none.
pub fn vertex_block(project: Option<String>, location: Option<String>) -> Map {
    let mut vertex = Map::new();
    vertex.put(
        "project",
        Node::str(project.unwrap_or_else(|| "${VERTEXAI_PROJECT}".into())),
    );
    vertex.put(
        "location",
        Node::str(location.unwrap_or_else(|| "${VERTEXAI_LOCATION}".into())),
    );
    vertex
}

/// Context windows of well-known models, used when the source does not give one: Switchyard
/// falls back on a context-length error only to a model with a larger known window.
pub fn known_context_window(upstream: &str) -> Option<u32> {
    const KNOWN: &[(&str, u32)] = &[
        ("gpt-3.5-turbo-16k", 16_385),
        ("gpt-3.5-turbo", 16_385),
        ("gpt-4-32k", 32_768),
        ("gpt-4-turbo", 128_000),
        ("gpt-4o", 128_000),
        ("gpt-4.1", 1_047_576),
        ("gpt-4", 8_192),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4-mini", 200_000),
        ("claude", 200_000),
        ("anthropic.claude", 200_000),
        ("gemini-1.5-pro", 2_097_152),
        ("gemini-1.5-flash", 1_048_576),
        ("gemini-2", 1_048_576),
    ];
    let name = upstream.rsplit('/').next().unwrap_or(upstream);
    KNOWN
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, w)| *w)
}

#[cfg(test)]
mod tests;
