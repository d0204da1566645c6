//! `vending-server` notification handling under load, beside its own `/healthz`.
//!
//! The server runs as `vending-server` does (`wire` + workers + `app`, the embedded emulator for
//! WeChat Pay) on its own runtime; a load generator on another runtime keeps `BENCH_CONCURRENCY`
//! (default 200) connections busy. Each notification is a fresh WeChat Pay payment notification
//! (MD5-signed XML) for a payment created beforehand, so every request is the whole path: HTTP →
//! XML parse → signature check → payment PENDING → PAID with its outbox event in one
//! transaction → the channel's XML reply. The outbox workers deliver those events meanwhile, as
//! in production. `/healthz` is measured first, in the same run, as the ceiling. Before any of
//! it, a warm-up of both kinds opens the load generator's connections (kept open from then on,
//! as a load generator's are) and brings the server to a steady state (statements prepared,
//! caches filled), so that what is measured is the requests, not the start.
//!
//! `cargo bench -p examples --bench notify_throughput` — SQLite, then PostgreSQL when
//! `BENCH_POSTGRES_URL` (or `TEST_POSTGRES_URL`) names a server, then MySQL / MariaDB when
//! `BENCH_MYSQL_URL` (or `TEST_MYSQL_URL`) does (a fresh database is created on each);
//! `BENCH_ENGINE=sqlite|postgresql|mysql` runs one. `BENCH_NOTIFICATIONS` sets the notifications per round (default 10000),
//! `BENCH_ROUNDS` the rounds (default 3: `/healthz` then notifications, each round; the medians
//! are reported, this machine's speed drifts from one second to the next),
//! `BENCH_CONCURRENCY` the connections (default 200).
//!
//! `-- --preload N` (or `BENCH_PRELOAD=N`) first fills the database with N historical orders,
//! their payments (paid, a year back to now) and two delivered outbox events each, so that the
//! path is measured with a database that has a history (every hot query must stay flat).
//! The process's resident memory is reported idle (after start-up and the payments to notify
//! are made) and at the end of each round: it holds the server, the load generator and the
//! prepared notification bodies, so it bounds the server's from above.
//!
//! `-- --instances N` (or `BENCH_INSTANCES=N`) measures `vending-server` itself instead: N
//! processes of one deployment on PostgreSQL, Redis, RabbitMQ and MQTT (`BENCH_*_URL` or the
//! `TEST_*_URL` the tests use), each notification to one of them and one in ten to all at once,
//! then checks that every payment, event and vend happened exactly once; each server's memory
//! and CPU are its own process's (see `notify_throughput/instances.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "notify_throughput/instances.rs"]
mod instances;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregate_pay::{Fen, NewPayment, PayMethod};
use examples::random::token;

/// Random hex for names and nonces of the benchmark (a failing random source ends it).
fn random_hex(bytes: usize) -> String {
    token(bytes).unwrap()
}
use examples::vending::app;
use examples::vending::config::VendingConfig;
use examples::vending::wiring::{Wired, wire};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use wechat_pay::test_util::TestSigner;

// The allocator `vending-server` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Server {
    url: String,
    // Notification bodies, one per payment created.
    bodies: Vec<String>,
    // Kept for the server's life (the emulator, the workers).
    _wired: Wired,
    runtime: tokio::runtime::Runtime,
}

/// The resident memory (`VmRSS`) of process `pid` (`self` for this one), when Linux's `/proc`
/// tells it.
fn rss_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// [`rss_mib`] for printing.
fn rss(pid: &str) -> String {
    rss_mib(pid).map_or_else(|| "?".into(), |m| format!("{m:.0} MiB"))
}

/// Prints the medians of the rounds' notify / healthz ratios and p99s (sorting them); `goals`
/// is added to the line.
fn print_medians(ratios: &mut [f64], p99s: &mut [Duration], goals: &str) {
    ratios.sort_by(f64::total_cmp);
    p99s.sort();
    println!(
        "median of {}: notify / healthz = {:.0}%, notify p99 = {:.2} ms{goals}",
        ratios.len(),
        100.0 * ratios[ratios.len() / 2],
        p99s[p99s.len() / 2].as_secs_f64() * 1e3
    );
}

/// Rows inserted per statement while preloading.
const PRELOAD_CHUNK: u64 = 50_000;

