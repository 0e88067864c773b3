//! Self-describing credentials: tokens that announce what they are with a vendor prefix, PEM
//! private key blocks, JWTs and Slack webhook URLs. Each validator gets the position of its
//! anchor and returns the credential's span, or `None`.
//!
//! The shapes follow the vendors' published formats (prefix, alphabet, length). On top of the
//! shape, a token body must look random (Shannon entropy of at least 3 bits per character) so
//! that documentation placeholders such as `sk_test_XXXXXXXX…` are not reported.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use memchr::memmem;

use super::super::SecretKind;
use super::super::text::{before, is_word_byte, shannon_entropy};
use super::in_charset;

/// The alphabet of a token body.
#[derive(Debug, Clone, Copy)]
pub(super) enum Chars {
    Alnum,
    AlnumUnderscore,
    UrlSafe,
    UpperAlnum,
    AlnumDash,
    UrlSafeDot,
}

/// A token recognised by its literal prefix.
#[derive(Debug)]
pub(super) struct PrefixRule {
    pub prefix: &'static str,
    pub kind: SecretKind,
    pub chars: Chars,
    pub min: usize,
    pub max: usize,
    /// The body must hold both letters and digits (for prefixes shared with ordinary words,
    /// like `sk-`).
    pub mixed: bool,
}

const fn rule(
    prefix: &'static str,
    kind: SecretKind,
    chars: Chars,
    min: usize,
    max: usize,
    mixed: bool,
) -> PrefixRule {
    PrefixRule {
        prefix,
        kind,
        chars,
        min,
        max,
        mixed,
    }
}

use Chars::*;
use SecretKind::*;

#[rustfmt::skip]
pub(super) static PREFIX_RULES: &[PrefixRule] = &[
    rule("sk-ant-", Anthropic, UrlSafe, 32, 300, true),
    rule("sk-proj-", OpenAi, UrlSafe, 20, 300, true),
    rule("sk-svcacct-", OpenAi, UrlSafe, 20, 300, true),
    rule("sk-admin-", OpenAi, UrlSafe, 20, 300, true),
    // Legacy OpenAI keys, and the many OpenAI-compatible vendors that copied the `sk-` form.
    rule("sk-", OpenAi, UrlSafe, 32, 200, true),
    rule("AKIA", AwsAccessKey, UpperAlnum, 16, 16, false),
    rule("ASIA", AwsAccessKey, UpperAlnum, 16, 16, false),
    rule("AIza", GoogleApiKey, UrlSafe, 35, 35, false),
    rule("ghp_", GitHub, Alnum, 36, 251, false),
    rule("gho_", GitHub, Alnum, 36, 251, false),
    rule("ghu_", GitHub, Alnum, 36, 251, false),
    rule("ghs_", GitHub, Alnum, 36, 251, false),
    rule("ghr_", GitHub, Alnum, 36, 251, false),
    rule("github_pat_", GitHub, AlnumUnderscore, 59, 250, false),
    rule("glpat-", GitLab, UrlSafe, 20, 100, false),
    rule("xoxb-", Slack, AlnumDash, 10, 250, true),
    rule("xoxp-", Slack, AlnumDash, 10, 250, true),
    rule("xoxa-", Slack, AlnumDash, 10, 250, true),
    rule("xoxe-", Slack, AlnumDash, 10, 250, true),
    rule("xoxr-", Slack, AlnumDash, 10, 250, true),
    rule("xoxs-", Slack, AlnumDash, 10, 250, true),
    rule("xapp-", Slack, AlnumDash, 10, 250, true),
    rule("sk_live_", Stripe, Alnum, 16, 250, false),
    rule("sk_test_", Stripe, Alnum, 16, 250, false),
    rule("rk_live_", Stripe, Alnum, 16, 250, false),
    rule("rk_test_", Stripe, Alnum, 16, 250, false),
    rule("whsec_", Stripe, Alnum, 24, 250, false),
    rule("SG.", SendGrid, UrlSafeDot, 66, 66, false),
    rule("hf_", HuggingFace, Alnum, 30, 60, false),
    rule("npm_", Npm, Alnum, 36, 36, false),
    rule("hvs.", Vault, UrlSafe, 24, 300, false),
    rule("hvb.", Vault, UrlSafe, 24, 300, false),
];

