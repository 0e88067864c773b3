//! Provider adapters: one [`Provider`] per wire dialect, not per vendor. `openai` serves OpenAI,
//! Azure OpenAI and every OpenAI-compatible server through presets; `anthropic` translates to
//! and from the Messages API; `mock` answers locally so the gateway runs with no network.
//!
//! An adapter receives the canonical request whose `model` is already the upstream model name,
//! and returns either a whole response or a stream of canonical chunks. It owns its HTTP client
//! (one connection pool per provider) and its key pool. Which deployment to call, and what to do
//! when a call fails, is the router's and the executor's business, not the adapter's.

pub mod anthropic;
pub mod http;
pub mod mock;
pub mod openai;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::Stream;
use futures_util::future::BoxFuture;
use switchyard_wire::openai::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingsRequest,
    EmbeddingsResponse,
};

use crate::config::{Capability, Config, Dialect, Price, ProviderConfig};
use crate::error::ProviderError;

/// A stream of canonical chunks. It ends after the last chunk, or after one `Err`.
pub type ChunkStream =
    Pin<Box<dyn Stream<Item = Result<ChatCompletionChunk, ProviderError>> + Send + 'static>>;

/// What a chat call produced.
pub enum ChatReply {
    Complete(ChatCompletionResponse),
    Stream(ChunkStream),
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
        Dialect::Mock => Arc::new(mock::MockProvider::new(
            name,
            config.mock.clone().unwrap_or_default(),
        )),
    })
}

/// Builds every deployment of a config.
pub fn deployments(config: &Config) -> Result<Vec<Arc<Deployment>>, String> {
    let mut providers = std::collections::HashMap::new();
    for (name, p) in &config.providers {
        providers.insert(name.as_str(), build(name, p, &config.server)?);
    }
    config
        .models
        .iter()
        .map(|(name, m)| {
            let provider = providers.get(m.provider.as_str()).ok_or_else(|| {
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
            }))
        })
        .collect()
}

/// A provider's API keys, handed out round-robin.
pub struct KeyPool {
    keys: Vec<String>,
    next: AtomicUsize,
}

impl KeyPool {
    pub fn new(keys: Vec<String>) -> Self {
        KeyPool {
            keys,
            next: AtomicUsize::new(0),
        }
    }

    /// The next key, or `None` for a keyless provider.
    pub fn pick(&self) -> Option<&str> {
        if self.keys.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.keys.len();
        Some(&self.keys[i])
    }
}
