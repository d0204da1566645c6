//! Creating an order (the machine's lock before the payment) and the buyer cancelling one.

use std::time::Duration;

use aggregate_pay::{NewPayment, PayMethod};
use serde_json::json;

use super::super::db::{MachineStatus, Order, OrderStatus};
use super::super::delays::{DueJob, DueKind, Wait};
use super::{NewOrder, OrderError, OrderService, internal, lock_key, now};

impl OrderService {
    /// Creates an order: the machine's lock first (busy → 409 `MACHINE_BUSY`, no payment), then
    /// the order, then the payment at the channel.
    pub async fn create(&self, req: NewOrder) -> Result<Order, OrderError> {
        let machine = self
            .db
            .machine(&req.inner_code)
            .await
            .map_err(internal)?
            .ok_or(OrderError::MachineNotFound)?;
        if machine.status != MachineStatus::Online {
            return Err(OrderError::MachineOffline);
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
        .ok_or(OrderError::ChannelRequired)?;
        let slot = self
            .db
            .stocked_slots(&req.inner_code)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|s| s.sku_id == req.sku_id)
            .min_by_key(|s| (s.price, -s.capacity))
            .ok_or(OrderError::SoldOut)?;
        let mut open_id = req.open_id.clone();
        if let Some(code) = &req.js_code {
            let mp = self
                .buyers
                .mini
                .as_ref()
                .ok_or(OrderError::LoginUnavailable)?;
            let session = mp
                .code_to_session(code)
                .await
                .map_err(|e| OrderError::JsCodeInvalid(e.to_string()))?;
            open_id = Some(session.openid);
        }
        if method.needs_open_id() && open_id.is_none() {
            return Err(OrderError::OpenIdRequired);
        }

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
            channel: channel.id().to_owned(),
            method,
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
            order.amount,
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

    /// The buyer cancels an unpaid order.
    pub async fn cancel(&self, order_no: &str) -> Result<Order, OrderError> {
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
            .close_unpaid(&order, OrderStatus::Cancelled, "cancelled by the buyer")
            .await?
        {
            return Err(OrderError::Paid(OrderStatus::Paid));
        }
        self.get(order_no).await
    }
}
