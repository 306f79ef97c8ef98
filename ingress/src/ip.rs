//! Which addresses may be let into the database: exactly one public host. Everything that is
//! not one routable public address is refused before anything is read or written.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// A single host as a CIDR: `a.b.c.d/32` or `x::y/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostCidr(IpAddr);

impl HostCidr {
    pub fn addr(&self) -> IpAddr {
        self.0
    }

    pub fn is_ipv6(&self) -> bool {
        self.0.is_ipv6()
    }

    /// Validates a stored source again, as [`host_cidr`] validates a request's address: the
    /// table only knows that it is one host.
    pub fn recheck(cidr: Cidr, allow_private: bool) -> Result<Self, IpError> {
        let host = if cidr.is_ipv6() { 128 } else { 32 };
        if cidr.prefix != host {
            return Err(IpError::TooWide(cidr.prefix));
        }
        admit(cidr.addr, allow_private)
    }
}

impl fmt::Display for HostCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}/32"),
            IpAddr::V6(a) => write!(f, "{a}/128"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    #[error("not an IPv4 or IPv6 address")]
    Malformed,
    #[error("the prefix /{0} is wider than one host (only /32 or /128)")]
    TooWide(u8),
    #[error("{0} addresses cannot be allowed")]
    Forbidden(&'static str),
    #[error("{0} addresses are refused unless the rule allows private addresses")]
    Private(&'static str),
    #[error("{wrapper} addresses wrapping a {kind} IPv4 address cannot be allowed")]
    Wrapped {
        wrapper: &'static str,
        kind: &'static str,
    },
}

/// Parses `ip` (an address, or an address with its full-host prefix) into one host, refusing
/// unroutable, special-purpose and, unless `allow_private`, private addresses.
pub fn host_cidr(ip: &str, allow_private: bool) -> Result<HostCidr, IpError> {
    admit(parse(ip)?, allow_private)
}

fn admit(addr: IpAddr, allow_private: bool) -> Result<HostCidr, IpError> {
    match classify(addr) {
        Class::Public => Ok(HostCidr(addr)),
        Class::Private(_) if allow_private => Ok(HostCidr(addr)),
        Class::Private(kind) => Err(IpError::Private(kind)),
        Class::Forbidden(kind) => Err(IpError::Forbidden(kind)),
        Class::Wrapped(wrapper, kind) => Err(IpError::Wrapped { wrapper, kind }),
    }
}

/// Any CIDR as AWS or the table states it, of any width: compared by value, shown in
/// canonical form (`2600:1f18::7/128`), so what AWS reports and what we store compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Reads `addr/prefix`, or a bare address as one host. Lenient on spelling (upper-case
    /// hex, zero compression) because it reads what AWS and Postgres print, not requests.
    pub fn parse(cidr: &str) -> Option<Self> {
        let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, ""));
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = if prefix.is_empty() {
            max
        } else {
            prefix.parse().ok()?
        };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether it names one host (a /32, or a /128): anything wider lets in more than one.
    pub fn is_one_host(&self) -> bool {
        self.prefix == if self.is_ipv6() { 128 } else { 32 }
    }
}

