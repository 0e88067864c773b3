//! The Anthropic Messages adapter: sends `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version`, and translates both ways with the pure functions of [`translate`]
//! (requests and whole responses) and the state machine of [`stream`] (SSE events → OpenAI
//! chunks).
//!
//! Anthropic has no embeddings endpoint; an embeddings call on an Anthropic model is refused
//! with an error that says so.

pub mod stream;
pub mod translate;

#[cfg(test)]
mod fuzz_regressions;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;
use switchyard_wire::anthropic::MessagesResponse;
use switchyard_wire::openai::{
    ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse, Native,
};

use super::{ChatReply, Deployment, KeyPick, KeyPool, Provider, RawResponse, http};
use crate::config::{ProviderConfig, ServerConfig, Timeouts};
use crate::error::{ErrorClass, ProviderError};
use crate::request::unix_secs;

const API_VERSION: &str = "2023-06-01";

pub struct AnthropicProvider {
    name: Arc<str>,
    /// Parsed once: URL parsing showed in the request profile.
    url: reqwest::Url,
    keys: KeyPool,
    headers: HeaderMap,
    timeouts: Timeouts,
    max_event: usize,
    /// Cap on a non-streamed answer: `server.max_upstream_body_size`.
    chat_body: http::BodyLimit,
    client: reqwest::Client,
}

impl AnthropicProvider {
    pub fn new(name: &str, config: &ProviderConfig, limits: &ServerConfig) -> Result<Self, String> {
        let base = config
            .base_url
            .as_deref()
            .or(config.kind.default_base_url())
            .unwrap_or("https://api.anthropic.com")
            .trim_end_matches('/');
        // Accept a base URL given with or without the `/v1` suffix.
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let mut headers = super::openai::extra_headers(name, config)?;
        if !headers.contains_key("anthropic-version") {
            headers.insert(
                "anthropic-version",
                API_VERSION.parse().map_err(|_| "bad header")?,
            );
        }
        Ok(AnthropicProvider {
            name: name.into(),
            url: reqwest::Url::parse(&format!("{base}/v1/messages"))
                .map_err(|e| format!("providers.{name}.base_url: not a valid URL: {e}"))?,
            keys: KeyPool::new(config.keys()),
            headers,
            timeouts: config.timeouts,
            max_event: limits.max_upstream_event_size as usize,
            chat_body: http::BodyLimit::chat(limits),
            client: http::client(&config.timeouts)?,
        })
    }
}

impl AnthropicProvider {
    /// The body to send: the client's own Messages request when it spoke the Messages API
    /// (with the upstream model name), else the translation of the canonical request. With it,
    /// the client's `anthropic-beta` header.
    fn body<'r>(
        &self,
        request: &'r ChatCompletionRequest,
        deployment: &Deployment,
    ) -> Result<(Vec<u8>, Option<&'r str>), ProviderError> {
        let encoded = match request.origin.native.as_deref() {
            Some(Native::Anthropic { body, beta }) => {
                let mut body = body.clone();
                body["model"] = request.model.clone().into();
                return serde_json::to_vec(&body)
                    .map(|b| (b, beta.as_deref()))
                    .map_err(|e| {
                        ProviderError::new(ErrorClass::Protocol, &self.name, e.to_string())
                    });
            }
            _ => {
                super::params::refuse_unsupported(request, deployment, "Anthropic", UNSUPPORTED)?;
                let portable = super::portable_ids(request);
                let body = translate::to_messages_request(&portable, deployment.default_max_tokens)
                    .map_err(|message| {
                        ProviderError::new(ErrorClass::InvalidRequest, &self.name, message)
                    })?;
                serde_json::to_vec(&body)
            }
        };
        encoded
            .map(|b| (b, None))
            .map_err(|e| ProviderError::new(ErrorClass::Protocol, &self.name, e.to_string()))
    }
}

