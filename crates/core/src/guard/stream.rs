//! A streamed answer, screened as it flows. The text of the first choice passes through a
//! sliding window: each chunk's text joins what is held back, the detectors scan the whole held
//! text, and everything but the last `window` bytes goes out, redacted and with this request's
//! placeholders restored. So a secret or a card number split across two chunks is still caught,
//! without buffering the answer and without delaying any text by more than the window (a value
//! being found at the edge is held until it is whole). The rest goes out with the chunk that
//! carries the finish reason, or in a last chunk of its own.

use std::sync::Arc;

use switchyard_wire::openai::ChatCompletionChunk;

use super::config::Action;
use super::detect::{self, Finding};
use super::vault::{Vault, count};
use super::{Guard, GuardAction, summary};
use crate::error::GatewayError;

pub struct StreamScreen {
    guards: Vec<Arc<Guard>>,
    vault: Vault,
    window: usize,
    actions: Vec<GuardAction>,
    /// Text of choice 0 not yet sent.
    held: String,
    /// Per guardrail, the categories found so far (recorded when the stream ends).
    counted: Vec<Vec<(String, u32)>>,
    findings: Vec<Finding>,
}

impl StreamScreen {
    pub(super) fn new(
        guards: Vec<Arc<Guard>>,
        vault: Vault,
        window: usize,
        actions: Vec<GuardAction>,
    ) -> StreamScreen {
        let counted = vec![Vec::new(); guards.len()];
        StreamScreen {
            guards,
            vault,
            window,
            actions,
            held: String::new(),
            counted,
            findings: Vec::new(),
        }
    }

    /// Whether anything in the stream is to be screened or restored.
    pub fn is_active(&self) -> bool {
        !self.guards.is_empty() || self.vault.restores()
    }

    /// Screens one chunk in place: its text becomes what may go out now.
    pub fn chunk(&mut self, chunk: &mut ChatCompletionChunk) -> Result<(), GatewayError> {
        let Some(choice) = chunk.choices.iter_mut().find(|c| c.index == 0) else {
            return Ok(());
        };
        let had_text = match choice.delta.content.take() {
            Some(text) => {
                self.held.push_str(&text);
                true
            }
            None => false,
        };
        let out = self.release(choice.finish_reason.is_some())?;
        choice.delta.content = (had_text || !out.is_empty()).then_some(out);
        Ok(())
    }

    /// What is still held when the stream ends without a finish reason.
    pub fn flush(&mut self) -> Result<String, GatewayError> {
        self.release(true)
    }

    /// The actions of the whole request, once the stream is over.
    pub fn take_actions(&mut self) -> Vec<GuardAction> {
        for (guard, counted) in self.guards.iter().zip(self.counted.iter_mut()) {
            if let Some(detail) = summary(counted) {
                let action = if guard.action == Action::Redact {
                    "redacted"
                } else {
                    "flagged"
                };
                self.actions.push(GuardAction {
                    guardrail: guard.name.clone(),
                    action,
                    detail,
                });
                counted.clear();
            }
        }
        std::mem::take(&mut self.actions)
    }

    /// Scans what is held and takes out what may go: all of it when `last`, else all but the
    /// window (and never part of a value being found, or of a placeholder).
    fn release(&mut self, last: bool) -> Result<String, GatewayError> {
        if self.held.is_empty() {
            return Ok(String::new());
        }
        let mut cut = if last {
            self.held.len()
        } else {
            // Hold back only the word still arriving (a value is one word, or digits in groups),
            // and never more than the window: text between words goes out at once.
            let mut floor = self.held.len().saturating_sub(self.window);
            while !self.held.is_char_boundary(floor) {
                floor -= 1;
            }
            last_word_start(&self.held).max(floor)
        };
        let mut found: Vec<(usize, Finding)> = Vec::new();
        for (i, guard) in self.guards.iter().enumerate() {
            let Some(detector) = guard.span_detector() else {
                continue;
            };
            self.findings.clear();
            detector.find(&self.held, &mut self.findings);
            detect::merge_overlapping(&mut self.findings);
            found.extend(self.findings.drain(..).map(|f| (i, f)));
        }
        for (_, f) in &found {
            if f.start < cut && f.end > cut && !last {
                cut = f.start;
            }
        }
        if !last {
            cut = self.outside_placeholder(cut);
        }
        let mut out: String = self.held.drain(..cut).collect();
        let mut redact: Vec<Finding> = Vec::new();
        for (i, f) in found.into_iter().filter(|(_, f)| f.end <= cut) {
            let guard = &self.guards[i];
            match guard.action {
                Action::Block => {
                    return Err(guard.blocked(
                        "answer",
                        f.kind.category(),
                        "the rest of the answer was withheld",
                    ));
                }
                Action::Redact => redact.push(f),
                _ => count(&mut self.counted[i], f.kind.category()),
            }
        }
        if !redact.is_empty() {
            redact.sort_by_key(|f| f.start);
            detect::merge_overlapping(&mut redact);
            let mut counted = Vec::new();
            self.vault.redact(&mut out, &redact, false, &mut counted);
            if let Some(i) = self.guards.iter().position(|g| g.action == Action::Redact) {
                for (category, n) in counted {
                    for _ in 0..n {
                        count(&mut self.counted[i], &category);
                    }
                }
            }
        }
        Ok(self.vault.restore(&out).into_owned())
    }

    /// Moves `cut` back before a `[` that may open a placeholder still arriving.
    fn outside_placeholder(&self, cut: usize) -> usize {
        let longest = self.vault.longest_placeholder();
        if longest == 0 {
            return cut;
        }
        let from = cut.saturating_sub(longest);
        let head = &self.held[..cut];
        match head.rfind('[') {
            Some(open) if open >= from && !head[open..].contains(']') => open,
            _ => cut,
        }
    }
}

