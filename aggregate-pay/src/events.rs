//! Outbox events: what happened to a payment, recorded in the same transaction as the state
//! change, then delivered at least once. Every event has a unique id; handlers dedupe by it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::PaymentId;

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
    /// The details (the payment, the refund…).
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// A new event with a fresh id.
    pub fn new(kind: EventKind, payment_id: PaymentId, payload: serde_json::Value) -> Self {
        NewEvent {
            id: crate::sortable_id("evt_"),
            kind,
            payment_id,
            payload,
        }
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
    /// The details.
    pub payload: serde_json::Value,
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
            payload: event.payload,
            created_at: at,
            status: EventStatus::Pending,
            attempts: 0,
            last_error: None,
            next_attempt_at: at,
        }
    }

    /// The event as the JSON document handlers and queues carry.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.kind.as_str(),
            "payment_id": self.payment_id.0,
            "created_at": self.created_at.unix_timestamp(),
            "data": self.payload,
        })
    }
}
