//! Payment events from `aggregate-pay`'s outbox, turned into order steps. Delivered at least
//! once (in process or over RabbitMQ); each step is idempotent, so a repeat changes nothing.

use std::sync::Arc;

use aggregate_pay::{EventHandler, EventKind, HandlerError, OutboxEvent};
use async_trait::async_trait;

use super::orders::{OrderError, OrderService};

/// The outbox handler of the vending server.
#[derive(Debug, Clone)]
pub struct PaymentEvents {
    orders: Arc<OrderService>,
}

impl PaymentEvents {
    /// Events for `orders`.
    pub fn new(orders: Arc<OrderService>) -> Self {
        PaymentEvents { orders }
    }
}

#[async_trait]
impl EventHandler for PaymentEvents {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        // The payment's number is the order's (out_trade_no is unique in the store).
        let order_no = event.data.payment.out_trade_no.as_str();
        let result = match &event.kind {
            EventKind::PaymentSucceeded => self.orders.on_paid(order_no).await,
            EventKind::RefundSucceeded => self.orders.on_refunded(order_no).await,
            EventKind::RefundFailed => {
                tracing::error!(
                    order = order_no,
                    "a refund failed at the channel; it needs a person"
                );
                self.orders.refresh_refund_issue(order_no).await
            }
            EventKind::RefundAbnormal => {
                tracing::error!(
                    order = order_no,
                    "a refund could not reach the buyer; the seller must resolve it"
                );
                self.orders.refresh_refund_issue(order_no).await
            }
            EventKind::PaymentAmountMismatch => {
                tracing::error!(
                    order = order_no,
                    "amount mismatch: the payment is held for review, nothing vends"
                );
                Ok(())
            }
            _ => Ok(()),
        };
        match result {
            Ok(()) => Ok(()),
            // Not one of ours (another service's payment in the same store).
            Err(OrderError::OrderNotFound) => Ok(()),
            Err(e) => Err(HandlerError::retry(e)),
        }
    }
}
