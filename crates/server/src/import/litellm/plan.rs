//! The Switchyard side of the LiteLLM import: which `model_name` becomes a route and which a
//! plain model, the models with their prices, windows and quotas, the routes with their strategy,
//! weights and fallbacks, and the retry, breaker and governance sections.

use super::super::{integer_weights, per_million, seconds, unique_name};
use super::{Deployment, Draft, Group, Map, Node, RouterSettings};

/// How each group is exposed: a plain model (one deployment, no route features) or a route over
/// models named after their deployments.
pub(super) struct Plan {
    /// Per group: whether it is a route, and the model name of each deployment.
    names: Vec<(bool, Vec<String>)>,
}

impl Plan {
    pub(super) fn new(groups: &[Group], s: &RouterSettings, draft: &mut Draft) -> Plan {
        let has_fallbacks = |g: &str| {
            !s.default_fallbacks.is_empty()
                || [&s.fallbacks, &s.context_fallbacks, &s.policy_fallbacks]
                    .iter()
                    .any(|l| l.iter().any(|(from, _)| from == g))
        };
        let mut taken: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
        taken.extend(s.aliases.iter().map(|(a, _)| a.clone()));
        let mut names = Vec::new();
        for g in groups {
            let routed = g.deployments.len() > 1 || has_fallbacks(&g.name);
            let models: Vec<String> = if routed {
                g.deployments
                    .iter()
                    .map(|d| {
                        let n = unique_name(&format!("{}-{}", g.name, d.provider), |n| {
                            taken.iter().any(|t| t == n)
                        });
                        taken.push(n.clone());
                        n
                    })
                    .collect()
            } else {
                vec![g.name.clone()]
            };
            names.push((routed, models));
        }
        for (alias, target) in &s.aliases {
            if !groups.iter().any(|g| &g.name == target) {
                draft.drop(
                    format!("router_settings.model_group_alias.{alias}"),
                    format!("\"{target}\" is not a model_name of model_list"),
                );
            }
        }
        Plan { names }
    }

    fn models_of<'a>(&'a self, groups: &[Group], name: &str) -> Option<&'a [String]> {
        let i = groups.iter().position(|g| g.name == name)?;
        Some(&self.names[i].1)
    }
}

/// The `models:` section, and each deployment's rpm / tpm / max_parallel as a quota.
pub(super) fn models_section(groups: &[Group], plan: &Plan, drop_params: bool) -> (Map, Map) {
    let mut models = Map::new();
    let mut quotas = Map::new();
    for (g, (_, names)) in groups.iter().zip(&plan.names) {
        for (d, name) in g.deployments.iter().zip(names) {
            let mut m = Map::new();
            m.put("provider", Node::str(&d.provider));
            if &d.upstream != name {
                m.put("upstream", Node::str(&d.upstream));
            }
            if let Some((w, from)) = d.context_window {
                m.put_noted("context_window", Node::num(w), format!("from {from}"));
            }
            if let Some((input, output)) = d.price {
                let mut price = Map::new();
                price.put("input", Node::num(per_million(input)));
                price.put("output", Node::num(per_million(output)));
                m.put_noted(
                    "price",
                    price,
                    "USD per million tokens (LiteLLM's *_cost_per_token × 1,000,000)",
                );
            }
            if d.embeddings {
                m.put("capabilities", Node::strs(["embeddings"]));
            }
            if drop_params {
                m.put("drop_unsupported_params", Node::bool(true));
            }
            let mut limits = Map::new();
            for (key, v) in [
                ("rpm", d.rpm),
                ("tpm", d.tpm),
                ("max_parallel", d.max_parallel),
            ] {
                if let Some(v) = v {
                    limits.put(key, Node::num(v as u64));
                }
            }
            if !limits.is_empty() {
                quotas.put(name, limits);
            }
            models.put(name, m);
        }
    }
    (models, quotas)
}

