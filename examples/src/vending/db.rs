//! The vending tables — machines, SKUs, slots, orders — next to `aggregate-pay`'s payments in
//! one database, with embedded migrations (the second seeds the demo machines). Order state
//! changes are compare-and-set on the status, so a duplicate event or a race changes nothing.

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, PayMethod};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

const SCHEMA_V1: &str = "
CREATE TABLE vm_machines (
    inner_code VARCHAR(32) NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lng DOUBLE PRECISION NOT NULL,
    status VARCHAR(16) NOT NULL
);
CREATE TABLE vm_skus (
    sku_id BIGINT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    image TEXT NOT NULL,
    unit TEXT NOT NULL
);
CREATE TABLE vm_slots (
    inner_code VARCHAR(32) NOT NULL,
    slot_no VARCHAR(16) NOT NULL,
    sku_id BIGINT NOT NULL,
    price BIGINT NOT NULL,
    capacity BIGINT NOT NULL,
    PRIMARY KEY (inner_code, slot_no)
);
CREATE TABLE vm_orders (
    order_no VARCHAR(32) NOT NULL PRIMARY KEY,
    inner_code VARCHAR(32) NOT NULL,
    sku_id BIGINT NOT NULL,
    sku_name TEXT NOT NULL,
    slot_no VARCHAR(16) NOT NULL,
    amount BIGINT NOT NULL,
    channel VARCHAR(16) NOT NULL,
    method VARCHAR(32) NOT NULL,
    open_id VARCHAR(128),
    status VARCHAR(16) NOT NULL,
    payment_id VARCHAR(64),
    pay_action TEXT,
    lock_token VARCHAR(64),
    refund_no VARCHAR(32),
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    paid_at BIGINT,
    vend_at BIGINT,
    ended_at BIGINT
);
CREATE INDEX vm_orders_by_buyer ON vm_orders (open_id, created_at);
CREATE INDEX vm_orders_by_status ON vm_orders (status, updated_at);
";

/// Demo data: three machines around Tiananmen, six SKUs, slots with one SKU sold out.
const SEED_V2: &str = "
INSERT INTO vm_machines (inner_code, name, address, lat, lng, status) VALUES
 ('VM0001', 'Lobby', 'No. 1 Demo Road, Dongcheng, Beijing', 39.9087, 116.3975, 'ONLINE'),
 ('VM0002', 'Library', 'No. 8 Demo Street, Xicheng, Beijing', 39.9120, 116.3910, 'ONLINE'),
 ('VM0003', 'Station', 'No. 3 Far Avenue, Haidian, Beijing', 39.9900, 116.3100, 'ONLINE');
INSERT INTO vm_skus (sku_id, name, image, unit) VALUES
 (1, 'Cola', '/static/cola.svg', '330ml can'),
 (2, 'Mineral water', '/static/water.svg', '550ml bottle'),
 (3, 'Potato chips', '/static/chips.svg', '70g bag'),
 (4, 'Orange juice', '/static/juice.svg', '300ml bottle'),
 (5, 'Iced coffee', '/static/coffee.svg', '250ml can'),
 (6, 'Chocolate bar', '/static/chocolate.svg', '45g bar');
INSERT INTO vm_slots (inner_code, slot_no, sku_id, price, capacity) VALUES
 ('VM0001', 'A1', 1, 350, 8),
 ('VM0001', 'A2', 1, 300, 2),
 ('VM0001', 'A3', 2, 200, 10),
 ('VM0001', 'B1', 3, 500, 5),
 ('VM0001', 'B2', 4, 450, 0),
 ('VM0001', 'B3', 5, 600, 4),
 ('VM0002', 'A1', 2, 200, 6),
 ('VM0002', 'A2', 6, 550, 3),
 ('VM0002', 'A3', 1, 350, 1),
 ('VM0003', 'A1', 5, 650, 9),
 ('VM0003', 'A2', 3, 500, 2);
";

type DbResult<T> = Result<T, String>;

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// A machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// Its code.
    pub inner_code: String,
    /// Its name.
    pub name: String,
    /// Where it stands.
    pub address: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// In service or not.
    pub status: MachineStatus,
}

/// Whether a machine takes orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MachineStatus {
    /// In service.
    Online,
    /// Out of service.
    Offline,
}

impl MachineStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineStatus::Online => "ONLINE",
            MachineStatus::Offline => "OFFLINE",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<Self> {
        [MachineStatus::Online, MachineStatus::Offline]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A SKU's row in one slot (the query result the SKU list is built from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSku {
    /// The slot.
    pub slot_no: String,
    /// The SKU.
    pub sku_id: i64,
    /// Its name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Its unit.
    pub unit: String,
    /// The slot's price.
    pub price: Fen,
    /// Items left in the slot.
    pub capacity: i64,
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
    /// The refund's number, once a refund is due.
    pub refund_no: Option<String>,
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
}

