//! The Gemini adapter: serves canonical chat and embeddings requests from Google's Gemini
//! models, through the Gemini API (`kind: gemini`, `{base}/models/{model}:generateContent`
//! with `x-goog-api-key`) or Vertex AI (`kind: vertex`,
//! `{base}/projects/{project}/locations/{location}/publishers/google/models/{model}:…` with a
//! bearer token). Both speak the same JSON, so one adapter serves both; they differ only in
//! the URL and in [`auth::Credentials`].
//!
//! It owns the HTTP calls and their error classes (Gemini's 429 is a rate limit even when its
//! text says "quota", a 400 about the API key is an auth failure, a 504 a timeout); the pure
//! translation lives in [`translate`], [`stream`] and [`schema`]. Parameters Gemini cannot
//! honour are refused before translating (see [`UNSUPPORTED`]).

pub mod auth;
pub mod schema;
pub mod stream;
pub mod translate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use switchyard_wire::gemini as g;
use switchyard_wire::openai::{
    ChatCompletionRequest, Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse,
    EmbeddingsUsage, Extra,
};

use super::{ChatReply, Deployment, KeyPick, KeyPool, Provider, http, params};
use crate::config::{ProviderConfig, ProviderKind, ServerConfig, Timeouts};
use crate::error::{ErrorClass, ProviderError};
use crate::request::unix_secs;
use auth::{Credentials, TokenSource};

/// Canonical parameters with no Gemini equivalent. (`n` is `candidateCount`;
/// `parallel_tool_calls: false` is refused separately, since `true` is what Gemini does.)
pub const UNSUPPORTED: &[&str] = &[
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "prediction",
    "audio",
    "modalities",
    "web_search_options",
    "functions",
    "function_call",
];

/// Settings of a `kind: vertex` provider (`providers.<name>.vertex`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VertexConfig {
    /// The Google Cloud project id.
    pub project: String,
    /// The region (`us-central1`, `europe-west4`, …) or `global`; it also picks the host
    /// (`{location}-aiplatform.googleapis.com`) unless `base_url` is set.
    pub location: String,
    /// Path of a service-account JSON key file. Without it, the provider's `api_key` (or
    /// `api_keys`) is a static OAuth access token, sent as `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

pub struct GeminiProvider {
    name: Arc<str>,
    /// Up to and including the API version: `https://…/v1beta`, `https://…/v1`.
    base: String,
    /// What comes between the base and the model name: `models/` or
    /// `projects/{p}/locations/{l}/publishers/google/models/`.
    model_path: String,
    credentials: Credentials,
    keys: KeyPool,
    headers: HeaderMap,
    timeouts: Timeouts,
    max_event: usize,
    /// Caps on a non-streamed answer (`server.max_upstream_body_size` and its embeddings twin).
    chat_body: http::BodyLimit,
    embeddings_body: http::BodyLimit,
    client: reqwest::Client,
}

/// Which method of a model a request calls.
#[derive(Clone, Copy)]
enum Method {
    Generate,
    StreamGenerate,
    Embed,
    BatchEmbed,
}

impl GeminiProvider {
    pub fn new(name: &str, config: &ProviderConfig, limits: &ServerConfig) -> Result<Self, String> {
        let (base, model_path, credentials) = match (config.kind, &config.vertex) {
            (ProviderKind::Vertex, Some(vertex)) => vertex_setup(name, config, vertex)?,
            (ProviderKind::Vertex, None) => {
                return Err(format!(
                    "providers.{name}.vertex: kind vertex needs project and location (and credentials_file, or api_key for a static access token)"
                ));
            }
            (_, Some(_)) => {
                return Err(format!(
                    "providers.{name}.vertex: only a kind: vertex provider takes vertex settings"
                ));
            }
            (kind, None) => {
                let base = config
                    .base_url
                    .as_deref()
                    .or(kind.default_base_url())
                    .unwrap_or("https://generativelanguage.googleapis.com/v1beta");
                (base.to_owned(), "models/".to_owned(), Credentials::ApiKey)
            }
        };
        Ok(GeminiProvider {
            name: name.into(),
            base: base.trim_end_matches('/').to_owned(),
            model_path,
            credentials,
            keys: KeyPool::new(config.keys()),
            headers: super::openai::extra_headers(name, config)?,
            timeouts: config.timeouts,
            max_event: limits.max_upstream_event_size as usize,
            chat_body: http::BodyLimit::chat(limits),
            embeddings_body: http::BodyLimit::embeddings(limits),
            client: http::client(&config.timeouts)?,
        })
    }

    fn url(&self, model: &str, method: Method) -> Result<reqwest::Url, ProviderError> {
        let suffix = match method {
            Method::Generate => ":generateContent",
            Method::StreamGenerate => ":streamGenerateContent?alt=sse",
            Method::Embed => ":embedContent",
            Method::BatchEmbed => ":batchEmbedContents",
        };
        let url = format!("{}/{}{suffix}", self.base, self.model_resource(model));
        reqwest::Url::parse(&url).map_err(|e| {
            ProviderError::new(
                ErrorClass::InvalidRequest,
                &self.name,
                format!("bad URL {url}: {e}"),
            )
        })
    }

