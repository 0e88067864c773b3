//! Route: turns the model name a client asked for into a [`Plan`]: the deployments to try, in
//! order, with the fallbacks and the retry budget that apply.
//!
//! A name is a route (an alias) or a model of the config; unknown names get an error that lists
//! what exists. For a route, the first rule whose condition holds (headers, `user`, key tag,
//! prompt size, tools, images, code, complexity) picks the targets, else the route's own
//! targets; the strategy then orders them: `ordered` as listed, `weighted` by a weighted random
//! draw, `lowest_latency` by power of two choices on the latency EWMA, `lowest_cost` by the
//! price of this request's estimated tokens, `least_busy` by requests in flight. Deployments
//! that cannot serve the request (a missing capability) are left out; deployments whose context
//! window is known to be too small, or whose breaker is open, go last.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use rand::Rng;
use switchyard_wire::openai::{ChatCompletionRequest, MessageContent, Role};

use crate::config::{
    Capability, Complexity, Condition, Config, RetryConfig, Strategy, TargetConfig,
};
use crate::error::GatewayError;
use crate::health::Health;
use crate::provider::Deployment;

/// Share of `lowest_latency` picks that go to a random target, so that a deployment that was
/// slow once gets measured again.
const LATENCY_EXPLORATION: f64 = 0.05;
/// Output tokens assumed for cost ranking when the request sets no limit.
const ASSUMED_OUTPUT_TOKENS: u64 = 256;

pub struct Router {
    models: HashMap<String, Arc<Deployment>>,
    routes: HashMap<String, Route>,
    retry: RetryConfig,
}

struct Route {
    strategy: Strategy,
    targets: Vec<Target>,
    rules: Vec<Rule>,
    context_fallbacks: Vec<Arc<Deployment>>,
    policy_fallbacks: Vec<Arc<Deployment>>,
    retry: RetryConfig,
}

#[derive(Clone)]
struct Target {
    deployment: Arc<Deployment>,
    weight: u32,
}

struct Rule {
    when: Condition,
    targets: Vec<Target>,
    strategy: Option<Strategy>,
}

/// The deployments to try for one request.
#[derive(Clone)]
pub struct Plan {
    /// The route name when the client asked for an alias.
    pub route: Option<String>,
    /// Index of the route rule that matched, if any.
    pub rule: Option<usize>,
    pub targets: Vec<Arc<Deployment>>,
    /// For a prompt that does not fit: tried only if larger than what failed.
    pub context_fallbacks: Vec<Arc<Deployment>>,
    /// For a refusal on content grounds.
    pub policy_fallbacks: Vec<Arc<Deployment>>,
    pub retry: RetryConfig,
}

/// What routing reads from a request.
pub struct Traits<'a> {
    pub headers: &'a HeaderMap,
    pub user: Option<&'a str>,
    pub key_tags: &'a [String],
    pub prompt_tokens: u64,
    pub max_output_tokens: Option<u32>,
    pub has_tools: bool,
    pub has_images: bool,
    pub needs: Vec<Capability>,
    /// Set by a `restrict` guardrail: only models carrying this tag may serve the request.
    pub only_tagged: Option<String>,
    /// The request, for the content conditions that scan its text (code blocks, complexity):
    /// computed only when a rule asks, since scanning every prompt showed in the profile.
    request: Option<&'a ChatCompletionRequest>,
    has_code: OnceCell<bool>,
    complexity: OnceCell<Complexity>,
}

/// Words that mark a request as asking for reasoning rather than recall.
const HARD_WORDS: &[&str] = &[
    "prove",
    "step by step",
    "step-by-step",
    "analyze",
    "analyse",
    "debug",
    "refactor",
    "derive",
    "optimize",
    "optimise",
    "architecture",
    "trade-off",
    "tradeoff",
];

