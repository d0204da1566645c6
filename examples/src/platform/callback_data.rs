//! The typed documents between a payment and its merchant: [`PaymentTag`], what the platform
//! keeps in a payment's metadata (whose it is, the merchant's own number and data), and
//! [`CallbackData`], what a callback (and the "payment received" message) says about it. Each
//! is serialized in one place; the field names are the open API's.

use aggregate_pay::events::{PaymentSnapshot, RefundSnapshot};
use aggregate_pay::{Fen, PayMethod, PaymentStatus, RefundStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The platform's part of a payment: the payment's own `out_trade_no` is the platform's
/// number; the merchant's is kept here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentTag {
    /// The merchant's app id.
    pub merchant_id: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The merchant's data, as given.
    #[serde(default)]
    pub merchant_metadata: Value,
}

impl PaymentTag {
    /// As a payment's metadata.
    pub fn to_metadata(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The tag of `payment`; `None` for a payment that is not the platform's.
    pub fn of(payment: &PaymentSnapshot) -> Option<Self> {
        Self::deserialize(&payment.metadata).ok()
    }
}

/// A callback's `data`: the payment as the merchant knows it, and the refund a refund event is
/// about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackData {
    /// The merchant's order number.
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// Where the payment is.
    pub status: PaymentStatus,
    /// The channel.
    pub channel: String,
    /// The pay method.
    pub method: PayMethod,
    /// The channel's transaction id, once paid.
    pub channel_transaction_id: Option<String>,
    /// Refunded so far.
    pub refunded_amount: Fen,
    /// The platform's fee of what is still paid (partner mode; 0 otherwise).
    #[serde(default)]
    pub fee: Fen,
    /// What the merchant nets: the amount, less refunds and the fee.
    #[serde(default)]
    pub net: Fen,
    /// When paid (unix seconds).
    pub paid_at: Option<i64>,
    /// The merchant's data.
    pub metadata: Value,
    /// The refund, for a refund event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<CallbackRefund>,
}

impl CallbackData {
    /// `payment` (tagged `tag`) as its merchant sees it.
    pub fn new(tag: &PaymentTag, payment: &PaymentSnapshot) -> Self {
        CallbackData {
            out_trade_no: tag.out_trade_no.clone(),
            amount: payment.amount,
            status: payment.status,
            channel: payment.channel.clone(),
            method: payment.method,
            channel_transaction_id: payment.channel_transaction_id.clone(),
            refunded_amount: payment.refunded_amount,
            fee: fee_and_net(
                payment.amount,
                payment.refunded_amount,
                payment.platform_fee,
            )
            .0,
            net: fee_and_net(
                payment.amount,
                payment.refunded_amount,
                payment.platform_fee,
            )
            .1,
            paid_at: payment.paid_at.map(time::OffsetDateTime::unix_timestamp),
            metadata: tag.merchant_metadata.clone(),
            refund: None,
        }
    }
}

/// The platform's fee of a payment of `amount` with `refunded` refunded (what it keeps of
/// `platform_fee`, [`aggregate_pay::fees::kept`]), and what the merchant nets.
pub fn fee_and_net(amount: Fen, refunded: Fen, platform_fee: Fen) -> (Fen, Fen) {
    let fee = aggregate_pay::fees::kept(platform_fee, amount, refunded);
    let net = amount
        .checked_sub(refunded)
        .and_then(|left| left.checked_sub(fee))
        .unwrap_or(Fen::ZERO);
    (fee, net)
}

/// A refund as its merchant sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackRefund {
    /// The merchant's refund number (`None` for a refund the merchant did not ask for).
    pub out_refund_no: Option<String>,
    /// The amount.
    pub amount: Fen,
    /// Where it is.
    pub status: RefundStatus,
    /// Why it failed, or (ABNORMAL) what happened and what to do.
    pub reason: Option<String>,
}

impl CallbackRefund {
    /// `refund`, numbered `out_refund_no` by its merchant.
    pub fn new(refund: &RefundSnapshot, out_refund_no: Option<String>) -> Self {
        CallbackRefund {
            out_refund_no,
            amount: refund.amount,
            status: refund.status,
            reason: refund.last_error.clone(),
        }
    }
}

/// A callback's body: `{"id", "type", "created_at", "data"}`.
#[derive(Debug, Serialize)]
pub struct CallbackBody<'a> {
    /// The event's id (merchants dedupe by it).
    pub id: &'a str,
    /// The event's type (`payment.succeeded`…).
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// When it happened (unix seconds).
    pub created_at: i64,
    /// What it says.
    pub data: &'a CallbackData,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_payment_that_is_not_the_platforms_has_no_tag() {
        let snapshot = |metadata: Value| {
            let mut doc = json!({
                "payment_id": "pay_1", "out_trade_no": "P1", "channel": "sandbox",
                "method": "sandbox", "amount": 100, "currency": "CNY", "subject": "Gum",
                "status": "PAID", "refunded_amount": 0, "created_at": 0,
            });
            doc["metadata"] = metadata;
            serde_json::from_value::<aggregate_pay::EventData>(doc).map(|d| d.payment)
        };
        let vending = snapshot(json!({"order_no": "P1"})).expect("a snapshot");
        assert_eq!(PaymentTag::of(&vending), None);
        assert_eq!(
            PaymentTag::of(&snapshot(Value::Null).expect("a snapshot")),
            None
        );

        let tag = PaymentTag {
            merchant_id: "app_1".into(),
            out_trade_no: "order-1".into(),
            merchant_metadata: json!({"table": 7}),
        };
        let ours = snapshot(tag.to_metadata()).expect("a snapshot");
        assert_eq!(PaymentTag::of(&ours), Some(tag.clone()));
        let data = CallbackData::new(&tag, &ours);
        let wire = serde_json::to_value(&data).expect("JSON");
        assert_eq!(wire["out_trade_no"], "order-1", "the merchant's number");
        assert_eq!(wire["amount"], 100);
        assert_eq!(wire["status"], "PAID");
        assert_eq!(wire["metadata"]["table"], 7);
        assert!(wire.get("refund").is_none());
    }
}
