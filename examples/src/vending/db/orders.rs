//! Orders: insertion, lookups, and the compare-and-set steps the order service takes.

use aggregate_pay::{Fen, PayMethod};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{DbResult, VendingDb, corrupt, fen, fen_column};

/// Which app vouched for the buyer's openid (openids are per app: one from the Official Account
/// cannot pay in the Mini Program).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BuyerApp {
    /// `jscode2session` of the Mini Program.
    MiniProgram,
    /// The Official Account's web OAuth.
    OfficialAccount,
    /// A demo buyer (demo mode only).
    Demo,
    /// The Alipay Mini Program's login (`alipay.system.oauth.token`): the id is the buyer's
    /// Alipay user id or open id.
    AlipayMiniProgram,
    /// The web login in the Alipay app's browser: the id is the buyer's Alipay user id or open
    /// id; they pay with Alipay's mobile-web checkout.
    AlipayWeb,
}

impl BuyerApp {
    /// The name in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            BuyerApp::MiniProgram => "mini_program",
            BuyerApp::OfficialAccount => "official_account",
            BuyerApp::Demo => "demo",
            BuyerApp::AlipayMiniProgram => "alipay_mini_program",
            BuyerApp::AlipayWeb => "alipay_web",
        }
    }

    /// The app named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [
            BuyerApp::MiniProgram,
            BuyerApp::OfficialAccount,
            BuyerApp::Demo,
            BuyerApp::AlipayMiniProgram,
            BuyerApp::AlipayWeb,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Waiting for payment; holds the machine.
    Created,
    /// Paid; the vend-out command is being sent.
    Paid,
    /// The machine was told to vend.
    Vending,
    /// The item came out.
    Completed,
    /// The machine failed or did not answer; the money goes back.
    VendFailed,
    /// The money went back.
    Refunded,
    /// Not paid in time; closed.
    Invalid,
    /// Cancelled by the buyer before paying.
    Cancelled,
}

impl OrderStatus {
    /// The statuses of an order that has not ended (few at any moment, whatever the history).
    pub const OPEN: [OrderStatus; 3] = [
        OrderStatus::Created,
        OrderStatus::Paid,
        OrderStatus::Vending,
    ];

    /// Whether an order in this status has not ended yet.
    pub fn is_open(self) -> bool {
        OrderStatus::OPEN.contains(&self)
    }

