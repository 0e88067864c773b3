//! Tests of the importers: every sample under examples/import/ imports to a config that loads
//! and builds as `check-config` does, the mappings land where docs/import.md says, and what does
//! not carry over is listed.

use std::path::Path;

use serde_json::Value;
use switchyard_core::Config;

use super::{Imported, Source, import, integer_weights};

const LB: &str = include_str!("../../../../examples/import/litellm-load-balancing.yaml");
const FALLBACKS: &str = include_str!("../../../../examples/import/litellm-fallbacks.yaml");
const KEYS: &str = include_str!("../../../../examples/import/litellm-keys-and-database.yaml");
const PK_FALLBACK: &str = include_str!("../../../../examples/import/portkey-fallback.json");
const PK_LB: &str = include_str!("../../../../examples/import/portkey-loadbalance.json");

/// Imports `text`, checks the result as `check-config` does (every `${VAR}` set), and returns
/// the import and the loaded config as JSON.
fn imported(from: Source, text: &str, file: &str) -> (Imported, Value) {
    let out = import(from, text, Path::new(file)).expect("imports");
    let env = |name: &str| {
        Some(match name {
            "DATABASE_URL" => "postgres://u:p@db/litellm".to_owned(),
            _ => format!("value-of-{name}"),
        })
    };
    let config = Config::from_yaml(&out.yaml, &env)
        .unwrap_or_else(|e| panic!("{file}: the import does not load: {e}\n{}", out.yaml));
    switchyard_core::provider::build_all(&config)
        .unwrap_or_else(|e| panic!("{file}: providers do not build: {e}"));
    let raw: Value = serde_saphyr::from_str(&out.yaml).unwrap();
    (out, raw)
}

fn dropped_keys(out: &Imported) -> Vec<&str> {
    out.dropped.iter().map(|d| d.key.as_str()).collect()
}

#[test]
fn litellm_load_balancing_keeps_weights_quotas_and_router_settings() {
    let (out, c) = imported(Source::Litellm, LB, "litellm-load-balancing.yaml");
    let route = &c["routes"]["gpt-4o"];
    assert_eq!(route["strategy"], "weighted");
    let weights: Vec<(&str, u64)> = route["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["model"].as_str().unwrap(), t["weight"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        weights,
        [
            ("gpt-4o-azure", 6),
            ("gpt-4o-azure-2", 3),
            ("gpt-4o-openai", 1)
        ]
    );
    assert_eq!(c["providers"]["azure"]["kind"], "azure");
    assert_eq!(
        c["providers"]["azure"]["api_key"],
        "${AZURE_EASTUS_API_KEY}"
    );
    assert_eq!(c["providers"]["azure"]["api_version"], "2024-10-21");
    assert_eq!(c["models"]["gpt-4o-azure"]["upstream"], "gpt-4o-eastus");
    assert_eq!(c["governance"]["models"]["gpt-4o-azure"]["rpm"], 600);
    assert_eq!(c["governance"]["models"]["gpt-4o-azure"]["tpm"], 400000);
    assert_eq!(
        c["models"]["text-embedding-3-small"]["capabilities"][0],
        "embeddings"
    );
    assert_eq!(c["resilience"]["retry"]["max_attempts"], 3);
    assert_eq!(c["resilience"]["retry"]["attempt_timeout"], "30s");
    assert_eq!(c["resilience"]["breaker"]["consecutive_failures"], 4);
    assert_eq!(c["resilience"]["breaker"]["cooldown"], "60s");
    assert_eq!(route["drop_unsupported_params"], true);
    assert_eq!(
        c["redis"]["url"],
        "redis://:${REDIS_PASSWORD}@${REDIS_HOST}:${REDIS_PORT}"
    );
    assert_eq!(
        dropped_keys(&out),
        [
            "litellm_settings.cache",
            "litellm_settings.cache_params",
            "router_settings.enable_pre_call_checks"
        ]
    );
    assert!(
        out.yaml
            .starts_with("# Imported from the LiteLLM proxy config")
    );
    assert!(
        out.yaml
            .contains("# Not carried over:\n#   litellm_settings.cache — ")
    );
}

