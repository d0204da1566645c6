//! The notify template against every store.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use aggregate_pay::channels::RawNotify;
use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    EventKind, Fen, NewPayment, NotifyOutcome, NotifyProcessor, PayMethod, PaymentStatus,
};

use crate::support::{Flaky, events_of, sandbox, stores, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_identical_notifications_make_one_transition_and_one_event() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = Arc::new(NotifyProcessor::new(channels, store.clone()));
        let no = unique("N");
        let (payment, _) = payments
            .create(NewPayment::new(
                &no,
                Fen::new(350),
                "Cola",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let raw = channel.pay(&no).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (p, r) = (processor.clone(), raw.clone());
            tasks.push(tokio::spawn(async move { p.handle("sandbox", &r).await }));
        }
        let mut applied = 0;
        for t in tasks {
            let handled = t.await.unwrap();
            assert_eq!(
                handled.ack.body, "SUCCESS",
                "{engine}: every copy is acknowledged"
            );
            match handled.outcome {
                NotifyOutcome::Applied => applied += 1,
                NotifyOutcome::Duplicate => {}
                other => panic!("{engine}: unexpected {other:?}"),
            }
        }
        assert_eq!(applied, 1, "{engine}: exactly one transition");
        let events = events_of(&store, &payment.id).await;
        assert_eq!(events.len(), 1, "{engine}: exactly one event");
        assert_eq!(events[0].kind, EventKind::PaymentSucceeded);
        let paid = payments.get(&payment.id).await.unwrap();
        assert_eq!(paid.status, PaymentStatus::Paid);
        assert!(paid.channel_transaction_id.is_some());
    }
}

/// Many payments notified at once, three copies each, with refunds of earlier payments in
/// between: on SQLite these land in shared group commits. Each payment still makes exactly one
/// transition and one event, and every refund is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_notifications_of_many_payments_apply_once_each() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = Arc::new(NotifyProcessor::new(channels, store.clone()));
        let mut created = Vec::new();
        for i in 0..40 {
            let no = unique("M");
            let (payment, _) = payments
                .create(NewPayment::new(
                    &no,
                    Fen::new(100 + i),
                    "Gum",
                    PayMethod::Sandbox,
                    "http://n",
                ))
                .await
                .unwrap();
            created.push((payment, channel.pay(&no).unwrap()));
        }
        // The first ten are paid already and get refunded while the others are notified.
        for (payment, raw) in &created[..10] {
            processor.handle("sandbox", raw).await;
            assert_eq!(
                payments.get(&payment.id).await.unwrap().status,
                PaymentStatus::Paid
            );
        }
        let mut tasks = Vec::new();
        for (_, raw) in &created[10..] {
            for _ in 0..3 {
                let (p, r) = (processor.clone(), raw.clone());
                tasks.push(tokio::spawn(async move { p.handle("sandbox", &r).await }));
            }
        }
        let mut refunds = Vec::new();
        for (i, (payment, _)) in created[..10].iter().enumerate() {
            let (payments, id) = (payments.clone(), payment.id.clone());
            let amount = payment.amount;
            refunds.push(tokio::spawn(async move {
                payments
                    .refund(&id, &format!("R{i}-{}", id.0), amount, None, None)
                    .await
            }));
        }
        let mut applied = 0;
        for t in tasks {
            let handled = t.await.unwrap();
            assert_eq!(handled.ack.body, "SUCCESS", "{engine}");
            match handled.outcome {
                NotifyOutcome::Applied => applied += 1,
                NotifyOutcome::Duplicate => {}
                other => panic!("{engine}: unexpected {other:?}"),
            }
        }
        for r in refunds {
            r.await.unwrap().unwrap();
        }
        assert_eq!(applied, 30, "{engine}: one transition per payment");
        for (payment, _) in &created[10..] {
            let events = events_of(&store, &payment.id).await;
            assert_eq!(events.len(), 1, "{engine}: exactly one event");
            assert_eq!(events[0].kind, EventKind::PaymentSucceeded);
            assert_eq!(
                payments.get(&payment.id).await.unwrap().status,
                PaymentStatus::Paid
            );
        }
        for (payment, _) in &created[..10] {
            let p = payments.get(&payment.id).await.unwrap();
            assert_eq!(p.status, PaymentStatus::Refunded, "{engine}");
            assert_eq!(p.refunded_amount, p.amount, "{engine}");
        }
    }
}

