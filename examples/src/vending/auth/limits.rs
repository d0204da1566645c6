//! Rate limits on what anyone can start: orders (per buyer and per client network) and logins
//! (per client network; seller logins per login name too), `ORDER_RATE_PER_MIN` each, counted in
//! Redis when it is configured so every instance counts together. A client network is its
//! address for IPv4 and its /64 for IPv6 (`RATE_LIMIT_IPV4_PREFIX`, `RATE_LIMIT_IPV6_PREFIX`):
//! anyone with an ordinary IPv6 line holds 2^64 addresses. A limiter that cannot count refuses
//! (503): an unlimited moment is the one an attacker waits for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::client_addr::NetworkPrefixes;
use crate::error::AppError;
use crate::vending::VendingState;

/// The client's network (see `crate::client_addr`: its address, or its /64 for IPv6), when
/// known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub Option<String>);

impl ClientAddr {
    /// The network of `ip` under `prefixes`.
    pub fn of(ip: Option<IpAddr>, prefixes: NetworkPrefixes) -> Self {
        ClientAddr(ip.map(|ip| prefixes.network(ip)))
    }

    /// The rate-limit key of this client network.
    pub fn key(&self, what: &str) -> String {
        match &self.0 {
            Some(net) => format!("{what}:net:{net}"),
            None => format!("{what}:net:unknown"),
        }
    }
}

impl FromRequestParts<Arc<VendingState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<VendingState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(
            state.settings.trusted_proxies.client(parts),
            state.settings.rate_prefixes,
        ))
    }
}

/// Counts one hit on each key; refused (429 with `Retry-After`) when any is over the limit.
pub async fn within_rate(state: &VendingState, keys: &[String]) -> Result<(), AppError> {
    let mut refused: Option<Duration> = None;
    for key in keys {
        let decision = state
            .limiter
            .hit(key, state.settings.rate_per_min, Duration::from_secs(60))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "rate limiter unavailable");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "try again shortly",
                )
            })?;
        if !decision.allowed {
            refused = Some(refused.map_or(decision.retry_after, |r| r.max(decision.retry_after)));
        }
    }
    match refused {
        Some(wait) => Err(AppError::rate_limited(
            "too many requests; try again shortly",
            wait.as_secs().max(1),
        )),
        None => Ok(()),
    }
}