impl AnthropicProvider {
    /// The provider's headers, with the client's `anthropic-beta` features added to any the
    /// config sets (one comma-separated header, as Anthropic reads it).
    fn headers_with_beta(&self, beta: Option<&str>) -> HeaderMap {
        let mut headers = self.headers.clone();
        let Some(beta) = beta.filter(|b| !b.trim().is_empty()) else {
            return headers;
        };
        let joined = match headers.get("anthropic-beta").and_then(|v| v.to_str().ok()) {
            Some(configured) => format!("{configured},{beta}"),
            None => beta.to_owned(),
        };
        if let Ok(value) = joined.parse() {
            headers.insert("anthropic-beta", value);
        }
        headers
    }
}

/// OpenAI parameters with no Messages API equivalent: refused by name unless the route or model
/// drops them (see [`super::params`]).
const UNSUPPORTED: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "seed",
];

impl Provider for AnthropicProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            let (body, beta) = self.body(request, deployment)?;
            let native = matches!(
                request.origin.native.as_deref(),
                Some(Native::Anthropic { .. })
            );
            let mut rb = self
                .client
                .post(self.url.clone())
                .headers(self.headers_with_beta(beta))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            let key = match self.keys.pick(&request.model) {
                KeyPick::Keyless => None,
                KeyPick::Key(i, key) => {
                    rb = rb.header("x-api-key", key);
                    Some(i)
                }
                KeyPick::AllBlocked(wait) => {
                    return Err(self.keys.all_blocked_error(&self.name, wait));
                }
            };
            let result = http::send(&self.name, rb, &self.timeouts).await;
            if let (Err(e), Some(i)) = (&result, key) {
                self.keys.report(i, &request.model, e);
            }
            let response = result?;
            if request.is_stream() {
                let events = http::events(
                    self.name.clone(),
                    response,
                    self.timeouts.idle,
                    self.max_event,
                );
                Ok(ChatReply::Stream(stream::chunks(
                    self.name.clone(),
                    events,
                    native,
                )))
            } else if native {
                let body =
                    http::read_body(&self.name, response, self.timeouts.idle, self.chat_body)
                        .await?;
                let raw = RawResponse::anthropic(body).map_err(|e| {
                    ProviderError::new(
                        ErrorClass::Protocol,
                        &self.name,
                        format!("the response is not a Messages API message: {e}"),
                    )
                })?;
                Ok(ChatReply::Raw(raw))
            } else {
                let message: MessagesResponse =
                    http::read_json(&self.name, response, self.timeouts.idle, self.chat_body)
                        .await?;
                Ok(ChatReply::Complete(translate::from_messages_response(
                    message,
                    unix_secs(),
                )))
            }
        })
    }

    fn embed<'a>(
        &'a self,
        _request: &'a EmbeddingsRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<EmbeddingsResponse, ProviderError>> {
        let message = format!(
            "model \"{}\" is served by Anthropic, which has no embeddings API",
            deployment.name
        );
        Box::pin(std::future::ready(Err(ProviderError::new(
            ErrorClass::InvalidRequest,
            &self.name,
            message,
        ))))
    }

    fn keys(&self) -> Option<&KeyPool> {
        Some(&self.keys)
    }

    fn count_tokens<'a>(
        &'a self,
        native: &'a Native,
        deployment: &'a Deployment,
    ) -> Option<BoxFuture<'a, Result<u64, ProviderError>>> {
        let Native::Anthropic { body, beta } = native else {
            return None;
        };
        Some(Box::pin(async move {
            let mut body = body.clone();
            body["model"] = deployment.upstream_model.clone().into();
            let body = serde_json::to_vec(&body)
                .map_err(|e| ProviderError::new(ErrorClass::Protocol, &self.name, e.to_string()))?;
            let mut url = self.url.clone();
            url.set_path(&format!("{}/count_tokens", self.url.path()));
            let mut rb = self
                .client
                .post(url)
                .headers(self.headers_with_beta(beta.as_deref()))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
            if let KeyPick::Key(_, key) = self.keys.pick(&deployment.upstream_model) {
                rb = rb.header("x-api-key", key);
            }
            let response = http::send(&self.name, rb, &self.timeouts).await?;
            #[derive(serde::Deserialize)]
            struct Counted {
                input_tokens: u64,
            }
            let counted: Counted =
                http::read_json(&self.name, response, self.timeouts.idle, 1 << 20).await?;
            Ok(counted.input_tokens)
        }))
    }
}
