//! Merchant-callback delivery through RabbitMQ to a local merchant endpoint, end to end:
//! publish (relay side) → queue → consumer → `MerchantCallbacks` (merchant lookup, signing,
//! HTTP POST) → the endpoint's 200 → ack.
//!
//! Two runs on the same broker, merchant and endpoint:
//! - one at a time: each event published and confirmed alone, consumer prefetch 1;
//! - batched: events published in batches of 500 with one confirm wait per batch, consumer
//!   prefetch 64 (callbacks in flight concurrently).
//!
//! `AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo bench -p examples --bench callback_delivery`
//! (`TEST_AMQP_URL` works too; `BENCH_EVENTS` sets the batched run's size, default 20000.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aggregate_pay::events::NewEvent;
use aggregate_pay::rabbitmq::{RabbitConsumer, RabbitPublisher, Topology, connect};
use aggregate_pay::store::SqlStore;
use aggregate_pay::{EventData, EventHandler, EventKind, OutboxEvent};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use examples::platform::callback_data::PaymentTag;
use examples::platform::callbacks::MerchantCallbacks;
use examples::platform::db::{Merchant, PlatformDb};
use examples::random::token;

/// Random hex for names and nonces of the benchmark (a failing random source ends it).
fn random_hex(bytes: usize) -> String {
    token(bytes).unwrap()
}
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn endpoint() -> (String, Arc<AtomicUsize>) {
    async fn receive(
        State(count): State<Arc<AtomicUsize>>,
        _body: axum::body::Bytes,
    ) -> StatusCode {
        count.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    }
    let count = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/callback", post(receive))
        .with_state(count.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, count)
}

fn events(merchant: &str, n: usize) -> Vec<OutboxEvent> {
    (0..n)
        .map(|i| {
            let tag = PaymentTag {
                merchant_id: merchant.to_owned(),
                out_trade_no: format!("order-{i}"),
                merchant_metadata: serde_json::Value::Null,
            };
            let data: EventData = serde_json::from_value(json!({"payment": {
                "payment_id": format!("pay_{i}"), "out_trade_no": format!("P{i}"),
                "channel": "sandbox", "method": "sandbox", "amount": 1000, "currency": "CNY",
                "subject": "bench", "status": "PAID", "channel_transaction_id": format!("sbx{i}"),
                "refunded_amount": 0, "metadata": tag.to_metadata(), "created_at": 0,
            }}))
            .unwrap();
            let event = NewEvent::new(EventKind::PaymentSucceeded, data);
            OutboxEvent::pending(&event, time::OffsetDateTime::now_utc())
        })
        .collect()
}

/// Delivers `n` events; returns deliveries per second.
async fn run(
    amqp: &str,
    handler: Arc<MerchantCallbacks>,
    merchant: &str,
    received: &AtomicUsize,
    n: usize,
    batched: bool,
) -> f64 {
    let conn = connect(amqp).await.unwrap();
    let topology = Topology::new(&format!("bench-{}", random_hex(6)), Duration::from_secs(1));
    let publisher = RabbitPublisher::new(&conn, topology.clone()).await.unwrap();
    let prefetch = if batched { 64 } else { 1 };
    let consumer = RabbitConsumer::new(&conn, topology.clone(), 3, prefetch)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let task = {
        let (consumer, stop) = (consumer.clone(), stop.clone());
        tokio::spawn(async move { consumer.run(handler, stop).await })
    };
    let list = events(merchant, n);
    let before = received.load(Ordering::SeqCst);
    let start = Instant::now();
    if batched {
        for chunk in list.chunks(500) {
            for r in publisher.handle_batch(chunk).await {
                r.unwrap();
            }
        }
    } else {
        for e in &list {
            publisher.handle(e).await.unwrap();
        }
    }
    let published = start.elapsed();
    while received.load(Ordering::SeqCst) < before + n {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = start.elapsed();
    stop.cancel();
    task.await.unwrap().unwrap();
    let ch = conn.create_channel().await.unwrap();
    topology.delete(&ch).await.unwrap();
    let _ = conn.close(200, "done".into()).await;
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / elapsed.as_secs_f64();
    println!(
        "{:<13} {n:>6} callbacks in {:>7.3} s = {rate:>8.0} deliveries/s (all published after {:.3} s)",
        if batched { "batched" } else { "one at a time" },
        elapsed.as_secs_f64(),
        published.as_secs_f64()
    );
    rate
}

#[tokio::main]
async fn main() {
    let Some(amqp) = std::env::var("AMQP_URL")
        .or_else(|_| std::env::var("TEST_AMQP_URL"))
        .ok()
    else {
        println!(
            "callback_delivery: set AMQP_URL (or TEST_AMQP_URL) to a RabbitMQ broker; nothing measured"
        );
        return;
    };
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (url, received) = endpoint().await;
    let path = std::env::temp_dir().join(format!("callback-bench-{}.db", random_hex(6)));
    let store = SqlStore::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let db = PlatformDb::new(store).await.unwrap();
    let merchant = Merchant {
        app_id: format!("mch_{}", random_hex(8)),
        name: "Bench Shop".into(),
        credit_code: "91350100M000100Y43".into(),
        notify_url: url,
        status: examples::platform::db::MerchantStatus::Active,
        secret: merchant_client::Secret::new(random_hex(32)),
        salt: merchant_client::Secret::new(random_hex(16)),
        previous_secret: None,
        previous_valid_until: None,
        open_id: None,
        bind_scene: None,
        bind_qr_url: None,
        wechat_sub_mchid: None,
        fee_bps: None,
        alipay_user_id: None,
    };
    db.insert_merchant(&merchant, 0).await.unwrap();
    let handler = Arc::new(MerchantCallbacks::new(
        db,
        false,
        examples::url_guard::OutboundPolicy::AllowPrivate,
        Duration::from_secs(5),
    ));

    // Warm up connections and caches.
    run(
        &amqp,
        handler.clone(),
        &merchant.app_id,
        &received,
        500,
        true,
    )
    .await;
    let single = run(
        &amqp,
        handler.clone(),
        &merchant.app_id,
        &received,
        (n / 10).max(500),
        false,
    )
    .await;
    let batched = run(&amqp, handler, &merchant.app_id, &received, n, true).await;
    println!("batched / one at a time = {:.1}x", batched / single);
    let _ = std::fs::remove_file(path);
}
