//! The reconciler: lost notifications and expired payments, and two instances at once.

use std::time::Duration;

use std::sync::Arc;

use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    ChannelError, EventKind, Fen, NewPayment, NotifyProcessor, PayMethod, PaymentId, PaymentStatus,
    Reconciler, RefundStatus,
};
use time::OffsetDateTime;

use crate::support::{events_of, paid_payment, sandbox, stores, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reconcilers_at_once_never_double_an_event() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let mut paid = Vec::new();
        let mut expired = Vec::new();
        for i in 0..24 {
            let mut req = NewPayment::new(
                unique("RC"),
                Fen::new(100 + i),
                "Snack",
                PayMethod::Sandbox,
                "http://n",
            );
            if i % 3 == 0 {
                req = req.expires_at(OffsetDateTime::now_utc() - Duration::from_secs(1));
            }
            let (p, _) = payments.create(req).await.unwrap();
            if i % 3 == 0 {
                expired.push(p);
            } else {
                // Paid at the channel, notification lost.
                channel.pay(&p.out_trade_no).unwrap();
                paid.push(p);
            }
        }
        // Everything is "stale" at once; a short lease so that the two instances also collide.
        let a = Reconciler::new(channels.clone(), store.clone(), Duration::ZERO)
            .lease(Duration::from_millis(1));
        let b = Reconciler::new(channels.clone(), store.clone(), Duration::ZERO)
            .lease(Duration::from_millis(1));
        for _ in 0..3 {
            let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
            ra.unwrap();
            rb.unwrap();
        }
        for p in &paid {
            let now = payments.get(&p.id).await.unwrap();
            assert_eq!(now.status, PaymentStatus::Paid, "{engine}");
            let events = events_of(&store, &p.id).await;
            assert_eq!(
                events.len(),
                1,
                "{engine}: one event for {}",
                p.out_trade_no
            );
            assert_eq!(events[0].kind, EventKind::PaymentSucceeded);
        }
        for p in &expired {
            assert_eq!(
                payments.get(&p.id).await.unwrap().status,
                PaymentStatus::Closed,
                "{engine}"
            );
            let events = events_of(&store, &p.id).await;
            assert_eq!(events.len(), 1, "{engine}");
            assert_eq!(events[0].kind, EventKind::PaymentClosed);
        }
    }
}

