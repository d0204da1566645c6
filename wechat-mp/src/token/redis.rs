//! [`RedisTokenStore`]: one token per app id for every instance, in Redis.
//!
//! The token is a plain string key whose Redis expiry is the token's; the refresh lock is a
//! `SET NX PX` key holding its owner's random id, released only by that owner (a Lua
//! compare-and-delete), so a slow instance can never release a lock another one took over.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::{StoredToken, TokenStore};
use crate::{Error, Secret};

/// Tokens and refresh locks in Redis, shared by every instance that uses the same prefix.
#[derive(Clone)]
pub struct RedisTokenStore {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Deletes KEYS[1] only if it still holds ARGV[1].
const COMPARE_AND_DELETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

fn store_error(e: redis::RedisError) -> Error {
    Error::Store(format!("redis: {e}"))
}

impl RedisTokenStore {
    /// Connects to `url` (`redis://host:port/db`). Keys are prefixed with `wechat-mp:`.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with_prefix(url, "wechat-mp:").await
    }

    /// Connects with another key prefix (to keep environments apart on one Redis).
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let conn = ConnectionManager::new(client).await.map_err(store_error)?;
        Ok(RedisTokenStore {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn token_key(&self, app_id: &str) -> String {
        format!("{}token:{app_id}", self.prefix)
    }

    fn lock_key(&self, app_id: &str) -> String {
        format!("{}token-lock:{app_id}", self.prefix)
    }
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn get(&self, app_id: &str) -> Result<Option<StoredToken>, Error> {
        let mut conn = self.conn.clone();
        let key = self.token_key(app_id);
        let (token, ttl_ms): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(match (token, u64::try_from(ttl_ms)) {
            (Some(token), Ok(ms)) => Some(StoredToken {
                token: Secret::new(token),
                expires_at: SystemTime::now() + Duration::from_millis(ms),
            }),
            _ => None,
        })
    }

    async fn set(&self, app_id: &str, token: &StoredToken) -> Result<(), Error> {
        let ms = token
            .expires_at
            .duration_since(SystemTime::now())
            .map(|d| d.as_millis())
            .unwrap_or(0);
        if ms == 0 {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.token_key(app_id))
            .arg(token.token.expose())
            .arg("PX")
            .arg(u64::try_from(ms).unwrap_or(u64::MAX))
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_error)
    }

    async fn invalidate(&self, app_id: &str, token: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::Script::new(COMPARE_AND_DELETE)
            .key(self.token_key(app_id))
            .arg(token)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn try_lock(&self, app_id: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.lock_key(app_id))
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .query_async(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(reply.is_some())
    }

    async fn unlock(&self, app_id: &str, owner: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        redis::Script::new(COMPARE_AND_DELETE)
            .key(self.lock_key(app_id))
            .arg(owner)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}
