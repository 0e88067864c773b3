//! Small byte-level helpers shared by the detectors: word boundaries, context look-behind and
//! Shannon entropy. They work on `&[u8]` of a `&str` and allocate nothing.
//!
//! The detectors' own matches are ASCII, and an ASCII byte is never part of a multi-byte UTF-8
//! sequence, so spans that start and end on ASCII bytes are on `char` boundaries.

/// An ASCII letter, digit or `_`: a byte that continues an identifier or token.
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The byte before `i`, if any.
pub(crate) fn before(bytes: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| bytes[j])
}

/// The byte at `i`, if any.
pub(crate) fn at(bytes: &[u8], i: usize) -> Option<u8> {
    bytes.get(i).copied()
}

/// The largest `char` boundary of `text` at or below `i`.
pub(crate) fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Whether one of `words` (lower-case ASCII) occurs, in any ASCII case, in the `window` bytes
/// before `pos`. Used for context such as "ssn" before a bare nine-digit number.
pub(crate) fn context_before(bytes: &[u8], pos: usize, window: usize, words: &[&str]) -> bool {
    let from = pos.saturating_sub(window);
    let hay = &bytes[from..pos];
    words
        .iter()
        .any(|w| contains_ignore_ascii_case(hay, w.as_bytes()))
}

/// Case-insensitive (ASCII) substring test; `needle` must be lower-case.
pub(crate) fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || hay.len() < needle.len() {
        return needle.is_empty();
    }
    hay.windows(needle.len()).any(|w| {
        w.iter()
            .zip(needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// The position of the first ASCII digit at or after `from`. Eight bytes at a time: most of a
/// prompt holds no digit, and the number scanners only care where digits are.
pub(crate) fn next_digit(b: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while from + 8 <= b.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&b[from..from + 8]);
        let x = u64::from_le_bytes(chunk);
        let low = x & !HIGH;
        // Per byte, without carries between bytes (each sum stays under 0x100): the high bit
        // of `low + 0x50` is set when the byte is at least '0' (0x30), that of `low + 0x46`
        // when it is above '9' (0x39); bytes with their own high bit set are not ASCII.
        let at_least_zero = (low + 0x50 * ONES) & HIGH;
        let above_nine = (low + 0x46 * ONES) & HIGH;
        let digits = at_least_zero & !above_nine & !(x & HIGH);
        if digits != 0 {
            return Some(from + digits.trailing_zeros() as usize / 8);
        }
        from += 8;
    }
    (from..b.len()).find(|&i| b[i].is_ascii_digit())
}

/// Shannon entropy of the bytes, in bits per byte. Random base62 scores ~5.7 at length 64,
/// random hex ~3.9; an English word or a repeated placeholder scores well under 3.
pub(crate) fn shannon_entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_separates_random_tokens_from_words() {
        assert!(shannon_entropy(b"aaaaaaaaaaaaaaaa") < 0.01);
        assert!(shannon_entropy(b"passwordpassword") < 3.0);
        assert!(shannon_entropy(b"MfFvWzS1AG3QKYNkXu7o2JP6hq6ItLy8") > 4.0);
    }

    #[test]
    fn next_digit_agrees_with_a_plain_search() {
        let text =
            "héllo wörld, no digits here at all… then 7 and x9 and ÿ0 and \u{7f}5".as_bytes();
        for from in 0..=text.len() {
            let plain = (from..text.len()).find(|&i| text[i].is_ascii_digit());
            assert_eq!(next_digit(text, from), plain, "from {from}");
        }
        let all: Vec<u8> = (0..=255).collect();
        let found: Vec<usize> = (0..all.len())
            .filter(|&i| next_digit(&all, i) == Some(i))
            .collect();
        assert_eq!(found, (0x30..=0x39).collect::<Vec<_>>());
    }

    #[test]
    fn context_is_case_insensitive_and_bounded() {
        let t = b"Your SSN: 123";
        assert!(context_before(t, 10, 8, &["ssn"]));
        assert!(!context_before(t, 10, 3, &["ssn"]));
    }

    #[test]
    fn floor_boundary_steps_back_over_multibyte_chars() {
        let s = "aé"; // 'é' is two bytes
        assert_eq!(floor_boundary(s, 2), 1);
        assert_eq!(floor_boundary(s, 9), 3);
    }
}
