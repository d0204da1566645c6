//! Reconciliation against the daily bill, with the sandbox channel's bill, on every store:
//! each class made on purpose and found, settled where it should be; a day run again changes
//! nothing; a bill not ready is asked again; two instances run a day once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::bills::{BillClass, BillRunStatus, china_day, items_csv};
use aggregate_pay::lock::MemoryLockManager;
use aggregate_pay::store::{Change, Commit, RefundChange};
use aggregate_pay::{
    BillOutcome, BillReconciler, ChannelError, EventKind, Fen, NewPayment, NotifyProcessor,
    PayMethod, PaymentChannel, PaymentStatus, RefundStatus,
};
use time::OffsetDateTime;

use crate::support::{bill_stores, events_of, paid_payment, sandbox, unique};

fn today() -> time::Date {
    china_day(OffsetDateTime::now_utc())
}

fn done(outcome: BillOutcome) -> aggregate_pay::bills::BillRun {
    match outcome {
        BillOutcome::Done(run) => run,
        other => panic!("not done: {other:?}"),
    }
}

#[tokio::test]
async fn every_class_is_found_and_the_settleable_ones_settled_once() {
    for (engine, store, bills) in bill_stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        // Matched: paid, notified.
        let matched = paid_payment(&payments, &channel, &processor, "BM", 300).await;
        // Paid at the provider, the notification lost: PENDING here.
        let (unpaid, _) = payments
            .create(NewPayment::new(
                unique("BU"),
                Fen::new(450),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        channel.pay(&unpaid.out_trade_no).unwrap();
        // An orphan: paid at the provider, never created here.
        let orphan_no = unique("BO");
        channel
            .create(&NewPayment::new(
                orphan_no.clone(),
                Fen::new(990),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        channel.pay(&orphan_no).unwrap();
        // Paid here, never at the provider (a notification the provider never meant).
        let (ghost, _) = payments
            .create(NewPayment::new(
                unique("BG"),
                Fen::new(120),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        processor
            .handle(
                "sandbox",
                &channel.notification(&ghost.out_trade_no, "sbx-ghost", Fen::new(120)),
            )
            .await;
        assert_eq!(
            payments.get(&ghost.id).await.unwrap().status,
            PaymentStatus::Paid
        );
        // The bill lists another amount.
        let differs = paid_payment(&payments, &channel, &processor, "BD", 500).await;
        channel.misstate_in_bill(differs.out_trade_no.clone(), Fen::new(5000));
        // A refund made at the provider whose answer was lost: PENDING here.
        let refunded = paid_payment(&payments, &channel, &processor, "BR", 800).await;
        channel.fail_next_refund(ChannelError::Transport("connection reset".into()), true);
        let pending = payments
            .refund(&refunded.id, &unique("RP"), Fen::new(300), None, None)
            .await
            .unwrap();
        assert_eq!(pending.status, RefundStatus::Pending, "{engine}");
        // A refund made at the provider that answered a refusal: FAILED here.
        let refused = paid_payment(&payments, &channel, &processor, "BF", 700).await;
        channel.fail_next_refund(
            ChannelError::Rejected {
                code: "NOT_ENOUGH".into(),
                message: "x".into(),
            },
            true,
        );
        let refused_no = unique("RF");
        let answer = payments
            .refund(&refused.id, &refused_no, Fen::new(700), None, None)
            .await;
        assert!(answer.is_err(), "{engine}: refused");
        let failed = payments.get_refund(&refused_no).await.unwrap();
        assert_eq!(failed.status, RefundStatus::Failed, "{engine}");

        // A refund recorded made here (a bug) that the provider never made.
        let ghost_refund_no = unique("RG");
        let mut made = aggregate_pay::Refund::new(
            matched.id.clone(),
            ghost_refund_no.clone(),
            Fen::new(100),
            OffsetDateTime::now_utc(),
        );
        made.status = RefundStatus::Succeeded;
        let mut refunded_here = payments.get(&matched.id).await.unwrap();
        refunded_here.refunded_amount = Fen::new(100);
        refunded_here.status = PaymentStatus::PartiallyRefunded;
        let change = Change {
            payment: refunded_here,
            refund: Some(RefundChange::Insert(made)),
            events: vec![],
        };
        assert_eq!(
            store.commit(change).await.unwrap(),
            Commit::Committed,
            "{engine}"
        );

        let reconciler = BillReconciler::new(
            channels.clone(),
            store.clone(),
            bills.clone(),
            Arc::new(MemoryLockManager::new()),
        );
        let run = done(reconciler.reconcile(today(), "sandbox").await.unwrap());
        assert_eq!(run.status, BillRunStatus::Done, "{engine}");
        let counts: BTreeMap<BillClass, u64> = run.counts.clone();
        // Bill rows: 6 payments (matched, unpaid, orphan, differs, refunded, refused) + 2 refunds.
        assert_eq!(run.totals.payments, 6, "{engine}");
        assert_eq!(run.totals.refunds, 2, "{engine}");
        assert_eq!(run.totals.refunded, Fen::new(1000), "{engine}");
        assert_eq!(
            counts.get(&BillClass::Matched),
            Some(&3),
            "{engine}: {counts:?}"
        );
        assert_eq!(counts.get(&BillClass::UnpaidHere), Some(&1), "{engine}");
        assert_eq!(counts.get(&BillClass::Orphan), Some(&1), "{engine}");
        assert_eq!(
            counts.get(&BillClass::MissingAtProvider),
            Some(&1),
            "{engine}"
        );
        assert_eq!(counts.get(&BillClass::AmountDiffers), Some(&1), "{engine}");
        assert_eq!(counts.get(&BillClass::RefundDiffers), Some(&3), "{engine}");
        assert_eq!(run.differences(), 7, "{engine}");
        assert_eq!(
            run.settled, 3,
            "{engine}: the unpaid payment and the two refunds"
        );

        // Settled through the query and the usual transitions, with their events.
        let now = payments.get(&unpaid.id).await.unwrap();
        assert_eq!(now.status, PaymentStatus::Paid, "{engine}");
        let kinds = |events: Vec<aggregate_pay::OutboxEvent>| {
            events.into_iter().map(|e| e.kind).collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(events_of(&store, &unpaid.id).await),
            [EventKind::PaymentSucceeded],
            "{engine}"
        );
        let pending_now = payments.get_refund(&pending.out_refund_no).await.unwrap();
        assert_eq!(pending_now.status, RefundStatus::Succeeded, "{engine}");
        let failed_now = payments.get_refund(&failed.out_refund_no).await.unwrap();
        assert_eq!(failed_now.status, RefundStatus::Succeeded, "{engine}");
        let refused_now = payments.get(&refused.id).await.unwrap();
        assert_eq!(refused_now.status, PaymentStatus::Refunded, "{engine}");
        assert_eq!(refused_now.refunded_amount, Fen::new(700), "{engine}");
        // Flagged, never fixed: the ghost stays as it is, the amount is not touched.
        assert_eq!(
            payments.get(&ghost.id).await.unwrap().status,
            PaymentStatus::Paid
        );
        assert!(!payments.get(&differs.id).await.unwrap().needs_review);
        let items = bills.bill_items(today(), "sandbox").await.unwrap();
        let class_of = |no: &str| {
            items
                .iter()
                .find(|i| i.number() == no)
                .map(|i| (i.class, i.settled))
        };
        assert_eq!(
            class_of(&unpaid.out_trade_no),
            Some((BillClass::UnpaidHere, true))
        );
        assert_eq!(class_of(&orphan_no), Some((BillClass::Orphan, false)));
        assert_eq!(
            class_of(&ghost.out_trade_no),
            Some((BillClass::MissingAtProvider, false))
        );
        assert_eq!(
            class_of(&differs.out_trade_no),
            Some((BillClass::AmountDiffers, false))
        );
        assert_eq!(
            class_of(&pending.out_refund_no),
            Some((BillClass::RefundDiffers, true))
        );
        assert_eq!(
            class_of(&failed.out_refund_no),
            Some((BillClass::RefundDiffers, true))
        );
        assert_eq!(class_of(&matched.out_trade_no), None);
        // Succeeded here, not at the provider: flagged, never fixed.
        assert_eq!(
            class_of(&ghost_refund_no),
            Some((BillClass::RefundDiffers, false))
        );
        assert_eq!(
            payments.get_refund(&ghost_refund_no).await.unwrap().status,
            RefundStatus::Succeeded
        );

        // Again: the same report, nothing changed, no event added.
        let events_before = store.events(None, 100_000).await.unwrap().len();
        let again = done(reconciler.reconcile(today(), "sandbox").await.unwrap());
        assert_eq!(again.counts, run.counts, "{engine}");
        assert_eq!(again.totals, run.totals, "{engine}");
        assert_eq!(again.bill_sha256, run.bill_sha256, "{engine}");
        assert_eq!(again.attempts, 2, "{engine}");
        assert_eq!(
            store.events(None, 100_000).await.unwrap().len(),
            events_before,
            "{engine}"
        );
        assert_eq!(
            bills.bill_items(today(), "sandbox").await.unwrap(),
            items,
            "{engine}"
        );

        // The CSV is the stored items, one line each.
        let csv = items_csv(&items);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), items.len() + 1, "{engine}");
        for (line, item) in lines[1..].iter().zip(&items) {
            assert!(line.contains(item.number()), "{line}");
            assert!(line.contains(item.class.as_str()), "{line}");
        }
        // The run is listed.
        let runs = bills.bill_runs(Some("sandbox"), 10).await.unwrap();
        assert_eq!(runs.len(), 1, "{engine}");
        assert_eq!(runs[0].counts, run.counts, "{engine}");
    }
}

#[tokio::test]
async fn a_bill_not_ready_is_asked_again_until_it_is() {
    for (engine, store, bills) in bill_stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        paid_payment(&payments, &channel, &processor, "NR", 300).await;
        channel.bill_not_ready(2);
        let reconciler = BillReconciler::new(
            channels,
            store.clone(),
            bills.clone(),
            Arc::new(MemoryLockManager::new()),
        );
        let first = reconciler.reconcile(today(), "sandbox").await.unwrap();
        let BillOutcome::NotReady(run) = first else {
            panic!("{engine}: {first:?}")
        };
        assert_eq!(run.status, BillRunStatus::NotReady);
        let run = done(
            reconciler
                .reconcile_until_ready(today(), "sandbox", Duration::from_millis(10), 5)
                .await
                .unwrap(),
        );
        assert_eq!(run.attempts, 3, "{engine}");
        assert_eq!(run.count(BillClass::Matched), 1, "{engine}");
        assert_eq!(run.differences(), 0, "{engine}");
    }
}

#[tokio::test]
async fn a_day_without_trades_is_an_empty_successful_run() {
    for (engine, store, bills) in bill_stores().await {
        let (_, channels, _) = sandbox(&store);
        let reconciler = BillReconciler::new(
            channels,
            store.clone(),
            bills.clone(),
            Arc::new(MemoryLockManager::new()),
        );
        let run = done(reconciler.reconcile(today(), "sandbox").await.unwrap());
        assert_eq!(run.totals.rows(), 0, "{engine}");
        assert_eq!(run.differences(), 0, "{engine}");
        assert_eq!(run.count(BillClass::Matched), 0, "{engine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_run_a_day_once() {
    for (engine, store, bills) in bill_stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let (unpaid, _) = payments
            .create(NewPayment::new(
                unique("TI"),
                Fen::new(450),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        channel.pay(&unpaid.out_trade_no).unwrap();
        let locks = Arc::new(MemoryLockManager::new());
        let a = BillReconciler::new(
            channels.clone(),
            store.clone(),
            bills.clone(),
            locks.clone(),
        );
        let b = BillReconciler::new(
            channels.clone(),
            store.clone(),
            bills.clone(),
            locks.clone(),
        );
        let (ra, rb) = tokio::join!(
            a.reconcile(today(), "sandbox"),
            b.reconcile(today(), "sandbox")
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let busy = outcomes
            .iter()
            .filter(|o| matches!(o, BillOutcome::Busy))
            .count();
        assert_eq!(busy, 1, "{engine}: {outcomes:?}");
        assert_eq!(events_of(&store, &unpaid.id).await.len(), 1, "{engine}");
        let run = bills.bill_run(today(), "sandbox").await.unwrap().unwrap();
        assert_eq!(run.attempts, 1, "{engine}");
    }
}

#[tokio::test]
async fn a_run_stopped_half_way_resumes_and_counts_the_same() {
    for (engine, store, bills) in bill_stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        for i in 0..5 {
            paid_payment(&payments, &channel, &processor, "RS", 100 + i).await;
        }
        let (unpaid, _) = payments
            .create(NewPayment::new(
                unique("RU"),
                Fen::new(450),
                "x",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        channel.pay(&unpaid.out_trade_no).unwrap();
        let reconciler = BillReconciler::new(
            channels,
            store.clone(),
            bills.clone(),
            Arc::new(MemoryLockManager::new()),
        );
        let full = done(reconciler.reconcile(today(), "sandbox").await.unwrap());
        // As if the process died after the first rows: the run is still RUNNING.
        let mut stopped = full.clone();
        stopped.status = BillRunStatus::Running;
        stopped.rows_done = 3;
        stopped.finished_at = None;
        bills.save_bill_run(&stopped).await.unwrap();
        let resumed = done(reconciler.reconcile(today(), "sandbox").await.unwrap());
        assert_eq!(resumed.counts, full.counts, "{engine}");
        assert_eq!(resumed.rows_done, 6, "{engine}");
        assert_eq!(resumed.count(BillClass::UnpaidHere), 1, "{engine}");
    }
}

#[tokio::test]
async fn a_day_runs_every_channel_and_an_unknown_one_is_an_error() {
    let (_, store, bills) = bill_stores().await.remove(0);
    let (_, channels, _) = sandbox(&store);
    let reconciler = BillReconciler::new(
        channels,
        store.clone(),
        bills,
        Arc::new(MemoryLockManager::new()),
    );
    let day = reconciler.reconcile_day(today()).await;
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].0, "sandbox");
    assert!(matches!(day[0].1, Ok(BillOutcome::Done(_))));
    let unknown = reconciler.reconcile(today(), "nope").await;
    assert!(matches!(
        unknown,
        Err(aggregate_pay::bills::BillError::UnknownChannel(_))
    ));
}
