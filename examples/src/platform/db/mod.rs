//! The platform's own tables — merchants, their orders and refunds, idempotency keys — kept in
//! the same database as the payments (`aggregate-pay`'s SQL store), through its pool.

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, PayMethod};
use merchant_client::Secret;
use sqlx::Row;
use sqlx::any::AnyRow;

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

/// A merchant. Its secrets are `Secret`s: `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    /// The app id (never changes).
    pub app_id: String,
    /// The name.
    pub name: String,
    /// The unified social credit code (unique).
    pub credit_code: String,
    /// Where callbacks go.
    pub notify_url: String,
    /// Whether it may use the open API.
    pub status: MerchantStatus,
    /// The current secret.
    pub secret: Secret,
    /// The salt.
    pub salt: Secret,
    /// The previous secret, valid until `previous_valid_until`.
    pub previous_secret: Option<Secret>,
    /// Unix seconds.
    pub previous_valid_until: Option<i64>,
    /// The bound WeChat openid.
    pub open_id: Option<String>,
    /// The scene of the binding QR code.
    pub bind_scene: Option<String>,
    /// What the binding QR code encodes.
    pub bind_qr_url: Option<String>,
}

/// A merchant's order (the payment behind it once a method is chosen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's number.
    pub out_trade_no: String,
    /// The number the channel knows (unique across merchants).
    pub platform_no: String,
    /// The cashier page token.
    pub token: String,
    /// What it costs.
    pub amount: Fen,
    /// What is bought.
    pub subject: String,
    /// The pay method, once chosen.
    pub method: Option<PayMethod>,
    /// The buyer's openid.
    pub open_id: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// The merchant's data (JSON).
    pub metadata: String,
    /// The payment, once created.
    pub payment_id: Option<String>,
    /// The pay action (JSON), once created.
    pub pay_action: Option<String>,
    /// Closed before a method was chosen.
    pub closed: bool,
}

/// A merchant's refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The refund number the channel knows.
    pub platform_refund_no: String,
    /// How much.
    pub amount: Fen,
}

/// Whether a merchant may use the open API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MerchantStatus {
    /// Yes.
    Active,
    /// No (the admin disabled it).
    Disabled,
}

impl MerchantStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "ACTIVE",
            MerchantStatus::Disabled => "DISABLED",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [MerchantStatus::Active, MerchantStatus::Disabled]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// An amount stored as a BIGINT of fen.
fn fen(v: i64, what: &str) -> DbResult<Fen> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| format!("negative {what} in the database"))
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

type DbResult<T> = Result<T, String>;

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
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

fn merchant_from(r: &AnyRow) -> DbResult<Merchant> {
    Ok(Merchant {
        app_id: r.try_get("app_id").map_err(e)?,
        name: r.try_get("name").map_err(e)?,
        credit_code: r.try_get("credit_code").map_err(e)?,
        notify_url: r.try_get("notify_url").map_err(e)?,
        status: {
            let status: String = r.try_get("status").map_err(e)?;
            MerchantStatus::parse(&status)
                .ok_or_else(|| format!("unknown merchant status {status:?}"))?
        },
        secret: Secret::new(r.try_get::<String, _>("secret").map_err(e)?),
        salt: Secret::new(r.try_get::<String, _>("salt").map_err(e)?),
        previous_secret: r
            .try_get::<Option<String>, _>("previous_secret")
            .map_err(e)?
            .map(Secret::new),
        previous_valid_until: r.try_get("previous_valid_until").map_err(e)?,
        open_id: r.try_get("open_id").map_err(e)?,
        bind_scene: r.try_get("bind_scene").map_err(e)?,
        bind_qr_url: r.try_get("bind_qr_url").map_err(e)?,
    })
}