impl<'a> Traits<'a> {
    /// Reads a chat request. The complexity heuristic (docs/routing.md): a request is `hard`
    /// when its prompt is at least 1,000 estimated tokens, it carries tools or a fenced code
    /// block, the conversation has more than 6 messages, or the last user message asks for
    /// reasoning ("prove", "step by step", "debug", …); otherwise it is `simple`.
    pub fn of_chat(
        request: &'a ChatCompletionRequest,
        headers: &'a HeaderMap,
        key_tags: &'a [String],
        prompt_tokens: u64,
    ) -> Traits<'a> {
        let has_tools = request.tools.as_ref().is_some_and(|t| !t.is_empty());
        let has_images = request.messages.iter().any(|m| match &m.content {
            Some(MessageContent::Parts(parts)) => parts.iter().any(|p| p.image_url.is_some()),
            _ => false,
        });
        let mut needs = vec![Capability::Chat];
        if has_tools {
            needs.push(Capability::Tools);
        }
        if has_images {
            needs.push(Capability::Vision);
        }
        Traits {
            headers,
            user: request.user.as_deref(),
            key_tags,
            prompt_tokens,
            max_output_tokens: request.output_token_limit(),
            has_tools,
            has_images,
            needs,
            only_tagged: None,
            request: Some(request),
            has_code: OnceCell::new(),
            complexity: OnceCell::new(),
        }
    }

    /// Whether a message holds a fenced code block.
    pub fn has_code(&self) -> bool {
        *self.has_code.get_or_init(|| {
            self.request.is_some_and(|r| {
                r.messages.iter().any(|m| match &m.content {
                    Some(MessageContent::Text(t)) => t.contains("```"),
                    Some(MessageContent::Parts(parts)) => parts
                        .iter()
                        .any(|p| p.text.as_ref().is_some_and(|t| t.contains("```"))),
                    None => false,
                })
            })
        })
    }

    /// The complexity heuristic (docs/routing.md): a request is `hard` when its prompt is at
    /// least 1,000 estimated tokens, it carries tools or a fenced code block, the conversation
    /// has more than 6 messages, or the last user message asks for reasoning ("prove", "step by
    /// step", "debug", …); otherwise it is `simple`.
    pub fn complexity(&self) -> Complexity {
        *self.complexity.get_or_init(|| {
            let Some(request) = self.request else {
                return Complexity::Simple;
            };
            let asks_reasoning = request
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .and_then(|m| m.content.as_ref())
                .is_some_and(|c| {
                    let text = c.text().to_lowercase();
                    HARD_WORDS.iter().any(|w| text.contains(w))
                });
            let hard = self.prompt_tokens >= 1000
                || self.has_tools
                || request.messages.len() > 6
                || asks_reasoning
                || self.has_code();
            if hard {
                Complexity::Hard
            } else {
                Complexity::Simple
            }
        })
    }

    /// Reads an embeddings request.
    pub fn of_embeddings(
        headers: &'a HeaderMap,
        key_tags: &'a [String],
        prompt_tokens: u64,
    ) -> Traits<'a> {
        Traits {
            headers,
            user: None,
            key_tags,
            prompt_tokens,
            max_output_tokens: None,
            has_tools: false,
            has_images: false,
            needs: vec![Capability::Embeddings],
            only_tagged: None,
            request: None,
            has_code: OnceCell::new(),
            complexity: OnceCell::new(),
        }
    }

    /// Whether a deployment may serve the request: it has every capability needed, and the tag
    /// a guardrail restricts the request to.
    fn admits(&self, d: &Deployment) -> bool {
        self.needs.iter().all(|c| d.can(*c))
            && self.only_tagged.as_ref().is_none_or(|t| d.tags.contains(t))
    }

    fn matches(&self, c: &Condition) -> bool {
        let headers_ok = c.headers.iter().all(|(name, want)| {
            self.headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == want)
        });
        headers_ok
            && (c.users.is_empty() || self.user.is_some_and(|u| c.users.iter().any(|x| x == u)))
            && c.key_tag.as_ref().is_none_or(|t| self.key_tags.contains(t))
            && c.min_prompt_tokens.is_none_or(|n| self.prompt_tokens >= n)
            && c.max_prompt_tokens.is_none_or(|n| self.prompt_tokens <= n)
            && c.has_tools.is_none_or(|b| b == self.has_tools)
            && c.has_images.is_none_or(|b| b == self.has_images)
            && c.has_code.is_none_or(|b| b == self.has_code())
            && c.complexity.is_none_or(|x| x == self.complexity())
    }
}