const MACHINE_COLUMNS: &str = "inner_code, name, address, lat, lng, status";

fn machine_from(r: &AnyRow) -> DbResult<Machine> {
    Ok(Machine {
        inner_code: r.try_get("inner_code").map_err(e)?,
        name: r.try_get("name").map_err(e)?,
        address: r.try_get("address").map_err(e)?,
        lat: r.try_get("lat").map_err(e)?,
        lng: r.try_get("lng").map_err(e)?,
        status: {
            let status: String = r.try_get("status").map_err(e)?;
            MachineStatus::parse(&status)
                .ok_or_else(|| format!("unknown machine status {status:?}"))?
        },
    })
}

/// An amount stored as a BIGINT of fen.
fn fen(v: i64, what: &str) -> DbResult<Fen> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| format!("negative {what} in the database"))
}

/// An amount to store.
pub fn fen_column(f: Fen) -> i64 {
    i64::try_from(f.as_u64()).unwrap_or(i64::MAX)
}

const ORDER_COLUMNS: &str = "order_no, inner_code, sku_id, sku_name, slot_no, amount, channel, method, open_id, status, \
     payment_id, pay_action, lock_token, refund_no, reason, created_at, updated_at, paid_at, vend_at, ended_at";

fn order_from(r: &AnyRow) -> DbResult<Order> {
    let status: String = r.try_get("status").map_err(e)?;
    Ok(Order {
        order_no: r.try_get("order_no").map_err(e)?,
        inner_code: r.try_get("inner_code").map_err(e)?,
        sku_id: r.try_get("sku_id").map_err(e)?,
        sku_name: r.try_get("sku_name").map_err(e)?,
        slot_no: r.try_get("slot_no").map_err(e)?,
        amount: fen(r.try_get("amount").map_err(e)?, "amount")?,
        channel: r.try_get("channel").map_err(e)?,
        method: {
            let method: String = r.try_get("method").map_err(e)?;
            PayMethod::parse(&method).ok_or_else(|| format!("unknown pay method {method:?}"))?
        },
        open_id: r.try_get("open_id").map_err(e)?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| format!("unknown order status {status:?}"))?,
        payment_id: r.try_get("payment_id").map_err(e)?,
        pay_action: r.try_get("pay_action").map_err(e)?,
        lock_token: r.try_get("lock_token").map_err(e)?,
        refund_no: r.try_get("refund_no").map_err(e)?,
        reason: r.try_get("reason").map_err(e)?,
        created_at: r.try_get("created_at").map_err(e)?,
        updated_at: r.try_get("updated_at").map_err(e)?,
        paid_at: r.try_get("paid_at").map_err(e)?,
        vend_at: r.try_get("vend_at").map_err(e)?,
        ended_at: r.try_get("ended_at").map_err(e)?,
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

/// The vending database.
#[derive(Debug, Clone)]
pub struct VendingDb {
    store: SqlStore,
}

impl VendingDb {
    /// The vending tables next to `store`'s, migrated (and seeded on first start).
    pub async fn new(store: SqlStore) -> DbResult<Self> {
        store
            .migrate_tables(
                "vending_migrations",
                &[
                    (1, "machines, skus, slots, orders", SCHEMA_V1),
                    (2, "demo machines", SEED_V2),
                ],
            )
            .await
            .map_err(e)?;
        Ok(VendingDb { store })
    }

    fn q(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        self.store.query_text(sql)
    }

    /// Every machine.
    pub async fn machines(&self) -> DbResult<Vec<Machine>> {
        let rows = sqlx::query(self.q(&format!("SELECT {MACHINE_COLUMNS} FROM vm_machines")))
            .fetch_all(self.store.pool())
            .await
            .map_err(e)?;
        rows.iter().map(machine_from).collect()
    }

    /// One machine.
    pub async fn machine(&self, inner_code: &str) -> DbResult<Option<Machine>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {MACHINE_COLUMNS} FROM vm_machines WHERE inner_code = ?"
        )))
        .bind(inner_code.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(machine_from).transpose()
    }

    /// The machine's slots that still hold something, with their SKUs: one query.
    pub async fn stocked_slots(&self, inner_code: &str) -> DbResult<Vec<SlotSku>> {
        let rows = sqlx::query(self.q(
            "SELECT s.slot_no, s.sku_id, k.name, k.image, k.unit, s.price, s.capacity \
             FROM vm_slots s JOIN vm_skus k ON k.sku_id = s.sku_id \
             WHERE s.inner_code = ? AND s.capacity > 0",
        ))
        .bind(inner_code.to_owned())
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        rows.iter()
            .map(|r| {
                Ok(SlotSku {
                    slot_no: r.try_get("slot_no").map_err(e)?,
                    sku_id: r.try_get("sku_id").map_err(e)?,
                    name: r.try_get("name").map_err(e)?,
                    image: r.try_get("image").map_err(e)?,
                    unit: r.try_get("unit").map_err(e)?,
                    price: fen(r.try_get("price").map_err(e)?, "price")?,
                    capacity: r.try_get("capacity").map_err(e)?,
                })
            })
            .collect()
    }

    /// Records a new order (CREATED).
    pub async fn insert_order(&self, o: &Order) -> DbResult<()> {
        sqlx::query(self.q(&format!(
            "INSERT INTO vm_orders ({ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
        .bind(o.status.as_str())
        .bind(o.payment_id.clone())
        .bind(o.pay_action.clone())
        .bind(o.lock_token.clone())
        .bind(o.refund_no.clone())
        .bind(o.reason.clone())
        .bind(o.created_at)
        .bind(o.updated_at)
        .bind(o.paid_at)
        .bind(o.vend_at)
        .bind(o.ended_at)
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// An order.
    pub async fn order(&self, order_no: &str) -> DbResult<Option<Order>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE order_no = ?"
        )))
        .bind(order_no.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
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
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        rows.iter().map(order_from).collect()
    }

    /// The newest orders.
    pub async fn recent_orders(&self, limit: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders ORDER BY created_at DESC, order_no DESC LIMIT ?"
        )))
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
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
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        rows.iter().map(order_from).collect()
    }

    /// Orders whose refund is due but not done, last changed at or before `before`.
    pub async fn refunds_due(&self, before: i64, limit: i64) -> DbResult<Vec<Order>> {
        let rows = sqlx::query(self.q(&format!(
            "SELECT {ORDER_COLUMNS} FROM vm_orders WHERE (refund_no IS NOT NULL OR status = 'VEND_FAILED') \
             AND status <> 'REFUNDED' \
             AND updated_at <= ? ORDER BY updated_at LIMIT ?"
        )))
        .bind(before)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(e)?;
        rows.iter().map(order_from).collect()
    }

    /// How many orders are in each status.
    pub async fn count_by_status(&self) -> DbResult<Vec<(String, i64)>> {
        let rows =
            sqlx::query(self.q("SELECT status, COUNT(*) AS n FROM vm_orders GROUP BY status"))
                .fetch_all(self.store.pool())
                .await
                .map_err(e)?;
        rows.iter()
            .map(|r| Ok((r.try_get("status").map_err(e)?, r.try_get("n").map_err(e)?)))
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
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(e)
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
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// VENDING → COMPLETED and one item fewer in the slot, in one transaction; `Ok(false)` if
    /// the order was not VENDING.
    pub async fn complete(&self, order: &Order, now: i64) -> DbResult<bool> {
        let mut tx = self.store.pool().begin().await.map_err(e)?;
        let r = sqlx::query(self.q(
            "UPDATE vm_orders SET status = 'COMPLETED', updated_at = ?, ended_at = ? WHERE order_no = ? AND status = 'VENDING'",
        ))
        .bind(now)
        .bind(now)
        .bind(order.order_no.clone())
        .execute(&mut *tx)
        .await
        .map_err(e)?;
        if r.rows_affected() != 1 {
            tx.rollback().await.map_err(e)?;
            return Ok(false);
        }
        sqlx::query(self.q("UPDATE vm_slots SET capacity = capacity - 1 WHERE inner_code = ? AND slot_no = ? AND capacity > 0"))
            .bind(order.inner_code.clone())
            .bind(order.slot_no.clone())
            .execute(&mut *tx)
            .await
            .map_err(e)?;
        tx.commit().await.map_err(e)?;
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
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        self.order(order_no)
            .await?
            .and_then(|o| o.refund_no)
            .ok_or_else(|| format!("order {order_no} vanished"))
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
        .execute(self.store.pool())
        .await
        .map_err(e)?;
        Ok(r.rows_affected() == 1)
    }

    /// Forgets the machine lock's token once it was released.
    pub async fn clear_lock(&self, order_no: &str) -> DbResult<()> {
        sqlx::query(self.q("UPDATE vm_orders SET lock_token = NULL WHERE order_no = ?"))
            .bind(order_no.to_owned())
            .execute(self.store.pool())
            .await
            .map(|_| ())
            .map_err(e)
    }

    /// Items left in a machine's slot (tests and the dashboard).
    pub async fn slot_capacity(&self, inner_code: &str, slot_no: &str) -> DbResult<Option<i64>> {
        let row = sqlx::query(
            self.q("SELECT capacity FROM vm_slots WHERE inner_code = ? AND slot_no = ?"),
        )
        .bind(inner_code.to_owned())
        .bind(slot_no.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.map(|r| r.try_get("capacity").map_err(e)).transpose()
    }
}
