//! [`RedisHandledEvents`]: `SET key taken NX PX lease` claims, `SET key done PX keep` records,
//! a script releases only a claim (never a handled event).

use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::ConnectionManager;
use async_trait::async_trait;

use crate::{Claim, HandledEvents, StoreError};

const TAKEN: &str = "taken";
const DONE: &str = "done";

/// Deletes the key only while it is a claim.
const RELEASE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/// Handled callback events in Redis, shared by every instance using the same `prefix`.
#[derive(Clone)]
pub struct RedisHandledEvents {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisHandledEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandledEvents")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn store(e: ::redis::RedisError) -> StoreError {
    StoreError::new(e)
}

impl RedisHandledEvents {
    /// Connects to `url` (`redis://…`); keys are `prefix` + the event id.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(store)?;
        let conn = ConnectionManager::new(client).await.map_err(store)?;
        Ok(RedisHandledEvents {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

#[async_trait]
impl HandledEvents for RedisHandledEvents {
    async fn claim(&self, id: &str, lease: Duration) -> Result<Claim, StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(id);
        let options = ::redis::SetOptions::default()
            .conditional_set(::redis::ExistenceCheck::NX)
            .with_expiration(::redis::SetExpiry::PX(
                u64::try_from(super::millis(lease)).unwrap_or(1),
            ));
        let set: Option<String> = conn
            .set_options(&key, TAKEN, options)
            .await
            .map_err(store)?;
        if set.is_some() {
            return Ok(Claim::Taken);
        }
        let state: Option<String> = conn.get(&key).await.map_err(store)?;
        Ok(match state.as_deref() {
            Some(DONE) => Claim::Handled,
            // Taken by another delivery — or its lease ran out just now: the platform retries.
            _ => Claim::Busy,
        })
    }

    async fn handled(&self, id: &str, keep: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let keep = u64::try_from(super::millis(keep)).unwrap_or(1);
        let _: () = conn
            .pset_ex(self.key(id), DONE, keep)
            .await
            .map_err(store)?;
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = ::redis::Script::new(RELEASE)
            .key(self.key(id))
            .arg(TAKEN)
            .invoke_async(&mut conn)
            .await
            .map_err(store)?;
        Ok(())
    }
}