#[tokio::test]
async fn fresh_payments_are_left_alone() {
    for (engine, store) in stores().await {
        let (_, channels, payments) = sandbox(&store);
        let (p, _) = payments
            .create(NewPayment::new(
                unique("FR"),
                Fen::new(1),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let r = Reconciler::new(channels, store.clone(), Duration::from_secs(3600));
        let report = r.run_once().await.unwrap();
        assert_eq!(report.paid + report.closed, 0, "{engine}");
        assert_eq!(
            payments.get(&p.id).await.unwrap().status,
            PaymentStatus::Pending
        );
    }
}

/// Waits until the clock has moved on: "stale after zero" means made before now, and the SQL
/// stores keep milliseconds, so a refund made in the reconciler's millisecond is not stale yet
/// (a fast machine made this test fail once).
async fn a_moment_later() {
    tokio::time::sleep(Duration::from_millis(2)).await;
}

/// The reconciler as the refund tests run it: everything stale at once, no backoff.
fn eager(channels: &aggregate_pay::Channels, store: &Arc<dyn PaymentStore>) -> Reconciler {
    Reconciler::new(channels.clone(), store.clone(), Duration::ZERO)
        .lease(Duration::from_millis(1))
        .refund_backoff(Duration::ZERO, Duration::ZERO)
}

fn system_error() -> ChannelError {
    ChannelError::Unavailable {
        code: "SYSTEMERROR".into(),
        message: "系统超时".into(),
        retry_after: None,
    }
}

#[tokio::test]
async fn a_refund_without_a_definitive_answer_stays_pending_and_is_settled_once() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let reconciler = eager(&channels, &store);
        // (the error, whether the provider made the refund before the answer was lost)
        let cases = [
            (system_error(), false),
            (ChannelError::Transport("timed out".into()), true),
            (
                ChannelError::Unavailable {
                    code: "SOMETHING_NEW".into(),
                    message: "?".into(),
                    retry_after: None,
                },
                false,
            ),
            // An answer that cannot be trusted says nothing about whether the money moved.
            (
                ChannelError::Signature("the answer's signature does not match".into()),
                true,
            ),
            (ChannelError::Decode("refund_id missing".into()), true),
            (
                ChannelError::Config("no merchant certificate".into()),
                false,
            ),
        ];
        for (error, made) in cases {
            let what = format!("{engine}: {error} (made: {made})");
            let p = paid_payment(&payments, &channel, &processor, "RF", 500).await;
            channel.fail_next_refund(error.clone(), made);
            let no = unique("R");
            let r = payments
                .refund(&p.id, &no, Fen::new(500), None, None)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.status, RefundStatus::Pending, "{what}");
            assert_eq!(
                r.last_error.as_deref(),
                Some(error.summary().as_str()),
                "{what}: the reason is kept"
            );
            assert_eq!(
                payments.get(&p.id).await.unwrap().status,
                PaymentStatus::Refunding,
                "{what}"
            );
            a_moment_later().await;
            let report = reconciler.run_once().await.unwrap();
            assert!(report.refunds_succeeded >= 1, "{what}: {report:?}");
            let r = payments.get_refund(&no).await.unwrap();
            assert_eq!(r.status, RefundStatus::Succeeded, "{what}");
            assert_eq!(
                payments.get(&p.id).await.unwrap().status,
                PaymentStatus::Refunded,
                "{what}"
            );
            assert_eq!(
                channel.refunded(&p.out_trade_no),
                Some(Fen::new(500)),
                "{what}: refunded once at the provider"
            );
            let refund_events = events_of(&store, &p.id)
                .await
                .into_iter()
                .filter(|e| e.kind == EventKind::RefundSucceeded)
                .count();
            assert_eq!(refund_events, 1, "{what}");
            // Nothing left for the reconciler; the same refund number again changes nothing.
            let again = reconciler.run_once().await.unwrap();
            assert_eq!(again.refunds_checked, 0, "{what}");
            let r = payments
                .refund(&p.id, &no, Fen::new(500), None, None)
                .await
                .unwrap();
            assert_eq!(r.status, RefundStatus::Succeeded, "{what}");
            assert_eq!(channel.refunded(&p.out_trade_no), Some(Fen::new(500)));
        }
    }
}

#[tokio::test]
async fn a_refund_waiting_for_the_balance_is_left_alone_until_then() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let reconciler = eager(&channels, &store);
        let p = paid_payment(&payments, &channel, &processor, "NE", 300).await;
        channel.fail_next_refund(
            ChannelError::Unavailable {
                code: "NOTENOUGH".into(),
                message: "余额不足".into(),
                retry_after: Some(Duration::from_secs(1800)),
            },
            false,
        );
        let no = unique("R");
        let r = payments
            .refund(&p.id, &no, Fen::new(100), None, None)
            .await
            .unwrap();
        assert_eq!(r.status, RefundStatus::Pending, "{engine}");
        let report = reconciler.run_once().await.unwrap();
        assert_eq!(report.refunds_checked, 0, "{engine}: it waits: {report:?}");
        assert_eq!(
            payments.get_refund(&no).await.unwrap().status,
            RefundStatus::Pending
        );
        assert_eq!(channel.refunded(&p.out_trade_no), Some(Fen::ZERO));
        // Half an hour later (the wait moved back to now):
        store
            .defer_refund(
                &no,
                Some(OffsetDateTime::now_utc() - Duration::from_secs(1)),
                None,
            )
            .await
            .unwrap();
        a_moment_later().await;
        let report = reconciler.run_once().await.unwrap();
        assert_eq!(report.refunds_succeeded, 1, "{engine}: {report:?}");
        assert_eq!(
            payments.get_refund(&no).await.unwrap().status,
            RefundStatus::Succeeded
        );
        assert_eq!(channel.refunded(&p.out_trade_no), Some(Fen::new(100)));
        // Partly refunded: the payment is PAID again with the amount recorded.
        let now = payments.get(&p.id).await.unwrap();
        assert_eq!(now.refunded_amount, Fen::new(100), "{engine}");
    }
}

