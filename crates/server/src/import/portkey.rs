//! The Portkey gateway config importer: one config (strategy, targets, retry, request_timeout)
//! becomes one Switchyard route over one model per target. Nested targets are flattened into
//! that route: a load-balanced group keeps its weights in proportion, a fallback group's later
//! targets get weight 0 (tried after every weighted target, in the order listed).

use serde_json::Value;

use super::{
    Draft, Map, Node, Providers, Section, integer_weights, known_context_window, literal,
    put_api_key, put_aws, seconds, unique_name, vertex_block,
};

const CACHE: &str = "Switchyard's response cache is not built yet";
const VIRTUAL_KEY: &str = "Portkey's vault keys cannot be read: the provider's key is read from the environment variable in its api_key instead; set it";
const HOOKS: &str =
    "Portkey hooks and guardrails do not map; see docs/guardrails.md for Switchyard's";

/// Why the settings Switchyard does not take are left behind, by key, on any config or target.
const NODE_KEYS: &[(&str, &str)] = &[
    ("cache", CACHE),
    ("input_guardrails", HOOKS),
    ("output_guardrails", HOOKS),
    ("before_request_hooks", HOOKS),
    ("after_request_hooks", HOOKS),
    (
        "forward_headers",
        "Switchyard does not forward client headers to the upstream; set providers.*.headers",
    ),
    ("virtual_key", VIRTUAL_KEY),
    (
        "strict_open_ai_compliance",
        "Switchyard always answers in the OpenAI shape",
    ),
];

/// Status codes Switchyard moves to the next target on (rate limit, auth, not found, timeout,
/// overload and server errors); the other 4xx are returned at once.
fn switchyard_falls_back_on(code: u16) -> bool {
    matches!(code, 401 | 403 | 404 | 408 | 429) || (500..=599).contains(&code)
}

/// What Portkey falls back on when `on_status_codes` is not given: any error.
const ANY_ERROR: &[u16] = &[400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503, 504];

pub fn import(text: &str, route: &str) -> Result<Draft, String> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| format!("not a Portkey config JSON: {e}"))?;
    let mut draft = Draft::default();
    let mut leaves = Vec::new();
    let mut retry = RetryPlan::default();
    flatten(root, "", 1.0, &mut leaves, &mut retry, &mut draft)?;

    let mut providers = Providers::default();
    let mut models = Map::new();
    let mut targets: Vec<(String, f64)> = Vec::new();
    for leaf in leaves {
        let share = leaf.share;
        let Some((name, model)) = leaf_model(leaf, route, &models, &mut providers, &mut draft)
        else {
            continue;
        };
        models.put(name.clone(), model);
        targets.push((name, share));
    }
    if targets.is_empty() {
        return Err("no target could be carried over (see the list above)".into());
    }
    let mut doc = Map::new();
    doc.put("providers", providers.into_map());
    doc.put("models", models);
    let mut routes = Map::new();
    routes.put_noted(
        route,
        route_map(&targets, &retry, &mut draft),
        format!("the Portkey config: clients send model: {route}"),
    );
    doc.put("routes", routes);
    draft.header.push(format!(
        "Clients ask for the route {route} (Portkey's config applied to their request)."
    ));
    draft.doc = doc;
    Ok(draft)
}

/// A target with no targets of its own, and its share of first picks (0: a fallback).
struct Leaf {
    path: String,
    share: f64,
    target: Section,
}

/// What the configs and targets say about retries and fallbacks, merged over the tree.
#[derive(Default)]
struct RetryPlan {
    attempts: Option<u32>,
    retry_codes: Vec<u16>,
    /// The top-level strategy's mode.
    top_mode: String,
    /// The top-level fallback's `on_status_codes`, or ANY_ERROR when none is given.
    fallback_codes: Vec<u16>,
    timeout_ms: Option<f64>,
}

