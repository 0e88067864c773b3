//! The pipeline: one function per endpoint that calls the stages in the order data flows —
//! auth → admit → guard(in) → cache → route → execute → guard(out) → account and record — and
//! hands the result to egress.
//!
//! [`Gateway`] holds the live parts: the compiled config ([`Runtime`], swapped atomically on
//! reload, with the auth and admit stages it configures), the state that outlives a reload
//! ([`Governance`], health), and one implementation of each other stage's trait. Accounting is
//! the [`Ledger`] of [`crate::account`], opened here when a request arrives.

mod answer;
mod cached;
mod count;

pub(crate) use cached::StreamKeeper;

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use switchyard_wire::openai::{
    ChatCompletionRequest, ChatCompletionResponse, EmbeddingVector, EmbeddingsRequest,
    EmbeddingsResponse, EncodingFormat, ModelEntry, ModelList, Usage,
};

pub use crate::account::{AccountedStream, Ledger};
use crate::admit::counters::MemoryCounters;
use crate::admit::governor::{GovernanceShared, Governor};
use crate::admit::{Admission, Demand, RateInfo};
use crate::auth::keys::VirtualKeys;
use crate::auth::{Authenticator, KeyAuth, Principal, StaticKeys};
use crate::cache::{Cache, CacheStatus};
use crate::config::Config;
use crate::error::GatewayError;
use crate::execute;
use crate::guard::{GuardSet, Screen};
use crate::health::Health;
use crate::provider::{self, ChunkStream, Deployment, Provider, RawResponse};
use crate::record::Recorder;
use crate::request::{RequestContext, unix_secs};
use crate::route::{Router, Traits};
use crate::usage;

/// The compiled configuration: what a reload swaps.
pub struct Runtime {
    pub config: Arc<Config>,
    pub router: Router,
    pub providers: BTreeMap<String, Arc<dyn Provider>>,
    pub deployments: Vec<Arc<Deployment>>,
    /// The auth stage: part of the runtime so that a reload changes who may call.
    pub auth: Arc<dyn Authenticator>,
    /// The admit stage, with the limits of this config over counters that outlive it.
    pub governor: Arc<Governor>,
    /// The guard stage: the guardrails this config defines.
    pub guards: GuardSet,
}

impl Runtime {
    pub fn build(config: Config, governance: &Governance) -> Result<Runtime, String> {
        let (providers, deployments) = provider::build_all(&config)?;
        let router = Router::new(&config, &deployments);
        let auth = Arc::new(KeyAuth {
            static_keys: StaticKeys::new(config.auth.api_keys.clone()),
            virtual_keys: governance.virtual_keys.clone(),
            allow_anonymous: config.auth.anonymous_allowed(),
        });
        let governor = Arc::new(
            Governor::new(
                config.governance.clone(),
                governance.shared.clone(),
                config.server.request_deadline,
            )
            .with_routes(config.routes.keys().cloned()),
        );
        let guards = GuardSet::build(&config.guardrails)?;
        Ok(Runtime {
            guards,
            config: Arc::new(config),
            router,
            providers,
            deployments,
            auth,
            governor,
        })
    }
}

/// The state of governance that outlives a config reload: the counters behind limits and
/// budgets, and the virtual-key cache (absent without a database).
#[derive(Clone)]
pub struct Governance {
    pub shared: Arc<GovernanceShared>,
    pub virtual_keys: Option<Arc<VirtualKeys>>,
}

impl Default for Governance {
    /// In-process counters, no virtual keys.
    fn default() -> Self {
        Governance {
            shared: GovernanceShared::new(Arc::new(MemoryCounters::default())),
            virtual_keys: None,
        }
    }
}

pub struct Gateway {
    runtime: ArcSwap<Runtime>,
    governance: Governance,
    cache: Arc<Cache>,
    health: Health,
    recorder: Recorder,
}

/// Which deployment served a response, and how it got there, for the response headers.
#[derive(Debug, Clone)]
pub struct Served {
    pub provider: String,
    pub model: String,
    pub attempts: usize,
    /// The failed attempts before the one that served, with why each failed: `a(overloaded)`.
    pub fallback_path: Vec<String>,
    /// The caller's remaining requests and tokens, for `x-ratelimit-*` headers.
    pub rate: RateInfo,
    /// The model the client asked for, when a limit sent it to the route's cheaper model.
    pub downgraded_from: Option<String>,
    /// What the cache did, when it is on for the route.
    pub cache: Option<CacheStatus>,
}

