//! URLs a server takes from others and acts on: where a browser is sent back after a login (a
//! same-origin path, never another origin), and where a server sends requests on a merchant's
//! behalf (http(s) only; in live mode never a loopback, private, link-local or metadata address,
//! checked when the URL is registered and again, on the resolved addresses, when connecting).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// `candidate` if it is a path on this site that no browser reads as another origin, else `/`.
///
/// Refused: anything not starting with one `/` (schemes, `//host`, `/\host`), backslashes,
/// whitespace and control characters (browsers drop tabs and newlines, turning `/\t/x` into
/// `//x`), non-ASCII, and the same forms hidden behind percent-encoding (`/%2F/x`, `/%09/x`).
pub fn same_origin_path(candidate: Option<&str>) -> String {
    fn rooted(path: &str) -> bool {
        path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
    }
    let plain =
        |path: &str| rooted(path) && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    let decoded_plain = |path: &str| {
        let decoded = percent_decode_str(path).decode_utf8_lossy();
        rooted(&decoded) && !decoded.chars().any(char::is_control)
    };
    match candidate {
        Some(path) if plain(path) && decoded_plain(path) => path.to_owned(),
        _ => "/".to_owned(),
    }
}

/// How a special-purpose range is judged.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Never called on someone else's behalf.
    Refuse,
    /// A translation or embedding of an IPv4 address: judged as that address.
    Embedded(fn(Ipv6Addr) -> Ipv4Addr),
}

/// The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), plus multicast
/// and the limited broadcast: every range refused, whatever the registry says of its global
/// reachability (no merchant's callback lives in an AS112 server or a 6to4 relay).
#[rustfmt::skip]
const IPV4_SPECIAL: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared address space (carrier NAT)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (cloud metadata)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation (TEST-NET-1)"),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112-v4"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(192, 175, 48, 0), 24, "AS112 direct delegation"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (TEST-NET-2)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation (TEST-NET-3)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "limited broadcast"),
];

/// The IANA IPv6 Special-Purpose Address Registry, the deprecated site-local and IPv4-compatible
/// forms, and multicast. Translation ranges are judged by the IPv4 address they carry.
#[rustfmt::skip]
const IPV6_SPECIAL: &[(Ipv6Addr, u8, Verdict, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, Verdict::Refuse, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, Verdict::Refuse, "loopback"),
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96, Verdict::Embedded(last_32), "IPv4-mapped"),
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0]), 96, Verdict::Embedded(last_32), "IPv4-translated (SIIT)"),
    (Ipv6Addr::UNSPECIFIED, 96, Verdict::Embedded(last_32), "IPv4-compatible (deprecated)"),
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96, Verdict::Embedded(last_32), "NAT64 well-known prefix"),
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48, Verdict::Refuse, "local-use IPv4/IPv6 translation"),
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Verdict::Refuse, "discard-only"),
    (v6([0x100, 0, 0, 1, 0, 0, 0, 0]), 64, Verdict::Refuse, "dummy prefix"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 32, Verdict::Embedded(teredo_client), "Teredo"),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23, Verdict::Refuse, "IETF protocol assignments"),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32, Verdict::Refuse, "documentation"),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16, Verdict::Embedded(six_to_four), "6to4"),
    (v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0]), 48, Verdict::Refuse, "AS112 direct delegation"),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20, Verdict::Refuse, "documentation"),
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16, Verdict::Refuse, "segment routing (SRv6) SIDs"),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Verdict::Refuse, "unique local"),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, Verdict::Refuse, "link-local"),
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Verdict::Refuse, "site-local (deprecated)"),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Verdict::Refuse, "multicast"),
];

