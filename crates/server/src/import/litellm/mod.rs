//! The LiteLLM proxy `config.yaml` importer: `model_list` deployments become providers and
//! models, each `model_name` served by several deployments (or with fallbacks) becomes a route,
//! and `router_settings`, `litellm_settings` and `general_settings` become the route strategy,
//! retries, breakers, fallbacks, auth, database and governance settings that behave the same.

mod plan;

use serde_json::Value;

use super::{
    Draft, Map, Node, Providers, Section, known_context_window, literal, put_api_key, put_aws,
    seconds, vertex_block,
};
use plan::{Plan, governance_section, models_section, resilience_section, routes_section};

/// Why the settings Switchyard does not take are left behind, by key.
const ROOT_KEYS: &[(&str, &str)] = &[
    (
        "environment_variables",
        "set these in the gateway's environment; the config reads them as ${NAME}",
    ),
    (
        "include",
        "merge the included files into this one before importing",
    ),
    (
        "guardrails",
        "LiteLLM guardrail integrations do not map; see docs/guardrails.md for Switchyard's",
    ),
];

const ROUTER_KEYS: &[(&str, &str)] = &[
    (
        "enable_pre_call_checks",
        "always on in Switchyard: a target whose known context_window is too small moves to the end",
    ),
    (
        "retry_policy",
        "retries per error type do not map; Switchyard's error classes decide (docs/routing.md)",
    ),
    (
        "allowed_fails_policy",
        "failure counts per error type do not map; the breaker counts overload, 5xx and timeouts",
    ),
    (
        "routing_strategy_args",
        "strategy tuning does not map (lowest_latency keeps a latency EWMA)",
    ),
    (
        "disable_cooldowns",
        "Switchyard's circuit breakers cannot be turned off; tune resilience.breaker instead",
    ),
    (
        "cache_responses",
        "Switchyard's response cache is not built yet",
    ),
];

const CACHE: &str = "Switchyard's response cache is not built yet";
const VIRTUAL_KEYS: &str = "virtual keys, users and teams live in Switchyard's database: create them through the admin API or `switchyard keys create` (docs/governance.md)";
const CALLBACKS: &str = "logging callbacks do not map: every request is recorded (records.stdout for log shippers, telemetry.otlp for traces)";

const LITELLM_KEYS: &[(&str, &str)] = &[
    ("cache", CACHE),
    ("cache_params", CACHE),
    ("success_callback", CALLBACKS),
    ("failure_callback", CALLBACKS),
    ("callbacks", CALLBACKS),
    ("service_callback", CALLBACKS),
    (
        "set_verbose",
        "logging is set with SWITCHYARD_LOG and --log-format",
    ),
    ("json_logs", "use `switchyard serve --log-format json`"),
    ("default_team_settings", VIRTUAL_KEYS),
    ("default_key_generate_params", VIRTUAL_KEYS),
    ("upperbound_key_generate_params", VIRTUAL_KEYS),
    ("default_internal_user_params", VIRTUAL_KEYS),
    (
        "budget_duration",
        "only carried over with max_budget, as day, week, month or total",
    ),
];

const GENERAL_KEYS: &[(&str, &str)] = &[
    (
        "alerting",
        "alerting integrations do not map; see governance.budget_alerts and alerts.spend_anomaly",
    ),
    (
        "store_model_in_db",
        "models live in the config file, which reloads without a restart",
    ),
    (
        "disable_spend_logs",
        "every request is recorded; records.store: false turns records off",
    ),
    (
        "proxy_batch_write_at",
        "records are written in batches by a background writer",
    ),
    (
        "custom_auth",
        "custom auth hooks do not map; keys are checked by Switchyard",
    ),
    ("enforce_user_param", "no equivalent setting"),
    ("key_management_system", VIRTUAL_KEYS),
    ("ui_username", "Switchyard has no admin UI"),
    ("ui_password", "Switchyard has no admin UI"),
];