impl Served {
    fn new(deployment: &Deployment, attempts: &[crate::record::AttemptRecord]) -> Served {
        Served {
            provider: deployment.provider_name.clone(),
            model: deployment.name.clone(),
            attempts: attempts.len(),
            fallback_path: attempts
                .iter()
                .filter_map(|a| a.error_class.map(|c| format!("{}({c})", a.model)))
                .collect(),
            rate: RateInfo::default(),
            downgraded_from: None,
            cache: None,
        }
    }
}

// Made once per request and moved once: boxing the response would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum ChatResponse {
    Complete(ChatCompletionResponse, Served),
    /// A whole response as the upstream encoded it: an OpenAI chat completion, or the object of
    /// the client's own dialect (see [`crate::provider::BodyKind`]).
    Raw(RawResponse, Served),
    /// Boxed: the stream carries the whole request record with it.
    Stream(Box<AccountedStream>, Served),
}

impl Gateway {
    pub fn new(config: Config, recorder: Recorder) -> Result<Gateway, String> {
        Gateway::with_governance(config, recorder, Governance::default())
    }

    pub fn with_governance(
        config: Config,
        recorder: Recorder,
        governance: Governance,
    ) -> Result<Gateway, String> {
        let cache = Arc::new(Cache::in_memory(&config.cache));
        let runtime = Runtime::build(config, &governance)?;
        Ok(Gateway {
            runtime: ArcSwap::from_pointee(runtime),
            governance,
            cache,
            health: Health::default(),
            recorder,
        })
    }

