//! Cache: answers a request from the answer to an identical one (exact) or, on routes that ask
//! for it, to one that means the same (semantic), without calling a provider.
//!
//! The pipeline asks [`Cache::lookup`] after the input guardrails and before routing. It decides
//! whether the request may use the cache at all (the route's setting, the client's
//! `x-switchyard-cache: bypass | refresh` or `Cache-Control: no-store | no-cache`, sampling
//! hotter than `cache.max_temperature`, tools), then looks for the exact key in the
//! [`store::AnswerStore`] (in-process or Redis), then, for semantic routes, for a similar prompt
//! of the same scope. A miss hands back a [`Pending`] that [`Cache::store`] fills once the answer
//! has passed the output guardrails: only whole, successful answers are kept (errors,
//! content-filtered and cut-short streams never are). Entries belong to a tenant (team by
//! default), which is part of every key, so one tenant never reads another's answers.

pub mod config;
pub mod key;
pub mod memory;
pub mod replay;
pub mod semantic;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use switchyard_wire::openai::ChatCompletionRequest;

use config::{CacheConfig, RouteCacheConfig};
pub use memory::MemoryAnswers;
use semantic::lookup::Semantic;
pub use store::{AnswerStore, CachedAnswer, Purge, encode_answer};

/// The request header that steers the cache, and the response header that says what it did.
pub const CACHE_HEADER: &str = "x-switchyard-cache";

/// What the cache did for one request, for the `x-switchyard-cache` header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CacheStatus {
    Hit,
    /// Served for a prompt this similar (cosine) to the cached one.
    SemanticHit(f32),
    Miss,
    /// The cache was on for the route but not used: the client asked, or the request was
    /// sampled too hot or offered tools.
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::SemanticHit(_) => "semantic-hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Bypass => "bypass",
        }
    }
}

/// What a lookup found.
pub enum Lookup {
    /// The cache is off for this request's route.
    Off,
    /// Not read and not written.
    Bypass,
    Hit(Arc<CachedAnswer>, CacheStatus),
    /// Not found (or not read: `refresh`); the answer is to be kept.
    Miss(Pending),
}

/// Where the answer to a missed request goes.
pub struct Pending {
    key: String,
    ttl: Duration,
    max_entry_size: u64,
    /// The prompt's embedding, on a semantic route.
    prompt: Option<Box<semantic::lookup::Remembered>>,
}

/// How the client steers the cache for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Use,
    Bypass,
    /// Do not read, but keep the new answer.
    Refresh,
}

/// The parts of a request the cache looks at besides its body.
pub struct Asker<'a> {
    pub team: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The API the client speaks: an entry is kept in that API's shape.
    pub dialect: &'a str,
}

pub struct Cache {
    answers: Arc<dyn AnswerStore>,
    semantic: Semantic,
}

impl Cache {
    pub fn new(answers: Arc<dyn AnswerStore>, config: &CacheConfig) -> Cache {
        Cache {
            answers,
            semantic: Semantic::new(&config.semantic),
        }
    }

    /// An in-process cache bounded as `cache.max_size` says.
    pub fn in_memory(config: &CacheConfig) -> Cache {
        Cache::new(
            Arc::new(MemoryAnswers::new(config.max_size, config.max_entry_size)),
            config,
        )
    }

    /// The semantic cache, to attach its embedder.
    pub fn semantic(&self) -> &Semantic {
        &self.semantic
    }

    pub async fn lookup(
        &self,
        config: &CacheConfig,
        route: Option<&RouteCacheConfig>,
        request: &ChatCompletionRequest,
        asker: &Asker<'_>,
    ) -> Lookup {
        let enabled = route.and_then(|r| r.enabled).unwrap_or(config.enabled);
        if !enabled {
            return Lookup::Off;
        }
        let control = control(asker.headers);
        if control == Control::Bypass || !eligible(config, request) {
            return Lookup::Bypass;
        }
        let mut key = key::tenant(config.scope, asker.team, asker.key_id);
        let tenant_len = key.len();
        key.reserve_exact(65);
        key.push('|');
        key::push_exact(&mut key, request, asker.dialect);
        let tenant = &key[..tenant_len];
        let reads = control == Control::Use;
        if reads && let Some(answer) = self.answers.get(&key).await {
            return Lookup::Hit(answer, CacheStatus::Hit);
        }
        let mut prompt = None;
        let semantic_route = route.is_some_and(|r| r.semantic);
        if semantic_route
            && self.semantic.is_ready()
            && let Some((scope, text)) = key::semantic(request, asker.dialect)
        {
            let scope = semantic::lookup::scoped(scope, tenant);
            let threshold = config.semantic.threshold;
            let found = self.semantic.find(scope, tenant, &text, threshold).await;
            if reads
                && let Some((similar, similarity)) = found.hit
                && let Some(answer) = self.answers.get(&similar).await
            {
                return Lookup::Hit(answer, CacheStatus::SemanticHit(similarity));
            }
            prompt = found.prompt.map(Box::new);
        }
        Lookup::Miss(Pending {
            key,
            ttl: route.and_then(|r| r.ttl).unwrap_or(config.ttl),
            max_entry_size: config.max_entry_size,
            prompt,
        })
    }

