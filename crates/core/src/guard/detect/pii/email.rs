//! E-mail addresses: anchored on each `@`, the local part is grown to the left and the domain to
//! the right, then checked (a dotted domain with an alphabetic top-level label).
//!
//! Domains are ASCII (an internationalised domain reaches the wire as `xn--` punycode); a local
//! part may hold non-ASCII letters (`françois@…`), so that such an address is redacted whole
//! rather than from its last ASCII letter on. Look-alikes
//! that are not addresses are rejected by shape: `git@github.com:org/repo` (an scp-style remote),
//! the user-info of a URL (`https://token@host`, `postgres://user:pw@host`),
//! `@mentions`, decorators, `pkg@1.2.3` versions, `user@host` shell prompts.

use memchr::memchr_iter;

use super::super::{Finding, Kind};

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

pub(super) fn find(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut next_free = 0; // findings never overlap: skip '@'s inside the previous one
    for at in memchr_iter(b'@', b) {
        if at < next_free {
            continue;
        }
        if let Some((start, end)) = address_at(text, at) {
            out.push(Finding::new(Kind::Email, start, end));
            next_free = end;
        }
    }
}

/// The address around the `@` at `at`, if there is one.
fn address_at(text: &str, at: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let start = local_start(text, at)?;
    let end = domain_end(b, at + 1)?;
    // `https://token@github.com/…`, `mongodb+srv://user:pw@host`: the user-info of a URL.
    let lo = start.saturating_sub(256);
    let token = b[lo..start]
        .iter()
        .rposition(|c| c.is_ascii_whitespace() || b"\"'<>(".contains(c));
    if memchr::memmem::find(&b[token.map_or(lo, |t| lo + t + 1)..start], b"://").is_some() {
        return None;
    }
    // `git@github.com:org/repo.git`: the host of an scp-style remote, not a mailbox.
    if b.get(end) == Some(&b':')
        && b.get(end + 1)
            .is_some_and(|&c| c == b'/' || c.is_ascii_alphanumeric())
    {
        return None;
    }
    if b.get(end) == Some(&b'@') {
        return None;
    }
    Some((start, end))
}

fn local_start(text: &str, at: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut l = at;
    while let Some(c) = text[..l].chars().next_back() {
        // Accented Latin letters only: CJK text has no spaces, and "请发到zhang@163.com"
        // must not swallow the words before the address.
        let ok = if c.is_ascii() {
            is_local_byte(c as u8)
        } else {
            c.is_alphabetic() && u32::from(c) < 0x250
        };
        if !ok {
            break;
        }
        if at - l >= 64 {
            return None; // longer than RFC 5321 allows: some other token
        }
        l -= c.len_utf8();
    }
    // Quotes and dots before the first letter belong to the prose ('bob@…').
    while l < at && matches!(b[l], b'.' | b'%' | b'+' | b'-' | b'\'') {
        l += 1;
    }
    let local = &b[l..at];
    if local.is_empty() || local.ends_with(b".") || local.windows(2).any(|w| w == b"..") {
        return None;
    }
    Some(l)
}

fn domain_end(b: &[u8], from: usize) -> Option<usize> {
    let mut r = from;
    while r < b.len() && is_domain_byte(b[r]) && r - from < 253 {
        r += 1;
    }
    while r > from && matches!(b[r - 1], b'.' | b'-') {
        r -= 1; // sentence punctuation, not part of the name
    }
    let domain = &b[from..r];
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
        labels += 1;
        last = label;
    }
    let tld_ok = (2..=24).contains(&last.len()) && last.iter().all(u8::is_ascii_alphabetic);
    (labels >= 2 && tld_ok).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text, &mut out);
        out.iter().map(|f| f.text(text)).collect()
    }

    #[test]
    fn finds_addresses_in_prose_markup_and_json() {
        assert_eq!(
            emails("mail maria.g@acme-logistics.de."),
            ["maria.g@acme-logistics.de"]
        );
        assert_eq!(
            emails("<sam+ci@users.noreply.github.com>"),
            ["sam+ci@users.noreply.github.com"]
        );
        assert_eq!(
            emails(r#"{"email":"li.wei@company.cn"}"#),
            ["li.wei@company.cn"]
        );
        assert_eq!(emails("mailto:help@desk.acme.com"), ["help@desk.acme.com"]);
        assert_eq!(emails("'bob@mail.org'"), ["bob@mail.org"]);
    }

    #[test]
    fn multibyte_neighbours_keep_spans_on_char_boundaries() {
        let text = "邮箱：zhang.san@163.com，谢谢";
        assert_eq!(emails(text), ["zhang.san@163.com"]);
        assert_eq!(emails("请发到zhang@163.com"), ["zhang@163.com"]);
        assert_eq!(
            emails("écrivez à françois@orange.fr"),
            ["françois@orange.fr"]
        );
    }

    #[test]
    fn rejects_look_alikes() {
        for t in [
            "git@github.com:acme/switchyard.git",
            "thanks @john.doe",
            "@app.route('/')",
            "npm i @types/node@20.11.5",
            "root@web-01:~#",
            "3 items @ $4.99",
            "ssh deploy@10.0.3.17",
            "a..b@example.com",
            "https://ghp_abc@github.com/acme/x.git",
            "mongodb+srv://admin:pw@cluster0.ab1cd.mongodb.net/shop",
        ] {
            assert!(emails(t).is_empty(), "{t}");
        }
    }
}
