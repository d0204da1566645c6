//! The same flows on the real engines: PostgreSQL or MySQL for payments and the platform's
//! tables, Redis for nonces, RabbitMQ for merchant callbacks (batched publishing with confirms,
//! prefetching consumers, retry and dead queues).

use merchant_client::{CreatePayment, Fen};

use super::{MerchantEndpoint, Options, Platform, callbacks, eventually, open_api, unique};
use crate::support::{engine_urls, fresh_database};

fn engines(database_var: &str) -> Option<(String, String, String)> {
    let [db, amqp, redis] = engine_urls([database_var, "TEST_AMQP_URL", "TEST_REDIS_URL"])?;
    Some((db, amqp, redis))
}

async fn all_flows(database_var: &str) {
    let Some((db, amqp, redis)) = engines(database_var) else {
        return;
    };
    let options = Options {
        database_url: Some(fresh_database(&db, "pp_").await),
        amqp_url: Some(amqp),
        redis_url: Some(redis),
        max_attempts: 5,
        grace_secs: 3600,
        ..Options::default()
    };
    let p = Platform::start(options.clone()).await;
    open_api::every_call(&p).await;
    callbacks::exactly_one_callback(&p).await;
    callbacks::delivered_on_the_fourth_attempt(&p).await;
    p.stop().await;

    let p = Platform::start(Options {
        max_attempts: 2,
        ..options
    })
    .await;
    callbacks::dead_letter_then_redeliver(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn every_flow_on_postgres_redis_and_rabbitmq() {
    all_flows("TEST_POSTGRES_URL").await;
}

#[tokio::test]
async fn every_flow_on_mysql_redis_and_rabbitmq() {
    all_flows("TEST_MYSQL_URL").await;
}

/// Two platform instances on one database and one set of queues: both relay the outbox and
/// both consume, and every payment still gives exactly one callback.
#[tokio::test]
async fn two_instances_share_the_work_without_duplicates() {
    let Some((db, amqp, redis)) = engines("TEST_POSTGRES_URL") else {
        return;
    };
    let options = Options {
        database_url: Some(fresh_database(&db, "pp_").await),
        amqp_url: Some(amqp),
        redis_url: Some(redis),
        queue: Some(unique("pp-test-shared.")),
        ..Options::default()
    };
    let a = Platform::start(options.clone()).await;
    let b = Platform::start(options).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = a.register(&endpoint.url).await;
    // The merchant is known to both instances (one database).
    let via_b = b.client(&creds);
    let client = a.client(&creds);
    for i in 0..30 {
        let no = format!("multi-{i}");
        let created = client
            .create_payment(&CreatePayment::new(&no, Fen::new(100 + i), "Gum").method("sandbox"))
            .await
            .unwrap();
        a.cashier_sandbox_pay(&created.payment_token).await;
        assert_eq!(via_b.get_payment(&no).await.unwrap().status, "PAID");
    }
    eventually(20, "30 callbacks", async || {
        endpoint.accepted("payment.succeeded").len() >= 30
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut numbers: Vec<String> = endpoint
        .accepted("payment.succeeded")
        .iter()
        .map(|e| e["data"]["out_trade_no"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 30);
    assert_eq!(
        endpoint.accepted("payment.succeeded").len(),
        30,
        "no duplicates"
    );
    // WeChat re-sends an Official Account message it got no answer to; the copy that reaches
    // the other instance is dropped there (the deduper is Redis).
    let msg_id = 6_000_000_000_000_000_000 + u64::try_from(examples::clock::unix_now()).unwrap();
    let first = a.mp_text("o_mp_dedupe_user", "help", msg_id).await;
    assert!(first.contains("binding QR code"), "{first}");
    let copy = b.mp_text("o_mp_dedupe_user", "help", msg_id).await;
    assert!(!copy.contains("binding QR code"), "handled twice: {copy}");
    let other = b.mp_text("o_mp_dedupe_user", "help", msg_id + 1).await;
    assert!(other.contains("binding QR code"), "{other}");
    b.stop().await;
    a.stop().await;
}
