//! The OpenAI dialect adapter: OpenAI itself, Azure OpenAI, and every OpenAI-compatible server
//! (vLLM, Ollama, Groq, Together, Mistral, DeepSeek, OpenRouter, xAI, any custom base URL).
//!
//! Vendors differ only in base URL, auth header and, for Azure, the URL shape
//! (`/openai/deployments/{deployment}/…?api-version=`) and the `api-key` header. The request is
//! the canonical struct serialized as is, so fields Switchyard does not know reach the upstream
//! untouched; responses and chunks are read into the canonical structs, which keep unknown
//! fields too. A Responses API client's own body goes to OpenAI and Azure as it came
//! ([`responses`]).

pub mod responses;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse, ErrorBody,
    Native,
};

use super::{ChatReply, ChunkStream, Deployment, KeyPick, KeyPool, Provider, RawResponse, http};
use crate::config::{ProviderConfig, ProviderKind, ServerConfig, Timeouts};
use crate::error::{ErrorClass, ProviderError};

pub struct OpenAiProvider {
    name: Arc<str>,
    kind: ProviderKind,
    base_url: String,
    api_version: Option<String>,
    keys: KeyPool,
    headers: HeaderMap,
    timeouts: Timeouts,
    max_event: usize,
    /// Caps on a non-streamed answer (`server.max_upstream_body_size` and its embeddings twin).
    chat_body: http::BodyLimit,
    embeddings_body: http::BodyLimit,
    client: reqwest::Client,
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    responses_url: reqwest::Url,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Chat,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

fn parse_url(name: &str, url: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(url)
        .map_err(|e| format!("providers.{name}.base_url: \"{url}\" is not a valid URL: {e}"))
}

impl OpenAiProvider {
    pub fn new(name: &str, config: &ProviderConfig, limits: &ServerConfig) -> Result<Self, String> {
        let base_url = config
            .base_url
            .as_deref()
            .or(config.kind.default_base_url())
            .ok_or_else(|| format!("providers.{name}.base_url: required"))?
            .trim_end_matches('/')
            .to_owned();
        let chat_url = parse_url(name, &format!("{base_url}/chat/completions"))?;
        let embeddings_url = parse_url(name, &format!("{base_url}/embeddings"))?;
        let responses_url = parse_url(name, &responses::url(config.kind, &base_url))?;
        Ok(OpenAiProvider {
            chat_url,
            embeddings_url,
            responses_url,
            name: name.into(),
            kind: config.kind,
            base_url,
            api_version: config.api_version.clone(),
            keys: KeyPool::new(config.keys()),
            headers: extra_headers(name, config)?,
            timeouts: config.timeouts,
            max_event: limits.max_upstream_event_size as usize,
            chat_body: http::BodyLimit::chat(limits),
            embeddings_body: http::BodyLimit::embeddings(limits),
            client: http::client(&config.timeouts)?,
        })
    }

    /// The endpoint URL. Parsed once at start-up except for Azure, whose URL names the
    /// deployment: URL parsing (with IDNA) showed in the request profile.
    fn url(&self, deployment: &str, endpoint: Endpoint) -> Result<reqwest::Url, ProviderError> {
        if self.kind != ProviderKind::Azure {
            return Ok(match endpoint {
                Endpoint::Chat => self.chat_url.clone(),
                Endpoint::Embeddings => self.embeddings_url.clone(),
            });
        }
        let url = format!(
            "{}/openai/deployments/{deployment}/{}?api-version={}",
            self.base_url,
            endpoint.path(),
            self.api_version.as_deref().unwrap_or_default()
        );
        reqwest::Url::parse(&url).map_err(|e| {
            ProviderError::new(
                ErrorClass::InvalidRequest,
                &self.name,
                format!("bad URL {url}: {e}"),
            )
        })
    }

