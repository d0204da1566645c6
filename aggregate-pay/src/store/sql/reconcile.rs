//! Claims for the reconciler: pending payments and refunds, least recently looked at first, each
//! claimed by a compare-and-set of its `reconcile_after` lease so concurrent reconcilers on any
//! engine get different rows.

use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;

use super::SqlStore;
use super::rows::*;
use crate::store::RefundClaim;
use crate::{Payment, StoreError};

impl SqlStore {
    pub(super) async fn claim_payments(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let _turn = self.write_turn().await;
        let now_ms = millis(now);
        let q = format!(
            "SELECT {PAYMENT_COLUMNS}, reconcile_after FROM payments WHERE status = 'PENDING' AND needs_review = 0 \
             AND (created_at < ? OR (expires_at IS NOT NULL AND expires_at <= ?)) AND reconcile_after <= ? \
             ORDER BY reconcile_after, created_at LIMIT ?"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(millis(stale_before))
            .bind(now_ms)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let until = millis(now + lease);
        let mut claimed = Vec::new();
        for row in &rows {
            let p = payment_from(row)?;
            let previous: i64 = row.try_get("reconcile_after").map_err(db)?;
            if self
                .take_lease("payments", &p.id.0, previous, until)
                .await?
            {
                claimed.push(p);
            }
        }
        Ok(claimed)
    }

    pub(super) async fn claim_refunds(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RefundClaim>, StoreError> {
        let _turn = self.write_turn().await;
        let q = format!(
            "SELECT {REFUND_COLUMNS}, reconcile_after, attempts FROM refunds WHERE status IN ('PENDING', 'ABNORMAL') \
             AND created_at < ? AND reconcile_after <= ? ORDER BY reconcile_after, created_at LIMIT ?"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(millis(stale_before))
            .bind(millis(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let until = millis(now + lease);
        let mut claimed = Vec::new();
        for row in &rows {
            let refund = refund_from(row)?;
            let previous: i64 = row.try_get("reconcile_after").map_err(db)?;
            let attempts: i64 = row.try_get("attempts").map_err(db)?;
            if self
                .take_lease("refunds", &refund.id, previous, until)
                .await?
            {
                claimed.push(RefundClaim {
                    refund,
                    attempts: u32::try_from(attempts + 1).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(claimed)
    }

    /// Moves a row's lease from `previous` to `until` if nobody moved it first (and counts the
    /// attempt on refunds).
    async fn take_lease(
        &self,
        table: &'static str,
        id: &str,
        previous: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let attempts = if table == "refunds" {
            ", attempts = attempts + 1"
        } else {
            ""
        };
        let q = format!(
            "UPDATE {table} SET reconcile_after = ?{attempts} WHERE id = ? AND reconcile_after = ?"
        );
        let won = sqlx::query(self.sql(&q))
            .bind(until)
            .bind(id.to_owned())
            .bind(previous)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(won.rows_affected() == 1)
    }
}
