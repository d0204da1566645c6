//! The short loop while a buyer waits: a lost notification's payment is found by the pages'
//! polls, with one query at a time however many pages (and instances) nudge it.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::lock::MemoryLockManager;
use aggregate_pay::short_poll::Nudge;
use aggregate_pay::{Fen, NewPayment, PayMethod, PaymentStatus, ShortPoll};

use crate::support::{events_of, sandbox, stores, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_pages_nudging_make_one_query_per_interval_and_find_the_payment() {
    for (engine, store) in stores().await {
        let (channel, _, payments) = sandbox(&store);
        let locks = Arc::new(MemoryLockManager::new());
        // Two instances sharing the locks.
        let polls = [
            ShortPoll::new(payments.clone(), locks.clone()),
            ShortPoll::new(payments.clone(), locks.clone()),
        ]
        .map(|p| {
            // A wide first wait: the "too young" check below must hold on a loaded machine.
            p.timing(
                Duration::from_millis(1500),
                Duration::from_millis(400),
                Duration::from_secs(60),
            )
        });
        let (p, _) = payments
            .create(NewPayment::new(
                unique("SP"),
                Fen::new(250),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        // Too young: its notification may still come.
        assert_eq!(
            polls[0].nudge(&p.out_trade_no).await.unwrap(),
            Nudge::NotDue
        );
        tokio::time::sleep(Duration::from_millis(1550)).await;

        // Twenty pages at once, not paid yet: one of them asks.
        let before = channel.queries();
        let nudges =
            futures_util::future::join_all((0..20).map(|i| polls[i % 2].nudge(&p.out_trade_no)))
                .await;
        let queried = nudges
            .iter()
            .filter(|n| matches!(n, Ok(Nudge::Queried(_))))
            .count();
        assert_eq!(queried, 1, "{engine}: {nudges:?}");
        assert_eq!(channel.queries() - before, 1, "{engine}");

        // Paid meanwhile, its notification lost; the pages keep polling.
        let _lost = channel.pay(&p.out_trade_no).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let _ = futures_util::future::join_all(
                (0..20).map(|i| polls[i % 2].nudge(&p.out_trade_no)),
            )
            .await;
            if payments.get(&p.id).await.unwrap().status == PaymentStatus::Paid {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{engine}: never found"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // One query per interval: two intervals at most went by.
        assert!(
            channel.queries() - before <= 3,
            "{engine}: {}",
            channel.queries() - before
        );
        assert_eq!(events_of(&store, &p.id).await.len(), 1, "{engine}");
        // Paid: nothing more to ask.
        assert_eq!(
            polls[1].nudge(&p.out_trade_no).await.unwrap(),
            Nudge::NotDue
        );
    }
}

#[tokio::test]
async fn the_loop_stops_after_its_time() {
    let (_, store) = stores().await.remove(0);
    let (channel, _, payments) = sandbox(&store);
    let poll = ShortPoll::new(payments.clone(), Arc::new(MemoryLockManager::new())).timing(
        Duration::ZERO,
        Duration::from_millis(100),
        Duration::from_millis(200),
    );
    let (p, _) = payments
        .create(NewPayment::new(
            unique("SO"),
            Fen::new(250),
            "x",
            PayMethod::Sandbox,
            "http://n",
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = channel.queries();
    assert_eq!(poll.nudge(&p.out_trade_no).await.unwrap(), Nudge::NotDue);
    assert_eq!(channel.queries(), before, "the reconciler's now");
}
