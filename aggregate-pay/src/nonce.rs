//! Replay protection: remember a nonce (or an event id, or a notification id) for a while and
//! say whether it was seen. The same store WeChat MP's callback uses for duplicate deliveries,
//! shared here rather than written twice: in memory, or in Redis with the `redis` feature
//! (`SET NX PX`, so every instance sees every nonce).
//!
//! ```
//! # async fn run() -> Result<(), wechat_mp::Error> {
//! use aggregate_pay::nonce::{MemoryNonceStore, NonceStore};
//! let nonces = MemoryNonceStore::new();
//! let ttl = std::time::Duration::from_secs(300);
//! assert!(nonces.first_seen("merchant-1:nonce-abc", ttl).await?);
//! assert!(!nonces.first_seen("merchant-1:nonce-abc", ttl).await?, "a replay");
//! # Ok(()) }
//! ```

pub use wechat_mp::message::{Deduper as NonceStore, MemoryDeduper as MemoryNonceStore};

#[cfg(feature = "redis")]
pub use wechat_mp::message::RedisDeduper as RedisNonceStore;
