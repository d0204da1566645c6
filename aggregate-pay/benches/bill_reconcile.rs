//! Reconciling a day's bill against a store that holds every payment of it: the time of one
//! `BillReconciler::reconcile` and the process's peak resident memory, from 10,000 to 1,000,000
//! rows, on SQLite and PostgreSQL.
//!
//! The bill is WeChat Pay's `ALL` trade bill (the backtick format, gzip-compressed as the
//! channels download it), written by a channel made for the benchmark as it is "downloaded"
//! and read back with `wechat_pay::BillRows` — so the figures include decompressing and parsing
//! every row, the chunked store lookups, and the page through the store's day. Every row
//! matches (the common day).
//!
//! Each (engine, size) runs in a process of its own, so that its peak memory is its own:
//!
//! `cargo bench -p aggregate-pay --bench bill_reconcile --all-features`
//! (`BENCH_ROWS=10000,100000` picks the sizes; PostgreSQL from `TEST_POSTGRES_URL`, skipped
//! without it.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use aggregate_pay::bills::{BillClass, china_day, day_bounds};
use aggregate_pay::channels::{
    AckBody, AckOutcome, BillAvailability, BillEntry, BillSink, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, PayAction, RawNotify, RefundRequest,
};
use aggregate_pay::lock::MemoryLockManager;
use aggregate_pay::store::{BillStore, PaymentStore, SqlStore};
use aggregate_pay::{
    BillOutcome, BillReconciler, ChannelError, Channels, Fen, NewPayment, PaymentChannel,
};
use async_trait::async_trait;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};

const APP_ID: &str = "wxbench000000001";

/// A channel whose day is `rows` payments `B0000000…` of 1.00 to 99.99 yuan.
#[derive(Debug)]
struct BenchChannel {
    rows: usize,
    capabilities: Capabilities,
}

fn number(i: usize) -> String {
    format!("B{i:010}")
}

fn amount(i: usize) -> u64 {
    100 + (i as u64 * 37) % 9900
}

