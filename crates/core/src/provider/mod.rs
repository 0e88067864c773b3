//! Provider adapters: one [`Provider`] per wire dialect, not per vendor. `openai` serves OpenAI,
//! Azure OpenAI and every OpenAI-compatible server through presets; `anthropic` translates to
//! and from the Messages API; `mock` answers locally so the gateway runs with no network.
//!
//! An adapter receives the canonical request whose `model` is already the upstream model name,
//! and returns either a whole response or a stream of canonical chunks. It owns its HTTP client
//! (one connection pool per provider) and its key pool. Which deployment to call, and what to do
//! when a call fails, is the router's and the executor's business, not the adapter's.

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod http;
pub mod mock;
pub mod openai;
pub mod params;
pub mod tool_calls;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::Stream;
use futures_util::future::BoxFuture;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingsRequest,
    EmbeddingsResponse, Native, Usage,
};

use crate::config::{Capability, Config, Dialect, Price, ProviderConfig};
use crate::error::{ErrorClass, ProviderError};

/// A stream of canonical chunks. It ends after the last chunk, or after one `Err`.
pub type ChunkStream =
    Pin<Box<dyn Stream<Item = Result<ChatCompletionChunk, ProviderError>> + Send + 'static>>;

/// What a chat call produced.
pub enum ChatReply {
    Complete(ChatCompletionResponse),
    /// A whole response already in the client's dialect (OpenAI), kept as the upstream's bytes
    /// with only its usage read out: when no later stage needs to look inside, it is forwarded
    /// without being decoded and encoded again (that round trip was an eighth of the gateway's
    /// instructions per request).
    Raw(RawResponse),
    Stream(ChunkStream),
}

pub struct RawResponse {
    pub body: bytes::Bytes,
    pub usage: Option<Usage>,
    /// Which API's object the bytes are.
    pub kind: BodyKind,
}

/// The API whose response object a [`RawResponse`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// An OpenAI `chat.completion`.
    ChatCompletion,
    /// An Anthropic Messages `message`, for a client that spoke the Messages API.
    AnthropicMessage,
    /// An OpenAI Responses API `response`, for a client that spoke the Responses API.
    Response,
}

impl RawResponse {
    /// Reads the usage out of an OpenAI chat completion, checking that it is one.
    pub fn new(body: bytes::Bytes) -> Result<RawResponse, serde_json::Error> {
        /// Only what the gateway needs; serde skips the rest without building it.
        #[derive(serde::Deserialize)]
        struct Outline {
            #[allow(dead_code)] // required: a body without choices is not a chat completion
            choices: serde::de::IgnoredAny,
            #[serde(default)]
            usage: Option<Usage>,
        }
        let outline: Outline = serde_json::from_slice(&body)?;
        Ok(RawResponse {
            body,
            usage: outline.usage,
            kind: BodyKind::ChatCompletion,
        })
    }

    /// Reads the usage out of an Anthropic message, checking that it is one.
    pub fn anthropic(body: bytes::Bytes) -> Result<RawResponse, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Outline {
            #[allow(dead_code)] // required: a body without content is not a message
            content: serde::de::IgnoredAny,
            usage: switchyard_wire::anthropic::Usage,
        }
        let outline: Outline = serde_json::from_slice(&body)?;
        Ok(RawResponse {
            body,
            usage: Some(anthropic::translate::usage(&outline.usage)),
            kind: BodyKind::AnthropicMessage,
        })
    }

    /// Reads the usage out of a Responses API `response` object, checking that it is one.
    pub fn responses(body: bytes::Bytes) -> Result<RawResponse, serde_json::Error> {
        #[derive(serde::Deserialize)]
        struct Outline {
            #[allow(dead_code)] // required: a body without output is not a response
            output: serde::de::IgnoredAny,
            #[serde(default)]
            usage: Option<switchyard_wire::responses::Usage>,
        }
        let outline: Outline = serde_json::from_slice(&body)?;
        Ok(RawResponse {
            body,
            usage: outline.usage.as_ref().map(openai::responses::usage),
            kind: BodyKind::Response,
        })
    }

    /// The decoded response as a chat completion, for the stages that look inside.
    pub fn decode(&self) -> Result<ChatCompletionResponse, serde_json::Error> {
        match self.kind {
            BodyKind::ChatCompletion => serde_json::from_slice(&self.body),
            BodyKind::AnthropicMessage => Ok(anthropic::translate::from_messages_response(
                serde_json::from_slice(&self.body)?,
                crate::request::unix_secs(),
            )),
            BodyKind::Response => Ok(openai::responses::to_chat_completion(
                serde_json::from_slice(&self.body)?,
            )),
        }
    }
}

