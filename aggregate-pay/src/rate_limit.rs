//! Rate limits: at most `limit` hits per key in a fixed window. In memory (one process), or in
//! Redis with the `redis` feature (`INCR` + `PEXPIRE` in one script, so every instance counts
//! together).
//!
//! A limiter never fails open by itself: when Redis is unreachable the caller gets the error
//! and decides.
//!
//! ```
//! # async fn run() -> Result<(), aggregate_pay::StoreError> {
//! use aggregate_pay::rate_limit::{MemoryRateLimiter, RateLimiter};
//! let limiter = MemoryRateLimiter::new();
//! let minute = std::time::Duration::from_secs(60);
//! assert!(limiter.hit("buyer:o1", 2, minute).await?.allowed);
//! assert!(limiter.hit("buyer:o1", 2, minute).await?.allowed);
//! let third = limiter.hit("buyer:o1", 2, minute).await?;
//! assert!(!third.allowed && third.retry_after <= minute);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::StoreError;

/// What a hit was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the hit is within the limit.
    pub allowed: bool,
    /// When the window ends (when a refused caller may try again).
    pub retry_after: Duration,
}

/// Counts hits per key in fixed windows.
#[async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Counts a hit on `key`: allowed while the window holds at most `limit` hits.
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError>;
}

/// Windows in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryRateLimiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl MemoryRateLimiter {
    /// No hits yet.
    pub fn new() -> Self {
        MemoryRateLimiter::default()
    }
}

/// Keys kept before ended windows are swept.
const SWEEP_ABOVE: usize = 10_000;

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Ok(RateDecision {
            allowed: entry.1 <= limit,
            retry_after: window.saturating_sub(now.duration_since(entry.0)),
        })
    }
}

/// Windows in Redis (`{prefix}{key}`), shared by every instance.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisRateLimiter {
    /// Connects to `url`; windows are kept under `{prefix}{key}`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Ok(RedisRateLimiter {
            conn: crate::redis::connect(url).await?,
            prefix: prefix.to_owned(),
            // The first hit of a window starts its clock; every hit reads what is left of it.
            script: redis::Script::new(
                "local n = redis.call('INCR', KEYS[1]) \
                 if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
                 local ttl = redis.call('PTTL', KEYS[1]) \
                 if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end \
                 return {n, ttl}",
            ),
        })
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, StoreError> {
        let mut conn = self.conn.clone();
        let (count, ttl_ms): (u64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(crate::redis::millis(window))
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis::error)?;
        Ok(RateDecision {
            allowed: count <= u64::from(limit),
            retry_after: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_window_allows_its_limit_then_refuses_until_it_ends() {
        let limiter = MemoryRateLimiter::new();
        let window = Duration::from_millis(50);
        for _ in 0..3 {
            assert!(limiter.hit("k", 3, window).await.unwrap().allowed);
        }
        let refused = limiter.hit("k", 3, window).await.unwrap();
        assert!(!refused.allowed);
        assert!(refused.retry_after <= window);
        assert!(
            limiter.hit("other", 3, window).await.unwrap().allowed,
            "keys are counted apart"
        );
        tokio::time::sleep(Duration::from_millis(70)).await;
        assert!(
            limiter.hit("k", 3, window).await.unwrap().allowed,
            "a new window"
        );
    }
}
