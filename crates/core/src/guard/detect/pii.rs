//! Personal data: e-mail addresses, phone numbers, payment cards, US social security numbers,
//! IBANs, IP addresses, and operator-defined patterns.
//!
//! Every built-in kind is found by a hand-written scanner over the bytes rather than by a
//! regex, for two reasons: each kind has a cheap anchor to jump to (`@` for e-mail, a digit run
//! for numbers, `.`/`:` for IPs), so clean text costs one pass of byte comparisons; and the
//! validation that makes these detectors precise — Luhn and issuer prefixes for cards, mod-97
//! for IBANs, the never-issued SSN ranges, phone shapes per numbering plan, octet ranges —
//! is code, not pattern. What this module does not do: names, postal addresses and dates of
//! birth need a language model (an NER model, as `reference/crates.md` notes), not patterns;
//! operators can add the formats they know (employee ids, passport numbers) as custom
//! patterns.

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::{DetectError, Detector, Finding, Kind, Label, merge_own_findings};

mod email;
mod iban;
mod ip;
mod numbers;

/// Which kinds of personal data to look for. All on by default, except private IP addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiConfig {
    pub email: bool,
    pub phone: bool,
    pub card: bool,
    pub ssn: bool,
    pub iban: bool,
    pub ip: bool,
    /// Also report loopback, private (RFC 1918, unique-local), link-local, CGNAT and other
    /// non-routable addresses. Off by default: such an address identifies a machine inside
    /// some network, not a person, and prompts about infrastructure are full of them
    /// (`10.0.0.12:5432`); redacting them would hurt answers and protect no one. Public
    /// addresses are personal data under the GDPR and are always reported.
    pub ip_include_private: bool,
    /// Operator-defined kinds, e.g. `employee_id` = `EMP-\d{6}`.
    pub custom: Vec<CustomPattern>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            email: true,
            phone: true,
            card: true,
            ssn: true,
            iban: true,
            ip: true,
            ip_include_private: false,
            custom: Vec::new(),
        }
    }
}

/// A named regular expression whose matches are reported as [`Kind::Custom`]. Prefer ASCII
/// word boundaries (`(?-u:\b)`) to `\b`: the regex crate's fast engine cannot evaluate a
/// Unicode word boundary on a text that holds non-ASCII characters and falls back to a much
/// slower one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPattern {
    pub name: String,
    pub pattern: String,
}

impl CustomPattern {
    pub fn new(name: impl Into<String>, pattern: impl Into<String>) -> Self {
        CustomPattern {
            name: name.into(),
            pattern: pattern.into(),
        }
    }
}

/// Finds personal data. Build once, share (it is `Send + Sync`), call [`Detector::find`].
#[derive(Debug)]
pub struct PiiDetector {
    config: PiiConfig,
    custom: Option<CustomSet>,
}

/// Operator patterns: one `RegexSet` pass says which of them occur at all, and only those are
/// run again for their positions.
#[derive(Debug)]
struct CustomSet {
    set: RegexSet,
    regexes: Vec<Regex>,
    labels: Vec<Label>,
}

/// Compiled-size cap for operator patterns, so a pathological pattern fails at load instead of
/// eating memory (the regex crate guarantees linear-time matching, not small automata).
pub(crate) const PATTERN_SIZE_LIMIT: usize = 1 << 20;

impl PiiDetector {
    pub fn new(config: PiiConfig) -> Result<Self, DetectError> {
        let custom = if config.custom.is_empty() {
            None
        } else {
            Some(CustomSet::new(&config.custom)?)
        };
        Ok(PiiDetector { config, custom })
    }

    pub fn config(&self) -> &PiiConfig {
        &self.config
    }
}

