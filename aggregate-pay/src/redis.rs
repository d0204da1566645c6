//! What the Redis backends share (feature `redis`): one way to connect and one way to report a
//! failure (the engine is unavailable: retry later).

use std::time::Duration;

use crate::StoreError;

/// A managed connection to `url` (it reconnects by itself).
pub(crate) async fn connect(url: &str) -> Result<redis::aio::ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(error)?;
    redis::aio::ConnectionManager::new(client)
        .await
        .map_err(error)
}

/// A Redis failure.
pub(crate) fn error(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// A TTL in whole milliseconds, at least one.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