/// Fills the database at `url` with `n` historical orders, payments and delivered events.
async fn preload(url: &str, n: u64) {
    use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
    if n == 0 {
        return;
    }
    let started = Instant::now();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let mysql = url.starts_with("mysql");
    if mysql {
        // `||` concatenates, as on the other two, and a chunk's recursive series may be long.
        conn.execute(
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',PIPES_AS_CONCAT'), \
             max_recursive_iterations = 1000000000",
        )
        .await
        .unwrap();
    }
    let integer = if mysql { "SIGNED" } else { "BIGINT" };
    let year_ms: i64 = 365 * 24 * 3600 * 1000;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let t0 = now_ms - year_ms;
    #[allow(clippy::cast_possible_wrap)]
    let step = (year_ms / n.max(1) as i64).max(1);
    let mut from = 0u64;
    while from < n {
        let to = (from + PRELOAD_CHUNK).min(n);
        let series = format!(
            "WITH RECURSIVE s(i) AS (SELECT CAST({from} AS {integer}) UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {to})"
        );
        let t = format!("({t0} + i * {step})");
        for q in [
            format!(
                "INSERT INTO payments (id, out_trade_no, channel, channel_account, method, amount,                  currency, subject, status, channel_transaction_id, refunded_amount, needs_review,                  open_id, metadata, created_at, updated_at, paid_at, expires_at, version,                  reconcile_after) {series} SELECT 'hist-pay-' || i, 'H' || i, 'wechat',                  'wxhistory/1900000109', 'wechat_native', 350, 'CNY', 'history', 'PAID',                  '4200' || i, 0, 0, 'o-history-' || (i % 5000), '{{\"order_no\":\"H' || i || '\"}}',                  {t}, {t}, {t}, NULL, 2, {t} FROM s"
            ),
            format!(
                "INSERT INTO outbox (id, kind, payment_id, payload, created_at, status, attempts,                  last_error, next_attempt_at, locked_until) {series}                  SELECT 'hist-ev-' || i || '-' || k.k, k.kind, 'hist-pay-' || i, '{{}}', {t},                  'DELIVERED', 1, NULL, {t}, 0 FROM s CROSS JOIN                  (SELECT 0 AS k, 'payment.created' AS kind UNION ALL                   SELECT 1, 'payment.succeeded') AS k"
            ),
            format!(
                "INSERT INTO vm_orders (order_no, inner_code, sku_id, sku_name, slot_no, amount,                  channel, method, open_id, status, payment_id, created_at, updated_at, paid_at,                  vend_at, ended_at) {series} SELECT 'H' || i, 'VM000' || (1 + i % 3), 1,                  'history', 'A1', 350, 'wechat', 'wechat_native', 'o-history-' || (i % 5000),                  'COMPLETED', 'hist-pay-' || i, {t}, {t}, {t}, {t}, {t} FROM s"
            ),
        ] {
            conn.execute(AssertSqlSafe(q)).await.unwrap();
        }
        from = to;
    }
    if url.starts_with("postgres") {
        conn.execute("ANALYZE").await.unwrap();
    } else if mysql {
        conn.execute("ANALYZE TABLE payments, outbox, vm_orders")
            .await
            .unwrap();
    } else {
        conn.execute("ANALYZE").await.unwrap();
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .unwrap();
    }
    println!(
        "preloaded {n} orders, payments and {} events in {:.1} s",
        2 * n,
        started.elapsed().as_secs_f64()
    );
}

fn start_server(database_url: &str, notifications: usize, preload_rows: u64) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .unwrap();
    let (url, bodies, wired) = runtime.block_on(async {
        let mut config = VendingConfig::embedded();
        config.database_url = database_url.into();
        // The load generator's connections wait between phases: not idle clients to drop.
        config.http.header_read_timeout_secs = 600;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut wired = wire(&config, &url).await.unwrap();
        preload(database_url, preload_rows).await;
        wired.spawn_workers().await.unwrap();
        let state = wired.state.clone();
        // Served as `vending-server` serves (its accept loop and limits).
        let limits = config.http.clone();
        tokio::spawn(async move {
            http_serve::serve(listener, app(state), &limits, None, std::future::pending()).await
        });

        // Payments to notify about, created through the emulator as the order API would.
        let merchant = &wired.emulator.as_ref().unwrap().config().merchants[0];
        let signer = TestSigner::new(
            merchant.app_id.clone(),
            merchant.mch_id.clone(),
            merchant.api_key.clone(),
        );
        let payments = wired.state.orders.payments().clone();
        let run = random_hex(6);
        let mut pending = FuturesUnordered::new();
        let mut bodies = Vec::with_capacity(notifications);
        for i in 0..notifications {
            let (payments, signer, no) =
                (payments.clone(), signer.clone(), format!("B{run}{i:07}"));
            let notify_url = format!("{url}/notify/wechat");
            pending.push(async move {
                payments
                    .create(NewPayment::new(
                        no.clone(),
                        Fen::new(350),
                        "bench",
                        PayMethod::WechatNative,
                        notify_url,
                    ))
                    .await
                    .unwrap();
                let mut p = signer.payment_notification_params(&no, Fen::new(350));
                p.insert("nonce_str", random_hex(16));
                signer.sign(p)
            });
            if pending.len() >= 32 {
                bodies.push(pending.next().await.unwrap());
            }
        }
        while let Some(b) = pending.next().await {
            bodies.push(b);
        }
        (url, bodies, wired)
    });
    Server {
        url,
        bodies,
        _wired: wired,
        runtime,
    }
}

