//! The order service: every step of an order's life, each safe to repeat.
//!
//! ```text
//! CREATED ──paid──▶ PAID ──vend-out sent──▶ VENDING ──item out──▶ COMPLETED
//!    │                                          └──failed / no answer──▶ VEND_FAILED ──▶ REFUNDED
//!    ├──timeout──▶ INVALID ──paid anyway──▶ (refund) ──▶ REFUNDED
//!    └──cancel───▶ CANCELLED ──paid anyway──▶ (refund) ──▶ REFUNDED
//! ```
//!
//! Every change is a compare-and-set on the status (a duplicate event or a race changes
//! nothing), the machine lock is taken before the payment exists and released when the order
//! leaves CREATED / PAID / VENDING, and money that arrives for an order that cannot vend is
//! refunded. The sweep repairs what a crash interrupted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aggregate_pay::lock::{LockGuard, LockManager};
use aggregate_pay::{Error, Fen, NewPayment, PayMethod, PaymentId, Payments, RefundStatus};
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::db::{Order, OrderStatus, Stamp, VendingDb};
use super::delays::{Delays, DueHandler, DueJob, DueKind, Wait};
use super::machines::{MachineLink, VendCommand, VendResult};
use super::metrics::Metrics;
use crate::error::AppError;

/// What the service needs to know.
#[derive(Debug, Clone)]
pub struct OrderSettings {
    /// Base of notify URLs.
    pub public_url: String,
    /// How long an unpaid order holds its machine.
    pub order_timeout: Duration,
    /// How long a machine has to vend.
    pub vend_timeout: Duration,
    /// "Payment received" template id.
    pub template_paid: String,
    /// "Refunded" template id.
    pub template_refunded: String,
}

/// The WeChat apps buyers use: the Official Account (web login, JSAPI, template messages) and
/// the Mini Program (`jscode2session`, Mini Program payments, subscribe messages).
#[derive(Debug, Clone, Default)]
pub struct BuyerApps {
    /// The Official Account, when configured.
    pub official: Option<wechat_mp::Client>,
    /// The Mini Program, when configured.
    pub mini: Option<wechat_mp::Client>,
}

/// A new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The machine.
    pub inner_code: String,
    /// The SKU.
    pub sku_id: i64,
    /// A registered channel's id (`wechat`, `wechat_mini`, `alipay`, `sandbox`…).
    pub channel: Option<String>,
    /// A pay method (default: the channel's for the context: Mini Program with a `js_code`,
    /// JSAPI with an openid, else its scan-to-pay method).
    pub method: Option<String>,
    /// The buyer (WeChat).
    pub open_id: Option<String>,
    /// A Mini Program login code, exchanged for the buyer's openid.
    pub js_code: Option<String>,
}

/// The order service.
#[derive(Debug)]
pub struct OrderService {
    db: VendingDb,
    payments: Payments,
    locks: Arc<dyn LockManager>,
    machines: Arc<dyn MachineLink>,
    delays: Arc<dyn Delays>,
    buyers: BuyerApps,
    settings: OrderSettings,
    feed: broadcast::Sender<String>,
    metrics: Arc<Metrics>,
    /// When each vend-out in flight was sent (for the latency metric).
    sent: Mutex<HashMap<String, Instant>>,
}

fn now() -> i64 {
    crate::platform::unix_now()
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::internal(e)
}

fn lock_key(inner_code: &str) -> String {
    format!("vm:{inner_code}")
}

impl OrderService {
    /// The service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: VendingDb,
        payments: Payments,
        locks: Arc<dyn LockManager>,
        machines: Arc<dyn MachineLink>,
        delays: Arc<dyn Delays>,
        buyers: BuyerApps,
        settings: OrderSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (feed, _) = broadcast::channel(256);
        OrderService {
            db,
            payments,
            locks,
            machines,
            delays,
            buyers,
            settings,
            feed,
            metrics,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// The database.
    pub fn db(&self) -> &VendingDb {
        &self.db
    }

    /// The payments.
    pub fn payments(&self) -> &Payments {
        &self.payments
    }

    /// Live order changes (JSON), for the seller dashboard.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.feed.subscribe()
    }

