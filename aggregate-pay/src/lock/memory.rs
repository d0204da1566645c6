//! Locks in this process's memory.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{LockGuard, LockManager};
use crate::StoreError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockGuard;

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
