//! Guard: the guardrails that screen what goes out to a provider and what comes back — personal
//! data, secrets, prompt injection, banned patterns, the answer's format, its grounding, an
//! external policy service — in-process, with predictable cost.
//!
//! [`GuardSet`] is built from the config (`guardrails:`, reloaded with it). For each request it
//! selects the guardrails that apply — `guardrails.apply`, then the route's, then those a key
//! names with a `guardrail:<name>` tag — into a [`Screen`], which lives as long as the request:
//! it screens the request ([`Screen::input`]), keeps the placeholders it put in ([`vault`]) so
//! that the answer can get the values back, screens the whole answer ([`Screen::output`]) or the
//! stream as it flows ([`stream::StreamScreen`], with a small sliding window), and lists every
//! action for the record — the guardrail, what it did, the category and how many, never a value.
//! The detectors themselves are pure functions over text ([`detect`]).

pub mod config;
pub mod detect;
pub mod format;
pub mod grounding;
pub mod stream;
pub mod text;
pub mod vault;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use switchyard_wire::openai::{ChatCompletionRequest, ChatCompletionResponse, Role};

use self::config::{Action, CheckConfig, GuardrailConfig, GuardrailsConfig, Side};
use self::detect::{Detector, Finding};
use self::vault::{Vault, count};
use self::webhook::{Decision, Webhook};
use crate::config::RouteConfig;
use crate::error::GatewayError;
use crate::provider::{BodyKind, RawResponse};

/// One configured guardrail.
pub struct Guard {
    pub name: Arc<str>,
    side: Side,
    action: Action,
    restore: bool,
    restrict_to: Option<String>,
    check: Check,
}

enum Check {
    /// Finds values in text: PII, secrets, banned patterns.
    Spans(Box<dyn Detector>),
    Injection {
        detector: detect::injection::InjectionDetector,
        threshold: f32,
        roles: Vec<String>,
    },
    Format,
    Grounding {
        threshold: f32,
    },
    Webhook(Webhook),
}

impl Guard {
    fn build(name: &str, config: &GuardrailConfig) -> Result<Guard, String> {
        let path = format!("guardrails.define.{name}");
        let check = match &config.check {
            CheckConfig::Pii { kinds, custom } => Check::Spans(Box::new(
                detect::PiiDetector::new(pii_config(kinds, custom, &path)?)
                    .map_err(|e| format!("{path}: {e}"))?,
            )),
            CheckConfig::Secrets => Check::Spans(Box::new(detect::SecretsDetector::new(
                detect::SecretsConfig::default(),
            ))),
            CheckConfig::Patterns { keywords, regexes } => {
                let config = detect::PatternsConfig {
                    keywords: vec![detect::KeywordRule {
                        name: name.to_owned(),
                        keywords: keywords.clone(),
                        whole_word: true,
                    }],
                    regexes: regexes
                        .iter()
                        .map(|pattern| detect::RegexRule {
                            name: name.to_owned(),
                            pattern: pattern.clone(),
                        })
                        .collect(),
                    case_sensitive: false,
                };
                Check::Spans(Box::new(
                    detect::BannedPatterns::new(&config).map_err(|e| format!("{path}: {e}"))?,
                ))
            }
            CheckConfig::Injection { threshold, roles } => Check::Injection {
                detector: detect::injection::InjectionDetector::new(),
                threshold: *threshold,
                roles: roles.clone(),
            },
            CheckConfig::Format => Check::Format,
            CheckConfig::Grounding { threshold } => Check::Grounding {
                threshold: *threshold,
            },
            CheckConfig::Webhook { url, timeout, fail } => {
                Check::Webhook(Webhook::new(url, *timeout, *fail)?)
            }
        };
        Ok(Guard {
            name: name.into(),
            side: config.on,
            action: config.action,
            restore: config.restore,
            restrict_to: config.restrict_to.clone(),
            check,
        })
    }

    fn span_detector(&self) -> Option<&dyn Detector> {
        match &self.check {
            Check::Spans(detector) => Some(detector.as_ref()),
            _ => None,
        }
    }