#[tokio::test]
async fn a_definitive_refusal_fails_the_refund_at_once() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let p = paid_payment(&payments, &channel, &processor, "DR", 300).await;
        channel.fail_next_refund(
            ChannelError::Rejected {
                code: "TRADE_OVERDUE".into(),
                message: "订单已经超过退款期限".into(),
            },
            false,
        );
        let no = unique("R");
        let e = payments
            .refund(&p.id, &no, Fen::new(300), None, None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("TRADE_OVERDUE"), "{engine}: {e}");
        assert_eq!(
            payments.get_refund(&no).await.unwrap().status,
            RefundStatus::Failed,
            "{engine}"
        );
        assert_eq!(
            payments.get(&p.id).await.unwrap().status,
            PaymentStatus::Paid,
            "{engine}: the money is still the merchant's to refund"
        );
        let report = eager(&channels, &store).run_once().await.unwrap();
        assert_eq!(report.refunds_checked, 0, "{engine}");
    }
}

#[tokio::test]
async fn every_pending_payment_gets_its_turn_however_many_wait() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        // A thousand old payments from before expiries were set: pending forever at the channel
        // (it never heard of them), no expiry to close them.
        let old = OffsetDateTime::now_utc() - Duration::from_secs(3600);
        let (template, _) = payments
            .create(NewPayment::new(
                unique("OLD"),
                Fen::new(1),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        for _ in 0..999 {
            let mut p = template.clone();
            p.id = PaymentId::generate();
            p.out_trade_no = unique("OLD");
            p.created_at = old;
            p.updated_at = old;
            p.expires_at = None;
            store.insert_payment(&p).await.unwrap();
        }
        // A new one, paid at the channel, its notification lost.
        let (straggler, _) = payments
            .create(NewPayment::new(
                unique("NEW"),
                Fen::new(2),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        assert!(straggler.expires_at.is_some(), "a default expiry is set");
        channel.pay(&straggler.out_trade_no).unwrap();
        let reconciler = Reconciler::new(channels.clone(), store.clone(), Duration::ZERO)
            .lease(Duration::ZERO)
            .batch(100);
        let mut rounds = 0;
        while payments.get(&straggler.id).await.unwrap().status != PaymentStatus::Paid {
            rounds += 1;
            assert!(rounds <= 11, "{engine}: the straggler starved");
            reconciler.run_once().await.unwrap();
        }
        assert!(rounds >= 2, "{engine}: the old ones come first ({rounds})");
    }
}

/// Issue 27, finding 2: a refund answer that fails verification was taken as a refusal, the
/// refund FAILED, and a second refund number could be issued for the same money.
#[tokio::test]
async fn an_unverifiable_refund_answer_holds_the_money_and_no_second_number_is_accepted() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let p = paid_payment(&payments, &channel, &processor, "UV", 300).await;
        // The provider made the refund; its answer does not verify.
        channel.fail_next_refund(
            ChannelError::Signature("the answer's signature does not match".into()),
            true,
        );
        let first = unique("R");
        let r = payments
            .refund(&p.id, &first, Fen::new(300), None, None)
            .await
            .unwrap();
        assert_eq!(r.status, RefundStatus::Pending, "{engine}: not a refusal");
        // The attacker's move (or a confused operator's): the same money under a new number.
        let second = payments
            .refund(&p.id, &unique("R"), Fen::new(300), None, None)
            .await;
        assert!(
            matches!(second, Err(aggregate_pay::Error::Invalid(_))),
            "{engine}: {second:?}"
        );
        assert_eq!(channel.refunded(&p.out_trade_no), Some(Fen::new(300)));
        // The reconciler asks the channel, which has it: settled once, never sent twice.
        a_moment_later().await;
        let report = eager(&channels, &store).run_once().await.unwrap();
        assert_eq!(report.refunds_succeeded, 1, "{engine}: {report:?}");
        assert_eq!(
            payments.get_refund(&first).await.unwrap().status,
            RefundStatus::Succeeded
        );
        let payment = payments.get(&p.id).await.unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunded, "{engine}");
        assert_eq!(payment.refunded_amount, Fen::new(300));
        assert_eq!(
            channel.refunded(&p.out_trade_no),
            Some(Fen::new(300)),
            "{engine}: one refund at the provider"
        );
    }
}

