//! The Amazon Bedrock adapter: serves canonical chat requests from the Converse API,
//! `POST {endpoint}/model/{modelId}/converse` and `/converse-stream`, signed with SigV4
//! ([`sign`]) or authorized with a Bedrock API key (`Authorization: Bearer`, from the key pool).
//! Requests and whole responses are translated by the pure functions of [`translate`]; the
//! binary event stream is decoded and translated to chunks by [`stream`].
//!
//! The model id goes in the URL path, percent-encoded once as one segment: model ids and
//! inference-profile ARNs hold `:` and `/`. Errors are classified from the AWS error type (the
//! `x-amzn-ErrorType` header, a `__type` member, or an exception frame's `:exception-type`), not
//! from the status alone: Bedrock answers 429 both for throttling and for a model that is still
//! loading, and 400 both for a bad request and an exhausted quota. Converse has no embeddings:
//! an embeddings call is refused with an error that says so.

pub mod sign;
pub mod stream;
pub mod translate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::BoxFuture;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde::{Deserialize, Serialize};
use switchyard_wire::bedrock::{ConverseResponse, ErrorBody};
use switchyard_wire::openai::{ChatCompletionRequest, EmbeddingsRequest, EmbeddingsResponse};

use super::{ChatReply, Deployment, KeyPick, KeyPool, Provider, http, params};
use crate::config::{ProviderConfig, ServerConfig, Timeouts};
use crate::error::{ErrorClass, ProviderError};
use crate::request::unix_secs;

const MAX_ERROR_BODY: usize = 64 * 1024;
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// Request parameters Converse has no equivalent for. `response_format` is refused unless it is
/// `text` and `parallel_tool_calls` only when `false` (see [`refuse_unsupported`]).
const UNSUPPORTED: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "functions",
    "function_call",
    "audio",
    "modalities",
    "prediction",
    "reasoning_effort",
    "web_search_options",
];

/// The `aws:` section of a `kind: bedrock` provider. Every field may be `${ENV}`-interpolated;
/// left out, the region and the credentials come from the standard AWS environment variables.
#[derive(Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Default: `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Serialized masked: the config is only serialized to be shown (`check-config`).
    #[serde(default, serialize_with = "masked")]
    pub secret_access_key: Option<String>,
    /// For temporary credentials; sent as `x-amz-security-token`.
    #[serde(default, serialize_with = "masked")]
    pub session_token: Option<String>,
}

fn masked<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    value.as_deref().map(crate::config::mask).serialize(s)
}

impl std::fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

pub struct BedrockProvider {
    name: Arc<str>,
    /// `https://bedrock-runtime.{region}.amazonaws.com`, or the configured base URL; no `/` at
    /// the end.
    endpoint: String,
    /// `None`: Bedrock API keys from `keys`.
    signer: Option<sign::Signer>,
    keys: KeyPool,
    headers: HeaderMap,
    timeouts: Timeouts,
    max_event: usize,
    /// Cap on a non-streamed answer: `server.max_upstream_body_size`.
    chat_body: http::BodyLimit,
    client: reqwest::Client,
}

impl BedrockProvider {
    pub fn new(name: &str, config: &ProviderConfig, limits: &ServerConfig) -> Result<Self, String> {
        Self::with_env(name, config, limits, &|var| std::env::var(var).ok())
    }

    /// Builds the adapter, looking environment variables up through `env`.
    pub fn with_env(
        name: &str,
        config: &ProviderConfig,
        limits: &ServerConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let aws = config.aws.as_ref();
        let region = aws
            .and_then(|a| a.region.clone())
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|r| !r.trim().is_empty());
        let no_region = || {
            format!(
                "providers.{name}.aws.region: Bedrock needs a region: set aws.region, or AWS_REGION in the environment"
            )
        };
        let base = config
            .base_url
            .as_deref()
            .or(config.kind.default_base_url())
            .unwrap_or("https://bedrock-runtime.{region}.amazonaws.com");
        let endpoint = if base.contains("{region}") {
            base.replace("{region}", region.as_deref().ok_or_else(no_region)?)
        } else {
            base.to_owned()
        };
        reqwest::Url::parse(&endpoint)
            .map_err(|e| format!("providers.{name}.base_url: not a valid URL: {e}"))?;
        let (signer, keys) = auth(name, config, env)?;
        let signer = match signer {
            Some(credentials) => {
                let region = region.ok_or_else(no_region)?;
                Some(sign::Signer::new(credentials, &region, sign::SERVICE))
            }
            None => None,
        };
        Ok(BedrockProvider {
            name: name.into(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            signer,
            keys: KeyPool::new(keys),
            headers: super::openai::extra_headers(name, config)?,
            timeouts: config.timeouts,
            max_event: limits.max_upstream_event_size as usize,
            chat_body: http::BodyLimit::chat(limits),
            client: http::client(&config.timeouts)?,
        })
    }