    /// Every status.
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Created,
        OrderStatus::Paid,
        OrderStatus::Vending,
        OrderStatus::Completed,
        OrderStatus::VendFailed,
        OrderStatus::Refunded,
        OrderStatus::Invalid,
        OrderStatus::Cancelled,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "CREATED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Vending => "VENDING",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::VendFailed => "VEND_FAILED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Invalid => "INVALID",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the order still occupies its machine.
    pub fn holds_machine(self) -> bool {
        matches!(
            self,
            OrderStatus::Created | OrderStatus::Paid | OrderStatus::Vending
        )
    }
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Its number (also the payment's `out_trade_no`).
    pub order_no: String,
    /// The machine.
    pub inner_code: String,
    /// The SKU.
    pub sku_id: i64,
    /// The SKU's name.
    pub sku_name: String,
    /// The slot it vends from.
    pub slot_no: String,
    /// What it costs.
    pub amount: Fen,
    /// The id of the channel it is paid through (`wechat`, `wechat_mini`, `alipay`…).
    pub channel: String,
    /// The pay method.
    pub method: PayMethod,
    /// The buyer.
    pub open_id: Option<String>,
    /// Which app vouched for the buyer's openid (orders from before sessions: unknown).
    pub buyer_app: Option<BuyerApp>,
    /// Where it is.
    pub status: OrderStatus,
    /// The payment.
    #[serde(skip)]
    pub payment_id: Option<String>,
    /// What the front end does to pay (JSON).
    #[serde(skip)]
    pub pay_action: Option<String>,
    /// The machine lock's owner token.
    #[serde(skip)]
    pub lock_token: Option<String>,
    /// The refund's number, once a refund of the whole order is due.
    pub refund_no: Option<String>,
    /// How much was refunded so far (a seller may refund part of an order).
    pub refunded: Fen,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds.
    pub paid_at: Option<i64>,
    /// Unix seconds: the vend-out command.
    pub vend_at: Option<i64>,
    /// Unix seconds.
    pub ended_at: Option<i64>,
    /// The seller it was sold for (the machine's owner then): only they refund it.
    pub seller: Option<String>,
    /// A refund that needs the seller (JSON: `{out_refund_no, status, what_to_do}`), while it
    /// does.
    #[serde(skip)]
    pub refund_issue: Option<String>,
}

const ORDER_COLUMNS: &str = "order_no, inner_code, sku_id, sku_name, slot_no, amount, channel, method, open_id, buyer_app, status, \
     payment_id, pay_action, lock_token, refund_no, refunded, reason, created_at, updated_at, paid_at, vend_at, ended_at, \
     seller, refund_issue";

fn order_from(r: &AnyRow) -> DbResult<Order> {
    let status: String = r.try_get("status")?;
    Ok(Order {
        order_no: r.try_get("order_no")?,
        inner_code: r.try_get("inner_code")?,
        sku_id: r.try_get("sku_id")?,
        sku_name: r.try_get("sku_name")?,
        slot_no: r.try_get("slot_no")?,
        amount: fen(r.try_get("amount")?, "amount")?,
        channel: r.try_get("channel")?,
        method: {
            let method: String = r.try_get("method")?;
            PayMethod::parse(&method)
                .ok_or_else(|| corrupt(format!("unknown pay method {method:?}")))?
        },
        open_id: r.try_get("open_id")?,
        buyer_app: {
            let app: Option<String> = r.try_get("buyer_app")?;
            app.map(|a| {
                BuyerApp::parse(&a).ok_or_else(|| corrupt(format!("unknown buyer app {a:?}")))
            })
            .transpose()?
        },
        status: OrderStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown order status {status:?}")))?,
        payment_id: r.try_get("payment_id")?,
        pay_action: r.try_get("pay_action")?,
        lock_token: r.try_get("lock_token")?,
        refund_no: r.try_get("refund_no")?,
        refunded: fen(r.try_get("refunded")?, "refunded amount")?,
        reason: r.try_get("reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        paid_at: r.try_get("paid_at")?,
        vend_at: r.try_get("vend_at")?,
        ended_at: r.try_get("ended_at")?,
        seller: r.try_get("seller")?,
        refund_issue: r.try_get("refund_issue")?,
    })
}

/// What a status change also sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamp<'a> {
    /// Sets `paid_at`.
    pub paid: bool,
    /// Sets `vend_at`.
    pub vend: bool,
    /// Sets `ended_at`.
    pub ended: bool,
    /// Sets `reason`.
    pub reason: Option<&'a str>,
}

impl VendingDb {
    /// Records a new order (CREATED).
    pub async fn insert_order(&self, o: &Order) -> DbResult<()> {
        sqlx::query(self.q(&format!(
            "INSERT INTO vm_orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(o.order_no.clone())
        .bind(o.inner_code.clone())
        .bind(o.sku_id)
        .bind(o.sku_name.clone())
        .bind(o.slot_no.clone())
        .bind(fen_column(o.amount))
        .bind(o.channel.clone())
        .bind(o.method.as_str().to_owned())
        .bind(o.open_id.clone())
        .bind(o.buyer_app.map(|a| a.as_str().to_owned()))
        .bind(o.status.as_str())
        .bind(o.payment_id.clone())
        .bind(o.pay_action.clone())
        .bind(o.lock_token.clone())
        .bind(o.refund_no.clone())
        .bind(fen_column(o.refunded))
        .bind(o.reason.clone())
        .bind(o.created_at)
        .bind(o.updated_at)
        .bind(o.paid_at)
        .bind(o.vend_at)
        .bind(o.ended_at)
        .bind(o.seller.clone())
        .bind(o.refund_issue.clone())
        .execute(self.pool())
        .await
        .map(|_| ())
            .map_err(Into::into)
    }

    /// An order.
    pub async fn order(&self, order_no: &str) -> DbResult<Option<Order>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE order_no = ?"
        )))
        .bind(order_no.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(order_from).transpose()
    }

