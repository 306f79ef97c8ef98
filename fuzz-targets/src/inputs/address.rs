//! Addresses made from the networks `ingress::ip` tells apart, in canonical and variant
//! spellings.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Rng;

/// The networks `ingress::ip` tells apart (and some public ones), as base and prefix length.
const V4_NETS: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
    ([255, 255, 255, 255], 32),
    ([34, 201, 17, 5], 32),
    ([8, 8, 8, 8], 24),
    ([52, 0, 0, 0], 8),
    ([0, 0, 0, 0], 0),
];

const V6_NETS: &[(&str, u32)] = &[
    ("::", 128),
    ("::1", 128),
    ("::", 96),
    ("::ffff:0:0", 96),
    ("64:ff9b::", 96),
    ("100::", 64),
    ("2001::", 32),
    ("2001::", 23),
    ("2001:db8::", 32),
    ("2002::", 16),
    ("2600:1f18::", 32),
    ("2000::", 3),
    ("3fff::", 20),
    ("fc00::", 7),
    ("fe80::", 10),
    ("fec0::", 10),
    ("ff00::", 8),
    ("::", 0),
];

/// An address in one of the networks above, written canonically or in a variant spelling,
/// sometimes with a prefix, a zone or blanks.
pub(super) fn address(rng: &mut Rng) -> String {
    let mut text = if rng.one_in(2) {
        let (net, len) = *rng.pick(V4_NETS).unwrap_or(&([0, 0, 0, 0], 0));
        let host_bits = if len == 0 {
            u32::MAX
        } else {
            u32::MAX.checked_shr(len).unwrap_or(0)
        };
        let a = Ipv4Addr::from(
            (u32::from(Ipv4Addr::from(net)) & !host_bits) | (rng.next_u64() as u32 & host_bits),
        );
        if rng.one_in(8) {
            // Leading zeros, or an octet out of range.
            let o = a.octets();
            let i = rng.below(4);
            let mut parts: Vec<String> = o.iter().map(u8::to_string).collect();
            parts[i] = if rng.one_in(2) {
                format!("0{}", o[i])
            } else {
                (256 + rng.below(800)).to_string()
            };
            parts.join(".")
        } else {
            a.to_string()
        }
    } else {
        let (net, len) = *rng.pick(V6_NETS).unwrap_or(&("::", 0));
        let base = u128::from(net.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED));
        let host_bits = if len == 0 {
            u128::MAX
        } else {
            u128::MAX.checked_shr(len).unwrap_or(0)
        };
        let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
        let a = Ipv6Addr::from((base & !host_bits) | (random & host_bits));
        match rng.below(6) {
            0 => a
                .segments()
                .iter()
                .map(|s| format!("{s:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
            1 => a.to_string().to_uppercase(),
            2 => {
                // The last 32 bits written as IPv4.
                let s = a.segments();
                let tail = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
                let head: Vec<String> = s[..6].iter().map(|x| format!("{x:x}")).collect();
                format!("{}:{tail}", head.join(":"))
            }
            _ => a.to_string(),
        }
    };
    match rng.below(8) {
        0 => text.push_str(&format!("/{}", rng.below(140))),
        1 => text.push_str(if text.contains(':') { "/128" } else { "/32" }),
        2 if text.contains(':') => text.push_str("%eth0"),
        3 => text.insert(0, ' '),
        _ => {}
    }
    text
}