    /// `{endpoint}/model/{id}/converse[-stream]`, the id encoded as one path segment.
    fn url(&self, model: &str, stream: bool) -> Result<reqwest::Url, ProviderError> {
        let action = if stream {
            "converse-stream"
        } else {
            "converse"
        };
        let url = format!("{}/model/{}/{action}", self.endpoint, encode_segment(model));
        reqwest::Url::parse(&url).map_err(|e| {
            ProviderError::new(
                ErrorClass::InvalidRequest,
                &self.name,
                format!("model id \"{model}\" does not make a valid URL: {e}"),
            )
        })
    }

    /// Sends one Converse call, signed or with the next API key of the pool.
    async fn post(
        &self,
        model: &str,
        stream: bool,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, ProviderError> {
        let url = self.url(model, stream)?;
        let accept = if stream {
            EVENT_STREAM
        } else {
            "application/json"
        };
        let mut rb = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept);
        let mut key = None;
        if let Some(signer) = &self.signer {
            let mut signed: Vec<(&str, &str)> =
                vec![("content-type", "application/json"), ("accept", accept)];
            // Every header sent is signed: AWS rejects unsigned `x-amz-*` headers.
            for (name, value) in &self.headers {
                if let Ok(value) = value.to_str() {
                    signed.push((name.as_str(), value));
                }
            }
            let added = signer
                .sign("POST", url.as_str(), &signed, &body, SystemTime::now())
                .map_err(|e| ProviderError::new(ErrorClass::Auth, &self.name, e))?;
            for (name, value) in added {
                rb = rb.header(name, value);
            }
        } else {
            match self.keys.pick(model) {
                KeyPick::Keyless => {}
                KeyPick::Key(i, secret) => {
                    rb = rb.header(AUTHORIZATION, format!("Bearer {secret}"));
                    key = Some(i);
                }
                KeyPick::AllBlocked(wait) => {
                    return Err(self.keys.all_blocked_error(&self.name, wait));
                }
            }
        }
        let result = self.send(rb.body(body)).await;
        if let (Err(e), Some(i)) = (&result, key) {
            self.keys.report(i, model, e);
        }
        result
    }

    /// Like [`http::send`], but classifies an error response from its AWS error type.
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
        let (client, request) = rb.build_split();
        let request = request.map_err(|e| http::transport_error(&self.name, &e))?;
        let credentials = http::Credentials::of(request.headers());
        let sent = tokio::time::timeout(self.timeouts.first_byte, client.execute(request)).await;
        let response = match sent {
            Err(_) => {
                return Err(ProviderError::new(
                    ErrorClass::Timeout,
                    &self.name,
                    format!("no response within {:?}", self.timeouts.first_byte),
                ));
            }
            Ok(Err(e)) => return Err(http::transport_error(&self.name, &e)),
            Ok(Ok(r)) => r,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = http::read_body(&self.name, response, self.timeouts.idle, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        Err(credentials.scrub(error_from_response(&self.name, status, &headers, &body)))
    }
}

/// Which credentials a provider entry uses: SigV4 credentials, or Bedrock API keys for the pool.
fn auth(
    name: &str,
    config: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<sign::StaticCredentials>, Vec<String>), String> {
    let keys = config.keys();
    let in_config = config
        .aws
        .as_ref()
        .is_some_and(|a| a.access_key_id.is_some() || a.secret_access_key.is_some());
    if !keys.is_empty() {
        if in_config {
            return Err(format!(
                "providers.{name}: give either api_key (a Bedrock API key) or aws credentials, not both"
            ));
        }
        return Ok((None, keys));
    }
    let credentials = sign::credentials(config.aws.as_ref(), env)
        .map_err(|e| format!("providers.{name}: {e}"))?;
    if credentials.is_some() {
        return Ok((credentials, Vec::new()));
    }
    // The variable the AWS SDKs read a Bedrock API key from.
    if let Some(key) = env("AWS_BEARER_TOKEN_BEDROCK").filter(|k| !k.trim().is_empty()) {
        return Ok((None, vec![key]));
    }
    Err(format!(
        "providers.{name}: Bedrock needs credentials: set api_key: ${{BEDROCK_API_KEY}} (a Bedrock API key), \
         aws.access_key_id and aws.secret_access_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
    ))
}

/// Percent-encodes everything but the unreserved characters, so that a model id or an ARN
/// (`arn:aws:bedrock:…:inference-profile/us.anthropic…`) stays one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A classified error from a Bedrock error response: the type from `x-amzn-ErrorType`
/// (`ThrottlingException:http://internal.amazon.com/…`) or the body's `__type`
/// (`com.amazon.coral.service#UnrecognizedClientException`), the text from `message`.
pub fn error_from_response(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let kind = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(parsed.kind)
        .map(|k| error_type_name(&k).to_owned())
        .unwrap_or_default();
    let message = parsed.message.unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(500)
            .collect()
    });
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    ProviderError {
        class: classify(&kind, Some(status), &message),
        provider: provider.to_owned(),
        status: Some(status),
        upstream_code: Some(kind).filter(|k| !k.is_empty()),
        message,
        retry_after: http::retry_after(headers),
    }
}

