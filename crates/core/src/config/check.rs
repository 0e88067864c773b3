//! The semantic checks of a parsed [`Config`]: cross-references (route → model → provider,
//! guardrails, downgrade targets) and values that parse but cannot work. Every check runs and
//! adds what it finds to one [`Problems`], so a file's mistakes are all reported together.

use super::problems::Problems;
use super::routes::check_retry;
use super::{Config, ConfigError, OverLimit, ProviderConfig, ProviderKind, Strategy, TargetConfig};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.server.check(&mut problems);
        self.telemetry.check(&mut problems);
        self.alerts.check(&mut problems);
        self.check_console(&mut problems);
        self.responses.check(&self.database.url, &mut problems);
        let semantic_routes: Vec<&str> = (self.routes.iter())
            .filter(|(_, r)| r.cache.as_ref().is_some_and(|c| c.semantic))
            .map(|(name, _)| name.as_str())
            .collect();
        let has_redis = self.redis.url.is_some();
        (self.cache).check(has_redis, &semantic_routes, &mut problems);
        self.guardrails.check(
            self.routes
                .iter()
                .map(|(name, r)| (name.as_str(), r.guardrails.as_slice())),
            &mut problems,
        );
        for (name, p) in &self.providers {
            check_provider(&format!("providers.{name}"), p, &mut problems);
        }
        for (name, m) in &self.models {
            if !self.providers.contains_key(&m.provider) {
                problems.add(
                    format!("models.{name}.provider"),
                    format!(
                        "unknown provider \"{}\"; providers are: {}",
                        m.provider,
                        list(self.providers.keys())
                    ),
                );
            }
        }
        self.check_routes(&mut problems);
        self.check_over_limit(
            "governance.over_limit",
            &self.governance.over_limit,
            &mut problems,
        );
        let callable = |n: &str| self.models.contains_key(n) || self.routes.contains_key(n);
        self.governance.validate(&callable, &mut problems);
        if self.redis.url.as_deref().is_some_and(|u| {
            !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://"))
        }) {
            problems.add(
                "redis.url",
                "must be a redis://host:port URL (rediss:// for TLS)",
            );
        }
        check_retry("resilience.retry", &self.resilience.retry, &mut problems);
        let b = &self.resilience.breaker;
        if !(b.error_rate > 0.0 && b.error_rate <= 1.0) {
            problems.add(
                "resilience.breaker.error_rate",
                "must be above 0.0 and at most 1.0, e.g. 0.5",
            );
        }
        if b.consecutive_failures == 0 {
            problems.add(
                "resilience.breaker.consecutive_failures",
                "must be at least 1, e.g. 5",
            );
        }
        problems.finish()
    }

    fn check_routes(&self, problems: &mut Problems) {
        for (name, r) in &self.routes {
            let path = format!("routes.{name}");
            if self.models.contains_key(name) {
                problems.add(
                    &path,
                    "a model has the same name: rename the route or the model",
                );
            }
            self.check_targets(
                &format!("{path}.targets"),
                r.targets.iter().map(TargetConfig::model),
                problems,
            );
            if r.strategy == Strategy::Weighted && r.targets.iter().all(|t| t.weight() == 0) {
                problems.add(
                    format!("{path}.targets"),
                    "a weighted route needs a target with weight > 0",
                );
            }
            for (i, rule) in r.rules.iter().enumerate() {
                self.check_targets(
                    &format!("{path}.rules[{i}].targets"),
                    rule.targets.iter().map(TargetConfig::model),
                    problems,
                );
            }
            for (kind, list) in [
                ("context_window", &r.fallbacks.context_window),
                ("content_policy", &r.fallbacks.content_policy),
            ] {
                if !list.is_empty() {
                    self.check_targets(
                        &format!("{path}.fallbacks.{kind}"),
                        list.iter().map(String::as_str),
                        problems,
                    );
                }
            }
            if let Some(retry) = &r.retry {
                check_retry(&format!("{path}.retry"), retry, problems);
            }
            if let Some(o) = &r.over_limit {
                self.check_over_limit(&format!("{path}.over_limit"), o, problems);
            }
        }
    }

    fn check_over_limit(&self, path: &str, o: &OverLimit, problems: &mut Problems) {
        use crate::admit::config::Policy;
        match (&o.policy, &o.downgrade_to) {
            (Policy::Downgrade, None) => problems.add(
                format!("{path}.downgrade_to"),
                "policy downgrade needs the cheaper model or route to serve from",
            ),
            (_, Some(m)) if !self.models.contains_key(m) && !self.routes.contains_key(m) => {
                problems.add(
                    format!("{path}.downgrade_to"),
                    format!(
                        "unknown model or route \"{m}\"; models are: {}",
                        list(self.models.keys())
                    ),
                )
            }
            _ => {}
        }
    }

    fn check_targets<'a>(
        &self,
        path: &str,
        targets: impl Iterator<Item = &'a str>,
        problems: &mut Problems,
    ) {
        let mut n = 0;
        for (i, t) in targets.enumerate() {
            n += 1;
            if !self.models.contains_key(t) {
                problems.add(
                    format!("{path}[{i}]"),
                    format!(
                        "unknown model \"{t}\"; models are: {}",
                        list(self.models.keys())
                    ),
                );
            }
        }
        if n == 0 {
            problems.add(path, "needs at least one model");
        }
    }
}

