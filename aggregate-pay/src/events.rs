//! Outbox events: what happened to a payment, recorded in the same transaction as the state
//! change, then delivered at least once. Every event has a unique id; handlers dedupe by it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Fen, PayMethod, Payment, PaymentId, PaymentStatus, Refund, RefundStatus};

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// `payment.succeeded`: the money arrived.
    PaymentSucceeded,
    /// `payment.closed`: the payment can no longer be paid.
    PaymentClosed,
    /// `payment.failed`: the payer's payment failed.
    PaymentFailed,
    /// `refund.succeeded`: a refund completed.
    RefundSucceeded,
    /// `refund.failed`: a refund failed.
    RefundFailed,
    /// `refund.abnormal`: the channel took a refund but could not deliver the money; the
    /// merchant must resolve it (the amount stays counted as being refunded).
    RefundAbnormal,
    /// `payment.amount_mismatch`: the channel reported another amount; the payment is flagged.
    PaymentAmountMismatch,
    /// Anything else (kept as stored).
    Other(String),
}

impl EventKind {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::PaymentSucceeded => "payment.succeeded",
            EventKind::PaymentClosed => "payment.closed",
            EventKind::PaymentFailed => "payment.failed",
            EventKind::RefundSucceeded => "refund.succeeded",
            EventKind::RefundFailed => "refund.failed",
            EventKind::RefundAbnormal => "refund.abnormal",
            EventKind::PaymentAmountMismatch => "payment.amount_mismatch",
            EventKind::Other(s) => s,
        }
    }

    /// Reads a wire name.
    pub fn parse(s: &str) -> Self {
        match s {
            "payment.succeeded" => EventKind::PaymentSucceeded,
            "payment.closed" => EventKind::PaymentClosed,
            "payment.failed" => EventKind::PaymentFailed,
            "refund.succeeded" => EventKind::RefundSucceeded,
            "refund.failed" => EventKind::RefundFailed,
            "refund.abnormal" => EventKind::RefundAbnormal,
            "payment.amount_mismatch" => EventKind::PaymentAmountMismatch,
            other => EventKind::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Delivery state of an outbox event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventStatus {
    /// Waiting for (re)delivery.
    Pending,
    /// Delivered.
    Delivered,
    /// Gave up after too many failures; kept with the last error for a human.
    Dead,
}

impl EventStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "PENDING",
            EventStatus::Delivered => "DELIVERED",
            EventStatus::Dead => "DEAD",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(EventStatus::Pending),
            "DELIVERED" => Some(EventStatus::Delivered),
            "DEAD" => Some(EventStatus::Dead),
            _ => None,
        }
    }
}

/// An event to record with a state change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its unique id (`evt_…`), known before it is stored.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// The payment it is about.
    pub payment_id: PaymentId,
    /// What it says: the payment, the refund…
    pub data: EventData,
}

impl NewEvent {
    /// A new event with a fresh id about `data.payment`.
    pub fn new(kind: EventKind, data: EventData) -> Self {
        NewEvent {
            id: crate::sortable_id("evt_"),
            kind,
            payment_id: data.payment.payment_id.clone(),
            data,
        }
    }