    /// Replaces the in-process cache (the server's Redis backend).
    pub fn set_cache(&mut self, cache: Cache) {
        self.cache = Arc::new(cache);
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    /// Checks a credential against the API keys, for endpoints outside the pipeline.
    pub async fn authorize(&self, credential: Option<&str>) -> Result<(), GatewayError> {
        let runtime = self.runtime.load_full();
        runtime.auth.authenticate(credential).await.map(|_| ())
    }

    /// Checks a credential for the admin API: `auth.admin_keys` when set, else the static API
    /// keys (never a virtual key). Returns who is acting, for the audit log: `admin-N`.
    pub fn authorize_admin(&self, credential: Option<&str>) -> Result<String, GatewayError> {
        let runtime = self.runtime.load();
        let auth = &runtime.config.auth;
        let (keys, who) = if auth.admin_keys.is_empty() {
            if auth.api_keys.is_empty() && auth.anonymous_allowed() {
                return Ok("anonymous".into());
            }
            (auth.api_keys.clone(), "api")
        } else {
            (auth.admin_keys.clone(), "admin")
        };
        let Some(presented) = credential.filter(|c| !c.is_empty()) else {
            return Err(GatewayError::unauthorized(
                "missing admin key: send one of auth.admin_keys as \"Authorization: Bearer <key>\"",
            ));
        };
        match StaticKeys::new(keys).find(presented) {
            Some(p) => Ok(p
                .key_id
                .map_or_else(|| who.to_owned(), |id| id.replace("static", who))),
            None => Err(GatewayError::new(
                401,
                "authentication_error",
                "invalid_admin_key",
                "invalid admin key: the admin API accepts only the keys in auth.admin_keys, never a virtual key",
            )),
        }
    }

    /// Counters of governance for the health endpoint.
    pub fn governance_health(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.governance.shared;
        let (lookups, store_errors) = self
            .governance
            .virtual_keys
            .as_ref()
            .map_or((0, 0), |v| v.stats());
        serde_json::json!({
            "counters": s.counters.backend(),
            "counter_errors": s.stats.counter_errors.load(Relaxed),
            "admitted_failing_open": s.stats.admitted_failing_open.load(Relaxed),
            "refused_failing_closed": s.stats.refused_failing_closed.load(Relaxed),
            "rejected": s.stats.rejected.load(Relaxed),
            "queued": s.stats.queued.load(Relaxed),
            "downgraded": s.stats.downgraded.load(Relaxed),
            "budget_alerts": s.stats.alerts.load(Relaxed),
            "virtual_keys": self.governance.virtual_keys.is_some(),
            "key_lookups": lookups,
            "key_store_errors": store_errors,
        })
    }

    /// Live health of every deployment and provider key, for the admin API.
    pub fn health_report(&self) -> serde_json::Value {
        let runtime = self.runtime.load();
        let breaker = &runtime.config.resilience.breaker;
        let deployments: serde_json::Map<String, serde_json::Value> = runtime
            .deployments
            .iter()
            .map(|d| {
                let snap = self.health.deployment(&d.name).snapshot(breaker);
                let mut v = serde_json::to_value(snap).unwrap_or_default();
                v["provider"] = d.provider_name.clone().into();
                v["upstream_model"] = d.upstream_model.clone().into();
                (d.name.clone(), v)
            })
            .collect();
        let providers: serde_json::Map<String, serde_json::Value> = runtime
            .providers
            .iter()
            .map(|(name, p)| {
                let keys = p.keys().map(|k| k.snapshot()).unwrap_or_default();
                (name.clone(), serde_json::json!({ "keys": keys }))
            })
            .collect();
        serde_json::json!({ "deployments": deployments, "providers": providers })
    }

    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The request-record writer's handle, for its counters (`/metrics`).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Replaces the running configuration; requests in flight finish on the old one.
    pub fn reload(&self, config: Config) -> Result<(), String> {
        let runtime = Runtime::build(config, &self.governance)?;
        self.runtime.store(Arc::new(runtime));
        Ok(())
    }

    /// Records a request refused before the pipeline could read it (a malformed or oversized
    /// body): every request gets its record, whatever became of it.
    pub fn record_refused(&self, ctx: &RequestContext, e: &GatewayError) {
        Ledger::open(ctx, "", false, self.recorder.clone()).close_err(e);
    }

    pub async fn chat(
        &self,
        ctx: &RequestContext,
        request: ChatCompletionRequest,
    ) -> Result<ChatResponse, GatewayError> {
        let mut ledger = Ledger::open(
            ctx,
            &request.model,
            request.is_stream(),
            self.recorder.clone(),
        );
        match self.chat_stages(ctx, request, &mut ledger).await {
            Ok(ChatOutcome::Complete(response, served)) => {
                ledger.keep_response(|| serde_json::to_string(&response).ok());
                ledger.close_ok(response.usage.as_ref());
                Ok(ChatResponse::Complete(response, served))
            }
            Ok(ChatOutcome::Raw(raw, served)) => {
                ledger.keep_response(|| Some(String::from_utf8_lossy(&raw.body).into_owned()));
                ledger.close_ok(raw.usage.as_ref());
                Ok(ChatResponse::Raw(raw, served))
            }
            Ok(ChatOutcome::Stream(
                stream,
                served,
                wants_usage,
                prompt_estimate,
                screen,
                keeper,
            )) => {
                let deadline = ctx.received + self.runtime.load().config.server.request_deadline;
                let stream = AccountedStream::new(
                    stream,
                    ledger,
                    screen.into_stream(),
                    (wants_usage, prompt_estimate),
                    deadline,
                    keeper,
                );
                Ok(ChatResponse::Stream(Box::new(stream), served))
            }
            Err(e) => {
                ledger.close_err(&e);
                Err(e)
            }
        }
    }

    async fn chat_stages(
        &self,
        ctx: &RequestContext,
        mut request: ChatCompletionRequest,
        ledger: &mut Ledger,
    ) -> Result<ChatOutcome, GatewayError> {
        // auth, admit
        let runtime = self.runtime.load_full();
        let prompt_estimate = usage::estimate_prompt_tokens(&request);
        // What the request may use: reserved at admission and on each deployment's quota.
        let estimate = (prompt_estimate, request.output_token_limit());
        let need = Need {
            model: &request.model,
            prompt_tokens: estimate.0,
            max_output_tokens: estimate.1,
        };
        let admitted = self.admit_caller(&runtime, ctx, need, ledger).await?;
        validate_chat(&request)?;
        if let Some(to) = &admitted.downgraded_to {
            request.model.clone_from(to);
        }

        // guard (input)
        let route_config = runtime.config.routes.get(&request.model);
        let mut screen =
            runtime
                .guards
                .select(route_config, admitted.team.as_deref(), &admitted.key_tags);
        let only_tagged = if screen.is_empty() {
            None
        } else {
            let screened = screen.input(&mut request).await;
            ledger.guard_actions(&screen.take_actions());
            screened?
        };

        // cache
        let miss = match self
            .look_up(&runtime, ctx, &request, ledger, &admitted)
            .await
        {
            Ok(miss) => miss,
            Err(hit) => return Ok(*hit),
        };

        // route
        let mut traits =
            Traits::of_chat(&request, &ctx.headers, &admitted.key_tags, prompt_estimate);
        traits.only_tagged = only_tagged;
        let plan = runtime.router.plan(&request.model, &traits, &self.health)?;
        ledger.record.route = plan.route.clone();
        request.origin.drop_unsupported_params = plan
            .route
            .as_ref()
            .and_then(|r| runtime.config.routes.get(r))
            .is_some_and(|r| r.drop_unsupported_params);
        if let Some(cap) = body_cap(&runtime, plan.route.as_deref()) {
            ledger.keep_bodies(cap, &request);
        }

        // execute, guard (output)
        let call = answer::Call {
            runtime: &runtime,
            ctx,
            plan: &plan,
            estimate,
        };
        self.answer(&call, request, ledger, (screen, miss), &admitted)
            .await
    }

    pub async fn embeddings(
        &self,
        ctx: &RequestContext,
        request: EmbeddingsRequest,
    ) -> Result<(EmbeddingsResponse, Served), GatewayError> {
        let mut ledger = Ledger::open(ctx, &request.model, false, self.recorder.clone());
        match self.embedding_stages(ctx, request, &mut ledger).await {
            Ok((response, served)) => {
                let usage = response
                    .usage
                    .as_ref()
                    .map(|u| Usage::new(u.prompt_tokens, 0, None));
                ledger.close_ok(usage.as_ref());
                Ok((response, served))
            }
            Err(e) => {
                ledger.close_err(&e);
                Err(e)
            }
        }
    }

    async fn embedding_stages(
        &self,
        ctx: &RequestContext,
        mut request: EmbeddingsRequest,
        ledger: &mut Ledger,
    ) -> Result<(EmbeddingsResponse, Served), GatewayError> {
        let runtime = self.runtime.load_full();
        let estimate = request
            .texts()
            .map_or(0, |t| t.iter().map(|s| s.len().div_ceil(4) as u64).sum());
        let need = Need {
            model: &request.model,
            prompt_tokens: estimate,
            max_output_tokens: Some(0),
        };
        let admitted = self.admit_caller(&runtime, ctx, need, ledger).await?;
        if let Some(to) = &admitted.downgraded_to {
            request.model.clone_from(to);
        }
        let traits = Traits::of_embeddings(&ctx.headers, &admitted.key_tags, estimate);
        let plan = runtime.router.plan(&request.model, &traits, &self.health)?;
        ledger.record.route = plan.route.clone();
        let wanted = request.encoding_format.unwrap_or(EncodingFormat::Float);
        let (mut response, served) = self
            .execute(
                &runtime,
                ctx,
                &plan,
                &mut request,
                ledger,
                (estimate, Some(0)),
            )
            .await?;
        encode_embeddings(&mut response, wanted)?;
        Ok((response, admitted.serve(served)))
    }

    /// The execute stage: walks the plan within the request's deadline, recording every attempt
    /// and which deployment served.
    async fn execute<C: execute::Call>(
        &self,
        runtime: &Runtime,
        ctx: &RequestContext,
        plan: &crate::route::Plan,
        request: &mut C,
        ledger: &mut Ledger,
        estimate: (u64, Option<u32>),
    ) -> Result<(C::Output, Served), GatewayError> {
        let deadline = (ctx.received + runtime.config.server.request_deadline).into();
        let breaker = &runtime.config.resilience.breaker;
        let attempts = &mut ledger.record.attempts;
        let quotas = DeploymentQuotas {
            governor: &runtime.governor,
            prompt_tokens: estimate.0,
            max_output_tokens: estimate.1,
        };
        let (output, deployment, quota) = execute::run(
            plan,
            request,
            &self.health,
            breaker,
            deadline,
            attempts,
            &quotas,
        )
        .await?;
        if let Some(held) = quota {
            ledger.hold_more(held);
        }
        ledger.served(&deployment);
        Ok((output, Served::new(&deployment, &ledger.record.attempts)))
    }

    /// The auth and admit stages: who is calling, whether they may use this model, whether they
    /// may spend now (or on which cheaper model). The ledger holds the admission permit until
    /// settlement.
    async fn admit_caller(
        &self,
        runtime: &Runtime,
        ctx: &RequestContext,
        need: Need<'_>,
        ledger: &mut Ledger,
    ) -> Result<Admitted, GatewayError> {
        let principal = match &ctx.acting_as {
            Some(principal) => principal.clone(),
            None => runtime.auth.authenticate(ctx.credential.as_deref()).await?,
        };
        ledger.principal(&principal);
        if !principal.may_use(need.model) {
            return Err(forbidden_model(need.model));
        }
        let config = &runtime.config;
        let over_limit = config
            .routes
            .get(need.model)
            .and_then(|r| r.over_limit.as_ref())
            .unwrap_or(&config.governance.over_limit);
        let default_max = config
            .models
            .get(need.model)
            .and_then(|m| m.default_max_tokens);
        let feature = feature_of(ctx, &principal);
        ledger.record.feature = feature.map(str::to_owned);
        let demand = Demand {
            model: need.model,
            estimated_prompt_tokens: need.prompt_tokens,
            max_output_tokens: need.max_output_tokens.or(default_max),
            feature,
            price: runtime.router.price_ceiling(need.model),
            over_limit,
            downgrade_price: over_limit
                .downgrade_to
                .as_deref()
                .and_then(|m| runtime.router.price_ceiling(m)),
        };
        let permit = runtime
            .governor
            .admit(&principal, demand)
            .await
            .inspect_err(|e| ledger.record.admission = admission_outcome(e))?;
        let admitted = Admitted {
            key_tags: principal.tags.clone(),
            team: principal.team.clone(),
            rate: permit.rate.clone(),
            downgraded_to: permit.downgraded_to.clone(),
            requested: need.model.to_owned(),
        };
        if let Some(to) = &admitted.downgraded_to {
            ledger.record.downgraded_from = Some(need.model.to_owned());
            ledger.record.admission = Some("downgraded");
            tracing::debug!(from = need.model, to = %to, "over a limit: downgraded");
        }
        ledger.hold(runtime.governor.clone(), principal, permit);
        Ok(admitted)
    }

    /// `GET /v1/models`: routes and models.
    pub fn models(&self) -> ModelList {
        let runtime = self.runtime.load();
        let (routes, models) = runtime.router.names();
        let created = unix_secs();
        let owner = |name: &str| {
            runtime
                .config
                .models
                .get(name)
                .map_or("switchyard".to_owned(), |m| m.provider.clone())
        };
        ModelList {
            object: "list".into(),
            data: routes
                .into_iter()
                .chain(models)
                .map(|id| ModelEntry {
                    id: id.to_owned(),
                    object: "model".into(),
                    created,
                    owned_by: owner(id),
                })
                .collect(),
        }
    }
}

/// The quotas of deployments, from the governor, for one request's attempts.
struct DeploymentQuotas<'a> {
    governor: &'a Governor,
    prompt_tokens: u64,
    max_output_tokens: Option<u32>,
}

