//! The access token: one per app id, shared by every instance, refreshed by one caller at a time.
//!
//! The classic failure is every instance refreshing its own token and so invalidating the
//! others'. Here the token lives in a [`TokenStore`] (in memory, or Redis behind the `redis`
//! feature, so every instance shares it), and a refresh takes two locks: an in-process mutex (so
//! 1,000 concurrent callers on a cold cache make one upstream call) and the store's refresh lock
//! (so two instances do too). A token is refreshed `refresh_margin` before it expires; callers
//! that arrive while another instance refreshes keep using the still-valid token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::{Error, Secret};

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisTokenStore;

/// An access token and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token.
    pub token: Secret,
    /// When WeChat stops accepting it.
    pub expires_at: SystemTime,
}

impl StoredToken {
    /// Whether the token is valid for at least `margin` more.
    pub fn is_fresh(&self, now: SystemTime, margin: Duration) -> bool {
        self.expires_at
            .duration_since(now)
            .is_ok_and(|left| left > margin)
    }
}

/// Where access tokens are kept. Implementations must be safe to share between instances when
/// they are meant to be (the Redis store is; the memory store is per process).
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The current token of `app_id`, if any.
    async fn get(&self, app_id: &str) -> Result<Option<StoredToken>, Error>;

    /// Stores `token` as the current token of `app_id`.
    async fn set(&self, app_id: &str, token: &StoredToken) -> Result<(), Error>;

    /// Forgets the token of `app_id` if it is still `token` (one that WeChat rejected); a newer
    /// token set meanwhile by another instance is kept.
    async fn invalidate(&self, app_id: &str, token: &str) -> Result<(), Error>;

    /// Takes the refresh lock of `app_id` for `owner` for at most `ttl`; `false` if someone else
    /// holds it.
    async fn try_lock(&self, app_id: &str, owner: &str, ttl: Duration) -> Result<bool, Error>;

    /// Releases the refresh lock if `owner` still holds it.
    async fn unlock(&self, app_id: &str, owner: &str) -> Result<(), Error>;
}

