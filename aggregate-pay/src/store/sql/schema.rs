//! The schema: the store's own tables (migrated at connect, under sqlx's migration lock so that
//! instances starting together do not race) and an application's tables in the same database.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

use super::SqlStore;
use crate::StoreError;

const SCHEMA_V1: &str = "
CREATE TABLE payments (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    out_trade_no VARCHAR(64) NOT NULL UNIQUE,
    channel VARCHAR(32) NOT NULL,
    channel_account VARCHAR(128) NOT NULL,
    method VARCHAR(32) NOT NULL,
    amount BIGINT NOT NULL,
    currency VARCHAR(8) NOT NULL,
    subject TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    channel_transaction_id VARCHAR(64),
    refunded_amount BIGINT NOT NULL,
    needs_review BIGINT NOT NULL,
    open_id VARCHAR(128),
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    paid_at BIGINT,
    expires_at BIGINT,
    version BIGINT NOT NULL,
    reconcile_after BIGINT NOT NULL
);
CREATE INDEX payments_pending ON payments (status, created_at);
CREATE TABLE refunds (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    payment_id VARCHAR(64) NOT NULL,
    out_refund_no VARCHAR(64) NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    channel_refund_id VARCHAR(64),
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE TABLE outbox (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(64) NOT NULL,
    payment_id VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
";

/// Who claimed an outbox event last, so one statement can claim a whole batch.
const SCHEMA_V2: &str = "ALTER TABLE outbox ADD COLUMN claim_token VARCHAR(32);";

/// Refunds are reconciled like payments (a lease, attempts for the backoff) and keep their
/// notify URL so that sending one again is the same request; both reconcilers' scans have an
/// index.
const SCHEMA_V3: &str = "
ALTER TABLE refunds ADD COLUMN notify_url TEXT;
ALTER TABLE refunds ADD COLUMN reconcile_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refunds ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
CREATE INDEX refunds_reconcile ON refunds (status, reconcile_after);
CREATE INDEX payments_reconcile ON payments (status, reconcile_after);
";

/// Refunds say why they are not settled (or why they failed), and can be ABNORMAL. A refund an
/// older version recorded FAILED may have failed on a temporary error or an answer it could not
/// verify (and the provider may have made it): each is re-opened, its payment REFUNDING again,
/// for the reconciler to ask the channel what became of it (`service/refunds.rs`).
const SCHEMA_V4: &str = "
ALTER TABLE refunds ADD COLUMN last_error TEXT;
UPDATE refunds SET status = 'PENDING', reconcile_after = 0, attempts = 0,
    last_error = 'UNVERIFIED_FAILURE: recorded FAILED before refusals were told from temporary errors; asking the channel'
    WHERE status = 'FAILED';
UPDATE payments SET status = 'REFUNDING', version = version + 1
    WHERE status IN ('PAID', 'PARTIALLY_REFUNDED')
    AND id IN (SELECT payment_id FROM refunds WHERE status = 'PENDING');
";

/// Reconciliation against the providers' bills: a run per (day, channel), an item per
/// difference found, and the indexes the day's pages of payments and refunds read in order.
const SCHEMA_V5: &str = "
CREATE TABLE bill_runs (
    day VARCHAR(10) NOT NULL,
    channel VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    counts TEXT NOT NULL,
    settled BIGINT NOT NULL,
    totals TEXT NOT NULL,
    rows_done BIGINT NOT NULL,
    bill_sha256 VARCHAR(64),
    attempts BIGINT NOT NULL,
    last_error TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (day, channel)
);
CREATE TABLE bill_items (
    day VARCHAR(10) NOT NULL,
    channel VARCHAR(32) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    number VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(64) NOT NULL,
    out_refund_no VARCHAR(64),
    class VARCHAR(32) NOT NULL,
    settled BIGINT NOT NULL,
    bill_amount BIGINT,
    store_amount BIGINT,
    detail TEXT NOT NULL,
    found_at BIGINT NOT NULL,
    PRIMARY KEY (day, channel, kind, number)
);
CREATE INDEX payments_paid ON payments (channel, paid_at, out_trade_no);
CREATE INDEX refunds_changed ON refunds (status, updated_at, out_refund_no);
";

/// Service-provider mode: a payment's sub-merchant and the platform's fee, and the sharing of
/// that fee (one per payment, by its number at the channel; retried while pending).
const SCHEMA_V6: &str = "
ALTER TABLE payments ADD COLUMN sub_merchant VARCHAR(64);
ALTER TABLE payments ADD COLUMN platform_fee BIGINT NOT NULL DEFAULT 0;
CREATE TABLE profit_shares (
    payment_id VARCHAR(64) NOT NULL PRIMARY KEY,
    out_order_no VARCHAR(64) NOT NULL UNIQUE,
    channel VARCHAR(32) NOT NULL,
    sub_merchant VARCHAR(64) NOT NULL,
    transaction_id VARCHAR(64) NOT NULL,
    amount BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    channel_order_id VARCHAR(64),
    last_error TEXT,
    attempts BIGINT NOT NULL,
    in_flight BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    returns TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    shared_at BIGINT,
    version BIGINT NOT NULL
);
CREATE INDEX profit_shares_due ON profit_shares (status, next_attempt_at);
CREATE INDEX profit_shares_day ON profit_shares (status, shared_at);
";

impl SqlStore {
    /// Migrates the store's own tables (`aggregate_pay_migrations`).
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        self.migrate_tables(
            "aggregate_pay_migrations",
            &[
                (1, "payments, refunds, outbox", SCHEMA_V1),
                (2, "outbox claim token", SCHEMA_V2),
                (3, "refund reconciliation", SCHEMA_V3),
                (
                    4,
                    "refund errors, abnormal refunds, failures re-checked",
                    SCHEMA_V4,
                ),
                (5, "bill runs and items", SCHEMA_V5),
                (6, "sub-merchants, platform fees, profit shares", SCHEMA_V6),
            ],
        )
        .await
    }

    /// Migrates an application's own tables (`migrations`: version, description, SQL) under
    /// its own migration table.
    pub async fn migrate_tables(
        &self,
        table_name: &'static str,
        migrations: &[(i64, &'static str, &'static str)],
    ) -> Result<(), StoreError> {
        let mut migrator = Migrator::with_migrations(
            migrations
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        AssertSqlSafe(*sql).into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        migrator.dangerous_set_table_name(table_name);
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("cannot migrate {table_name}: {e}")))
    }
}