    /// `data` as stored: JSON text.
    #[cfg(any(feature = "sql", test))]
    pub(crate) fn stored_data(&self) -> String {
        // Strings, numbers and JSON values: serializing them cannot fail.
        serde_json::to_string(&self.data).unwrap_or_default()
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutboxEvent {
    /// Its unique id: handlers dedupe by it.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// The payment it is about.
    pub payment_id: PaymentId,
    /// What it says.
    pub data: EventData,
    /// When it happened.
    pub created_at: OffsetDateTime,
    /// Delivery state.
    pub status: EventStatus,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When the next attempt is due.
    pub next_attempt_at: OffsetDateTime,
}

impl OutboxEvent {
    /// `event` as recorded at `at`: pending, never attempted.
    pub fn pending(event: &NewEvent, at: OffsetDateTime) -> Self {
        OutboxEvent::recorded(event.clone(), at)
    }

    /// [`OutboxEvent::pending`], taking the event.
    pub fn recorded(event: NewEvent, at: OffsetDateTime) -> Self {
        OutboxEvent {
            id: event.id,
            kind: event.kind,
            payment_id: event.payment_id,
            data: event.data,
            created_at: at,
            status: EventStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: at,
        }
    }

    /// The event as the JSON document queues carry ([`WireEvent`]), serialized once.
    pub fn to_wire(&self) -> Vec<u8> {
        let wire = WireEventRef {
            id: &self.id,
            kind: self.kind.as_str(),
            payment_id: &self.payment_id,
            created_at: self.created_at.unix_timestamp(),
            data: &self.data,
        };
        // A struct of strings, numbers and JSON values always serializes.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Reads a document written by [`OutboxEvent::to_wire`]: pending, with `attempts` so far
    /// and the last error (which a queue keeps beside the document).
    pub fn from_wire(
        bytes: &[u8],
        attempts: u32,
        last_error: Option<String>,
    ) -> Result<Self, serde_json::Error> {
        let wire: WireEvent = serde_json::from_slice(bytes)?;
        let created_at = OffsetDateTime::from_unix_timestamp(wire.created_at)
            .map_err(serde::de::Error::custom)?;
        Ok(OutboxEvent {
            id: wire.id,
            kind: EventKind::parse(&wire.kind),
            payment_id: wire.payment_id,
            data: wire.data,
            created_at,
            status: EventStatus::Pending,
            attempts,
            last_error,
            next_attempt_at: created_at,
        })
    }
}

/// An event as queues and handlers outside the process see it:
/// `{"id", "type", "payment_id", "created_at" (unix seconds), "data"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct WireEvent {
    /// The event's id.
    pub id: String,
    /// Its [`EventKind`] name.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payment it is about.
    pub payment_id: PaymentId,
    /// When it happened, unix seconds.
    pub created_at: i64,
    /// What it says.
    pub data: EventData,
}

#[derive(Serialize)]
struct WireEventRef<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    payment_id: &'a PaymentId,
    created_at: i64,
    data: &'a EventData,
}

/// What an event says: the payment as the change left it, and — for a refund event — the
/// refund, or — for an amount mismatch — what the channel reported.
///
/// Stored and sent as `{"payment": {…}, "refund": {…}}`, a mismatch's fields beside
/// `payment`. Events recorded before this type existed stored a payment event's payment
/// itself, at the top; those still read (as an event with no refund and no mismatch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredData")]
#[non_exhaustive]
pub struct EventData {
    /// The payment, as the change left it.
    pub payment: PaymentSnapshot,
    /// The refund a refund event is about, as the change left it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundSnapshot>,
    /// What the channel reported, for [`EventKind::PaymentAmountMismatch`].
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<AmountMismatch>,
}

impl EventData {
    /// An event about `payment` alone.
    pub fn payment(payment: &Payment) -> Self {
        EventData {
            payment: PaymentSnapshot::of(payment),
            refund: None,
            mismatch: None,
        }
    }

    /// An event about `refund` of `payment`.
    pub fn refund(payment: &Payment, refund: &Refund) -> Self {
        EventData {
            refund: Some(RefundSnapshot::of(refund)),
            ..EventData::payment(payment)
        }
    }

    /// An amount mismatch reported for `payment`.
    pub fn mismatch(payment: &Payment, mismatch: AmountMismatch) -> Self {
        EventData {
            mismatch: Some(mismatch),
            ..EventData::payment(payment)
        }
    }
}

/// The shapes an [`EventData`] was ever stored in.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredData {
    Current(Box<CurrentData>),
    /// A payment event before the payment went under `payment`.
    Flat(Box<PaymentSnapshot>),
}

#[derive(Deserialize)]
struct CurrentData {
    payment: PaymentSnapshot,
    #[serde(default)]
    refund: Option<RefundSnapshot>,
    #[serde(flatten)]
    mismatch: Option<AmountMismatch>,
}

impl From<StoredData> for EventData {
    fn from(stored: StoredData) -> Self {
        match stored {
            StoredData::Current(current) => {
                let CurrentData {
                    payment,
                    refund,
                    mismatch,
                } = *current;
                EventData {
                    payment,
                    refund,
                    mismatch,
                }
            }
            StoredData::Flat(payment) => EventData {
                payment: *payment,
                refund: None,
                mismatch: None,
            },
        }
    }
}