    fn blocked(&self, side: &str, category: &str, why: &str) -> GatewayError {
        GatewayError::new(
            400,
            "invalid_request_error",
            "guardrail_blocked",
            format!(
                "blocked by guardrail \"{}\" ({category}) on the {side}: {why}",
                self.name
            ),
        )
        .with_param("messages")
    }
}

/// The PII detector's settings from a guardrail's `kinds` (all when empty) and `custom`.
fn pii_config(
    kinds: &[String],
    custom: &BTreeMap<String, String>,
    path: &str,
) -> Result<detect::PiiConfig, String> {
    let mut config = detect::PiiConfig::default();
    if !kinds.is_empty() {
        let on = |k: &str| kinds.iter().any(|have| have == k);
        for kind in kinds {
            if !["email", "phone", "card", "ssn", "iban", "ip"].contains(&kind.as_str()) {
                return Err(format!(
                    "{path}.kinds: unknown kind \"{kind}\"; kinds are email, phone, card, ssn, iban, ip (add others under custom)"
                ));
            }
        }
        config.email = on("email");
        config.phone = on("phone");
        config.card = on("card");
        config.ssn = on("ssn");
        config.iban = on("iban");
        config.ip = on("ip");
    }
    config.custom = custom
        .iter()
        .map(|(name, pattern)| detect::CustomPattern::new(name.clone(), pattern.clone()))
        .collect();
    Ok(config)
}

/// Every guardrail of the config, and those that apply to every request.
#[derive(Default)]
pub struct GuardSet {
    defined: BTreeMap<String, Arc<Guard>>,
    apply: Vec<Arc<Guard>>,
    teams: BTreeMap<String, Vec<String>>,
    window: usize,
}

impl GuardSet {
    pub fn build(config: &GuardrailsConfig) -> Result<GuardSet, String> {
        let mut defined = BTreeMap::new();
        for (name, g) in &config.define {
            defined.insert(name.clone(), Arc::new(Guard::build(name, g)?));
        }
        let apply = config
            .apply
            .iter()
            .filter_map(|n| defined.get(n).cloned())
            .collect();
        Ok(GuardSet {
            defined,
            apply,
            teams: config.teams.clone(),
            window: config.stream_window,
        })
    }

    /// The guardrails for one request, in order, each once: every request's, the route's, the
    /// caller's team's, the caller's key's.
    pub fn select(
        &self,
        route: Option<&RouteConfig>,
        team: Option<&str>,
        key_tags: &[String],
    ) -> Screen {
        let mut guards: Vec<Arc<Guard>> = self.apply.clone();
        if self.defined.is_empty() {
            return Screen::new(guards, self.window);
        }
        let from_route = route.into_iter().flat_map(|r| r.guardrails.iter());
        let from_team = team.and_then(|t| self.teams.get(t)).into_iter().flatten();
        let from_key = key_tags.iter().filter_map(|t| t.strip_prefix("guardrail:"));
        let names = from_route
            .chain(from_team)
            .map(String::as_str)
            .chain(from_key);
        for name in names {
            if let Some(g) = self.defined.get(name)
                && !guards.iter().any(|have| Arc::ptr_eq(have, g))
            {
                guards.push(g.clone());
            }
        }
        Screen::new(guards, self.window)
    }
}

/// One guardrail action, for the request record: `guardrail:action:detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardAction {
    pub guardrail: Arc<str>,
    /// `redacted`, `blocked`, `flagged` (monitor), `restricted`, `scored`, `failed_open`.
    pub action: &'static str,
    /// The categories and counts (`email=2,card=1`), a score, or a signal: never a value.
    pub detail: String,
}

impl GuardAction {
    pub fn to_record(&self) -> String {
        format!("{}:{}:{}", self.guardrail, self.action, self.detail)
    }
}

/// The guardrails of one request and what they did.
pub struct Screen {
    guards: Vec<Arc<Guard>>,
    vault: Vault,
    actions: Vec<GuardAction>,
    window: usize,
}