    /// The model's resource name, as batch embedding requests repeat it.
    fn model_resource(&self, model: &str) -> String {
        let model = model.strip_prefix("models/").unwrap_or(model);
        format!("{}{model}", self.model_path)
    }

    /// Posts a JSON body with the provider's credentials; failures are classified the Gemini way
    /// and teach the key pool (or the token cache) what they say.
    async fn post(
        &self,
        url: reqwest::Url,
        model: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut rb = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let mut key = None;
        match &self.credentials {
            Credentials::ServiceAccount(source) => {
                let token = source
                    .token(&self.name, &self.client, &self.timeouts)
                    .await?;
                rb = rb.bearer_auth(token);
            }
            Credentials::ApiKey | Credentials::StaticBearer => match self.keys.pick(model) {
                KeyPick::Keyless => {}
                KeyPick::Key(i, secret) => {
                    key = Some(i);
                    rb = match self.credentials {
                        Credentials::ApiKey => rb.header("x-goog-api-key", secret),
                        _ => rb.bearer_auth(secret),
                    };
                }
                KeyPick::AllBlocked(wait) => {
                    return Err(self.keys.all_blocked_error(&self.name, wait));
                }
            },
        }
        let result = http::send(&self.name, rb, &self.timeouts)
            .await
            .map_err(reclassify);
        if let Err(e) = &result {
            if let Some(i) = key {
                self.keys.report(i, model, e);
            }
            if let (Credentials::ServiceAccount(source), ErrorClass::Auth) =
                (&self.credentials, e.class)
            {
                source.invalidate();
            }
        }
        result
    }

    fn protocol_error(&self, e: impl std::fmt::Display) -> ProviderError {
        ProviderError::new(ErrorClass::Protocol, &self.name, e.to_string())
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        limit: http::BodyLimit,
    ) -> Result<T, ProviderError> {
        http::read_json(&self.name, response, self.timeouts.idle, limit).await
    }

    /// `embedContent` for one text, `batchEmbedContents` for several; vectors in input order.
    async fn embed_texts(
        &self,
        model: &str,
        texts: &[&str],
        dimensions: Option<u32>,
    ) -> Result<(Vec<Vec<f32>>, Option<u64>), ProviderError> {
        let entry = |text: &str, model: Option<String>| g::EmbedContentRequest {
            model,
            content: g::Content {
                role: None,
                parts: vec![g::Part::text(text)],
            },
            output_dimensionality: dimensions,
            task_type: None,
        };
        if let [text] = texts {
            let body =
                serde_json::to_vec(&entry(text, None)).map_err(|e| self.protocol_error(e))?;
            let response = self
                .post(self.url(model, Method::Embed)?, model, body)
                .await?;
            let answer: g::EmbedContentResponse = self.read(response, self.embeddings_body).await?;
            let tokens = answer.usage_metadata.map(|u| u.prompt_token_count);
            return Ok((vec![answer.embedding.values], tokens));
        }
        let resource = self.model_resource(model);
        let batch = g::BatchEmbedContentsRequest {
            requests: texts
                .iter()
                .map(|t| entry(t, Some(resource.clone())))
                .collect(),
        };
        let body = serde_json::to_vec(&batch).map_err(|e| self.protocol_error(e))?;
        let response = self
            .post(self.url(model, Method::BatchEmbed)?, model, body)
            .await?;
        let answer: g::BatchEmbedContentsResponse =
            self.read(response, self.embeddings_body).await?;
        if answer.embeddings.len() != texts.len() {
            return Err(self.protocol_error(format!(
                "asked for {} embeddings, got {}",
                texts.len(),
                answer.embeddings.len()
            )));
        }
        let tokens = answer.usage_metadata.map(|u| u.prompt_token_count);
        Ok((
            answer.embeddings.into_iter().map(|e| e.values).collect(),
            tokens,
        ))
    }
}

/// Base URL, model path and credentials of a Vertex AI provider.
fn vertex_setup(
    name: &str,
    config: &ProviderConfig,
    vertex: &VertexConfig,
) -> Result<(String, String, Credentials), String> {
    let path = format!("providers.{name}.vertex");
    for (field, value) in [("project", &vertex.project), ("location", &vertex.location)] {
        if value.is_empty() || value.contains(['/', '?', '#']) {
            return Err(format!(
                "{path}.{field}: \"{value}\" is not a Google Cloud {field}"
            ));
        }
    }
    let base = match (&config.base_url, vertex.location.as_str()) {
        (Some(base), _) => base.clone(),
        (None, "global") => "https://aiplatform.googleapis.com/v1".to_owned(),
        (None, region) => format!("https://{region}-aiplatform.googleapis.com/v1"),
    };
    let model_path = format!(
        "projects/{}/locations/{}/publishers/google/models/",
        vertex.project, vertex.location
    );
    let credentials = match (&vertex.credentials_file, config.keys().is_empty()) {
        (Some(_), false) => {
            return Err(format!(
                "{path}.credentials_file: set either credentials_file or api_key (a static access token), not both"
            ));
        }
        (Some(file), true) => Credentials::ServiceAccount(Box::new(
            TokenSource::from_file(file).map_err(|e| format!("{path}.credentials_file: {e}"))?,
        )),
        (None, false) => Credentials::StaticBearer,
        (None, true) => {
            return Err(format!(
                "{path}: set credentials_file (a service-account key file) or the provider's api_key (an access token)"
            ));
        }
    };
    Ok((base, model_path, credentials))
}

