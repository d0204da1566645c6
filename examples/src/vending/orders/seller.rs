//! What a seller does to an order: refund a completed one, all or part of it. (Cancelling an
//! unpaid order is the buyer's `cancel` with the seller's reason.)
//!
//! A seller refund is numbered `S{order_no}-{n}`, the n-th the seller asked for: the same click
//! twice asks for the same refund (the channel is idempotent by number), and a refund still on
//! its way is sent again rather than doubled by a second one.

use aggregate_pay::{Fen, PaymentId, Refund, RefundStatus};

use super::super::db::{Order, OrderStatus};
use super::{OrderError, OrderService};

/// The reason a refund for complaint `id` carries (WeChat takes at most 80 characters): it
/// names the complaint, so the complaint is refunded once whatever happens after.
fn complaint_reason(id: &str, reason: &str) -> String {
    format!("complaint {id}: {reason}")
        .chars()
        .take(80)
        .collect()
}

impl OrderService {
    /// Refunds `amount` of a completed order for the payer's complaint `complaint_id`: once —
    /// asked again (the decision at WeChat failed after the refund, a second click), the refund
    /// already made or on its way for this complaint is the answer.
    pub async fn complaint_refund(
        &self,
        order: &Order,
        complaint_id: &str,
        amount: Fen,
        reason: &str,
    ) -> Result<Refund, OrderError> {
        let tag = complaint_reason(complaint_id, "");
        if let Some(payment_id) = order.payment_id.clone().map(PaymentId) {
            let made = self
                .payments
                .refunds(&payment_id)
                .await?
                .into_iter()
                .find(|r| {
                    r.status != RefundStatus::Failed
                        && r.reason.as_deref().is_some_and(|why| why.starts_with(&tag))
                });
            if let Some(refund) = made {
                return Ok(refund);
            }
        }
        self.seller_refund(order, amount, &complaint_reason(complaint_id, reason))
            .await
    }

    /// Refunds `amount` of a completed order for `reason`.
    pub async fn seller_refund(
        &self,
        order: &Order,
        amount: Fen,
        reason: &str,
    ) -> Result<Refund, OrderError> {
        if order.status != OrderStatus::Completed {
            return Err(OrderError::NotRefundable(order.status));
        }
        let Some(payment_id) = order.payment_id.clone().map(PaymentId) else {
            return Err(OrderError::NotRefundable(order.status));
        };
        let prefix = format!("S{}-", order.order_no);
        let refunds = self.payments.refunds(&payment_id).await?;
        let ours: Vec<&Refund> = refunds
            .iter()
            .filter(|r| r.out_refund_no.starts_with(&prefix))
            .collect();
        let refund_no = match ours.iter().find(|r| r.status.is_open()) {
            // The same refund again (a retry after a timeout, a second click).
            Some(pending) if pending.amount == amount => pending.out_refund_no.clone(),
            Some(_) => return Err(OrderError::RefundInProgress),
            None => format!("{prefix}{}", ours.len() + 1),
        };
        // Open refunds (pending, or abnormal: taken, not delivered) hold their money.
        let pending = refunds
            .iter()
            .filter(|r| r.status.is_open() && r.out_refund_no != refund_no)
            .fold(Fen::ZERO, |sum, r| sum.checked_add(r.amount).unwrap_or(sum));
        let refunded = refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded)
            .fold(Fen::ZERO, |sum, r| sum.checked_add(r.amount).unwrap_or(sum));
        let left = order
            .amount
            .checked_sub(refunded)
            .and_then(|l| l.checked_sub(pending))
            .unwrap_or(Fen::ZERO);
        if amount == Fen::ZERO || amount > left {
            return Err(OrderError::RefundAmount {
                left: left.as_u64(),
            });
        }
        let notify_url = self.refund_notify_url(order);
        let refund = self
            .payments
            .refund(
                &payment_id,
                &refund_no,
                amount,
                Some(reason.to_owned()),
                notify_url,
            )
            .await?;
        if refund.status == RefundStatus::Succeeded {
            self.on_refunded(&order.order_no).await?;
        }
        Ok(refund)
    }
}