impl Screen {
    fn new(guards: Vec<Arc<Guard>>, window: usize) -> Screen {
        Screen {
            guards,
            vault: Vault::default(),
            actions: Vec::new(),
            window,
        }
    }

    /// A screen with no guardrails: for answers that passed them when they were cached.
    pub(crate) fn none() -> Screen {
        Screen::new(Vec::new(), 0)
    }

    /// No guardrail applies: every stage can skip the guard entirely.
    pub fn is_empty(&self) -> bool {
        self.guards.is_empty()
    }

    /// Whether the answer is read (and maybe rewritten) before the client gets it: then it is
    /// decoded, and a stream goes through the sliding window.
    pub fn screens_output(&self) -> bool {
        self.vault.restores() || self.guards.iter().any(|g| g.side.output())
    }

    /// The actions so far, handed over for the record.
    pub fn take_actions(&mut self) -> Vec<GuardAction> {
        std::mem::take(&mut self.actions)
    }

    /// Whether a format guardrail applies and the request asked for JSON.
    pub fn checks_format(&self) -> bool {
        self.guards.iter().any(|g| matches!(g.check, Check::Format))
    }

    /// Records what the format guardrail did (the pipeline runs it: it may retry the call).
    pub fn note_format(&mut self, action: &'static str, detail: String) {
        if let Some(guard) = self
            .guards
            .iter()
            .find(|g| matches!(g.check, Check::Format))
        {
            let guard = guard.clone();
            self.act(&guard, action, detail);
        }
    }

    fn act(&mut self, guard: &Guard, action: &'static str, detail: String) {
        self.actions.push(GuardAction {
            guardrail: guard.name.clone(),
            action,
            detail,
        });
    }

    /// Screens the request before it leaves. Redaction rewrites it in place (and clears the
    /// client's native body, which still holds the values). Returns the model tag a `restrict`
    /// guardrail limits the request to, if one found something.
    pub async fn input(
        &mut self,
        request: &mut ChatCompletionRequest,
    ) -> Result<Option<String>, GatewayError> {
        let mut restricted = None;
        let guards: Vec<Arc<Guard>> = self
            .guards
            .iter()
            .filter(|g| g.side.input())
            .cloned()
            .collect();
        for guard in guards {
            let found = match &guard.check {
                Check::Spans(detector) => self.spans_in_request(&guard, detector.as_ref(), request),
                Check::Injection {
                    detector,
                    threshold,
                    roles,
                } => injection_in_request(detector, *threshold, roles, request),
                Check::Webhook(hook) => self.ask_webhook(&guard, hook, "input", request).await,
                Check::Format | Check::Grounding { .. } => continue,
            };
            let Some(detail) = found else { continue };
            match guard.action {
                Action::Block => {
                    self.act(&guard, "blocked", detail.clone());
                    return Err(guard.blocked("request", &detail, "remove it and send again"));
                }
                Action::Monitor => self.act(&guard, "flagged", detail),
                Action::Restrict => {
                    restricted.clone_from(&guard.restrict_to);
                    self.act(&guard, "restricted", detail);
                }
                // Already rewritten by spans_in_request.
                Action::Redact => self.act(&guard, "redacted", detail),
            }
        }
        if self.actions.iter().any(|a| a.action == "redacted") {
            request.origin.native = None;
        }
        Ok(restricted)
    }

    /// The categories found in the request's texts (`email=2,card=1`), redacting them when
    /// the guardrail redacts.
    fn spans_in_request(
        &mut self,
        guard: &Guard,
        detector: &dyn Detector,
        request: &mut ChatCompletionRequest,
    ) -> Option<String> {
        let mut counted = Vec::new();
        let mut findings: Vec<Finding> = Vec::new();
        let redact = guard.action == Action::Redact;
        let vault = &mut self.vault;
        text::each_request_text(request, |text, _| {
            findings.clear();
            detector.find(text, &mut findings);
            if findings.is_empty() {
                return;
            }
            detect::merge_overlapping(&mut findings);
            if redact {
                vault.redact(text, &findings, guard.restore, &mut counted);
            } else {
                for f in &findings {
                    count(&mut counted, f.kind.category());
                }
            }
        });
        summary(&counted)
    }