impl Router {
    pub fn new(config: &Config, deployments: &[Arc<Deployment>]) -> Router {
        let models: HashMap<String, Arc<Deployment>> = deployments
            .iter()
            .map(|d| (d.name.clone(), d.clone()))
            .collect();
        let resolve = |targets: &[TargetConfig]| -> Vec<Target> {
            targets
                .iter()
                .filter_map(|t| {
                    models.get(t.model()).map(|d| Target {
                        deployment: d.clone(),
                        weight: t.weight(),
                    })
                })
                .collect()
        };
        let names = |names: &[String]| -> Vec<Arc<Deployment>> {
            names
                .iter()
                .filter_map(|n| models.get(n).cloned())
                .collect()
        };
        let routes = config
            .routes
            .iter()
            .map(|(name, r)| {
                let route = Route {
                    strategy: r.strategy,
                    targets: resolve(&r.targets),
                    rules: r
                        .rules
                        .iter()
                        .map(|rule| Rule {
                            when: rule.when.clone(),
                            targets: resolve(&rule.targets),
                            strategy: rule.strategy,
                        })
                        .collect(),
                    context_fallbacks: names(&r.fallbacks.context_window),
                    policy_fallbacks: names(&r.fallbacks.content_policy),
                    retry: r.retry.unwrap_or(config.resilience.retry),
                };
                (name.clone(), route)
            })
            .collect();
        Router {
            models,
            routes,
            retry: config.resilience.retry,
        }
    }

    /// The highest input and output prices among every deployment that may serve `requested`
    /// (its targets, rules and fallbacks), to reserve spend before the plan is known.
    pub fn price_ceiling(&self, requested: &str) -> Option<crate::config::Price> {
        let prices: Vec<crate::config::Price> = match self.routes.get(requested) {
            Some(r) => r
                .targets
                .iter()
                .chain(r.rules.iter().flat_map(|rule| &rule.targets))
                .map(|t| &t.deployment)
                .chain(&r.context_fallbacks)
                .chain(&r.policy_fallbacks)
                .map(|d| d.price)
                .collect(),
            None => vec![self.models.get(requested)?.price],
        };
        prices.into_iter().reduce(|a, b| crate::config::Price {
            input: a.input.max(b.input),
            output: a.output.max(b.output),
            cached_input: None,
        })
    }

    /// Every name a client can ask for: routes and models, each sorted.
    pub fn names(&self) -> (Vec<&str>, Vec<&str>) {
        let mut routes: Vec<&str> = self.routes.keys().map(String::as_str).collect();
        let mut models: Vec<&str> = self.models.keys().map(String::as_str).collect();
        routes.sort_unstable();
        models.sort_unstable();
        (routes, models)
    }

    pub fn plan(
        &self,
        requested: &str,
        traits: &Traits,
        health: &Health,
    ) -> Result<Plan, GatewayError> {
        let mut plan = if let Some(r) = self.routes.get(requested) {
            route_plan(requested, r, traits, health)
        } else if let Some(d) = self.models.get(requested) {
            Plan {
                route: None,
                rule: None,
                targets: traits.admits(d).then(|| d.clone()).into_iter().collect(),
                context_fallbacks: vec![],
                policy_fallbacks: vec![],
                retry: self.retry,
            }
        } else {
            return Err(self.unknown(requested));
        };
        if plan.targets.is_empty() {
            return Err(no_target(requested, traits));
        }
        // Known-too-small context windows and open breakers go last, keeping their order.
        let now = Instant::now();
        let needed = traits.prompt_tokens;
        plan.targets.sort_by_key(|d| {
            let too_small = d.context_window.is_some_and(|w| u64::from(w) < needed);
            let open = !health.deployment(&d.name).is_available(now);
            (too_small, open)
        });
        Ok(plan)
    }

    fn unknown(&self, requested: &str) -> GatewayError {
        let (routes, models) = self.names();
        let mut available: Vec<&str> = routes.into_iter().chain(models).collect();
        let more = available.len().saturating_sub(30);
        available.truncate(30);
        let mut list = available.join(", ");
        if more > 0 {
            list.push_str(&format!(" and {more} more (GET /v1/models lists them all)"));
        }
        GatewayError::new(
            404,
            "invalid_request_error",
            "model_not_found",
            format!("the model \"{requested}\" does not exist; available: {list}"),
        )
        .with_param("model")
    }
}