impl From<HostCidr> for Cidr {
    fn from(h: HostCidr) -> Self {
        Self {
            addr: h.0,
            prefix: if h.is_ipv6() { 128 } else { 32 },
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse(ip: &str) -> Result<IpAddr, IpError> {
    // Strict: no surrounding blanks, no zone ids, nothing but the address and its prefix.
    if ip.is_empty() || ip.len() > 64 || ip.trim() != ip {
        return Err(IpError::Malformed);
    }
    let (addr, prefix) = match ip.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (ip, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| IpError::Malformed)?;
    if let Some(p) = prefix {
        // Digits only, and no leading zero: `/032` is not a way of writing /32.
        if p.is_empty()
            || p.len() > 3
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return Err(IpError::Malformed);
        }
        let p: u8 = p.parse().map_err(|_| IpError::Malformed)?;
        let host = if addr.is_ipv4() { 32 } else { 128 };
        if p > host {
            return Err(IpError::Malformed);
        }
        if p != host {
            return Err(IpError::TooWide(p));
        }
    }
    Ok(addr)
}

enum Class {
    Public,
    Private(&'static str),
    Forbidden(&'static str),
    /// A tunnelling address whose embedded IPv4 address is not public.
    Wrapped(&'static str, &'static str),
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn in_v4(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn classify_v4(a: Ipv4Addr) -> Class {
    const FORBIDDEN: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified (\"this network\")"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([192, 0, 0, 0], 24, "protocol-assignment"),
        ([192, 88, 99, 0], 24, "relay (6to4 anycast)"),
    ];
    const PRIVATE: &[([u8; 4], u32, &str)] = &[
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([100, 64, 0, 0], 10, "carrier-grade NAT"),
    ];
    if let Some((_, _, kind)) = FORBIDDEN.iter().find(|(n, l, _)| in_v4(a, *n, *l)) {
        return Class::Forbidden(kind);
    }
    if let Some((_, _, kind)) = PRIVATE.iter().find(|(n, l, _)| in_v4(a, *n, *l)) {
        return Class::Private(kind);
    }
    Class::Public
}

fn in_v6(a: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(a) & mask == u128::from(net) & mask
}

/// The kind of a non-public IPv4 address, for tunnelling addresses that carry one.
fn embedded_refusal(v4: Ipv4Addr) -> Option<&'static str> {
    match classify_v4(v4) {
        Class::Public => None,
        Class::Private(kind) | Class::Forbidden(kind) | Class::Wrapped(_, kind) => Some(kind),
    }
}

fn classify_v6(a: Ipv6Addr) -> Class {
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap_or(Ipv6Addr::UNSPECIFIED);
    if a.is_unspecified() {
        return Class::Forbidden("unspecified");
    }
    if a.is_loopback() {
        return Class::Forbidden("loopback");
    }
    let bits = u128::from(a);
    // 6to4 (2002::/16) carries its IPv4 address in bits 16-47; Teredo (2001::/32) carries the
    // server's in bits 32-63 and the client's, inverted, in the last 32. A wrapped address
    // must pass the IPv4 rules too. (Teredo is refused below in any case, as part of
    // 2001::/23; this only names the reason.)
    if in_v6(a, v6("2002::"), 16) {
        if let Some(kind) = embedded_refusal(Ipv4Addr::from((bits >> 80) as u32)) {
            return Class::Wrapped("6to4", kind);
        }
    }
    if in_v6(a, v6("2001::"), 32) {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        if let Some(kind) = embedded_refusal(server).or(embedded_refusal(client)) {
            return Class::Wrapped("Teredo", kind);
        }
    }
    let forbidden: [(Ipv6Addr, u32, &str); 10] = [
        (v6("fe80::"), 10, "link-local"),
        (v6("fec0::"), 10, "site-local"),
        (v6("ff00::"), 8, "multicast"),
        (v6("2001:db8::"), 32, "documentation"),
        (v6("3fff::"), 20, "documentation"),
        (v6("::ffff:0:0"), 96, "IPv4-mapped"),
        (v6("::"), 96, "IPv4-compatible"),
        (v6("64:ff9b::"), 96, "NAT64"),
        (v6("100::"), 64, "discard-only"),
        (v6("2001::"), 23, "protocol-assignment"),
    ];
    if let Some((_, _, kind)) = forbidden.iter().find(|(n, l, _)| in_v6(a, *n, *l)) {
        return Class::Forbidden(kind);
    }
    if in_v6(a, v6("fc00::"), 7) {
        return Class::Private("unique-local");
    }
    if !in_v6(a, v6("2000::"), 3) {
        // Outside global unicast: not assigned for use on the internet.
        return Class::Forbidden("reserved");
    }
    Class::Public
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_hosts_become_one_host_cidrs() {
        assert_eq!(
            host_cidr("34.201.17.5", false).unwrap().to_string(),
            "34.201.17.5/32"
        );
        assert_eq!(
            host_cidr("34.201.17.5/32", false).unwrap().to_string(),
            "34.201.17.5/32"
        );
        assert_eq!(
            host_cidr("2600:1f18:0:1::7", false).unwrap().to_string(),
            "2600:1f18:0:1::7/128"
        );
        assert_eq!(
            host_cidr("2600:1F18::7/128", false).unwrap().to_string(),
            "2600:1f18::7/128"
        );
    }

    #[test]
    fn tunnelling_addresses_are_judged_by_what_they_wrap() {
        assert_eq!(
            host_cidr("2002:c000:201::1", true),
            Err(IpError::Wrapped {
                wrapper: "6to4",
                kind: "documentation"
            })
        );
        assert_eq!(
            host_cidr("2002:a00:1::1", true),
            Err(IpError::Wrapped {
                wrapper: "6to4",
                kind: "private"
            })
        );
        // Client 192.0.2.45, inverted in the last 32 bits.
        assert_eq!(
            host_cidr("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            Err(IpError::Wrapped {
                wrapper: "Teredo",
                kind: "documentation"
            })
        );
        // 6to4 of a public address (34.201.17.5) is a routable host.
        assert_eq!(
            host_cidr("2002:22c9:1105::1", false).map(|c| c.to_string()),
            Ok("2002:22c9:1105::1/128".to_owned())
        );
        assert_eq!(host_cidr("8.8.8.8/032", false), Err(IpError::Malformed));
    }

    #[test]
    fn private_needs_the_rule_to_allow_it() {
        assert_eq!(
            host_cidr("10.1.2.3", false),
            Err(IpError::Private("private"))
        );
        assert_eq!(
            host_cidr("100.64.0.1", false),
            Err(IpError::Private("carrier-grade NAT"))
        );
        assert!(host_cidr("10.1.2.3", true).is_ok());
        assert!(host_cidr("fd12::1", true).is_ok());
        assert_eq!(
            host_cidr("127.0.0.1", true),
            Err(IpError::Forbidden("loopback"))
        );
    }

    #[test]
    fn everything_else_is_refused() {
        let refused = [
            "0.0.0.0",
            "0.0.0.0/0",
            "::",
            "::/0",
            "34.201.17.0/24",
            "34.201.17.5/31",
            "2600:1f18::/64",
            "127.0.0.1",
            "::1",
            "169.254.169.254",
            "fe80::1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.7",
            "2001:db8::1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.1.1",
            "fd00::1",
            "240.0.0.1",
            "::ffff:34.201.17.5",
            "",
            " 34.201.17.5",
            "34.201.17.5 ",
            "34.201.17",
            "34.201.17.5.6",
            "034.201.17.5",
            "34.201.17.256",
            "0x22.201.17.5",
            "34.201.17.5/",
            "34.201.17.5/33",
            "34.201.17.5/+32",
            "fe80::1%eth0",
            "localhost",
            "1.1.1.1;rm -rf",
            "34.201.17.5/32/32",
            "8.8.8.8/032",
            "8.8.8.8/0032",
            "2600:1f18::7/0128",
            // 6to4 and Teredo wrapping documentation, private and loopback IPv4 addresses.
            "2002:c000:201::1",
            "2002:a00:1::1",
            "2002:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        ];
        for ip in refused {
            assert!(host_cidr(ip, false).is_err(), "{ip:?} must be refused");
        }
    }

    #[test]
    fn cidrs_compare_equal_in_canonical_form() {
        let canonical = |s: &str| Cidr::parse(s).map(|c| c.to_string());
        assert_eq!(
            canonical("2600:1F18:0::7/128").as_deref(),
            Some("2600:1f18::7/128")
        );
        assert_eq!(canonical("0.0.0.0/0").as_deref(), Some("0.0.0.0/0"));
        assert_eq!(canonical("34.201.17.5").as_deref(), Some("34.201.17.5/32"));
        assert_eq!(canonical("nonsense"), None);
        assert_eq!(
            Cidr::parse("2600:1f18::7/128"),
            Cidr::parse("2600:1F18:0::7")
        );
    }

    #[test]
    fn stored_sources_are_checked_again() {
        let c = |s: &str| Cidr::parse(s).unwrap();
        assert!(HostCidr::recheck(c("34.201.17.5/32"), false).is_ok());
        assert_eq!(
            HostCidr::recheck(c("34.201.17.0/24"), false),
            Err(IpError::TooWide(24))
        );
        assert_eq!(
            HostCidr::recheck(c("10.0.0.1/32"), false),
            Err(IpError::Private("private"))
        );
        assert!(HostCidr::recheck(c("10.0.0.1/32"), true).is_ok());
    }
}