    async fn ask_webhook(
        &mut self,
        guard: &Guard,
        hook: &Webhook,
        side: &str,
        request: &mut ChatCompletionRequest,
    ) -> Option<String> {
        let mut texts = Vec::new();
        text::each_request_text(request, |t, _| texts.push(t.clone()));
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        match hook.ask(&guard.name, side, &request.model, &refs).await {
            Decision::Allow => None,
            Decision::Block(reason) => Some(format!("policy: {reason}")),
            Decision::FailedOpen(problem) => {
                tracing::warn!(guardrail = %guard.name, "policy webhook {problem}; allowed (fail: open)");
                self.act(guard, "failed_open", "webhook".into());
                None
            }
        }
    }

    /// Screens a whole answer: redaction, blocks, grounding, the webhook; then puts restored
    /// values back. The format check is the pipeline's, which may retry.
    pub async fn output(
        &mut self,
        request: &ChatCompletionRequest,
        response: &mut ChatCompletionResponse,
    ) -> Result<(), GatewayError> {
        let guards: Vec<Arc<Guard>> = self
            .guards
            .iter()
            .filter(|g| g.side.output())
            .cloned()
            .collect();
        for guard in guards {
            let found = match &guard.check {
                Check::Spans(detector) => self.spans_in_answer(&guard, detector.as_ref(), response),
                Check::Injection {
                    detector,
                    threshold,
                    ..
                } => {
                    let mut hit = None;
                    text::each_answer_text(response, |t| {
                        let (score, signals) = detector.score(t);
                        if score >= *threshold && hit.is_none() {
                            hit = Some(format!("injection={score:.2}:{}", signals.join("+")));
                        }
                    });
                    hit
                }
                Check::Grounding { threshold } => {
                    self.grounding(&guard, *threshold, request, response)
                }
                Check::Webhook(hook) => {
                    let mut texts = Vec::new();
                    text::each_answer_text(response, |t| texts.push(t.clone()));
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    match hook.ask(&guard.name, "output", &request.model, &refs).await {
                        Decision::Allow => None,
                        Decision::Block(reason) => Some(format!("policy: {reason}")),
                        Decision::FailedOpen(_) => {
                            self.act(&guard, "failed_open", "webhook".into());
                            None
                        }
                    }
                }
                Check::Format => continue,
            };
            let Some(detail) = found else { continue };
            match guard.action {
                Action::Block => {
                    self.act(&guard, "blocked", detail.clone());
                    return Err(guard.blocked("answer", &detail, "the answer was withheld"));
                }
                Action::Redact => self.act(&guard, "redacted", detail),
                Action::Monitor | Action::Restrict => self.act(&guard, "flagged", detail),
            }
        }
        if self.vault.restores() {
            let vault = &self.vault;
            text::each_answer_text(response, |t| {
                if let std::borrow::Cow::Owned(restored) = vault.restore(t) {
                    *t = restored;
                }
            });
        }
        Ok(())
    }

    fn spans_in_answer(
        &mut self,
        guard: &Guard,
        detector: &dyn Detector,
        response: &mut ChatCompletionResponse,
    ) -> Option<String> {
        let mut counted = Vec::new();
        let mut findings = Vec::new();
        let redact = guard.action == Action::Redact;
        let vault = &mut self.vault;
        text::each_answer_text(response, |text| {
            findings.clear();
            detector.find(text, &mut findings);
            detect::merge_overlapping(&mut findings);
            if redact {
                // Values the answer produced itself are never restored.
                vault.redact(text, &findings, false, &mut counted);
            } else {
                for f in &findings {
                    count(&mut counted, f.kind.category());
                }
            }
        });
        summary(&counted)
    }