fn order_from(r: &AnyRow) -> DbResult<Order> {
    Ok(Order {
        merchant_id: r.try_get("merchant_id").map_err(e)?,
        out_trade_no: r.try_get("out_trade_no").map_err(e)?,
        platform_no: r.try_get("platform_no").map_err(e)?,
        token: r.try_get("token").map_err(e)?,
        amount: fen(r.try_get("amount").map_err(e)?, "amount")?,
        subject: r.try_get("subject").map_err(e)?,
        method: match r.try_get::<Option<String>, _>("method").map_err(e)? {
            None => None,
            Some(m) => {
                Some(PayMethod::parse(&m).ok_or_else(|| format!("unknown pay method {m:?}"))?)
            }
        },
        open_id: r.try_get("open_id").map_err(e)?,
        expires_at: r.try_get("expires_at").map_err(e)?,
        metadata: r.try_get("metadata").map_err(e)?,
        payment_id: r.try_get("payment_id").map_err(e)?,
        pay_action: r.try_get("pay_action").map_err(e)?,
        closed: r.try_get::<i64, _>("closed").map_err(e)? != 0,
    })
}

fn refund_from(r: &AnyRow) -> DbResult<RefundRecord> {
    Ok(RefundRecord {
        merchant_id: r.try_get("merchant_id").map_err(e)?,
        out_refund_no: r.try_get("out_refund_no").map_err(e)?,
        out_trade_no: r.try_get("out_trade_no").map_err(e)?,
        platform_refund_no: r.try_get("platform_refund_no").map_err(e)?,
        amount: fen(r.try_get("amount").map_err(e)?, "amount")?,
    })
}

mod idempotency;
mod messages;

pub use idempotency::{Idempotent, KeyTimes};
pub use messages::{MessageStatus, QueuedMessage};

const MERCHANT_COLUMNS: &str = "app_id, name, credit_code, notify_url, status, secret, salt, previous_secret, \
     previous_valid_until, open_id, bind_scene, bind_qr_url";
const ORDER_COLUMNS: &str = "merchant_id, out_trade_no, platform_no, token, amount, subject, method, open_id, \
     expires_at, metadata, payment_id, pay_action, closed";

/// Binding codes are single-use and short-lived: each records when it expires and when it was
/// used. Codes issued before (no expiry) no longer bind anyone.
const SCHEMA_V4: &str = "
ALTER TABLE merchants ADD COLUMN bind_expires_at BIGINT;
ALTER TABLE merchants ADD COLUMN bind_used_at BIGINT;
";