/// The refund as schema version 4 leaves one that an older version recorded FAILED: re-opened,
/// its payment REFUNDING (written here through the store, as the migration writes it in SQL).
async fn reopened_failure(
    store: &Arc<dyn PaymentStore>,
    payments: &aggregate_pay::Payments,
    payment: &aggregate_pay::Payment,
    out_refund_no: &str,
    amount: u64,
) {
    use aggregate_pay::store::{Change, Commit, RefundChange};
    let now = OffsetDateTime::now_utc();
    let mut refund =
        aggregate_pay::Refund::new(payment.id.clone(), out_refund_no, Fen::new(amount), now);
    refund.last_error = Some(format!(
        "{}: recorded FAILED before refusals were told from temporary errors",
        aggregate_pay::service::UNVERIFIED_FAILURE
    ));
    let current = payments.get(&payment.id).await.unwrap();
    let mut next = current.clone();
    next.status = PaymentStatus::Refunding;
    let committed = store
        .commit(Change {
            payment: next,
            refund: Some(RefundChange::Insert(refund)),
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(committed, Commit::Committed);
}

/// Issue 27, finding 1 (refunds already lost): a refund an older version recorded FAILED on a
/// temporary error is picked up again — sent with the same number when the channel never got
/// it and nothing replaced it, settled when the channel has it, and left failed (verified) when
/// a later refund of the payment replaced it.
#[tokio::test]
async fn refunds_failed_by_an_older_version_are_checked_again() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let reconciler = eager(&channels, &store);

        // Never reached the channel, nothing replaced it: sent again, the buyer is refunded.
        let lost = paid_payment(&payments, &channel, &processor, "OL", 350).await;
        let lost_no = unique("R");
        reopened_failure(&store, &payments, &lost, &lost_no, 350).await;

        // Replaced by a later refund of the same money: never sent twice.
        let replaced = paid_payment(&payments, &channel, &processor, "OR", 300).await;
        let replaced_no = unique("R");
        reopened_failure(&store, &payments, &replaced, &replaced_no, 100).await;
        a_moment_later().await;
        let later = payments
            .refund(&replaced.id, &unique("R"), Fen::new(100), None, None)
            .await
            .unwrap();
        assert_eq!(later.status, RefundStatus::Succeeded, "{engine}");

        a_moment_later().await;
        let report = reconciler.run_once().await.unwrap();
        assert_eq!(report.refunds_checked, 2, "{engine}: {report:?}");
        let r = payments.get_refund(&lost_no).await.unwrap();
        assert_eq!(r.status, RefundStatus::Succeeded, "{engine}: {r:?}");
        assert_eq!(channel.refunded(&lost.out_trade_no), Some(Fen::new(350)));
        assert_eq!(
            payments.get(&lost.id).await.unwrap().status,
            PaymentStatus::Refunded
        );

        let r = payments.get_refund(&replaced_no).await.unwrap();
        assert_eq!(r.status, RefundStatus::Failed, "{engine}: {r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("NOT_AT_CHANNEL")),
            "{engine}: {r:?}"
        );
        assert_eq!(
            channel.refunded(&replaced.out_trade_no),
            Some(Fen::new(100)),
            "{engine}: the replaced refund was not made again"
        );
        let p = payments.get(&replaced.id).await.unwrap();
        assert_eq!(p.status, PaymentStatus::PartiallyRefunded, "{engine}");
        assert_eq!(p.refunded_amount, Fen::new(100));
    }
}
