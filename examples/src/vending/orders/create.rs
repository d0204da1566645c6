//! Creating an order (the machine's lock before the payment) and the buyer cancelling one.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::{Fen, NewPayment, PayMethod, PaymentChannel};

use super::super::db::{BuyerApp, MachineStatus, Order, OrderStatus, SlotSku};
use super::super::delays::{DueJob, DueKind, Wait};
use super::{NewOrder, OrderError, OrderService, buyer_lock_key, internal, lock_key, now};

/// What a buyer's order will sell: checked before the machine is locked.
struct Sale {
    /// The machine's owner (the order's seller).
    seller: Option<String>,
    /// The channel that takes the money.
    channel: Arc<dyn PaymentChannel>,
    /// How the buyer pays.
    method: PayMethod,
    /// The buyer's openid, when the method pays in the buyer's app.
    payer_open_id: Option<String>,
    /// The slot it comes from (the cheapest stocked one of the SKU).
    slot: SlotSku,
}

impl OrderService {
    /// Creates an order: the buyer's open order refused (409 `ORDER_OPEN`), then the machine's
    /// lock (busy → 409 `MACHINE_BUSY`, no payment), the order, the payment at the channel.
    pub async fn create(&self, req: NewOrder) -> Result<Order, OrderError> {
        // One order at a time per buyer: a buyer cannot hold several machines, and two requests
        // of one buyer racing each other create one order.
        let buyer_guard = self
            .locks
            .acquire(&buyer_lock_key(&req.buyer.open_id), Duration::from_secs(30))
            .await
            .map_err(internal)?
            .ok_or(OrderError::OrderOpen(None))?;
        let created = self.create_for_buyer(req).await;
        if let Err(e) = self.locks.release(&buyer_guard).await {
            tracing::warn!(error = %e, "buyer lock not released; it expires by itself");
        }
        created
    }

    async fn create_for_buyer(&self, req: NewOrder) -> Result<Order, OrderError> {
        let sale = self.sale(&req).await?;
        // The machine vends one item at a time: its lock lives as long as the order can.
        let ttl =
            self.settings.order_timeout + self.settings.vend_timeout + Duration::from_secs(120);
        let guard = self
            .locks
            .acquire(&lock_key(&req.inner_code), ttl)
            .await
            .map_err(internal)?
            .ok_or(OrderError::MachineBusy)?;

        let created_at = now();
        let slot = &sale.slot;
        let order = Order {
            order_no: format!(
                "V{}{}",
                time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
                crate::random::token(4)?
            ),
            inner_code: req.inner_code.clone(),
            sku_id: slot.sku_id,
            sku_name: slot.name.clone(),
            slot_no: slot.slot_no.clone(),
            amount: slot.price,
            channel: sale.channel.id().to_owned(),
            method: sale.method,
            open_id: Some(req.buyer.open_id.clone()),
            buyer_app: Some(req.buyer.app),
            status: OrderStatus::Created,
            payment_id: None,
            pay_action: None,
            lock_token: Some(guard.token.clone()),
            refund_no: None,
            refunded: Fen::ZERO,
            reason: None,
            created_at,
            updated_at: created_at,
            paid_at: None,
            vend_at: None,
            ended_at: None,
            // Sold for the machine's owner now: a later owner never refunds this order.
            seller: sale.seller.clone(),
            refund_issue: None,
        };
        if let Err(e) = self.db.insert_order(&order).await {
            let _ = self.locks.release(&guard).await;
            return Err(internal(e));
        }
        self.start_payment(&order, sale).await?;
        self.publish(&order.order_no).await;
        self.db
            .order(&order.order_no)
            .await
            .map_err(internal)?
            .ok_or_else(|| internal("an order vanished"))
    }