/// `ThrottlingException` out of `ThrottlingException:http://…` or `…#ThrottlingException`.
fn error_type_name(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name).trim()
}

/// The class of an AWS error type (`ThrottlingException` or a frame's `throttlingException`).
/// An unknown type falls back to the status and the text.
pub fn classify(kind: &str, status: Option<u16>, message: &str) -> ErrorClass {
    let lower = kind.to_ascii_lowercase();
    let name = lower.strip_suffix("exception").unwrap_or(&lower);
    match name {
        "throttling" | "toomanyrequests" => ErrorClass::RateLimited,
        "servicequotaexceeded" => ErrorClass::Billing,
        // A model still loading answers 429, but waiting (not a key rotation) is the cure.
        "modelnotready" | "serviceunavailable" | "internalserver" | "internalfailure"
        | "modelstreamerror" | "modelerror" => ErrorClass::Overloaded,
        "modeltimeout" => ErrorClass::Timeout,
        "accessdenied"
        | "unrecognizedclient"
        | "expiredtoken"
        | "invalidsignature"
        | "incompletesignature"
        | "missingauthenticationtoken"
        | "invalidclienttokenid"
        | "signaturedoesnotmatch" => ErrorClass::Auth,
        "resourcenotfound" => ErrorClass::NotFound,
        "validation" | "conflict" | "serialization" => {
            if message
                .to_ascii_lowercase()
                .contains("too many input tokens")
            {
                ErrorClass::ContextLength
            } else {
                ErrorClass::from_http(400, kind, message)
            }
        }
        _ => ErrorClass::from_http(status.unwrap_or(500), kind, message),
    }
}

/// Refuses what Converse cannot honour, unless the route or the model allows dropping it.
fn refuse_unsupported(
    request: &ChatCompletionRequest,
    deployment: &Deployment,
) -> Result<(), ProviderError> {
    params::refuse_unsupported(request, deployment, "Bedrock", UNSUPPORTED)?;
    let format = request.extra.get("response_format");
    if format.is_some_and(|f| !f.is_null() && f.get("type").is_none_or(|t| t != "text")) {
        params::refuse_unsupported(request, deployment, "Bedrock", &["response_format"])?;
    }
    // Converse cannot forbid parallel calls; allowing them is what it does anyway.
    if request.parallel_tool_calls == Some(false) {
        params::refuse_unsupported(request, deployment, "Bedrock", &["parallel_tool_calls"])?;
    }
    Ok(())
}

/// The id of the response: Bedrock's request id when it gave one.
fn response_id(response: &reqwest::Response) -> String {
    match response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
    {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
    }
}

impl Provider for BedrockProvider {
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>> {
        Box::pin(async move {
            refuse_unsupported(request, deployment)?;
            let portable = super::portable_ids(request);
            let body = translate::to_converse_request(&portable, deployment.default_max_tokens)
                .map_err(|message| {
                    ProviderError::new(ErrorClass::InvalidRequest, &self.name, message)
                })?;
            let body = serde_json::to_vec(&body)
                .map_err(|e| ProviderError::new(ErrorClass::Protocol, &self.name, e.to_string()))?;
            let streaming = request.is_stream();
            let response = self.post(&request.model, streaming, body).await?;
            let id = response_id(&response);
            if streaming {
                let frames = stream::frames(
                    self.name.clone(),
                    response,
                    self.timeouts.idle,
                    self.max_event,
                );
                let translator = stream::Translator::new(id, request.model.clone(), unix_secs());
                Ok(ChatReply::Stream(stream::chunks(
                    self.name.clone(),
                    translator,
                    frames,
                )))
            } else {
                let reply: ConverseResponse =
                    http::read_json(&self.name, response, self.timeouts.idle, self.chat_body)
                        .await?;
                Ok(ChatReply::Complete(translate::from_converse_response(
                    reply,
                    id,
                    &request.model,
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
            "model \"{}\" is served by Bedrock's Converse API, which has no embeddings; \
             serve embeddings from another provider",
            deployment.name
        );
        Box::pin(std::future::ready(Err(ProviderError::new(
            ErrorClass::InvalidRequest,
            &self.name,
            message,
        ))))
    }

    fn keys(&self) -> Option<&KeyPool> {
        // SigV4 credentials are not a pool: nothing to rotate or show.
        self.signer.is_none().then_some(&self.keys)
    }
}
