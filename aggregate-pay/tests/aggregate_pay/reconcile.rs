//! The reconciler: lost notifications and expired payments, and two instances at once.

use std::time::Duration;

use aggregate_pay::{EventKind, Fen, NewPayment, PayMethod, PaymentStatus, Reconciler};
use time::OffsetDateTime;

use crate::support::{events_of, sandbox, stores, unique};

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