/// The plan of a route: the first rule the request matches picks the targets (else the
/// route's own), and those able to serve it are ordered by the strategy.
fn route_plan(requested: &str, r: &Route, traits: &Traits, health: &Health) -> Plan {
    let rule = r.rules.iter().position(|rule| traits.matches(&rule.when));
    let (targets, strategy) = match rule {
        Some(i) => (
            &r.rules[i].targets,
            r.rules[i].strategy.unwrap_or(r.strategy),
        ),
        None => (&r.targets, r.strategy),
    };
    let capable: Vec<Target> = targets
        .iter()
        .filter(|t| traits.admits(&t.deployment))
        .cloned()
        .collect();
    let admitted = |list: &Vec<Arc<Deployment>>| -> Vec<Arc<Deployment>> {
        list.iter().filter(|d| traits.admits(d)).cloned().collect()
    };
    Plan {
        route: Some(requested.to_owned()),
        rule,
        targets: order(strategy, capable, traits, health),
        context_fallbacks: admitted(&r.context_fallbacks),
        policy_fallbacks: admitted(&r.policy_fallbacks),
        retry: r.retry,
    }
}

/// Why no target of `requested` can serve: a guardrail's restriction, or a capability the
/// request needs.
fn no_target(requested: &str, traits: &Traits) -> GatewayError {
    if let Some(tag) = &traits.only_tagged {
        return GatewayError::new(
            400,
            "invalid_request_error",
            "guardrail_restricted",
            format!(
                "a guardrail restricts this request to models tagged \"{tag}\", and \"{requested}\" has none that can serve it: send it to a route with such a model, or remove what the guardrail found"
            ),
        )
        .with_param("model");
    }
    let needs: Vec<String> = traits
        .needs
        .iter()
        .map(|c| format!("{c:?}").to_lowercase())
        .collect();
    GatewayError::invalid_request(
        "model_not_capable",
        format!(
            "model \"{requested}\" cannot serve this request: it needs {}; check the model's capabilities in the config",
            needs.join(", ")
        ),
    )
    .with_param("model")
}

/// Orders targets by a strategy.
fn order(
    strategy: Strategy,
    mut targets: Vec<Target>,
    traits: &Traits,
    health: &Health,
) -> Vec<Arc<Deployment>> {
    let mut rng = rand::rng();
    match strategy {
        Strategy::Ordered => {}
        Strategy::Weighted => {
            // Efraimidis–Spirakis: sorting by u^(1/w) descending draws without replacement in
            // proportion to the weights; weight 0 goes last.
            let mut keyed: Vec<(f64, Target)> = targets
                .into_iter()
                .map(|t| {
                    let key = if t.weight == 0 {
                        -1.0
                    } else {
                        rng.random::<f64>().powf(1.0 / f64::from(t.weight))
                    };
                    (key, t)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            targets = keyed.into_iter().map(|(_, t)| t).collect();
        }
        Strategy::LowestLatency => {
            // Unmeasured deployments score zero, so each gets measured first.
            let score = |t: &Target| {
                health
                    .deployment(&t.deployment.name)
                    .latency_score()
                    .unwrap_or_default()
            };
            targets.sort_by_key(|t| score(t));
            if targets.len() >= 2 {
                let first = if rng.random::<f64>() < LATENCY_EXPLORATION {
                    rng.random_range(0..targets.len())
                } else {
                    // Power of two choices: the better of two random picks.
                    let a = rng.random_range(0..targets.len());
                    let mut b = rng.random_range(0..targets.len() - 1);
                    if b >= a {
                        b += 1;
                    }
                    a.min(b) // sorted by score, so the lower index is the faster
                };
                let chosen = targets.remove(first);
                targets.insert(0, chosen);
            }
        }
        Strategy::LowestCost => {
            let output = traits
                .max_output_tokens
                .map_or(ASSUMED_OUTPUT_TOKENS, u64::from);
            let cost = |t: &Target| {
                let p = &t.deployment.price;
                traits.prompt_tokens as f64 * p.input + output as f64 * p.output
            };
            targets.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
        }
        Strategy::LeastBusy => {
            // Shuffle first so that ties are broken at random, then a stable sort.
            for i in (1..targets.len()).rev() {
                let j = rng.random_range(0..=i);
                targets.swap(i, j);
            }
            targets.sort_by_key(|t| health.deployment(&t.deployment.name).in_flight());
        }
    }
    targets.into_iter().map(|t| t.deployment).collect()
}