fn strategy_for(name: Option<&str>, draft: &mut Draft) -> (&'static str, Option<&'static str>) {
    match name.unwrap_or("simple-shuffle") {
        "simple-shuffle" => ("weighted", None),
        "least-busy" => ("least_busy", None),
        "latency-based-routing" => ("lowest_latency", None),
        "cost-based-routing" => ("lowest_cost", None),
        "usage-based-routing" | "usage-based-routing-v2" => (
            "least_busy",
            Some(
                "usage-based-routing: the closest strategy is least_busy; each deployment's rpm/tpm is held as its quota (governance.models), and a deployment over it is skipped",
            ),
        ),
        other => {
            draft.drop(
                "router_settings.routing_strategy",
                format!("\"{other}\" is not a LiteLLM strategy Switchyard knows; the routes use weighted"),
            );
            ("weighted", None)
        }
    }
}

pub(super) fn routes_section(
    groups: &[Group],
    plan: &Plan,
    s: &RouterSettings,
    draft: &mut Draft,
) -> Map {
    let (strategy, strategy_note) = strategy_for(s.strategy.as_deref(), draft);
    let mut routes = Map::new();
    for (g, (routed, names)) in groups.iter().zip(&plan.names) {
        if !routed {
            continue;
        }
        let mut route = route_targets(g, names, strategy, strategy_note);
        let primaries = names.len();
        let fallback_models = generic_fallbacks(groups, plan, g, s, draft);
        if !fallback_models.is_empty() {
            add_fallback_targets(&mut route, &g.name, &fallback_models, draft);
        }
        classified_section(
            &mut route,
            groups,
            plan,
            g,
            s,
            !fallback_models.is_empty(),
            draft,
        );
        let total = primaries + fallback_models.len();
        if let Some(retry) = route_retry(s, total, !fallback_models.is_empty()) {
            route.put_noted(
                "retry",
                retry,
                "enough attempts for every target, fallbacks included, to get its turn",
            );
        }
        if s.drop_params {
            route.put("drop_unsupported_params", Node::bool(true));
        }
        routes.put_noted(
            &g.name,
            route,
            format!("model_name {}: {} deployment(s)", g.name, primaries),
        );
    }
    for (alias, target) in &s.aliases {
        if let Some(models) = plan.models_of(groups, target) {
            let mut r = Map::new();
            r.put("targets", Node::strs(models));
            routes.put_noted(
                alias,
                r,
                format!("router_settings.model_group_alias: {alias} → {target}"),
            );
        }
    }
    routes
}

/// The models of the groups `g` falls back to on any error (`fallbacks`, `default_fallbacks`).
fn generic_fallbacks(
    groups: &[Group],
    plan: &Plan,
    g: &Group,
    s: &RouterSettings,
    draft: &mut Draft,
) -> Vec<String> {
    let mut fallback_models: Vec<String> = Vec::new();
    let generic = s
        .fallbacks
        .iter()
        .filter(|(from, _)| from == &g.name)
        .flat_map(|(_, to)| to.clone())
        .chain(
            s.default_fallbacks
                .iter()
                .filter(|f| **f != g.name)
                .cloned(),
        );
    for to in generic {
        match plan.models_of(groups, &to) {
            Some(models) => fallback_models.extend(models.iter().cloned()),
            None => draft.drop(
                format!("fallbacks: {} → {to}", g.name),
                format!("\"{to}\" is not a model_name of model_list"),
            ),
        }
    }
    fallback_models
}

/// `fallbacks.context_window` and `fallbacks.content_policy` of the route of `g`, and what
/// about them behaves differently.
fn classified_section(
    route: &mut Map,
    groups: &[Group],
    plan: &Plan,
    g: &Group,
    s: &RouterSettings,
    has_generic: bool,
    draft: &mut Draft,
) {
    for (key, list, what) in [
        (
            "context_window",
            &s.context_fallbacks,
            "context_window_fallbacks",
        ),
        (
            "content_policy",
            &s.policy_fallbacks,
            "content_policy_fallbacks",
        ),
    ] {
        let targets = classified_fallbacks(groups, plan, &g.name, list, what, draft);
        if !targets.is_empty() {
            route.map_mut("fallbacks").put_noted(
                key,
                Node::strs(&targets),
                format!("{what} of {}", g.name),
            );
        }
    }
    if windows_missing(groups, g, s) {
        draft.drop(
            format!("context_window_fallbacks: {}", g.name),
            "Switchyard falls back on a context-length error only to a model with a larger known context_window; set models.*.context_window",
        );
    }
    let has_context_fallbacks = s.context_fallbacks.iter().any(|(from, _)| from == &g.name);
    if has_context_fallbacks && has_generic {
        draft.drop(
            format!("context_window_fallbacks: {}", g.name),
            "on a context-length error Switchyard first tries the route's other targets (its fallbacks) whose context_window is larger, then these",
        );
    }
}