/// Why a scan did not bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefused {
    /// No merchant has this code (never issued, or replaced by a newer one).
    Unknown,
    /// The code was scanned once already: single-use.
    Used,
    /// The code is past its time.
    Expired,
}

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
                    (4, "single-use binding codes", SCHEMA_V4),
                ],
            )
            .await
            .map_err(e)?;
        Ok(PlatformDb { store })
    }

    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        self.store.query_text(sql)
    }

    /// Inserts a merchant; `Ok(false)` if the credit code is taken.
    pub async fn insert_merchant(&self, m: &Merchant, now: i64) -> DbResult<bool> {
        let result = sqlx::query(self.q(&format!(
            "INSERT INTO merchants ({MERCHANT_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(m.app_id.clone())
        .bind(m.name.clone())
        .bind(m.credit_code.clone())
        .bind(m.notify_url.clone())
        .bind(m.status.as_str().to_owned())
        .bind(m.secret.expose().to_owned())
        .bind(m.salt.expose().to_owned())
        .bind(m.previous_secret.as_ref().map(|s| s.expose().to_owned()))
        .bind(m.previous_valid_until)
        .bind(m.open_id.clone())
        .bind(m.bind_scene.clone())
        .bind(m.bind_qr_url.clone())
        .bind(now)
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    async fn merchant_where(&self, column: &str, value: &str) -> DbResult<Option<Merchant>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {MERCHANT_COLUMNS} FROM merchants WHERE {column} = ?"
        )))
        .bind(value.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(merchant_from).transpose()
    }

    /// A merchant by app id.
    pub async fn merchant(&self, app_id: &str) -> DbResult<Option<Merchant>> {
        self.merchant_where("app_id", app_id).await
    }

    /// A merchant by binding scene.
    pub async fn merchant_by_scene(&self, scene: &str) -> DbResult<Option<Merchant>> {
        self.merchant_where("bind_scene", scene).await
    }

    /// Replaces the secret; the old one stays valid until `grace_until`.
    pub async fn rotate_secret(
        &self,
        app_id: &str,
        new_secret: &str,
        grace_until: i64,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE merchants SET previous_secret = secret, previous_valid_until = ?, secret = ? WHERE app_id = ?",
        ))
        .bind(grace_until)
        .bind(new_secret.to_owned())
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets a merchant's status.
    pub async fn set_status(&self, app_id: &str, status: MerchantStatus) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE merchants SET status = ? WHERE app_id = ?"))
            .bind(status.as_str().to_owned())
            .bind(app_id.to_owned())
            .execute(self.store.pool())
            .await
            .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets the binding scene and what its QR code encodes.
    /// Issues the merchant's binding code `scene` (its QR encodes `qr_url`), usable once until
    /// `expires_at` (Unix seconds); any earlier code stops working.
    pub async fn set_binding(
        &self,
        app_id: &str,
        scene: &str,
        qr_url: &str,
        expires_at: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchants SET bind_scene = ?, bind_qr_url = ?, bind_expires_at = ?, \
             bind_used_at = NULL WHERE app_id = ?",
        ))
        .bind(scene.to_owned())
        .bind(qr_url.to_owned())
        .bind(expires_at)
        .bind(app_id.to_owned())
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// Binds `open_id` to the merchant whose code is `scene`, if the code is unused and not
    /// expired at `now` (one compare-and-set: of two scans at once, one binds); returns the
    /// merchant, or why not.
    pub async fn bind(
        &self,
        scene: &str,
        open_id: &str,
        now: i64,
    ) -> DbResult<Result<Merchant, BindRefused>> {
        let done = sqlx::query(self.q("UPDATE merchants SET open_id = ?, bind_used_at = ? \
             WHERE bind_scene = ? AND bind_used_at IS NULL AND bind_expires_at > ?"))
        .bind(open_id.to_owned())
        .bind(now)
        .bind(scene.to_owned())
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        let Some(merchant) = self.merchant_by_scene(scene).await? else {
            return Ok(Err(BindRefused::Unknown));
        };
        if done.rows_affected() == 1 {
            return Ok(Ok(merchant));
        }
        let used: Option<i64> =
            sqlx::query_scalar(self.q("SELECT bind_used_at FROM merchants WHERE bind_scene = ?"))
                .bind(scene.to_owned())
                .fetch_optional(self.store.pool())
                .await
                .map_err(e)?
                .flatten();
        Ok(Err(if used.is_some() {
            BindRefused::Used
        } else {
            BindRefused::Expired
        }))
    }

    /// Clears `open_id` wherever it is bound.
    pub async fn unbind(&self, open_id: &str) -> DbResult<u64> {
        sqlx::query(self.q("UPDATE merchants SET open_id = NULL WHERE open_id = ?"))
            .bind(open_id.to_owned())
            .execute(self.store.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(e)
    }

    /// Inserts an order; `Ok(false)` if the merchant already used the number.
    pub async fn insert_order(&self, o: &Order, now: i64) -> DbResult<bool> {
        let result = sqlx::query(self.q(&format!(
            "INSERT INTO merchant_orders ({ORDER_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(o.merchant_id.clone())
        .bind(o.out_trade_no.clone())
        .bind(o.platform_no.clone())
        .bind(o.token.clone())
        .bind(fen_column(o.amount))
        .bind(o.subject.clone())
        .bind(o.method.map(|m| m.as_str().to_owned()))
        .bind(o.open_id.clone())
        .bind(o.expires_at)
        .bind(o.metadata.clone())
        .bind(o.payment_id.clone())
        .bind(o.pay_action.clone())
        .bind(i64::from(o.closed))
        .bind(now)
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    async fn order_where(&self, clause: &str, binds: &[&str]) -> DbResult<Option<Order>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM merchant_orders WHERE {clause}");
        let mut q = sqlx::query(self.q(&sql));
        for b in binds {
            q = q.bind((*b).to_owned());
        }
        let row = q.fetch_optional(self.store.pool()).await.map_err(e)?;
        row.as_ref().map(order_from).transpose()
    }

    /// An order by merchant and number.
    pub async fn order(&self, merchant_id: &str, out_trade_no: &str) -> DbResult<Option<Order>> {
        self.order_where(
            "merchant_id = ? AND out_trade_no = ?",
            &[merchant_id, out_trade_no],
        )
        .await
    }

    /// An order by cashier token.
    pub async fn order_by_token(&self, token: &str) -> DbResult<Option<Order>> {
        self.order_where("token = ?", &[token]).await
    }

    /// An order by the number the channel knows.
    pub async fn order_by_platform_no(&self, platform_no: &str) -> DbResult<Option<Order>> {
        self.order_where("platform_no = ?", &[platform_no]).await
    }

    /// Sets the method, payment and action of an order that had none (first chooser wins);
    /// `Ok(false)` if one was set meanwhile.
    pub async fn attach_payment(
        &self,
        o: &Order,
        method: PayMethod,
        payment_id: &str,
        action: &str,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE merchant_orders SET method = ?, payment_id = ?, pay_action = ? \
             WHERE merchant_id = ? AND out_trade_no = ? AND (payment_id IS NULL OR payment_id = ?)",
        ))
        .bind(method.as_str().to_owned())
        .bind(payment_id.to_owned())
        .bind(action.to_owned())
        .bind(o.merchant_id.clone())
        .bind(o.out_trade_no.clone())
        .bind(payment_id.to_owned())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Closes an order that has no payment yet; `Ok(false)` if a payment was attached meanwhile.
    pub async fn close_unpaid_order(&self, o: &Order) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE merchant_orders SET closed = 1 WHERE merchant_id = ? AND out_trade_no = ? AND payment_id IS NULL",
        ))
        .bind(o.merchant_id.clone())
        .bind(o.out_trade_no.clone())
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Inserts a refund record; `Ok(false)` if the merchant already used the number.
    pub async fn insert_refund(&self, r: &RefundRecord, now: i64) -> DbResult<bool> {
        let result = sqlx::query(self.q(
            "INSERT INTO merchant_refunds (merchant_id, out_refund_no, out_trade_no, platform_refund_no, amount, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(r.merchant_id.clone())
        .bind(r.out_refund_no.clone())
        .bind(r.out_trade_no.clone())
        .bind(r.platform_refund_no.clone())
        .bind(fen_column(r.amount))
        .bind(now)
        .execute(self.store.pool())
        .await;
        inserted(result)
    }

    /// A refund record.
    pub async fn refund(
        &self,
        merchant_id: &str,
        out_refund_no: &str,
    ) -> DbResult<Option<RefundRecord>> {
        let row = sqlx::query(self.q(
            "SELECT merchant_id, out_refund_no, out_trade_no, platform_refund_no, amount FROM merchant_refunds \
             WHERE merchant_id = ? AND out_refund_no = ?",
        ))
        .bind(merchant_id.to_owned())
        .bind(out_refund_no.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(refund_from).transpose()
    }

    /// A refund record by the number the channel knows.
    pub async fn refund_by_platform_no(
        &self,
        platform_refund_no: &str,
    ) -> DbResult<Option<RefundRecord>> {
        let row = sqlx::query(self.q(
            "SELECT merchant_id, out_refund_no, out_trade_no, platform_refund_no, amount FROM merchant_refunds \
             WHERE platform_refund_no = ?",
        ))
        .bind(platform_refund_no.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(refund_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::{Merchant, MerchantStatus, Secret};

    #[test]
    fn debug_output_leaves_out_secrets() {
        let m = Merchant {
            app_id: "mch_1".into(),
            name: "Shop".into(),
            credit_code: "91350100M000100Y43".into(),
            notify_url: "http://127.0.0.1/cb".into(),
            status: MerchantStatus::Active,
            secret: Secret::new("current-secret-value"),
            salt: Secret::new("salt-value-123"),
            previous_secret: Some(Secret::new("previous-secret-value")),
            previous_valid_until: Some(1),
            open_id: None,
            bind_scene: None,
            bind_qr_url: None,
        };
        let shown = format!("{m:?} {m:#?}");
        for secret in [
            "current-secret-value",
            "salt-value-123",
            "previous-secret-value",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("mch_1"));
    }
}