pub fn import(text: &str) -> Result<Draft, String> {
    let root: Value =
        serde_saphyr::from_str(text).map_err(|e| format!("not a LiteLLM YAML file: {e}"))?;
    let mut root = Section::new("", Some(root))?;
    let mut draft = Draft::default();
    let mut router = Section::new("router_settings", root.take("router_settings"))?;
    let mut lsettings = Section::new("litellm_settings", root.take("litellm_settings"))?;
    let mut general = Section::new("general_settings", root.take("general_settings"))?;
    let entries = match root.take("model_list") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err("model_list: expected a list of deployments".into()),
        None => Vec::new(),
    };
    root.finish(ROOT_KEYS, &mut draft);

    let settings = RouterSettings::read(&mut router, &mut lsettings, &mut draft)?;
    let mut providers = Providers::default();
    let mut groups: Vec<Group> = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let Some((name, d)) = read_deployment(i, entry, &mut providers, &mut draft)? else {
            continue;
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.deployments.push(d),
            None => groups.push(Group {
                name,
                deployments: vec![d],
            }),
        }
    }
    if groups.is_empty() {
        draft.header.push(
            "The source has no usable model_list entry: this config serves no models.".into(),
        );
    }

    let mut doc = Map::new();
    let parallel = auth_and_database(&mut general, &mut doc, &mut draft);
    if let Some(url) = settings.redis_url.clone() {
        doc.map_mut("redis").put_noted(
            "url",
            Node::str(url),
            "router_settings.redis_*: shares rate-limit counters between replicas, as LiteLLM's Redis shares rpm/tpm usage",
        );
    }
    general.finish(GENERAL_KEYS, &mut draft);

    let plan = Plan::new(&groups, &settings, &mut draft);
    doc.put("providers", providers.into_map());
    let (models, quotas) = models_section(&groups, &plan, settings.drop_params);
    doc.put("models", models);
    let routes = routes_section(&groups, &plan, &settings, &mut draft);
    if !routes.is_empty() {
        doc.put("routes", routes);
    }
    if let Some(r) = resilience_section(&settings) {
        doc.put("resilience", r);
    }
    let budget = general_budget(&mut lsettings, &mut draft);
    let governance = governance_section(quotas, budget, parallel);
    if !governance.is_empty() {
        doc.put("governance", governance);
    }
    lsettings.finish(LITELLM_KEYS, &mut draft);
    router.finish(ROUTER_KEYS, &mut draft);
    draft.doc = doc;
    Ok(draft)
}

/// One `model_name` and its deployments, in the order of `model_list`.
struct Group {
    name: String,
    deployments: Vec<Deployment>,
}