    /// The JSON of an order as the API shows it.
    pub fn view(order: &Order) -> Value {
        let mut v = serde_json::to_value(order).unwrap_or(Value::Null);
        v["pay"] = order
            .pay_action
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .unwrap_or(Value::Null);
        v
    }

    async fn publish(&self, order_no: &str) {
        match self.db.order(order_no).await {
            Ok(Some(order)) => {
                let _ = self
                    .feed
                    .send(json!({"type": "order", "order": Self::view(&order)}).to_string());
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "order not published"),
        }
    }

    /// Creates an order: the machine's lock first (busy → 409 `MACHINE_BUSY`, no payment), then
    /// the order, then the payment at the channel.
    pub async fn create(&self, req: NewOrder) -> Result<Order, AppError> {
        let machine = self
            .db
            .machine(&req.inner_code)
            .await
            .map_err(internal)?
            .ok_or_else(|| AppError::not_found("MACHINE_NOT_FOUND", "no such machine"))?;
        if machine.status != "ONLINE" {
            return Err(AppError::conflict(
                "MACHINE_OFFLINE",
                "the machine is offline",
            ));
        }
        // Which channel and method, from the channels' ids and declared methods: a Mini
        // Program login code means a Mini Program payment, a known buyer a JSAPI one, otherwise
        // the channel's scan-to-pay method. Test money in live mode and unconfigured providers
        // are refused here, before the machine is locked.
        let preferred: &[PayMethod] = match (&req.js_code, &req.open_id) {
            (Some(_), _) => &[PayMethod::WechatMiniProgram],
            (None, Some(_)) => &[PayMethod::WechatJsapi],
            (None, None) => &[],
        };
        let (channel, method) = crate::providers::resolve(
            self.payments.channels(),
            req.channel.as_deref(),
            req.method.as_deref(),
            preferred,
        )?
        .ok_or_else(|| {
            AppError::bad_request("CHANNEL_REQUIRED", "say which channel (or method) pays")
        })?;
        let slot = self
            .db
            .stocked_slots(&req.inner_code)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|s| s.sku_id == req.sku_id)
            .min_by_key(|s| (s.price, -s.capacity))
            .ok_or_else(|| {
                AppError::conflict("SOLD_OUT", "this item is sold out in this machine")
            })?;
        let mut open_id = req.open_id.clone();
        if let Some(code) = &req.js_code {
            let mp = self.buyers.mini.as_ref().ok_or_else(|| {
                AppError::unprocessable("LOGIN_UNAVAILABLE", "no Mini Program configured")
            })?;
            let session = mp
                .code_to_session(code)
                .await
                .map_err(|e| AppError::bad_request("JS_CODE_INVALID", e.to_string()))?;
            open_id = Some(session.openid);
        }
        if method.needs_open_id() && open_id.is_none() {
            return Err(AppError::bad_request(
                "OPEN_ID_REQUIRED",
                "this pay method needs the buyer's open_id",
            ));
        }

