//! Background work both servers run: delivering outbox events to a handler — in process (the
//! outbox `Dispatcher` with its retry policy) or over RabbitMQ (a relay publishing in confirmed
//! batches, and a consumer with prefetch, retry queue and dead queue) — the `Reconciler`, and
//! the daily reconciliation against the providers' bills (`BillReconciler`, its schedule and
//! its `reconcile --date` command).

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::bills::{BillError, BillRun, BillRunStatus, CHINA, china_day};
use aggregate_pay::rabbitmq::{RabbitConsumer, RabbitPublisher, Topology};
use aggregate_pay::{
    BillOutcome, BillReconciler, Channels, Dispatcher, EventHandler, PaymentStore, Reconciler,
    RetryPolicy, StoreError,
};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::providers::Mode;
use crate::running::StartError;

/// How outbox events reach their handler; also where dead ones are listed from.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// The outbox dispatcher in this process (dead events stay in the outbox table).
    InProcess,
    /// RabbitMQ (dead events in the topology's dead queue).
    Rabbit {
        /// A connection.
        connection: Arc<lapin::Connection>,
        /// The exchange and queues.
        topology: Topology,
    },
}

impl Delivery {
    /// RabbitMQ at `url` with queues named after `prefix` (retrying on `policy`'s schedule: one
    /// retry queue per distinct delay), or in process without a URL.
    pub async fn connect(
        url: Option<&str>,
        prefix: &str,
        policy: &RetryPolicy,
    ) -> Result<Self, StoreError> {
        match url {
            None => Ok(Delivery::InProcess),
            Some(url) => Ok(Delivery::Rabbit {
                connection: Arc::new(aggregate_pay::rabbitmq::connect(url).await?),
                topology: Topology::with_schedule(
                    prefix,
                    &(1..policy.max_attempts.max(2))
                        .map(|n| policy.delay(n))
                        .collect::<Vec<_>>(),
                ),
            }),
        }
    }
}

/// Delivers outbox events to `handler` until `shutdown`: at least once, retried by `policy`,
/// `prefetch` at a time per instance over RabbitMQ, `parallel_batches` batches at a time in
/// process (1 keeps a payment's events in order).
pub async fn spawn_event_delivery(
    store: Arc<dyn PaymentStore>,
    handler: Arc<dyn EventHandler>,
    delivery: &Delivery,
    policy: RetryPolicy,
    prefetch: u16,
    parallel_batches: usize,
    shutdown: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>, StoreError> {
    let mut tasks = Vec::new();
    match delivery {
        Delivery::InProcess => {
            let d = Dispatcher::new(store, handler)
                .policy(policy)
                .concurrency(parallel_batches)
                .linger(Duration::from_millis(10));
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                d.run(Duration::from_millis(200), stop).await
            }));
        }
        Delivery::Rabbit {
            connection,
            topology,
        } => {
            let publisher = Arc::new(RabbitPublisher::new(connection, topology.clone()).await?);
            let relay = Dispatcher::new(store, publisher)
                .batch(500)
                .linger(Duration::from_millis(10));
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                relay.run(Duration::from_millis(100), stop).await
            }));
            let consumer =
                RabbitConsumer::new(connection, topology.clone(), policy.max_attempts, prefetch)
                    .await?;
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = consumer.run(handler, stop).await {
                    tracing::error!(error = %e, "event consumer stopped");
                }
            }));
        }
    }
    Ok(tasks)
}

/// When the reconciler looks at payments and refunds still pending (both servers).
#[derive(Clone, Debug, clap::Args)]
pub struct Reconciliation {
    /// Seconds after which an unpaid payment or an unfinished refund is looked up at its
    /// channel (a lost notification, a channel that gave no definitive answer).
    #[arg(long, env = "RECONCILE_AFTER_SECS", default_value_t = 60)]
    pub reconcile_after_secs: u64,
    /// Seconds between reconciliation rounds.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 15)]
    pub reconcile_interval_secs: u64,
}

/// Looks up payments left unpaid and refunds left unfinished at their channel, a round every
/// `reconcile_interval_secs`.
pub fn spawn_reconciler(
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    settings: &Reconciliation,
    sharing: Option<aggregate_pay::sharing::ProfitSharing>,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let mut reconciler = Reconciler::new(
        channels,
        store,
        Duration::from_secs(settings.reconcile_after_secs),
    );
    // Partner mode: refunds sent again take the platform's fee back first, as the first send
    // did, and pending fee shares are tried again when due.
    if let Some(sharing) = sharing {
        reconciler = reconciler.profit_sharing(sharing);
    }
    let every = Duration::from_secs(settings.reconcile_interval_secs.max(1));
    let stop = shutdown.clone();
    tokio::spawn(async move { reconciler.run(every, stop).await })
}

