//! Guardrail detectors: pure, synchronous functions from a text to what it contains — personal
//! data ([`pii`]), credentials ([`secrets`]), prompt-injection signals ([`injection`]) and
//! operator-banned words or patterns ([`patterns`]).
//!
//! This module owns *finding* things and nothing else: it never rewrites a text, never decides
//! to block, never knows about requests, streams or configuration files. The guard stage builds
//! its actions (block, redact, monitor, placeholders and their restoration, the streaming
//! window) on top of the [`Finding`]s returned here. Every detector compiles its patterns once,
//! at construction, and then scans a text in one pass per detector with literal prefilters, so a
//! clean prompt costs a few microseconds.
//!
//! Spans are byte offsets into the scanned `&str` and always fall on `char` boundaries, so
//! `&text[f.start..f.end]` never panics.

use std::sync::Arc;

pub mod injection;
pub mod patterns;
pub mod pii;
pub mod secrets;

mod text;

pub use injection::{InjectionConfig, InjectionDetector, InjectionReport};
pub use patterns::{BannedPatterns, KeywordRule, PatternsConfig, RegexRule};
pub use pii::{CustomPattern, PiiConfig, PiiDetector};
pub use secrets::{SecretsConfig, SecretsDetector};

/// One thing found in a text: what it is and where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: Kind,
    /// Byte offset of the first byte, on a `char` boundary.
    pub start: usize,
    /// Byte offset one past the last byte, on a `char` boundary.
    pub end: usize,
}

impl Finding {
    pub fn new(kind: Kind, start: usize, end: usize) -> Self {
        Finding { kind, start, end }
    }

    /// The matched text. Panics only if the finding came from another text.
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        &text[self.start..self.end]
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn overlaps(&self, other: &Finding) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// What a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    IpAddress,
    /// A match of an operator-supplied PII pattern.
    Custom(Label),
    Secret(SecretKind),
    /// A match of an operator-banned keyword or pattern.
    Banned(Label),
}

impl Kind {
    /// The stable lower-case name used in configs, records and metrics: `email`, `phone`, `card`,
    /// `ssn`, `iban`, `ip`, `secret`, or the custom or banned rule's own name.
    pub fn category(&self) -> &str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Ssn => "ssn",
            Kind::Iban => "iban",
            Kind::IpAddress => "ip",
            Kind::Secret(_) => "secret",
            Kind::Custom(label) | Kind::Banned(label) => label.name(),
        }
    }

    /// The upper-case tag a redaction placeholder carries (`[EMAIL_1]`, `[SECRET_2]`…).
    pub fn placeholder_tag(&self) -> &str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Card => "CARD",
            Kind::Ssn => "SSN",
            Kind::Iban => "IBAN",
            Kind::IpAddress => "IP",
            Kind::Secret(_) => "SECRET",
            Kind::Custom(label) | Kind::Banned(label) => label.tag(),
        }
    }

    /// How much a finding of this kind should win when two findings overlap: credentials
    /// first, then the kinds proven by a checksum, then shape-only kinds. Higher wins.
    pub fn specificity(&self) -> u8 {
        match self {
            Kind::Secret(SecretKind::Generic) => 80,
            Kind::Secret(_) => 90,
            Kind::Card => 70,
            Kind::Iban => 68,
            Kind::Ssn => 60,
            Kind::Email => 55,
            Kind::Custom(_) => 50,
            Kind::Phone => 40,
            Kind::IpAddress => 35,
            Kind::Banned(_) => 20,
        }
    }
}

