//! The `providers:` and `models:` sections: which vendor and endpoint each provider is, its keys
//! and timeouts, the mock's behaviour, and each model's upstream name, price and capabilities.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// The vendors Switchyard knows. Every OpenAI-compatible vendor is a preset of the `openai`
/// dialect: a default base URL and auth header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Azure,
    Anthropic,
    Bedrock,
    Mock,
    OpenaiCompatible,
    Vllm,
    Ollama,
    Groq,
    Together,
    Mistral,
    Deepseek,
    Openrouter,
    Xai,
    /// Google's Gemini API (AI Studio): an API key in `x-goog-api-key`.
    Gemini,
    /// Gemini on Google Cloud Vertex AI: project and location in `vertex`, a bearer token or a
    /// service account. A kind of its own rather than an auth mode of `gemini`, because the two
    /// differ in what the kind decides: the base URL and whether an `api_key` is required.
    Vertex,
}

/// The config's own spelling (`openai_compatible`), for messages a user reads: never the Rust
/// variant name.
impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => f.write_str("(unknown kind)"),
        }
    }
}

/// The wire dialect an adapter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Bedrock,
    Gemini,
    Mock,
}

impl ProviderKind {
    pub fn dialect(self) -> Dialect {
        match self {
            ProviderKind::Anthropic => Dialect::Anthropic,
            ProviderKind::Bedrock => Dialect::Bedrock,
            ProviderKind::Gemini | ProviderKind::Vertex => Dialect::Gemini,
            ProviderKind::Mock => Dialect::Mock,
            _ => Dialect::OpenAi,
        }
    }

    /// The base URL used when the config gives none.
    pub fn default_base_url(self) -> Option<&'static str> {
        Some(match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
            // The adapter fills in the region (`aws.region`, AWS_REGION or AWS_DEFAULT_REGION).
            ProviderKind::Bedrock => "https://bedrock-runtime.{region}.amazonaws.com",
            ProviderKind::Vllm => "http://127.0.0.1:8000/v1",
            ProviderKind::Ollama => "http://127.0.0.1:11434/v1",
            ProviderKind::Groq => "https://api.groq.com/openai/v1",
            ProviderKind::Together => "https://api.together.xyz/v1",
            ProviderKind::Mistral => "https://api.mistral.ai/v1",
            ProviderKind::Deepseek => "https://api.deepseek.com/v1",
            ProviderKind::Openrouter => "https://openrouter.ai/api/v1",
            ProviderKind::Xai => "https://api.x.ai/v1",
            ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
            // The global endpoint; a regional `vertex.location` picks its regional host.
            ProviderKind::Vertex => "https://aiplatform.googleapis.com/v1",
            ProviderKind::Azure | ProviderKind::OpenaiCompatible | ProviderKind::Mock => {
                return None;
            }
        })
    }

    /// Whether calls without an API key make sense (local servers, the mock).
    pub fn key_optional(self) -> bool {
        matches!(
            self,
            ProviderKind::Mock
                // SigV4 credentials come from `aws` or the environment, not `api_key`.
                | ProviderKind::Bedrock
                | ProviderKind::Vllm
                | ProviderKind::Ollama
                | ProviderKind::OpenaiCompatible
                // A service-account file can stand in for the static token.
                | ProviderKind::Vertex
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    #[serde(default)]
    pub base_url: Option<String>,
    /// One key; `api_keys` gives a pool.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Azure OpenAI's `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Extra headers sent with every upstream request (e.g. `anthropic-beta`, OpenRouter's
    /// `HTTP-Referer`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Behaviour of a `kind: mock` provider.
    #[serde(default)]
    pub mock: Option<MockConfig>,
    /// Region and SigV4 credentials of a `kind: bedrock` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<crate::provider::bedrock::AwsConfig>,
    /// Project, location and credentials of a `kind: vertex` provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<crate::provider::gemini::VertexConfig>,
}

impl ProviderConfig {
    /// The sections that belong to one kind sit only on a provider of that kind, and the kinds
    /// that need theirs have them.
    pub(super) fn check_kind_settings(&self, path: &str, problems: &mut super::Problems) {
        if self.aws.is_some() && self.kind != ProviderKind::Bedrock {
            problems.add(
                format!("{path}.aws"),
                "only a kind: bedrock provider takes aws settings",
            );
        }
        match (&self.vertex, self.kind) {
            (Some(_), kind) if kind != ProviderKind::Vertex => problems.add(
                format!("{path}.vertex"),
                "only a kind: vertex provider takes vertex settings",
            ),
            (None, ProviderKind::Vertex) => problems.add(
                format!("{path}.vertex"),
                "kind vertex needs its project and location: vertex: { project: my-project, location: us-central1 }",
            ),
            _ => {}
        }
    }

    /// The key pool, `api_key` first.
    pub fn keys(&self) -> Vec<String> {
        self.api_key
            .iter()
            .chain(self.api_keys.iter())
            .cloned()
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// TCP + TLS connection set-up.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_connect", with = "duration")]
    pub connect: Duration,
    /// From sending the request to the response headers (for a non-streamed call, the whole
    /// generation).
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_first_byte", with = "duration")]
    pub first_byte: Duration,
    /// Longest silence between two reads of a response body.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default = "default_idle", with = "duration")]
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect(),
            first_byte: default_first_byte(),
            idle: default_idle(),
        }
    }
}

