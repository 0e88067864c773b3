//! The semantic cache's correctness guard: refuses to serve a cached answer for a prompt that
//! is close in embedding space but asks something else.
//!
//! Sentence embeddings are nearly blind to the words that flip an answer: "Is the drug safe
//! during pregnancy?" and "…unsafe…" score 0.97, "100 USD to EUR" and "100 EUR to USD" more.
//! So a similarity threshold alone serves wrong answers. The guard compares what embeddings
//! miss — numbers and dates, negation, antonym prefixes, comparison words, quoted strings,
//! names and codes (in order), and opposite pairs such as enable/disable — and refuses a hit
//! when any of them differ. It is deliberately one-sided: a refused paraphrase costs one
//! provider call, a served trap costs a wrong answer.
//!
//! Each prompt is reduced once to a [`Signature`] (at insert for cached prompts, once per
//! lookup for the incoming one); comparing two signatures is allocation-light and takes about a
//! microsecond, so the index can run it on every candidate above the threshold. This module
//! does not embed, score similarity or store anything: see `index.rs` for that.

mod extract;
mod lexicon;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use lexicon::Strength;

/// Why a cached prompt may not answer the incoming one. `Display` is the snake_case name used
/// in request records and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Numbers, amounts, percentages, dates, times or versions differ.
    Numbers,
    /// One prompt negates more often than the other ("do" vs "don't").
    Negation,
    /// A word in one is the prefixed opposite of a word in the other ("safe" vs "unsafe").
    Antonym,
    /// Comparison operators or words differ ("over" vs "under", ">" vs "<=").
    Comparison,
    /// Quoted strings differ, or appear in a different order.
    Quoted,
    /// Names, acronyms or identifiers differ, or appear in a different order ("USD to EUR").
    NamesOrCodes,
    /// The prompts use different members of an opposite pair ("enable" vs "disable").
    Opposites,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Numbers => "numbers",
            Refusal::Negation => "negation",
            Refusal::Antonym => "antonym",
            Refusal::Comparison => "comparison",
            Refusal::Quoted => "quoted",
            Refusal::NamesOrCodes => "names_or_codes",
            Refusal::Opposites => "opposites",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What of a prompt the guard compares, extracted once by [`Guard::signature`]. Words are kept
/// as 64-bit hashes of their lowercase form: presence and order checks need no strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signature {
    /// Normalised numbers, dates and versions, in order ("1,000" → "1000", "five" → "5").
    numbers: Vec<Box<str>>,
    negations: u16,
    /// Canonical comparison tokens in order ("above" and ">" are both "gt").
    comparisons: Vec<&'static str>,
    quoted: Vec<Box<str>>,
    /// The words that are names or codes in this prompt (a set, unordered).
    names: Vec<u64>,
    /// Every word, in order; names are compared as the subsequence of these.
    words: Vec<u64>,
    /// `words`, sorted and deduplicated, for presence checks.
    vocabulary: Vec<u64>,
    /// (prefixed word, the word it negates): ("unsafe", "safe"), ("useless", "use").
    antonyms: Vec<(u64, u64)>,
    /// (opposite pair, which members are used: bit 0 the first, bit 1 the second), by pair.
    opposites: Vec<(u16, u8)>,
}

impl Signature {
    fn has_word(&self, word: u64) -> bool {
        self.vocabulary.binary_search(&word).is_ok()
    }
}

/// The guard, built once from configuration and shared by every lookup.
pub struct Guard {
    /// Every form of every opposite-pair member ("enabled", "enabling") → (pair, member).
    opposite_forms: HashMap<Box<str>, Vec<(u16, u8)>>,
    strengths: Vec<Strength>,
    /// Whether a configured pair has multi-word members ("turn on"), which costs a lookup per
    /// pair of adjacent words.
    has_phrases: bool,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(&[])
    }
}

impl Guard {
    /// The built-in opposite pairs plus `opposites` from configuration. Configured pairs are
    /// strong: a prompt using either member never matches one using the other or neither.
    /// Members may be two words ("turn on", "turn off"); matching is case-insensitive.
    pub fn new(opposites: &[(String, String)]) -> Guard {
        let mut guard = Guard {
            opposite_forms: HashMap::new(),
            strengths: Vec::new(),
            has_phrases: false,
        };
        for (first, second, strength) in lexicon::OPPOSITES {
            guard.add_pair(first, second, *strength);
        }
        for (first, second) in opposites {
            guard.add_pair(
                &first.trim().to_lowercase(),
                &second.trim().to_lowercase(),
                Strength::Strong,
            );
        }
        guard
    }

    fn add_pair(&mut self, first: &str, second: &str, strength: Strength) {
        if first.is_empty() || second.is_empty() || first == second {
            return;
        }
        let Ok(pair) = u16::try_from(self.strengths.len()) else {
            return;
        };
        self.strengths.push(strength);
        for (member, word) in [(1u8, first), (2u8, second)] {
            if word.contains(char::is_whitespace) {
                self.has_phrases = true;
                let phrase = word.split_whitespace().collect::<Vec<_>>().join(" ");
                self.add_form(phrase, pair, member);
                continue;
            }
            for form in inflections(word) {
                self.add_form(form, pair, member);
            }
            for (irregular, base) in lexicon::IRREGULAR_FORMS {
                if *base == word {
                    self.add_form((*irregular).to_owned(), pair, member);
                }
            }
        }
    }