    /// What the buyer may buy, checked before the machine is locked: no open order of theirs,
    /// a machine for sale and online, a channel and method for their app (test money in live
    /// mode and unconfigured providers are refused here), the item in stock.
    async fn sale(&self, req: &NewOrder) -> Result<Sale, OrderError> {
        if let Some(open) = self
            .db
            .open_order_of(&req.buyer.open_id)
            .await
            .map_err(internal)?
        {
            return Err(OrderError::OrderOpen(Some(open.order_no)));
        }
        let machine = self
            .db
            .machine(&req.inner_code)
            .await
            .map_err(internal)?
            // A machine that belongs to nobody is not for sale.
            .filter(|m| m.owner.is_some())
            .ok_or(OrderError::MachineNotFound)?;
        if machine.status != MachineStatus::Online {
            return Err(OrderError::MachineOffline);
        }
        // Which channel and method, from the channels' ids and declared methods: a Mini
        // Program buyer pays in the Mini Program, an Official Account buyer with JSAPI,
        // otherwise the channel's scan-to-pay method.
        let preferred: &[PayMethod] = match req.buyer.app {
            BuyerApp::MiniProgram => &[PayMethod::WechatMiniProgram],
            BuyerApp::OfficialAccount => &[PayMethod::WechatJsapi],
            BuyerApp::AlipayMiniProgram => &[PayMethod::AlipayMiniProgram],
            BuyerApp::AlipayWeb => &[PayMethod::AlipayWap],
            BuyerApp::Demo => &[],
        };
        let (channel, method) = crate::providers::resolve(
            self.payments.channels(),
            req.channel.as_deref(),
            req.method.as_deref(),
            preferred,
        )?
        .ok_or(OrderError::ChannelRequired)?;
        // An openid pays only in the app it belongs to.
        let payer_open_id = match (method, req.buyer.app) {
            (PayMethod::WechatMiniProgram, BuyerApp::MiniProgram)
            | (PayMethod::WechatJsapi, BuyerApp::OfficialAccount)
            | (PayMethod::AlipayMiniProgram, BuyerApp::AlipayMiniProgram) => {
                Some(req.buyer.open_id.clone())
            }
            (m, _) if m.needs_open_id() => return Err(OrderError::OpenIdRequired),
            _ => None,
        };
        let slot = self
            .db
            .stocked_slots(&req.inner_code)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|s| s.sku_id == req.sku_id)
            .min_by_key(|s| (s.price, -s.capacity))
            .ok_or(OrderError::SoldOut)?;
        Ok(Sale {
            seller: machine.owner,
            channel,
            method,
            payer_open_id,
            slot,
        })
    }

    /// Creates the order's payment at its channel, records what the buyer does to pay and
    /// schedules the order's timeout. Without a payment the order ends here (the machine is
    /// free again).
    async fn start_payment(&self, order: &Order, sale: Sale) -> Result<(), OrderError> {
        let mut payment = NewPayment::new(
            order.order_no.clone(),
            order.amount,
            format!("{} ({})", order.sku_name, order.inner_code),
            sale.method,
            crate::notify::payment_url(&self.settings.public_url, sale.channel.id()),
        );
        if let Some(o) = sale.payer_open_id {
            payment = payment.open_id(o);
        }
        if let Ok(at) = time::OffsetDateTime::from_unix_timestamp(
            order.created_at + i64::try_from(self.settings.order_timeout.as_secs()).unwrap_or(600),
        ) {
            payment = payment.expires_at(at);
        }
        let (payment, action) = match self.payments.create(payment).await {
            Ok(created) => created,
            Err(e) => {
                tracing::warn!(order = %order.order_no, error = %e, "payment not created");
                self.end(
                    order,
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
        Ok(())
    }

    /// Cancels an unpaid order (the buyer, or the machine's seller), saying who in `reason`.
    pub async fn cancel(&self, order_no: &str, reason: &str) -> Result<Order, OrderError> {
        let order = self.get(order_no).await?;
        match order.status {
            OrderStatus::Created => {}
            OrderStatus::Cancelled => return Ok(order),
            OrderStatus::Invalid => {
                return Err(OrderError::Ended);
            }
            // Paid (whatever happened since): the item or a refund is on its way.
            other => {
                return Err(OrderError::Paid(other));
            }
        }
        if !self
            .close_unpaid(&order, OrderStatus::Cancelled, reason)
            .await?
        {
            return Err(OrderError::Paid(OrderStatus::Paid));
        }
        self.get(order_no).await
    }
}