#[async_trait]
impl PaymentChannel for BenchChannel {
    fn id(&self) -> &str {
        "bench"
    }
    fn account(&self) -> &str {
        APP_ID
    }
    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }
    async fn create(&self, _: &NewPayment) -> Result<PayAction, ChannelError> {
        Err(ChannelError::Unsupported("bench".into()))
    }
    async fn query(&self, _: &str) -> Result<ChannelPaymentState, ChannelError> {
        Ok(ChannelPaymentState::NotFound)
    }
    async fn close(&self, _: &str) -> Result<CloseOutcome, ChannelError> {
        Ok(CloseOutcome::Closed)
    }
    async fn refund(&self, _: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        Err(ChannelError::Unsupported("bench".into()))
    }
    async fn query_refund(&self, _: &str, _: &str) -> Result<Option<ChannelRefund>, ChannelError> {
        Ok(None)
    }
    async fn verify_notify(&self, _: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        Err(ChannelError::Unsupported("bench".into()))
    }
    fn ack(&self, _: &AckOutcome) -> AckBody {
        AckBody {
            status: 200,
            content_type: "text/plain",
            body: String::new(),
        }
    }

    async fn download_bill(
        &self,
        _: time::Date,
        to: &mut (dyn Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        let io = |e: std::io::Error| ChannelError::Transport(e.to_string());
        let mut gz = flate2::write::GzEncoder::new(to, flate2::Compression::fast());
        writeln!(gz, "交易时间,公众账号ID,商户号,微信订单号,商户订单号,交易状态,货币种类,应结订单金额,订单金额,手续费").map_err(io)?;
        let mut total = 0u64;
        for i in 0..self.rows {
            let a = Fen::new(amount(i));
            total += a.as_u64();
            writeln!(
                gz,
                "`2026-12-05 10:00:00,`{APP_ID},`10000100,`42{i:026},`{},`SUCCESS,`CNY,`{},`{},`{}",
                number(i),
                a.to_yuan_string(),
                a.to_yuan_string(),
                Fen::new((a.as_u64() * 6 + 500) / 1000).to_yuan_string()
            )
            .map_err(io)?;
        }
        writeln!(
            gz,
            "总交易单数,应结订单总金额\n`{},`{}",
            self.rows,
            Fen::new(total).to_yuan_string()
        )
        .map_err(io)?;
        gz.finish().map_err(io)?;
        Ok(BillAvailability::Ready)
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        let unreadable = |e: wechat_pay::Error| ChannelError::Decode(e.to_string());
        let mut rows = wechat_pay::BillRows::open(file).map_err(unreadable)?;
        for row in rows.by_ref() {
            let row = row.map_err(unreadable)?;
            let amount = row
                .total_fee
                .or(row.settlement_total_fee)
                .unwrap_or(Fen::ZERO);
            let fee = row.service_fee.unwrap_or(0);
            if !each(BillEntry::payment(row.out_trade_no, row.transaction_id, amount).fee(fee)) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Fills the store with the day's payments, paid, a few hundred rows per statement.
async fn seed(url: &str, rows: usize, day: time::Date) {
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let (start, _) = day_bounds(day);
    let paid_at = (start.unix_timestamp() + 3600) * 1000;
    let columns = "id, out_trade_no, channel, channel_account, method, amount, currency, subject, status, \
         channel_transaction_id, refunded_amount, needs_review, open_id, metadata, created_at, updated_at, paid_at, \
         expires_at, version, reconcile_after";
    let mut i = 0;
    conn.execute("BEGIN").await.unwrap();
    while i < rows {
        let end = (i + 500).min(rows);
        let values: Vec<String> = (i..end)
            .map(|n| {
                format!(
                    "('pay_{n:010}', '{}', 'bench', '{APP_ID}', 'wechat_native', {}, 'CNY', 'x', 'PAID', \
                     '42{n:026}', 0, 0, NULL, '{{}}', {paid_at}, {paid_at}, {paid_at}, NULL, 2, 0)",
                    number(n),
                    amount(n)
                )
            })
            .collect();
        conn.execute(AssertSqlSafe(format!(
            "INSERT INTO payments ({columns}) VALUES {}",
            values.join(", ")
        )))
        .await
        .unwrap();
        i = end;
    }
    conn.execute("COMMIT").await.unwrap();
}

/// Peak resident memory of this process, in KiB (`VmHWM`).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One (engine, size) in this process: prints `engine rows seconds peak_mib`.
async fn one(engine: &str, rows: usize) {
    sqlx::any::install_default_drivers();
    let url = match engine {
        "sqlite" => {
            let path =
                std::env::temp_dir().join(format!("bill-bench-{}-{rows}.db", std::process::id()));
            format!("sqlite://{}?mode=rwc", path.display())
        }
        _ => {
            let base = std::env::var("TEST_POSTGRES_URL").unwrap();
            let mut conn = AnyConnection::connect(&base).await.unwrap();
            let name = format!("aggpay_test_bench_{}_{rows}", std::process::id());
            conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let prefix = base
                .rsplit_once('/')
                .map_or(base.as_str(), |(p, _)| p)
                .to_owned();
            format!("{prefix}/{name}")
        }
    };
    let store = Arc::new(SqlStore::connect(&url).await.unwrap());
    let day = china_day(time::OffsetDateTime::now_utc()) - time::Duration::days(1);
    seed(&url, rows, day).await;
    let channel = BenchChannel {
        rows,
        capabilities: aggregate_pay::channels::sandbox::SandboxChannel::new("b", "b")
            .capabilities()
            .clone(),
    };
    let channels = Channels::new().with(channel);
    let payments: Arc<dyn PaymentStore> = store.clone();
    let bills: Arc<dyn BillStore> = store.clone();
    let reconciler = BillReconciler::new(
        channels,
        payments,
        bills,
        Arc::new(MemoryLockManager::new()),
    );
    let before = peak_kib();
    let started = Instant::now();
    let outcome = reconciler.reconcile(day, "bench").await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let BillOutcome::Done(run) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(run.count(BillClass::Matched), rows as u64, "{run:?}");
    assert_eq!(run.differences(), 0);
    println!(
        "{engine} {rows} {seconds:.3} {:.1} {:.1}",
        peak_kib() as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(one(&args[i + 1], args[i + 2].parse().unwrap()));
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_ROWS")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let mut engines = vec!["sqlite"];
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        engines.push("postgres");
    } else {
        eprintln!("TEST_POSTGRES_URL is not set: PostgreSQL skipped");
    }
    println!("engine rows seconds peak_rss_mib rss_before_mib rows_per_second");
    let exe = std::env::current_exe().unwrap();
    for engine in engines {
        for rows in &sizes {
            let out = std::process::Command::new(&exe)
                .args(["--one", engine, &rows.to_string()])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let seconds: f64 = line.split(' ').nth(2).unwrap().parse().unwrap();
            println!("{line} {:.0}", *rows as f64 / seconds);
        }
    }
}
