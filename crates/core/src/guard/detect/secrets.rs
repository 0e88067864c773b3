//! Credentials: provider and cloud API keys by their documented prefixes and shapes, private
//! key blocks, signed JWTs, passwords inside connection strings, and high-entropy values or
//! passwords assigned to key-like names (`api_key = …`, `"client_secret": "…"`,
//! `password: …`).
//!
//! One Aho-Corasick automaton holds every literal anchor — token prefixes (`sk-ant-`, `AKIA`,
//! `ghp_`…), `-----BEGIN `, `eyJ`, `://`, and the words `key`, `token`, `secret`, `pass`… — so a
//! text without any of them costs one automaton pass and nothing else. Each anchor hit is then
//! checked by a small hand-written validator ([`prefixed`] for self-describing tokens,
//! [`context`] for values recognised by what surrounds them). Only the credential itself is
//! reported: for `postgres://app:s3cret@db/prod` the span is `s3cret`, so a redacted prompt
//! keeps the host and database an answer may need.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::{Detector, Finding, Kind, SecretKind, merge_own_findings};

mod context;
mod prefixed;

use prefixed::{Chars, PREFIX_RULES};

/// Tuning of the context rule; the prefix rules have no knobs (they follow the vendors'
/// formats).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretsConfig {
    /// Report values assigned to key-like names (`api_key = …`, `password: …`), not only
    /// self-describing tokens. On by default.
    pub context_rule: bool,
    /// Minimum Shannon entropy, in bits per character, of a value assigned to a key-like name
    /// (passwords excepted: they are judged by their character classes). Random base64 scores
    /// above 4.5 and random hex about 3.7; identifiers and placeholders score under 3.2.
    pub entropy_threshold: f64,
    /// Minimum length of such a value (passwords excepted: 6).
    pub min_value_len: usize,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            context_rule: true,
            entropy_threshold: 3.2,
            min_value_len: 16,
        }
    }
}

/// What an automaton hit means.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    /// The start of a vendor prefix; the rule is chosen by the bytes that follow.
    Token,
    PrivateKey,
    Jwt,
    SlackWebhook,
    Url,
    Keyword,
    MysqlFlag,
}

/// Finds credentials. Build once, share, call [`Detector::find`].
#[derive(Debug)]
pub struct SecretsDetector {
    config: SecretsConfig,
    automaton: AhoCorasick,
    /// Per automaton pattern: what it anchors.
    anchors: Vec<Anchor>,
}

/// Literal starts of the vendor prefixes in [`PREFIX_RULES`] (several prefixes share one).
const TOKEN_ANCHORS: &[&str] = &[
    "sk-",
    "sk_",
    "rk_",
    "whsec_",
    "AKIA",
    "ASIA",
    "AIza",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xox",
    "xapp-",
    "SG.",
    "hf_",
    "npm_",
    "hvs.",
    "hvb.",
];

/// Keyword anchors in the cases people write them (`password`, `Password`, `PASSWORD`,
/// `apiKey`); the identifier around a hit decides whether it counts. Exact cases rather than
/// case folding keep the automaton eligible for its SIMD prefilter.
const KEYWORDS: &[&str] = &[
    "key",
    "Key",
    "KEY",
    "token",
    "Token",
    "TOKEN",
    "secret",
    "Secret",
    "SECRET",
    "pass",
    "Pass",
    "PASS",
    "pwd",
    "Pwd",
    "PWD",
    "auth",
    "Auth",
    "AUTH",
    "credential",
    "Credential",
    "CREDENTIAL",
    "contraseña",
    "Contraseña",
    "mot de passe",
    "Mot de passe",
    "senha",
    "Senha",
    "пароль",
    "Пароль",
];

impl SecretsDetector {
    pub fn new(config: SecretsConfig) -> Self {
        let mut literals: Vec<&str> = Vec::new();
        let mut anchors = Vec::new();
        let mut add = |literal: &'static str, anchor: Anchor| {
            literals.push(literal);
            anchors.push(anchor);
        };
        for a in TOKEN_ANCHORS {
            add(a, Anchor::Token);
        }
        add("-----BEGIN ", Anchor::PrivateKey);
        add("eyJ", Anchor::Jwt);
        add("hooks.slack.com/", Anchor::SlackWebhook);
        add("://", Anchor::Url);
        add(" -p", Anchor::MysqlFlag);
        for k in KEYWORDS {
            add(k, Anchor::Keyword);
        }
        // Leftmost-longest: at one position the longer anchor (`Pass` vs `PASS` never clash,
        // but `sk_` and `sk-` must not hide each other's rules) decides.
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&literals)
            .expect("the built-in secret anchors are valid literals");
        SecretsDetector {
            config,
            automaton,
            anchors,
        }
    }

    pub fn config(&self) -> &SecretsConfig {
        &self.config
    }
}

impl Default for SecretsDetector {
    fn default() -> Self {
        SecretsDetector::new(SecretsConfig::default())
    }
}

