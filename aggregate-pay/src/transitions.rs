//! The state changes a channel fact causes, decided in one place for notifications, the
//! reconciler and the service alike, and applied with compare-and-set retries.

use time::OffsetDateTime;

use crate::events::{EventKind, NewEvent};
use crate::store::{Change, Commit, PaymentStore, RefundChange};
use crate::{Fen, Payment, PaymentId, PaymentStatus, Refund, RefundStatus, StoreError};

/// What a fact means for the payment.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Apply this change.
    Commit(Box<Change>),
    /// Nothing to do (already applied, or not applicable).
    Nothing,
}

/// What applying a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state changed and its events were recorded.
    Changed,
    /// Nothing to do: it had already happened (a duplicate).
    Unchanged,
    /// The amount did not match: the payment is flagged for review (now or before).
    Flagged,
}

/// The channel says the payment was paid `amount`.
pub(crate) fn paid(
    p: &Payment,
    transaction_id: &str,
    amount: Fen,
    now: OffsetDateTime,
) -> (Decision, Applied) {
    if amount != p.amount {
        if p.needs_review {
            return (Decision::Nothing, Applied::Flagged);
        }
        let mut next = p.clone();
        next.needs_review = true;
        let payload = serde_json::json!({
            "payment": p.to_json(),
            "expected_amount": p.amount.as_u64(),
            "reported_amount": amount.as_u64(),
            "channel_transaction_id": transaction_id,
        });
        return (
            Decision::Commit(Box::new(Change {
                payment: next,
                refund: None,
                events: vec![NewEvent::new(
                    EventKind::PaymentAmountMismatch,
                    p.id.clone(),
                    payload,
                )],
            })),
            Applied::Flagged,
        );
    }
    if p.status.is_paid() {
        return (Decision::Nothing, Applied::Unchanged);
    }
    // PENDING, and also CLOSED / FAILED: money that arrives is recorded, never dropped.
    let mut next = p.clone();
    next.status = PaymentStatus::Paid;
    next.channel_transaction_id = Some(transaction_id.to_owned());
    next.paid_at = Some(now);
    let event = NewEvent::new(EventKind::PaymentSucceeded, p.id.clone(), {
        let mut shown = next.clone();
        shown.version += 1;
        shown.to_json()
    });
    (
        Decision::Commit(Box::new(Change {
            payment: next,
            refund: None,
            events: vec![event],
        })),
        Applied::Changed,
    )
}

/// The payment can no longer be paid (closed or failed at the channel).
pub(crate) fn ended(p: &Payment, status: PaymentStatus) -> (Decision, Applied) {
    if p.status != PaymentStatus::Pending {
        return (Decision::Nothing, Applied::Unchanged);
    }
    let kind = if status == PaymentStatus::Closed {
        EventKind::PaymentClosed
    } else {
        EventKind::PaymentFailed
    };
    let mut next = p.clone();
    next.status = status;
    let event = NewEvent::new(kind, p.id.clone(), next.to_json());
    (
        Decision::Commit(Box::new(Change {
            payment: next,
            refund: None,
            events: vec![event],
        })),
        Applied::Changed,
    )
}

/// The status a paid payment has given its refunds.
fn after_refunds(p: &Payment, refunded: Fen, others_pending: bool) -> PaymentStatus {
    if refunded >= p.amount {
        PaymentStatus::Refunded
    } else if others_pending {
        PaymentStatus::Refunding
    } else if refunded > Fen::ZERO {
        PaymentStatus::PartiallyRefunded
    } else {
        PaymentStatus::Paid
    }
}

/// A refund finished (`succeeded` or not), with the payment's other refunds.
pub(crate) fn refund_finished(
    p: &Payment,
    refund: &Refund,
    others: &[Refund],
    succeeded: bool,
    channel_refund_id: Option<String>,
) -> (Decision, Applied) {
    if refund.status != RefundStatus::Pending {
        return (Decision::Nothing, Applied::Unchanged);
    }
    let others_pending = others
        .iter()
        .any(|r| r.out_refund_no != refund.out_refund_no && r.status == RefundStatus::Pending);
    let mut next = p.clone();
    let mut r = refund.clone();
    r.channel_refund_id = channel_refund_id.or(r.channel_refund_id);
    r.updated_at = OffsetDateTime::now_utc();
    let kind = if succeeded {
        r.status = RefundStatus::Succeeded;
        next.refunded_amount = p
            .refunded_amount
            .checked_add(refund.amount)
            .unwrap_or(p.amount);
        EventKind::RefundSucceeded
    } else {
        r.status = RefundStatus::Failed;
        EventKind::RefundFailed
    };
    next.status = after_refunds(p, next.refunded_amount, others_pending);
    let payload = serde_json::json!({"refund": r.to_json(), "payment": next.to_json()});
    (
        Decision::Commit(Box::new(Change {
            payment: next,
            refund: Some(RefundChange::Update {
                refund: r,
                expected: RefundStatus::Pending,
            }),
            events: vec![NewEvent::new(kind, p.id.clone(), payload)],
        })),
        Applied::Changed,
    )
}

/// Loads the payment (and its refunds), decides, commits; on a conflict (someone else changed
/// it first) reloads and decides again, so that exactly one of any number of concurrent
/// deciders applies a given fact.
pub(crate) async fn apply<F>(
    store: &dyn PaymentStore,
    id: &PaymentId,
    decide: F,
) -> Result<Applied, StoreError>
where
    F: Fn(&Payment, &[Refund]) -> (Decision, Applied) + Send + Sync,
{
    retry(store, id, None, true, decide).await
}

/// [`apply`] for a decision that reads only the payment: no refunds are loaded, and `snapshot`
/// (the payment as the caller just read it) is decided on first — if it is stale, the version
/// check at commit turns that into a conflict and the loop reloads. One or two fewer round
/// trips per notification.
pub(crate) async fn apply_to_payment<F>(
    store: &dyn PaymentStore,
    id: &PaymentId,
    snapshot: Option<Payment>,
    decide: F,
) -> Result<Applied, StoreError>
where
    F: Fn(&Payment) -> (Decision, Applied) + Send + Sync,
{
    retry(store, id, snapshot, false, |p, _| decide(p)).await
}

async fn retry<F>(
    store: &dyn PaymentStore,
    id: &PaymentId,
    mut snapshot: Option<Payment>,
    with_refunds: bool,
    decide: F,
) -> Result<Applied, StoreError>
where
    F: Fn(&Payment, &[Refund]) -> (Decision, Applied) + Send + Sync,
{
    for _ in 0..16 {
        let payment = match snapshot.take() {
            Some(p) => p,
            None => store
                .payment(id)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("payment {id} vanished")))?,
        };
        let refunds = if with_refunds {
            store.refunds_of(id).await?
        } else {
            Vec::new()
        };
        let (decision, applied) = decide(&payment, &refunds);
        match decision {
            Decision::Nothing => return Ok(applied),
            Decision::Commit(change) => match store.commit(*change).await? {
                Commit::Committed => return Ok(applied),
                Commit::Conflict => continue,
            },
        }
    }
    Err(StoreError::Conflict(format!(
        "payment {id} keeps changing under us; giving up for now"
    )))
}
