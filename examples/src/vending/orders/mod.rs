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
//!
//! - `create` — a new order (one open order per buyer; the machine's lock before the payment)
//!   and cancelling one.
//! - `scan` — a machine scanned a buyer's payment code: an order charged by the code, vended
//!   once paid.
//! - `seller` — a seller's refund of a completed order, all or part.
//! - `steps` — paid, vend-out, the machine's answer or silence, refunds, the buyer's messages.
//! - `sweep` — repairs after a restart or a lost message.
//! - [`OrderError`] — what a step fails with, in the order's terms (the routes map it to HTTP).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregate_pay::lock::{LockGuard, LockManager};
use aggregate_pay::{Error, PaymentId, Payments};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::feed::{Feed, FeedEvent};

use super::db::{BuyerApp, Order, OrderStatus, Stamp, VendingDb};
use super::delays::{Delays, DueError, DueHandler, DueJob, DueKind};
use super::machines::MachineLink;
use super::metrics::Metrics;

mod create;
mod error;
mod scan;
mod seller;
mod steps;
mod sweep;

pub use error::OrderError;
pub use scan::scan_order_no;

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

/// The apps buyers log in with: WeChat's Official Account (web login, JSAPI, template messages)
/// and Mini Program (`jscode2session`, Mini Program payments, subscribe messages), and the Alipay
/// app (its Mini Program's auth code, `alipay.trade.create` payments).
#[derive(Debug, Clone, Default)]
pub struct BuyerApps {
    /// The Official Account, when configured.
    pub official: Option<wechat_mp::Client>,
    /// The Mini Program, when configured.
    pub mini: Option<wechat_mp::Client>,
    /// The Alipay app, when configured.
    pub alipay: Option<alipay::Client>,
}

impl BuyerApps {
    /// Whether any buyer can log in.
    pub fn any(&self) -> bool {
        self.official.is_some() || self.mini.is_some() || self.alipay.is_some()
    }
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
    /// A pay method (default: the channel's for the buyer's app: a Mini Program payment for a
    /// Mini Program buyer, JSAPI for an Official Account one, else its scan-to-pay method).
    pub method: Option<String>,
    /// Who buys (from their session, never from the request).
    pub buyer: OrderBuyer,
}

/// The buyer of an order, as their session proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBuyer {
    /// Their openid (a demo buyer's made-up one).
    pub open_id: String,
    /// The app that vouched for it.
    pub app: BuyerApp,
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
    feed: Feed,
    metrics: Arc<Metrics>,
    /// When each vend-out in flight was sent (for the latency metric).
    sent: Mutex<HashMap<String, Instant>>,
}

fn now() -> i64 {
    crate::clock::unix_now()
}

fn internal(e: impl std::fmt::Display) -> OrderError {
    OrderError::Storage(e.to_string())
}

fn lock_key(inner_code: &str) -> String {
    format!("vm:{inner_code}")
}

fn buyer_lock_key(open_id: &str) -> String {
    format!("buyer:{open_id}")
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
        feed: Feed,
    ) -> Self {
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

    /// Live order changes, for the seller dashboards (of every instance).
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.feed.subscribe()
    }

    /// The feed (tests remove its exchange).
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// The JSON of an order as the API shows it.
    pub fn view(order: &Order) -> Value {
        let mut v = serde_json::to_value(order).unwrap_or(Value::Null);
        v["pay"] = order
            .pay_action
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .unwrap_or(Value::Null);
        // Refunds that need the seller (ABNORMAL), with what to do.
        v["refund_issues"] = order
            .refund_issue
            .as_deref()
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .unwrap_or(Value::Array(Vec::new()));
        v
    }

    /// Sends an abnormal refund of the seller's `order` another way (see
    /// `aggregate_pay::Payments::resolve_abnormal_refund`): the refund must be one of the order's.
    pub async fn resolve_abnormal_refund(
        &self,
        order: &Order,
        out_refund_no: &str,
        to: &aggregate_pay::channels::AbnormalRefundResolution,
    ) -> Result<aggregate_pay::Refund, OrderError> {
        let refund = self.payments.get_refund(out_refund_no).await?;
        if order.payment_id.as_deref() != Some(refund.payment_id.0.as_str()) {
            return Err(OrderError::Payment(Error::RefundNotFound(
                out_refund_no.to_owned(),
            )));
        }
        let refund = self
            .payments
            .resolve_abnormal_refund(out_refund_no, to)
            .await?;
        self.refresh_refund_issue(&order.order_no).await?;
        Ok(refund)
    }

    pub(super) async fn publish(&self, order_no: &str) {
        match self.db.order(order_no).await {
            Ok(Some(order)) => {
                self.feed
                    .publish(FeedEvent {
                        inner_code: order.inner_code.clone(),
                        seller: order.seller.clone(),
                        message: json!({"type": "order", "order": Self::view(&order)}).to_string(),
                    })
                    .await;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "order not published"),
        }
    }

    /// An order.
    pub async fn get(&self, order_no: &str) -> Result<Order, OrderError> {
        self.db
            .order(order_no)
            .await
            .map_err(internal)?
            .ok_or(OrderError::OrderNotFound)
    }

    /// Compare-and-set of the order's status, stamping `stamp`; whether it moved.
    pub(super) async fn step(
        &self,
        order_no: &str,
        from: OrderStatus,
        to: OrderStatus,
        stamp: Stamp<'_>,
    ) -> Result<bool, OrderError> {
        let moved = self
            .db
            .transition(order_no, from, to, now(), stamp)
            .await
            .map_err(internal)?;
        if moved && !to.is_open() {
            self.metrics.order_ended(to);
        }
        Ok(moved)
    }

    /// Moves `order` from `from` to an ending status and frees its machine.
    pub(super) async fn end(
        &self,
        order: &Order,
        from: OrderStatus,
        to: OrderStatus,
        reason: Option<&str>,
    ) -> Result<bool, OrderError> {
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

    pub(super) async fn release(&self, order: &Order) {
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
    pub(super) async fn close_unpaid(
        &self,
        order: &Order,
        to: OrderStatus,
        reason: &str,
    ) -> Result<bool, OrderError> {
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

    /// Where the channel of `order` sends refund notifications (for channels that send them).
    pub(super) fn refund_notify_url(&self, order: &Order) -> Option<String> {
        self.payments
            .channels()
            .get(&order.channel)
            .and_then(|c| crate::notify::refund_url(&self.settings.public_url, c.as_ref()))
    }
}

#[async_trait::async_trait]
impl DueHandler for OrderService {
    async fn on_due(&self, job: &DueJob) -> Result<(), DueError> {
        let result = match job.kind {
            DueKind::OrderTimeout => self.on_order_timeout(&job.order_no).await,
            DueKind::VendTimeout => self.on_vend_timeout(&job.order_no).await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(OrderError::OrderNotFound) => Ok(()),
            Err(e) => Err(DueError(e.into())),
        }
    }
}
