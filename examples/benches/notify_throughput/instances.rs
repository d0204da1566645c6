//! `-- --instances N` (or `BENCH_INSTANCES=N`): `vending-server` itself, N processes of one
//! deployment — one PostgreSQL database, Redis, RabbitMQ, and the machines over MQTT — in live
//! mode (staging: real credentials pointed at a standalone emulator this process runs).
//!
//! Before the servers start, orders are made as the order API makes them (the order, then its
//! payment at the emulator), on the three machines. Each notification goes to one instance in
//! turn; one in ten goes to every instance at the same moment (WeChat retrying while the first
//! answer is on its way, or two load-balanced deliveries). The machines are the `machine-sim`
//! logic on the broker; another subscriber counts the vend-out commands of each order.
//!
//! Afterwards the run is checked: every notification acknowledged, every payment PAID with
//! exactly one `payment.succeeded` event, every event delivered, every order COMPLETED, and
//! exactly one vend-out command per order — lost and doubled are counted, and must be zero.
//! Each server's resident memory and CPU are its own process's (`/proc/PID`).

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregate_pay::{Fen, NewPayment, PayMethod};
use examples::vending::config::VendingConfig;
use examples::vending::db::Order;
use examples::vending::machines::{
    SimBehaviour, Topics, VendCommand, mqtt_options, serve_simulator,
};
use examples::vending::wiring::wire;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio_util::sync::CancellationToken;
use wechat_pay::ApiKey;
use wechat_pay::test_util::TestSigner;
use wechat_sandbox::{MpApp, Sandbox};

use super::{Loader, WARM_UP, cpu_time, fresh_database, print, print_medians, random_hex, rss};

const APP_ID: &str = "wxbench0000000001";
const MCH_ID: &str = "1900000109";
const KEY: &str = "bench0123456789abcdef0123456789ab";
const APP_SECRET: &str = "bench-app-secret-0123";
const MACHINES: [&str; 3] = ["VM0001", "VM0002", "VM0003"];

/// Orders made before the servers start, one notification each.
const SETUP_CONCURRENCY: usize = 32;

struct Engines {
    postgres: String,
    redis: String,
    amqp: String,
    mqtt: String,
}

fn engines() -> Option<Engines> {
    let env = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    };
    Some(Engines {
        postgres: env(&["BENCH_POSTGRES_URL", "TEST_POSTGRES_URL"])?,
        redis: env(&["BENCH_REDIS_URL", "TEST_REDIS_URL"])?,
        amqp: env(&["BENCH_AMQP_URL", "TEST_AMQP_URL"])?,
        mqtt: env(&["BENCH_MQTT_URL", "TEST_MQTT_URL"])?,
    })
}

/// One `vending-server` process.
struct Instance {
    child: Child,
    url: String,
}