/// CPU time process `pid` (`self`: this one, the server and the load generator) has used, all
/// its threads, when Linux's `/proc` tells it.
fn cpu_time(pid: &str) -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

struct Report {
    requests: usize,
    /// CPU time used meanwhile, per request.
    cpu_per_request: Option<Duration>,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    failures: usize,
}

impl Report {
    #[allow(clippy::cast_precision_loss)]
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// The load generator: its own runtime, and one client whose connections stay open from one
/// phase to the next (as a load generator's do), so that each phase measures requests, not
/// connection set-up.
struct Loader {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    concurrency: usize,
}

impl Loader {
    fn new(concurrency: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("load")
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        Loader {
            runtime,
            client,
            concurrency,
        }
    }

    /// Sends every request in `work` (a notification body, or `None` for `/healthz`, to the
    /// server `urls[i]`) with `concurrency` in flight; latency of each.
    fn load(&self, urls: &[String], work: Vec<(usize, Option<String>)>) -> Report {
        let (client, concurrency) = (&self.client, self.concurrency);
        let urls = Arc::new(urls.to_vec());
        self.runtime.block_on(async move {
            let work = Arc::new(std::sync::Mutex::new(work.into_iter().enumerate()));
            let total = work.lock().unwrap().len();
            let cpu_start = cpu_time("self");
            let start = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let (client, work, urls) = (client.clone(), work.clone(), urls.clone());
                workers.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut failures = 0;
                    loop {
                        let Some((_, (target, item))) = work.lock().unwrap().next() else {
                            break;
                        };
                        let url = &urls[target];
                        let t = Instant::now();
                        let ok = match item {
                            Some(body) => match client
                                .post(format!("{url}/notify/wechat"))
                                .header("content-type", "text/xml")
                                .body(body)
                                .send()
                                .await
                            {
                                Ok(r) => {
                                    let ok = r.status().is_success();
                                    let text = r.text().await.unwrap_or_default();
                                    ok && text.contains("<return_code><![CDATA[SUCCESS]]>")
                                }
                                Err(_) => false,
                            },
                            None => match client.get(format!("{url}/healthz")).send().await {
                                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                                Err(_) => false,
                            },
                        };
                        latencies.push(t.elapsed());
                        if !ok {
                            failures += 1;
                        }
                    }
                    (latencies, failures)
                }));
            }
            let mut all = Vec::with_capacity(total);
            let mut failures = 0;
            for w in workers {
                let (l, f) = w.await.unwrap();
                all.extend(l);
                failures += f;
            }
            let elapsed = start.elapsed();
            let cpu_per_request = match (cpu_start, cpu_time("self")) {
                #[allow(clippy::cast_possible_truncation)]
                (Some(a), Some(b)) => b.checked_sub(a).map(|d| d / all.len().max(1) as u32),
                _ => None,
            };
            all.sort();
            let at = |q: f64| {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
                all[i]
            };
            Report {
                requests: all.len(),
                cpu_per_request,
                elapsed,
                p50: at(0.50),
                p99: at(0.99),
                max: *all.last().unwrap(),
                failures,
            }
        })
    }
}

fn print(what: &str, r: &Report) {
    let cpu = r
        .cpu_per_request
        .map(|d| format!("   CPU {:>5.1} µs/req", d.as_secs_f64() * 1e6))
        .unwrap_or_default();
    println!(
        "{what:<22} {:>6} requests in {:>6.2} s = {:>7.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>7.2} ms{cpu}   failures {}",
        r.requests,
        r.elapsed.as_secs_f64(),
        r.rate(),
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.max.as_secs_f64() * 1e3,
        r.failures
    );
}