fn default_connect() -> Duration {
    Duration::from_secs(10)
}
fn default_first_byte() -> Duration {
    Duration::from_secs(300)
}
fn default_idle() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// The answer, unless `echo` is set.
    #[serde(default = "default_mock_text")]
    pub text: String,
    /// Answer with the last user message instead of `text`.
    #[serde(default)]
    pub echo: bool,
    /// Wait before the first byte.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default, with = "duration")]
    pub latency: Duration,
    /// Words per streamed chunk.
    #[serde(default = "default_chunk_words")]
    pub chunk_words: usize,
    /// Wait between streamed chunks.
    #[schemars(schema_with = "crate::config::duration_schema")]
    #[serde(default, with = "duration")]
    pub chunk_interval: Duration,
    /// Fraction of calls (0.0–1.0) that fail with `failure_status`.
    #[serde(default)]
    pub failure_rate: f64,
    #[serde(default = "default_failure_status")]
    pub failure_status: u16,
    /// Length of the vectors `/v1/embeddings` returns when the request does not set
    /// `dimensions`.
    #[serde(default = "default_embedding_dimensions")]
    pub embedding_dimensions: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            text: default_mock_text(),
            echo: false,
            latency: Duration::ZERO,
            chunk_words: default_chunk_words(),
            chunk_interval: Duration::ZERO,
            failure_rate: 0.0,
            failure_status: default_failure_status(),
            embedding_dimensions: default_embedding_dimensions(),
        }
    }
}

fn default_mock_text() -> String {
    "Hello from Switchyard's mock provider. Point a model at a real provider in switchyard.yaml \
     to get real answers."
        .into()
}
fn default_chunk_words() -> usize {
    1
}
fn default_failure_status() -> u16 {
    500
}
fn default_embedding_dimensions() -> usize {
    64
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Name of an entry of `providers`.
    pub provider: String,
    /// The model name the provider knows (Azure: the deployment name). Default: this model's
    /// own name.
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub price: Price,
    /// Tokens of prompt + output the model accepts.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// `max_tokens` sent when the client gives none (required by Anthropic). Default 4096.
    #[serde(default)]
    pub default_max_tokens: Option<u32>,
    /// What the model can do; empty means "no restriction".
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// Parameters this model's provider cannot honour (`n > 1` on Anthropic, `logprobs` on
    /// Bedrock…) are dropped instead of refused with a 400.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_unsupported_params: bool,
    /// Labels for routing decisions: a `restrict` guardrail sends a request with a finding
    /// only to models carrying its `restrict_to` tag (e.g. `self-hosted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Chat,
    Embeddings,
    Tools,
    Vision,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// Prompt tokens read from the provider's prompt cache; default: the input price.
    #[serde(default)]
    pub cached_input: Option<f64>,
}
