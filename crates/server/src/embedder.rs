//! What embeds prompts for the semantic cache (`cache.semantic.embedder`): the in-process
//! sentence-transformer of `switchyard-embed` (`local`, behind the `local-embeddings` feature,
//! so the embedded default needs no external service), or any embeddings model or route of this
//! gateway (OpenAI, Gemini, Ollama, vLLM, TEI…), called through the gateway's own pipeline so
//! that its calls are routed, retried and recorded like any other (feature `semantic-cache`).

use std::sync::{Arc, Weak};

use futures_util::future::BoxFuture;
use switchyard_core::Endpoint;
use switchyard_core::auth::Principal;
use switchyard_core::cache::semantic::lookup::Embedder;
use switchyard_core::config::Config;
use switchyard_core::pipeline::FEATURE_HEADER;
use switchyard_core::request::RequestContext;
use switchyard_wire::openai::{EmbeddingsRequest, EncodingFormat};

use crate::ingress::AppState;

/// Gives the gateway's cache the embedder its config names, if any.
pub fn attach(state: &Arc<AppState>, config: &Config) -> Result<(), String> {
    let semantic = &config.cache.semantic;
    let Some(name) = semantic.embedder.as_deref() else {
        return Ok(());
    };
    let embedder: Arc<dyn Embedder> = if name == "local" {
        let dir = semantic.model_dir.as_deref().ok_or(
            "cache.semantic.model_dir: embedder: local needs the folder of a sentence-transformer model",
        )?;
        local(dir)?
    } else {
        if !config.models.contains_key(name) && !config.routes.contains_key(name) {
            return Err(format!(
                "cache.semantic.embedder: \"{name}\" is neither local nor a model or route of this config"
            ));
        }
        Arc::new(GatewayEmbedder {
            app: Arc::downgrade(state),
            model: name.to_owned(),
        })
    };
    state.gateway.cache().semantic().attach(embedder);
    tracing::info!(embedder = name, "semantic cache ready");
    Ok(())
}

#[cfg(feature = "local-embeddings")]
fn local(dir: &std::path::Path) -> Result<Arc<dyn Embedder>, String> {
    let started = std::time::Instant::now();
    let model = switchyard_embed::LocalModel::load(dir)
        .map_err(|e| format!("cache.semantic.model_dir: {e}"))?;
    tracing::info!(
        dir = %dir.display(),
        dimensions = model.dimensions(),
        load_ms = started.elapsed().as_millis() as u64,
        "loaded the in-process embedding model"
    );
    Ok(Arc::new(LocalEmbedder::new(model)))
}

#[cfg(not(feature = "local-embeddings"))]
fn local(_dir: &std::path::Path) -> Result<Arc<dyn Embedder>, String> {
    Err("cache.semantic.embedder: local needs a switchyard built with the local-embeddings feature (on by default); or name an embeddings model of this config".into())
}

/// The in-process model. Embedding is CPU work of a few milliseconds: it runs on the blocking
/// pool, at most one prompt per core at a time, so a burst of semantic lookups queues instead of
/// starving the threads that serve everything else.
#[cfg(feature = "local-embeddings")]
struct LocalEmbedder {
    model: Arc<switchyard_embed::LocalModel>,
    permits: tokio::sync::Semaphore,
}

#[cfg(feature = "local-embeddings")]
impl LocalEmbedder {
    fn new(model: switchyard_embed::LocalModel) -> LocalEmbedder {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalEmbedder {
            model: Arc::new(model),
            permits: tokio::sync::Semaphore::new(cores),
        }
    }
}

#[cfg(feature = "local-embeddings")]
impl Embedder for LocalEmbedder {
    fn embed<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<f32>, String>> {
        Box::pin(async move {
            let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
            let model = Arc::clone(&self.model);
            let text = text.to_owned();
            tokio::task::spawn_blocking(move || model.embed(&text))
                .await
                .map_err(|e| format!("the embedding task failed: {e}"))
        })
    }
}

/// An embeddings model or route of this gateway.
struct GatewayEmbedder {
    /// Weak: the gateway owns the cache that owns this.
    app: Weak<AppState>,
    model: String,
}

impl Embedder for GatewayEmbedder {
    fn embed<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Vec<f32>, String>> {
        Box::pin(async move {
            let app = self.app.upgrade().ok_or("the gateway is shutting down")?;
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                FEATURE_HEADER,
                axum::http::HeaderValue::from_static("semantic-cache"),
            );
            let mut ctx = RequestContext::new(Endpoint::Embeddings, headers);
            // The gateway's own call: no client key to check.
            ctx.acting_as = Some(Principal::default());
            let request = EmbeddingsRequest {
                model: self.model.clone(),
                input: serde_json::Value::String(text.to_owned()),
                encoding_format: Some(EncodingFormat::Float),
                dimensions: None,
                user: None,
                extra: Default::default(),
            };
            let (response, _) = (app.gateway)
                .embeddings(&ctx, request)
                .await
                .map_err(|e| format!("{} ({})", e.message, self.model))?;
            let first = response
                .data
                .first()
                .ok_or("the embeddings answer had no data")?;
            let mut vector = first.embedding.to_floats()?;
            normalize(&mut vector);
            Ok(vector)
        })
    }
}

/// Scales to unit length: similarity is then a dot product, whatever the provider returns.
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
