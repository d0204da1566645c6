//! Distributed locks with an owner token: acquired for a time-to-live, released (or extended)
//! only by their owner, freed by expiry if the owner dies. Not the `SETNX` + `GETSET` pattern:
//! a lock that expired and was taken by someone else is never released by the late first owner.
//!
//! One backend a file: `memory` (one process), `redis` (feature `redis`: every instance).

use std::fmt;

use std::time::Duration;

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

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisLockManager;
pub use memory::MemoryLockManager;