/// Which credential a secret finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// `sk-…`, `sk-proj-…`, `sk-svcacct-…` (and the other `sk-` keys shaped like OpenAI's).
    OpenAi,
    /// `sk-ant-api03-…`, `sk-ant-admin01-…`.
    Anthropic,
    /// `AKIA…` / `ASIA…` access key ids.
    AwsAccessKey,
    /// The 40-character secret access key, recognised by its context.
    AwsSecretKey,
    /// `AIza…` API keys (Maps, Gemini, Firebase).
    GoogleApiKey,
    /// `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`.
    GitHub,
    /// `glpat-…`.
    GitLab,
    /// `xox[abeprs]-…`, `xapp-…` tokens and incoming-webhook URLs.
    Slack,
    /// `sk_live_`, `rk_live_`, `sk_test_`, `rk_test_`, `whsec_`.
    Stripe,
    /// `SG.<22>.<43>`.
    SendGrid,
    /// `hf_…`.
    HuggingFace,
    /// `npm_…`.
    Npm,
    /// HashiCorp Vault `hvs.` / `hvb.` tokens.
    Vault,
    /// `-----BEGIN … PRIVATE KEY-----` blocks.
    PrivateKey,
    /// Signed JSON Web Tokens.
    Jwt,
    /// The password inside a connection string or URL.
    ConnectionString,
    /// A high-entropy value or password assigned to a key-like name.
    Generic,
}

impl SecretKind {
    /// A stable snake_case name for records and the corpus.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::OpenAi => "openai",
            SecretKind::Anthropic => "anthropic",
            SecretKind::AwsAccessKey => "aws_access_key",
            SecretKind::AwsSecretKey => "aws_secret_key",
            SecretKind::GoogleApiKey => "google_api_key",
            SecretKind::GitHub => "github",
            SecretKind::GitLab => "gitlab",
            SecretKind::Slack => "slack",
            SecretKind::Stripe => "stripe",
            SecretKind::SendGrid => "sendgrid",
            SecretKind::HuggingFace => "huggingface",
            SecretKind::Npm => "npm",
            SecretKind::Vault => "vault",
            SecretKind::PrivateKey => "private_key",
            SecretKind::Jwt => "jwt",
            SecretKind::ConnectionString => "connection_string",
            SecretKind::Generic => "generic",
        }
    }
}

/// The name of an operator-defined rule and its placeholder tag, computed once. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(Arc<(Box<str>, Box<str>)>);

impl Label {
    /// `employee_id` gets the tag `EMPLOYEE_ID`; characters that would break a placeholder
    /// (anything but ASCII letters and digits) become `_`.
    pub fn new(name: &str) -> Self {
        let tag: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        Label(Arc::new((name.into(), tag.into())))
    }

    pub fn name(&self) -> &str {
        &self.0.0
    }

    pub fn tag(&self) -> &str {
        &self.0.1
    }
}

/// Something that finds [`Finding`]s in a text. Implementations append to `out` (which may
/// already hold other detectors' findings) and never clear it; their own findings do not
/// overlap each other.
pub trait Detector: Send + Sync {
    fn name(&self) -> &'static str;
    fn find(&self, text: &str, out: &mut Vec<Finding>);
}

/// A pattern supplied by configuration did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("pattern \"{name}\": {message}")]
    BadPattern { name: String, message: String },
}

/// Makes `findings` sorted and non-overlapping, as redaction needs: overlapping findings become
/// one finding over the union of their spans (so nothing is left half-redacted) whose kind is
/// the more specific of the two, the longer one on a tie.
pub fn merge_overlapping(findings: &mut Vec<Finding>) {
    if findings.len() < 2 {
        return;
    }
    findings.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings.drain(..) {
        match merged.last_mut() {
            Some(last) if last.overlaps(&f) => {
                let f_wins =
                    (f.kind.specificity(), f.len()) > (last.kind.specificity(), last.len());
                if f_wins {
                    last.kind = f.kind;
                }
                last.end = last.end.max(f.end);
            }
            _ => merged.push(f),
        }
    }
    *findings = merged;
}

/// Merges the findings one detector appended to `out` from `first` on, leaving those of the
/// detectors before it alone: each detector's own findings are disjoint, as [`Detector::find`]
/// promises, even when its scanners are independent (an IBAN's digits may also look like a
/// phone).
pub fn merge_own_findings(out: &mut Vec<Finding>, first: usize) {
    if out.len() - first > 1 {
        let mut mine = out.split_off(first);
        merge_overlapping(&mut mine);
        out.append(&mut mine);
    }
}

