//! A merchant with several instances handles each platform callback once: `merchant-client`'s
//! shared handled-event stores (Redis, and the merchant's PostgreSQL, MySQL or SQLite), each
//! seen by two `Callbacks` as two instances would: a failed handler lets the redelivery through,
//! a delivery handled elsewhere right now is busy, a claim whose instance died is taken over when
//! its lease runs out, and a handled event is a duplicate everywhere. The SQL store records an
//! event inside the merchant's own transaction: committed with its effects, or not at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use merchant_client::signing::sign_callback;
use merchant_client::{
    Callbacks, Claim, Error, Handled, HandledEvents, RedisHandledEvents, Secret, SqlHandledEvents,
};
use sqlx::Row;

use crate::support::{engine_urls, unique};

const SECRET: &str = "whsec_instances";

fn delivery(id: &str) -> (String, Vec<u8>) {
    let body = serde_json::json!({"id": id, "type": "payment.succeeded", "data": {}})
        .to_string()
        .into_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    (sign_callback(&Secret::new(SECRET), now, &body), body)
}

fn instance(store: Arc<dyn HandledEvents>) -> Callbacks {
    Callbacks::new(Secret::new(SECRET), store).lease(Duration::from_secs(30))
}

/// The behaviours every shared store must have.
async fn two_instances_handle_each_event_once(store: Arc<dyn HandledEvents>, what: &str) {
    let (a, b) = (instance(store.clone()), instance(store.clone()));
    let id = unique("evt_");
    let (header, body) = delivery(&id);
    let runs = Arc::new(AtomicUsize::new(0));

    // A fails: not recorded, B's redelivery runs it; then a duplicate on both.
    let failed = a
        .handle(&header, &body, |_| async { Err::<(), _>("database down") })
        .await;
    assert!(
        matches!(failed, Err(Error::Handler(_))),
        "{what}: {failed:?}"
    );
    let counted = runs.clone();
    let done = b
        .handle(&header, &body, |_| async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        })
        .await
        .unwrap();
    assert_eq!(done, Handled::Done, "{what}");
    for callbacks in [&a, &b] {
        let again = callbacks
            .handle(&header, &body, |_| async {
                panic!("a duplicate is not handled") as Result<(), String>
            })
            .await
            .unwrap();
        assert_eq!(again, Handled::Duplicate, "{what}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{what}");

    // While A handles an event, B's delivery of it is busy (the platform sends it again).
    let id = unique("evt_");
    let (header, body) = delivery(&id);
    let (entered_tx, entered) = tokio::sync::oneshot::channel();
    let (finish_tx, finish) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let (a, header, body) = (a.clone(), header.clone(), body.clone());
        tokio::spawn(async move {
            a.handle(&header, &body, |_| async move {
                let _ = entered_tx.send(());
                let _ = finish.await;
                Ok::<_, String>(())
            })
            .await
        })
    };
    entered.await.unwrap();
    let busy = b
        .handle(&header, &body, |_| async { Ok::<_, String>(()) })
        .await;
    assert!(
        matches!(busy, Err(Error::InProgress(_))),
        "{what}: {busy:?}"
    );
    finish_tx.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), Handled::Done, "{what}");

    // An instance died holding a claim: its lease runs out, another takes the event over.
    let id = unique("evt_");
    assert_eq!(
        store.claim(&id, Duration::from_millis(200)).await.unwrap(),
        Claim::Taken,
        "{what}"
    );
    assert_eq!(
        store.claim(&id, Duration::from_secs(30)).await.unwrap(),
        Claim::Busy,
        "{what}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (header, body) = delivery(&id);
    let taken_over = b
        .handle(&header, &body, |_| async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert_eq!(taken_over, Handled::Done, "{what}");
    // A release never forgets a handled event.
    store.release(&id).await.unwrap();
    assert_eq!(
        store.claim(&id, Duration::from_secs(1)).await.unwrap(),
        Claim::Handled,
        "{what}"
    );
}

#[tokio::test]
async fn redis_shares_handled_events_between_instances() {
    let Some([url]) = engine_urls(["TEST_REDIS_URL"]) else {
        return;
    };
    let store = RedisHandledEvents::connect(&url, &format!("{}:", unique("merchant-events-")))
        .await
        .unwrap();
    assert!(!format!("{store:?}").contains("redis://"), "{store:?}");
    two_instances_handle_each_event_once(Arc::new(store), "redis").await;
}

/// The SQL store on `url`, in a table of this run's.
async fn sql_store(url: &str) -> (SqlHandledEvents, sqlx::AnyPool, String) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap();
    let table = unique("handled_").replace('-', "_");
    let store = SqlHandledEvents::with_table(pool.clone(), &table)
        .await
        .unwrap();
    (store, pool, table)
}

