//! Rate limits on what anyone can start: orders (per buyer and per client address) and logins
//! (per client address), `ORDER_RATE_PER_MIN` each, counted in Redis when it is configured so
//! every instance counts together. A limiter that cannot count refuses (503): an unlimited
//! moment is the one an attacker waits for.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use crate::error::AppError;
use crate::vending::VendingState;

/// The client's address (see `crate::client_addr`), when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    /// The rate-limit key of this address.
    pub fn key(&self, what: &str) -> String {
        match self.0 {
            Some(ip) => format!("{what}:addr:{ip}"),
            None => format!("{what}:addr:unknown"),
        }
    }
}

impl FromRequestParts<Arc<VendingState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<VendingState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(state.settings.trusted_proxies.client(parts)))
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
