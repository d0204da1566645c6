//! Background work both servers run: delivering outbox events to a handler — in process (the
//! outbox `Dispatcher` with its retry policy) or over RabbitMQ (a relay publishing in confirmed
//! batches, and a consumer with prefetch, retry queue and dead queue) — and the `Reconciler`.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::rabbitmq::{RabbitConsumer, RabbitPublisher, Topology};
use aggregate_pay::{
    Channels, Dispatcher, EventHandler, PaymentStore, Reconciler, RetryPolicy, StoreError,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    shutdown: &CancellationToken,
) -> JoinHandle<()> {
    let reconciler = Reconciler::new(
        channels,
        store,
        Duration::from_secs(settings.reconcile_after_secs),
    );
    let every = Duration::from_secs(settings.reconcile_interval_secs.max(1));
    let stop = shutdown.clone();
    tokio::spawn(async move { reconciler.run(every, stop).await })
}