const fn v6(s: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

fn last_32(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// 6to4: `2002:AABB:CCDD::/48` carries `AA.BB.CC.DD`.
fn six_to_four(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[2], o[3], o[4], o[5])
}

/// Teredo: the client's address is the last 32 bits, inverted.
fn teredo_client(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from(!u32::from(last_32(ip)))
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// The special-purpose range `ip` falls in, if any: its name, and the IPv4 address it carries
/// when it is a translation range. The more specific range wins (Teredo inside the IETF block).
fn special_v6(ip: Ipv6Addr) -> Option<(&'static str, Option<Ipv4Addr>)> {
    IPV6_SPECIAL
        .iter()
        .filter(|(net, len, _, _)| in_v6(ip, *net, *len))
        .max_by_key(|(_, len, _, _)| *len)
        .map(|(_, _, verdict, name)| match verdict {
            Verdict::Refuse => (*name, None),
            Verdict::Embedded(carried) => (*name, Some(carried(ip))),
        })
}

/// Whether a server may send requests to `ip` on someone else's behalf: never an address of a
/// special-purpose range of the IANA registries (loopback, private, link-local — which holds
/// the cloud metadata service, 169.254.169.254 — shared, benchmarking, documentation,
/// multicast…), and, for the IPv6 ranges that carry an IPv4 address (IPv4-mapped, -compatible
/// and -translated, NAT64, 6to4, Teredo), never one whose IPv4 address is not public either.
/// IPv6 outside global unicast (`2000::/3`) is refused too.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !IPV4_SPECIAL
            .iter()
            .any(|(net, len, _)| in_v4(v4, *net, *len)),
        IpAddr::V6(v6) => match special_v6(v6) {
            Some((_, Some(carried))) => is_public(IpAddr::V4(carried)),
            Some((_, None)) => false,
            None => in_v6(v6, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3),
        },
    }
}

/// Why an outbound URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an absolute `http(s)://` URL with a host.
    #[error("the URL must be http:// or https:// with a host")]
    Scheme,
    /// It names or resolves to an address that is not public.
    #[error("{0} is not a public address")]
    Forbidden(String),
    /// Its host does not resolve.
    #[error("the host does not resolve: {0}")]
    Unresolvable(String),
}

/// What a server may call on others' behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// Any http(s) URL (demo mode, or `CALLBACK_ALLOW_PRIVATE=true`).
    AllowPrivate,
    /// Public addresses only.
    PublicOnly,
}

impl OutboundPolicy {
    /// Checks `url` now: scheme, host, and (public only) every address the host resolves to.
    pub async fn check(self, url: &str) -> Result<(), OutboundError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::Scheme)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::Scheme);
        }
        let host = match parsed.host() {
            Some(h) => h,
            None => return Err(OutboundError::Scheme),
        };
        if self == OutboundPolicy::AllowPrivate {
            return Ok(());
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = match host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            url::Host::Domain(d) => tokio::net::lookup_host((d, port))
                .await
                .map_err(|e| OutboundError::Unresolvable(e.to_string()))?
                .collect(),
        };
        match addrs.iter().find(|a| !is_public(a.ip())) {
            Some(bad) => Err(OutboundError::Forbidden(bad.ip().to_string())),
            None if addrs.is_empty() => Err(OutboundError::Unresolvable(host.to_string())),
            None => Ok(()),
        }
    }

    /// An HTTP client for calls on others' behalf: no redirects followed, and (public only) a
    /// resolver that hands the connector public addresses only, so a name that resolves to a
    /// private address at sending time (DNS rebinding) is refused where it connects. Literal IP
    /// hosts bypass resolvers: [`OutboundPolicy::check`] them before sending.
    pub fn client(self, timeout: std::time::Duration) -> reqwest::Client {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none());
        let builder = match self {
            OutboundPolicy::AllowPrivate => builder,
            OutboundPolicy::PublicOnly => builder.dns_resolver(Arc::new(PublicOnly)),
        };
        builder.build().unwrap_or_default()
    }
}

