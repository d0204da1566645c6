//! Distributed locks with an owner token: acquired for a time-to-live, released (or extended)
//! only by their owner, freed by expiry if the owner dies. Not the `SETNX` + `GETSET` pattern:
//! a lock that expired and was taken by someone else is never released by the late first owner.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::StoreError;

/// A held lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    /// What is locked.
    pub key: String,
    /// The owner token: only its holder can release or extend the lock.
    pub token: String,
}

/// Locks shared by the instances that use the same manager (memory: one process; Redis: all).
#[async_trait]
pub trait LockManager: Send + Sync + fmt::Debug {
    /// Takes `key` for `ttl`; `None` if someone else holds it.
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<LockGuard>, StoreError>;

    /// Releases the lock if `guard` still owns it; `false` if it expired or was taken over.
    async fn release(&self, guard: &LockGuard) -> Result<bool, StoreError>;

    /// Extends the lock to `ttl` from now if `guard` still owns it.
    async fn extend(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError>;
}

/// In-process locks.
#[derive(Debug, Default)]
pub struct MemoryLockManager {
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryLockManager {
    /// No locks held.
    pub fn new() -> Self {
        MemoryLockManager::default()
    }
}

#[async_trait]
impl LockManager for MemoryLockManager {
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<LockGuard>, StoreError> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if locks.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(None);
        }
        let token = crate::random_hex(16);
        locks.insert(key.to_owned(), (token.clone(), now + ttl));
        Ok(Some(LockGuard {
            key: key.to_owned(),
            token,
        }))
    }

    async fn release(&self, guard: &LockGuard) -> Result<bool, StoreError> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let owned = locks
            .get(&guard.key)
            .is_some_and(|(t, until)| *t == guard.token && *until > Instant::now());
        if owned {
            locks.remove(&guard.key);
        }
        Ok(owned)
    }

    async fn extend(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match locks.get_mut(&guard.key) {
            Some((t, until)) if *t == guard.token && *until > now => {
                *until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// Locks in Redis: `SET key token NX PX ttl`; release and extend are Lua compare-and-act
/// scripts, so they only ever touch a lock the caller still owns.
#[cfg(feature = "redis")]
#[derive(Clone)]
pub struct RedisLockManager {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

#[cfg(feature = "redis")]
impl fmt::Debug for RedisLockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLockManager")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis")]
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

#[cfg(feature = "redis")]
const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

#[cfg(feature = "redis")]
fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

#[cfg(feature = "redis")]
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(feature = "redis")]
impl RedisLockManager {
    /// Connects to `url`; lock keys are `{prefix}{key}`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis_error)?;
        let conn = redis::aio::ConnectionManager::new(client)
            .await
            .map_err(redis_error)?;
        Ok(RedisLockManager {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl LockManager for RedisLockManager {
    async fn acquire(&self, key: &str, ttl: Duration) -> Result<Option<LockGuard>, StoreError> {
        let token = crate::random_hex(16);
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(format!("{}{key}", self.prefix))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ms(ttl))
            .query_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(reply.map(|_| LockGuard {
            key: key.to_owned(),
            token,
        }))
    }

    async fn release(&self, guard: &LockGuard) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(RELEASE)
            .key(format!("{}{}", self.prefix, guard.key))
            .arg(&guard.token)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(n == 1)
    }

    async fn extend(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(EXTEND)
            .key(format!("{}{}", self.prefix, guard.key))
            .arg(&guard.token)
            .arg(ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_locks_belong_to_their_owner() {
        let m = MemoryLockManager::new();
        let a = m
            .acquire("machine:1", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            m.acquire("machine:1", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
        let forged = LockGuard {
            key: a.key.clone(),
            token: "not-the-owner".into(),
        };
        assert!(!m.release(&forged).await.unwrap());
        assert!(!m.extend(&forged, Duration::from_secs(60)).await.unwrap());
        assert!(m.extend(&a, Duration::from_secs(60)).await.unwrap());
        assert!(m.release(&a).await.unwrap());
        assert!(!m.release(&a).await.unwrap(), "released once");
        // Expiry frees it, and the late first owner cannot release the new holder's lock.
        let b = m
            .acquire("machine:2", Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let c = m
            .acquire("machine:2", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert!(!m.release(&b).await.unwrap());
        assert!(m.release(&c).await.unwrap());
    }
}
