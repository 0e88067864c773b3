//! Operator-banned content: named lists of keywords and named regular expressions, for
//! filtering what goes to a model and what comes back (competitor names, internal code names,
//! profanity, ticket formats…).
//!
//! All keywords of all lists go into one Aho-Corasick automaton, so a text is scanned once
//! whatever the number of words; regular expressions are screened by one `RegexSet` pass and
//! only those that occur are run again for their positions. Case-insensitive matching of
//! keywords folds ASCII only (Aho-Corasick's folding): `Straße` will not match `STRASSE`, and a
//! non-ASCII keyword matches its exact case. Regular expressions carry their own flags (`(?i)`).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use super::pii::PATTERN_SIZE_LIMIT;
use super::{DetectError, Detector, Finding, Kind, Label, merge_own_findings};

/// A named list of banned words or phrases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordRule {
    pub name: String,
    pub keywords: Vec<String>,
    /// Match only whole words: `ass` then does not match inside `class`. Word characters are
    /// Unicode letters, digits and `_`.
    pub whole_word: bool,
}

/// A named banned regular expression (Rust `regex` syntax). As for custom PII patterns, an
/// ASCII word boundary (`(?-u:\b)`) is much cheaper than `\b` on non-ASCII text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexRule {
    pub name: String,
    pub pattern: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PatternsConfig {
    pub keywords: Vec<KeywordRule>,
    pub regexes: Vec<RegexRule>,
    /// Keywords match in any (ASCII) case unless this is set.
    pub case_sensitive: bool,
}

/// Finds banned keywords and patterns; each finding is [`Kind::Banned`] with its rule's name.
#[derive(Debug)]
pub struct BannedPatterns {
    keywords: Option<AhoCorasick>,
    /// For each automaton pattern: its rule's label and whether it must be a whole word.
    keyword_rules: Vec<(Label, bool)>,
    regex_set: Option<RegexSet>,
    regexes: Vec<(Regex, Label)>,
}

impl BannedPatterns {
    pub fn new(config: &PatternsConfig) -> Result<Self, DetectError> {
        let mut words: Vec<&str> = Vec::new();
        let mut keyword_rules = Vec::new();
        for rule in &config.keywords {
            let label = Label::new(&rule.name);
            for w in &rule.keywords {
                if w.trim().is_empty() {
                    return Err(DetectError::BadPattern {
                        name: rule.name.clone(),
                        message: "empty keyword".into(),
                    });
                }
                words.push(w);
                keyword_rules.push((label.clone(), rule.whole_word));
            }
        }
        let keywords = if words.is_empty() {
            None
        } else {
            // Standard semantics, because whole-word filtering needs every overlapping match:
            // leftmost-longest would hide "cat" in "cats cat" behind the rejected "cats".
            let ac = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(!config.case_sensitive)
                .build(&words)
                .map_err(|e| DetectError::BadPattern {
                    name: "keywords".into(),
                    message: e.to_string(),
                })?;
            Some(ac)
        };

        let mut regexes = Vec::with_capacity(config.regexes.len());
        for rule in &config.regexes {
            let re = RegexBuilder::new(&rule.pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|e| DetectError::BadPattern {
                    name: rule.name.clone(),
                    message: e.to_string(),
                })?;
            regexes.push((re, Label::new(&rule.name)));
        }
        let regex_set = if regexes.is_empty() {
            None
        } else {
            let set = RegexSetBuilder::new(config.regexes.iter().map(|r| &r.pattern))
                .size_limit(PATTERN_SIZE_LIMIT * regexes.len())
                .build()
                .map_err(|e| DetectError::BadPattern {
                    name: "banned patterns".into(),
                    message: e.to_string(),
                })?;
            Some(set)
        };
        Ok(BannedPatterns {
            keywords,
            keyword_rules,
            regex_set,
            regexes,
        })
    }
}

/// Whether `text[start..end]` stands as a word: no letter, digit or `_` touches it.
fn is_whole_word(text: &str, start: usize, end: usize) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    !text[..start].chars().next_back().is_some_and(word)
        && !text[end..].chars().next().is_some_and(word)
}

