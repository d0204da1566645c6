//! The client's address, for per-address limits: the connection's peer, unless that peer is one
//! of `TRUSTED_PROXIES` — then the nearest address in `X-Forwarded-For` that is not a trusted
//! proxy. A header from anyone else is never believed (it is whatever the client wrote).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

/// How much of an address names one client network for a limit: an IPv6 client holds a whole
/// /64 (any ordinary subscriber can use every address in it), an IPv4 client one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkPrefixes {
    /// Bits of an IPv4 address (default 32).
    pub v4: u8,
    /// Bits of an IPv6 address (default 64).
    pub v6: u8,
}

impl Default for NetworkPrefixes {
    fn default() -> Self {
        NetworkPrefixes { v4: 32, v6: 64 }
    }
}

impl NetworkPrefixes {
    /// The network `ip` is in, as `address/bits` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn network(self, ip: IpAddr) -> String {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let bits = self.v4.min(32);
                let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                format!("{}/{bits}", Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let bits = self.v6.min(128);
                let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                format!("{}/{bits}", Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpAddr>);

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of IP addresses (empty: none).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<IpAddr>()
                    .map_err(|_| format!("{p:?} is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

impl TrustedProxies {
    /// None: the peer is the client.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// The client's address, when known.
    pub fn client(&self, parts: &Parts) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        if !self.0.contains(&peer) {
            return Some(peer);
        }
        // Appended left to right by each proxy: the last entry no trusted proxy wrote is the
        // client as our own proxies saw it.
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .find(|a| !self.0.contains(a))
                .copied()
                .unwrap_or(peer),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut req = Request::builder();
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let (mut parts, ()) = req.body(()).unwrap_or_default().into_parts();
        if let Ok(addr) = format!("{peer}:1234").parse::<SocketAddr>() {
            parts.extensions.insert(ConnectInfo(addr));
        }
        parts
    }

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn clients_are_counted_by_network() {
        let p = NetworkPrefixes::default();
        let net = |a: &str| p.network(a.parse().unwrap());
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(net("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(net("2001:db8:1:3::1"), net("2001:db8:1:2::1"));
        assert_eq!(net("203.0.113.7"), "203.0.113.7/32");
        assert_eq!(net("::ffff:203.0.113.7"), "203.0.113.7/32");
        let wide = NetworkPrefixes { v4: 24, v6: 48 };
        assert_eq!(
            wide.network("203.0.113.7".parse().unwrap()),
            "203.0.113.0/24"
        );
        assert_eq!(
            wide.network("2001:db8:1:2::1".parse().unwrap()),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let none = TrustedProxies::none();
        assert_eq!(
            none.client(&parts("203.0.113.9", &["198.51.100.1"])),
            ip("203.0.113.9"),
            "a client's own header changes nothing"
        );
        let proxies: TrustedProxies = "10.0.0.1, 10.0.0.2".parse().unwrap_or_default();
        assert_eq!(
            proxies.client(&parts("10.0.0.1", &["1.2.3.4, 198.51.100.7, 10.0.0.2"])),
            ip("198.51.100.7"),
            "the nearest address no trusted proxy wrote"
        );
        assert_eq!(
            proxies.client(&parts("10.0.0.1", &[])),
            ip("10.0.0.1"),
            "no header: the proxy itself"
        );
        assert!("10.0.0.1, nonsense".parse::<TrustedProxies>().is_err());
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::none()));
    }
}
