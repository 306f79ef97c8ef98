//! Any string through the address validation: no panic, nothing wider than one host, nothing
//! the standard library calls loopback, link-local, multicast, broadcast, documentation or
//! unspecified, nothing private unless the rule allows it, no 6to4 address wrapping a refused
//! IPv4 host; and an admitted host reads back as itself from its canonical text, as a request
//! and as a stored row.

use std::net::{IpAddr, Ipv4Addr};

use ingress::ip::{Cidr, HostCidr, host_cidr};

/// Pieces of address syntax and the prefixes the validation tells apart.
pub const TOKENS: &[&str] = &[
    ".",
    ":",
    "::",
    "/",
    "%",
    "/32",
    "/128",
    "/0",
    "/31",
    "/33",
    "/032",
    "/0128",
    "::ffff:",
    "2002:",
    "2001:0:",
    "2001:db8:",
    "fe80::",
    "fc00::",
    "fd00::",
    "ff02::",
    "64:ff9b::",
    "100::",
    "3fff::",
    "0.",
    "00",
    "255",
    "256",
    "0x",
    "ffff",
    "FFFF",
    "%eth0",
    " ",
    "\t",
    "\u{0}",
    "\u{ff10}",
];

/// The `ip` target. Bytes that are not UTF-8 are cut at the first invalid one, as
/// libFuzzer's `&str` input does.
pub fn ip(data: &[u8]) {
    let text = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    };
    let strict = host_cidr(text, false);
    let lenient = host_cidr(text, true);
    if let Ok(c) = &strict {
        assert_eq!(
            lenient.as_ref(),
            Ok(c),
            "{text:?}: admitted as public, refused when private addresses are allowed"
        );
    }
    for (allow_private, result) in [(false, strict), (true, lenient)] {
        if let Ok(c) = result {
            one_public_host(text, c, allow_private);
        }
    }
}

fn one_public_host(input: &str, c: HostCidr, allow_private: bool) {
    let text = c.to_string();
    assert!(
        text.ends_with("/32") || text.ends_with("/128"),
        "{input:?} admitted as {text}"
    );
    assert_eq!(
        host_cidr(&text, allow_private),
        Ok(c),
        "{input:?}: its canonical form {text} is not admitted as the same host"
    );
    let stored = Cidr::parse(&text);
    assert_eq!(
        stored,
        Some(Cidr::from(c)),
        "{input:?}: {text} does not read back as a stored CIDR"
    );
    if let Some(stored) = stored {
        assert_eq!(
            HostCidr::recheck(stored, allow_private),
            Ok(c),
            "{input:?}: the stored {text} fails its recheck"
        );
    }
    let special = match c.addr() {
        IpAddr::V4(a) => {
            a.is_unspecified()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || (a.is_private() && !allow_private)
        }
        IpAddr::V6(a) => {
            a.is_unspecified()
                || a.is_loopback()
                || a.is_multicast()
                || a.is_unicast_link_local()
                || a.to_ipv4_mapped().is_some()
                || (a.is_unique_local() && !allow_private)
        }
    };
    assert!(
        !special,
        "{input:?} admitted as {text} (allow_private: {allow_private})"
    );
    // 6to4 (2002::/16) reaches the IPv4 host in bits 16-47: that host must be admitted too.
    if let IpAddr::V6(a) = c.addr() {
        let s = a.segments();
        if s[0] == 0x2002 {
            let wrapped = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
            assert!(
                host_cidr(&wrapped.to_string(), allow_private).is_ok(),
                "{input:?} admitted as {text}, a 6to4 address wrapping the refused {wrapped}"
            );
        }
    }
}
