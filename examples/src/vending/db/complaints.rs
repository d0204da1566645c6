//! Payers' complaints (WeChat Pay API v3), each kept beside its order and that order's seller:
//! written whenever WeChat says something about one (a notification, the periodic read, the
//! seller's own action), read by the seller it belongs to.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, VendingDb, corrupt};

/// A complaint as the server keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredComplaint {
    /// WeChat's number.
    pub complaint_id: String,
    /// The order it is about (`None`: an order this server does not know).
    pub order_no: Option<String>,
    /// The order's seller.
    pub seller: Option<String>,
    /// `PENDING`, `PROCESSING`, `PROCESSED`.
    pub state: String,
    /// Whether the seller must act (not handled, or the payer wrote again).
    pub needs_action: bool,
    /// What the payer wrote and asked, as WeChat says it now (never their phone).
    pub summary: Value,
    /// When the server first heard of it (Unix seconds).
    pub received_at: i64,
    /// When it last changed here.
    pub updated_at: i64,
}

fn complaint(r: &AnyRow) -> DbResult<StoredComplaint> {
    let summary: String = r.try_get("summary")?;
    Ok(StoredComplaint {
        complaint_id: r.try_get("complaint_id")?,
        order_no: r.try_get("order_no")?,
        seller: r.try_get("seller")?,
        state: r.try_get("state")?,
        needs_action: r.try_get::<i64, _>("needs_action")? != 0,
        summary: serde_json::from_str(&summary)
            .map_err(|e| corrupt(format!("complaint summary: {e}")))?,
        received_at: r.try_get("received_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const COLUMNS: &str =
    "complaint_id, order_no, seller, state, needs_action, summary, received_at, updated_at";

impl VendingDb {
    /// Writes what is known of `c` now: inserted the first time (its `received_at` kept after),
    /// updated after. Two instances hearing it at once both end with one row.
    pub async fn save_complaint(&self, c: &StoredComplaint) -> DbResult<()> {
        for _ in 0..2 {
            let updated = sqlx::query(self.q(
                "UPDATE vm_complaints SET order_no = ?, seller = ?, state = ?, needs_action = ?, \
                 summary = ?, updated_at = ? WHERE complaint_id = ?",
            ))
            .bind(c.order_no.clone())
            .bind(c.seller.clone())
            .bind(c.state.clone())
            .bind(i64::from(c.needs_action))
            .bind(c.summary.to_string())
            .bind(c.updated_at)
            .bind(c.complaint_id.clone())
            .execute(self.pool())
            .await?;
            if updated.rows_affected() > 0 {
                return Ok(());
            }
            let inserted = sqlx::query(self.q(&format!(
                "INSERT INTO vm_complaints ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )))
            .bind(c.complaint_id.clone())
            .bind(c.order_no.clone())
            .bind(c.seller.clone())
            .bind(c.state.clone())
            .bind(i64::from(c.needs_action))
            .bind(c.summary.to_string())
            .bind(c.received_at)
            .bind(c.updated_at)
            .execute(self.pool())
            .await;
            match inserted {
                Ok(_) => return Ok(()),
                // Another instance inserted it first: update theirs.
                Err(sqlx::Error::Database(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(corrupt(format!(
            "complaint {} could not be written",
            c.complaint_id
        )))
    }

    /// The complaint `id`.
    pub async fn complaint(&self, id: &str) -> DbResult<Option<StoredComplaint>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM vm_complaints WHERE complaint_id = ?"
        )))
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(complaint).transpose()
    }

    /// A seller's complaints, newest first; with `unmatched`, also those about orders nobody
    /// here knows (for operators).
    pub async fn complaints_of(
        &self,
        seller: &str,
        unmatched: bool,
        limit: i64,
    ) -> DbResult<Vec<StoredComplaint>> {
        let filter = if unmatched {
            "seller = ? OR seller IS NULL"
        } else {
            "seller = ?"
        };
        let rows = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM vm_complaints WHERE {filter} \
             ORDER BY received_at DESC, complaint_id DESC LIMIT ?"
        )))
        .bind(seller.to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(complaint).collect()
    }
}