/// The end of the token whose prefix starts at `s`, if the body has the rule's shape.
pub(super) fn token(b: &[u8], s: usize, rule: &PrefixRule) -> Option<usize> {
    if before(b, s).is_some_and(is_word_byte) {
        return None; // `risk-…`, `MSG.…`: the prefix is the tail of a word
    }
    let body_start = s + rule.prefix.len();
    let mut e = body_start;
    while e < b.len() && in_charset(rule.chars, b[e]) && e - body_start <= rule.max {
        e += 1;
    }
    let body = &b[body_start..e];
    if !(rule.min..=rule.max).contains(&body.len())
        || b.get(e).is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    if rule.mixed
        && !(body.iter().any(u8::is_ascii_digit) && body.iter().any(u8::is_ascii_alphabetic))
    {
        return None;
    }
    if rule.kind == SendGrid && body[22] != b'.' {
        return None;
    }
    (shannon_entropy(body) >= 3.0).then_some(e)
}

/// A PEM private key: from `-----BEGIN … PRIVATE KEY-----` to its END line. Public keys and
/// certificates are not secrets. A block cut off before its END line (a truncated paste) runs
/// to the end of the text: what follows its header is key material.
pub(super) fn private_key(b: &[u8], s: usize) -> Option<(usize, usize)> {
    let header_start = s + "-----BEGIN ".len();
    let header_len = memmem::find(&b[header_start..b.len().min(header_start + 64)], b"-----")?;
    let header = &b[header_start..header_start + header_len];
    if !(header.ends_with(b"PRIVATE KEY") || header.ends_with(b"PRIVATE KEY BLOCK")) {
        return None;
    }
    let body = header_start + header_len + 5;
    let Some(end_marker) = memmem::find(&b[body..], b"-----END ") else {
        return Some((s, b.len()));
    };
    let tail = body + end_marker + "-----END ".len();
    let close =
        memmem::find(&b[tail..b.len().min(tail + 64)], b"-----").map_or(b.len(), |i| tail + i + 5);
    Some((s, close))
}

const MAX_JWT_PART: usize = 16 * 1024;

/// A signed JWT: three base64url parts whose first decodes to a JSON header naming its `alg`.
pub(super) fn jwt(b: &[u8], s: usize) -> Option<(usize, usize)> {
    if before(b, s).is_some_and(|c| is_word_byte(c) || c == b'.' || c == b'-') {
        return None;
    }
    let mut parts = [(0usize, 0usize); 3];
    let mut k = s;
    for (i, part) in parts.iter_mut().enumerate() {
        if i > 0 {
            if b.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let start = k;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_' || b[k] == b'-') {
            k += 1;
            if k - start > MAX_JWT_PART {
                return None; // a blob, not a token; stop before scanning all of it
            }
        }
        *part = (start, k);
    }
    let len = |p: (usize, usize)| p.1 - p.0;
    // The payload is a JSON object too (`eyJ…`); the signature is at least 128 bits.
    if len(parts[0]) < 10
        || !b[parts[1].0..].starts_with(b"eyJ")
        || len(parts[1]) < 10
        || len(parts[2]) < 16
    {
        return None;
    }
    let mut header = [0u8; 512];
    let raw = &b[parts[0].0..parts[0].1];
    let n = URL_SAFE_NO_PAD.decode_slice(raw, &mut header).ok()?;
    let header = &header[..n];
    let is_json_with_alg =
        header.first() == Some(&b'{') && memmem::find(header, b"\"alg\"").is_some();
    is_json_with_alg.then_some((s, parts[2].1))
}