    /// Records the grounding score; below the threshold, a finding.
    fn grounding(
        &mut self,
        guard: &Guard,
        threshold: f32,
        request: &ChatCompletionRequest,
        response: &mut ChatCompletionResponse,
    ) -> Option<String> {
        let context = text::context_of(request);
        let answer = response
            .choices
            .first()
            .and_then(|c| c.message.content.as_deref())
            .unwrap_or("");
        let score = grounding::score(answer, &context)?;
        self.act(guard, "scored", format!("{score:.2}"));
        (score < threshold).then(|| format!("grounding={score:.2}"))
    }

    /// Whether an answer, still as the upstream's bytes, can go to the client untouched: no
    /// output guardrail finds anything in its texts and none holds a placeholder to restore.
    /// The texts of a chat completion are read from the bytes without decoding the rest
    /// ([`text::raw_answer_texts`]); other bodies are scanned whole, and escapes in them (`\u`
    /// may hide a value) send the answer down the decoding path. A false alarm only costs that
    /// path.
    pub fn passes_raw(&self, raw: &RawResponse) -> bool {
        if raw.kind == BodyKind::ChatCompletion
            && let Some(texts) = text::raw_answer_texts(&raw.body)
        {
            return texts.iter().all(|t| self.passes_text(t));
        }
        match std::str::from_utf8(&raw.body) {
            Ok(text) => !text.contains("\\u") && self.passes_text(text),
            Err(_) => false,
        }
    }

    fn passes_text(&self, text: &str) -> bool {
        if self.vault.restore(text) != text {
            return false;
        }
        let mut findings = Vec::new();
        self.guards
            .iter()
            .filter(|g| g.side.output())
            .all(|g| match &g.check {
                Check::Spans(detector) => {
                    findings.clear();
                    detector.find(text, &mut findings);
                    findings.is_empty()
                }
                Check::Injection {
                    detector,
                    threshold,
                    ..
                } => detector.score(text).0 < *threshold,
                Check::Format => true,
                Check::Grounding { .. } | Check::Webhook(_) => false,
            })
    }

    /// The stream screen for a streamed answer, carrying this request's placeholders.
    pub fn into_stream(self) -> stream::StreamScreen {
        let guards = self
            .guards
            .into_iter()
            .filter(|g| g.side.output() && matches!(g.check, Check::Spans(_)))
            .collect();
        stream::StreamScreen::new(guards, self.vault, self.window, self.actions)
    }
}

/// Whether an injection scores at or above the threshold in the texts of the screened roles.
fn injection_in_request(
    detector: &detect::injection::InjectionDetector,
    threshold: f32,
    roles: &[String],
    request: &mut ChatCompletionRequest,
) -> Option<String> {
    let mut hit: Option<String> = None;
    text::each_request_text(request, |t, role: Role| {
        if hit.is_some() || !roles.iter().any(|r| r == text::role_name(role)) {
            return;
        }
        let (score, signals) = detector.score(t);
        if score >= threshold {
            hit = Some(format!("injection={score:.2}:{}", signals.join("+")));
        }
    });
    hit
}

