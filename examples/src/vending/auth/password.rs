//! Seller passwords: argon2id (v19, 19 MiB, 2 passes — OWASP's minimum) with a random salt,
//! stored as a PHC string. Hashing runs off the async threads, at most one per core at a time
//! in the whole process (a flood of logins queues instead of taking every core and 19 MiB
//! each). A login for an unknown seller still pays for one verification, so timing does not say
//! which logins exist.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Password hashes computed at once, process-wide (one per core).
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(hashing_limit()));

/// How many hashes may run at once in this process: one per core.
pub fn hashing_limit() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
}

/// Runs `work` (a hash) on a blocking thread once a hashing permit is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let _permit = HASHING.acquire().await;
    tokio::task::spawn_blocking(work).await
}

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 10;

/// Why a password could not be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("a password needs at least {MIN_LENGTH} characters")]
    TooShort,
    /// Longer than anyone types (and than is sensible to hash on request).
    #[error("a password has at most 256 characters")]
    TooLong,
    /// No randomness for the salt.
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
    /// The hasher failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks that `password` may be set.
pub fn acceptable(password: &str) -> Result<(), PasswordError> {
    match password.chars().count() {
        n if n < MIN_LENGTH => Err(PasswordError::TooShort),
        n if n > 256 => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    acceptable(&password)?;
    let mut salt = [0u8; 16];
    crate::random::fill(&mut salt)?;
    bounded(move || {
        Argon2::default()
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError::Hash(e.to_string()))?
}

/// A hash of nothing anyone knows, verified against when the login does not exist.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$nSGlsUqLQ7fVU1TB8XHvqpLZ2uVJv3h9C+eJn8Ybq9M";

/// Whether `password` matches `hash` (`None`: an unknown login — always `false`, same cost).
pub async fn verify(password: String, hash: Option<String>) -> bool {
    if password.len() > 1024 {
        return false;
    }
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DECOY.to_owned());
    let matched = bounded(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    known && matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse battery".into())
            .await
            .unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("correct horse battery!".into(), Some(h.clone())).await);
        assert!(!verify(String::new(), Some(h.clone())).await);
        let again = hash("correct horse battery".into())
            .await
            .unwrap_or_default();
        assert_ne!(h, again, "salted");
        assert!(!verify("anything at all".into(), None).await);
        assert!(matches!(
            hash("short".into()).await,
            Err(PasswordError::TooShort)
        ));
        // The decoy is a real argon2id hash: an unknown login costs a full verification.
        assert!(argon2::password_hash::phc::PasswordHash::new(DECOY).is_ok());
    }

    /// Issue 27, finding 7: every unknown-name login cost an argon2id hash, as many at once as
    /// requests came. Now at most one per core runs, whatever arrives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_one_hash_per_core_runs_at_once() {
        let capacity = hashing_limit();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let jobs = (0..capacity * 4 + 4).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(bounded(move || {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, SeqCst);
            }))
        });
        for j in futures_util::future::join_all(jobs).await {
            j.unwrap().unwrap();
        }
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            most <= capacity,
            "{most} hashes at once, capacity {capacity}"
        );
    }
}