impl Detector for SecretsDetector {
    fn name(&self) -> &'static str {
        "secrets"
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        let first = out.len();
        let mut scan = context::Scan::new(&self.config);
        for m in self.automaton.find_iter(text) {
            let anchor = self.anchors[m.pattern().as_usize()];
            // A keyword inside a credential already found (`…key…` inside a token) adds
            // nothing; a vendor prefix still counts, to name the credential precisely.
            let inside = out[first..].last().is_some_and(|f| m.start() < f.end);
            if inside && matches!(anchor, Anchor::Keyword | Anchor::MysqlFlag | Anchor::Url) {
                continue;
            }
            match anchor {
                Anchor::Token => {
                    // The first rule whose prefix is here: the table lists longer prefixes
                    // (`sk-ant-`) before the shorter ones they extend (`sk-`).
                    let rest = &b[m.start()..];
                    let Some(rule) = PREFIX_RULES
                        .iter()
                        .find(|r| rest.starts_with(r.prefix.as_bytes()))
                    else {
                        continue;
                    };
                    if let Some(end) = prefixed::token(b, m.start(), rule) {
                        out.push(Finding::new(Kind::Secret(rule.kind), m.start(), end));
                        if rule.kind == SecretKind::AwsAccessKey {
                            context::aws_secret_near(b, end, out);
                        }
                    }
                }
                Anchor::PrivateKey => push(
                    out,
                    SecretKind::PrivateKey,
                    prefixed::private_key(b, m.start()),
                ),
                Anchor::Jwt => push(out, SecretKind::Jwt, prefixed::jwt(b, m.start())),
                Anchor::SlackWebhook => push(
                    out,
                    SecretKind::Slack,
                    prefixed::slack_webhook(b, m.start()),
                ),
                Anchor::Url => push(
                    out,
                    SecretKind::ConnectionString,
                    context::url_password(b, m.start()),
                ),
                Anchor::MysqlFlag if self.config.context_rule => push(
                    out,
                    SecretKind::Generic,
                    context::mysql_password(b, m.start()),
                ),
                Anchor::Keyword if self.config.context_rule => {
                    scan.assignment(text, m.start(), m.end(), out)
                }
                Anchor::MysqlFlag | Anchor::Keyword => {}
            }
        }
        merge_own_findings(out, first);
    }
}

fn push(out: &mut Vec<Finding>, kind: SecretKind, span: Option<(usize, usize)>) {
    if let Some((start, end)) = span {
        out.push(Finding::new(Kind::Secret(kind), start, end));
    }
}

/// Whether a byte belongs to the alphabet `chars`.
fn in_charset(chars: Chars, c: u8) -> bool {
    match chars {
        Chars::Alnum => c.is_ascii_alphanumeric(),
        Chars::AlnumUnderscore => c.is_ascii_alphanumeric() || c == b'_',
        Chars::UrlSafe => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
        Chars::UpperAlnum => c.is_ascii_uppercase() || c.is_ascii_digit(),
        Chars::AlnumDash => c.is_ascii_alphanumeric() || c == b'-',
        Chars::UrlSafeDot => c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        SecretsDetector::default().find(text, &mut out);
        out.iter()
            .map(|f| match f.kind {
                Kind::Secret(k) => (k.as_str(), f.text(text)),
                _ => ("?", f.text(text)),
            })
            .collect()
    }

    #[test]
    fn provider_keys_by_prefix_and_shape() {
        let cases = [
            (
                "openai",
                "sk-proj-WJ9QyucS19AvMp2gUAeSsUfFgUl8oPK_HJN45P-ED75cNRqs",
            ),
            (
                "openai",
                "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",
            ),
            (
                "anthropic",
                "sk-ant-api03-kwUONAIifEcLav_q5ZvQmLL8ZrF8w50SR2Qugs4lIFVRdxtDyKUOtfZUTqr8aFvn-ohPAA",
            ),
            ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
            ("google_api_key", "AIzaThw_ZqyC85Nn7Jf30xIOdZh_NRwhUTv3L_S"),
            ("github", "ghp_VsPDTDR3z7HUadiQTaoDQy3nuUdP0Jx3aiGX"),
            (
                "slack",
                "xoxb-98668545155-7722247651672-q9oC26U6j6mfVGMIQ02LbFzB",
            ),
            ("stripe", "rk_live_0zbMKeoNvGuAXAYxVEDGek47"),
            ("npm", "npm_4Zq8vX2mT7kL9pW3sN6cR1bY5hJ0dF8gA2eU"),
        ];
        for (kind, key) in cases {
            let text = format!("the key «{key}» leaked");
            assert_eq!(found(&text), [(kind, key)], "{key}");
        }
    }

    #[test]
    fn placeholders_and_prose_are_not_keys() {
        for t in [
            "OPENAI_API_KEY=sk-...",
            "sk_test_XXXXXXXXXXXXXXXXXXXXXXXX",
            "AKIAXXXXXXXXXXXXXXXX is the format",
            "scikit-learn (sklearn) and risk-free task-sk-1",
            "xoxo, Grandma",
            "pk_live_MgNqvzNBy265Vjw0wP47YCte",
            "MSG.send(); config.SG.value",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn the_context_rule_can_be_switched_off() {
        let d = SecretsDetector::new(SecretsConfig {
            context_rule: false,
            ..SecretsConfig::default()
        });
        let mut out = Vec::new();
        d.find("api_key: 964131b5250f067b74c68bd1ee27518e and ghp_VsPDTDR3z7HUadiQTaoDQy3nuUdP0Jx3aiGX", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, Kind::Secret(SecretKind::GitHub));
    }
}