pub trait Provider: Send + Sync {
    /// Sends a chat request. `request.model` is the upstream model name; `request.stream`
    /// decides the kind of reply.
    fn chat<'a>(
        &'a self,
        request: &'a ChatCompletionRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<ChatReply, ProviderError>>;

    /// Sends an embeddings request; the response's vectors are floats (egress encodes base64).
    fn embed<'a>(
        &'a self,
        request: &'a EmbeddingsRequest,
        deployment: &'a Deployment,
    ) -> BoxFuture<'a, Result<EmbeddingsResponse, ProviderError>>;

    /// The provider's key pool, if it has one: the executor asks it whether another key is
    /// ready, the admin API shows its health.
    fn keys(&self) -> Option<&KeyPool> {
        None
    }

    /// Counts the prompt tokens of a request in the client's own dialect without generating,
    /// when the provider has an endpoint for it and speaks that dialect (Anthropic's
    /// `count_tokens`). `None`: the gateway estimates instead.
    fn count_tokens<'a>(
        &'a self,
        _native: &'a Native,
        _deployment: &'a Deployment,
    ) -> Option<BoxFuture<'a, Result<u64, ProviderError>>> {
        None
    }
}

/// The request with tool-call ids as every upstream takes them: Gemini's adapter carries its
/// thought signatures inside the ids it hands out (see `gemini::translate`), which makes them
/// longer than OpenAI (40 characters) and Bedrock (64) accept. Stripped alike from the calls and
/// from the results that answer them, so the pairs still match. Borrowed when no id carries one.
pub fn portable_ids(
    request: &ChatCompletionRequest,
) -> std::borrow::Cow<'_, ChatCompletionRequest> {
    use gemini::translate::without_signature;
    let signed = |id: &str| without_signature(id).len() != id.len();
    let any = request.messages.iter().any(|m| {
        m.tool_call_id.as_deref().is_some_and(signed)
            || m.tool_calls.iter().flatten().any(|c| signed(&c.id))
    });
    if !any {
        return std::borrow::Cow::Borrowed(request);
    }
    let mut owned = request.clone();
    for m in &mut owned.messages {
        if let Some(id) = &mut m.tool_call_id {
            *id = without_signature(id).to_owned();
        }
        for call in m.tool_calls.iter_mut().flatten() {
            call.id = without_signature(&call.id).to_owned();
        }
    }
    std::borrow::Cow::Owned(owned)
}

/// One model served by one provider: what a route's target resolves to.
pub struct Deployment {
    /// The model's name in the config.
    pub name: String,
    pub provider_name: String,
    pub provider: Arc<dyn Provider>,
    pub upstream_model: String,
    pub price: Price,
    pub context_window: Option<u32>,
    pub default_max_tokens: u32,
    pub capabilities: Vec<Capability>,
    /// The model's `drop_unsupported_params`.
    pub drop_unsupported_params: bool,
    /// The model's `tags`.
    pub tags: Vec<String>,
}

impl Deployment {
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.is_empty() || self.capabilities.contains(&capability)
    }
}

