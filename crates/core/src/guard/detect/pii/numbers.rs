//! Numbers that identify a person: payment cards, US social security numbers and phone
//! numbers. One pass cuts the text into *runs* — digit groups joined by short separators
//! (`+44 (0)20 7946-0958`, `4111 1111 1111 1111`, `536-22-8419`) — and each run is then judged
//! whole, as a card, an SSN or a phone number, in that order.
//!
//! Judging whole runs is what keeps precision: a run glued to a word (`v1.2`, `INV-2024-0001`,
//! `0x8007`, `#88123`) is a code, not a number; dates (`2024-06-11`), versions, decimals and
//! long identifiers do not have the shape of any numbering plan; cards must pass Luhn *and*
//! start with an issuer's prefix; SSNs must avoid the never-issued ranges. Shapes that real
//! numbers share with other things (a bare 10-digit run, `401 77 2318`) count only after a
//! context word such as "phone" or "SSN".

use super::super::text::{at, before, context_before, is_word_byte, next_digit};
use super::super::{Finding, Kind};
use super::{iban, ip};

/// Which kinds to report. IBANs and IPv4 addresses are found in the same pass: an IBAN's
/// check digits and an address's first octet each start a digit run.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kinds {
    pub phone: bool,
    pub card: bool,
    pub ssn: bool,
    pub iban: bool,
    pub ipv4: bool,
    pub ip_include_private: bool,
}

const MAX_GROUPS: usize = 12;

const PHONE_WORDS: &[&str] = &[
    "phone", "tel", "cell", "mobile", "call", "fax", "whatsapp", "sms", "text me", "dial", "handy",
    "ring",
];
const SSN_WORDS: &[&str] = &["ssn", "social security", "soc sec", "ss#", "ss #"];

/// Digit groups joined by separators, with an optional leading `+` or `(`.
struct Run {
    start: usize,
    end: usize,
    plus: bool,
    paren: bool,
    groups: [(usize, usize); MAX_GROUPS],
    n: usize,
    overflow: bool,
}

impl Run {
    fn groups(&self) -> &[(usize, usize)] {
        &self.groups[..self.n]
    }

    fn lens_are(&self, lens: &[usize]) -> bool {
        self.n == lens.len() && self.groups().iter().zip(lens).all(|(g, &l)| g.1 - g.0 == l)
    }

    fn digits(&self) -> usize {
        self.groups().iter().map(|g| g.1 - g.0).sum()
    }

    /// The separator bytes between group `i` and group `i + 1`.
    fn gap<'b>(&self, b: &'b [u8], i: usize) -> &'b [u8] {
        &b[self.groups[i].1..self.groups[i + 1].0]
    }

    /// The run's digits, without separators, in a stack buffer (runs past 19 digits are no
    /// card, so they are cut there).
    fn digit_bytes(&self, b: &[u8], buf: &mut [u8; 19]) -> usize {
        let mut n = 0;
        for &(s, e) in self.groups() {
            for &d in &b[s..e] {
                if n == buf.len() {
                    return n;
                }
                buf[n] = d;
                n += 1;
            }
        }
        n
    }
}