#[tokio::test]
async fn an_amount_mismatch_is_flagged_never_paid() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let no = unique("M");
        let (payment, _) = payments
            .create(NewPayment::new(
                &no,
                Fen::new(350),
                "Cola",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let raw = channel.pay_amount(&no, Fen::new(349)).unwrap();
        for _ in 0..3 {
            let handled = processor.handle("sandbox", &raw).await;
            assert_eq!(handled.outcome, NotifyOutcome::AmountMismatch, "{engine}");
            assert_eq!(
                handled.ack.body, "SUCCESS",
                "{engine}: recorded, so acknowledged"
            );
        }
        let p = payments.get(&payment.id).await.unwrap();
        assert_eq!(
            p.status,
            PaymentStatus::Pending,
            "{engine}: never marked paid"
        );
        assert!(p.needs_review, "{engine}");
        let events = events_of(&store, &payment.id).await;
        assert_eq!(events.len(), 1, "{engine}: one alert, however many copies");
        assert_eq!(events[0].kind, EventKind::PaymentAmountMismatch);
        let mismatch = events[0].data.mismatch.as_ref().expect("what was reported");
        assert_eq!(mismatch.reported_amount, Fen::new(349), "{engine}");
        assert_eq!(mismatch.expected_amount, payment.amount, "{engine}");
    }
}

#[tokio::test]
async fn forged_unknown_and_misrouted_notifications_are_refused() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let no = unique("F");
        let (payment, _) = payments
            .create(NewPayment::new(
                &no,
                Fen::new(350),
                "Cola",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let raw = channel.pay(&no).unwrap();
        let tampered = RawNotify::payment(
            String::from_utf8(raw.body.clone())
                .unwrap()
                .replace(">350<", ">1<"),
        );
        let handled = processor.handle("sandbox", &tampered).await;
        assert!(
            matches!(handled.outcome, NotifyOutcome::Rejected(_)),
            "{engine}: {:?}",
            handled.outcome
        );
        assert_eq!(handled.ack.body, "FAIL");
        let garbage = processor
            .handle("sandbox", &RawNotify::payment("<xml><a>1</a>"))
            .await;
        assert!(matches!(garbage.outcome, NotifyOutcome::Rejected(_)));
        let unknown = channel.notification(&unique("X"), "sbx1", Fen::new(1));
        assert!(matches!(
            processor.handle("sandbox", &unknown).await.outcome,
            NotifyOutcome::Unknown(_)
        ));
        assert_eq!(
            processor.handle("wechat", &raw).await.outcome,
            NotifyOutcome::NoChannel
        );
        assert_eq!(
            payments.get(&payment.id).await.unwrap().status,
            PaymentStatus::Pending
        );
        assert!(events_of(&store, &payment.id).await.is_empty(), "{engine}");
    }
}