impl Detector for BannedPatterns {
    fn name(&self) -> &'static str {
        "patterns"
    }

    fn find(&self, text: &str, out: &mut Vec<Finding>) {
        let first = out.len();
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(text) {
                let (label, whole) = &self.keyword_rules[m.pattern().as_usize()];
                // A case-folded match of an ASCII keyword can still end inside a multi-byte
                // character only if the keyword itself is not valid there; guard anyway.
                if !text.is_char_boundary(m.start()) || !text.is_char_boundary(m.end()) {
                    continue;
                }
                if !*whole || is_whole_word(text, m.start(), m.end()) {
                    out.push(Finding::new(
                        Kind::Banned(label.clone()),
                        m.start(),
                        m.end(),
                    ));
                }
            }
        }
        if let Some(set) = &self.regex_set {
            for i in set.matches(text).iter() {
                let (re, label) = &self.regexes[i];
                for m in re.find_iter(text).filter(|m| !m.is_empty()) {
                    out.push(Finding::new(
                        Kind::Banned(label.clone()),
                        m.start(),
                        m.end(),
                    ));
                }
            }
        }
        merge_own_findings(out, first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banned(keywords: &[(&str, &[&str], bool)], regexes: &[(&str, &str)]) -> BannedPatterns {
        let config = PatternsConfig {
            keywords: keywords
                .iter()
                .map(|(n, k, w)| KeywordRule {
                    name: n.to_string(),
                    keywords: k.iter().map(|s| s.to_string()).collect(),
                    whole_word: *w,
                })
                .collect(),
            regexes: regexes
                .iter()
                .map(|(n, p)| RegexRule {
                    name: n.to_string(),
                    pattern: p.to_string(),
                })
                .collect(),
            case_sensitive: false,
        };
        BannedPatterns::new(&config).unwrap()
    }

    fn found(d: &BannedPatterns, text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.find(text, &mut out);
        out.iter()
            .map(|f| (f.kind.category().to_owned(), f.text(text).to_owned()))
            .collect()
    }

    #[test]
    fn keywords_match_in_any_case_and_whole_words_only_when_asked() {
        let d = banned(
            &[
                ("competitor", &["Globex", "initech"], false),
                ("rude", &["ass"], true),
            ],
            &[],
        );
        assert_eq!(
            found(&d, "GLOBEX vs Initech: a class act, you ass."),
            vec![
                ("competitor".into(), "GLOBEX".into()),
                ("competitor".into(), "Initech".into()),
                ("rude".into(), "ass".into()),
            ]
        );
    }

    #[test]
    fn whole_word_sees_unicode_letters_and_finds_later_matches() {
        let d = banned(&[("w", &["cat"], true)], &[]);
        assert_eq!(
            found(&d, "écat cats, «cat» été"),
            vec![("w".into(), "cat".into())]
        );
    }

    #[test]
    fn regexes_report_their_name_and_overlaps_merge() {
        let d = banned(
            &[("codename", &["project falcon"], false)],
            &[("ticket", r"\bSEC-\d{4}\b"), ("falcon", r"(?i)falcon \w+")],
        );
        let got = found(&d, "See SEC-1234 about Project Falcon rollout.");
        assert_eq!(
            got,
            vec![
                ("ticket".into(), "SEC-1234".into()),
                ("codename".into(), "Project Falcon rollout".into()),
            ]
        );
    }

    #[test]
    fn bad_rules_are_rejected_with_their_name() {
        let config = PatternsConfig {
            regexes: vec![RegexRule {
                name: "oops".into(),
                pattern: "[".into(),
            }],
            ..PatternsConfig::default()
        };
        assert!(
            BannedPatterns::new(&config)
                .unwrap_err()
                .to_string()
                .contains("oops")
        );
        let config = PatternsConfig {
            keywords: vec![KeywordRule {
                name: "blank".into(),
                keywords: vec![" ".into()],
                whole_word: false,
            }],
            ..PatternsConfig::default()
        };
        assert!(BannedPatterns::new(&config).is_err());
    }
}