        // The machine vends one item at a time: its lock lives as long as the order can.
        let ttl =
            self.settings.order_timeout + self.settings.vend_timeout + Duration::from_secs(120);
        let guard = self
            .locks
            .acquire(&lock_key(&req.inner_code), ttl)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                AppError::conflict(
                    "MACHINE_BUSY",
                    "someone else is buying at this machine; try again shortly",
                )
            })?;

        let created_at = now();
        let order = Order {
            order_no: format!(
                "V{}{}",
                time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
                crate::platform::random_hex(4)
            ),
            inner_code: req.inner_code.clone(),
            sku_id: slot.sku_id,
            sku_name: slot.name.clone(),
            slot_no: slot.slot_no.clone(),
            amount: slot.price,
            channel: channel.id().to_owned(),
            method: method.as_str().to_owned(),
            open_id: open_id.clone(),
            status: OrderStatus::Created,
            payment_id: None,
            pay_action: None,
            lock_token: Some(guard.token.clone()),
            refund_no: None,
            reason: None,
            created_at,
            updated_at: created_at,
            paid_at: None,
            vend_at: None,
            ended_at: None,
        };
        if let Err(e) = self.db.insert_order(&order).await {
            let _ = self.locks.release(&guard).await;
            return Err(internal(e));
        }

        let mut payment = NewPayment::new(
            order.order_no.clone(),
            Fen::new(u64::try_from(order.amount).unwrap_or_default()),
            format!("{} ({})", order.sku_name, order.inner_code),
            method,
            crate::notify::payment_url(&self.settings.public_url, channel.id()),
        )
        .metadata(json!({"order_no": order.order_no}));
        if let Some(o) = &open_id {
            payment = payment.open_id(o.clone());
        }
        if let Ok(at) = time::OffsetDateTime::from_unix_timestamp(
            created_at + i64::try_from(self.settings.order_timeout.as_secs()).unwrap_or(600),
        ) {
            payment = payment.expires_at(at);
        }
        let (payment, action) = match self.payments.create(payment).await {
            Ok(created) => created,
            Err(e) => {
                // No payment: the order ends here and the machine is free again.
                tracing::warn!(order = %order.order_no, error = %e, "payment not created");
                self.end(
                    &order,
                    OrderStatus::Created,
                    OrderStatus::Invalid,
                    Some("the payment could not be created"),
                )
                .await?;
                return Err(e.into());
            }
        };
        let action = serde_json::to_string(&action).map_err(internal)?;
        self.db
            .set_payment(&order.order_no, &payment.id.0, &action, now())
            .await
            .map_err(internal)?;
        self.delays
            .schedule(
                DueJob {
                    kind: DueKind::OrderTimeout,
                    order_no: order.order_no.clone(),
                },
                Wait::Order,
            )
            .await
            .unwrap_or_else(|e| tracing::warn!(error = %e, "order timeout not scheduled; the sweep will close it"));
        self.publish(&order.order_no).await;
        self.db
            .order(&order.order_no)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("an order vanished"))
    }

    /// An order.
    pub async fn get(&self, order_no: &str) -> Result<Order, AppError> {
        self.db
            .order(order_no)
            .await
            .map_err(internal)?
            .ok_or_else(|| AppError::not_found("ORDER_NOT_FOUND", "no such order"))
    }

    /// Compare-and-set of the order's status, stamping `stamp`; whether it moved.
    async fn step(
        &self,
        order_no: &str,
        from: OrderStatus,
        to: OrderStatus,
        stamp: Stamp<'_>,
    ) -> Result<bool, AppError> {
        self.db
            .transition(order_no, from, to, now(), stamp)
            .await
            .map_err(internal)
    }

    /// Moves `order` from `from` to an ending status and frees its machine.
    async fn end(
        &self,
        order: &Order,
        from: OrderStatus,
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<bool, AppError> {
        let moved = self
            .step(
                &order.order_no,
                from,
                to,
                Stamp {
                    ended: true,
                    reason,
                    ..Stamp::default()
                },
            )
            .await?;
        if moved {
            self.release(order).await;
            self.publish(&order.order_no).await;
        }
        Ok(moved)
    }

    async fn release(&self, order: &Order) {
        let Some(token) = &order.lock_token else {
            return;
        };
        let guard = LockGuard {
            key: lock_key(&order.inner_code),
            token: token.clone(),
        };
        match self.locks.release(&guard).await {
            Ok(_) => {
                if let Err(e) = self.db.clear_lock(&order.order_no).await {
                    tracing::warn!(error = %e, "lock token not cleared");
                }
            }
            // It expires by itself; the machine is busy until then.
            Err(e) => {
                tracing::error!(order = %order.order_no, error = %e, "machine lock not released")
            }
        }
    }

    /// Closes an unpaid order's payment and ends the order in `to` (INVALID or CANCELLED).
    /// `Ok(false)` if it was paid meanwhile (the payment event takes it from there).
    async fn close_unpaid(
        &self,
        order: &Order,
        to: OrderStatus,
        reason: &str,
    ) -> Result<bool, AppError> {
        if let Some(id) = &order.payment_id {
            match self.payments.close(&PaymentId(id.clone())).await {
                Ok(_) => {}
                Err(Error::InvalidState { status, .. }) if status.is_paid() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        self.end(order, OrderStatus::Created, to, Some(reason))
            .await
    }

    /// The buyer cancels an unpaid order.
    pub async fn cancel(&self, order_no: &str) -> Result<Order, AppError> {
        let order = self.get(order_no).await?;
        match order.status {
            OrderStatus::Created => {}
            OrderStatus::Cancelled => return Ok(order),
            OrderStatus::Invalid => {
                return Err(AppError::conflict(
                    "ORDER_NOT_CANCELLABLE",
                    "the order already ended (not paid in time)",
                ));
            }
            // Paid (whatever happened since): the item or a refund is on its way.
            other => {
                return Err(AppError::conflict(
                    "ORDER_PAID",
                    format!(
                        "the order was paid ({}); it cannot be cancelled",
                        other.as_str()
                    ),
                ));
            }
        }
        if !self
            .close_unpaid(&order, OrderStatus::Cancelled, "cancelled by the buyer")
            .await?
        {
            return Err(AppError::conflict(
                "ORDER_PAID",
                "the order was paid; it cannot be cancelled",
            ));
        }
        self.get(order_no).await
    }

    /// The order's payment window ended.
    pub async fn on_order_timeout(&self, order_no: &str) -> Result<(), AppError> {
        let order = self.get(order_no).await?;
        if order.status == OrderStatus::Created {
            self.close_unpaid(&order, OrderStatus::Invalid, "not paid in time")
                .await?;
        }
        Ok(())
    }

    /// The payment arrived (payment event): vend, or refund an order that can no longer vend.
    pub async fn on_paid(&self, order_no: &str) -> Result<(), AppError> {
        let order = self.get(order_no).await?;
        match order.status {
            OrderStatus::Created => {
                let moved = self
                    .step(
                        order_no,
                        OrderStatus::Created,
                        OrderStatus::Paid,
                        Stamp {
                            paid: true,
                            ..Stamp::default()
                        },
                    )
                    .await?;
                if moved {
                    self.publish(order_no).await;
                    self.notify_buyer(&order, true).await;
                }
                self.vend(order_no).await
            }
            OrderStatus::Paid => self.vend(order_no).await,
            OrderStatus::Invalid | OrderStatus::Cancelled => {
                // Paid at the last second: the machine is gone, the money goes back.
                tracing::warn!(order = order_no, "payment for an ended order; refunding");
                self.refund(&order, "paid after the order ended").await
            }
            // Already handled (a duplicate event).
            _ => Ok(()),
        }
    }

    /// PAID → VENDING and the vend-out command (once, whoever gets here first).
    async fn vend(&self, order_no: &str) -> Result<(), AppError> {
        let moved = self
            .step(
                order_no,
                OrderStatus::Paid,
                OrderStatus::Vending,
                Stamp {
                    vend: true,
                    ..Stamp::default()
                },
            )
            .await?;
        if !moved {
            return Ok(());
        }
        let order = self.get(order_no).await?;
        self.publish(order_no).await;
        self.delays
            .schedule(
                DueJob {
                    kind: DueKind::VendTimeout,
                    order_no: order_no.to_owned(),
                },
                Wait::Vend,
            )
            .await
            .unwrap_or_else(|e| tracing::warn!(error = %e, "vend timeout not scheduled; the sweep will check it"));
        let command = VendCommand {
            order_no: order.order_no.clone(),
            inner_code: order.inner_code.clone(),
            sku_id: order.sku_id,
            slot_no: order.slot_no.clone(),
            timeout_secs: self.settings.vend_timeout.as_secs(),
            requested_at_ms: i64::try_from(
                time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
            )
            .unwrap_or(0),
        };
        self.in_flight().insert(order_no.to_owned(), Instant::now());
        self.metrics.vend_command();
        if let Err(e) = self.machines.vend_out(&command).await {
            tracing::error!(order = order_no, error = %e, "vend-out not sent");
            return self
                .vend_failed(&order, "the vend-out command could not be sent")
                .await;
        }
        Ok(())
    }

    /// A machine answered.
    pub async fn on_vend_result(&self, result: &VendResult) -> Result<(), AppError> {
        let order = self.get(&result.order_no).await?;
        if order.status != OrderStatus::Vending {
            if result.success && order.status == OrderStatus::VendFailed {
                tracing::error!(order = %order.order_no, "the machine vended after the order failed; it was refunded");
            }
            return Ok(());
        }
        let sent = self.in_flight().remove(&order.order_no);
        match (sent, order.vend_at) {
            (Some(at), _) => self.metrics.vend_latency(at.elapsed()),
            // Sent before a restart: only the database's second is known.
            (None, Some(at)) => self
                .metrics
                .vend_latency(Duration::from_secs(u64::try_from(now() - at).unwrap_or(0))),
            (None, None) => {}
        }
        if result.success {
            if self.db.complete(&order, now()).await.map_err(internal)? {
                self.release(&order).await;
                self.publish(&order.order_no).await;
            }
            Ok(())
        } else {
            let reason = result
                .error
                .clone()
                .unwrap_or_else(|| "the machine failed".into());
            self.vend_failed(&order, &reason).await
        }
    }

    /// The machine's vend window ended without an answer.
    pub async fn on_vend_timeout(&self, order_no: &str) -> Result<(), AppError> {
        let order = self.get(order_no).await?;
        if order.status == OrderStatus::Vending {
            self.vend_failed(&order, "the machine did not answer in time")
                .await?;
        }
        Ok(())
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn vend_failed(&self, order: &Order, reason: &str) -> Result<(), AppError> {
        self.in_flight().remove(&order.order_no);
        if self
            .end(
                order,
                OrderStatus::Vending,
                OrderStatus::VendFailed,
                Some(reason),
            )
            .await?
        {
            let order = self.get(&order.order_no).await?;
            self.refund(&order, reason).await?;
        }
        Ok(())
    }

    /// Refunds the whole order (idempotent by the order's refund number).
    async fn refund(&self, order: &Order, reason: &str) -> Result<(), AppError> {
        let Some(payment_id) = &order.payment_id else {
            return Ok(());
        };
        let refund_no = self
            .db
            .mark_refund_due(
                &order.order_no,
                &format!("R{}", &order.order_no),
                reason,
                now(),
            )
            .await
            .map_err(internal)?;
        let notify_url = self
            .payments
            .channels()
            .get(&order.channel)
            .and_then(|c| crate::notify::refund_url(&self.settings.public_url, c.as_ref()));
        let refund = self
            .payments
            .refund(
                &PaymentId(payment_id.clone()),
                &refund_no,
                Fen::new(u64::try_from(order.amount).unwrap_or_default()),
                Some(reason.to_owned()),
                notify_url,
            )
            .await?;
        if refund.status == RefundStatus::Succeeded {
            // The refund event says so too; whichever comes first marks the order.
            self.on_refunded(&order.order_no).await?;
        }
        Ok(())
    }

    /// The money went back (refund event).
    pub async fn on_refunded(&self, order_no: &str) -> Result<(), AppError> {
        let order = self.get(order_no).await?;
        if self.db.refunded(order_no, now()).await.map_err(internal)? {
            self.publish(order_no).await;
            self.notify_buyer(&order, false).await;
        }
        Ok(())
    }

    /// A message to the buyer, paid or refunded, from the app the buyer paid in: a subscribe
    /// message in the Mini Program, a template message from the Official Account. Best effort.
    async fn notify_buyer(&self, order: &Order, paid: bool) {
        let Some(open_id) = &order.open_id else {
            return;
        };
        let in_mini_program = order.method == PayMethod::WechatMiniProgram.as_str();
        let amount = Fen::new(u64::try_from(order.amount).unwrap_or_default()).to_yuan_string();
        let (template, first) = if paid {
            (
                &self.settings.template_paid,
                "Payment received, your item is on its way",
            )
        } else {
            (&self.settings.template_refunded, "Your money was refunded")
        };
        let item = format!("{} ¥{amount}", order.sku_name);
        let sent = match (in_mini_program, &self.buyers.mini, &self.buyers.official) {
            (true, Some(mini), _) => {
                let message = wechat_mp::SubscribeMessage::new(open_id.clone(), template.clone())
                    .field("keyword1", order.order_no.clone())
                    .field("keyword2", item)
                    .field("remark", first);
                mini.send_subscribe(&message).await
            }
            (false, _, Some(official)) => {
                let message = wechat_mp::TemplateMessage::new(open_id.clone(), template.clone())
                    .field("first", first)
                    .field("keyword1", order.order_no.clone())
                    .field("keyword2", item)
                    .field("remark", order.inner_code.clone());
                official.send_template(&message).await.map(|_| ())
            }
            // The app the buyer paid in is not configured: nobody to send it.
            _ => return,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "buyer message not sent");
        }
    }

    /// Repairs what a restart or a lost message left behind: unpaid orders past their window,
    /// paid orders never vended, vends nobody answered, refunds not completed.
    pub async fn sweep(&self) -> Result<(), AppError> {
        let t = now();
        let order_timeout =
            i64::try_from(self.settings.order_timeout.as_secs()).unwrap_or(i64::MAX);
        let vend_timeout = i64::try_from(self.settings.vend_timeout.as_secs()).unwrap_or(i64::MAX);
        for o in self
            .db
            .orders_in(OrderStatus::Created, t - order_timeout, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.on_order_timeout(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e.message, "sweep: timeout not applied");
            }
        }
        for o in self
            .db
            .orders_in(OrderStatus::Paid, t - 10, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.vend(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e.message, "sweep: vend not sent");
            }
        }
        for o in self
            .db
            .orders_in(OrderStatus::Vending, t - vend_timeout, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.on_vend_timeout(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e.message, "sweep: vend timeout not applied");
            }
        }
        for o in self.db.refunds_due(t - 30, 200).await.map_err(internal)? {
            let reason = o.reason.clone().unwrap_or_else(|| "refund".into());
            if let Err(e) = self.refund(&o, &reason).await {
                tracing::warn!(order = %o.order_no, error = %e.message, "sweep: refund not done");
            }
        }
        Ok(())
    }

    /// The order a payment belongs to.
    pub fn order_of_payment(payment: &Value) -> Option<&str> {
        payment["metadata"]["order_no"].as_str()
    }
}

#[async_trait::async_trait]
impl DueHandler for OrderService {
    async fn on_due(&self, job: &DueJob) -> Result<(), String> {
        let result = match job.kind {
            DueKind::OrderTimeout => self.on_order_timeout(&job.order_no).await,
            DueKind::VendTimeout => self.on_vend_timeout(&job.order_no).await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.status == StatusCode::NOT_FOUND => Ok(()),
            Err(e) => Err(format!("{}: {}", e.code, e.message)),
        }
    }
}
