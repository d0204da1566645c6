//! The platform's own tables, kept in the same database as the payments (`aggregate-pay`'s SQL
//! store), through its pool, with embedded migrations.
//!
//! - `merchants` — merchants, their secrets and status, binding codes.
//! - `orders` — merchants' orders and refunds.
//! - `idempotency` — idempotency keys of the open API (leased, then answered).
//! - `messages` — the queue of merchants' "payment received" WeChat messages.
//! - `complaints` — payers' complaints about merchants' payments, each its own callback
//!   outbox.

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, StoreError};

const SCHEMA_V1: &str = "
CREATE TABLE merchants (
    app_id VARCHAR(64) NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    credit_code VARCHAR(32) NOT NULL UNIQUE,
    notify_url TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    secret TEXT NOT NULL,
    salt TEXT NOT NULL,
    previous_secret TEXT,
    previous_valid_until BIGINT,
    open_id VARCHAR(128),
    bind_scene VARCHAR(64),
    bind_qr_url TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE merchant_orders (
    merchant_id VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(32) NOT NULL,
    platform_no VARCHAR(32) NOT NULL UNIQUE,
    token VARCHAR(64) NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    subject TEXT NOT NULL,
    method VARCHAR(32),
    open_id VARCHAR(128),
    expires_at BIGINT,
    metadata TEXT NOT NULL,
    payment_id VARCHAR(64),
    pay_action TEXT,
    closed BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, out_trade_no)
);
CREATE TABLE merchant_refunds (
    merchant_id VARCHAR(64) NOT NULL,
    out_refund_no VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(32) NOT NULL,
    platform_refund_no VARCHAR(32) NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, out_refund_no)
);
CREATE TABLE idempotency_keys (
    merchant_id VARCHAR(64) NOT NULL,
    idem_key VARCHAR(128) NOT NULL,
    request_hash VARCHAR(64) NOT NULL,
    status BIGINT NOT NULL,
    response TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);
";

/// An amount stored as a BIGINT of fen.
fn fen(v: i64, what: &str) -> DbResult<Fen> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| corrupt(format!("negative {what} in the database")))
}

/// An amount to store.
fn fen_column(f: Fen) -> i64 {
    i64::try_from(f.as_u64()).unwrap_or(i64::MAX)
}

/// The platform database.
#[derive(Debug, Clone)]
pub struct PlatformDb {
    store: SqlStore,
}

/// What a platform query returns: a storage failure by kind (as `aggregate-pay`'s own).
pub type DbResult<T> = Result<T, StoreError>;

/// A sqlx error, by kind (unavailable, conflict, corrupt…).
fn e(err: sqlx::Error) -> StoreError {
    err.into()
}

/// A stored value that does not read back.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// An insert's outcome: `Ok(false)` when a unique key is already taken.
fn inserted<T>(result: Result<T, sqlx::Error>) -> DbResult<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if unique_violation(&err) => Ok(false),
        Err(err) => Err(e(err)),
    }
}

mod complaints;
mod idempotency;
mod merchants;
mod messages;
mod orders;

pub use complaints::MerchantComplaint;
pub use idempotency::{Idempotent, KeyTimes};
pub use merchants::{BindRefused, Merchant, MerchantStatus};
pub use messages::{MessageStatus, QueuedMessage};
pub use orders::{Order, RefundRecord};

impl PlatformDb {
    /// The platform tables next to `store`'s, migrated.
    pub async fn new(store: SqlStore) -> DbResult<Self> {
        store
            .migrate_tables(
                "pay_platform_migrations",
                &[
                    (1, "merchants, orders, refunds, idempotency", SCHEMA_V1),
                    (2, "idempotency leases and expiry", idempotency::SCHEMA_V2),
                    (3, "merchant messages outbox", messages::SCHEMA_V3),
                    (4, "single-use binding codes", merchants::SCHEMA_V4),
                    (
                        5,
                        "partner mode: sub-merchants and fees",
                        merchants::SCHEMA_V5,
                    ),
                    (
                        6,
                        "partner mode: Alipay authorizations",
                        merchants::SCHEMA_V6,
                    ),
                    (7, "payers' complaints", complaints::SCHEMA_V7),
                ],
            )
            .await?;
        Ok(PlatformDb { store })
    }

    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        self.store.query_text(sql)
    }

    /// The rows of outbox table `table` (keyed by the text column `key`) that are due at `now`
    /// (`due`, and their time come, and no lease running), at most `limit`, each leased for
    /// `lease_secs` by compare-and-set on `locked_until` and counted as an attempt: the rows
    /// this caller won (as read, before the claim), so several instances share the work.
    async fn claim_due(
        &self,
        table: &str,
        key: &str,
        due: &str,
        columns: &str,
        (now, lease_secs, limit): (i64, i64, i64),
    ) -> DbResult<Vec<sqlx::any::AnyRow>> {
        use sqlx::Row;
        let rows = sqlx::query(self.q(&format!(
            "SELECT {columns}, locked_until FROM {table} \
             WHERE {due} AND next_attempt_at <= ? AND locked_until <= ? \
             ORDER BY next_attempt_at LIMIT ?"
        )))
        .bind(now)
        .bind(now)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        let mut won = Vec::new();
        for row in rows {
            let id: String = row.try_get(key).map_err(e)?;
            let previous: i64 = row.try_get("locked_until").map_err(e)?;
            let claimed = sqlx::query(self.q(&format!(
                "UPDATE {table} SET locked_until = ?, attempts = attempts + 1 \
                 WHERE {key} = ? AND {due} AND locked_until = ?"
            )))
            .bind(now.saturating_add(lease_secs))
            .bind(id)
            .bind(previous)
            .execute(self.store.pool())
            .await
            .map_err(e)?;
            if claimed.rows_affected() == 1 {
                won.push(row);
            }
        }
        Ok(won)
    }
}