/// A resolver that drops non-public addresses (and fails when none is left).
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        for ok in ["/", "/orders?x=1", "/?machine=VM0001&sku=1", "/a/b%20c"] {
            assert_eq!(same_origin_path(Some(ok)), ok);
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example/",
            "/%09/evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "https://evil.example/",
            "javascript:alert(1)",
            "/%2F%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "/a%0d%0aSet-Cookie:%20a=b",
            " /x",
            "/x\r\nSet-Cookie: a=b",
            "/caf\u{e9}",
            "",
            "evil.example",
        ] {
            assert_eq!(same_origin_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(same_origin_path(None), "/");
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["203.0.114.1", "8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    /// Issue 27, finding 8: one case per range of the IANA special-purpose registries (an
    /// address inside each), refused; the translation ranges refused when the IPv4 address they
    /// carry is not public and allowed when it is; public addresses allowed.
    #[test]
    fn every_special_purpose_range_is_refused_one_case_per_range() {
        // (an address in the range, the range)
        let v4: &[(&str, &str)] = &[
            ("0.1.2.3", "0.0.0.0/8"),
            ("10.255.0.1", "10.0.0.0/8"),
            ("100.127.255.254", "100.64.0.0/10"),
            ("127.8.8.8", "127.0.0.0/8"),
            ("169.254.169.254", "169.254.0.0/16"),
            ("172.31.255.1", "172.16.0.0/12"),
            ("192.0.0.170", "192.0.0.0/24"),
            ("192.0.2.10", "192.0.2.0/24"),
            ("192.31.196.1", "192.31.196.0/24"),
            ("192.52.193.1", "192.52.193.0/24"),
            ("192.88.99.1", "192.88.99.0/24"),
            ("192.168.255.255", "192.168.0.0/16"),
            ("192.175.48.1", "192.175.48.0/24"),
            ("198.19.255.1", "198.18.0.0/15"),
            ("198.51.100.7", "198.51.100.0/24"),
            ("203.0.113.9", "203.0.113.0/24"),
            ("239.1.2.3", "224.0.0.0/4"),
            ("250.1.2.3", "240.0.0.0/4"),
            ("255.255.255.255", "255.255.255.255/32"),
        ];
        assert_eq!(v4.len(), IPV4_SPECIAL.len(), "one case per IPv4 range");
        for (ip, range) in v4 {
            assert!(!is_public(ip.parse().unwrap()), "{ip} in {range}");
        }
        let v6: &[(&str, &str)] = &[
            ("::", "::/128"),
            ("::1", "::1/128"),
            ("::ffff:10.0.0.1", "::ffff:0:0/96"),
            ("::ffff:0:169.254.169.254", "::ffff:0:0:0/96"),
            ("::127.0.0.1", "::/96"),
            ("64:ff9b::a9fe:a9fe", "64:ff9b::/96"),
            ("64:ff9b:1::808:808", "64:ff9b:1::/48"),
            ("100::1", "100::/64"),
            ("100:0:0:1::1", "100:0:0:1::/64"),
            (
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                "2001::/32 (Teredo, client 127.0.0.1)",
            ),
            ("2001:2::1", "2001::/23"),
            ("2001:db8::1", "2001:db8::/32"),
            ("2002:a9fe:a9fe::1", "2002::/16 (169.254.169.254)"),
            ("2620:4f:8000::1", "2620:4f:8000::/48"),
            ("3fff::1", "3fff::/20"),
            ("5f00::1", "5f00::/16"),
            ("fd12:3456::1", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("fec0::1", "fec0::/10"),
            ("ff02::1", "ff00::/8"),
        ];
        assert_eq!(v6.len(), IPV6_SPECIAL.len(), "one case per IPv6 range");
        for (ip, range) in v6 {
            assert!(!is_public(ip.parse().unwrap()), "{ip} in {range}");
        }
        // Outside global unicast altogether.
        assert!(!is_public("4000::1".parse().unwrap()));
        // Translation ranges carrying a public IPv4 address are that address.
        for ip in [
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        // Public addresses, next to the ranges.
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.3.1",
            "198.20.0.1",
            "203.0.114.1",
            "223.255.255.1",
            "2606:4700::1111",
            "2400:cb00::1",
            "2001:200::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn live_policy_refuses_private_and_odd_urls() {
        let live = OutboundPolicy::PublicOnly;
        for url in [
            "http://127.0.0.1:8080/notify",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/x",
            "http://localhost:9/x",
            "http://10.0.0.1/x",
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[::169.254.169.254]/",
            "http://[fec0::1]/",
            "http://198.18.0.1/",
        ] {
            assert!(
                matches!(live.check(url).await, Err(OutboundError::Forbidden(_))),
                "{url}"
            );
        }
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "notaurl",
            "gopher://x",
        ] {
            assert_eq!(live.check(url).await, Err(OutboundError::Scheme), "{url}");
        }
        assert_eq!(live.check("https://203.0.114.7/notify").await, Ok(()));
        assert_eq!(
            OutboundPolicy::AllowPrivate
                .check("http://127.0.0.1:8080/notify")
                .await,
            Ok(())
        );
    }
}
