//! Replay protection: remember a key (a request nonce, an event id, a notification id) for a
//! while and say whether it was seen before. In memory (one process), or in Redis with the
//! `redis` feature (`SET NX PX`, so every instance sees every key).
//!
//! ```
//! # async fn run() -> Result<(), aggregate_pay::StoreError> {
//! use aggregate_pay::nonce::{MemoryNonceStore, NonceStore};
//! let nonces = MemoryNonceStore::new();
//! let ttl = std::time::Duration::from_secs(300);
//! assert!(nonces.first_seen("merchant-1:nonce-abc", ttl).await?);
//! assert!(!nonces.first_seen("merchant-1:nonce-abc", ttl).await?, "a replay");
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::StoreError;

/// Remembers keys for a while.
#[async_trait]
pub trait NonceStore: Send + Sync + fmt::Debug {
    /// Records `key` for `ttl`: `true` the first time, `false` when it was seen within its ttl.
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

/// Keys in this process's memory, forgotten after their ttl.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryNonceStore::default()
    }
}

#[async_trait]
impl NonceStore for MemoryNonceStore {
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget what expired, oldest first (the queue is in insertion order; a key seen again
        // later has a later entry, and only its latest deadline counts).
        while let Some((until, _)) = seen.order.front() {
            if *until > now {
                break;
            }
            if let Some((until, old)) = seen.order.pop_front() {
                if seen.until.get(&old) == Some(&until) {
                    seen.until.remove(&old);
                }
            }
        }
        if seen.until.get(key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        let until = now + ttl;
        seen.until.insert(key.to_owned(), until);
        seen.order.push_back((until, key.to_owned()));
        Ok(true)
    }
}

/// Keys in Redis (`SET {prefix}{key} 1 NX PX ttl`), shared by every instance.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisNonceStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisNonceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNonceStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
impl RedisNonceStore {
    /// Connects to `url`; keys are `{prefix}{key}`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Ok(RedisNonceStore {
            conn: crate::redis::connect(url).await?,
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl NonceStore for RedisNonceStore {
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(crate::redis::millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(crate::redis::error)?;
        Ok(reply.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_seen_once_within_their_ttl() {
        let store = MemoryNonceStore::new();
        let short = Duration::from_millis(20);
        assert!(store.first_seen("a", short).await.unwrap_or(false));
        assert!(!store.first_seen("a", short).await.unwrap_or(true));
        assert!(store.first_seen("b", short).await.unwrap_or(false));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            store.first_seen("a", short).await.unwrap_or(false),
            "forgotten after its ttl"
        );
    }
}
