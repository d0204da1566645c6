//! Locks in Redis, shared by every instance.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use super::{LockGuard, LockManager};
use crate::StoreError;

/// Locks in Redis: `SET key token NX PX ttl`; release and extend are Lua compare-and-act
/// scripts, so they only ever touch a lock the caller still owns.
#[derive(Clone)]
pub struct RedisLockManager {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

impl fmt::Debug for RedisLockManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLockManager")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

const EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

impl RedisLockManager {
    /// Connects to `url`; lock keys are `{prefix}{key}`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let conn = crate::redis::connect(url).await?;
        Ok(RedisLockManager {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

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
            .arg(crate::redis::millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(crate::redis::error)?;
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
            .map_err(crate::redis::error)?;
        Ok(n == 1)
    }

    async fn extend(&self, guard: &LockGuard, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::Script::new(EXTEND)
            .key(format!("{}{}", self.prefix, guard.key))
            .arg(&guard.token)
            .arg(crate::redis::millis(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(crate::redis::error)?;
        Ok(n == 1)
    }
}
