//! Sellers' WeChat: one bound WeChat (an Official Account openid) per seller and one seller per
//! WeChat, and the QR scans that bind one or log in with it. A scan is a row that moves forward
//! only, by compare-and-set on its status (`waiting` → `scanned` → `confirmed` → `used`, or
//! `refused`), so two instances or two clicks never both act on it; it expires after minutes.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, VendingDb, corrupt};

/// What a scan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPurpose {
    /// Logging in on the browser that shows the QR code.
    Login,
    /// Binding the scanner's WeChat to the seller who shows the QR code.
    Bind,
}

impl ScanPurpose {
    fn as_str(self) -> &'static str {
        match self {
            ScanPurpose::Login => "login",
            ScanPurpose::Bind => "bind",
        }
    }
}

/// Where a scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// Shown, not scanned yet.
    Waiting,
    /// Scanned by a WeChat user: waiting for the confirmation (the phone's, or the dashboard's).
    Scanned,
    /// Confirmed: the browser may take the session (login) / the WeChat is bound (bind).
    Confirmed,
    /// Its session was taken: nothing more.
    Used,
    /// Refused (an unbound WeChat, one bound to another seller…): `reason` says why.
    Refused,
}

impl ScanStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Waiting => "waiting",
            ScanStatus::Scanned => "scanned",
            ScanStatus::Confirmed => "confirmed",
            ScanStatus::Used => "used",
            ScanStatus::Refused => "refused",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            ScanStatus::Waiting,
            ScanStatus::Scanned,
            ScanStatus::Confirmed,
            ScanStatus::Used,
            ScanStatus::Refused,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A QR scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerScan {
    /// Its id (in the QR code: public).
    pub scan_id: String,
    /// Login or bind.
    pub purpose: ScanPurpose,
    /// SHA-256 of the secret the showing browser holds (login).
    pub browser_hash: String,
    /// SHA-256 of the secret the scanning phone holds, once scanned.
    pub phone_hash: Option<String>,
    /// The seller: who binds (bind), whose WeChat scanned (login).
    pub seller: Option<String>,
    /// The scanner's openid.
    pub open_id: Option<String>,
    /// Where it is.
    pub status: ScanStatus,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

const COLUMNS: &str =
    "scan_id, purpose, browser_hash, phone_hash, seller, open_id, status, reason, expires_at";

fn scan(r: &AnyRow) -> DbResult<SellerScan> {
    let purpose: String = r.try_get("purpose")?;
    let status: String = r.try_get("status")?;
    Ok(SellerScan {
        scan_id: r.try_get("scan_id")?,
        purpose: if purpose == "bind" {
            ScanPurpose::Bind
        } else {
            ScanPurpose::Login
        },
        browser_hash: r.try_get("browser_hash")?,
        phone_hash: r.try_get("phone_hash")?,
        seller: r.try_get("seller")?,
        open_id: r.try_get("open_id")?,
        status: ScanStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("scan status {status}")))?,
        reason: r.try_get("reason")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl VendingDb {
    /// Records a new scan.
    pub async fn new_scan(&self, s: &SellerScan) -> DbResult<()> {
        sqlx::query(self.q(&format!(
            "INSERT INTO vm_seller_scans ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(s.scan_id.clone())
        .bind(s.purpose.as_str())
        .bind(s.browser_hash.clone())
        .bind(s.phone_hash.clone())
        .bind(s.seller.clone())
        .bind(s.open_id.clone())
        .bind(s.status.as_str())
        .bind(s.reason.clone())
        .bind(s.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The scan `id`.
    pub async fn scan(&self, id: &str) -> DbResult<Option<SellerScan>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM vm_seller_scans WHERE scan_id = ?"
        )))
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(scan).transpose()
    }

    /// Moves scan `to`'s fields (status, phone, seller, openid, reason) in if it is still
    /// `from`: whether it moved.
    pub async fn move_scan(&self, from: ScanStatus, to: &SellerScan) -> DbResult<bool> {
        let moved = sqlx::query(self.q(
            "UPDATE vm_seller_scans SET status = ?, phone_hash = ?, seller = ?, open_id = ?, \
             reason = ? WHERE scan_id = ? AND status = ?",
        ))
        .bind(to.status.as_str())
        .bind(to.phone_hash.clone())
        .bind(to.seller.clone())
        .bind(to.open_id.clone())
        .bind(to.reason.clone())
        .bind(to.scan_id.clone())
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(moved.rows_affected() == 1)
    }

    /// Deletes the scans that expired before `before`: how many.
    pub async fn prune_scans(&self, before: i64) -> DbResult<u64> {
        let gone = sqlx::query(self.q("DELETE FROM vm_seller_scans WHERE expires_at < ?"))
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(gone.rows_affected())
    }

    /// The seller WeChat user `open_id` is bound to.
    pub async fn seller_of_wechat(&self, open_id: &str) -> DbResult<Option<String>> {
        let row = sqlx::query(self.q("SELECT seller FROM vm_seller_wechat WHERE open_id = ?"))
            .bind(open_id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("seller")?),
            None => None,
        })
    }

    /// Whether `seller` has a WeChat bound.
    pub async fn has_wechat(&self, seller: &str) -> DbResult<bool> {
        let row = sqlx::query(self.q("SELECT open_id FROM vm_seller_wechat WHERE seller = ?"))
            .bind(seller.to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Binds `open_id` to `seller` (replacing the seller's earlier WeChat): `false` when that
    /// WeChat is another seller's.
    pub async fn bind_wechat(&self, seller: &str, open_id: &str, now: i64) -> DbResult<bool> {
        if let Some(owner) = self.seller_of_wechat(open_id).await? {
            return Ok(owner == seller);
        }
        self.unbind_wechat(seller).await?;
        let inserted = sqlx::query(
            self.q("INSERT INTO vm_seller_wechat (open_id, seller, bound_at) VALUES (?, ?, ?)"),
        )
        .bind(open_id.to_owned())
        .bind(seller.to_owned())
        .bind(now)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(true),
            // Bound to someone else meanwhile.
            Err(sqlx::Error::Database(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Unbinds the seller's WeChat: whether one was bound.
    pub async fn unbind_wechat(&self, seller: &str) -> DbResult<bool> {
        let gone = sqlx::query(self.q("DELETE FROM vm_seller_wechat WHERE seller = ?"))
            .bind(seller.to_owned())
            .execute(self.pool())
            .await?;
        Ok(gone.rows_affected() > 0)
    }
}
