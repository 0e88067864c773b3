//! IBANs: a country code, two check digits and the national account number, written solid
//! (`GB82WEST12345698765432`) or in groups of four (`DE89 3704 0044 0532 0130 00`).
//!
//! A candidate must have its country's exact length and pass the ISO 13616 mod-97 check, so a
//! random code that merely starts with two letters and two digits is accepted about once in
//! 97 times *and* only at the right length. Countries outside the registry table are not
//! reported: guessing their length would trade that precision away.

/// IBAN lengths per country, from the IBAN registry.
#[rustfmt::skip]
const LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20), (b"BE", 16),
    (b"BG", 22), (b"BH", 22), (b"BR", 29), (b"BY", 28), (b"CH", 21), (b"CR", 22), (b"CY", 28),
    (b"CZ", 24), (b"DE", 22), (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24),
    (b"FI", 18), (b"FO", 18), (b"FR", 27), (b"GB", 22), (b"GE", 22), (b"GI", 23), (b"GL", 18),
    (b"GR", 27), (b"GT", 28), (b"HR", 21), (b"HU", 28), (b"IE", 22), (b"IL", 23), (b"IQ", 23),
    (b"IS", 26), (b"IT", 27), (b"JO", 30), (b"KW", 30), (b"KZ", 20), (b"LB", 28), (b"LC", 32),
    (b"LI", 21), (b"LT", 20), (b"LU", 20), (b"LV", 21), (b"MC", 27), (b"MD", 24), (b"ME", 22),
    (b"MK", 19), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NL", 18), (b"NO", 15), (b"PK", 24),
    (b"PL", 28), (b"PS", 29), (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"SA", 24),
    (b"SC", 31), (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27), (b"ST", 25), (b"SV", 28),
    (b"TL", 23), (b"TN", 24), (b"TR", 26), (b"UA", 29), (b"VA", 22), (b"VG", 24), (b"XK", 20),
];

const MAX_LEN: usize = 34;

fn expected_len(country: [u8; 2]) -> Option<usize> {
    LENGTHS
        .iter()
        .find(|(c, _)| **c == country)
        .map(|&(_, n)| n)
}

/// The end of the IBAN starting at `s` (its country code), if it is one. Letters must all be
/// upper case, or all lower case; spaces may separate groups of four.
pub(super) fn iban_at(b: &[u8], s: usize) -> Option<usize> {
    let upper = b[s].is_ascii_uppercase();
    if b[s + 1].is_ascii_uppercase() != upper {
        return None;
    }
    let len = expected_len([b[s].to_ascii_uppercase(), b[s + 1].to_ascii_uppercase()])?;
    let mut chars = [0u8; MAX_LEN];
    let mut n = 0;
    let mut k = s;
    while n < len {
        let c = *b.get(k)?;
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_alphabetic() && c.is_ascii_uppercase() != upper {
                return None;
            }
            chars[n] = c.to_ascii_uppercase();
            n += 1;
        } else if !(c == b' ' && n % 4 == 0 && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric))
        {
            return None;
        }
        k += 1;
    }
    if b.get(k).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    mod97_ok(&chars[..len]).then_some(k)
}

/// ISO 13616: move the first four characters to the end, read letters as 10–35, and the
/// number must be 1 modulo 97. Computed digit by digit, so no big integers.
pub(crate) fn mod97_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        rem = match c {
            b'0'..=b'9' => (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (rem * 100 + u32::from(c - b'A') + 10) % 97,
            _ => return false,
        };
    }
    rem == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::{PiiConfig, PiiDetector};
    use crate::guard::detect::Detector;

    fn ibans(text: &str) -> Vec<&str> {
        let only_iban = PiiConfig {
            email: false,
            phone: false,
            card: false,
            ssn: false,
            ip: false,
            ..PiiConfig::default()
        };
        let mut out = Vec::new();
        PiiDetector::new(only_iban).unwrap().find(text, &mut out);
        out.iter().map(|f| f.text(text)).collect()
    }

    #[test]
    fn mod97_accepts_registry_examples_and_rejects_a_typo() {
        assert!(mod97_ok(b"GB82WEST12345698765432"));
        assert!(mod97_ok(b"DE89370400440532013000"));
        assert!(mod97_ok(b"NO9386011117947"));
        assert!(!mod97_ok(b"DE89370400440532013001"));
        assert!(!mod97_ok(b"GB28WEST12345698765432"));
    }

    #[test]
    fn finds_solid_grouped_and_lower_case_ibans() {
        assert_eq!(
            ibans("IBAN DE89 3704 0044 0532 0130 00 by Monday"),
            ["DE89 3704 0044 0532 0130 00"]
        );
        assert_eq!(
            ibans("(GB82WEST12345698765432)"),
            ["GB82WEST12345698765432"]
        );
        assert_eq!(ibans("nl91abna0417164300"), ["nl91abna0417164300"]);
        assert_eq!(
            ibans("BR97 0036 0305 0000 1000 9795 493P 1."),
            ["BR97 0036 0305 0000 1000 9795 493P 1"]
        );
    }

    #[test]
    fn rejects_wrong_length_checksum_or_glued_codes() {
        assert!(ibans("DE89 3704 0044 0532 0130 0").is_empty()); // one digit short
        assert!(ibans("DE89370400440532013000123").is_empty()); // too long
        assert!(ibans("XDE89370400440532013000").is_empty()); // glued to a letter
        assert!(ibans("SM-G991B and AB12 3456 7890 1234").is_empty());
        assert!(ibans("Gb82WEST12345698765432").is_empty()); // mixed case
    }

    #[test]
    fn spans_stay_on_char_boundaries_in_rtl_text() {
        let text = "رقم الآيبان SA03 8000 0000 6080 1016 7519 شكرا";
        assert_eq!(ibans(text), ["SA03 8000 0000 6080 1016 7519"]);
    }
}