pub(super) fn find(text: &str, kinds: Kinds, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(d) = next_digit(b, i) {
        i = d;
        // "DE89 3704…": two letters, then the digit run that starts here.
        if kinds.iban
            && i >= 2
            && b[i - 1].is_ascii_alphabetic()
            && b[i - 2].is_ascii_alphabetic()
            && (i == 2 || !b[i - 3].is_ascii_alphanumeric())
            && let Some(end) = iban::iban_at(b, i - 2)
        {
            out.push(Finding::new(Kind::Iban, i - 2, end));
            i = end;
            continue;
        }
        if kinds.ipv4
            && let Some((end, report)) = ip::v4_at(b, i, kinds.ip_include_private)
        {
            if report {
                out.push(Finding::new(Kind::IpAddress, i, end));
            }
            i = end;
            continue;
        }
        if !(kinds.phone || kinds.card || kinds.ssn) {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        let run = scan_run(b, i);
        i = run.end.max(i + 1);
        if !free_standing(b, &run) {
            continue;
        }
        let kind = if kinds.card && is_card(b, &run) {
            Kind::Card
        } else if kinds.ssn && is_ssn(b, &run) {
            Kind::Ssn
        } else if kinds.phone && is_phone(b, &run) {
            Kind::Phone
        } else {
            continue;
        };
        out.push(Finding::new(kind, run.start, run.end));
    }
}

/// The run of groups starting with the digit at `s` (which follows a non-digit).
fn scan_run(b: &[u8], s: usize) -> Run {
    let plus = before(b, s) == Some(b'+');
    let paren = before(b, s) == Some(b'(');
    let mut run = Run {
        start: if plus || paren { s - 1 } else { s },
        end: s,
        plus,
        paren,
        groups: [(0, 0); MAX_GROUPS],
        n: 0,
        overflow: false,
    };
    let mut g0 = s;
    loop {
        let mut g1 = g0;
        while g1 < b.len() && b[g1].is_ascii_digit() {
            g1 += 1;
        }
        if run.n < MAX_GROUPS {
            run.groups[run.n] = (g0, g1);
            run.n += 1;
        } else {
            run.overflow = true;
        }
        run.end = g1;
        match next_group(b, g1) {
            Some(k) => g0 = k,
            None => break,
        }
    }
    // "(555)" ends on its closing parenthesis, which redaction should take too.
    if paren && run.n == 1 && at(b, run.end) == Some(b')') {
        run.end += 1;
    }
    run
}

/// Where the next group starts, if the bytes after a group at `g1` are a separator followed by
/// a digit.
fn next_group(b: &[u8], g1: usize) -> Option<usize> {
    let (mut seps, mut opens, mut closes) = (0, 0, 0);
    let mut k = g1;
    while k < b.len() && k - g1 < 3 {
        match b[k] {
            b' ' | b'-' | b'.' => seps += 1,
            b'(' => opens += 1,
            b')' => closes += 1,
            _ => break,
        }
        k += 1;
    }
    // One space, dash or dot, or a parenthesis with at most one of them: "(0)20", ") 555".
    let ok = k > g1
        && k < b.len()
        && b[k].is_ascii_digit()
        && seps <= 1 + usize::from(opens + closes > 0)
        && opens <= 1
        && closes <= 1;
    ok.then_some(k)
}

/// A run glued to a word or to a symbol is part of some other token: `v1.2`, `INV-2024-001`,
/// `#88123`, `$1 234`, `12%`, `2024@host`.
fn free_standing(b: &[u8], run: &Run) -> bool {
    let glue = |c: u8| matches!(c, b'.' | b'-' | b'/' | b':' | b'@' | b'\\');
    let ok_before = match before(b, run.start) {
        None => true,
        Some(c) if is_word_byte(c) || matches!(c, b'#' | b'$' | b'+' | b'&') => false,
        Some(c) if glue(c) => !before(b, run.start - 1).is_some_and(|p| p.is_ascii_alphanumeric()),
        Some(_) => true,
    };
    let ok_after = match at(b, run.end) {
        None => true,
        Some(c) if is_word_byte(c) || c == b'%' => false,
        Some(c) if glue(c) => !at(b, run.end + 1).is_some_and(|n| n.is_ascii_alphanumeric()),
        Some(_) => true,
    };
    ok_before && ok_after
}

fn is_card(b: &[u8], run: &Run) -> bool {
    if run.plus || run.paren || run.overflow || !(13..=19).contains(&run.digits()) {
        return false;
    }
    // One separator, the same everywhere: "4111 1111 1111 1111" or "5555-5555-5555-4444".
    let sep = if run.n > 1 { run.gap(b, 0) } else { b"" };
    if (run.n > 1 && !(sep == b" " || sep == b"-")) || (1..run.n).any(|i| run.gap(b, i - 1) != sep)
    {
        return false;
    }
    let lens_ok = run.n == 1
        || run.lens_are(&[4, 6, 5])
        || run.lens_are(&[4, 6, 4])
        || (run.n >= 3 && {
            let g = run.groups();
            g[..run.n - 1].iter().all(|g| g.1 - g.0 == 4)
                && (1..=4).contains(&(g[run.n - 1].1 - g[run.n - 1].0))
        });
    if !lens_ok {
        return false;
    }
    let mut buf = [0u8; 19];
    let n = run.digit_bytes(b, &mut buf);
    issuer_ok(&buf[..n]) && luhn_ok(&buf[..n])
}

/// The card networks' issuer identification ranges (Visa, Mastercard, Amex, Discover, Diners,
/// JCB, UnionPay, Maestro, Mir, RuPay) with their lengths. Most long numbers in prompts —
/// timestamps, snowflake ids, order numbers — start elsewhere.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| {
        d[..k]
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'))
    };
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    match d[0] {
        b'4' => matches!(n, 13 | 16 | 19), // a 15-digit run starting with 4 is an IMEI
        b'5' => ((51..=55).contains(&p2) && n == 16) || matches!(p2, 50 | 56..=59),
        b'2' => ((2221..=2720).contains(&p4) && n == 16) || (2200..=2204).contains(&p4),
        b'3' => {
            ((p2 == 34 || p2 == 37) && n == 15)
                || (((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && n >= 14)
                || ((3528..=3589).contains(&p4) && n >= 16)
        }
        b'6' => n >= 16 || matches!(p4, 6304 | 6759) || p3 == 639 || p2 == 67,
        _ => false,
    }
}

/// The Luhn (mod 10) check digit test over ASCII digits.
pub(crate) fn luhn_ok(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn is_ssn(b: &[u8], run: &Run) -> bool {
    if run.plus || run.paren {
        return false;
    }
    let context = || context_before(b, run.start, 40, SSN_WORDS);
    let shaped = if run.lens_are(&[3, 2, 4]) {
        let (g1, g2) = (run.gap(b, 0), run.gap(b, 1));
        (g1 == b"-" && g2 == b"-") || (g1 == g2 && (g1 == b" " || g1 == b".") && context())
    } else {
        run.lens_are(&[9]) && context()
    };
    if !shaped {
        return false;
    }
    let mut buf = [0u8; 19];
    let n = run.digit_bytes(b, &mut buf);
    n == 9 && ssn_valid(&buf[..9])
}

/// The SSA never issues area 000, 666 or 900–999, group 00 or serial 0000.
pub(crate) fn ssn_valid(d: &[u8]) -> bool {
    let area = &d[0..3];
    area != b"000" && area != b"666" && area[0] != b'9' && &d[3..5] != b"00" && &d[5..9] != b"0000"
}

fn is_phone(b: &[u8], run: &Run) -> bool {
    let digits = run.digits();
    let g = run.groups();
    let len = |i: usize| g[i].1 - g[i].0;
    let first = b[g[0].0];
    if run.overflow {
        return false;
    }
    if run.plus {
        // International: E.164 allows at most 15 digits; a country code has 1–3, written
        // alone ("+44 20…") or glued to the number ("+14155552671").
        return (8..=15).contains(&digits) && (run.n == 1 || country_code(&b[g[0].0..g[0].1]));
    }
    if run.paren {
        // "(555) 123-4567", "(02) 9876 5432": an area code in parentheses.
        return len(0) <= 5 && (9..=12).contains(&digits) && run.n >= 2;
    }
    if len(0) >= 2 && first == b'0' && b[g[0].0 + 1] == b'0' {
        // "0044 20 7946 0321", "00 44 20…": the international prefix written as 00, then a
        // country code ("Invoice 0042 1234 5678" names no country).
        let cc = if len(0) == 2 {
            g.get(1).map(|g1| &b[g1.0..g1.1])
        } else {
            Some(&b[g[0].0 + 2..g[0].1])
        };
        return run.n >= 2 && (10..=17).contains(&digits) && cc.is_some_and(country_code);
    }
    // North American: 555-123-4567, 415.555.2671, 1-800-555-0199.
    if (run.lens_are(&[3, 3, 4]) && first != b'0' && first != b'1')
        || (run.lens_are(&[1, 3, 3, 4]) && first == b'1')
    {
        return true;
    }
    // National numbers behind a trunk 0: 06 12 34 56 78, 020 7946 0018, 07700 900123,
    // 070-123 45 67, 054-123-4567, 0151 23456789. Groups of one digit are part numbers, not
    // phones; twelve digits or more come in few groups (a list of two-digit numbers is not).
    let trunk_len = (9..=11).contains(&digits) || ((12..=13).contains(&digits) && run.n <= 3);
    if first == b'0' && run.n >= 2 && trunk_len && (0..run.n).all(|i| len(i) >= 2) {
        return true;
    }
    // Shapes that phone numbers share with other things count only when the text says it
    // is a phone: "my cell is 5551234567", "call 555-0123".
    let bare = run.n == 1 && (10..=11).contains(&digits) && (first != b'1' || digits == 11);
    let local = run.lens_are(&[3, 4]) && first != b'0' && first != b'1';
    (bare || local) && context_before(b, run.start, 32, PHONE_WORDS)
}

/// Whether the digits are an assigned ITU country calling code (1 to 3 digits).
fn country_code(d: &[u8]) -> bool {
    let n = d
        .iter()
        .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
    match d.len() {
        1 => n == 1 || n == 7,
        2 => {
            matches!(n, 20 | 27 | 30..=34 | 36 | 39 | 40 | 41 | 43..=49 | 51..=58 | 60..=66 | 81 | 82 | 84 | 86 | 90..=95 | 98)
        }
        3 => {
            matches!(n / 10, 21..=26 | 29 | 35 | 37 | 38 | 42 | 50 | 59 | 67..=69 | 85 | 87 | 88 | 96 | 97 | 99)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Kinds = Kinds {
        phone: true,
        card: true,
        ssn: true,
        iban: false,
        ipv4: false,
        ip_include_private: false,
    };

    fn found(text: &str) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        find(text, ALL, &mut out);
        out.iter()
            .map(|f| (f.kind.category_static(), f.text(text)))
            .collect()
    }

    impl Kind {
        fn category_static(&self) -> &'static str {
            match self {
                Kind::Card => "card",
                Kind::Ssn => "ssn",
                Kind::Phone => "phone",
                _ => "other",
            }
        }
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_one_digit_off() {
        assert!(luhn_ok(b"4111111111111111"));
        assert!(luhn_ok(b"378282246310005"));
        assert!(luhn_ok(b"6011111111111117"));
        assert!(!luhn_ok(b"4111111111111112"));
        assert!(!luhn_ok(b"9172900840643074"));
    }

    #[test]
    fn cards_need_luhn_an_issuer_and_a_card_grouping() {
        assert_eq!(
            found("card 4111 1111 1111 1111 ok"),
            [("card", "4111 1111 1111 1111")]
        );
        assert_eq!(
            found("5555-5555-5555-4444"),
            [("card", "5555-5555-5555-4444")]
        );
        assert_eq!(
            found("amex 3782 822463 10005."),
            [("card", "3782 822463 10005")]
        );
        assert_eq!(
            found("4483 2665 3670 3015 921"),
            [("card", "4483 2665 3670 3015 921")]
        );
        // Luhn-valid but no issuer starts with 1 or 9; Luhn-failing order number.
        assert!(found("id 1000000000000008 and 9000000000000008").is_empty());
        assert!(found("IMEI 490154203237518").is_empty()); // Luhn-valid, but Visa has no 15-digit numbers
        assert!(found("order 6545-3269-5294-0756").is_empty());
        // Mixed separators or odd grouping are not how cards are written.
        assert!(found("4111-1111 1111-1111").is_empty());
        assert!(found("41 1111 1111 1111 11").is_empty());
    }

    #[test]
    fn ssn_invalid_ranges_are_excluded() {
        assert!(ssn_valid(b"536228419"));
        for bad in [
            &b"000123456"[..],
            b"666456789",
            b"912345678",
            b"123004567",
            b"123450000",
        ] {
            assert!(!ssn_valid(bad), "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(found("SSN 536-22-8419."), [("ssn", "536-22-8419")]);
        assert!(found("000-12-3456, 666-45-6789, 912-34-5678").is_empty());
    }

    #[test]
    fn bare_or_spaced_ssns_need_context() {
        assert_eq!(
            found("Social Security Number 401 77 2318"),
            [("ssn", "401 77 2318")]
        );
        assert_eq!(found("ssn=219099999&x"), [("ssn", "219099999")]);
        assert!(found("reference 219099999").is_empty());
        assert!(found("seats 401 77 2318").is_empty());
    }

    #[test]
    fn phones_in_international_and_national_formats() {
        for p in [
            "+44 20 7946 0958",
            "(555) 123-4567",
            "+1-202-555-0143",
            "06 12 34 56 78",
            "+14155552671",
            "+44 (0)20 7946 0754",
            "1-800-555-0199",
            "0044 20 7946 0321",
            "070-123 45 67",
            "415.555.2671",
        ] {
            let text = format!("call {p}, thanks");
            assert_eq!(found(&text), [("phone", p)], "{p}");
        }
        assert_eq!(found("my cell is 5551234567"), [("phone", "5551234567")]);
        assert_eq!(found("call 555-0123 now"), [("phone", "555-0123")]);
        assert!(found("room 555-0123").is_empty());
        assert_eq!(found("Mobil: 0151 23456789"), [("phone", "0151 23456789")]);
        assert!(found("Invoice 0042 1234 5678, lottery 04 12 19 27 33 41").is_empty());
        assert!(found("+42 1234 5678 9").is_empty());
    }

    #[test]
    fn dates_versions_ids_and_amounts_are_not_phones() {
        for t in [
            "on 2024-06-11 at 14:30",
            "version 1.10.0 and 11/06/2024",
            "INV-2024-000123",
            "ticket #2024-0153-77",
            "i-0123456789abcdef0",
            "timestamp 1718035200123",
            "population 8 336 817",
            "part 0 986 494 123",
            "ISBN 0-306-40615-2",
            "error 0x80070005",
            "12.5% of 2654435761",
            "ZIP 90210-1234",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn multibyte_neighbours_keep_spans_on_char_boundaries() {
        let text = "電話番号は+81 3-1234-5678です。カード４ 4242424242424242。";
        assert_eq!(
            found(text),
            [("phone", "+81 3-1234-5678"), ("card", "4242424242424242")]
        );
    }
}