/// One provider's URL, keys and kind-specific sections.
fn check_provider(path: &str, p: &ProviderConfig, problems: &mut Problems) {
    let base = p.base_url.as_deref().or(p.kind.default_base_url());
    match base {
        None if p.kind != ProviderKind::Mock => problems.add(
            format!("{path}.base_url"),
            format!("required for kind {}: set the provider's URL", p.kind),
        ),
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => problems.add(
            format!("{path}.base_url"),
            format!("\"{url}\" is not an http:// or https:// URL"),
        ),
        _ => {}
    }
    if p.keys().iter().any(|k| k.is_empty()) {
        problems.add(
            format!("{path}.api_key"),
            "is empty: is its environment variable set to a value?",
        );
    }
    if p.keys().is_empty() && !p.kind.key_optional() {
        problems.add(
            format!("{path}.api_key"),
            format!(
                "kind {} needs an API key: set api_key: ${{YOUR_KEY_VAR}}",
                p.kind
            ),
        );
    }
    if p.kind == ProviderKind::Azure && p.api_version.is_none() {
        problems.add(
            format!("{path}.api_version"),
            "Azure OpenAI needs an api-version, e.g. api_version: \"2024-10-21\"",
        );
    }
    p.check_kind_settings(path, problems);
    if p.mock.is_some() && p.kind != ProviderKind::Mock {
        problems.add(
            format!("{path}.mock"),
            "only a kind: mock provider takes mock settings",
        );
    }
    if let Some(m) = &p.mock {
        if !(0.0..=1.0).contains(&m.failure_rate) {
            problems.add(
                format!("{path}.mock.failure_rate"),
                "must be between 0.0 and 1.0",
            );
        }
        if m.chunk_words == 0 {
            problems.add(format!("{path}.mock.chunk_words"), "must be at least 1");
        }
        if !(400..=599).contains(&m.failure_status) {
            problems.add(
                format!("{path}.mock.failure_status"),
                "must be an HTTP error status (400–599)",
            );
        }
    }
}

pub(super) fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "(none)".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistakes_in_several_sections_are_all_reported() {
        let yaml = "
server: { max_in_flight: 0 }
providers: { demo: { kind: mock, mock: { failure_rate: 2 } } }
models: { a: { provider: nope } }
routes: { smart: { targets: [a, gpt-5o] } }
guardrails: { apply: [no-such-guard] }
";
        let e = Config::from_yaml(yaml, &|_| None).unwrap_err();
        let text = e.to_string();
        for path in [
            "server.max_in_flight:",
            "providers.demo.mock.failure_rate:",
            "models.a.provider: unknown provider \"nope\"",
            "routes.smart.targets[1]: unknown model \"gpt-5o\"",
            "guardrails.apply[0]: unknown guardrail \"no-such-guard\"",
        ] {
            assert!(text.contains(path), "{path} missing from:\n{text}");
        }
        assert_eq!(e.problems().len(), 5, "{text}");
        assert!(text.starts_with("5 problems:\n"), "{text}");
    }

    #[test]
    fn an_unset_variable_does_not_hide_the_other_mistakes() {
        let yaml = "
providers: { p: { kind: openai, api_key: \"${NOPE}\", base_url: \"${NOPE_URL}\" } }
models: { m: { provider: q } }
";
        let e = Config::from_yaml(yaml, &|_| None).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.problems().len(), 3, "{text}");
        assert!(
            text.contains("providers.p.api_key: environment variable NOPE"),
            "{text}"
        );
        assert!(
            text.contains("providers.p.base_url: environment variable NOPE_URL"),
            "{text}"
        );
        assert!(
            text.contains("models.m.provider: unknown provider \"q\""),
            "{text}"
        );
    }

    #[test]
    fn kinds_are_named_as_the_config_spells_them() {
        let e = Config::from_yaml(
            "providers: { a: { kind: openai }, b: { kind: openai_compatible } }",
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("kind openai needs an API key"), "{e}");
        assert!(e.contains("required for kind openai_compatible"), "{e}");
    }
}