/// The in-process store: the default, shared by the clones of one client (or by several clients
/// given the same `Arc`).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<HashMap<String, StoredToken>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryTokenStore::default()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn get(&self, app_id: &str) -> Result<Option<StoredToken>, Error> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(tokens.get(app_id).cloned())
    }

    async fn set(&self, app_id: &str, token: &StoredToken) -> Result<(), Error> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(app_id.to_owned(), token.clone());
        Ok(())
    }

    async fn invalidate(&self, app_id: &str, token: &str) -> Result<(), Error> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens
            .get(app_id)
            .is_some_and(|t| t.token.expose() == token)
        {
            tokens.remove(app_id);
        }
        Ok(())
    }

    async fn try_lock(&self, app_id: &str, owner: &str, ttl: Duration) -> Result<bool, Error> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match locks.get(app_id) {
            Some((_, until)) if *until > now => Ok(false),
            _ => {
                locks.insert(app_id.to_owned(), (owner.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn unlock(&self, app_id: &str, owner: &str) -> Result<(), Error> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.get(app_id).is_some_and(|(o, _)| o == owner) {
            locks.remove(app_id);
        }
        Ok(())
    }
}

/// Which WeChat endpoint issues tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TokenSource {
    /// `GET /cgi-bin/token`: each call issues a new token; the previous one stays valid for
    /// five minutes.
    #[default]
    Token,
    /// `POST /cgi-bin/stable_token`: returns the current token while it is valid, so several
    /// independent systems can call it without invalidating each other.
    StableToken,
}

/// How a fresh token is obtained from WeChat (implemented by the client).
#[async_trait]
pub(crate) trait FetchToken: Send + Sync {
    /// Asks WeChat for a token; `force` after WeChat rejected the current one.
    async fn fetch_token(&self, force: bool) -> Result<(Secret, Duration), Error>;
}

/// The single-flight refresh around a store.
pub(crate) struct TokenManager {
    pub(crate) app_id: String,
    pub(crate) store: std::sync::Arc<dyn TokenStore>,
    pub(crate) refresh_margin: Duration,
    /// One refresh at a time in this process.
    pub(crate) refresh: tokio::sync::Mutex<()>,
}

/// How long the store's refresh lock is held at most (a refresh is one HTTP call).
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a caller waiting for another instance's refresh looks at the store.
const POLL: Duration = Duration::from_millis(20);

impl TokenManager {
    async fn fresh(&self) -> Result<Option<Secret>, Error> {
        let now = SystemTime::now();
        Ok(self
            .store
            .get(&self.app_id)
            .await?
            .filter(|t| t.is_fresh(now, self.refresh_margin))
            .map(|t| t.token))
    }

    /// A token that is still accepted (even if due for refresh), for callers that find another
    /// instance refreshing.
    async fn usable(&self) -> Result<Option<Secret>, Error> {
        let now = SystemTime::now();
        Ok(self
            .store
            .get(&self.app_id)
            .await?
            .filter(|t| t.is_fresh(now, Duration::from_secs(30)))
            .map(|t| t.token))
    }

    /// The current token, refreshing it if needed (once, whoever asks).
    pub(crate) async fn token(
        &self,
        fetcher: &dyn FetchToken,
        force: bool,
    ) -> Result<Secret, Error> {
        if let Some(t) = self.fresh().await? {
            return Ok(t);
        }
        let _in_process = self.refresh.lock().await;
        if let Some(t) = self.fresh().await? {
            return Ok(t);
        }
        let owner = crate::random_hex()?;
        loop {
            if self.store.try_lock(&self.app_id, &owner, LOCK_TTL).await? {
                let refreshed = self.refresh_locked(fetcher, force).await;
                if let Err(e) = self.store.unlock(&self.app_id, &owner).await {
                    tracing::warn!(app_id = %self.app_id, error = %e, "cannot release the token refresh lock");
                }
                return refreshed;
            }
            // Another instance is refreshing: use the current token while it lasts, else wait
            // for theirs (the lock expires on its own if that instance died).
            if let Some(t) = self.usable().await? {
                return Ok(t);
            }
            tokio::time::sleep(POLL).await;
            if let Some(t) = self.fresh().await? {
                return Ok(t);
            }
        }
    }

    async fn refresh_locked(&self, fetcher: &dyn FetchToken, force: bool) -> Result<Secret, Error> {
        // Another instance may have finished a refresh between our check and the lock.
        if let Some(t) = self.fresh().await? {
            return Ok(t);
        }
        let (token, lifetime) = fetcher.fetch_token(force).await?;
        let stored = StoredToken {
            token,
            expires_at: SystemTime::now() + lifetime,
        };
        self.store.set(&self.app_id, &stored).await?;
        tracing::debug!(app_id = %self.app_id, lifetime_secs = lifetime.as_secs(), "access token refreshed");
        Ok(stored.token)
    }

    /// Forgets `token` after WeChat rejected it.
    pub(crate) async fn invalidate(&self, token: &Secret) -> Result<(), Error> {
        self.store.invalidate(&self.app_id, token.expose()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_invalidates_only_the_rejected_token() {
        let store = MemoryTokenStore::new();
        let t = |s: &str| StoredToken {
            token: Secret::new(s),
            expires_at: SystemTime::now() + Duration::from_secs(60),
        };
        store.set("app", &t("new")).await.unwrap();
        store.invalidate("app", "old").await.unwrap();
        let current = store.get("app").await.unwrap().map(|t| t.token);
        assert_eq!(current, Some(Secret::new("new")));
        store.invalidate("app", "new").await.unwrap();
        assert_eq!(store.get("app").await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_lock_is_exclusive_and_owned() {
        let store = MemoryTokenStore::new();
        assert!(store.try_lock("app", "a", LOCK_TTL).await.unwrap());
        assert!(!store.try_lock("app", "b", LOCK_TTL).await.unwrap());
        store.unlock("app", "b").await.unwrap(); // not the owner: no effect
        assert!(!store.try_lock("app", "b", LOCK_TTL).await.unwrap());
        store.unlock("app", "a").await.unwrap();
        assert!(store.try_lock("app", "b", LOCK_TTL).await.unwrap());
        // An expired lock can be taken over.
        assert!(store.try_lock("other", "a", Duration::ZERO).await.unwrap());
        assert!(store.try_lock("other", "b", LOCK_TTL).await.unwrap());
    }

    #[test]
    fn freshness_uses_the_margin() {
        let now = SystemTime::now();
        let t = StoredToken {
            token: Secret::new("t"),
            expires_at: now + Duration::from_secs(600),
        };
        assert!(t.is_fresh(now, Duration::from_secs(300)));
        assert!(!t.is_fresh(now, Duration::from_secs(600)));
        assert!(!t.is_fresh(now + Duration::from_secs(700), Duration::ZERO));
    }
}