    /// A buyer's orders, newest first.
    pub async fn orders_of(&self, open_id: &str, limit: i64, offset: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE open_id = ? ORDER BY created_at DESC, order_no DESC LIMIT ? OFFSET ?"
        )))
        .bind(open_id.to_owned())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await
        ?;
        rows.iter().map(order_from).collect()
    }

    /// The buyer's order still waiting for payment, if any.
    pub async fn open_order_of(&self, open_id: &str) -> DbResult<Option<Order>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE open_id = ? AND status = 'CREATED' ORDER BY created_at DESC LIMIT 1"
        )))
        .bind(open_id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(order_from).transpose()
    }

    /// The newest orders on a seller's machines.
    pub async fn recent_orders_of_seller(&self, seller: &str, limit: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE seller = ? \
             ORDER BY created_at DESC, order_no DESC LIMIT ?"
        )))
        .bind(seller.to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_from).collect()
    }

    /// Shows (or, with `None`, clears) a refund of the order that needs its seller.
    pub async fn set_refund_issue(
        &self,
        order_no: &str,
        issue: Option<&str>,
        now: i64,
    ) -> DbResult<()> {
        sqlx::query(
            self.q("UPDATE vm_orders SET refund_issue = ?, updated_at = ? WHERE order_no = ?"),
        )
        .bind(issue.map(str::to_owned))
        .bind(now)
        .bind(order_no.to_owned())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records how much of the order was refunded so far (never less than before).
    pub async fn set_refunded(&self, order_no: &str, refunded: Fen, now: i64) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE vm_orders SET refunded = ?, updated_at = ? WHERE order_no = ? AND refunded < ?",
        ))
        .bind(fen_column(refunded))
        .bind(now)
        .bind(order_no.to_owned())
        .bind(fen_column(refunded))
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The newest orders.
    pub async fn recent_orders(&self, limit: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders ORDER BY created_at DESC, order_no DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(order_from).collect()
    }

    /// Orders in `status` last changed at or before `before` (Unix seconds).
    pub async fn orders_in(
        &self,
        status: OrderStatus,
        before: i64,
        limit: i64,
    ) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE status = ? AND updated_at <= ? ORDER BY updated_at LIMIT ?"
        )))
        .bind(status.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        ?;
        rows.iter().map(order_from).collect()
    }

    /// Orders whose refund is due but not done, last changed at or before `before`. Two indexed
    /// scans (failed vends by status, refunded orders by refund number), so that the sweep does
    /// not read every order a year of sales left behind. `refund_no > ''` rather than `IS NOT
    /// NULL` (the same orders: a refund number is never empty): SQLite's planner, seeing the
    /// refund index almost all NULL, skip-scanned the status index for `IS NOT NULL` instead —
    /// 267 ms at a million orders against 0.05 ms for the range.
    pub async fn refunds_due(&self, before: i64, limit: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE status = 'VEND_FAILED' AND updated_at <= ? \
             UNION ALL \
             SELECT {ORDER_COLUMNS} FROM vm_orders WHERE refund_no > '' \
             AND status <> 'REFUNDED' AND status <> 'VEND_FAILED' AND updated_at <= ? \
             ORDER BY updated_at LIMIT ?"
        )))
        .bind(before)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        ?;
        rows.iter().map(order_from).collect()
    }

    /// How many orders are in each status.
    ///
    /// Open orders only: an index range of the few orders not ended, where counting every order
    /// would read the whole history on each scrape (212 ms at a million orders on PostgreSQL).
    /// Ended orders are counted as they end ([`crate::vending::metrics::Metrics::order_ended`]).
    pub async fn count_open_by_status(&self) -> DbResult<Vec<(String, i64)>> {
        let rows = sqlx::query(self.q("SELECT status, COUNT(*) AS n FROM vm_orders \
             WHERE status IN ('CREATED', 'PAID', 'VENDING') GROUP BY status"))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    /// Sets the payment of a CREATED order.
    pub async fn set_payment(
        &self,
        order_no: &str,
        payment_id: &str,
        action: &str,
        now: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q("UPDATE vm_orders SET payment_id = ?, pay_action = ?, updated_at = ? WHERE order_no = ?"))
            .bind(payment_id.to_owned())
            .bind(action.to_owned())
            .bind(now)
            .bind(order_no.to_owned())
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(Into::into)
    }

    /// Moves an order from `from` to `to` if it is still in `from`; `Ok(false)` if it was not.
    pub async fn transition(
        &self,
        order_no: &str,
        from: OrderStatus,
        to: OrderStatus,
        now: i64,
        stamp: Stamp<'_>,
    ) -> DbResult<bool> {
        let r = sqlx::query(self.q("UPDATE vm_orders SET status = ?, updated_at = ?, \
             paid_at = CASE WHEN ? = 1 THEN ? ELSE paid_at END, \
             vend_at = CASE WHEN ? = 1 THEN ? ELSE vend_at END, \
             ended_at = CASE WHEN ? = 1 THEN ? ELSE ended_at END, \
             reason = COALESCE(?, reason) \
             WHERE order_no = ? AND status = ?"))
        .bind(to.as_str())
        .bind(now)
        .bind(i64::from(stamp.paid))
        .bind(now)
        .bind(i64::from(stamp.vend))
        .bind(now)
        .bind(i64::from(stamp.ended))
        .bind(now)
        .bind(stamp.reason.map(str::to_owned))
        .bind(order_no.to_owned())
        .bind(from.as_str())
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// VENDING → COMPLETED and one item fewer in the slot, in one transaction; `Ok(false)` if
    /// the order was not VENDING.
    pub async fn complete(&self, order: &Order, now: i64) -> DbResult<bool> {
        let mut tx = self.pool().begin().await?;
        let r = sqlx::query(self.q(
            "UPDATE vm_orders SET status = 'COMPLETED', updated_at = ?, ended_at = ? WHERE order_no = ? AND status = 'VENDING'",
        ))
        .bind(now)
        .bind(now)
        .bind(order.order_no.clone())
        .execute(&mut *tx)
        .await
        ?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(self.q("UPDATE vm_slots SET capacity = capacity - 1 WHERE inner_code = ? AND slot_no = ? AND capacity > 0"))
            .bind(order.inner_code.clone())
            .bind(order.slot_no.clone())
            .execute(&mut *tx)
            .await
            ?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a refund due under `refund_no` (kept if one is already set); returns the number.
    pub async fn mark_refund_due(
        &self,
        order_no: &str,
        refund_no: &str,
        reason: &str,
        now: i64,
    ) -> DbResult<String> {
        sqlx::query(self.q(
            "UPDATE vm_orders SET refund_no = COALESCE(refund_no, ?), reason = COALESCE(reason, ?), updated_at = ? WHERE order_no = ?",
        ))
        .bind(refund_no.to_owned())
        .bind(reason.to_owned())
        .bind(now)
        .bind(order_no.to_owned())
        .execute(self.pool())
        .await
        ?;
        self.order(order_no)
            .await?
            .and_then(|o| o.refund_no)
            .ok_or_else(|| corrupt(format!("order {order_no} vanished")))
    }

    /// Marks the order REFUNDED from whatever status it is in; `Ok(false)` if it already was.
    pub async fn refunded(&self, order_no: &str, now: i64) -> DbResult<bool> {
        let r = sqlx::query(self.q(
            "UPDATE vm_orders SET status = 'REFUNDED', updated_at = ?, ended_at = COALESCE(ended_at, ?) \
             WHERE order_no = ? AND status <> 'REFUNDED'",
        ))
        .bind(now)
        .bind(now)
        .bind(order_no.to_owned())
        .execute(self.pool())
        .await
        ?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets the machine lock's token once it was released.
    pub async fn clear_lock(&self, order_no: &str) -> DbResult<()> {
        sqlx::query(self.q("UPDATE vm_orders SET lock_token = NULL WHERE order_no = ?"))
            .bind(order_no.to_owned())
            .execute(self.pool())
            .await
            .map(|_| ())
            .map_err(Into::into)
    }
}