/// The route's strategy and its own deployments: `order` makes it ordered, else the strategy
/// with LiteLLM's simple-shuffle weights (weight, else rpm, else tpm).
fn route_targets(g: &Group, names: &[String], strategy: &str, note: Option<&str>) -> Map {
    let mut route = Map::new();
    if g.deployments.iter().any(|d| d.order.is_some()) {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&i| g.deployments[i].order.unwrap_or(i64::MAX));
        route.put_noted(
            "strategy",
            Node::str("ordered"),
            "litellm_params.order: lower order first, the others as fallbacks",
        );
        route.put("targets", Node::strs(order.iter().map(|&i| &names[i])));
        return route;
    }
    if strategy != "weighted" || names.len() == 1 {
        let s = if names.len() == 1 {
            "ordered"
        } else {
            strategy
        };
        route.put("strategy", Node::str(s));
        if let Some(n) = note.filter(|_| names.len() > 1) {
            route.note("strategy", n);
        }
        route.put("targets", Node::strs(names));
        return route;
    }
    let (weights, from) = simple_shuffle_weights(g);
    let weights = integer_weights(&weights);
    route.put_noted(
        "strategy",
        Node::str("weighted"),
        format!("simple-shuffle, in proportion to litellm_params.{from}"),
    );
    let targets = names
        .iter()
        .zip(weights)
        .map(|(n, w)| {
            let mut t = Map::new();
            t.put("model", Node::str(n));
            t.put("weight", Node::num(w));
            Node::Map(t)
        })
        .collect();
    route.put("targets", Node::List(targets));
    route
}

/// LiteLLM's simple-shuffle picks by `weight`, else `rpm`, else `tpm`, else uniformly.
fn simple_shuffle_weights(g: &Group) -> (Vec<f64>, &'static str) {
    let by = |f: fn(&Deployment) -> Option<f64>| -> Option<Vec<f64>> {
        g.deployments
            .iter()
            .any(|d| f(d).is_some())
            .then(|| g.deployments.iter().map(|d| f(d).unwrap_or(0.0)).collect())
    };
    by(|d| d.weight)
        .map(|w| (w, "weight"))
        .or_else(|| by(|d| d.rpm).map(|w| (w, "rpm")))
        .or_else(|| by(|d| d.tpm).map(|w| (w, "tpm")))
        .unwrap_or_else(|| (vec![1.0; g.deployments.len()], "nothing (equal weights)"))
}

/// Generic fallbacks follow the route's own targets: last in an ordered route, weight 0 (always
/// after the weighted ones) in a weighted route. Other strategies order all targets together.
fn add_fallback_targets(route: &mut Map, name: &str, fallbacks: &[String], draft: &mut Draft) {
    let strategy = match route.get("strategy") {
        Some(Node::Scalar(s)) => s.clone(),
        _ => "ordered".into(),
    };
    let Some(Node::List(mut targets)) = route.get("targets").cloned() else {
        return;
    };
    for f in fallbacks {
        if strategy == "weighted" {
            let mut t = Map::new();
            t.put("model", Node::str(f));
            t.put("weight", Node::num(0));
            targets.push(Node::Map(t));
        } else {
            targets.push(Node::str(f));
        }
    }
    route.put("targets", Node::List(targets));
    let note = if strategy == "weighted" {
        "fallbacks (weight 0): tried after every deployment of this model_name failed"
    } else if strategy == "ordered" {
        "the fallbacks are the last targets"
    } else {
        draft.drop(
            format!("fallbacks: {name}"),
            format!(
                "with strategy {strategy} the fallbacks join the targets and may be chosen first"
            ),
        );
        "fallbacks appended (the strategy orders them with the others)"
    };
    route.note("targets", note);
}