    /// Keeps a whole, successful answer (the caller has checked it is one), encoded by
    /// [`store::encode_answer`]. Never waited for (see [`AnswerStore::put`]).
    pub fn store(&self, pending: Pending, encoded: Vec<u8>) {
        if encoded.len() as u64 > pending.max_entry_size {
            tracing::debug!(
                size = encoded.len(),
                "answer larger than cache.max_entry_size: not cached"
            );
            return;
        }
        if let Some(prompt) = pending.prompt {
            let key: Arc<str> = pending.key.as_str().into();
            self.semantic.remember(*prompt, key, pending.ttl);
        }
        self.answers.put(pending.key, encoded, pending.ttl);
    }

    /// Removes the entries `purge` selects (this process's semantic index included).
    pub async fn purge(&self, purge: &Purge) -> Result<u64, String> {
        self.semantic.purge(purge);
        self.answers.purge(purge).await
    }
}

fn control(headers: &HeaderMap) -> Control {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    match header(CACHE_HEADER).as_deref().map(str::trim) {
        Some("bypass" | "off" | "no-store") => return Control::Bypass,
        Some("refresh" | "no-cache") => return Control::Refresh,
        _ => {}
    }
    let Some(cache_control) = header("cache-control") else {
        return Control::Use;
    };
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    if directives.contains(&"no-store") {
        Control::Bypass
    } else if directives.contains(&"no-cache") {
        Control::Refresh
    } else {
        Control::Use
    }
}

/// Whether a request's answer may be reused: not sampled hotter than configured, no tools unless
/// configured.
fn eligible(config: &CacheConfig, request: &ChatCompletionRequest) -> bool {
    let too_hot = request
        .temperature
        .is_some_and(|t| t > config.max_temperature);
    let has_tools = request.tools.as_ref().is_some_and(|t| !t.is_empty());
    !too_hot && (config.with_tools || !has_tools)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::auth::Principal;
    use crate::provider::BodyKind;

    fn request(json: serde_json::Value) -> ChatCompletionRequest {
        serde_json::from_value(json).unwrap()
    }

    fn ask() -> ChatCompletionRequest {
        request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}]
        }))
    }

    fn on() -> CacheConfig {
        CacheConfig {
            enabled: true,
            ..Default::default()
        }
    }

    fn answer() -> CachedAnswer {
        CachedAnswer {
            kind: BodyKind::ChatCompletion,
            body: Bytes::from_static(b"{}"),
            usage: None,
            model: "m".into(),
        }
    }

    async fn look(
        cache: &Cache,
        config: &CacheConfig,
        principal: &Principal,
        headers: &HeaderMap,
    ) -> Lookup {
        let asker = Asker {
            team: principal.team.as_deref(),
            key_id: principal.key_id.as_deref(),
            headers,
            dialect: "openai",
        };
        cache.lookup(config, None, &ask(), &asker).await
    }

    #[tokio::test]
    async fn a_stored_answer_is_found_by_its_tenant_only() {
        let config = on();
        let cache = Cache::in_memory(&config);
        let red = Principal {
            team: Some("red".into()),
            ..Default::default()
        };
        let blue = Principal {
            team: Some("blue".into()),
            ..Default::default()
        };
        let headers = HeaderMap::new();
        let Lookup::Miss(pending) = look(&cache, &config, &red, &headers).await else {
            panic!("first lookup did not miss");
        };
        cache.store(pending, answer().encode());
        assert!(matches!(
            look(&cache, &config, &red, &headers).await,
            Lookup::Hit(_, CacheStatus::Hit)
        ));
        assert!(matches!(
            look(&cache, &config, &blue, &headers).await,
            Lookup::Miss(_)
        ));
    }

    #[tokio::test]
    async fn clients_and_settings_can_keep_a_request_out() {
        let config = on();
        let cache = Cache::in_memory(&config);
        let p = Principal::default();
        let mut bypass = HeaderMap::new();
        bypass.insert(CACHE_HEADER, "bypass".parse().unwrap());
        assert!(matches!(
            look(&cache, &config, &p, &bypass).await,
            Lookup::Bypass
        ));
        let mut no_store = HeaderMap::new();
        no_store.insert("cache-control", "no-store".parse().unwrap());
        assert!(matches!(
            look(&cache, &config, &p, &no_store).await,
            Lookup::Bypass
        ));
        let off = CacheConfig::default();
        assert!(matches!(
            look(&cache, &off, &p, &HeaderMap::new()).await,
            Lookup::Off
        ));
        let hot = request(serde_json::json!({
            "model": "m", "temperature": 1.5, "messages": [{"role": "user", "content": "hi"}]
        }));
        assert!(!eligible(&config, &hot));
        let tools = request(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]
        }));
        assert!(!eligible(&config, &tools));
        let with_tools = CacheConfig {
            with_tools: true,
            ..on()
        };
        assert!(eligible(&with_tools, &tools));
    }

    #[tokio::test]
    async fn refresh_skips_the_read_but_keeps_the_answer() {
        let config = on();
        let cache = Cache::in_memory(&config);
        let p = Principal::default();
        let Lookup::Miss(pending) = look(&cache, &config, &p, &HeaderMap::new()).await else {
            panic!("no miss");
        };
        cache.store(pending, answer().encode());
        let mut refresh = HeaderMap::new();
        refresh.insert(CACHE_HEADER, "refresh".parse().unwrap());
        assert!(matches!(
            look(&cache, &config, &p, &refresh).await,
            Lookup::Miss(_)
        ));
    }
}
