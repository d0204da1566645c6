//! Merchants' orders (the payment behind each once a method is chosen) and refunds, each
//! under the merchant's own number and the platform's.

use aggregate_pay::{Fen, PayMethod};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, PlatformDb, corrupt, e, fen, fen_column, inserted};

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

const ORDER_COLUMNS: &str = "merchant_id, out_trade_no, platform_no, token, amount, subject, method, open_id, \
     expires_at, metadata, payment_id, pay_action, closed";

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
            Some(m) => Some(
                PayMethod::parse(&m).ok_or_else(|| corrupt(format!("unknown pay method {m:?}")))?,
            ),
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

impl PlatformDb {
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
