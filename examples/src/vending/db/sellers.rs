//! Seller accounts (argon2id password hashes, never passwords) and the audit of what sellers did:
//! who, what, to which order / machine / slot, when, and the state before and after.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, VendingDb};

/// A seller account.
#[derive(Clone, PartialEq, Eq)]
pub struct Seller {
    /// The login.
    pub login: String,
    /// The argon2id hash of the password (a PHC string).
    pub password_hash: String,
    /// Whether the seller may log in.
    pub enabled: bool,
    /// The demo seller (demo mode); live mode disables it.
    pub demo: bool,
    /// An operator: sees the whole merchant account's bill reconciliation, not only their own
    /// orders (`vending-server seller operator`; the demo seller is one).
    pub operator: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Moves on each logout: sessions signed under an earlier epoch end.
    pub session_epoch: i64,
}

impl std::fmt::Debug for Seller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seller")
            .field("login", &self.login)
            .field("enabled", &self.enabled)
            .field("demo", &self.demo)
            .field("operator", &self.operator)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// One seller action, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Its id (sortable by time: nanoseconds, then a random tail).
    pub id: String,
    /// Who.
    pub seller: String,
    /// What (`refund`, `cancel`, `machine_status`, `slot`).
    pub action: String,
    /// To what: an order number, a machine code, `machine/slot`.
    pub target: String,
    /// The state before (JSON).
    pub before: Option<Value>,
    /// The state after (JSON).
    pub after: Option<Value>,
    /// Unix seconds.
    pub at: i64,
}

/// Whether `login` can be a seller login: 3 to 64 of lowercase letters, digits, `.`, `_`, `-`.
pub fn valid_login(login: &str) -> bool {
    (3..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn seller_from(r: &AnyRow) -> DbResult<Seller> {
    Ok(Seller {
        login: r.try_get("login")?,
        password_hash: r.try_get("password_hash")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        demo: r.try_get::<i64, _>("demo")? != 0,
        operator: r.try_get::<i64, _>("operator")? != 0,
        created_at: r.try_get("created_at")?,
        session_epoch: r.try_get("session_epoch")?,
    })
}

fn json_column(r: &AnyRow, column: &str) -> DbResult<Option<Value>> {
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| super::corrupt(format!("{column}: {e}"))))
        .transpose()
}

const SELLER_COLUMNS: &str =
    "login, password_hash, enabled, demo, operator, created_at, session_epoch";

impl VendingDb {
    /// Adds a seller (a conflict if the login is taken).
    pub async fn add_seller(&self, seller: &Seller) -> DbResult<()> {
        sqlx::query(self.q(&format!(
            "INSERT INTO vm_sellers ({SELLER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(seller.login.clone())
        .bind(seller.password_hash.clone())
        .bind(i64::from(seller.enabled))
        .bind(i64::from(seller.demo))
        .bind(i64::from(seller.operator))
        .bind(seller.created_at)
        .bind(seller.session_epoch)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A seller.
    pub async fn seller(&self, login: &str) -> DbResult<Option<Seller>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {SELLER_COLUMNS} FROM vm_sellers WHERE login = ?"
        )))
        .bind(login.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(seller_from).transpose()
    }

    /// Every seller.
    pub async fn sellers(&self) -> DbResult<Vec<Seller>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {SELLER_COLUMNS} FROM vm_sellers ORDER BY login"
        )))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(seller_from).collect()
    }

    /// Enables or disables a seller; whether the seller exists.
    pub async fn set_seller_enabled(&self, login: &str, enabled: bool) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_sellers SET enabled = ? WHERE login = ?"))
            .bind(i64::from(enabled))
            .bind(login.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Makes a seller an operator, or not; whether the seller exists.
    pub async fn set_seller_operator(&self, login: &str, operator: bool) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_sellers SET operator = ? WHERE login = ?"))
            .bind(i64::from(operator))
            .bind(login.to_owned())
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Disables every demo seller (live mode); how many were enabled.
    pub async fn disable_demo_sellers(&self) -> DbResult<u64> {
        let r =
            sqlx::query(self.q("UPDATE vm_sellers SET enabled = 0 WHERE demo = 1 AND enabled = 1"))
                .execute(self.pool())
                .await?;
        Ok(r.rows_affected())
    }

    /// Ends every session of `login` (a logout): its epoch moves on.
    pub async fn end_seller_sessions(&self, login: &str) -> DbResult<()> {
        sqlx::query(
            self.q("UPDATE vm_sellers SET session_epoch = session_epoch + 1 WHERE login = ?"),
        )
        .bind(login.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Live mode: the machines the demo seller of an earlier demo run held belong to nobody
    /// again (not for sale until the operator assigns them); how many.
    pub async fn release_demo_machines(&self) -> DbResult<u64> {
        let r = sqlx::query(self.q("UPDATE vm_machines SET owner = NULL \
             WHERE owner IN (SELECT login FROM vm_sellers WHERE demo = 1)"))
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Sets the password hash of the demo seller `login` (and enables it) — only if demo mode
    /// made that account; whether it did.
    pub async fn set_demo_seller_password(
        &self,
        login: &str,
        password_hash: &str,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE vm_sellers SET password_hash = ?, enabled = 1 WHERE login = ? AND demo = 1",
        ))
        .bind(password_hash.to_owned())
        .bind(login.to_owned())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets a seller's password hash (and enables it); whether the seller exists.
    pub async fn set_seller_password(&self, login: &str, password_hash: &str) -> DbResult<bool> {
        let r = sqlx::query(
            self.q("UPDATE vm_sellers SET password_hash = ?, enabled = 1 WHERE login = ?"),
        )
        .bind(password_hash.to_owned())
        .bind(login.to_owned())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records a seller action.
    pub async fn audit(&self, entry: &AuditEntry) -> DbResult<()> {
        sqlx::query(self.q(
            "INSERT INTO vm_audit (id, seller, action, target, before_state, after_state, at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(entry.id.clone())
        .bind(entry.seller.clone())
        .bind(entry.action.clone())
        .bind(entry.target.clone())
        .bind(entry.before.as_ref().map(Value::to_string))
        .bind(entry.after.as_ref().map(Value::to_string))
        .bind(entry.at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A seller's latest actions, newest first.
    pub async fn audit_of(&self, seller: &str, limit: i64) -> DbResult<Vec<AuditEntry>> {
        let rows = sqlx::query(self.q(
            "SELECT id, seller, action, target, before_state, after_state, at FROM vm_audit \
             WHERE seller = ? ORDER BY id DESC LIMIT ?",
        ))
        .bind(seller.to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    seller: r.try_get("seller")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    before: json_column(r, "before_state")?,
                    after: json_column(r, "after_state")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}
