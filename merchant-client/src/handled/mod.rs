//! [`HandledEvents`](crate::HandledEvents) stores beyond one process's memory, so a merchant
//! running several instances handles each callback once: [`RedisHandledEvents`] (feature
//! `redis`) and [`SqlHandledEvents`] (feature `sql`, on the merchant's own PostgreSQL, MySQL or
//! SQLite through sqlx; it can record an event handled inside the transaction that handles it).
//!
//! Both keep the same three states as the memory store: *taken* for a lease (one delivery is
//! handling it; another gets [`Claim::Busy`](crate::Claim::Busy) and the platform retries
//! later), *done* for the keep period (a redelivery is a duplicate), or absent (released after
//! a failure, or a lease that ran out: the next delivery takes it).

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sql")]
mod sql;

#[cfg(feature = "redis")]
pub use self::redis::RedisHandledEvents;
#[cfg(feature = "sql")]
pub use self::sql::SqlHandledEvents;

/// Milliseconds of `d`, at least 1 (a zero lease would be no lease).
#[cfg(any(feature = "redis", feature = "sql"))]
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}