/// A payment as an event shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PaymentSnapshot {
    /// Our id.
    pub payment_id: PaymentId,
    /// The number the channel knows it by: the caller's order number.
    pub out_trade_no: String,
    /// The channel id.
    pub channel: String,
    /// How the payer pays.
    pub method: PayMethod,
    /// The amount asked.
    pub amount: Fen,
    /// The currency.
    pub currency: String,
    /// What is bought.
    pub subject: String,
    /// Where it is.
    pub status: PaymentStatus,
    /// The channel's transaction id, once paid.
    pub channel_transaction_id: Option<String>,
    /// Refunded so far.
    pub refunded_amount: Fen,
    /// Held for a person to look at.
    #[serde(default)]
    pub needs_review: bool,
    /// Business data, as given at creation.
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Service-provider mode: the platform's fee (see [`crate::fees::kept`] for what it keeps
    /// after refunds).
    #[serde(default)]
    pub platform_fee: Fen,
    /// When created (to the second, like every time an event carries).
    #[serde(with = "time::serde::timestamp")]
    pub created_at: OffsetDateTime,
    /// When paid.
    #[serde(with = "time::serde::timestamp::option", default)]
    pub paid_at: Option<OffsetDateTime>,
}

impl PaymentSnapshot {
    /// `p` as it is (its version is not part of it).
    pub fn of(p: &Payment) -> Self {
        PaymentSnapshot {
            payment_id: p.id.clone(),
            out_trade_no: p.out_trade_no.clone(),
            channel: p.channel.clone(),
            method: p.method,
            amount: p.amount,
            currency: p.currency.clone(),
            subject: p.subject.clone(),
            status: p.status,
            channel_transaction_id: p.channel_transaction_id.clone(),
            refunded_amount: p.refunded_amount,
            needs_review: p.needs_review,
            metadata: p.metadata.clone(),
            platform_fee: p.platform_fee,
            created_at: whole_seconds(p.created_at),
            paid_at: p.paid_at.map(whole_seconds),
        }
    }
}

/// `t` to the second, as events carry times.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// A refund as an event shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundSnapshot {
    /// Our id (`ref_…`).
    pub refund_id: String,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// The number the channel knows it by.
    pub out_refund_no: String,
    /// The amount.
    pub amount: Fen,
    /// Where it is.
    pub status: RefundStatus,
    /// The channel's refund id.
    pub channel_refund_id: Option<String>,
    /// Why it was asked for.
    pub reason: Option<String>,
    /// Why it failed, or (abnormal) what the channel said.
    pub last_error: Option<String>,
}

impl RefundSnapshot {
    /// `r` as it is.
    pub fn of(r: &Refund) -> Self {
        RefundSnapshot {
            refund_id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
            amount: r.amount,
            status: r.status,
            channel_refund_id: r.channel_refund_id.clone(),
            reason: r.reason.clone(),
            last_error: r.last_error.clone(),
        }
    }
}