/// Reconciliation against the providers' daily bills (both servers).
#[derive(Clone, Debug, clap::Args)]
pub struct BillSchedule {
    /// When the previous day's bills are reconciled, each day: `HH:MM`, China time (the
    /// providers' bills are ready by 10:00).
    #[arg(long, env = "BILL_RECONCILE_AT", default_value = "10:30")]
    pub bill_reconcile_at: String,
    /// `auto`: daily in live mode, only on demand in demo mode (whose emulator forgets its
    /// trades at each start); `on` or `off` to say so.
    #[arg(long, env = "BILL_RECONCILE", default_value = "auto")]
    pub bill_reconcile: BillToggle,
    /// Minutes between attempts while a bill is not ready (or its provider answers a
    /// temporary error), for the rest of the day.
    #[arg(long, env = "BILL_RETRY_MINUTES", default_value_t = 15)]
    pub bill_retry_minutes: u64,
}

/// Whether the daily bill reconciliation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BillToggle {
    /// Daily in live mode, on demand in demo mode.
    Auto,
    /// Daily.
    On,
    /// Only on demand.
    Off,
}

impl BillSchedule {
    /// The time of day, or the refusal to start with a malformed one.
    pub fn at(&self) -> Result<time::Time, StartError> {
        let format = time::macros::format_description!("[hour]:[minute]");
        time::Time::parse(self.bill_reconcile_at.trim(), &format).map_err(|_| {
            StartError::Refused("BILL_RECONCILE_AT must be HH:MM (China time), e.g. 10:30")
        })
    }

    /// Whether the daily run is on in `mode`.
    pub fn daily(&self, mode: Mode) -> bool {
        match self.bill_reconcile {
            BillToggle::On => true,
            BillToggle::Off => false,
            BillToggle::Auto => mode == Mode::Live,
        }
    }
}

/// What to do with each finished run (count its differences in the metrics).
pub type OnBillRun = Arc<dyn Fn(&BillRun) + Send + Sync>;

/// Every day at `at` (China time), reconciles the previous day on every channel with bills; at
/// start, catches up on yesterday if its time has passed and a channel's run is not done. A bill
/// not ready is asked for again every `retry` for the rest of the day.
pub fn spawn_bill_reconciler(
    bills: BillReconciler,
    at: time::Time,
    retry: Duration,
    on_run: OnBillRun,
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut catch_up = true;
        loop {
            let now = OffsetDateTime::now_utc();
            let wait = until_next(now, at);
            // Started after today's time: yesterday is due now (runs already done are skipped).
            let passed_today = now.to_offset(CHINA).time() >= at;
            if !(catch_up && passed_today) {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            catch_up = false;
            let yesterday = china_day(OffsetDateTime::now_utc()) - time::Duration::days(1);
            tokio::select! {
                _ = stop.cancelled() => return,
                () = reconcile_yesterday(&bills, yesterday, retry, &on_run) => {}
            }
        }
    })
}

/// Reconciles `day` on every channel with bills whose run is not done yet.
async fn reconcile_yesterday(
    bills: &BillReconciler,
    day: time::Date,
    retry: Duration,
    on_run: &OnBillRun,
) {
    // Asked again until the end of the day the run belongs to.
    let attempts = u32::try_from(Duration::from_secs(14 * 3600).as_secs() / retry.as_secs().max(1))
        .unwrap_or(u32::MAX)
        .max(1);
    for id in bills.channel_ids() {
        match bills.run_of(day, &id).await {
            Ok(Some(run)) if run.status == BillRunStatus::Done => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(channel = %id, %day, error = %e, "bill run not read");
                continue;
            }
        }
        match bills.reconcile_until_ready(day, &id, retry, attempts).await {
            Ok(BillOutcome::Done(run)) => on_run(&run),
            Ok(other) => {
                tracing::warn!(channel = %id, %day, outcome = ?other, "bill not reconciled")
            }
            Err(BillError::Channel {
                source: aggregate_pay::ChannelError::Unsupported(_),
                ..
            }) => {}
            Err(e) => {
                tracing::error!(channel = %id, %day, error = %e, "bill reconciliation failed")
            }
        }
    }
}