/// Gemini's own error classes over the generic ones of [`http::error_from_response`].
fn reclassify(mut e: ProviderError) -> ProviderError {
    // Gemini's `code` is the HTTP status again, which says nothing to a client: the gateway's
    // own code for the class is clearer.
    if e.upstream_code
        .as_deref()
        .is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit()))
    {
        e.upstream_code = None;
    }
    let text = e.message.to_ascii_lowercase();
    match e.status {
        // "API key not valid" (reason API_KEY_INVALID) and expired keys come as 400s.
        Some(400) if text.contains("api key") || text.contains("api_key_invalid") => {
            e.class = ErrorClass::Auth;
        }
        // RESOURCE_EXHAUSTED says "You exceeded your current quota" for per-minute limits too:
        // a rate limit to cool down from, not an account out of credit.
        Some(429) => {
            e.class = ErrorClass::RateLimited;
            e.retry_after = e.retry_after.or_else(|| retry_delay(&text));
        }
        Some(504) => e.class = ErrorClass::Timeout,
        _ => {}
    }
    e
}

/// "Please retry in 37.52s." in a 429's message (its RetryInfo, in words).
fn retry_delay(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry in ")? + "retry in ".len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let seconds: f64 = number.parse().ok()?;
    let unit = &rest[number.len()..];
    let seconds = if unit.starts_with("ms") {
        seconds / 1000.0
    } else {
        seconds
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// The error a stream reports in a frame after HTTP 200.
pub(crate) fn stream_error(provider: &str, error: &g::ErrorDetail) -> ProviderError {
    let status = if error.code == 0 { 500 } else { error.code };
    let mut e = ProviderError::new(
        ErrorClass::from_http(status, &error.status, &error.message),
        provider,
        error.message.clone(),
    );
    e.status = Some(status);
    e.upstream_code = Some(error.status.clone()).filter(|s| !s.is_empty());
    reclassify(e)
}

impl Provider for GeminiProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            params::refuse_unsupported(request, deployment, "Gemini", UNSUPPORTED)?;
            if request.parallel_tool_calls == Some(false) {
                params::refuse_unsupported(
                    request,
                    deployment,
                    "Gemini",
                    &["parallel_tool_calls"],
                )?;
            }
            let body = translate::to_generate_content(request)
                .map_err(|m| ProviderError::new(ErrorClass::InvalidRequest, &self.name, m))?;
            let body = serde_json::to_vec(&body).map_err(|e| self.protocol_error(e))?;
            let model = &request.model;
            let method = if request.is_stream() {
                Method::StreamGenerate
            } else {
                Method::Generate
            };
            let response = self.post(self.url(model, method)?, model, body).await?;
            if request.is_stream() {
                let events = http::events(
                    self.name.clone(),
                    response,
                    self.timeouts.idle,
                    self.max_event,
                );
                return Ok(ChatReply::Stream(stream::chunks(
                    self.name.clone(),
                    model,
                    events,
                )));
            }
            let answer: g::GenerateContentResponse = self.read(response, self.chat_body).await?;
            let response = translate::from_response(answer, model, unix_secs(), &self.name)?;
            Ok(ChatReply::Complete(response))
        })
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingsRequest,
        _deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<EmbeddingsResponse, ProviderError>> {
        Box::pin(async move {
            let invalid = |m: &str| ProviderError::new(ErrorClass::InvalidRequest, &self.name, m);
            let texts = request.texts().ok_or_else(|| {
                invalid("Gemini embeds text: input must be a string or a list of strings")
            })?;
            if texts.is_empty() {
                return Err(invalid("input must not be empty"));
            }
            let (vectors, tokens) = self
                .embed_texts(&request.model, &texts, request.dimensions)
                .await?;
            // Without a count from Gemini, about four characters a token, as the mock does.
            let tokens =
                tokens.unwrap_or_else(|| texts.iter().map(|t| t.len().div_ceil(4) as u64).sum());
            Ok(EmbeddingsResponse {
                object: "list".into(),
                data: vectors
                    .into_iter()
                    .enumerate()
                    .map(|(i, values)| Embedding {
                        object: "embedding".into(),
                        index: i as u32,
                        embedding: EmbeddingVector::Float(values),
                    })
                    .collect(),
                model: request.model.clone(),
                usage: Some(EmbeddingsUsage {
                    prompt_tokens: tokens,
                    total_tokens: tokens,
                }),
                extra: Extra::new(),
            })
        })
    }

    fn keys(&self) -> Option<&KeyPool> {
        Some(&self.keys)
    }
}