impl execute::Quotas for DeploymentQuotas<'_> {
    fn enter<'a>(
        &'a self,
        d: &'a Deployment,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<execute::QuotaHold>, GatewayError>> {
        Box::pin(self.governor.enter_deployment(
            &d.name,
            d.price,
            self.prompt_tokens,
            self.max_output_tokens,
        ))
    }

    fn release(&self, hold: execute::QuotaHold) {
        self.governor.release(hold);
    }
}

/// What admission is asked about a request.
struct Need<'a> {
    model: &'a str,
    prompt_tokens: u64,
    max_output_tokens: Option<u32>,
}

/// What admission decided, for routing and the response headers.
struct Admitted {
    key_tags: Vec<String>,
    team: Option<String>,
    rate: RateInfo,
    downgraded_to: Option<String>,
    requested: String,
}

impl Admitted {
    fn serve(&self, mut served: Served) -> Served {
        served.rate = self.rate.clone();
        if self.downgraded_to.is_some() {
            served.downgraded_from = Some(self.requested.clone());
        }
        served
    }
}

/// The header that names the feature a request is for.
pub const FEATURE_HEADER: &str = "x-switchyard-feature";

/// The feature a request is for: its header, else a key tag `feature:NAME`.
/// Asks an OpenAI-style stream to end with a usage chunk.
fn ask_stream_usage(request: &mut ChatCompletionRequest) {
    request
        .stream_options
        .get_or_insert_with(Default::default)
        .include_usage = Some(true);
}