/// Runs every detector over `text` and returns their findings, merged.
pub fn scan(detectors: &[&dyn Detector], text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in detectors {
        d.find(text, &mut out);
    }
    merge_overlapping(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: Kind, start: usize, end: usize) -> Finding {
        Finding::new(kind, start, end)
    }

    #[test]
    fn merging_keeps_disjoint_findings_and_sorts_them() {
        let mut v = vec![f(Kind::Email, 10, 20), f(Kind::Phone, 0, 5)];
        merge_overlapping(&mut v);
        assert_eq!(v, vec![f(Kind::Phone, 0, 5), f(Kind::Email, 10, 20)]);
    }

    #[test]
    fn overlapping_findings_become_their_union_with_the_most_specific_kind() {
        let mut v = vec![
            f(Kind::Phone, 0, 19),
            f(Kind::Card, 0, 19),
            f(Kind::Secret(SecretKind::Generic), 30, 50),
            f(Kind::Secret(SecretKind::OpenAi), 35, 60),
        ];
        merge_overlapping(&mut v);
        assert_eq!(
            v,
            vec![
                f(Kind::Card, 0, 19),
                f(Kind::Secret(SecretKind::OpenAi), 30, 60)
            ]
        );
    }

    #[test]
    fn on_equal_specificity_the_longer_finding_names_the_union() {
        let mut v = vec![
            f(Kind::Phone, 0, 4),
            f(Kind::Phone, 2, 12),
            f(Kind::Ssn, 12, 14),
        ];
        merge_overlapping(&mut v);
        assert_eq!(v, vec![f(Kind::Phone, 0, 12), f(Kind::Ssn, 12, 14)]);
    }

    /// Random texts built from the characters the scanners care about (digits, separators,
    /// `@ : . / = -`, prefixes, multi-byte and invisible characters): no detector panics, and
    /// every span is non-empty, in bounds and on `char` boundaries.
    #[test]
    fn random_tricky_texts_never_panic_and_spans_stay_on_char_boundaries() {
        let pieces = [
            "0",
            "4",
            "9",
            " ",
            "-",
            ".",
            ":",
            "::",
            "@",
            "+",
            "(",
            ")",
            "/",
            "=",
            "\"",
            "'",
            "\n",
            "é",
            "€",
            "電",
            "\u{200B}",
            "\u{202E}",
            "\u{E0041}",
            "🏴",
            "a",
            "Z",
            "x",
            "key",
            "token=",
            "password: ",
            "sk-",
            "AKIA",
            "eyJ",
            "://",
            "-----BEGIN ",
            "PRIVATE KEY-----",
            "<!--",
            "DE89",
            "ignore previous instructions",
            "<|im_start|>",
            "base64,",
            "QUJD",
        ];
        let pii = PiiDetector::new(PiiConfig {
            ip_include_private: true,
            custom: vec![CustomPattern::new("x", r"\d+")],
            ..PiiConfig::default()
        })
        .unwrap();
        let secrets = SecretsDetector::default();
        let injection = InjectionDetector::new();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..400 {
            let mut text = String::new();
            for _ in 0..60 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let found = scan(&[&pii, &secrets], &text);
            for f in &found {
                assert!(f.start < f.end && f.end <= text.len(), "{f:?} in {text:?}");
                assert!(
                    text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                    "{f:?} in {text:?}"
                );
            }
            let report = injection.assess(&text);
            assert!((0.0..=1.0).contains(&report.score));
        }
    }

    #[test]
    fn labels_make_placeholder_safe_tags() {
        let k = Kind::Custom(Label::new("employee-id v2"));
        assert_eq!(k.category(), "employee-id v2");
        assert_eq!(k.placeholder_tag(), "EMPLOYEE_ID_V2");
        assert_eq!(Kind::IpAddress.placeholder_tag(), "IP");
        assert_eq!(Kind::Secret(SecretKind::Jwt).category(), "secret");
    }
}