fn classified_fallbacks(
    groups: &[Group],
    plan: &Plan,
    name: &str,
    list: &[(String, Vec<String>)],
    what: &str,
    draft: &mut Draft,
) -> Vec<String> {
    let mut out = Vec::new();
    for (_, to) in list.iter().filter(|(from, _)| from == name) {
        for t in to {
            match plan.models_of(groups, t) {
                Some(models) => out.extend(models.iter().cloned()),
                None => draft.drop(
                    format!("{what}: {name} → {t}"),
                    format!("\"{t}\" is not a model_name of model_list"),
                ),
            }
        }
    }
    out
}

/// Whether a context-window fallback of `g` cannot work for want of known windows.
fn windows_missing(groups: &[Group], g: &Group, s: &RouterSettings) -> bool {
    let fallbacks: Vec<&Deployment> = s
        .context_fallbacks
        .iter()
        .filter(|(from, _)| from == &g.name)
        .flat_map(|(_, to)| to.iter())
        .filter_map(|t| groups.iter().find(|x| &x.name == t))
        .flat_map(|x| x.deployments.iter())
        .collect();
    !fallbacks.is_empty()
        && (g.deployments.iter().any(|d| d.context_window.is_none())
            || fallbacks.iter().any(|d| d.context_window.is_none()))
}

/// Retries: LiteLLM's `num_retries` re-runs a failed call; Switchyard retries a target
/// `retries_per_target` times and moves on, within `max_attempts` calls in all.
fn retry_map(s: &RouterSettings, max_attempts: u32) -> Map {
    let mut r = Map::new();
    r.put("max_attempts", Node::num(max_attempts));
    r.put(
        "retries_per_target",
        Node::num(s.num_retries.map_or(1, |n| n.min(1))),
    );
    if let Some(t) = s.timeout {
        r.put("attempt_timeout", Node::str(seconds(t)));
    }
    r
}

fn route_retry(s: &RouterSettings, targets: usize, has_fallbacks: bool) -> Option<Map> {
    let per_target = s.num_retries.map_or(1, |n| n.min(1)) + 1;
    let needed = targets as u32 * per_target;
    let global = s.num_retries.map_or(4, |n| n + 1);
    (has_fallbacks && needed > global).then(|| retry_map(s, needed))
}

pub(super) fn resilience_section(s: &RouterSettings) -> Option<Map> {
    let mut res = Map::new();
    if s.num_retries.is_some() || s.timeout.is_some() {
        let attempts = s.num_retries.map_or(4, |n| n + 1);
        let mut retry = retry_map(s, attempts);
        if let Some(n) = s.num_retries {
            retry.note("max_attempts", format!("num_retries: {n} → 1 + {n} calls"));
        }
        if s.timeout.is_some() {
            retry.note("attempt_timeout", "LiteLLM's timeout bounds each call");
        }
        res.put("retry", retry);
    }
    let mut breaker = Map::new();
    if let Some(n) = s.allowed_fails {
        breaker.put_noted(
            "consecutive_failures",
            Node::num(n + 1),
            format!(
                "allowed_fails: {n} → opens at failure {} (LiteLLM counts failures per minute, Switchyard in a row)",
                n + 1
            ),
        );
    }
    if let Some(c) = s.cooldown_time {
        breaker.put_noted("cooldown", Node::str(seconds(c)), "cooldown_time");
    }
    if !breaker.is_empty() {
        res.put("breaker", breaker);
    }
    (!res.is_empty()).then_some(res)
}

pub(super) fn governance_section(
    quotas: Map,
    budget: Option<(f64, &'static str, String)>,
    parallel: Option<f64>,
) -> Map {
    let mut g = Map::new();
    if let Some(n) = parallel {
        g.map_mut("global").put_noted(
            "max_parallel",
            Node::num(n as u64),
            "general_settings.(global_)max_parallel_requests",
        );
    }
    if let Some((usd, period, note)) = budget {
        let mut b = Map::new();
        b.put("usd", Node::num(usd));
        b.put("period", Node::str(period));
        g.map_mut("global")
            .put_noted("budgets", Node::List(vec![b.into()]), note);
    }
    if !quotas.is_empty() {
        g.put_noted(
            "models",
            quotas,
            "litellm_params rpm / tpm / max_parallel_requests: each deployment's quota; a deployment over it is skipped",
        );
    }
    g
}