/// A complete answer the gateway could not parse.
fn unreadable(provider: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError::new(
        502,
        "upstream_error",
        "upstream_protocol_error",
        format!("provider \"{provider}\" sent a response the gateway cannot read: {e}"),
    )
}

/// How much of each body the route's records keep, when it keeps them (`record_bodies`).
fn body_cap(runtime: &Runtime, route: Option<&str>) -> Option<usize> {
    let config = &runtime.config;
    let keeps = route
        .and_then(|r| config.routes.get(r))
        .is_some_and(|r| r.record_bodies);
    keeps.then(|| usize::try_from(config.records.max_body_size).unwrap_or(usize::MAX))
}

/// What a refusal at admission was, for the record.
fn admission_outcome(e: &GatewayError) -> Option<&'static str> {
    match e.code.as_str() {
        "rate_limit_exceeded" => Some("rate_limited"),
        "budget_exceeded" => Some("budget_exceeded"),
        "request_too_large" => Some("too_large"),
        "limits_unavailable" => Some("limits_unavailable"),
        _ => None,
    }
}

fn feature_of<'a>(ctx: &'a RequestContext, principal: &'a Principal) -> Option<&'a str> {
    ctx.headers
        .get(FEATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .or_else(|| {
            principal
                .tags
                .iter()
                .find_map(|t| t.strip_prefix("feature:"))
        })
}

enum ChatOutcome {
    Complete(ChatCompletionResponse, Served),
    Raw(RawResponse, Served),
    /// The stream, who served it, whether the client asked for usage, the prompt estimate, the
    /// output guardrails, and where its answer goes when the cache keeps it.
    Stream(
        ChunkStream,
        Served,
        bool,
        u64,
        Screen,
        Option<Box<cached::StreamKeeper>>,
    ),
}

fn forbidden_model(model: &str) -> GatewayError {
    GatewayError::new(
        403,
        "permission_error",
        "model_not_allowed",
        format!("this API key may not use model \"{model}\""),
    )
    .with_param("model")
}

/// Checks what serde's types cannot: a request the upstream would reject anyway gets a clear
/// error here, before anything is sent.
fn validate_chat(request: &ChatCompletionRequest) -> Result<(), GatewayError> {
    if request.model.trim().is_empty() {
        return Err(
            GatewayError::invalid_request("missing_model", "model: must not be empty")
                .with_param("model"),
        );
    }
    if request.messages.is_empty() {
        return Err(GatewayError::invalid_request(
            "missing_messages",
            "messages: must contain at least one message",
        )
        .with_param("messages"));
    }
    Ok(())
}

/// Gives the client the encoding it asked for, whatever the upstream returned.
fn encode_embeddings(
    response: &mut EmbeddingsResponse,
    wanted: EncodingFormat,
) -> Result<(), GatewayError> {
    for item in &mut response.data {
        item.embedding = match (&item.embedding, wanted) {
            (EmbeddingVector::Float(f), EncodingFormat::Base64) => {
                EmbeddingVector::base64_from_floats(f)
            }
            (EmbeddingVector::Base64(_), EncodingFormat::Float) => {
                let floats = item.embedding.to_floats().map_err(|e| {
                    GatewayError::new(502, "upstream_error", "upstream_protocol_error", e)
                })?;
                EmbeddingVector::Float(floats)
            }
            _ => continue,
        };
    }
    Ok(())
}