/// What the channel reported when it did not match the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AmountMismatch {
    /// The payment's amount.
    pub expected_amount: Fen,
    /// What the channel says was paid.
    pub reported_amount: Fen,
    /// The payment's currency.
    pub expected_currency: String,
    /// The currency the channel reported.
    pub reported_currency: String,
    /// The channel's transaction id.
    pub channel_transaction_id: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::payment::test_payment;

    fn stored(event: &NewEvent) -> EventData {
        serde_json::from_str(&event.stored_data()).expect("reads back")
    }

    #[test]
    fn what_a_payment_records_reads_back_as_the_typed_event() {
        let mut p = test_payment(350, PaymentStatus::Paid);
        p.channel_transaction_id = Some("T1".into());
        p.metadata = json!({"merchant_id": "m1"});
        let event = NewEvent::new(EventKind::PaymentSucceeded, EventData::payment(&p));
        assert_eq!(event.payment_id, p.id);
        let data = stored(&event);
        assert_eq!(data, event.data);
        assert_eq!(data.payment.out_trade_no, "A1");
        assert_eq!(data.payment.amount, Fen::new(350));
        assert_eq!(data.payment.status, PaymentStatus::Paid);
        assert_eq!(data.payment.metadata["merchant_id"], "m1");
        assert!(data.refund.is_none() && data.mismatch.is_none());

        let mut r = Refund::new(p.id.clone(), "R1", Fen::new(100), p.created_at);
        r.status = RefundStatus::Failed;
        r.last_error = Some("NOTENOUGH: no balance".into());
        let event = NewEvent::new(EventKind::RefundFailed, EventData::refund(&p, &r));
        let data = stored(&event);
        assert_eq!(data, event.data);
        let refund = data.refund.expect("the refund");
        assert_eq!(
            (refund.amount, refund.status),
            (Fen::new(100), RefundStatus::Failed)
        );

        let mismatch = AmountMismatch {
            expected_amount: Fen::new(350),
            reported_amount: Fen::new(1),
            expected_currency: "CNY".into(),
            reported_currency: "CNY".into(),
            channel_transaction_id: "T1".into(),
        };
        let event = NewEvent::new(
            EventKind::PaymentAmountMismatch,
            EventData::mismatch(&p, mismatch.clone()),
        );
        assert_eq!(stored(&event).mismatch, Some(mismatch));
    }

    /// The documents events were stored as before they were typed: a payment event's payment
    /// at the top, a refund event's under `payment` and `refund` (its `last_error` came later),
    /// a mismatch's beside `payment`.
    #[test]
    fn events_stored_before_the_types_still_read() {
        let payment = json!({
            "payment_id": "pay_1", "out_trade_no": "ORDER-1", "channel": "wechat",
            "method": "wechat_native", "amount": 350, "currency": "CNY", "subject": "Cola",
            "status": "PAID", "channel_transaction_id": "4200001", "refunded_amount": 0,
            "needs_review": false, "metadata": {"order_no": "ORDER-1"},
            "created_at": 1_764_000_000, "paid_at": 1_764_000_060,
        });
        let flat: EventData = serde_json::from_value(payment.clone()).expect("flat payment");
        assert_eq!(flat.payment.out_trade_no, "ORDER-1");
        assert_eq!(flat.payment.method, PayMethod::WechatNative);
        assert_eq!(flat.payment.amount, Fen::new(350));
        assert_eq!(
            flat.payment.paid_at.map(OffsetDateTime::unix_timestamp),
            Some(1_764_000_060)
        );
        assert!(flat.refund.is_none() && flat.mismatch.is_none());

        let refund = json!({
            "payment": payment,
            "refund": {
                "refund_id": "ref_1", "payment_id": "pay_1", "out_refund_no": "R1",
                "amount": 100, "status": "SUCCEEDED", "channel_refund_id": "5000001",
                "reason": null,
            },
        });
        let data: EventData = serde_json::from_value(refund).expect("refund event");
        let r = data.refund.expect("the refund");
        assert_eq!(
            (r.amount, r.status),
            (Fen::new(100), RefundStatus::Succeeded)
        );
        assert_eq!(r.last_error, None);
        assert_eq!(data.payment.payment_id, PaymentId("pay_1".into()));

        let mismatch = json!({
            "payment": payment, "expected_amount": 350, "reported_amount": 349,
            "expected_currency": "CNY", "reported_currency": "CNY",
            "channel_transaction_id": "4200001",
        });
        let data: EventData = serde_json::from_value(mismatch).expect("mismatch event");
        let m = data.mismatch.expect("what was reported");
        assert_eq!(m.reported_amount, Fen::new(349));
        assert!(data.refund.is_none());
    }

    #[test]
    fn a_document_that_is_not_an_event_is_an_error_not_a_guess() {
        for bad in [
            json!({}),
            json!({"payment": {"out_trade_no": "A1"}}),
            json!({"payment_id": "pay_1", "amount": "350"}),
            json!({"payment_id": "pay_1", "out_trade_no": "A1", "channel": "x", "method": "cash",
                   "amount": 1, "currency": "CNY", "subject": "s", "status": "PAID",
                   "refunded_amount": 0, "created_at": 0}),
            json!([1, 2]),
        ] {
            assert!(
                serde_json::from_value::<EventData>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_queued_event_reads_back_as_it_was_sent() {
        let p = test_payment(350, PaymentStatus::Closed);
        let at = OffsetDateTime::from_unix_timestamp(1_764_000_000).expect("a time");
        let event = OutboxEvent::recorded(
            NewEvent::new(EventKind::PaymentClosed, EventData::payment(&p)),
            at,
        );
        let wire = event.to_wire();
        let doc: serde_json::Value = serde_json::from_slice(&wire).expect("JSON");
        assert_eq!(doc["type"], "payment.closed");
        assert_eq!(doc["data"]["payment"]["status"], "CLOSED");
        let back = OutboxEvent::from_wire(&wire, 2, Some("timeout".into())).expect("reads");
        assert_eq!(back.id, event.id);
        assert_eq!(back.kind, EventKind::PaymentClosed);
        assert_eq!(back.data, event.data);
        assert_eq!(back.created_at, at);
        assert_eq!(
            (back.attempts, back.last_error.as_deref()),
            (2, Some("timeout"))
        );
        assert!(OutboxEvent::from_wire(b"{\"id\": 1}", 0, None).is_err());
    }
}