#[tokio::test]
async fn a_storage_failure_acks_fail_and_the_retry_succeeds() {
    for (engine, inner) in stores().await {
        let store: Arc<dyn PaymentStore> = Arc::new(Flaky {
            inner: inner.clone(),
            fail_commits: AtomicUsize::new(1),
        });
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let no = unique("S");
        let (payment, _) = payments
            .create(NewPayment::new(
                &no,
                Fen::new(350),
                "Cola",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let raw = channel.pay(&no).unwrap();
        let first = processor.handle("sandbox", &raw).await;
        assert!(
            matches!(first.outcome, NotifyOutcome::StoreFailed(_)),
            "{engine}"
        );
        assert_eq!(
            first.ack.body, "FAIL",
            "{engine}: not acknowledged, so the channel retries"
        );
        assert_eq!(
            payments.get(&payment.id).await.unwrap().status,
            PaymentStatus::Pending
        );
        // The channel's retry.
        let retry = processor.handle("sandbox", &raw).await;
        assert_eq!(retry.outcome, NotifyOutcome::Applied, "{engine}");
        assert_eq!(
            payments.get(&payment.id).await.unwrap().status,
            PaymentStatus::Paid
        );
        assert_eq!(
            events_of(&store, &payment.id).await.len(),
            1,
            "{engine}: nothing lost, nothing doubled"
        );
    }
}

/// A PostgreSQL server's URL (`TEST_POSTGRES_URL`), a fresh database on it, and a store on
/// that database holding `history` payments `{prefix}-1`… in `status` (version 1), analyzed —
/// a table with a history, as in production.
#[cfg(feature = "postgres")]
async fn postgres_with_history(
    prefix: &str,
    history: u32,
    status: &str,
) -> Option<(String, String, Arc<aggregate_pay::store::SqlStore>)> {
    let url = crate::support::engine_url("TEST_POSTGRES_URL")?;
    let db_url = crate::support::fresh_database(&url).await;
    let store = Arc::new(
        aggregate_pay::store::SqlStore::connect(&db_url)
            .await
            .unwrap(),
    );
    let insert = format!(
        "INSERT INTO payments (id, out_trade_no, channel, channel_account, method, amount, \
         currency, subject, status, channel_transaction_id, refunded_amount, needs_review, \
         open_id, metadata, created_at, updated_at, paid_at, expires_at, version, \
         reconcile_after) SELECT '{prefix}-' || i, '{prefix}' || i, 'sandbox', \
         'sandbox-account', 'sandbox', 100, 'CNY', 'Gum', '{status}', NULL, 0, 0, NULL, '{{}}', \
         0, 0, NULL, NULL, 1, 0 FROM generate_series(1, {history}) AS i"
    );
    for q in [insert.as_str(), "ANALYZE payments"] {
        sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
            .execute(store.pool())
            .await
            .unwrap();
    }
    Some((url, db_url, store))
}

/// Commits each `(store, payment)` as a change of that payment, all at once (so that the
/// stores group them); how many committed.
#[cfg(feature = "postgres")]
async fn commit_at_once(
    changes: Vec<(Arc<aggregate_pay::store::SqlStore>, aggregate_pay::Payment)>,
) -> usize {
    use aggregate_pay::store::{Change, Commit};
    let tasks: Vec<_> = changes
        .into_iter()
        .map(|(store, payment)| {
            tokio::spawn(async move {
                store
                    .commit(Change {
                        payment,
                        refund: None,
                        events: Vec::new(),
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut committed = 0;
    for t in tasks {
        if t.await.unwrap() == Commit::Committed {
            committed += 1;
        }
    }
    committed
}

/// Two instances commit the same changes to the same payments at once, one of them in reverse
/// order, so that their group statements hold the same payments in different orders. They lock
/// them in id order, so PostgreSQL never has a deadlock to break — each one cost a second (its
/// `deadlock_timeout`) and a failed group written again change by change.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_group_commits_never_deadlock_on_postgresql() {
    // With a history the update finds its payments through the index, in the order of its
    // input (on a tiny table it scans, always in one order).
    let Some((url, db_url, one)) = postgres_with_history("old", 20_000, "PAID").await else {
        return;
    };
    let name = db_url.rsplit('/').next().unwrap().to_owned();
    let other = Arc::new(
        aggregate_pay::store::SqlStore::connect(&db_url)
            .await
            .unwrap(),
    );
    let store: Arc<dyn PaymentStore> = one.clone();
    let (_, _, payments) = sandbox(&store);
    let mut paid = Vec::new();
    for _ in 0..1000 {
        let no = unique("D");
        let (mut payment, _) = payments
            .create(NewPayment::new(
                &no,
                Fen::new(100),
                "Gum",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        payment.status = PaymentStatus::Paid;
        paid.push(payment);
    }
    let changes = paid
        .iter()
        .map(|p| (one.clone(), p.clone()))
        .chain(paid.iter().rev().map(|p| (other.clone(), p.clone())))
        .collect();
    assert_eq!(
        commit_at_once(changes).await,
        paid.len(),
        "one of the two changes of each payment"
    );
    // The server processes report their statistics as they end: end them, then read.
    one.pool().close().await;
    other.pool().close().await;
    let deadlocks = reported(
        &url,
        "SELECT deadlocks FROM pg_stat_database WHERE datname = $1",
        &name,
    )
    .await;
    assert_eq!(deadlocks, 0, "group commits deadlocked each other");
}

/// A statistics counter of PostgreSQL (`sql`, one bigint, `$1` = `arg`) read on `url` once the
/// server processes that count have ended (the pools closed): the largest value seen over two
/// seconds, as they report when they end.
#[cfg(feature = "postgres")]
async fn reported(url: &str, sql: &str, arg: &str) -> i64 {
    use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let mut seen = 0i64;
    for _ in 0..10 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let _ = sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .await;
        let now: i64 = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .bind(arg.to_owned())
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        seen = seen.max(now);
        if seen > 0 {
            break;
        }
    }
    seen
}

/// A group of changes finds its payments through the primary key. With `id IN (SELECT …)` or a
/// join, the planner took a group for 100 rows and, on a table of a few thousand payments,
/// scanned every payment twice per group (the locks, the update).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_commit_never_scans_every_payment_on_postgresql() {
    use aggregate_pay::PaymentId;
    let Some((_, db_url, store)) = postgres_with_history("grp", 3000, "PENDING").await else {
        return;
    };
    let mut changes = Vec::new();
    for i in (1..=3000).step_by(30) {
        let mut payment = store
            .payment(&PaymentId(format!("grp-{i}")))
            .await
            .unwrap()
            .unwrap();
        payment.status = PaymentStatus::Paid;
        changes.push((store.clone(), payment));
    }
    assert_eq!(commit_at_once(changes).await, 100);
    store.pool().close().await;
    // (Building the indexes at migration counts as scans, of an empty table: rows, not scans.)
    let rows = reported(
        &db_url,
        "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = $1",
        "payments",
    )
    .await;
    assert_eq!(
        rows, 0,
        "statements read {rows} payments by scanning the table"
    );
}