/// How long from `now` to the next `at`, China time.
pub fn until_next(now: OffsetDateTime, at: time::Time) -> Duration {
    let china = now.to_offset(CHINA);
    let mut next = china.replace_time(at);
    if next <= china {
        next += time::Duration::days(1);
    }
    Duration::try_from(next - china).unwrap_or(Duration::ZERO)
}

/// `reconcile --date YYYY-MM-DD [--channel ID]`: one day, now (both servers' command).
#[derive(Clone, Debug, clap::Args)]
pub struct ReconcileArgs {
    /// The bill day (China time), `YYYY-MM-DD`.
    #[arg(long, value_parser = parse_day)]
    pub date: time::Date,
    /// One channel (default: every channel with bills).
    #[arg(long)]
    pub channel: Option<String>,
}

pub(crate) fn parse_day(s: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).map_err(|_| format!("{s:?} is not a day YYYY-MM-DD"))
}

/// Runs `args`'s day on its channels and prints each run; an error when a run could not be
/// done (the others still ran).
pub async fn run_reconcile_command(
    bills: &BillReconciler,
    args: &ReconcileArgs,
) -> Result<(), BillError> {
    let ids = match &args.channel {
        Some(id) => vec![id.clone()],
        None => bills.channel_ids(),
    };
    let mut failed = None;
    for id in ids {
        match bills.reconcile(args.date, &id).await {
            Ok(outcome) => println!("{}", describe(&id, args.date, &outcome)),
            Err(BillError::Channel {
                source: aggregate_pay::ChannelError::Unsupported(_),
                ..
            }) if args.channel.is_none() => {}
            Err(e) => {
                println!("{id} {}: {e}", args.date);
                failed = Some(e);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// One line about a run.
pub fn describe(channel: &str, day: time::Date, outcome: &BillOutcome) -> String {
    match outcome {
        BillOutcome::Done(run) => {
            let counts: Vec<String> = run
                .counts
                .iter()
                .map(|(class, n)| format!("{class} {n}"))
                .collect();
            format!(
                "{channel} {day}: done, {} rows ({} paid, {} refunded, fees {} fen): {}; {} to look at",
                run.totals.rows(),
                run.totals.paid.to_yuan_string(),
                run.totals.refunded.to_yuan_string(),
                run.totals.fees,
                counts.join(", "),
                run.differences()
            )
        }
        BillOutcome::NotReady(_) => format!("{channel} {day}: the bill is not ready yet"),
        BillOutcome::Busy => format!("{channel} {day}: another instance is running it"),
        _ => format!("{channel} {day}: {outcome:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        bills: BillSchedule,
    }

    fn flags(args: &[&str]) -> BillSchedule {
        Flags::parse_from(std::iter::once("test").chain(args.iter().copied())).bills
    }

    #[test]
    fn the_daily_run_is_on_in_live_mode_and_on_demand_in_demo_mode() {
        let auto = flags(&[]);
        assert!(auto.daily(Mode::Live));
        assert!(!auto.daily(Mode::Demo));
        assert!(flags(&["--bill-reconcile", "on"]).daily(Mode::Demo));
        assert!(!flags(&["--bill-reconcile", "off"]).daily(Mode::Live));
        let at = auto.at().unwrap();
        assert_eq!((at.hour(), at.minute()), (10, 30));
        assert!(flags(&["--bill-reconcile-at", "25:00"]).at().is_err());
        assert!(
            flags(&["--bill-reconcile-at", "half past ten"])
                .at()
                .is_err()
        );
    }

    #[test]
    fn the_next_run_is_at_the_time_china_time_today_or_tomorrow() {
        let at = time::macros::time!(10:30);
        // 01:00 UTC is 09:00 in China: 1 h 30 min to go.
        let before = time::macros::datetime!(2026-12-07 01:00 UTC);
        assert_eq!(until_next(before, at), Duration::from_secs(90 * 60));
        // 03:00 UTC is 11:00 in China: tomorrow, 23 h 30 min away.
        let after = time::macros::datetime!(2026-12-07 03:00 UTC);
        assert_eq!(
            until_next(after, at),
            Duration::from_secs(23 * 3600 + 30 * 60)
        );
        // Exactly at the time: the next day's.
        let on = time::macros::datetime!(2026-12-07 02:30 UTC);
        assert_eq!(until_next(on, at), Duration::from_secs(24 * 3600));
    }
}