    /// Posts a JSON body with the next ready key; a failure is reported to the key pool.
    async fn post(
        &self,
        url: reqwest::Url,
        model: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ProviderError> {
        let rb = self
            .client
            .post(url)
            .headers(self.headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let (rb, key) = match self.keys.pick(model) {
            KeyPick::Keyless => (rb, None),
            KeyPick::Key(i, key) => match self.kind {
                ProviderKind::Azure => (rb.header("api-key", key), Some(i)),
                _ => (rb.bearer_auth(key), Some(i)),
            },
            KeyPick::AllBlocked(wait) => return Err(self.keys.all_blocked_error(&self.name, wait)),
        };
        let result = http::send(&self.name, rb, &self.timeouts).await;
        if let (Err(e), Some(i)) = (&result, key) {
            self.keys.report(i, model, e);
        }
        result
    }

    fn protocol_error(&self, e: serde_json::Error) -> ProviderError {
        ProviderError::new(
            ErrorClass::Protocol,
            &self.name,
            format!("cannot encode the request: {e}"),
        )
    }
}

/// The configured extra headers, validated once at start-up.
pub(crate) fn extra_headers(name: &str, config: &ProviderConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (k, v) in &config.headers {
        let key = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("providers.{name}.headers: \"{k}\" is not a valid header name"))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| format!("providers.{name}.headers.{k}: not a valid header value"))?;
        headers.insert(key, value);
    }
    Ok(headers)
}

impl Provider for OpenAiProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            if let Some(Native::Responses { body }) = request.origin.native.as_deref()
                && self.serves_responses()
            {
                return self.respond(request, body, deployment).await;
            }
            // OpenAI-dialect servers take every canonical field as it is; only what a native
            // body asked beyond the canonical request is refused.
            let vendor = match self.kind {
                ProviderKind::Openai => "OpenAI chat completions",
                ProviderKind::Azure => "Azure OpenAI chat completions",
                _ => "OpenAI-compatible chat completions",
            };
            super::params::refuse_unsupported(request, deployment, vendor, &[])?;
            let request = super::portable_ids(request);
            let body = serde_json::to_vec(&*request).map_err(|e| self.protocol_error(e))?;
            let url = self.url(&deployment.upstream_model, Endpoint::Chat)?;
            let response = self.post(url, &deployment.upstream_model, body).await?;
            if request.is_stream() {
                let events = http::events(
                    self.name.clone(),
                    response,
                    self.timeouts.idle,
                    self.max_event,
                );
                Ok(ChatReply::Stream(chunks(self.name.clone(), events)))
            } else {
                let body =
                    http::read_body(&self.name, response, self.timeouts.idle, self.chat_body)
                        .await?;
                let raw = RawResponse::new(body).map_err(|e| {
                    ProviderError::new(
                        ErrorClass::Protocol,
                        &self.name,
                        format!("the response is not a chat completion: {e}"),
                    )
                })?;
                Ok(ChatReply::Raw(raw))
            }
        })
    }

    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingsRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<EmbeddingsResponse, ProviderError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(request).map_err(|e| self.protocol_error(e))?;
            let url = self.url(&deployment.upstream_model, Endpoint::Embeddings)?;
            let response = self.post(url, &deployment.upstream_model, body).await?;
            http::read_json(
                &self.name,
                response,
                self.timeouts.idle,
                self.embeddings_body,
            )
            .await
        })
    }

    fn keys(&self) -> Option<&KeyPool> {
        Some(&self.keys)
    }
}

/// Reads OpenAI SSE events as chunks. `data: [DONE]` ends the stream; an `{"error":…}` frame
/// (sent after HTTP 200 by OpenAI and vLLM) becomes an error; a body that ends before `[DONE]`
/// and before any finish_reason was cut off, and says so.
fn chunks(
    provider: Arc<str>,
    events: impl futures_util::Stream<Item = Result<switchyard_wire::sse::Event, ProviderError>>
    + Send
    + 'static,
) -> ChunkStream {
    struct State<S> {
        events: S,
        provider: Arc<str>,
        finished: bool,
        saw_finish: bool,
    }
    let state = State {
        events: Box::pin(events),
        provider,
        finished: false,
        saw_finish: false,
    };
    Box::pin(stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            let event = match st.events.next().await {
                Some(Ok(event)) => event,
                Some(Err(e)) => {
                    st.finished = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.finished = true;
                    if st.saw_finish {
                        return None;
                    }
                    let err = ProviderError::new(
                        ErrorClass::Connection,
                        &st.provider,
                        "the stream ended before it was complete (no [DONE])",
                    );
                    return Some((Err(err), st));
                }
            };
            let data = event.data.trim();
            if data == "[DONE]" {
                return None;
            }
            if data.is_empty() {
                continue;
            }
            match serde_json::from_str::<ChatCompletionChunk>(data) {
                Ok(chunk) => {
                    if chunk.choices.iter().any(|c| c.finish_reason.is_some()) {
                        st.saw_finish = true;
                    }
                    return Some((Ok(chunk), st));
                }
                Err(parse_error) => {
                    st.finished = true;
                    let err = match serde_json::from_str::<ErrorBody>(data) {
                        Ok(body) => {
                            let (kind, code) = (
                                body.error.kind.unwrap_or_default(),
                                body.error.code.map(|c| c.to_string()).unwrap_or_default(),
                            );
                            let class = ErrorClass::from_http(
                                500,
                                &format!("{kind} {code}"),
                                &body.error.message,
                            );
                            let mut e = ProviderError::new(class, &st.provider, body.error.message);
                            e.upstream_code = Some(kind).filter(|k| !k.is_empty());
                            e
                        }
                        Err(_) => ProviderError::new(
                            ErrorClass::Protocol,
                            &st.provider,
                            format!("unreadable stream chunk: {parse_error}"),
                        ),
                    };
                    return Some((Err(err), st));
                }
            }
        }
    }))
}