/// One `model_list` entry.
struct Deployment {
    provider: String,
    upstream: String,
    weight: Option<f64>,
    order: Option<i64>,
    rpm: Option<f64>,
    tpm: Option<f64>,
    max_parallel: Option<f64>,
    price: Option<(f64, f64)>,
    /// The window and where it came from (for the comment).
    context_window: Option<(u32, &'static str)>,
    embeddings: bool,
}

/// `router_settings` and the `litellm_settings` that do the same (router_settings wins).
#[derive(Default)]
struct RouterSettings {
    strategy: Option<String>,
    num_retries: Option<u32>,
    timeout: Option<f64>,
    allowed_fails: Option<u32>,
    cooldown_time: Option<f64>,
    fallbacks: Vec<(String, Vec<String>)>,
    context_fallbacks: Vec<(String, Vec<String>)>,
    policy_fallbacks: Vec<(String, Vec<String>)>,
    default_fallbacks: Vec<String>,
    aliases: Vec<(String, String)>,
    drop_params: bool,
    redis_url: Option<String>,
}

impl RouterSettings {
    fn read(r: &mut Section, l: &mut Section, draft: &mut Draft) -> Result<Self, String> {
        let mut s = RouterSettings {
            strategy: r.take_str("routing_strategy"),
            num_retries: either_f64(r, l, "num_retries", "num_retries").map(|n| n as u32),
            timeout: either_f64(r, l, "timeout", "request_timeout"),
            allowed_fails: r.take_f64("allowed_fails").map(|n| n as u32),
            cooldown_time: r.take_f64("cooldown_time"),
            drop_params: l.take_bool("drop_params").unwrap_or(false),
            ..Default::default()
        };
        for (field, key) in [
            (&mut s.fallbacks, "fallbacks"),
            (&mut s.context_fallbacks, "context_window_fallbacks"),
            (&mut s.policy_fallbacks, "content_policy_fallbacks"),
        ] {
            for section in [&mut *r, &mut *l] {
                if let Some(v) = section.take(key) {
                    field.extend(fallback_pairs(&section.key(key), v, draft));
                }
            }
        }
        for section in [&mut *r, &mut *l] {
            if let Some(Value::Array(list)) = section.take("default_fallbacks") {
                s.default_fallbacks
                    .extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
            }
        }
        if let Some(Value::Object(aliases)) = r.take("model_group_alias") {
            for (alias, target) in aliases {
                match target {
                    Value::String(t) => s.aliases.push((alias, t)),
                    Value::Object(mut o) => match o.remove("model") {
                        Some(Value::String(t)) => s.aliases.push((alias, t)),
                        _ => draft.drop(
                            format!("router_settings.model_group_alias.{alias}"),
                            "no model named",
                        ),
                    },
                    _ => draft.drop(
                        format!("router_settings.model_group_alias.{alias}"),
                        "expected a model_name",
                    ),
                }
            }
        }
        s.redis_url = redis_url(r);
        Ok(s)
    }
}

fn either_f64(r: &mut Section, l: &mut Section, rkey: &str, lkey: &str) -> Option<f64> {
    let from_router = r.take_f64(rkey);
    let from_litellm = l.take_f64(lkey);
    from_router.or(from_litellm)
}

/// `[{"gpt-4o": ["claude"]}, …]` as pairs.
fn fallback_pairs(path: &str, v: Value, draft: &mut Draft) -> Vec<(String, Vec<String>)> {
    let Value::Array(items) = v else {
        draft.drop(path, "expected a list of {model_name: [fallbacks]}");
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for item in items {
        let Value::Object(o) = item else { continue };
        for (from, to) in o {
            let to: Vec<String> = match to {
                Value::Array(l) => l
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Value::String(s) => vec![s],
                _ => Vec::new(),
            };
            pairs.push((from, to));
        }
    }
    pairs
}

/// `redis_url`, or `redis_host` / `redis_port` / `redis_password`, as one redis:// URL.
fn redis_url(r: &mut Section) -> Option<String> {
    if let Some(url) = r.take_str("redis_url") {
        return Some(env_value(&url));
    }
    let host = r.take_str("redis_host").map(|h| env_value(&h))?;
    let port = r
        .take_str("redis_port")
        .map(|p| env_value(&p))
        .unwrap_or_else(|| "6379".into());
    let auth = r
        .take_str("redis_password")
        .map(|p| format!(":{}@", env_value(&p)))
        .unwrap_or_default();
    Some(format!("redis://{auth}{host}:{port}"))
}

/// A LiteLLM value: `os.environ/NAME` reads the environment, as `${NAME}` does in Switchyard.
fn env_value(s: &str) -> String {
    match s.strip_prefix("os.environ/") {
        Some(name) => format!("${{{name}}}"),
        None => literal(s),
    }
}

const PARAMS_KEYS: &[(&str, &str)] = &[
    (
        "stream_timeout",
        "a separate stream timeout per deployment does not map; resilience.retry.ttft_timeout bounds the first chunk of every stream",
    ),
    (
        "max_retries",
        "retries per deployment do not map; resilience.retry applies to every route",
    ),
];

fn read_deployment(
    i: usize,
    entry: Value,
    providers: &mut Providers,
    draft: &mut Draft,
) -> Result<Option<(String, Deployment)>, String> {
    let mut e = Section::new(format!("model_list[{i}]"), Some(entry))?;
    let Some(name) = e.take_str("model_name") else {
        draft.drop(e.path(), "an entry without model_name cannot be called");
        return Ok(None);
    };
    if name.contains('*') {
        draft.drop(
            e.path(),
            format!(
                "model_name \"{name}\": wildcard routing does not map; give each model a model_name"
            ),
        );
        return Ok(None);
    }
    let mut p = Section::new(e.key("litellm_params"), e.take("litellm_params"))?;
    let mut info = Section::new(e.key("model_info"), e.take("model_info"))?;
    e.finish(&[], draft);
    let Some(model) = p.take_str("model") else {
        draft.drop(
            p.path(),
            "no litellm_params.model: the deployment is not carried over",
        );
        return Ok(None);
    };
    let Some(endpoint) = provider_settings(&model, &mut p, draft) else {
        draft.drop(
            p.key("model"),
            format!("\"{model}\": this provider has no Switchyard kind; the deployment is not carried over"),
        );
        p.finish(&[], draft);
        return Ok(None);
    };
    let provider = providers.name_for(&endpoint.kind.replace('_', "-"), endpoint.settings);
    let input = p
        .take_f64("input_cost_per_token")
        .or(info.take_f64("input_cost_per_token"));
    let output = p
        .take_f64("output_cost_per_token")
        .or(info.take_f64("output_cost_per_token"));
    let window =
        info.take_f64("max_input_tokens")
            .map(|w| (w as u32, "model_info.max_input_tokens"))
            .or(info
                .take_f64("max_tokens")
                .map(|w| (w as u32, "model_info.max_tokens")))
            .or(known_context_window(&endpoint.upstream)
                .map(|w| (w, "the known window of this model")));
    let embeddings = info.take_str("mode").as_deref() == Some("embedding");
    let d = Deployment {
        provider,
        upstream: endpoint.upstream,
        weight: p.take_f64("weight"),
        order: p.take_f64("order").map(|o| o as i64),
        rpm: p.take_f64("rpm"),
        tpm: p.take_f64("tpm"),
        max_parallel: p.take_f64("max_parallel_requests"),
        price: (input.is_some() || output.is_some())
            .then(|| (input.unwrap_or(0.0), output.unwrap_or(0.0))),
        context_window: window,
        embeddings,
    };
    for harmless in ["id", "base_model", "description"] {
        info.take(harmless);
    }
    p.finish(PARAMS_KEYS, draft);
    info.finish(&[], draft);
    Ok(Some((name, d)))
}

/// A deployment's provider settings and upstream model name.
struct Endpoint {
    kind: &'static str,
    upstream: String,
    settings: Map,
}

/// The provider kind from `custom_llm_provider` or the `provider/` prefix of the model, with
/// LiteLLM's defaults for what the deployment leaves out (keys from the environment variables
/// LiteLLM reads).
fn provider_settings(model: &str, p: &mut Section, draft: &mut Draft) -> Option<Endpoint> {
    let custom = p.take_str("custom_llm_provider");
    let (prefix, rest) = match (&custom, model.split_once('/')) {
        (Some(c), _) => (
            c.as_str(),
            model.strip_prefix(&format!("{c}/")).unwrap_or(model),
        ),
        (None, Some((pre, rest))) => (pre, rest),
        (None, None) => (infer_prefix(model)?, model),
    };
    let api_base = p.take_str("api_base").map(|b| env_value(&b));
    let kind = match prefix {
        "openai" | "text-completion-openai" => match &api_base {
            // LiteLLM's way to reach an OpenAI-compatible server is openai/ with an api_base.
            Some(b) if !b.contains("api.openai.com") => "openai_compatible",
            _ => "openai",
        },
        "azure" => "azure",
        "anthropic" => "anthropic",
        "gemini" => "gemini",
        "vertex_ai" | "vertex_ai_beta" => "vertex",
        "bedrock" => "bedrock",
        "ollama" | "ollama_chat" => "ollama",
        "hosted_vllm" | "vllm" => "vllm",
        "groq" => "groq",
        "together_ai" => "together",
        "mistral" => "mistral",
        "deepseek" => "deepseek",
        "openrouter" => "openrouter",
        "xai" => "xai",
        _ => return None,
    };
    let mut s = Map::new();
    s.put("kind", Node::str(kind));
    let base = match (kind, api_base) {
        // LiteLLM's ollama api_base is the server root; Switchyard speaks its OpenAI API.
        ("ollama", Some(b)) => Some(format!("{}/v1", b.trim_end_matches('/'))),
        ("azure", None) => Some("${AZURE_API_BASE}".into()),
        (_, b) => b,
    };
    if let Some(b) = base {
        s.put("base_url", Node::str(b));
    }
    put_api_key(
        &mut s,
        kind,
        p.take_str("api_key").map(|k| env_value(&k)),
        None,
        "no api_key in the source: LiteLLM reads this variable",
    );
    if kind == "azure" {
        let v = p
            .take_str("api_version")
            .map(|v| env_value(&v))
            .unwrap_or_else(|| "${AZURE_API_VERSION}".into());
        s.put("api_version", Node::str(v));
    }
    if let Some(org) = p.take_str("organization") {
        s.map_mut("headers")
            .put("OpenAI-Organization", Node::str(env_value(&org)));
    }
    if let Some(Value::Object(h)) = p.take("extra_headers") {
        for (k, v) in h {
            let v = v.as_str().map(env_value).unwrap_or_else(|| v.to_string());
            s.map_mut("headers").put(k, Node::str(v));
        }
    }
    if let Some(t) = p.take_f64("timeout") {
        s.map_mut("timeouts").put_noted(
            "first_byte",
            Node::str(seconds(t)),
            "litellm_params.timeout: for a call that is not streamed, the whole generation",
        );
    }
    cloud_settings(kind, p, &mut s, draft);
    let upstream = match kind {
        // bedrock/converse/MODEL and bedrock/invoke/MODEL name the API, not the model.
        "bedrock" => rest
            .trim_start_matches("converse/")
            .trim_start_matches("invoke/")
            .to_owned(),
        _ => rest.to_owned(),
    };
    Some(Endpoint {
        kind,
        upstream,
        settings: s,
    })
}

/// Bedrock's region and credentials, Vertex's project, location and credentials file.
fn cloud_settings(kind: &str, p: &mut Section, s: &mut Map, draft: &mut Draft) {
    if kind == "bedrock" {
        let from = [
            "aws_region_name",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
        ];
        put_aws(s, p, from, env_value);
    }
    if kind == "vertex" {
        let project = p.take_str("vertex_project").map(|v| env_value(&v));
        let location = p.take_str("vertex_location").map(|v| env_value(&v));
        let mut vertex = vertex_block(project, location);
        match p.take_str("vertex_credentials") {
            Some(c) if c.trim_start().starts_with('{') => draft.drop(
                p.key("vertex_credentials"),
                "inline credentials JSON: save it to a file and set vertex.credentials_file",
            ),
            Some(c) => {
                vertex.put("credentials_file", Node::str(env_value(&c)));
            }
            None => {
                vertex.put(
                    "credentials_file",
                    Node::str("${GOOGLE_APPLICATION_CREDENTIALS}"),
                );
            }
        }
        s.put("vertex", vertex);
    }
}

/// LiteLLM guesses the provider of a bare model name; so do we, for the common ones.
fn infer_prefix(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    if m.starts_with("gpt-")
        || m.starts_with("o1")
        || m.starts_with("o3")
        || m.starts_with("o4")
        || m.starts_with("text-embedding")
        || m.starts_with("chatgpt")
    {
        Some("openai")
    } else if m.starts_with("claude") {
        Some("anthropic")
    } else if m.starts_with("gemini") {
        Some("gemini")
    } else {
        None
    }
}

/// Writes `auth` and `database`; returns the gateway-wide parallel-request cap, if any.
fn auth_and_database(general: &mut Section, doc: &mut Map, draft: &mut Draft) -> Option<f64> {
    if let Some(key) = general.take_str("master_key") {
        let key = env_value(&key);
        let auth = doc.map_mut("auth");
        auth.put_noted(
            "admin_keys",
            Node::strs([&key]),
            "general_settings.master_key: manages keys through the admin API",
        );
        auth.put_noted(
            "api_keys",
            Node::strs([&key]),
            "LiteLLM's master key also calls models; drop it here to make it admin-only",
        );
        draft.header.push(
            "The master key is carried over; LiteLLM's virtual keys are in its database and are not: \
             issue new ones with `switchyard keys create`."
                .into(),
        );
    }
    if let Some(url) = general.take_str("database_url") {
        doc.map_mut("database").put_noted(
            "url",
            Node::str(env_value(&url)),
            "general_settings.database_url: Switchyard creates its own tables there (LiteLLM's are left alone)",
        );
    }
    let global = general.take_f64("global_max_parallel_requests");
    let per_key = general.take_f64("max_parallel_requests");
    global.or(per_key)
}

/// `litellm_settings.max_budget` (+ `budget_duration`) as a budget on the whole gateway.
fn general_budget(l: &mut Section, draft: &mut Draft) -> Option<(f64, &'static str, String)> {
    let usd = l.take_f64("max_budget")?;
    let duration = l.take_str("budget_duration");
    let period = match duration.as_deref().map(str::trim) {
        None => "total",
        Some("1d" | "24h") => "day",
        Some("7d" | "1w") => "week",
        Some("30d" | "1mo") => "month",
        Some(other) => {
            draft.drop(
                "litellm_settings.max_budget",
                format!(
                    "budget_duration {other} does not map: Switchyard's budget periods are day, week, month and total"
                ),
            );
            return None;
        }
    };
    let note = match duration {
        Some(d) => format!(
            "litellm_settings.max_budget every {d} (Switchyard resets budgets on UTC calendar days, weeks and months)"
        ),
        None => "litellm_settings.max_budget".into(),
    };
    Some((usd, period, note))
}
