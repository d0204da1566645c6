//! Redis locks, nonces and rate limits against the real Redis (`TEST_REDIS_URL`).

#[cfg(feature = "redis")]
mod redis {
    use std::time::Duration;

    use aggregate_pay::lock::{LockGuard, LockManager, RedisLockManager};
    use aggregate_pay::nonce::{NonceStore, RedisNonceStore};
    use aggregate_pay::rate_limit::{RateLimiter, RedisRateLimiter};

    use crate::support::unique;

    fn url() -> Option<String> {
        crate::support::engine_url("TEST_REDIS_URL")
    }

    #[tokio::test]
    async fn only_the_owner_releases_and_expiry_frees() {
        let Some(url) = url() else { return };
        let prefix = unique("locktest:");
        let a = RedisLockManager::connect(&url, &prefix).await.unwrap();
        let b = RedisLockManager::connect(&url, &prefix).await.unwrap();
        let held = a
            .acquire("machine:1", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(
            b.acquire("machine:1", Duration::from_secs(30))
                .await
                .unwrap()
                .is_none(),
            "another instance waits"
        );
        let forged = LockGuard {
            key: held.key.clone(),
            token: "someone-else".into(),
        };
        assert!(!b.release(&forged).await.unwrap(), "not the owner");
        assert!(!b.extend(&forged, Duration::from_secs(30)).await.unwrap());
        assert!(
            b.acquire("machine:1", Duration::from_secs(30))
                .await
                .unwrap()
                .is_none(),
            "still held"
        );
        assert!(a.extend(&held, Duration::from_secs(30)).await.unwrap());
        assert!(a.release(&held).await.unwrap());
        let second = b
            .acquire("machine:1", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(
            !a.release(&held).await.unwrap(),
            "a stale guard cannot release the new holder's lock"
        );
        assert!(b.release(&second).await.unwrap());

        // Expiry frees a lock whose owner died.
        let short = a
            .acquire("machine:2", Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let taken = b
            .acquire("machine:2", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(!a.release(&short).await.unwrap());
        assert!(b.release(&taken).await.unwrap());
    }

    #[tokio::test]
    async fn nonces_are_seen_once_across_instances() {
        let Some(url) = url() else { return };
        let prefix = unique("noncetest:");
        let a = RedisNonceStore::connect(&url, &prefix).await.unwrap();
        let b = RedisNonceStore::connect(&url, &prefix).await.unwrap();
        assert!(a.first_seen("n1", Duration::from_secs(60)).await.unwrap());
        assert!(!b.first_seen("n1", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn rate_limits_count_across_instances_and_end_with_their_window() {
        let Some(url) = url() else { return };
        let prefix = unique("ratetest:");
        let a = RedisRateLimiter::connect(&url, &prefix).await.unwrap();
        let b = RedisRateLimiter::connect(&url, &prefix).await.unwrap();
        let window = Duration::from_millis(400);
        assert!(a.hit("k", 2, window).await.unwrap().allowed);
        assert!(b.hit("k", 2, window).await.unwrap().allowed);
        let refused = a.hit("k", 2, window).await.unwrap();
        assert!(!refused.allowed, "two instances count together");
        assert!(refused.retry_after <= window && refused.retry_after > Duration::ZERO);
        assert!(b.hit("other", 2, window).await.unwrap().allowed);
        tokio::time::sleep(window + Duration::from_millis(100)).await;
        assert!(a.hit("k", 2, window).await.unwrap().allowed, "a new window");
    }
}
