//! [`ShareStore`] on SQL: one row per payment's share, every update a compare-and-set on its
//! version.

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{amount, corrupt, db, fen, from_millis, is_unique_violation, millis};
use super::{SqlStore, json};
use crate::sharing::{Share, ShareStatus, ShareStore};
use crate::store::Insert;
use crate::{PaymentId, StoreError};

const SHARE_COLUMNS: &str = "payment_id, out_order_no, channel, sub_merchant, transaction_id, \
     amount, status, channel_order_id, last_error, attempts, in_flight, next_attempt_at, returns, \
     created_at, updated_at, shared_at, version";

fn share_from(row: &AnyRow) -> Result<Share, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let returns: String = row.try_get("returns").map_err(db)?;
    Ok(Share {
        payment_id: PaymentId(row.try_get("payment_id").map_err(db)?),
        out_order_no: row.try_get("out_order_no").map_err(db)?,
        channel: row.try_get("channel").map_err(db)?,
        sub_merchant: row.try_get("sub_merchant").map_err(db)?,
        transaction_id: row.try_get("transaction_id").map_err(db)?,
        amount: fen(row.try_get("amount").map_err(db)?, "share amount")?,
        status: ShareStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown share status {status}")))?,
        channel_order_id: row.try_get("channel_order_id").map_err(db)?,
        last_error: row.try_get("last_error").map_err(db)?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?).map_err(corrupt)?,
        in_flight: row.try_get::<i64, _>("in_flight").map_err(db)? != 0,
        next_attempt_at: from_millis(row.try_get("next_attempt_at").map_err(db)?),
        returns: serde_json::from_str(&returns).map_err(corrupt)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
        shared_at: row
            .try_get::<Option<i64>, _>("shared_at")
            .map_err(db)?
            .map(from_millis),
        version: row.try_get("version").map_err(db)?,
    })
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds what an attempt changes of a share, in this order: amount, status, channel order id,
/// last error, attempts, in flight, next attempt at, returns.
fn bind_state<'q>(query: AnyQuery<'q>, s: &Share) -> Result<AnyQuery<'q>, StoreError> {
    Ok(query
        .bind(amount(s.amount)?)
        .bind(s.status.as_str().to_owned())
        .bind(s.channel_order_id.clone())
        .bind(s.last_error.clone())
        .bind(i64::from(s.attempts))
        .bind(i64::from(s.in_flight))
        .bind(millis(s.next_attempt_at))
        .bind(json(&s.returns)?))
}

impl SqlStore {
    async fn shares_where(
        &self,
        condition: &str,
        binds: &[i64],
        text: Option<&str>,
    ) -> Result<Vec<Share>, StoreError> {
        let q = format!("SELECT {SHARE_COLUMNS} FROM profit_shares WHERE {condition}");
        let mut query = sqlx::query(self.sql(&q));
        if let Some(t) = text {
            query = query.bind(t.to_owned());
        }
        for b in binds {
            query = query.bind(*b);
        }
        query
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(share_from)
            .collect()
    }
}

#[async_trait]
impl ShareStore for SqlStore {
    async fn insert_share(&self, s: &Share) -> Result<Insert<Share>, StoreError> {
        let _turn = self.write_turn().await;
        let q = format!(
            "INSERT INTO profit_shares ({SHARE_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        let query = sqlx::query(self.sql(&q))
            .bind(s.payment_id.0.clone())
            .bind(s.out_order_no.clone())
            .bind(s.channel.clone())
            .bind(s.sub_merchant.clone())
            .bind(s.transaction_id.clone());
        let result = bind_state(query, s)?
            .bind(millis(s.created_at))
            .bind(millis(s.updated_at))
            .bind(s.shared_at.map(millis))
            .bind(s.version)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(Insert::Inserted),
            Err(e) if is_unique_violation(&e) => self
                .share(&s.payment_id)
                .await?
                .map(Insert::Existing)
                .ok_or_else(|| StoreError::Conflict("share number used by another payment".into())),
            Err(e) => Err(db(e)),
        }
    }

    async fn share(&self, payment_id: &PaymentId) -> Result<Option<Share>, StoreError> {
        Ok(self
            .shares_where("payment_id = ?", &[], Some(&payment_id.0))
            .await?
            .into_iter()
            .next())
    }

    async fn update_share(&self, s: &Share) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let q = "UPDATE profit_shares SET amount = ?, status = ?, channel_order_id = ?, \
                 last_error = ?, attempts = ?, in_flight = ?, next_attempt_at = ?, returns = ?, \
                 updated_at = ?, shared_at = ?, version = version + 1 \
                 WHERE payment_id = ? AND version = ?";
        let done = bind_state(sqlx::query(self.sql(q)), s)?
            .bind(millis(s.updated_at))
            .bind(s.shared_at.map(millis))
            .bind(s.payment_id.0.clone())
            .bind(s.version)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_shares(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Share>, StoreError> {
        self.shares_where(
            &format!(
                "status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, payment_id LIMIT {limit}"
            ),
            &[millis(now)],
            Some(ShareStatus::Pending.as_str()),
        )
        .await
    }

    async fn shares_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Share>, StoreError> {
        self.shares_where(
            &format!(
                "status = ? AND shared_at >= ? AND shared_at < ? ORDER BY shared_at, payment_id LIMIT {limit}"
            ),
            &[millis(from), millis(to)],
            Some(ShareStatus::Shared.as_str()),
        )
        .await
    }
}
