//! Remembering what was seen: request nonces (the platform's side, against replays). Callback
//! events on the merchant's side are [`crate::HandledEvents`]: recorded only once handled.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::StoreError;

/// Says whether a key is new.
#[async_trait]
pub trait NonceStore: Send + Sync + fmt::Debug {
    /// Records `key` for `ttl`; `true` the first time, `false` for a repeat within `ttl`.
    async fn first_seen(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

/// In-process memory of keys (one instance).
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    seen: Mutex<Seen>,
}

/// Expiry per key, plus the keys in insertion order so expired ones are swept cheaply.
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
        let mut guard = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let Seen { until, order } = &mut *guard;
        while order.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, k)) = order.pop_front() {
                if until.get(&k).is_some_and(|t| *t <= now) {
                    until.remove(&k);
                }
            }
        }
        if until.get(key).is_some_and(|t| *t > now) {
            return Ok(false);
        }
        until.insert(key.to_owned(), now + ttl);
        order.push_back((now + ttl, key.to_owned()));
        Ok(true)
    }
}