#[test]
fn litellm_fallbacks_become_targets_and_classified_fallbacks() {
    let (out, c) = imported(Source::Litellm, FALLBACKS, "litellm-fallbacks.yaml");
    let route = &c["routes"]["gpt-3.5-turbo"];
    assert_eq!(
        route["targets"],
        serde_json::json!(["gpt-3.5-turbo-openai"])
    );
    assert_eq!(
        route["fallbacks"]["context_window"],
        serde_json::json!(["gpt-4o-openai"])
    );
    // The context-window fallback works only with known, larger windows.
    assert_eq!(c["models"]["gpt-3.5-turbo-openai"]["context_window"], 16385);
    assert_eq!(c["models"]["gpt-4o-openai"]["context_window"], 128000);
    let route = &c["routes"]["gpt-4o"];
    assert_eq!(route["strategy"], "ordered");
    assert_eq!(
        route["targets"],
        serde_json::json!(["gpt-4o-openai", "claude-sonnet"])
    );
    assert_eq!(
        route["fallbacks"]["content_policy"],
        serde_json::json!(["claude-sonnet"])
    );
    assert_eq!(c["models"]["gpt-4o-openai"]["price"]["input"], 2.5);
    assert_eq!(c["models"]["gpt-4o-openai"]["price"]["output"], 10.0);
    assert_eq!(c["providers"]["vllm"]["kind"], "vllm");
    assert_eq!(c["providers"]["vllm"]["timeouts"]["first_byte"], "120s");
    // Every target of the route with fallbacks gets its turn within the attempts.
    assert_eq!(route["retry"]["max_attempts"], 4);
    assert_eq!(c["resilience"]["retry"]["attempt_timeout"], "60s");
    assert_eq!(
        dropped_keys(&out),
        [
            "litellm_settings.success_callback",
            "router_settings.retry_policy"
        ]
    );
}

#[test]
fn litellm_master_key_database_env_and_budget() {
    let (out, c) = imported(Source::Litellm, KEYS, "litellm-keys-and-database.yaml");
    assert_eq!(c["auth"]["admin_keys"][0], "${LITELLM_MASTER_KEY}");
    assert_eq!(c["auth"]["api_keys"][0], "${LITELLM_MASTER_KEY}");
    assert_eq!(c["database"]["url"], "${DATABASE_URL}");
    assert_eq!(
        c["providers"]["anthropic"]["api_key"],
        "${ANTHROPIC_API_KEY}"
    );
    assert_eq!(
        c["providers"]["ollama"]["base_url"],
        "http://localhost:11434/v1"
    );
    assert_eq!(c["governance"]["models"]["claude-haiku"]["rpm"], 1000);
    assert_eq!(c["governance"]["models"]["llama3"]["max_parallel"], 4);
    let budget = &c["governance"]["global"]["budgets"][0];
    assert_eq!(
        (budget["usd"].as_f64(), budget["period"].as_str()),
        (Some(500.0), Some("month"))
    );
    let keys = dropped_keys(&out);
    for expected in [
        "model_list[3].litellm_params.temperature",
        "general_settings.alerting",
        "general_settings.store_model_in_db",
        "litellm_settings.default_key_generate_params",
        "litellm_settings.default_team_settings",
        "litellm_settings.json_logs",
    ] {
        assert!(keys.contains(&expected), "{expected} not in {keys:?}");
    }
    assert!(out.yaml.contains("switchyard keys create"));
}

#[test]
fn litellm_strategies_map_to_route_strategies() {
    for (litellm, switchyard) in [
        ("least-busy", "least_busy"),
        ("latency-based-routing", "lowest_latency"),
        ("cost-based-routing", "lowest_cost"),
        ("usage-based-routing-v2", "least_busy"),
    ] {
        let text = format!(
            "model_list:\n  - {{model_name: m, litellm_params: {{model: openai/a}}}}\n  - {{model_name: m, litellm_params: {{model: openai/b}}}}\nrouter_settings: {{routing_strategy: {litellm}}}\n"
        );
        let (_, c) = imported(Source::Litellm, &text, "s.yaml");
        assert_eq!(c["routes"]["m"]["strategy"], switchyard, "{litellm}");
    }
}

#[test]
fn litellm_order_and_unknown_settings() {
    let text = "model_list:\n  - {model_name: m, litellm_params: {model: openai/a, order: 2}}\n  - {model_name: m, litellm_params: {model: openai/b, order: 1}}\n  - {model_name: x, litellm_params: {model: sagemaker/foo}}\n  - {model_name: 'openai/*', litellm_params: {model: 'openai/*'}}\nrouter_settings: {routing_strategy: simple-shuffle, shiny_new_knob: 3}\n";
    let (out, c) = imported(Source::Litellm, text, "s.yaml");
    assert_eq!(c["routes"]["m"]["strategy"], "ordered");
    assert_eq!(
        c["routes"]["m"]["targets"],
        serde_json::json!(["m-openai-2", "m-openai"])
    );
    let keys = dropped_keys(&out);
    assert!(
        keys.contains(&"model_list[2].litellm_params.model"),
        "{keys:?}"
    );
    assert!(keys.contains(&"router_settings.shiny_new_knob"), "{keys:?}");
    assert!(keys.contains(&"model_list[3]"), "{keys:?}");
}