/// Builds the adapter a provider entry asks for.
pub fn build(
    name: &str,
    config: &ProviderConfig,
    limits: &crate::config::ServerConfig,
) -> Result<Arc<dyn Provider>, String> {
    Ok(match config.kind.dialect() {
        Dialect::OpenAi => Arc::new(openai::OpenAiProvider::new(name, config, limits)?),
        Dialect::Anthropic => Arc::new(anthropic::AnthropicProvider::new(name, config, limits)?),
        Dialect::Bedrock => Arc::new(bedrock::BedrockProvider::new(name, config, limits)?),
        Dialect::Gemini => Arc::new(gemini::GeminiProvider::new(name, config, limits)?),
        Dialect::Mock => Arc::new(mock::MockProvider::new(
            name,
            config.mock.clone().unwrap_or_default(),
        )),
    })
}

/// Builds every provider and deployment of a config.
#[allow(clippy::type_complexity)]
pub fn build_all(
    config: &Config,
) -> Result<(BTreeMap<String, Arc<dyn Provider>>, Vec<Arc<Deployment>>), String> {
    let mut providers = BTreeMap::new();
    // Every provider is built, so that check-config reports all their problems at once.
    let mut problems = Vec::new();
    for (name, p) in &config.providers {
        match build(name, p, &config.server) {
            Ok(built) => {
                providers.insert(name.clone(), built);
            }
            Err(e) => problems.push(e),
        }
    }
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0)),
        n => return Err(format!("{n} problems:\n  {}", problems.join("\n  "))),
    }
    let deployments = config
        .models
        .iter()
        .map(|(name, m)| {
            let provider = providers.get(&m.provider).ok_or_else(|| {
                format!("models.{name}.provider: unknown provider {}", m.provider)
            })?;
            Ok(Arc::new(Deployment {
                name: name.clone(),
                provider_name: m.provider.clone(),
                provider: provider.clone(),
                upstream_model: m.upstream.clone().unwrap_or_else(|| name.clone()),
                price: m.price,
                context_window: m.context_window,
                default_max_tokens: m.default_max_tokens.unwrap_or(4096),
                capabilities: m.capabilities.clone(),
                drop_unsupported_params: m.drop_unsupported_params,
                tags: m.tags.clone(),
            }))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((providers, deployments))
}

/// A provider's API keys, handed out round-robin, each with its own health. A key the provider
/// rate-limits cools down for its Retry-After, for that model only (providers limit per model);
/// a key the provider rejects, or that is out of quota, is set aside for every model. A cooling
/// key is never used while another is ready. Kept per replica.
pub struct KeyPool {
    keys: Vec<PoolKey>,
    next: AtomicUsize,
}

struct PoolKey {
    secret: String,
    /// Milliseconds since [`epoch`] before which the key must not be used for any model.
    blocked_until: AtomicU64,
    /// Why: 2 rejected, 3 out of quota.
    reason: AtomicU8,
    /// Rate-limit cooldowns per upstream model: (model, until). Rare, so a short list.
    model_cooldowns: Mutex<Vec<(String, u64)>>,
    /// The latest end of any model cooldown: lets `pick` skip the lock when none is active.
    cooldowns_until: AtomicU64,
}

impl PoolKey {
    /// When the key is ready again for `model` (0 or a past instant: ready).
    fn ready_at(&self, model: &str, now: u64) -> u64 {
        let mut at = self.blocked_until.load(Ordering::Relaxed);
        if self.cooldowns_until.load(Ordering::Relaxed) > now {
            let list = self
                .model_cooldowns
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((_, until)) = list.iter().find(|(m, _)| m == model) {
                at = at.max(*until);
            }
        }
        at
    }
}

/// What [`KeyPool::pick`] found.
#[derive(Debug, PartialEq)]
pub enum KeyPick<'a> {
    /// The provider takes no key.
    Keyless,
    Key(usize, &'a str),
    /// Every key is cooling down; the first is ready again after this long.
    AllBlocked(Duration),
}

/// How long a credential the provider rejected is set aside before it is tried again.
const REJECTED_KEY_PAUSE: Duration = Duration::from_secs(600);
/// How long a key out of quota or credit is set aside.
const BILLING_KEY_PAUSE: Duration = Duration::from_secs(3600);
/// Cooldown of a rate-limited key whose provider gave no Retry-After.
const DEFAULT_RATE_LIMIT_PAUSE: Duration = Duration::from_secs(5);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KeySnapshot {
    /// The key's first characters and length, never the key.
    pub key: String,
    /// `ready`, `rejected` or `out_of_quota` (for every model).
    pub state: &'static str,
    pub ready_in_ms: Option<u64>,
    /// Models this key is rate limited on, with the time left.
    pub rate_limited: BTreeMap<String, u64>,
}

impl KeyPool {
    pub fn new(keys: Vec<String>) -> Self {
        KeyPool {
            keys: keys
                .into_iter()
                .map(|secret| PoolKey {
                    secret,
                    blocked_until: AtomicU64::new(0),
                    reason: AtomicU8::new(0),
                    model_cooldowns: Mutex::new(Vec::new()),
                    cooldowns_until: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next key ready for `model`, round-robin.
    pub fn pick(&self, model: &str) -> KeyPick<'_> {
        if self.keys.is_empty() {
            return KeyPick::Keyless;
        }
        let now = now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.keys.len();
        let mut soonest = u64::MAX;
        for offset in 0..n {
            let i = (start + offset) % n;
            let at = self.keys[i].ready_at(model, now);
            if at <= now {
                return KeyPick::Key(i, &self.keys[i].secret);
            }
            soonest = soonest.min(at - now);
        }
        KeyPick::AllBlocked(Duration::from_millis(soonest))
    }

    /// How many keys the pool holds (none: the provider takes no key).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a call to `model` could be made now.
    pub fn has_ready_key(&self, model: &str) -> bool {
        let now = now_ms();
        self.keys.is_empty() || self.keys.iter().any(|k| k.ready_at(model, now) <= now)
    }

    /// Learns from a failed call to `model` made with key `index`.
    pub fn report(&self, index: usize, model: &str, error: &ProviderError) {
        let Some(key) = self.keys.get(index) else {
            return;
        };
        let now = now_ms();
        match error.class {
            ErrorClass::RateLimited => {
                let pause = error.retry_after.unwrap_or(DEFAULT_RATE_LIMIT_PAUSE);
                let until = now + pause.as_millis() as u64;
                let mut list = key
                    .model_cooldowns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                list.retain(|(m, u)| m != model && *u > now);
                list.push((model.to_owned(), until));
                key.cooldowns_until.fetch_max(until, Ordering::Relaxed);
            }
            ErrorClass::Auth | ErrorClass::Billing => {
                let (pause, reason) = if error.class == ErrorClass::Auth {
                    (REJECTED_KEY_PAUSE, 2)
                } else {
                    (BILLING_KEY_PAUSE, 3)
                };
                key.blocked_until
                    .store(now + pause.as_millis() as u64, Ordering::Relaxed);
                key.reason.store(reason, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub fn snapshot(&self) -> Vec<KeySnapshot> {
        let now = now_ms();
        self.keys
            .iter()
            .map(|k| {
                let until = k.blocked_until.load(Ordering::Relaxed);
                let blocked = until > now;
                let rate_limited = k
                    .model_cooldowns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .filter(|(_, u)| *u > now)
                    .map(|(m, u)| (m.clone(), u - now))
                    .collect();
                KeySnapshot {
                    key: crate::config::mask(&k.secret),
                    state: match (blocked, k.reason.load(Ordering::Relaxed)) {
                        (false, _) => "ready",
                        (true, 2) => "rejected",
                        (true, _) => "out_of_quota",
                    },
                    ready_in_ms: blocked.then(|| until - now),
                    rate_limited,
                }
            })
            .collect()
    }

    /// The error returned, without calling upstream, when every key is cooling down.
    pub fn all_blocked_error(&self, provider: &str, wait: Duration) -> ProviderError {
        let mut e = ProviderError::new(
            ErrorClass::RateLimited,
            provider,
            format!(
                "all {} keys are cooling down after upstream rate limits or rejections; the first is ready in {:.1}s",
                self.keys.len(),
                wait.as_secs_f64()
            ),
        );
        e.retry_after = Some(wait);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_key_is_skipped_until_its_cooldown_ends() {
        let pool = KeyPool::new(vec!["a".into(), "b".into()]);
        let mut e = ProviderError::new(ErrorClass::RateLimited, "p", "slow down");
        e.retry_after = Some(Duration::from_secs(60));
        pool.report(0, "m", &e);
        for _ in 0..10 {
            assert_eq!(pool.pick("m"), KeyPick::Key(1, "b"));
        }
        pool.report(1, "m", &e);
        assert!(matches!(pool.pick("m"), KeyPick::AllBlocked(d) if d > Duration::from_secs(59)));
        assert!(!pool.has_ready_key("m"));
        assert!(pool.snapshot()[0].rate_limited.contains_key("m"));
        // Providers limit per model: another model still has both keys.
        assert!(pool.has_ready_key("other"));
        assert!(matches!(pool.pick("other"), KeyPick::Key(_, _)));
    }

    #[test]
    fn a_rejected_key_is_set_aside_for_every_model() {
        let pool = KeyPool::new(vec!["a".into(), "b".into()]);
        pool.report(
            0,
            "m",
            &ProviderError::new(ErrorClass::Auth, "p", "bad key"),
        );
        for model in ["m", "other"] {
            assert_eq!(pool.pick(model), KeyPick::Key(1, "b"));
        }
        assert_eq!(pool.snapshot()[0].state, "rejected");
    }

    #[test]
    fn a_raw_response_keeps_its_bytes_and_reads_its_usage() {
        let body = br#"{"id":"c1","object":"chat.completion","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
        let raw = RawResponse::new(bytes::Bytes::from_static(body)).unwrap();
        assert_eq!(&raw.body[..], &body[..], "forwarded byte for byte");
        assert_eq!(raw.usage.as_ref().map(|u| u.total_tokens), Some(4));
        let decoded = raw.decode().unwrap();
        assert_eq!(decoded.choices[0].message.content.as_deref(), Some("hi"));
        assert_eq!(decoded.extra["system_fingerprint"], "fp");

        assert!(RawResponse::new(bytes::Bytes::from_static(br#"{"usage":null}"#)).is_err());
        assert!(RawResponse::new(bytes::Bytes::from_static(b"<html>")).is_err());
    }

    #[test]
    fn portable_ids_strip_gemini_signatures_from_calls_and_results_alike() {
        let signed = gemini::translate::tool_call_id(Some("c2lnbmF0dXJl"));
        assert!(signed.len() > 40);
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": signed, "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": signed, "content": "ok"}]});
        let request: ChatCompletionRequest = serde_json::from_value(body).unwrap();
        let portable = portable_ids(&request);
        let call_id = &portable.messages[1].tool_calls.as_ref().unwrap()[0].id;
        assert!(call_id.len() <= 40, "{call_id}");
        assert_eq!(portable.messages[2].tool_call_id.as_ref(), Some(call_id));

        let plain = ChatCompletionRequest {
            model: "m".into(),
            ..Default::default()
        };
        assert!(matches!(
            portable_ids(&plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bad_requests_do_not_cool_keys() {
        let pool = KeyPool::new(vec!["a".into()]);
        let bad = ProviderError::new(ErrorClass::InvalidRequest, "p", "bad");
        pool.report(0, "m", &bad);
        assert_eq!(pool.pick("m"), KeyPick::Key(0, "a"));
    }
}
