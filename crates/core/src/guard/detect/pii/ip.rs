//! IP addresses: dotted-quad IPv4 tried at each digit run of the numbers pass, IPv6 anchored
//! on each `:`, both checked for boundaries and parsed into the standard library's types.
//!
//! By default only addresses that can point at a person are reported: public ones. Loopback,
//! private, link-local, CGNAT, multicast and reserved addresses name machines inside a network
//! and are everywhere in infrastructure prompts (see [`super::PiiConfig::ip_include_private`]).
//! Documentation ranges (`203.0.113.0/24`, `2001:db8::/32`) count as public: a text that uses
//! them is shaped like one that would hold a real address. Dotted quads of single digits
//! (`4.5.6.7`) are section numbers far more often than hosts — the few famous ones are public
//! resolvers, not people — and a quad right after "version" is a version.
//! IPv4-mapped IPv6 (`::ffff:192.0.2.1`) is not recognised.

use std::net::{Ipv4Addr, Ipv6Addr};

use memchr::memchr_iter;

use super::super::text::{at, before, context_before, is_word_byte};
use super::super::{Finding, Kind};

const VERSION_WORDS: &[&str] = &["version", "ver.", "release", "build"];

/// The dotted quad whose first octet starts the digit run at `s`: where it ends, and whether
/// to report it (free-standing, reportable, not a version).
pub(super) fn v4_at(b: &[u8], s: usize, include_private: bool) -> Option<(usize, bool)> {
    if !b[s + 1..b.len().min(s + 4)].contains(&b'.') {
        return None; // the common case: no dot within the first octet's reach
    }
    let (addr, end) = parse_v4(b, s)?;
    // Not glued to a word, and not the start of a longer dotted number (`1.3.6.1.4.1`).
    let free = !before(b, s).is_some_and(|c| is_word_byte(c) || c == b'.')
        && !at(b, end).is_some_and(is_word_byte)
        && (at(b, end) != Some(b'.') || !at(b, end + 1).is_some_and(|c| c.is_ascii_digit()));
    let report =
        free && reportable_v4(addr, include_private) && !context_before(b, s, 12, VERSION_WORDS);
    Some((end, report))
}

/// Four decimal octets (0–255, no leading zeros) from `s`, and where they end.
fn parse_v4(b: &[u8], s: usize) -> Option<(Ipv4Addr, usize)> {
    let mut octets = [0u8; 4];
    let mut k = s;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            if at(b, k) != Some(b'.') {
                return None;
            }
            k += 1;
        }
        let start = k;
        let mut v: u32 = 0;
        while k < b.len() && b[k].is_ascii_digit() && k - start < 4 {
            v = v * 10 + u32::from(b[k] - b'0');
            k += 1;
        }
        let n = k - start;
        if n == 0 || n > 3 || v > 255 || (n > 1 && b[start] == b'0') {
            return None;
        }
        *octet = v as u8;
    }
    Some((Ipv4Addr::from(octets), k))
}

fn reportable_v4(ip: Ipv4Addr, include_private: bool) -> bool {
    let o = ip.octets();
    if o.iter().all(|&x| x < 10) || ip.is_unspecified() {
        return false;
    }
    include_private
        || !(ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_broadcast()
            || ip.is_multicast()
            || o[0] == 0
            || o[0] >= 240
            || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
            || (o[0] == 198 && (o[1] == 18 || o[1] == 19))) // benchmarking
}

pub(super) fn find_v6(text: &str, include_private: bool, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let is_v6_byte = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut next_free = 0;
    for colon in memchr_iter(b':', b) {
        if colon < next_free {
            continue;
        }
        let mut l = colon;
        while l > 0 && is_v6_byte(b[l - 1]) {
            l -= 1;
        }
        let mut r = colon + 1;
        while r < b.len() && is_v6_byte(b[r]) {
            r += 1;
        }
        next_free = r;
        // A lone colon at either end is punctuation ("addr:2001:db8::1", "…::1: refused").
        if b[l] == b':' && at(b, l + 1) != Some(b':') {
            l += 1;
        }
        if r > l + 1 && b[r - 1] == b':' && b[r - 2] != b':' {
            r -= 1;
        }
        if r <= l {
            continue;
        }
        let cand = &text[l..r];
        let free = !before(b, l).is_some_and(|c| is_word_byte(c) || c == b'.')
            && !at(b, r).is_some_and(|c| {
                is_word_byte(c) || c == b'.' && at(b, r + 1).is_some_and(|d| d.is_ascii_digit())
            });
        // Fewer than three groups is a C++ or Rust path (`a::b`), a time or a ratio.
        let groups = cand.split(':').filter(|g| !g.is_empty()).count();
        if !free || groups < 3 {
            continue;
        }
        if let Ok(addr) = cand.parse::<Ipv6Addr>()
            && reportable_v6(addr, include_private)
        {
            out.push(Finding::new(Kind::IpAddress, l, r));
        }
    }
}

fn reportable_v6(ip: Ipv6Addr, include_private: bool) -> bool {
    !ip.is_unspecified()
        && (include_private
            || !(ip.is_loopback()
                || ip.is_multicast()
                || ip.is_unique_local()
                || ip.is_unicast_link_local()))
}

#[cfg(test)]
mod tests {
    use super::super::{PiiConfig, PiiDetector};
    use crate::guard::detect::Detector;

    fn ips(text: &str, ip_include_private: bool) -> Vec<&str> {
        let only_ip = PiiConfig {
            email: false,
            phone: false,
            card: false,
            ssn: false,
            iban: false,
            ip_include_private,
            ..PiiConfig::default()
        };
        let mut out = Vec::new();
        PiiDetector::new(only_ip).unwrap().find(text, &mut out);
        out.iter().map(|f| f.text(text)).collect()
    }

    #[test]
    fn finds_public_v4_and_v6_with_ports_and_prefixes() {
        assert_eq!(ips("from 203.0.113.42.", false), ["203.0.113.42"]);
        assert_eq!(ips("client_ip=81.2.69.160:443/x", false), ["81.2.69.160"]);
        assert_eq!(
            ips("via 2a01:4f8:c17:b8f::2 and", false),
            ["2a01:4f8:c17:b8f::2"]
        );
        assert_eq!(
            ips("[2001:db8:85a3::8a2e:370:7334]:8080", false),
            ["2001:db8:85a3::8a2e:370:7334"]
        );
        assert_eq!(
            ips("addr:2606:4700:4700::1111: refused", false),
            ["2606:4700:4700::1111"]
        );
    }

    #[test]
    fn private_addresses_only_when_asked() {
        let text = "db 10.0.0.12, gw 192.168.1.254, lo 127.0.0.1, ula fd00::1:2:3, ll fe80::1:2:3";
        assert!(ips(text, false).is_empty());
        assert_eq!(
            ips(text, true),
            [
                "10.0.0.12",
                "192.168.1.254",
                "127.0.0.1",
                "fd00::1:2:3",
                "fe80::1:2:3"
            ]
        );
    }

    #[test]
    fn look_alikes_are_not_addresses() {
        for t in [
            "OID 1.3.6.1.4.1.2021.10",
            "Chrome/125.0.6422.113",
            "section 4.5.6.7 of the spec",
            "version 10.2.15.3",
            "256.1.1.1 and 01.02.03.04",
            "MAC 00:1A:2B:3C:4D:5E at 10:30:45",
            "use std::collections::HashMap; a::b::c(); fe80::",
            "v1.22.33.44",
            "mask 255.255.255.0",
        ] {
            assert!(ips(t, false).is_empty(), "{t}: {:?}", ips(t, false));
        }
    }
}