/// A Slack incoming-webhook or workflow URL: `https://hooks.slack.com/services/T…/B…/secret`.
pub(super) fn slack_webhook(b: &[u8], s: usize) -> Option<(usize, usize)> {
    let start = [&b"https://"[..], b"http://"]
        .iter()
        .find(|scheme| s >= scheme.len() && &b[s - scheme.len()..s] == **scheme)
        .map_or(s, |scheme| s - scheme.len());
    let path = s + "hooks.slack.com/".len();
    let mut e = path;
    while e < b.len()
        && e - path < 256
        && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'/' | b'_' | b'-'))
    {
        e += 1;
    }
    let p = &b[path..e];
    let known =
        p.starts_with(b"services/") || p.starts_with(b"workflows/") || p.starts_with(b"triggers/");
    let last = p.rsplit(|&c| c == b'/').next().unwrap_or_default();
    let segments = p.split(|&c| c == b'/').filter(|x| !x.is_empty()).count();
    (known && segments >= 4 && last.len() >= 20 && shannon_entropy(last) >= 3.0)
        .then_some((start, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span<'t>(
        text: &'t str,
        f: impl Fn(&[u8], usize) -> Option<(usize, usize)>,
        anchor: &str,
    ) -> Option<&'t str> {
        let s = text.find(anchor)?;
        f(text.as_bytes(), s).map(|(a, e)| &text[a..e])
    }

    #[test]
    fn private_key_blocks_end_at_their_end_line_and_public_keys_are_ignored() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----";
        let text = format!("ssh says no:\n{key}\nthanks");
        assert_eq!(span(&text, private_key, "-----BEGIN"), Some(key));
        let escaped =
            r#""private_key": "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----\n""#;
        assert_eq!(
            span(escaped, private_key, "-----BEGIN"),
            Some(r"-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----")
        );
        let truncated = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXkt";
        assert_eq!(span(truncated, private_key, "-----BEGIN"), Some(truncated));
        assert_eq!(
            span(
                "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
                private_key,
                "-----BEGIN"
            ),
            None
        );
        assert_eq!(
            span("-----BEGIN CERTIFICATE-----", private_key, "-----BEGIN"),
            None
        );
    }

    #[test]
    fn jwts_need_three_parts_and_a_header_with_alg() {
        let jwt_text = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMDI5In0.vRQ01_K9xPR4qpgremjQl4AeKB9ISgub";
        assert_eq!(
            span(&format!("Bearer {jwt_text}; x"), jwt, "eyJ"),
            Some(jwt_text)
        );
        // One part only, or a header without alg (base64 of {"foo":"bar"}).
        assert_eq!(span("header eyJhbGciOiJIUzI1NiJ9 only", jwt, "eyJ"), None);
        assert_eq!(
            span(
                "eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxMDI5In0.vRQ01_K9xPR4qpgremjQl4Ae",
                jwt,
                "eyJ"
            ),
            None
        );
    }

    #[test]
    fn slack_webhooks_need_the_real_path_shape() {
        let url = "https://hooks.slack.com/services/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";
        assert_eq!(
            span(
                &format!("post to {url}."),
                slack_webhook,
                "hooks.slack.com/"
            ),
            Some(url)
        );
        let doc = "https://hooks.slack.com/services/T000/B000/XXXX";
        assert_eq!(span(doc, slack_webhook, "hooks.slack.com/"), None);
    }

    #[test]
    fn token_bodies_need_their_length_alphabet_and_randomness() {
        let r = PREFIX_RULES.iter().find(|r| r.prefix == "AKIA").unwrap();
        assert_eq!(token(b"AKIAIOSFODNN7EXAMPLE", 0, r), Some(20));
        assert_eq!(token(b"AKIAIOSFODNN7EXAMPLE1", 0, r), None);
        assert_eq!(token(b"XAKIAIOSFODNN7EXAMPLE", 1, r), None);
        let sg = PREFIX_RULES.iter().find(|r| r.prefix == "SG.").unwrap();
        let key = b"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";
        assert_eq!(token(key, 0, sg), Some(key.len()));
    }
}