fn flatten(
    node: Value,
    path: &str,
    share: f64,
    leaves: &mut Vec<Leaf>,
    retry: &mut RetryPlan,
    draft: &mut Draft,
) -> Result<(), String> {
    let mut n = Section::new(path, Some(node))?;
    read_retry(&mut n, retry, draft);
    n.take("weight"); // read by the parent
    n.take("name"); // a label for conditional routing
    let Some(Value::Array(children)) = n.take("targets") else {
        n.take("strategy");
        leaves.push(Leaf {
            path: path.to_owned(),
            share,
            target: n,
        });
        return Ok(());
    };
    let mut strategy = Section::new(n.key("strategy"), n.take("strategy"))?;
    let mode = strategy.take_str("mode").unwrap_or_else(|| "single".into());
    let codes = strategy.take("on_status_codes").map(codes_of);
    let shares = child_shares(&mode, &children, &mut strategy, share, draft);
    if path.is_empty() {
        retry.top_mode = mode.clone();
    }
    match (mode.as_str(), codes) {
        ("fallback", codes) if path.is_empty() => {
            retry.fallback_codes = codes.unwrap_or_else(|| ANY_ERROR.to_vec());
        }
        ("fallback", _) => draft.drop(
            strategy.key("mode"),
            "a nested fallback is flattened into the route (its later targets at weight 0): Switchyard falls back by error class (docs/routing.md), not by this group's status codes",
        ),
        (_, Some(_)) => draft.drop(
            strategy.key("on_status_codes"),
            format!("only a fallback strategy falls back on status codes (mode is {mode})"),
        ),
        _ => {}
    }
    if mode == "loadbalance" && path.is_empty() {
        draft.drop(
            strategy.key("mode"),
            "loadbalance: Portkey returns a failed target's error; Switchyard's weighted route tries the other targets next (docs/routing.md)",
        );
    }
    strategy.finish(&[], draft);
    // Settings on a config with targets apply to each target (Portkey inherits them).
    let inherited: Vec<(String, Value)> = ["provider", "api_key", "custom_host", "override_params"]
        .iter()
        .filter_map(|k| n.take(k).map(|v| (k.to_string(), v)))
        .collect();
    n.finish(NODE_KEYS, draft);
    for (i, (mut child, child_share)) in children.into_iter().zip(shares).enumerate() {
        if let Value::Object(o) = &mut child {
            for (k, v) in &inherited {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let child_path = if path.is_empty() {
            format!("targets[{i}]")
        } else {
            format!("{path}.targets[{i}]")
        };
        if let Some(s) = child_share {
            flatten(child, &child_path, s, leaves, retry, draft)?;
        }
    }
    Ok(())
}

/// Each child's share of first picks, or None for a child that is not carried over.
fn child_shares(
    mode: &str,
    children: &[Value],
    strategy: &mut Section,
    share: f64,
    draft: &mut Draft,
) -> Vec<Option<f64>> {
    match mode {
        "loadbalance" => {
            let weights: Vec<f64> = children
                .iter()
                .map(|c| c.get("weight").and_then(Value::as_f64).unwrap_or(1.0))
                .collect();
            let total: f64 = weights.iter().sum::<f64>().max(f64::EPSILON);
            weights.iter().map(|w| Some(share * w / total)).collect()
        }
        "conditional" => {
            let default = strategy.take_str("default");
            draft.drop(
                strategy.key("conditions"),
                "conditions on Portkey metadata do not map cleanly to route rules; only the default target is carried over",
            );
            strategy.take("conditions");
            let pick = children
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == default.as_deref());
            (0..children.len())
                .map(|i| (Some(i) == pick.or(Some(0))).then_some(share))
                .collect()
        }
        // fallback, single: the first child first, the others in order after it.
        _ => (0..children.len())
            .map(|i| Some(if i == 0 { share } else { 0.0 }))
            .collect(),
    }
}

fn codes_of(v: Value) -> Vec<u16> {
    match v {
        Value::Array(l) => l
            .iter()
            .filter_map(|c| c.as_u64())
            .map(|c| c as u16)
            .collect(),
        _ => Vec::new(),
    }
}

fn read_retry(n: &mut Section, retry: &mut RetryPlan, draft: &mut Draft) {
    if let Some(t) = n.take_f64("request_timeout") {
        retry.timeout_ms = Some(retry.timeout_ms.map_or(t, |old: f64| old.max(t)));
    }
    let Ok(mut r) = Section::new(n.key("retry"), n.take("retry")) else {
        draft.drop(n.key("retry"), "expected {attempts, on_status_codes}");
        return;
    };
    if let Some(a) = r.take_f64("attempts") {
        retry.attempts = Some(retry.attempts.map_or(a as u32, |old| old.max(a as u32)));
    }
    if let Some(codes) = r.take("on_status_codes") {
        retry.retry_codes.extend(codes_of(codes));
    }
    r.finish(&[], draft);
}

/// A leaf target as a model (and its provider); None when it cannot be carried over.
fn leaf_model(
    leaf: Leaf,
    route: &str,
    taken: &Map,
    providers: &mut Providers,
    draft: &mut Draft,
) -> Option<(String, Map)> {
    let mut t = leaf.target;
    let mut params = Section::new(t.key("override_params"), t.take("override_params")).ok()?;
    let model = params.take_str("model");
    params.finish(&[], draft);
    let provider_name = t.take_str("provider");
    let virtual_key = t.take_str("virtual_key").is_some();
    let guessed = provider_name
        .clone()
        .or_else(|| model.as_deref().and_then(guess_provider).map(str::to_owned));
    let (Some(provider), Some(upstream)) = (guessed, model.or(t.take_str("deployment_id"))) else {
        draft.drop(
            &leaf.path,
            "a target needs override_params.model and a provider (Portkey takes them from the request and the virtual key); the target is not carried over",
        );
        t.finish(NODE_KEYS, draft);
        return None;
    };
    let Some(settings) = provider_settings(&provider, &mut t, draft) else {
        draft.drop(
            t.key("provider"),
            format!("\"{provider}\" has no Switchyard kind; the target is not carried over"),
        );
        t.finish(NODE_KEYS, draft);
        return None;
    };
    if virtual_key {
        draft.drop(t.key("virtual_key"), VIRTUAL_KEY);
    }
    let kind = match settings.get("kind") {
        Some(Node::Scalar(k)) => k.clone(),
        _ => provider.clone(),
    };
    let pname = providers.name_for(&kind.replace('_', "-"), settings);
    t.finish(NODE_KEYS, draft);
    let name = unique_name(&upstream, |n| n == route || taken.contains(n));
    let mut m = Map::new();
    m.put("provider", Node::str(&pname));
    if name != upstream {
        m.put("upstream", Node::str(&upstream));
    }
    if let Some(w) = known_context_window(&upstream) {
        m.put_noted(
            "context_window",
            Node::num(w),
            "the known window of this model",
        );
    }
    Some((name, m))
}

/// Portkey provider slugs as Switchyard kinds, with their connection settings.
fn provider_settings(provider: &str, t: &mut Section, draft: &mut Draft) -> Option<Map> {
    let custom_host = t.take_str("custom_host");
    let kind = match provider {
        "openai" => match &custom_host {
            Some(_) => "openai_compatible",
            None => "openai",
        },
        "azure-openai" => "azure",
        "anthropic" => "anthropic",
        "google" => "gemini",
        "vertex-ai" => "vertex",
        "bedrock" => "bedrock",
        "groq" => "groq",
        "together-ai" => "together",
        "mistral-ai" => "mistral",
        "deepseek" => "deepseek",
        "openrouter" => "openrouter",
        "x-ai" => "xai",
        "ollama" => "ollama",
        _ => return None,
    };
    let mut s = Map::new();
    s.put("kind", Node::str(kind));
    let base = match (kind, custom_host, t.take_str("resource_name")) {
        ("azure", _, Some(resource)) => Some(format!("https://{resource}.openai.azure.com")),
        ("azure", None, None) => Some("${AZURE_OPENAI_BASE_URL}".into()),
        (_, host, _) => host.map(|h| literal(&h)),
    };
    if let Some(b) = base {
        s.put("base_url", Node::str(b));
    }
    put_api_key(
        &mut s,
        kind,
        t.take_str("api_key").map(|k| literal(&k)),
        Some("copied from the source: consider reading it from the environment (${NAME})"),
        "the source has no key here (a virtual key or none): set this variable",
    );
    if kind == "azure" {
        let v = t
            .take_str("api_version")
            .unwrap_or_else(|| "${AZURE_API_VERSION}".into());
        s.put("api_version", Node::str(v));
    }
    if kind == "bedrock" {
        let from = [
            "aws_region",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
        ];
        put_aws(&mut s, t, from, literal);
    }
    if kind == "vertex" {
        let mut vertex = vertex_block(t.take_str("vertex_project_id"), t.take_str("vertex_region"));
        vertex.put(
            "credentials_file",
            Node::str("${GOOGLE_APPLICATION_CREDENTIALS}"),
        );
        t.drop_key(
            "vertex_service_account_json",
            "inline credentials JSON: save it to a file and set vertex.credentials_file",
            draft,
        );
        s.put("vertex", vertex);
    }
    Some(s)
}

/// Portkey resolves a virtual key's provider; an imported target without `provider` has its
/// provider guessed from the model name.
fn guess_provider(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    if m.starts_with("gpt-")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("text-embedding")
    {
        Some("openai")
    } else if m.starts_with("claude") {
        Some("anthropic")
    } else if m.starts_with("gemini") {
        Some("google")
    } else {
        None
    }
}

/// The route: ordered when only the first target is ever picked first, else weighted (fallbacks
/// at weight 0); retries and fallback classes from `retry` and `on_status_codes`.
fn route_map(targets: &[(String, f64)], retry: &RetryPlan, draft: &mut Draft) -> Map {
    let mut route = Map::new();
    let first_only = targets.iter().skip(1).all(|(_, s)| *s == 0.0);
    if first_only {
        route.put_noted(
            "strategy",
            Node::str("ordered"),
            "the first target, then the others in order (fallback)",
        );
        route.put("targets", Node::strs(targets.iter().map(|(n, _)| n)));
    } else {
        let weights = integer_weights(&targets.iter().map(|(_, s)| *s).collect::<Vec<_>>());
        route.put_noted(
            "strategy",
            Node::str("weighted"),
            "loadbalance: weights in proportion to Portkey's; nested groups are flattened, fallback targets at weight 0",
        );
        let list = targets
            .iter()
            .zip(weights)
            .map(|((n, _), w)| {
                let mut t = Map::new();
                t.put("model", Node::str(n));
                t.put("weight", Node::num(w));
                Node::Map(t)
            })
            .collect();
        route.put("targets", Node::List(list));
    }
    let fallbacks: Vec<&str> = targets.iter().skip(1).map(|(n, _)| n.as_str()).collect();
    fallback_classes(&mut route, &fallbacks, retry, draft);
    route.put("retry", retry_map(targets.len(), retry, draft));
    route
}

/// Switchyard classifies errors instead of matching status codes: the codes of
/// `on_status_codes` it falls back on are kept as they are; a 400 (Portkey falls back on it)
/// maps to the context-length and content-policy fallbacks, which are 400s upstream.
fn fallback_classes(route: &mut Map, fallbacks: &[&str], retry: &RetryPlan, draft: &mut Draft) {
    if retry.top_mode != "fallback" || fallbacks.is_empty() {
        return;
    }
    let codes = &retry.fallback_codes;
    if codes.contains(&400) || codes.contains(&413) {
        let f = route.map_mut("fallbacks");
        f.put_noted(
            "context_window",
            Node::strs(fallbacks),
            "on_status_codes 400/413: a prompt too long for a target goes to a larger one",
        );
        f.put_noted(
            "content_policy",
            Node::strs(fallbacks),
            "on_status_codes 400: a content-policy refusal goes to the next target",
        );
        draft.drop(
            "strategy.on_status_codes: 400",
            "Switchyard returns other invalid requests (400/422) at once: no other target would accept them; context-length and content-policy 400s fall back",
        );
    }
    let extra: Vec<String> = [429u16, 500, 502, 503, 504]
        .iter()
        .filter(|c| !codes.contains(c))
        .map(|c| c.to_string())
        .collect();
    if !extra.is_empty() {
        draft.drop(
            "strategy.on_status_codes",
            format!(
                "Switchyard always moves to the next target on rate limits, 5xx, timeouts and broken connections; it also falls back on {} here",
                extra.join(", ")
            ),
        );
    }
    for c in codes
        .iter()
        .filter(|c| !switchyard_falls_back_on(**c) && !matches!(c, 400 | 413))
    {
        draft.drop(
            format!("strategy.on_status_codes: {c}"),
            "Switchyard returns this status to the client without falling back",
        );
    }
}

/// `retry.attempts` retries one target on 429 and 5xx; Switchyard retries a target on 5xx,
/// timeouts and broken connections, and moves on at once on 429 (another key or target).
fn retry_map(targets: usize, retry: &RetryPlan, draft: &mut Draft) -> Map {
    let per_target = retry.attempts.unwrap_or(0);
    let mut r = Map::new();
    r.put_noted(
        "max_attempts",
        Node::num((per_target as usize + 1) * targets),
        "every target gets its attempts",
    );
    r.put_noted(
        "retries_per_target",
        Node::num(per_target),
        "retry.attempts (0 when the source sets none: Portkey does not retry by default)",
    );
    if let Some(ms) = retry.timeout_ms {
        r.put_noted(
            "attempt_timeout",
            Node::str(seconds(ms / 1000.0)),
            "request_timeout",
        );
    }
    if retry.retry_codes.contains(&429) {
        draft.drop(
            "retry.on_status_codes: 429",
            "a rate-limited target is not retried at once: Switchyard tries another key or target, and waits out Retry-After only on the last",
        );
    }
    for c in retry
        .retry_codes
        .iter()
        .filter(|c| !(500..=599).contains(*c) && **c != 429 && **c != 408)
    {
        draft.drop(
            format!("retry.on_status_codes: {c}"),
            "Switchyard retries a target only on overload, 5xx, timeouts and broken connections",
        );
    }
    r
}
