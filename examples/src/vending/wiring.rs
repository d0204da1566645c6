//! The one place that decides which adapters run: demo or live mode (the embedded emulator and
//! test money, or the configured providers only), the database by URL scheme, Redis or memory
//! for locks and the MP token, RabbitMQ or in-process for events and delays, MQTT or simulated
//! machines (live mode simulates them only when told to).

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::lock::{LockManager, MemoryLockManager, RedisLockManager};
use aggregate_pay::rate_limit::{MemoryRateLimiter, RateLimiter, RedisRateLimiter};
use aggregate_pay::store::BillStore;
use aggregate_pay::store::SqlStore;
use aggregate_pay::{
    BillReconciler, Channels, NotifyProcessor, PaymentStore, Payments, RetryPolicy, ShortPoll,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::accounts::{self, DemoSeller};
use super::auth::{SessionKeys, Sessions};
use super::config::VendingConfig;
use super::db::VendingDb;
use super::delays::{Delays, DueHandler, DueJob, InProcessDelays, RabbitDelays, Waits};
use super::events::PaymentEvents;
use super::machines::{
    Inbox, MachineLink, MqttMachines, Received, ReceivedScan, SimBehaviour, SimulatedMachines,
    Topics,
};
use super::metrics::Metrics;
use super::orders::{BuyerApps, OrderService, OrderSettings};
use super::{VendingSettings, VendingState};
use crate::providers::Mode;
use crate::running::StartError;
use crate::workers::{
    Delivery, Reconciliation, spawn_bill_reconciler, spawn_event_delivery, spawn_reconciler,
};
use wechat_sandbox::Sandbox;

enum DelayRunner {
    InProcess(mpsc::UnboundedReceiver<DueJob>, InProcessDelays),
    Rabbit(RabbitDelays, Arc<lapin::Connection>),
}

/// Payment events to the order logic: retried after 1 s doubling to a minute, 20 attempts.
const EVENT_RETRIES: RetryPolicy = RetryPolicy {
    max_attempts: 20,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(60),
};

/// A wired server: its state, and what runs in the background.
pub struct Wired {
    /// The shared state for `app`.
    pub state: Arc<VendingState>,
    /// Demo or live.
    pub mode: Mode,
    /// The embedded emulator (demo mode).
    pub emulator: Option<Sandbox>,
    /// Stops the background work (and the MQTT connection).
    pub shutdown: CancellationToken,
    /// The event delivery in use.
    pub delivery: Delivery,
    /// RabbitMQ delays, when in use (tests remove their queues).
    pub rabbit_delays: Option<RabbitDelays>,
    /// The demo seller and this run's password (demo mode).
    pub demo_seller: Option<DemoSeller>,
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    reconcile: Reconciliation,
    /// How often the merchant's complaints are read.
    complaint_sync: Duration,
    /// When the daily bill run starts, and how long it waits for a bill not ready (`None`: on
    /// demand only).
    pub daily_bills: Option<(time::Time, Duration)>,
    delays: Option<DelayRunner>,
    vend_results: Option<mpsc::Receiver<Received>>,
    scans: Option<mpsc::Receiver<ReceivedScan>>,
}

impl std::fmt::Debug for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wired")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Builds the server from `config`, serving at `public_url`.
pub async fn wire(config: &VendingConfig, public_url: &str) -> Result<Wired, StartError> {
    let public_url = public_url.trim_end_matches('/').to_owned();
    let secure_cookies = public_url.starts_with("https://");
    // Decided first, before anything is opened: a half-configured live server never starts.
    let plan = config.providers.plan()?;
    let mode = plan.mode();
    let simulate = machines_simulated(config, mode)?;
    let bill_at = config.bills.at()?;
    let shutdown = CancellationToken::new();

    let sql = SqlStore::connect(&config.database_url)
        .await
        .map_err(StartError::backend("database"))?;
    let db = VendingDb::new(sql.clone())
        .await
        .map_err(StartError::backend("database"))?;
    let bill_store: Arc<dyn BillStore> = Arc::new(sql.clone());
    let store: Arc<dyn PaymentStore> = Arc::new(sql);
    let session_secret = session_secret(config, &db).await?;
    let demo_seller = demo_seller(mode, &db).await?;

    let (locks, token_store, limiter) = shared(config).await?;

    let providers = crate::providers::connect(&plan, None, token_store).await?;
    let (channels, sandbox) = providers.channels("vending");
    let buyers = BuyerApps {
        official: providers.mp.clone(),
        mini: providers.mini.clone(),
        alipay: providers.alipay.clone(),
    };
    if mode == Mode::Live && !buyers.any() {
        // Every order belongs to a buyer who logged in: without an app to log in with, nobody
        // can.
        return Err(StartError::Refused(
            "live mode needs a way for buyers to log in: WECHAT_APP_SECRET (the Official \
             Account's web login), WECHAT_MINI_APP_ID + WECHAT_MINI_APP_SECRET (the Mini \
             Program's) or Alipay (its Mini Program's login)",
        ));
    }
    let payments = Payments::new(channels.clone(), store.clone())
        .locks(locks.clone())
        .code_wait(aggregate_pay::service::CodeWait {
            poll_every: Duration::from_secs(5)
                .min(Duration::from_secs(config.payment_code_wait_secs.max(1)) / 4),
            give_up_after: Duration::from_secs(config.payment_code_wait_secs.max(1)),
        });
    let processor = NotifyProcessor::new(channels.clone(), store.clone());
    let metrics = Arc::new(Metrics::new().watch_certificates(providers.v3_clients()));

    let delivery = Delivery::connect(
        config.amqp_url.as_deref(),
        &format!("{}.events", config.amqp_prefix),
        &EVENT_RETRIES,
    )
    .await
    .map_err(StartError::backend("rabbitmq"))?;
    let waits = Waits {
        order: Duration::from_secs(config.order_timeout_secs.max(1)),
        vend: Duration::from_secs(config.vend_timeout_secs.max(1)),
        retry: Duration::from_secs(5),
    };
    let (delays, runner, rabbit_delays) = delays(&delivery, config, waits).await?;

    let feed = super::feed::connect(
        match &delivery {
            Delivery::Rabbit { connection, .. } => Some(connection),
            Delivery::InProcess => None,
        },
        &config.amqp_prefix,
        shutdown.clone(),
    )
    .await
    .map_err(StartError::backend("rabbitmq"))?;

    let (results_tx, results_rx) = mpsc::channel(1024);
    let (scans_tx, scans_rx) = mpsc::channel(256);
    let inbox = Inbox {
        results: results_tx,
        scans: scans_tx,
    };
    let machines = machines(config, simulate, inbox, shutdown.clone(), &db).await?;

    let bills = BillReconciler::new(channels.clone(), store.clone(), bill_store, locks.clone());
    let short_poll = ShortPoll::new(payments.clone(), locks.clone());
    let orders = Arc::new(OrderService::new(
        db,
        payments,
        locks,
        machines,
        delays,
        buyers.clone(),
        OrderSettings {
            public_url: public_url.clone(),
            order_timeout: waits.order,
            vend_timeout: waits.vend,
            template_paid: config.template_paid.clone(),
            template_refunded: config.template_refunded.clone(),
        },
        metrics.clone(),
        feed,
    ));
    let complaints = providers.v3_clients().into_iter().next().map(|client| {
        Arc::new(super::complaints::Complaints::new(
            crate::complaints::ComplaintDesk::new(client),
            orders.db().clone(),
        ))
    });
    let emulator_url = providers.emulator.as_ref().map(|e| e.base_url().to_owned());
    let state = Arc::new(VendingState {
        settings: settings(config, mode, public_url, emulator_url),
        orders,
        processor,
        sandbox,
        buyers,
        metrics,
        sessions: Sessions::new(
            SessionKeys::new(&session_secret, mode),
            Duration::from_secs(config.access.session_ttl_secs.max(60)),
            Duration::from_secs(config.access.seller_session_ttl_secs.max(60)),
            secure_cookies,
        ),
        limiter,
        feed_connections: Arc::new(tokio::sync::Semaphore::new(
            config.feed.ws_max_connections.max(1),
        )),
        bills,
        short_poll,
        complaints,
    });
    Ok(Wired {
        mode,
        state,
        emulator: providers.emulator,
        shutdown,
        delivery,
        rabbit_delays,
        demo_seller,
        channels,
        store,
        reconcile: config.reconcile.clone(),
        complaint_sync: Duration::from_secs(config.complaint_sync_secs.max(10)),
        daily_bills: config.bills.daily(mode).then_some((
            bill_at,
            Duration::from_secs(config.bills.bill_retry_minutes.max(1) * 60),
        )),
        delays: Some(runner),
        vend_results: Some(results_rx),
        scans: Some(scans_rx),
    })
}

/// Whether the machines are simulated: without `MQTT_URL` in demo mode, or when staging says so
/// (`SIMULATE_MACHINES=true`); live mode without `MQTT_URL` must say so.
fn machines_simulated(config: &VendingConfig, mode: Mode) -> Result<bool, StartError> {
    Ok(match (config.simulate_machines, &config.mqtt_url, mode) {
        (Some(true), Some(_), _) => {
            return Err(StartError::Refused(
                "SIMULATE_MACHINES=true and MQTT_URL exclude each other",
            ));
        }
        (Some(false), None, _) => {
            return Err(StartError::Refused(
                "SIMULATE_MACHINES=false needs MQTT_URL (the machines' broker)",
            ));
        }
        (None, None, Mode::Live) => {
            return Err(StartError::Refused(
                "live mode needs the machines: set MQTT_URL (or SIMULATE_MACHINES=true for \
                 staging, where no item leaves a machine)",
            ));
        }
        (_, Some(_), _) => false,
        (_, None, _) => true,
    })
}

/// `SESSION_SECRET`, or one secret for every instance: the first to start writes it.
async fn session_secret(config: &VendingConfig, db: &VendingDb) -> Result<String, StartError> {
    Ok(match &config.access.session_secret {
        Some(s) if s.expose().len() >= 32 => s.expose().to_owned(),
        Some(_) => {
            return Err(StartError::Refused(
                "SESSION_SECRET needs at least 32 characters",
            ));
        }
        // One secret for every instance: the first to start writes it.
        None => db
            .shared_setting("session_secret", || {
                crate::random::token(32)
                    .map_err(|e| aggregate_pay::StoreError::Other(e.to_string()))
            })
            .await
            .map_err(StartError::backend("database"))?,
    })
}

/// Demo mode's seller; live mode disables the one an earlier demo run left, and frees its
/// machines.
async fn demo_seller(mode: Mode, db: &VendingDb) -> Result<Option<DemoSeller>, StartError> {
    Ok(match mode {
        Mode::Demo => Some(
            accounts::demo_seller(db)
                .await
                .map_err(StartError::backend("demo seller"))?,
        ),
        Mode::Live => {
            let disabled = db
                .disable_demo_sellers()
                .await
                .map_err(StartError::backend("database"))?;
            if disabled > 0 {
                tracing::warn!("live mode: the demo seller of an earlier demo run was disabled");
            }
            let released = db
                .release_demo_machines()
                .await
                .map_err(StartError::backend("database"))?;
            if released > 0 {
                tracing::warn!(
                    machines = released,
                    "live mode: the demo seller's machines belong to nobody until assigned"
                );
            }
            None
        }
    })
}

/// Locks, the MP access token's store and the rate limiter: in Redis (every instance shares
/// them) or in this process.
type Shared = (
    Arc<dyn LockManager>,
    Option<Arc<dyn wechat_mp::TokenStore>>,
    Arc<dyn RateLimiter>,
);

async fn shared(config: &VendingConfig) -> Result<Shared, StartError> {
    Ok(match &config.redis_url {
        Some(url) => (
            Arc::new(
                RedisLockManager::connect(url, &format!("{}lock:", config.redis_prefix))
                    .await
                    .map_err(StartError::backend("redis"))?,
            ),
            Some(Arc::new(
                wechat_mp::token::RedisTokenStore::connect_with_prefix(url, &config.redis_prefix)
                    .await
                    .map_err(StartError::backend("redis"))?,
            )),
            Arc::new(
                RedisRateLimiter::connect(url, &format!("{}rate:", config.redis_prefix))
                    .await
                    .map_err(StartError::backend("redis"))?,
            ),
        ),
        None => (
            Arc::new(MemoryLockManager::new()),
            None,
            Arc::new(MemoryRateLimiter::new()),
        ),
    })
}

/// Order and vend timeouts: RabbitMQ queues with a TTL, or in-process timers.
async fn delays(
    delivery: &Delivery,
    config: &VendingConfig,
    waits: Waits,
) -> Result<(Arc<dyn Delays>, DelayRunner, Option<RabbitDelays>), StartError> {
    Ok(match delivery {
        Delivery::Rabbit { connection, .. } => {
            let d = RabbitDelays::new(connection, &config.amqp_prefix, waits)
                .await
                .map_err(StartError::backend("rabbitmq"))?;
            (
                Arc::new(d.clone()),
                DelayRunner::Rabbit(d.clone(), connection.clone()),
                Some(d),
            )
        }
        Delivery::InProcess => {
            let (d, rx) = InProcessDelays::new(waits);
            (Arc::new(d.clone()), DelayRunner::InProcess(rx, d), None)
        }
    })
}

/// The machines: over MQTT, or simulated in process.
async fn machines(
    config: &VendingConfig,
    simulate: bool,
    inbox: Inbox,
    shutdown: CancellationToken,
    db: &VendingDb,
) -> Result<Arc<dyn MachineLink>, StartError> {
    Ok(match &config.mqtt_url {
        Some(url) if !simulate => Arc::new(
            MqttMachines::connect(url, Topics::new(&config.mqtt_topic_root), inbox, shutdown)
                .await
                .map_err(StartError::backend("mqtt"))?,
        ),
        _ => Arc::new(SimulatedMachines::new(
            SimBehaviour {
                latency: Duration::from_millis(config.sim_latency_ms),
                fail_rate: config.sim_fail_rate.clamp(0.0, 1.0),
            },
            inbox.results,
            db.clone(),
        )),
    })
}

/// What the handlers read.
fn settings(
    config: &VendingConfig,
    mode: Mode,
    public_url: String,
    emulator_url: Option<String>,
) -> VendingSettings {
    VendingSettings {
        mode,
        public_url,
        emulator_url,
        http: config.http.clone(),
        feed: config.feed.clone(),
        metrics_on_main: config.metrics_listen.is_none(),
        rate_per_min: config.access.order_rate_per_min.max(1),
        trusted_proxies: config.access.trusted_proxies.clone(),
        rate_prefixes: crate::client_addr::NetworkPrefixes {
            v4: config.access.rate_limit_ipv4_prefix,
            v6: config.access.rate_limit_ipv6_prefix,
        },
    }
}

impl Wired {
    /// Starts the background work — payment events, delayed jobs, machine results, the
    /// reconciler, the complaints' reads and the sweep (once now, then every 15 s) — until
    /// [`Wired::shutdown`].
    pub async fn spawn_workers(&mut self) -> Result<Vec<JoinHandle<()>>, StartError> {
        let shutdown = self.shutdown.clone();
        let orders = self.state.orders.clone();
        let mut tasks = spawn_event_delivery(
            self.store.clone(),
            Arc::new(PaymentEvents::new(orders.clone())),
            &self.delivery,
            EVENT_RETRIES,
            64,
            1,
            &shutdown,
        )
        .await
        .map_err(StartError::backend("rabbitmq"))?;
        tasks.push(spawn_reconciler(
            self.channels.clone(),
            self.store.clone(),
            &self.reconcile,
            None,
            &shutdown,
        ));
        if let Some((at, retry)) = self.daily_bills {
            let metrics = self.state.metrics.clone();
            tasks.push(spawn_bill_reconciler(
                self.state.bills.clone(),
                at,
                retry,
                Arc::new(move |run| metrics.bill_run(run)),
                &shutdown,
            ));
        }

        let handler: Arc<dyn DueHandler> = orders.clone();
        match self.delays.take() {
            Some(DelayRunner::InProcess(rx, delays)) => {
                tasks.push(tokio::spawn(super::delays::run_in_process(
                    rx,
                    delays,
                    handler,
                    shutdown.clone(),
                )));
            }
            Some(DelayRunner::Rabbit(delays, connection)) => {
                let stop = shutdown.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = delays.run(&connection, handler, stop).await {
                        tracing::error!(error = %e, "delayed jobs consumer stopped");
                    }
                }));
            }
            None => return Err(StartError::AlreadyStarted),
        }

        if let Some(mut results) = self.vend_results.take() {
            let (orders, stop) = (orders.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let result = tokio::select! {
                        _ = stop.cancelled() => return,
                        r = results.recv() => match r { Some(r) => r, None => return },
                    };
                    let orders = orders.clone();
                    tokio::spawn(async move {
                        if let Err(e) = orders.on_vend_result(&result).await {
                            tracing::error!(order = %result.result.order_no, error = %e, "vend result not applied; the sweep will time it out");
                        }
                    });
                }
            }));
        }

        if let Some(mut scans) = self.scans.take() {
            let (orders, stop) = (orders.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let scan = tokio::select! {
                        _ = stop.cancelled() => return,
                        s = scans.recv() => match s { Some(s) => s, None => return },
                    };
                    // Each scan waits for its buyer (up to half a minute): one task each.
                    let orders = orders.clone();
                    tokio::spawn(async move { orders.on_scan(&scan).await });
                }
            }));
        }

        if let Some(complaints) = self.state.complaints.clone() {
            tasks.push(tokio::spawn(crate::complaints::follow(
                complaints,
                self.state.settings.public_url.clone(),
                self.mode,
                self.complaint_sync,
                shutdown.clone(),
            )));
        }

        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if let Err(e) = orders.sweep().await {
                    tracing::warn!(error = %e, "sweep failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(15)) => {}
                }
            }
        }));
        Ok(tasks)
    }
}
