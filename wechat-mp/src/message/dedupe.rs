//! Duplicate-delivery filtering: WeChat re-sends a message it got no answer to within 5 seconds
//! (three tries), so the second and third copies must not run the handlers again.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::Error;

/// Remembers which deliveries were seen.
#[async_trait]
pub trait Deduper: Send + Sync + fmt::Debug {
    /// Records `key` for `ttl`; `true` the first time, `false` for a repeat within `ttl`.
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, Error>;
}

/// In-process deduplication (one instance). Give every instance a shared Redis deduper when
/// several serve one callback URL.
#[derive(Debug, Default)]
pub struct MemoryDeduper {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl MemoryDeduper {
    /// An empty deduper.
    pub fn new() -> Self {
        MemoryDeduper::default()
    }
}

#[async_trait]
impl Deduper for MemoryDeduper {
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget expired keys (oldest first).
        while let Some((until, _)) = seen.order.front() {
            if *until > now {
                break;
            }
            if let Some((_, k)) = seen.order.pop_front() {
                if seen.until.get(&k).is_some_and(|u| *u <= now) {
                    seen.until.remove(&k);
                }
            }
        }
        if seen.until.get(key).is_some_and(|u| *u > now) {
            return Ok(false);
        }
        seen.until.insert(key.to_owned(), now + ttl);
        seen.order.push_back((now + ttl, key.to_owned()));
        Ok(true)
    }
}

/// Deduplication shared by every instance, in Redis (`SET NX PX`).
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisDeduper {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisDeduper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDeduper")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisDeduper {
    /// Connects to `url`; keys are prefixed with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::Store(format!("redis: {e}")))?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(|e| Error::Store(format!("redis: {e}")))?;
        Ok(RedisDeduper {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl Deduper for RedisDeduper {
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::Store(format!("redis: {e}")))?;
        Ok(reply.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remembers_within_ttl_and_forgets_after() {
        let d = MemoryDeduper::new();
        assert!(d.first_seen("a", Duration::from_secs(60)).await.unwrap());
        assert!(!d.first_seen("a", Duration::from_secs(60)).await.unwrap());
        assert!(d.first_seen("b", Duration::ZERO).await.unwrap());
        assert!(
            d.first_seen("b", Duration::ZERO).await.unwrap(),
            "expired keys are new again"
        );
    }
}
