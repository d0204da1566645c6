//! Payers' complaints (WeChat Pay API v3) about merchants' payments, each kept with its
//! merchant and the merchant's order number — and the row is its own callback outbox: a change
//! WeChat reports (a new complaint, a new state, the payer writing again) bumps `version` and
//! makes the callback due; a sender claims due rows with a lease, and a delivery clears the
//! due flag only for the version it sent (a change meanwhile is sent too).

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, PlatformDb, corrupt, e, inserted};

pub(super) const SCHEMA_V7: &str = "
CREATE TABLE merchant_complaints (
    complaint_id VARCHAR(64) NOT NULL PRIMARY KEY,
    merchant_id VARCHAR(64) NOT NULL,
    out_trade_no VARCHAR(64) NOT NULL,
    complainted_mchid VARCHAR(32) NOT NULL,
    state VARCHAR(16) NOT NULL,
    needs_action BIGINT NOT NULL,
    summary TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    callback_due BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX merchant_complaints_by_merchant ON merchant_complaints (merchant_id, received_at);
CREATE INDEX merchant_complaints_due ON merchant_complaints (callback_due, next_attempt_at);
";

/// A complaint as the platform keeps it and shows it to its merchant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MerchantComplaint {
    /// WeChat's number.
    pub complaint_id: String,
    /// The merchant whose payment it is about.
    #[serde(skip)]
    pub merchant_id: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The merchant WeChat names (the platform's, or the merchant's sub-merchant number).
    #[serde(skip)]
    pub complainted_mchid: String,
    /// `PENDING`, `PROCESSING`, `PROCESSED`.
    pub state: String,
    /// Whether the merchant must act.
    pub needs_action: bool,
    /// What the payer wrote and asked (never their phone).
    pub summary: Value,
    /// When the platform first heard of it.
    pub received_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Its changes so far (a callback's id names the version it tells).
    pub version: i64,
}

const COLUMNS: &str = "complaint_id, merchant_id, out_trade_no, complainted_mchid, state, \
                       needs_action, summary, received_at, updated_at, version";

fn complaint(r: &AnyRow) -> DbResult<MerchantComplaint> {
    let summary: String = r.try_get("summary").map_err(e)?;
    Ok(MerchantComplaint {
        complaint_id: r.try_get("complaint_id").map_err(e)?,
        merchant_id: r.try_get("merchant_id").map_err(e)?,
        out_trade_no: r.try_get("out_trade_no").map_err(e)?,
        complainted_mchid: r.try_get("complainted_mchid").map_err(e)?,
        state: r.try_get("state").map_err(e)?,
        needs_action: r.try_get::<i64, _>("needs_action").map_err(e)? != 0,
        summary: serde_json::from_str(&summary)
            .map_err(|err| corrupt(format!("complaint summary: {err}")))?,
        received_at: r.try_get("received_at").map_err(e)?,
        updated_at: r.try_get("updated_at").map_err(e)?,
        version: r.try_get("version").map_err(e)?,
    })
}

impl PlatformDb {
    /// Keeps what WeChat says of complaint `c` now (its `version`, `received_at` and
    /// `updated_at` are the table's): a new complaint, or a change of state, of whether the
    /// merchant must act, or of what it says, makes its callback due. The complaint as kept.
    pub async fn save_complaint(
        &self,
        c: &MerchantComplaint,
        now: i64,
    ) -> DbResult<MerchantComplaint> {
        for _ in 0..2 {
            if let Some(known) = self.complaint(&c.complaint_id).await? {
                let same = known.state == c.state
                    && known.needs_action == c.needs_action
                    && known.summary == c.summary;
                if same {
                    return Ok(known);
                }
                let changed = sqlx::query(self.q(
                    "UPDATE merchant_complaints SET state = ?, needs_action = ?, summary = ?, \
                     updated_at = ?, version = version + 1, callback_due = 1, attempts = 0, \
                     next_attempt_at = ? WHERE complaint_id = ? AND version = ?",
                ))
                .bind(c.state.clone())
                .bind(i64::from(c.needs_action))
                .bind(c.summary.to_string())
                .bind(now)
                .bind(now)
                .bind(c.complaint_id.clone())
                .bind(known.version)
                .execute(self.store.pool())
                .await
                .map_err(e)?;
                if changed.rows_affected() == 1 {
                    return self
                        .complaint(&c.complaint_id)
                        .await?
                        .ok_or_else(|| corrupt("a complaint vanished"));
                }
                // Another instance changed it first: look again.
                continue;
            }
            let new = sqlx::query(self.q(&format!(
                "INSERT INTO merchant_complaints ({COLUMNS}, callback_due, attempts, \
                 next_attempt_at, locked_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, 0, ?, 0)"
            )))
            .bind(c.complaint_id.clone())
            .bind(c.merchant_id.clone())
            .bind(c.out_trade_no.clone())
            .bind(c.complainted_mchid.clone())
            .bind(c.state.clone())
            .bind(i64::from(c.needs_action))
            .bind(c.summary.to_string())
            .bind(now)
            .bind(now)
            .bind(now)
            .execute(self.store.pool())
            .await;
            if inserted(new)? {
                return self
                    .complaint(&c.complaint_id)
                    .await?
                    .ok_or_else(|| corrupt("a complaint vanished"));
            }
        }
        Err(corrupt(format!(
            "complaint {} could not be written",
            c.complaint_id
        )))
    }

    /// The complaint `id`.
    pub async fn complaint(&self, id: &str) -> DbResult<Option<MerchantComplaint>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM merchant_complaints WHERE complaint_id = ?"
        )))
        .bind(id.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(complaint).transpose()
    }

    /// A merchant's complaints, newest first.
    pub async fn complaints_of(
        &self,
        merchant_id: &str,
        limit: i64,
    ) -> DbResult<Vec<MerchantComplaint>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM merchant_complaints WHERE merchant_id = ? \
             ORDER BY received_at DESC, complaint_id DESC LIMIT ?"
        )))
        .bind(merchant_id.to_owned())
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        rows.iter().map(complaint).collect()
    }

    /// Complaints whose callback is due, each leased for `lease_secs` to this caller, with
    /// the attempts so far (this one included).
    pub async fn claim_complaint_callbacks(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> DbResult<Vec<(MerchantComplaint, u32)>> {
        let rows = self
            .claim_due(
                "merchant_complaints",
                "complaint_id",
                "callback_due = 1",
                &format!("{COLUMNS}, attempts"),
                (now, lease_secs, limit),
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let attempts: i64 = row.try_get("attempts").map_err(e)?;
            claimed.push((
                complaint(row)?,
                u32::try_from(attempts + 1).unwrap_or(u32::MAX),
            ));
        }
        Ok(claimed)
    }

    /// The callback of `version` got through: nothing is due unless it changed since.
    pub async fn complaint_callback_sent(&self, id: &str, version: i64) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchant_complaints SET callback_due = 0, attempts = 0, locked_until = 0, \
             last_error = NULL WHERE complaint_id = ? AND version = ?",
        ))
        .bind(id.to_owned())
        .bind(version)
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(())
    }

    /// The callback failed: tried again at `retry_at`.
    pub async fn complaint_callback_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchant_complaints SET next_attempt_at = ?, locked_until = 0, \
             last_error = ? WHERE complaint_id = ?",
        ))
        .bind(retry_at)
        .bind(error.to_owned())
        .bind(id.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(())
    }
}