/// Where the last word of `text` starts: after the last whitespace, where a space between
/// digits (`4111 1111`, `+44 20 7946`), or after a digit at the very end, does not count, since
/// a card or a phone number arrives in groups. `text.len()` when it ends with whitespace.
fn last_word_start(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut start = text.len();
    for (i, c) in text.char_indices().rev() {
        if c.is_whitespace() {
            let before_digit = i > 0 && bytes[i - 1].is_ascii_digit();
            let after = bytes.get(i + 1).copied();
            let in_number = c == ' '
                && before_digit
                && after.is_none_or(|b| b.is_ascii_digit() || b == b'(' || b == b'-');
            if !in_number {
                break;
            }
        }
        start = i;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::super::detect::{Detector, Finding, Kind, SecretKind};
    use super::*;
    use crate::guard::config::Side;
    use crate::guard::{Check, Guard};

    /// Finds `KEY-` followed by 8 letters: a stand-in for a real detector.
    struct KeyFinder;

    impl Detector for KeyFinder {
        fn name(&self) -> &'static str {
            "keys"
        }
        fn find(&self, text: &str, out: &mut Vec<Finding>) {
            let mut from = 0;
            while let Some(at) = text[from..].find("KEY-") {
                let start = from + at;
                let end = start + 12;
                if text.len() >= end
                    && text[start + 4..end]
                        .chars()
                        .all(|c| c.is_ascii_alphabetic())
                {
                    out.push(Finding::new(Kind::Secret(SecretKind::Generic), start, end));
                }
                from = start + 4;
            }
        }
    }

    fn screen(window: usize, action: Action) -> StreamScreen {
        let guard = Arc::new(Guard {
            name: "keys".into(),
            side: Side::Output,
            action,
            restore: false,
            restrict_to: None,
            check: Check::Spans(Box::new(KeyFinder)),
        });
        StreamScreen::new(vec![guard], Vault::default(), window, Vec::new())
    }

    fn chunk(text: &str, last: bool) -> ChatCompletionChunk {
        let mut c = ChatCompletionChunk::with_delta(
            "c",
            0,
            "m",
            switchyard_wire::openai::Delta {
                content: Some(text.into()),
                ..Default::default()
            },
        );
        if last {
            c.choices[0].finish_reason = Some("stop".into());
        }
        c
    }

    fn run(screen: &mut StreamScreen, pieces: &[&str]) -> Result<Vec<String>, GatewayError> {
        let mut out = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let mut c = chunk(p, i + 1 == pieces.len());
            screen.chunk(&mut c)?;
            out.push(c.choices[0].delta.content.clone().unwrap_or_default());
        }
        Ok(out)
    }

    #[test]
    fn a_value_split_across_chunks_is_redacted_and_nothing_else_is_lost() {
        let mut s = screen(8, Action::Redact);
        let pieces = ["here is KEY-AB", "CDEFGH and then ", "some more text."];
        let out = run(&mut s, &pieces).unwrap();
        let joined: String = out.concat();
        assert_eq!(joined, "here is [SECRET_1] and then some more text.");
        assert!(out.iter().all(|o| !o.contains("KEY-")), "{out:?}");
        let actions = s.take_actions();
        assert_eq!(actions[0].to_record(), "keys:redacted:secret=1");
    }

    #[test]
    fn text_is_held_back_by_no_more_than_the_word_arriving_or_the_window() {
        let mut s = screen(4, Action::Redact);
        let out = run(&mut s, &["abcdefghij", "klmn", "op"]).unwrap();
        assert_eq!(out[0], "abcdef", "a long word: all but the window goes out");
        assert_eq!(out.concat(), "abcdefghijklmnop");

        let mut s = screen(128, Action::Redact);
        let out = run(&mut s, &["Hello there, ", "how are", " you?"]).unwrap();
        assert_eq!(
            out,
            ["Hello there, ", "how ", "are you?"],
            "whole words go out at once"
        );
    }

    #[test]
    fn a_number_in_groups_is_one_word() {
        assert_eq!(last_word_start("card 4111 1111 "), 5);
        assert_eq!(last_word_start("call +44 20 7946"), 5);
        assert_eq!(last_word_start("done. "), 6);
        assert_eq!(last_word_start("naïve café"), "naïve ".len());
    }

    #[test]
    fn a_block_on_the_stream_is_an_error() {
        let mut s = screen(4, Action::Block);
        let err = run(&mut s, &["fine so far, KEY-", "ABCDEFGH leaked"]).unwrap_err();
        assert_eq!(err.code, "guardrail_blocked");
        assert!(!err.message.contains("ABCDEFGH"));
    }

    #[test]
    fn placeholders_split_across_chunks_are_restored_whole() {
        let mut vault = Vault::default();
        let mut text = String::from("mail bob@example.com");
        let mut counted = Vec::new();
        vault.redact(
            &mut text,
            &[Finding::new(Kind::Email, 5, 20)],
            true,
            &mut counted,
        );
        assert_eq!(text, "mail [EMAIL_1]");
        let mut s = StreamScreen::new(Vec::new(), vault, 2, Vec::new());
        assert!(s.is_active());
        let out = run(&mut s, &["write to [EMA", "IL_1] today", "!"]).unwrap();
        assert_eq!(out.concat(), "write to bob@example.com today!");
        assert!(
            !out[0].contains('['),
            "a partial placeholder is held: {out:?}"
        );
    }
}