/// `email=2,card=1`, or `None` for nothing found.
fn summary(counted: &[(String, u32)]) -> Option<String> {
    (!counted.is_empty()).then(|| {
        counted
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> GuardSet {
        let config: GuardrailsConfig = serde_saphyr::from_str(
            "apply: [secrets]\n\
             teams: { finance: [pii, secrets] }\n\
             define:\n\
             \x20 secrets: { type: secrets, action: redact }\n\
             \x20 pii: { type: pii, action: redact, restore: true, on: input }\n\
             \x20 injection: { type: injection }\n",
        )
        .unwrap();
        GuardSet::build(&config).unwrap()
    }

    fn names(screen: &Screen) -> Vec<&str> {
        screen.guards.iter().map(|g| &*g.name).collect()
    }

    #[test]
    fn a_request_gets_every_requests_then_its_routes_teams_and_keys_guardrails_once() {
        let set = set();
        let route: RouteConfig =
            serde_saphyr::from_str("targets: [m]\nguardrails: [injection]\n").unwrap();
        let tags = vec!["guardrail:pii".to_owned(), "feature:x".to_owned()];
        assert_eq!(names(&set.select(None, None, &[])), ["secrets"]);
        assert_eq!(
            names(&set.select(Some(&route), Some("finance"), &tags)),
            ["secrets", "injection", "pii"]
        );
    }

    fn raw(body: &'static [u8], kind: BodyKind) -> RawResponse {
        RawResponse {
            body: bytes::Bytes::from_static(body),
            usage: None,
            kind,
        }
    }

    fn completion(body: &'static [u8]) -> RawResponse {
        raw(body, BodyKind::ChatCompletion)
    }

    #[tokio::test]
    async fn an_answer_passes_as_bytes_only_when_nothing_in_it_needs_screening() {
        let set = set();
        let clean = completion(
            br#"{"id":"x","choices":[{"message":{"content":"All good."}}],"usage":{"prompt_tokens":9}}"#,
        );
        let leaky = completion(
            br#"{"choices":[{"message":{"content":"key sk-proj-Zq8vN3xT5wYb2KcR7mLp4HdS9fGj6AeU1oIi0nBv"}}]}"#,
        );
        let in_a_tool_call = completion(
            br#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{\"k\":\"sk-proj-Zq8vN3xT5wYb2KcR7mLp4HdS9fGj6AeU1oIi0nBv\"}"}}]}}]}"#,
        );
        let escaped = completion(
            br#"{"choices":[{"message":{"content":"key sk-proj-Zq8vN3xT5wYb2\u004bcR7mLp4HdS9fGj6AeU1oIi0nBv"}}]}"#,
        );
        let screen = set.select(None, None, &[]);
        assert!(screen.passes_raw(&clean));
        assert!(!screen.passes_raw(&leaky));
        assert!(!screen.passes_raw(&in_a_tool_call));
        assert!(
            !screen.passes_raw(&escaped),
            "a value behind escapes is found"
        );
        let anthropic = |body| raw(body, BodyKind::AnthropicMessage);
        assert!(screen.passes_raw(&anthropic(br#"{"content":[{"type":"text","text":"ok"}]}"#)));
        assert!(
            !screen.passes_raw(&anthropic(
                br#"{"content":[{"type":"text","text":"caf\u00e9"}]}"#
            )),
            "escapes in a body read whole may hide a value"
        );

        let mut screen = set.select(None, Some("finance"), &[]);
        let mut request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "mail bob@example.com"}]
        }))
        .unwrap();
        screen.input(&mut request).await.unwrap();
        assert!(screen.passes_raw(&clean));
        let echoed = completion(br#"{"choices":[{"message":{"content":"Sent to [EMAIL_1]."}}]}"#);
        assert!(
            !screen.passes_raw(&echoed),
            "a placeholder to restore needs the decoded answer"
        );
    }

    #[tokio::test]
    async fn redaction_uses_one_placeholder_per_value_and_restores_the_answer() {
        let set = set();
        let mut screen = set.select(None, Some("finance"), &[]);
        let mut request: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [
                {"role": "user", "content": "mail bob@example.com, then bob@example.com again"}]
        }))
        .unwrap();
        assert_eq!(screen.input(&mut request).await.unwrap(), None);
        let sent = request.messages[0].content.as_ref().unwrap().text();
        assert_eq!(sent, "mail [EMAIL_1], then [EMAIL_1] again");
        let records: Vec<String> = screen
            .take_actions()
            .iter()
            .map(GuardAction::to_record)
            .collect();
        assert_eq!(records, ["pii:redacted:email=2"]);

        let mut answer: ChatCompletionResponse = serde_json::from_value(serde_json::json!({
            "id": "c", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Sent to [EMAIL_1]."}}]
        }))
        .unwrap();
        screen.output(&request, &mut answer).await.unwrap();
        assert_eq!(
            answer.choices[0].message.content.as_deref(),
            Some("Sent to bob@example.com.")
        );
    }
}