    fn add_form(&mut self, form: String, pair: u16, member: u8) {
        let entry = self
            .opposite_forms
            .entry(form.into_boxed_str())
            .or_default();
        if !entry.contains(&(pair, member)) {
            entry.push((pair, member));
        }
    }

    /// What of `text` the guard compares. Extract once per prompt and keep it with the entry.
    pub fn signature(&self, text: &str) -> Signature {
        extract::signature(self, text)
    }

    /// Why `cached` may not answer `incoming`, or None when nothing embeddings are blind to
    /// differs. Extracts both signatures: prefer [`Guard::refuses_signatures`] in loops.
    pub fn refuses(&self, incoming: &str, cached: &str) -> Option<Refusal> {
        self.refuses_signatures(&self.signature(incoming), &self.signature(cached))
    }

    /// [`Guard::refuses`] on signatures extracted beforehand by this guard.
    pub fn refuses_signatures(&self, incoming: &Signature, cached: &Signature) -> Option<Refusal> {
        let (a, b) = (incoming, cached);
        if a.numbers != b.numbers {
            return Some(Refusal::Numbers);
        }
        if a.negations != b.negations {
            return Some(Refusal::Negation);
        }
        if antonym_of_other(a, b) || antonym_of_other(b, a) {
            return Some(Refusal::Antonym);
        }
        if a.comparisons != b.comparisons {
            return Some(Refusal::Comparison);
        }
        if self.opposites_differ(a, b) {
            return Some(Refusal::Opposites);
        }
        if a.quoted != b.quoted {
            return Some(Refusal::Quoted);
        }
        if names_differ(a, b) {
            return Some(Refusal::NamesOrCodes);
        }
        None
    }

    fn opposites_differ(&self, a: &Signature, b: &Signature) -> bool {
        let used = |s: &Signature, pair: u16| {
            s.opposites
                .iter()
                .find(|(p, _)| *p == pair)
                .map_or(0, |(_, members)| *members)
        };
        a.opposites.iter().chain(&b.opposites).any(|&(pair, _)| {
            let (in_a, in_b) = (used(a, pair), used(b, pair));
            match self.strengths.get(usize::from(pair)) {
                Some(Strength::Weak) => in_a != 0 && in_b != 0 && in_a != in_b,
                _ => in_a != in_b,
            }
        })
    }

    fn opposite_members(&self, form: &str) -> &[(u16, u8)] {
        self.opposite_forms.get(form).map_or(&[], Vec::as_slice)
    }
}

/// Whether `a` uses a prefixed opposite ("unsafe") of a word `b` uses ("safe") that `b` does
/// not itself use.
fn antonym_of_other(a: &Signature, b: &Signature) -> bool {
    a.antonyms
        .iter()
        .any(|&(word, negated)| b.has_word(negated) && !b.has_word(word))
}

/// Names and codes must be the same, in the same order of first appearance. A word counts as
/// a name on both sides when either prompt writes it as one, so "in python" still matches
/// "in Python" and a capitalised sentence opener matches the same word mid-sentence.
fn names_differ(a: &Signature, b: &Signature) -> bool {
    if a.names.is_empty() && b.names.is_empty() {
        return false;
    }
    let is_name = |word: &u64| a.names.contains(word) || b.names.contains(word);
    let order = |s: &Signature| {
        let mut seen: Vec<u64> = Vec::new();
        for word in s.words.iter().filter(|w| is_name(w)) {
            if !seen.contains(word) {
                seen.push(*word);
            }
        }
        seen
    };
    order(a) != order(b)
}

/// The forms a pair member takes in a sentence: "enable" → "enables", "enabled", "enabling";
/// "stop" → "stopped"; "deny" → "denied". Over-generating is harmless (the extra forms are
/// not words); two-letter words ("on", "up") and abbreviations take no endings.
fn inflections(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_owned()];
    if word.chars().count() < 3 || matches!(word, "min" | "max" | "asc" | "desc") {
        return forms;
    }
    let last = word.chars().last().unwrap_or('e');
    forms.push(format!("{word}s"));
    if let Some(stem) = word.strip_suffix('e') {
        forms.extend([format!("{word}d"), format!("{stem}ing")]);
        return forms;
    }
    forms.extend([
        format!("{word}ed"),
        format!("{word}ing"),
        format!("{word}{last}ed"),
        format!("{word}{last}ing"),
    ]);
    if word.ends_with(['s', 'x']) || word.ends_with("sh") || word.ends_with("ch") {
        forms.push(format!("{word}es"));
    }
    if let Some(stem) = word.strip_suffix('y') {
        forms.extend([format!("{stem}ies"), format!("{stem}ied")]);
    }
    forms
}