#[test]
fn portkey_fallback_keeps_order_retries_and_timeout() {
    let (out, c) = imported(Source::Portkey, PK_FALLBACK, "portkey-fallback.json");
    let route = &c["routes"]["portkey-fallback"];
    assert_eq!(route["strategy"], "ordered");
    assert_eq!(
        route["targets"],
        serde_json::json!(["gpt-4o", "claude-sonnet-4-5"])
    );
    assert_eq!(route["retry"]["retries_per_target"], 2);
    assert_eq!(route["retry"]["max_attempts"], 6);
    assert_eq!(route["retry"]["attempt_timeout"], "30s");
    assert_eq!(
        c["providers"]["anthropic"]["api_key"],
        "${ANTHROPIC_API_KEY}"
    );
    assert_eq!(
        dropped_keys(&out),
        [
            "cache",
            "targets[1].override_params.max_tokens",
            "targets[1].virtual_key"
        ]
    );
}

#[test]
fn portkey_loadbalance_flattens_nested_targets_with_weights() {
    let (out, c) = imported(Source::Portkey, PK_LB, "portkey-loadbalance.json");
    let route = &c["routes"]["portkey-loadbalance"];
    assert_eq!(route["strategy"], "weighted");
    let weights: Vec<u64> = route["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [7, 2, 1, 0]);
    assert_eq!(
        c["providers"]["azure"]["base_url"],
        "https://contoso-eastus.openai.azure.com"
    );
    assert_eq!(c["models"]["gpt-4o-mini-2"]["upstream"], "gpt-4o-mini");
    assert_eq!(
        c["providers"]["openai-compatible"]["base_url"],
        "http://vllm.internal:8000/v1"
    );
    let keys = dropped_keys(&out);
    assert_eq!(keys, ["strategy.mode", "targets[2].strategy.mode"]);
}

#[test]
fn portkey_status_codes_map_to_error_classes() {
    let text = r#"{"strategy": {"mode": "fallback", "on_status_codes": [400, 429]},
        "targets": [{"provider": "openai", "api_key": "k", "override_params": {"model": "gpt-4o"}},
                    {"provider": "anthropic", "api_key": "k2", "override_params": {"model": "claude-sonnet-4-5"}}]}"#;
    let (out, c) = imported(Source::Portkey, text, "codes.json");
    let route = &c["routes"]["codes"];
    assert_eq!(
        route["fallbacks"]["context_window"],
        serde_json::json!(["claude-sonnet-4-5"])
    );
    assert_eq!(
        route["fallbacks"]["content_policy"],
        serde_json::json!(["claude-sonnet-4-5"])
    );
    let keys = dropped_keys(&out);
    assert!(keys.contains(&"strategy.on_status_codes: 400"), "{keys:?}");
    // 5xx are not listed, but Switchyard falls back on them: said, not hidden.
    let extra = out
        .dropped
        .iter()
        .find(|d| d.key == "strategy.on_status_codes")
        .unwrap();
    assert!(
        extra.reason.contains("500, 502, 503, 504"),
        "{}",
        extra.reason
    );
}

#[test]
fn portkey_conditional_keeps_the_default_target() {
    let text = r#"{"strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.plan": {"$eq": "pro"}}, "then": "big"}], "default": "small"},
        "targets": [{"name": "big", "provider": "openai", "api_key": "k", "override_params": {"model": "gpt-4o"}},
                    {"name": "small", "provider": "openai", "api_key": "k", "override_params": {"model": "gpt-4o-mini"}}]}"#;
    let (out, c) = imported(Source::Portkey, text, "cond.json");
    assert_eq!(
        c["routes"]["cond"]["targets"],
        serde_json::json!(["gpt-4o-mini"])
    );
    assert!(dropped_keys(&out).contains(&"strategy.conditions"));
}

#[test]
fn weights_become_small_integers_in_proportion() {
    assert_eq!(integer_weights(&[0.7, 0.2, 0.1]), [7, 2, 1]);
    assert_eq!(integer_weights(&[600.0, 300.0]), [2, 1]);
    assert_eq!(integer_weights(&[0.5, 0.0]), [1, 0]);
}
