//! The placeholders of one request: what a `redact` guardrail put in place of each value
//! (`[EMAIL_1]`, `[CARD_2]`), the same placeholder for the same value everywhere in the
//! request, and, where the guardrail restores, the way back from placeholder to value for the
//! answer. Lives only as long as the request; values are never logged or recorded.

use std::borrow::Cow;
use std::collections::HashMap;

use super::detect::Finding;

#[derive(Debug, Default)]
pub struct Vault {
    /// value → placeholder, so a value seen twice gets one placeholder.
    placeholders: HashMap<String, String>,
    /// placeholder → value, for the placeholders whose guardrail restores.
    originals: HashMap<String, String>,
    /// How many placeholders of each tag were handed out.
    counts: HashMap<String, u32>,
}

impl Vault {
    /// Replaces each finding in `text` with its placeholder. `findings` must not overlap.
    /// Returns how many of each category were replaced.
    pub fn redact(
        &mut self,
        text: &mut String,
        findings: &[Finding],
        restore: bool,
        counted: &mut Vec<(String, u32)>,
    ) {
        // From the end, so earlier offsets stay valid.
        for f in findings.iter().rev() {
            let Some(value) = text.get(f.start..f.end) else {
                continue;
            };
            let placeholder = self.placeholder(f.kind.placeholder_tag(), value, restore);
            text.replace_range(f.start..f.end, &placeholder);
            count(counted, f.kind.category());
        }
    }

    fn placeholder(&mut self, tag: &str, value: &str, restore: bool) -> String {
        if let Some(p) = self.placeholders.get(value) {
            return p.clone();
        }
        let n = self.counts.entry(tag.to_owned()).or_insert(0);
        *n += 1;
        let placeholder = format!("[{tag}_{n}]");
        self.placeholders
            .insert(value.to_owned(), placeholder.clone());
        if restore {
            self.originals.insert(placeholder.clone(), value.to_owned());
        }
        placeholder
    }

    /// Whether any placeholder is to be restored in the answer.
    pub fn restores(&self) -> bool {
        !self.originals.is_empty()
    }

    /// `text` with every restorable placeholder replaced by its value.
    pub fn restore<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.originals.is_empty() || !text.contains('[') {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            match tail.find(']').map(|close| &tail[..=close]) {
                Some(candidate) if self.originals.contains_key(candidate) => {
                    out.push_str(&self.originals[candidate]);
                    rest = &tail[candidate.len()..];
                }
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// The longest placeholder handed out: a streamed answer holds back at most this much of
    /// a `[` that may open one.
    pub fn longest_placeholder(&self) -> usize {
        self.originals.keys().map(String::len).max().unwrap_or(0)
    }
}

/// Adds one to `category`'s count.
pub fn count(counted: &mut Vec<(String, u32)>, category: &str) {
    match counted.iter_mut().find(|(c, _)| c == category) {
        Some((_, n)) => *n += 1,
        None => counted.push((category.to_owned(), 1)),
    }
}