impl Instance {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss(&self) -> String {
        rss(&self.pid().to_string())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SIGTERM: the server drains and stops as it does under an orchestrator.
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The deployment's settings, as its operator would give them (environment variables).
fn settings(
    engines: &Engines,
    database: &str,
    prefix: &str,
    gateway: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database.to_owned()),
        ("REDIS_URL", engines.redis.clone()),
        ("REDIS_PREFIX", format!("{prefix}:")),
        ("AMQP_URL", engines.amqp.clone()),
        ("AMQP_PREFIX", prefix.to_owned()),
        ("MQTT_URL", engines.mqtt.clone()),
        ("MQTT_TOPIC_ROOT", prefix.to_owned()),
        ("WECHAT_APP_ID", APP_ID.to_owned()),
        ("WECHAT_MCH_ID", MCH_ID.to_owned()),
        ("WECHAT_API_KEY", KEY.to_owned()),
        ("WECHAT_PAY_BASE_URL", gateway.to_owned()),
        ("WECHAT_APP_SECRET", APP_SECRET.to_owned()),
        ("WECHAT_MP_BASE_URL", gateway.to_owned()),
        ("ORDER_TIMEOUT_SECS", "3600".to_owned()),
        // The load generator's connections wait between phases: not idle clients to drop.
        ("HEADER_READ_TIMEOUT_SECS", "600".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// The same settings as the server's configuration, for the set-up done in this process.
fn config_of(settings: &[(&'static str, String)]) -> VendingConfig {
    let mut args = vec!["vending-server".to_owned()];
    for (k, v) in settings {
        if *k == "RUST_LOG" {
            continue;
        }
        args.push(format!(
            "--{}={v}",
            k.to_ascii_lowercase().replace('_', "-")
        ));
    }
    <VendingConfig as clap::Parser>::parse_from(args)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_instance(
    runtime: &tokio::runtime::Runtime,
    settings: &[(&'static str, String)],
    port: u16,
    log: &std::path::Path,
) -> Instance {
    let url = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(log).unwrap();
    let log_too = log.try_clone().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vending-server"))
        .env_clear()
        .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("PUBLIC_URL", &url)
        .stdout(log_too)
        .stderr(log)
        .spawn()
        .unwrap();
    let instance = Instance { child, url };
    let health = format!("{}/healthz", instance.url);
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let up = reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "vending-server did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    instance
}

/// Vend-out commands seen on the broker, per order.
type Counts = Arc<Mutex<HashMap<String, u32>>>;

async fn count_commands(url: &str, topics: &Topics, stop: CancellationToken) -> Counts {
    let counts: Counts = Arc::default();
    let (client, mut eventloop) =
        AsyncClient::new(mqtt_options(url, "bench-counter").unwrap(), 1024);
    client
        .subscribe(topics.all_commands(), QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
            break;
        }
    }
    let seen = counts.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/vendout") => {
                    if let Ok(c) = serde_json::from_slice::<VendCommand>(&p.payload) {
                        *seen.lock().unwrap().entry(c.order_no).or_default() += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    counts
}

/// Orders and their payments, made as the order API makes them; the notification bodies.
async fn make_orders(
    config: &VendingConfig,
    public_url: &str,
    run: &str,
    n: usize,
) -> Vec<(String, String)> {
    let wired = wire(config, public_url).await.unwrap();
    let orders = wired.state.orders.clone();
    let mut slots = Vec::new();
    for m in MACHINES {
        let slot = orders.db().stocked_slots(m).await.unwrap().remove(0);
        slots.push((m, slot));
    }
    let signer = TestSigner::new(APP_ID, MCH_ID, ApiKey::new(KEY));
    let notify_url = format!("{public_url}/notify/wechat");
    let mut pending = FuturesUnordered::new();
    let mut made = Vec::with_capacity(n);
    for i in 0..n {
        let (machine, slot) = &slots[i % slots.len()];
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let order = Order {
            order_no: format!("Z{run}{i:07}"),
            inner_code: (*machine).to_owned(),
            sku_id: slot.sku_id,
            sku_name: slot.name.clone(),
            slot_no: slot.slot_no.clone(),
            amount: slot.price,
            channel: "wechat".into(),
            method: PayMethod::WechatNative,
            open_id: None,
            buyer_app: None,
            status: examples::vending::db::OrderStatus::Created,
            payment_id: None,
            pay_action: None,
            lock_token: None,
            refund_no: None,
            refunded: Fen::ZERO,
            reason: None,
            created_at: now,
            updated_at: now,
            paid_at: None,
            vend_at: None,
            ended_at: None,
            seller: None,
            refund_issue: None,
        };
        let (orders, signer, notify_url) = (orders.clone(), signer.clone(), notify_url.clone());
        pending.push(async move {
            orders.db().insert_order(&order).await.unwrap();
            let (payment, action) = orders
                .payments()
                .create(NewPayment::new(
                    order.order_no.clone(),
                    order.amount,
                    "bench",
                    PayMethod::WechatNative,
                    notify_url,
                ))
                .await
                .unwrap();
            orders
                .db()
                .set_payment(
                    &order.order_no,
                    &payment.id.0,
                    &serde_json::to_string(&action).unwrap(),
                    now,
                )
                .await
                .unwrap();
            let mut p = signer.payment_notification_params(&order.order_no, order.amount);
            p.insert("nonce_str", random_hex(16));
            (order.order_no, signer.sign(p))
        });
        if pending.len() >= SETUP_CONCURRENCY {
            made.push(pending.next().await.unwrap());
        }
    }
    while let Some(m) = pending.next().await {
        made.push(m);
    }
    wired.shutdown.cancel();
    made
}

/// Each notification to one instance in turn; every tenth to every instance at once (adjacent
/// in the work list, so that two connections send it at the same moment).
fn spread(bodies: &[(String, String)], instances: usize) -> Vec<(usize, Option<String>)> {
    let mut work = Vec::with_capacity(bodies.len() * 11 / 10 + 1);
    for (i, (_, body)) in bodies.iter().enumerate() {
        if i % 10 == 0 {
            for target in 0..instances.max(2) {
                work.push((target % instances, Some(body.clone())));
            }
        } else {
            work.push((i % instances, Some(body.clone())));
        }
    }
    work
}

/// What the database says after the run.
struct Outcome {
    orders_by_status: Vec<(String, i64)>,
    paid: i64,
    succeeded_events: i64,
    payments_with_succeeded_event: i64,
    undelivered_events: i64,
    retried_events: i64,
}

async fn outcome(database: &str, run: &str) -> Outcome {
    use sqlx::{AnyConnection, Connection, Row};
    let mut conn = AnyConnection::connect(database).await.unwrap();
    let like = format!("Z{run}%");
    let orders_by_status = sqlx::query(
        "SELECT status, COUNT(*) FROM vm_orders WHERE order_no LIKE $1 GROUP BY status ORDER BY status",
    )
    .bind(like.clone())
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
    .collect();
    let paid: i64 =
        sqlx::query("SELECT COUNT(*) FROM payments WHERE out_trade_no LIKE $1 AND status = 'PAID'")
            .bind(like.clone())
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
    let row = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT o.payment_id) FROM outbox o JOIN payments p ON p.id = o.payment_id \
         WHERE p.out_trade_no LIKE $1 AND o.kind = 'payment.succeeded'",
    )
    .bind(like.clone())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let (succeeded_events, payments_with_succeeded_event) = (row.get(0), row.get(1));
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN o.status <> 'DELIVERED' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN o.attempts > 1 THEN 1 ELSE 0 END), 0) \
         FROM outbox o JOIN payments p ON p.id = o.payment_id WHERE p.out_trade_no LIKE $1",
    )
    .bind(like.clone())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    Outcome {
        orders_by_status,
        paid,
        succeeded_events,
        payments_with_succeeded_event,
        undelivered_events: row.get(0),
        retried_events: row.get(1),
    }
}

/// Waits (up to `limit`) until every order of the run has ended, or nothing moves any more.
async fn settle(database: &str, run: &str, total: i64, limit: Duration) {
    let started = Instant::now();
    while started.elapsed() < limit {
        let o = outcome(database, run).await;
        let ended: i64 = o
            .orders_by_status
            .iter()
            .filter(|(s, _)| s != "CREATED" && s != "PAID" && s != "VENDING")
            .map(|(_, n)| n)
            .sum();
        if ended >= total && o.undelivered_events == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn bench(notifications: usize, rounds: usize, concurrency: usize, instances: usize) {
    let Some(engines) = engines() else {
        println!(
            "--instances: set BENCH_POSTGRES_URL, BENCH_REDIS_URL, BENCH_AMQP_URL and BENCH_MQTT_URL (or the TEST_ ones)"
        );
        return;
    };
    println!(
        "== {instances} vending-server process(es) on PostgreSQL + Redis + RabbitMQ + MQTT ({concurrency} concurrent connections, {rounds} rounds)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let run = random_hex(4);
    let prefix = format!("bench-{run}");
    let total = WARM_UP + notifications * rounds;
    let stop = CancellationToken::new();
    let ports: Vec<u16> = (0..instances).map(|_| free_port()).collect();
    let public_url = format!("http://127.0.0.1:{}", ports[0]);
    let (gateway, database, made, counts) = runtime.block_on(async {
        let gateway = Sandbox::builder()
            .merchant(APP_ID, MCH_ID, ApiKey::new(KEY))
            .mp_app(MpApp::new(
                APP_ID,
                wechat_mp::Secret::new(APP_SECRET),
                wechat_mp::Secret::new("bench-mp-token"),
            ))
            .start()
            .await
            .unwrap();
        let database = fresh_database(&engines.postgres).await;
        let topics = Topics::new(&prefix);
        serve_simulator(
            &engines.mqtt,
            topics.clone(),
            SimBehaviour {
                latency: Duration::from_millis(20),
                fail_rate: 0.0,
            },
            None,
            stop.clone(),
        )
        .await
        .unwrap();
        let counts = count_commands(&engines.mqtt, &topics, stop.clone()).await;
        let settings = settings(&engines, &database, &prefix, gateway.base_url());
        let started = Instant::now();
        let made = make_orders(&config_of(&settings), &public_url, &run, total).await;
        println!(
            "{total} orders and their payments made in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        (gateway, database, made, counts)
    });
    let settings = settings(&engines, &database, &prefix, gateway.base_url());
    let logs = std::env::temp_dir();
    let servers: Vec<Instance> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let log = logs.join(format!("notify-bench-{run}-{i}.log"));
            let s = start_instance(&runtime, &settings, *port, &log);
            println!(
                "instance {i}: {} (pid {}, log {})",
                s.url,
                s.pid(),
                log.display()
            );
            s
        })
        .collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    for (i, s) in servers.iter().enumerate() {
        println!("instance {i} resident memory, idle: {}", s.rss());
    }

    let loader = Loader::new(concurrency);
    let (warm_up, measured) = made.split_at(WARM_UP);
    let spread_healthz = |n: usize| (0..n).map(|i| (i % instances, None)).collect();
    loader.load(&urls, spread_healthz(WARM_UP));
    let w = loader.load(&urls, spread(warm_up, instances));
    assert_eq!(w.failures, 0, "every notification must be acknowledged");
    let mut ratios = Vec::new();
    let mut p99s = Vec::new();
    let mut failures = 0;
    for round in measured.chunks(notifications) {
        let healthz = loader.load(&urls, spread_healthz(notifications * 4));
        print("GET /healthz", &healthz);
        let cpu_before: Vec<_> = servers
            .iter()
            .map(|s| cpu_time(&s.pid().to_string()))
            .collect();
        let work = spread(round, instances);
        let sent = work.len();
        let notify = loader.load(&urls, work);
        print("POST /notify/wechat", &notify);
        let server_cpu: Duration = servers
            .iter()
            .zip(&cpu_before)
            .filter_map(|(s, b)| cpu_time(&s.pid().to_string())?.checked_sub((*b)?))
            .sum();
        #[allow(clippy::cast_possible_truncation)]
        let per = server_cpu / sent.max(1) as u32;
        println!(
            "  {sent} notifications for {} payments; the servers' own CPU {:.1} µs per notification",
            round.len(),
            per.as_secs_f64() * 1e6
        );
        for (i, s) in servers.iter().enumerate() {
            println!("  instance {i} resident memory, end of round: {}", s.rss());
        }
        failures += notify.failures;
        ratios.push(notify.rate() / healthz.rate());
        p99s.push(notify.p99);
    }
    print_medians(&mut ratios, &mut p99s, "");

    // Exactly once, checked.
    #[allow(clippy::cast_possible_wrap)]
    let expected = total as i64;
    let o = runtime.block_on(async {
        settle(&database, &run, expected, Duration::from_secs(180)).await;
        // Late duplicates of the vend-out commands would show in the next seconds.
        tokio::time::sleep(Duration::from_secs(2)).await;
        outcome(&database, &run).await
    });
    let counts = counts.lock().unwrap().clone();
    let lost = made
        .iter()
        .filter(|(no, _)| !counts.contains_key(no))
        .count();
    let doubled = counts.values().filter(|n| **n > 1).count();
    let some_lost: Vec<&String> = made
        .iter()
        .map(|(no, _)| no)
        .filter(|no| !counts.contains_key(*no))
        .take(5)
        .collect();
    if !some_lost.is_empty() {
        println!("lost, for example: {some_lost:?}");
    }
    for (i, s) in servers.iter().enumerate() {
        println!("instance {i} resident memory, end of run: {}", s.rss());
    }
    println!(
        "orders by status: {:?}; payments PAID: {} of {expected}; payment.succeeded events: {} for {} payments; events not delivered: {}, delivered after a retry: {}",
        o.orders_by_status,
        o.paid,
        o.succeeded_events,
        o.payments_with_succeeded_event,
        o.undelivered_events,
        o.retried_events
    );
    println!(
        "vend-out commands: {} for {} orders — lost {lost}, doubled {doubled}; unacknowledged notifications: {failures}",
        counts.values().map(|n| u64::from(*n)).sum::<u64>(),
        made.len()
    );
    let completed = o
        .orders_by_status
        .iter()
        .find(|(s, _)| s == "COMPLETED")
        .map_or(0, |(_, n)| *n);
    let exact = failures == 0
        && lost == 0
        && doubled == 0
        && o.paid == expected
        && o.succeeded_events == expected
        && o.payments_with_succeeded_event == expected
        && o.undelivered_events == 0
        && completed == expected;
    println!("exactly once: {}", if exact { "yes" } else { "NO" });
    drop(servers);
    stop.cancel();
    runtime.block_on(async move { drop(gateway) });
    runtime.shutdown_background();
    assert!(exact, "a payment, event or vend was lost or doubled");
}