#[tokio::test]
async fn sql_databases_share_handled_events_between_instances() {
    let Some([postgres, mysql]) = engine_urls(["TEST_POSTGRES_URL", "TEST_MYSQL_URL"]) else {
        return;
    };
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        std::env::temp_dir()
            .join(format!("{}.db", unique("handled-")))
            .display()
    );
    for (what, url) in [("postgres", postgres), ("mysql", mysql), ("sqlite", sqlite)] {
        let (store, _, _) = sql_store(&url).await;
        let shown = format!("{store:?}");
        assert!(!shown.contains(&url) && !shown.contains("://"), "{shown}");
        two_instances_handle_each_event_once(Arc::new(store), what).await;
    }
}

#[tokio::test]
async fn the_sql_store_records_an_event_in_the_merchants_own_transaction() {
    let Some([url]) = engine_urls(["TEST_POSTGRES_URL"]) else {
        return;
    };
    let (store, pool, table) = sql_store(&url).await;
    let orders = format!("{table}_orders");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {orders} (event_id VARCHAR(191) PRIMARY KEY)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let store = Arc::new(store);
    let callbacks = instance(store.clone());
    let keep = Duration::from_secs(3600);

    // The handler's effect and the event's record commit together…
    let id = unique("evt_");
    let (header, body) = delivery(&id);
    let handled = callbacks
        .handle(&header, &body, |event| {
            let (pool, store, orders) = (pool.clone(), store.clone(), orders.clone());
            async move {
                let id = event["id"].as_str().unwrap_or_default().to_owned();
                let mut tx = pool.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {orders} (event_id) VALUES ($1)"
                )))
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
                store
                    .mark_handled_in(&mut tx, &id, keep)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                tx.commit().await
            }
        })
        .await
        .unwrap();
    assert_eq!(handled, Handled::Done);
    // …or neither: a handler whose transaction is rolled back after marking leaves nothing.
    let rolled_back = unique("evt_");
    let (header2, body2) = delivery(&rolled_back);
    let failed = callbacks
        .handle(&header2, &body2, |event| {
            let (pool, store) = (pool.clone(), store.clone());
            async move {
                let id = event["id"].as_str().unwrap_or_default().to_owned();
                let mut tx = pool.begin().await?;
                store
                    .mark_handled_in(&mut tx, &id, keep)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                tx.rollback().await?;
                Err(sqlx::Error::Protocol("the shipment failed".into()))
            }
        })
        .await;
    assert!(matches!(failed, Err(Error::Handler(_))), "{failed:?}");
    let redelivered = callbacks
        .handle(&header2, &body2, |_| async { Ok::<_, String>(()) })
        .await
        .unwrap();
    assert_eq!(
        redelivered,
        Handled::Done,
        "the rolled-back event is handled again"
    );
    let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM {orders}"
    )))
    .fetch_one(&pool)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        callbacks
            .handle(&header, &body, |_| async { Ok::<_, String>(()) })
            .await
            .unwrap(),
        Handled::Duplicate
    );
    // Expired rows go.
    assert_eq!(store.prune().await.unwrap(), 0, "nothing has run out yet");
}