impl CustomSet {
    fn new(patterns: &[CustomPattern]) -> Result<Self, DetectError> {
        let bad = |name: &str, e: regex::Error| DetectError::BadPattern {
            name: name.to_owned(),
            message: e.to_string(),
        };
        let mut regexes = Vec::with_capacity(patterns.len());
        for p in patterns {
            let re = RegexBuilder::new(&p.pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| bad(&p.name, e))?;
            regexes.push(re);
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|p| &p.pattern))
            .size_limit(PATTERN_SIZE_LIMIT * patterns.len().max(1))
            .build()
            .map_err(|e| bad("custom patterns", e))?;
        let labels = patterns.iter().map(|p| Label::new(&p.name)).collect();
        Ok(CustomSet {
            set,
            regexes,
            labels,
        })
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        for i in self.set.matches(text).iter() {
            for m in self.regexes[i].find_iter(text) {
                if !m.is_empty() {
                    out.push(Finding::new(
                        Kind::Custom(self.labels[i].clone()),
                        m.start(),
                        m.end(),
                    ));
                }
            }
        }
    }
}

impl Detector for PiiDetector {
    fn name(&self) -> &'static str {
        "pii"
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let first = out.len();
        let c = &self.config;
        if c.email {
            email::find(text, out);
        }
        if c.phone || c.card || c.ssn || c.iban || c.ip {
            let kinds = numbers::Kinds {
                phone: c.phone,
                card: c.card,
                ssn: c.ssn,
                iban: c.iban,
                ipv4: c.ip,
                ip_include_private: c.ip_include_private,
            };
            numbers::find(text, kinds, out);
        }
        if c.ip {
            ip::find_v6(text, c.ip_include_private, out);
        }
        if let Some(custom) = &self.custom {
            custom.find(text, out);
        }
        merge_own_findings(out, first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(d: &PiiDetector, text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.find(text, &mut out);
        out.iter()
            .map(|f| (f.kind.category().to_owned(), f.text(text).to_owned()))
            .collect()
    }

    #[test]
    fn finds_every_kind_in_one_text_with_spans_on_char_boundaries() {
        let d = PiiDetector::new(PiiConfig::default()).unwrap();
        let text = "Zoë → zoe.k@exämple.de? non: zoe.k@example.de, ☎ +44 20 7946 0958, \
                    carte 4111 1111 1111 1111, SSN 536-22-8419, IBAN DE89 3704 0044 0532 0130 00, \
                    IP 81.2.69.160 — fin ✓";
        let got = found(&d, text);
        assert_eq!(
            got,
            vec![
                ("email".into(), "zoe.k@example.de".into()),
                ("phone".into(), "+44 20 7946 0958".into()),
                ("card".into(), "4111 1111 1111 1111".into()),
                ("ssn".into(), "536-22-8419".into()),
                ("iban".into(), "DE89 3704 0044 0532 0130 00".into()),
                ("ip".into(), "81.2.69.160".into()),
            ]
        );
    }

    #[test]
    fn kinds_can_be_switched_off() {
        let config = PiiConfig {
            email: false,
            card: false,
            ..PiiConfig::default()
        };
        let d = PiiDetector::new(config).unwrap();
        let got = found(&d, "a@b.co 4111111111111111 +1-202-555-0143");
        assert_eq!(got, vec![("phone".into(), "+1-202-555-0143".into())]);
    }

    #[test]
    fn custom_patterns_are_named_and_bad_ones_are_rejected() {
        let config = PiiConfig {
            custom: vec![CustomPattern::new("employee_id", r"\bEMP-\d{6}\b")],
            ..PiiConfig::default()
        };
        let d = PiiDetector::new(config).unwrap();
        let mut out = Vec::new();
        d.find("badge EMP-204881, not EMP-12", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind.placeholder_tag(), "EMPLOYEE_ID");

        let err = PiiDetector::new(PiiConfig {
            custom: vec![CustomPattern::new("broken", "(unclosed")],
            ..PiiConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn clean_text_finds_nothing() {
        let d = PiiDetector::new(PiiConfig::default()).unwrap();
        let text = "Version 1.2.3 shipped on 2024-06-11; see commit 11f6ad8 and RFC 9110.";
        assert!(found(&d, text).is_empty());
    }
}