/// Requests of each kind sent before measuring.
const WARM_UP: usize = 2_000;

fn bench(
    engine: &str,
    database_url: &str,
    notifications: usize,
    rounds: usize,
    concurrency: usize,
    preload_rows: u64,
) {
    println!(
        "== {engine} ({concurrency} concurrent connections, {rounds} rounds, {preload_rows} rows preloaded)"
    );
    let server = start_server(database_url, WARM_UP + notifications * rounds, preload_rows);
    println!("resident memory, idle: {}", rss("self"));
    // Warm-up (the connections opened, the statements prepared), then rounds of the ceiling
    // (the same server's /healthz) and the notifications, one after the other, so that both see
    // the machine in the same state.
    let loader = Loader::new(concurrency);
    let (warm_up, measured) = server.bodies.split_at(WARM_UP);
    let urls = [server.url.clone()];
    let to_server = |bodies: &[String]| bodies.iter().map(|b| (0, Some(b.clone()))).collect();
    loader.load(&urls, vec![(0, None); WARM_UP]);
    loader.load(&urls, to_server(warm_up));
    let mut ratios = Vec::new();
    let mut p99s = Vec::new();
    for round in measured.chunks(notifications) {
        let healthz = loader.load(&urls, vec![(0, None); notifications * 4]);
        print("GET /healthz", &healthz);
        let notify = loader.load(&urls, to_server(round));
        print("POST /notify/wechat", &notify);
        assert_eq!(
            notify.failures, 0,
            "every notification must be acknowledged"
        );
        println!("resident memory, end of round: {}", rss("self"));
        ratios.push(notify.rate() / healthz.rate());
        p99s.push(notify.p99);
    }
    print_medians(
        &mut ratios,
        &mut p99s,
        "   (goals: SQLite >= 40% and p99 < 25 ms; PostgreSQL >= 25% and p99 < 40 ms)",
    );
    let under = p99s.iter().filter(|p| p.as_millis() < 25).count();
    println!("rounds with p99 < 25 ms: {under} of {rounds}");
    server.runtime.shutdown_background();
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let notifications: usize = env("BENCH_NOTIFICATIONS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let concurrency: usize = env("BENCH_CONCURRENCY")
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rounds: usize = env("BENCH_ROUNDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let args: Vec<String> = std::env::args().collect();
    // `-- --flag N`, else the environment variable, else 0.
    let option = |flag: &str, var: &str| -> u64 {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .or_else(|| env(var))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let preload_rows = option("--preload", "BENCH_PRELOAD");
    let instances = usize::try_from(option("--instances", "BENCH_INSTANCES")).unwrap_or(0);
    if instances > 0 {
        instances::bench(notifications, rounds, concurrency, instances);
        return;
    }
    let only = env("BENCH_ENGINE");
    let run = |engine: &str| {
        only.as_deref()
            .is_none_or(|o| o.eq_ignore_ascii_case(engine))
    };

    if run("sqlite") {
        let path = std::env::temp_dir().join(format!("notify-bench-{}.db", random_hex(6)));
        bench(
            "SQLite",
            &format!("sqlite://{}?mode=rwc", path.display()),
            notifications,
            rounds,
            concurrency,
            preload_rows,
        );
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    for (engine, name, vars) in [
        (
            "postgresql",
            "PostgreSQL",
            ["BENCH_POSTGRES_URL", "TEST_POSTGRES_URL"],
        ),
        (
            "mysql",
            "MySQL / MariaDB",
            ["BENCH_MYSQL_URL", "TEST_MYSQL_URL"],
        ),
    ] {
        if !run(engine) {
            continue;
        }
        match env(vars[0]).or_else(|| env(vars[1])) {
            Some(url) => {
                let fresh = tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(fresh_database(&url));
                bench(
                    name,
                    &fresh,
                    notifications,
                    rounds,
                    concurrency,
                    preload_rows,
                );
            }
            None => println!("{name}: set {} (or {}) to measure it", vars[0], vars[1]),
        }
    }
}

/// A new database on the server at `url` (PostgreSQL or MySQL), named as the tests name theirs
/// (`.ci/run` drops those earlier runs left).
async fn fresh_database(url: &str) -> String {
    use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let name = format!("aggpay_test_bench_{}", random_hex(6));
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let base = url.split('?').next().unwrap_or(url);
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    format!("{prefix}/{name}")
}
