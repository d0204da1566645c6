//! The state changes a channel fact causes, decided in one place for notifications, the
//! reconciler and the service alike, and applied with compare-and-set retries.

use time::OffsetDateTime;

use crate::events::{AmountMismatch, EventData, EventKind, NewEvent};
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
    currency: &str,
    now: OffsetDateTime,
) -> (Decision, Applied) {
    if amount != p.amount || currency != p.currency {
        if p.needs_review {
            return (Decision::Nothing, Applied::Flagged);
        }
        let mut next = p.clone();
        next.needs_review = true;
        let data = EventData::mismatch(
            &next,
            AmountMismatch {
                expected_amount: p.amount,
                reported_amount: amount,
                expected_currency: p.currency.clone(),
                reported_currency: currency.to_owned(),
                channel_transaction_id: transaction_id.to_owned(),
            },
        );
        return (
            Decision::Commit(Box::new(Change {
                payment: next,
                refund: None,
                events: vec![NewEvent::new(EventKind::PaymentAmountMismatch, data)],
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
    // The event shows the payment as it will be once committed (it carries no version).
    let event = NewEvent::new(EventKind::PaymentSucceeded, EventData::payment(&next));
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
    let event = NewEvent::new(kind, EventData::payment(&next));
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
fn after_refunds(p: &Payment, refunded: Fen, refunds_open: bool) -> PaymentStatus {
    if refunded >= p.amount {
        PaymentStatus::Refunded
    } else if refunds_open {
        PaymentStatus::Refunding
    } else if refunded > Fen::ZERO {
        PaymentStatus::PartiallyRefunded
    } else {
        PaymentStatus::Paid
    }
}

/// The channel says where a refund is now (`to`), with the payment's refunds.
///
/// - PENDING → ABNORMAL: the money left the merchant but did not reach the payer; the refund
///   stays open (its amount counted as being refunded, the payment REFUNDING) until the merchant
///   resolves it — never back to PAID.
/// - PENDING or ABNORMAL → SUCCEEDED: the amount is counted as refunded.
/// - PENDING or ABNORMAL → FAILED: closed, nothing moved; `note` says why.
/// - Anything about a refund already final, the same state again, or "processing" for an
///   abnormal refund (a resolution under way): nothing.
pub(crate) fn refund_moved(
    p: &Payment,
    refund: &Refund,
    refunds: &[Refund],
    to: RefundStatus,
    channel_refund_id: Option<String>,
    note: Option<String>,
) -> (Decision, Applied) {
    if refund.status.is_final() || to == refund.status || to == RefundStatus::Pending {
        return (Decision::Nothing, Applied::Unchanged);
    }
    let others_open = refunds
        .iter()
        .any(|r| r.out_refund_no != refund.out_refund_no && r.status.is_open());
    let mut next = p.clone();
    let mut r = refund.clone();
    r.channel_refund_id = channel_refund_id.or(r.channel_refund_id);
    r.updated_at = OffsetDateTime::now_utc();
    r.status = to;
    let kind = match to {
        RefundStatus::Succeeded => {
            next.refunded_amount = p
                .refunded_amount
                .checked_add(refund.amount)
                .unwrap_or(p.amount);
            r.last_error = None;
            EventKind::RefundSucceeded
        }
        RefundStatus::Abnormal => {
            r.last_error = note.or(r.last_error);
            EventKind::RefundAbnormal
        }
        RefundStatus::Failed | RefundStatus::Pending => {
            r.last_error = note.or(r.last_error);
            EventKind::RefundFailed
        }
    };
    next.status = after_refunds(p, next.refunded_amount, others_open || to.is_open());
    let data = EventData::refund(&next, &r);
    (
        Decision::Commit(Box::new(Change {
            payment: next,
            refund: Some(RefundChange::Update {
                refund: r,
                expected: refund.status,
            }),
            events: vec![NewEvent::new(kind, data)],
        })),
        Applied::Changed,
    )
}

/// The channel confirms that a refund recorded FAILED here succeeded after all (the provider's
/// bill lists it, and its refund query answers SUCCESS): corrected to SUCCEEDED, its amount
/// counted as refunded, with its event. Any other refund moves as [`refund_moved`] says.
pub(crate) fn failed_refund_succeeded(
    p: &Payment,
    refund: &Refund,
    refunds: &[Refund],
    channel_refund_id: Option<String>,
) -> (Decision, Applied) {
    if refund.status != RefundStatus::Failed {
        return refund_moved(
            p,
            refund,
            refunds,
            RefundStatus::Succeeded,
            channel_refund_id,
            None,
        );
    }
    let mut reopened = refund.clone();
    reopened.status = RefundStatus::Pending;
    match refund_moved(
        p,
        &reopened,
        refunds,
        RefundStatus::Succeeded,
        channel_refund_id,
        None,
    ) {
        (Decision::Commit(mut change), applied) => {
            if let Some(RefundChange::Update { expected, .. }) = &mut change.refund {
                *expected = RefundStatus::Failed;
            }
            (Decision::Commit(change), applied)
        }
        other => other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::test_payment as payment;
    use crate::store::MemoryStore;

    fn refund(no: &str, amount: u64, status: RefundStatus) -> Refund {
        let now = OffsetDateTime::now_utc();
        Refund {
            id: format!("ref_{no}"),
            payment_id: PaymentId("pay_1".into()),
            out_refund_no: no.into(),
            amount: Fen::new(amount),
            status,
            channel_refund_id: None,
            reason: None,
            notify_url: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn change(d: Decision) -> Change {
        match d {
            Decision::Commit(c) => *c,
            Decision::Nothing => panic!("expected a change"),
        }
    }

    fn kinds(c: &Change) -> Vec<EventKind> {
        c.events.iter().map(|e| e.kind.clone()).collect()
    }

    #[test]
    fn paid_moves_pending_to_paid_once() {
        let now = OffsetDateTime::now_utc();
        let p = payment(350, PaymentStatus::Pending);
        let (d, applied) = paid(&p, "T1", Fen::new(350), "CNY", now);
        assert_eq!(applied, Applied::Changed);
        let c = change(d);
        assert_eq!(c.payment.status, PaymentStatus::Paid);
        assert_eq!(c.payment.channel_transaction_id.as_deref(), Some("T1"));
        assert_eq!(c.payment.paid_at, Some(now));
        assert_eq!(kinds(&c), [EventKind::PaymentSucceeded]);
        // The event shows the payment as it will be once committed.
        assert_eq!(c.events[0].data.payment.status, PaymentStatus::Paid);

        let mut already = c.payment;
        already.status = PaymentStatus::Paid;
        let (d, applied) = paid(&already, "T1", Fen::new(350), "CNY", now);
        assert!(matches!(d, Decision::Nothing));
        assert_eq!(applied, Applied::Unchanged, "a duplicate changes nothing");
    }

    #[test]
    fn money_for_a_closed_or_failed_payment_is_recorded_never_dropped() {
        for status in [PaymentStatus::Closed, PaymentStatus::Failed] {
            let (d, applied) = paid(
                &payment(350, status),
                "T1",
                Fen::new(350),
                "CNY",
                OffsetDateTime::now_utc(),
            );
            assert_eq!(applied, Applied::Changed, "{status:?}");
            assert_eq!(change(d).payment.status, PaymentStatus::Paid);
        }
    }

    #[test]
    fn a_wrong_amount_flags_for_review_once_and_never_marks_paid() {
        let p = payment(350, PaymentStatus::Pending);
        let (d, applied) = paid(&p, "T1", Fen::new(1), "CNY", OffsetDateTime::now_utc());
        assert_eq!(applied, Applied::Flagged);
        let c = change(d);
        assert_eq!(c.payment.status, PaymentStatus::Pending, "not paid");
        assert!(c.payment.needs_review);
        assert_eq!(kinds(&c), [EventKind::PaymentAmountMismatch]);
        let mismatch = c.events[0]
            .data
            .mismatch
            .as_ref()
            .expect("what was reported");
        assert_eq!(mismatch.expected_amount, Fen::new(350));
        assert_eq!(mismatch.reported_amount, Fen::new(1));
        assert!(c.events[0].data.payment.needs_review, "shown as held");

        let (d, applied) = paid(
            &c.payment,
            "T1",
            Fen::new(1),
            "CNY",
            OffsetDateTime::now_utc(),
        );
        assert!(
            matches!(d, Decision::Nothing),
            "one alert, not one per copy"
        );
        assert_eq!(applied, Applied::Flagged);
        // Off by one fen is still wrong.
        let (_, applied) = paid(&p, "T1", Fen::new(351), "CNY", OffsetDateTime::now_utc());
        assert_eq!(applied, Applied::Flagged);
        // So is the right number in another currency.
        let (d, applied) = paid(&p, "T1", Fen::new(350), "USD", OffsetDateTime::now_utc());
        assert_eq!(applied, Applied::Flagged);
        let c = change(d);
        assert_eq!(c.payment.status, PaymentStatus::Pending, "not paid");
        let mismatch = c.events[0]
            .data
            .mismatch
            .as_ref()
            .expect("what was reported");
        assert_eq!(mismatch.reported_currency, "USD");
    }

    #[test]
    fn only_a_pending_payment_ends() {
        let (d, applied) = ended(&payment(1, PaymentStatus::Pending), PaymentStatus::Closed);
        assert_eq!(applied, Applied::Changed);
        assert_eq!(kinds(&change(d)), [EventKind::PaymentClosed]);
        let (d, _) = ended(&payment(1, PaymentStatus::Pending), PaymentStatus::Failed);
        assert_eq!(kinds(&change(d)), [EventKind::PaymentFailed]);
        for status in [
            PaymentStatus::Paid,
            PaymentStatus::Closed,
            PaymentStatus::Refunded,
        ] {
            let (d, applied) = ended(&payment(1, status), PaymentStatus::Closed);
            assert!(matches!(d, Decision::Nothing), "{status:?}");
            assert_eq!(applied, Applied::Unchanged);
        }
    }

    #[test]
    fn refunds_move_the_payment_by_what_was_refunded_and_what_is_pending() {
        let mut p = payment(1000, PaymentStatus::Refunding);
        let part = refund("R1", 300, RefundStatus::Pending);
        let (d, _) = refund_moved(
            &p,
            &part,
            std::slice::from_ref(&part),
            RefundStatus::Succeeded,
            Some("C1".into()),
            None,
        );
        let c = change(d);
        assert_eq!(c.payment.status, PaymentStatus::PartiallyRefunded);
        assert_eq!(c.payment.refunded_amount, Fen::new(300));
        assert_eq!(kinds(&c), [EventKind::RefundSucceeded]);
        match &c.refund {
            Some(RefundChange::Update { refund, expected }) => {
                assert_eq!(refund.status, RefundStatus::Succeeded);
                assert_eq!(refund.channel_refund_id.as_deref(), Some("C1"));
                assert_eq!(*expected, RefundStatus::Pending);
            }
            other => panic!("{other:?}"),
        }

        // Another refund still pending: the payment is still refunding.
        let other = refund("R2", 100, RefundStatus::Pending);
        let (d, _) = refund_moved(
            &p,
            &part,
            &[part.clone(), other],
            RefundStatus::Succeeded,
            None,
            None,
        );
        assert_eq!(change(d).payment.status, PaymentStatus::Refunding);

        // The rest: fully refunded.
        p.refunded_amount = Fen::new(300);
        let rest = refund("R3", 700, RefundStatus::Pending);
        let (d, _) = refund_moved(
            &p,
            &rest,
            std::slice::from_ref(&rest),
            RefundStatus::Succeeded,
            None,
            None,
        );
        let c = change(d);
        assert_eq!(c.payment.status, PaymentStatus::Refunded);
        assert_eq!(c.payment.refunded_amount, Fen::new(1000));

        // A failed refund moves no money.
        let failed = refund("R4", 100, RefundStatus::Pending);
        let (d, _) = refund_moved(
            &p,
            &failed,
            std::slice::from_ref(&failed),
            RefundStatus::Failed,
            None,
            Some("REFUNDCLOSE: closed".into()),
        );
        let c = change(d);
        match &c.refund {
            Some(RefundChange::Update { refund, .. }) => {
                assert_eq!(refund.last_error.as_deref(), Some("REFUNDCLOSE: closed"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.payment.refunded_amount, Fen::new(300));
        assert_eq!(c.payment.status, PaymentStatus::PartiallyRefunded);
        assert_eq!(kinds(&c), [EventKind::RefundFailed]);

        // A refund that already finished: nothing.
        let done = refund("R1", 300, RefundStatus::Succeeded);
        for to in [
            RefundStatus::Succeeded,
            RefundStatus::Failed,
            RefundStatus::Abnormal,
        ] {
            let (d, applied) = refund_moved(&p, &done, &[], to, None, None);
            assert!(matches!(d, Decision::Nothing), "{to:?}");
            assert_eq!(applied, Applied::Unchanged);
        }
    }

    #[test]
    fn an_abnormal_refund_stays_counted_until_success_or_close_settles_it() {
        let p = payment(300, PaymentStatus::Refunding);
        let r = refund("R1", 300, RefundStatus::Pending);
        let (d, applied) = refund_moved(
            &p,
            &r,
            std::slice::from_ref(&r),
            RefundStatus::Abnormal,
            Some("W1".into()),
            Some("ABNORMAL: the card is closed".into()),
        );
        assert_eq!(applied, Applied::Changed);
        let c = change(d);
        assert_eq!(kinds(&c), [EventKind::RefundAbnormal]);
        assert_eq!(
            c.payment.status,
            PaymentStatus::Refunding,
            "never PAID again while the money is out"
        );
        assert_eq!(c.payment.refunded_amount, Fen::ZERO);
        let abnormal = match &c.refund {
            Some(RefundChange::Update { refund, expected }) => {
                assert_eq!(*expected, RefundStatus::Pending);
                assert_eq!(refund.status, RefundStatus::Abnormal);
                refund.clone()
            }
            other => panic!("{other:?}"),
        };
        assert!(abnormal.status.is_open());

        // Still abnormal, or processing again after the merchant applied: nothing changes.
        for to in [RefundStatus::Abnormal, RefundStatus::Pending] {
            let (d, _) = refund_moved(&c.payment, &abnormal, &[], to, None, None);
            assert!(matches!(d, Decision::Nothing), "{to:?}");
        }

        // WeChat's later SUCCESS: the money counts.
        let (d, applied) = refund_moved(
            &c.payment,
            &abnormal,
            std::slice::from_ref(&abnormal),
            RefundStatus::Succeeded,
            None,
            None,
        );
        assert_eq!(applied, Applied::Changed);
        let done = change(d);
        assert_eq!(done.payment.status, PaymentStatus::Refunded);
        assert_eq!(done.payment.refunded_amount, Fen::new(300));
        assert_eq!(kinds(&done), [EventKind::RefundSucceeded]);
        match &done.refund {
            Some(RefundChange::Update { expected, .. }) => {
                assert_eq!(*expected, RefundStatus::Abnormal)
            }
            other => panic!("{other:?}"),
        }

        // Or CLOSED: nothing moved, the payment is PAID again only now.
        let (d, _) = refund_moved(
            &c.payment,
            &abnormal,
            std::slice::from_ref(&abnormal),
            RefundStatus::Failed,
            None,
            Some("CLOSED: closed".into()),
        );
        let closed = change(d);
        assert_eq!(closed.payment.status, PaymentStatus::Paid);
        assert_eq!(kinds(&closed), [EventKind::RefundFailed]);
    }

    #[tokio::test]
    async fn a_conflict_reloads_and_decides_again() {
        let store = MemoryStore::new();
        let p = payment(350, PaymentStatus::Pending);
        store
            .insert_payment(&p)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Someone else changes the payment after our caller read it.
        let mut theirs = p.clone();
        theirs.metadata = serde_json::json!({"by": "someone else"});
        let committed = store
            .commit(Change {
                payment: theirs,
                refund: None,
                events: Vec::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(committed, Commit::Committed);

        let decisions = std::sync::atomic::AtomicUsize::new(0);
        let applied = apply_to_payment(&store, &p.id, Some(p.clone()), |p| {
            decisions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            paid(p, "T1", Fen::new(350), "CNY", OffsetDateTime::now_utc())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(applied, Applied::Changed);
        assert_eq!(
            decisions.into_inner(),
            2,
            "the stale snapshot conflicts, the reloaded payment commits"
        );
        let stored = store.payment(&p.id).await.ok().flatten();
        let stored = stored.unwrap_or_else(|| panic!("the payment vanished"));
        assert_eq!(stored.status, PaymentStatus::Paid);
        assert_eq!(
            stored.metadata["by"], "someone else",
            "their change is kept: decided again on it, not overwritten"
        );
    }
}
