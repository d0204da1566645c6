//! `Idempotency-Key`s: the first answer under a key is stored and replayed.
//!
//! A key being served holds a **lease** (`locked_until`): a repeat meanwhile is "in progress",
//! but once the lease has run out — the first request crashed, timed out or its client went
//! away without an answer being stored — a repeat takes the key over and runs. Keys **expire**
//! (`created_at` + the time to live): an expired key is a new key, and [`PlatformDb::prune_idempotency`]
//! deletes them.

use std::time::Duration;

use sqlx::Row;

use super::{DbResult, PlatformDb, e, unique_violation};

/// Leases and expiry (keys of earlier versions: created now, lease run out).
pub(super) const SCHEMA_V2: &str = "
ALTER TABLE idempotency_keys ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
";

/// What to do with a request under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotent {
    /// First use of the key (or a takeover of an abandoned one): it is now reserved.
    Reserved,
    /// Used before with the same request: replay this (status, body).
    Replay(u16, String),
    /// Used with a different request.
    Mismatch,
    /// The first request with this key is still running (its lease has not run out).
    InFlight,
}

/// How long a request holds its key, and how long keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    /// A request running longer than this may be taken over by a repeat.
    pub lease: Duration,
    /// After this a key is forgotten.
    pub ttl: Duration,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl PlatformDb {
    /// Reserves an idempotency key for a request at `now` (Unix seconds), or says what to do
    /// instead.
    pub async fn reserve_idempotency(
        &self,
        merchant_id: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        times: KeyTimes,
    ) -> DbResult<Idempotent> {
        let locked_until = now.saturating_add(secs(times.lease));
        // Twice at most: once more after clearing an expired key.
        for _ in 0..2 {
            let inserted = sqlx::query(self.q("INSERT INTO idempotency_keys \
                 (merchant_id, idem_key, request_hash, status, response, created_at, locked_until) \
                 VALUES (?, ?, ?, 0, NULL, ?, ?)"))
            .bind(merchant_id.to_owned())
            .bind(key.to_owned())
            .bind(request_hash.to_owned())
            .bind(now)
            .bind(locked_until)
            .execute(self.store.pool())
            .await;
            match inserted {
                Ok(_) => return Ok(Idempotent::Reserved),
                Err(err) if unique_violation(&err) => {}
                Err(err) => return Err(e(err)),
            }
            let row = sqlx::query(self.q(
                "SELECT request_hash, status, response, created_at, locked_until FROM idempotency_keys \
                 WHERE merchant_id = ? AND idem_key = ?",
            ))
            .bind(merchant_id.to_owned())
            .bind(key.to_owned())
            .fetch_optional(self.store.pool())
            .await
            .map_err(e)?;
            // Deleted in between (released or pruned): try the insert again.
            let Some(row) = row else { continue };
            let hash: String = row.try_get("request_hash").map_err(e)?;
            let status: i64 = row.try_get("status").map_err(e)?;
            let response: Option<String> = row.try_get("response").map_err(e)?;
            let created_at: i64 = row.try_get("created_at").map_err(e)?;
            let held_until: i64 = row.try_get("locked_until").map_err(e)?;
            if created_at.saturating_add(secs(times.ttl)) <= now {
                // Expired: forget it (unless someone renewed it meanwhile) and start afresh.
                sqlx::query(self.q(
                    "DELETE FROM idempotency_keys WHERE merchant_id = ? AND idem_key = ? AND created_at = ?",
                ))
                .bind(merchant_id.to_owned())
                .bind(key.to_owned())
                .bind(created_at)
                .execute(self.store.pool())
                .await
                .map_err(e)?;
                continue;
            }
            if hash != request_hash {
                return Ok(Idempotent::Mismatch);
            }
            if status != 0 {
                return Ok(Idempotent::Replay(
                    u16::try_from(status).unwrap_or(500),
                    response.unwrap_or_default(),
                ));
            }
            if held_until > now {
                return Ok(Idempotent::InFlight);
            }
            // Abandoned: take it over, unless another repeat did first.
            let taken = sqlx::query(self.q("UPDATE idempotency_keys SET locked_until = ? \
                 WHERE merchant_id = ? AND idem_key = ? AND status = 0 AND locked_until = ?"))
            .bind(locked_until)
            .bind(merchant_id.to_owned())
            .bind(key.to_owned())
            .bind(held_until)
            .execute(self.store.pool())
            .await
            .map_err(e)?;
            return Ok(if taken.rows_affected() == 1 {
                Idempotent::Reserved
            } else {
                Idempotent::InFlight
            });
        }
        Ok(Idempotent::InFlight)
    }

    /// Stores the response of a reserved key.
    pub async fn complete_idempotency(
        &self,
        merchant_id: &str,
        key: &str,
        status: u16,
        body: &str,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE idempotency_keys SET status = ?, response = ? WHERE merchant_id = ? AND idem_key = ?",
        ))
        .bind(i64::from(status))
        .bind(body.to_owned())
        .bind(merchant_id.to_owned())
        .bind(key.to_owned())
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// Releases a reserved key whose request could not complete (so it can be retried).
    pub async fn release_idempotency(&self, merchant_id: &str, key: &str) -> DbResult<()> {
        sqlx::query(self.q(
            "DELETE FROM idempotency_keys WHERE merchant_id = ? AND idem_key = ? AND status = 0",
        ))
        .bind(merchant_id.to_owned())
        .bind(key.to_owned())
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// Deletes the keys created before `before` (Unix seconds); returns how many.
    pub async fn prune_idempotency(&self, before: i64) -> DbResult<u64> {
        sqlx::query(self.q("DELETE FROM idempotency_keys WHERE created_at < ?"))
            .bind(before)
            .execute(self.store.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> PlatformDb {
        let path = std::env::temp_dir().join(format!(
            "idem-{}-{}.db",
            std::process::id(),
            crate::random::token(8).unwrap()
        ));
        let store = aggregate_pay::store::SqlStore::connect(&format!(
            "sqlite://{}?mode=rwc",
            path.display()
        ))
        .await
        .unwrap();
        PlatformDb::new(store).await.unwrap()
    }

    const TIMES: KeyTimes = KeyTimes {
        lease: Duration::from_secs(60),
        ttl: Duration::from_secs(86_400),
    };

    #[tokio::test]
    async fn an_abandoned_key_is_taken_over_after_its_lease_and_keys_expire() {
        let db = db().await;
        let reserve = |key: &'static str, hash: &'static str, now: i64| {
            let db = db.clone();
            async move {
                db.reserve_idempotency("m1", key, hash, now, TIMES)
                    .await
                    .unwrap()
            }
        };
        // A request reserves the key and dies without an answer.
        assert_eq!(reserve("k1", "h", 1_000).await, Idempotent::Reserved);
        assert_eq!(reserve("k1", "h", 1_059).await, Idempotent::InFlight);
        assert_eq!(reserve("k1", "other", 1_059).await, Idempotent::Mismatch);
        // After the lease a retry takes it over — once.
        assert_eq!(reserve("k1", "h", 1_060).await, Idempotent::Reserved);
        assert_eq!(reserve("k1", "h", 1_061).await, Idempotent::InFlight);
        db.complete_idempotency("m1", "k1", 201, "{\"ok\":true}")
            .await
            .unwrap();
        assert_eq!(
            reserve("k1", "h", 5_000).await,
            Idempotent::Replay(201, "{\"ok\":true}".into())
        );
        // A day later the key is new again, even for another request.
        assert_eq!(
            reserve("k1", "other", 1_000 + 86_400).await,
            Idempotent::Reserved
        );
        // Pruning removes expired keys only.
        assert_eq!(reserve("k2", "h", 100_000).await, Idempotent::Reserved);
        assert_eq!(db.prune_idempotency(100_000).await.unwrap(), 1);
        assert_eq!(reserve("k2", "h", 100_001).await, Idempotent::InFlight);
    }
}
