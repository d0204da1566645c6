//! URLs a server takes from others and acts on: where a browser is sent back after a login (a
//! same-origin path, never another origin), and where a server sends requests on a merchant's
//! behalf (http(s) only; in live mode never a loopback, private, link-local or metadata address,
//! checked when the URL is registered and again, on the resolved addresses, when connecting).

use std::net::{IpAddr, SocketAddr};
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

/// Whether a server may send requests to `ip` on someone else's behalf: not loopback,
/// unspecified, private (RFC 1918, unique local), link-local (which holds the cloud metadata
/// service, 169.254.169.254), shared (100.64/10), multicast, broadcast or documentation ranges.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
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

    #[tokio::test]
    async fn live_policy_refuses_private_and_odd_urls() {
        let live = OutboundPolicy::PublicOnly;
        for url in [
            "http://127.0.0.1:8080/notify",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/x",
            "http://localhost:9/x",
            "http://10.0.0.1/x",
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
