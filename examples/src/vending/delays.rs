//! Delayed jobs: "close this order if still unpaid", "fail this vend if the machine has not
//! answered", "try again later".
//!
//! - [`InProcessDelays`]: a timer task per job; lost on restart, which the start-up sweep covers.
//! - [`RabbitDelays`]: one wait queue per delay with a queue TTL (so messages expire in order),
//!   dead-lettered into the due queue when they expire; survives restarts and is shared by every
//!   instance. Jobs are acked only after they were handled.
//!
//! Either way the job reaches [`DueHandler::on_due`], which must tolerate a job for an order
//! that moved on (it checks the status).

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::rabbitmq::{bind_queue, declare_exchange, declare_queue};
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueKind {
    /// The order's payment window ended.
    OrderTimeout,
    /// The machine's vend window ended.
    VendTimeout,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueJob {
    /// What.
    pub kind: DueKind,
    /// Which order.
    pub order_no: String,
}

/// Which wait a job takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The order timeout.
    Order,
    /// The vend timeout.
    Vend,
    /// A short wait before trying again.
    Retry,
}

/// The three waits.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// `ORDER_TIMEOUT_SECS`.
    pub order: Duration,
    /// `VEND_TIMEOUT_SECS`.
    pub vend: Duration,
    /// Before a failed step is tried again.
    pub retry: Duration,
}

impl Waits {
    fn of(&self, wait: Wait) -> Duration {
        match wait {
            Wait::Order => self.order,
            Wait::Vend => self.vend,
            Wait::Retry => self.retry,
        }
    }
}

/// Why a job could not be scheduled or consumed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DelayError {
    /// RabbitMQ failed.
    #[error("rabbitmq: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused the job.
    #[error("rabbitmq: the broker refused a delayed job")]
    Refused,
    /// The job could not be encoded.
    #[error("cannot encode the job: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Why a due job was not handled (it is delivered again later).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DueError(pub crate::running::BoxError);

/// Schedules jobs.
#[async_trait]
pub trait Delays: Send + Sync + std::fmt::Debug {
    /// `job` becomes due after `wait`.
    async fn schedule(&self, job: DueJob, wait: Wait) -> Result<(), DelayError>;
}

/// Handles due jobs.
#[async_trait]
pub trait DueHandler: Send + Sync {
    /// Handles one; an error means "deliver it again later".
    async fn on_due(&self, job: &DueJob) -> Result<(), DueError>;
}

/// Timers in this process.
#[derive(Debug, Clone)]
pub struct InProcessDelays {
    waits: Waits,
    due: mpsc::UnboundedSender<DueJob>,
}

impl InProcessDelays {
    /// Timers whose jobs come out of the returned receiver (see [`run_in_process`]).
    pub fn new(waits: Waits) -> (Self, mpsc::UnboundedReceiver<DueJob>) {
        let (due, rx) = mpsc::unbounded_channel();
        (InProcessDelays { waits, due }, rx)
    }
}

#[async_trait]
impl Delays for InProcessDelays {
    async fn schedule(&self, job: DueJob, wait: Wait) -> Result<(), DelayError> {
        let (due, after) = (self.due.clone(), self.waits.of(wait));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = due.send(job);
        });
        Ok(())
    }
}

/// Hands in-process jobs to `handler` until `shutdown`; a failed job is retried after the retry
/// wait.
pub async fn run_in_process(
    mut jobs: mpsc::UnboundedReceiver<DueJob>,
    delays: InProcessDelays,
    handler: Arc<dyn DueHandler>,
    shutdown: CancellationToken,
) {
    loop {
        let job = tokio::select! {
            _ = shutdown.cancelled() => return,
            j = jobs.recv() => match j { Some(j) => j, None => return },
        };
        let (handler, delays) = (handler.clone(), delays.clone());
        tokio::spawn(async move {
            if let Err(e) = handler.on_due(&job).await {
                tracing::warn!(order = %job.order_no, error = %e, "due job failed; retrying later");
                let _ = delays.schedule(job, Wait::Retry).await;
            }
        });
    }
}

/// Delays in RabbitMQ.
#[derive(Clone)]
pub struct RabbitDelays {
    channel: Channel,
    names: Names,
}

impl std::fmt::Debug for RabbitDelays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitDelays")
            .field("due", &self.names.due_queue)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct Names {
    due_exchange: String,
    due_queue: String,
    wait_queues: [String; 3],
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl RabbitDelays {
    /// Declares the due exchange and queue and the wait queues (named after their TTL, so a
    /// changed timeout gets a fresh queue) under `prefix`.
    pub async fn new(
        connection: &Connection,
        prefix: &str,
        waits: Waits,
    ) -> Result<Self, DelayError> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let names = Names {
            due_exchange: format!("{prefix}.due"),
            due_queue: format!("{prefix}.due"),
            wait_queues: [Wait::Order, Wait::Vend, Wait::Retry]
                .map(|w| format!("{prefix}.wait.{}ms", millis(waits.of(w)))),
        };
        declare_exchange(&channel, &names.due_exchange, ExchangeKind::Fanout).await?;
        declare_queue(&channel, &names.due_queue, None, None).await?;
        bind_queue(&channel, &names.due_queue, &names.due_exchange, "").await?;
        for (queue, wait) in names
            .wait_queues
            .iter()
            .zip([Wait::Order, Wait::Vend, Wait::Retry])
        {
            declare_queue(
                &channel,
                queue,
                Some(&names.due_exchange),
                Some(waits.of(wait)),
            )
            .await?;
        }
        Ok(RabbitDelays { channel, names })
    }

    /// Removes the queues and the exchange (tests).
    pub async fn delete(&self) -> Result<(), DelayError> {
        for q in self.names.wait_queues.iter().chain([&self.names.due_queue]) {
            self.channel
                .queue_delete(
                    q.as_str().into(),
                    lapin::options::QueueDeleteOptions::default(),
                )
                .await?;
        }
        self.channel
            .exchange_delete(
                self.names.due_exchange.as_str().into(),
                lapin::options::ExchangeDeleteOptions::default(),
            )
            .await?;
        Ok(())
    }

    /// Consumes due jobs until `shutdown`, acking each once handled; a failed one goes to the
    /// retry wait.
    pub async fn run(
        &self,
        connection: &Connection,
        handler: Arc<dyn DueHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), DelayError> {
        let channel = connection.create_channel().await?;
        channel.basic_qos(32, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                self.names.due_queue.as_str().into(),
                "vending-due".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = consumer.next() => match d {
                    None => return Ok(()),
                    Some(d) => d?,
                },
            };
            let Ok(job) = serde_json::from_slice::<DueJob>(&delivery.data) else {
                tracing::error!("undecodable due job dropped");
                delivery.nack(BasicNackOptions::default()).await?;
                continue;
            };
            let (this, handler) = (self.clone(), handler.clone());
            tokio::spawn(async move {
                if let Err(e) = handler.on_due(&job).await {
                    tracing::warn!(order = %job.order_no, error = %e, "due job failed; retrying later");
                    if let Err(e) = this.schedule(job, Wait::Retry).await {
                        // Not acked: it comes back when the channel closes.
                        tracing::error!(error = %e, "due job not rescheduled");
                        return;
                    }
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            });
        }
    }
}

#[async_trait]
impl Delays for RabbitDelays {
    async fn schedule(&self, job: DueJob, wait: Wait) -> Result<(), DelayError> {
        let queue = match wait {
            Wait::Order => &self.names.wait_queues[0],
            Wait::Vend => &self.names.wait_queues[1],
            Wait::Retry => &self.names.wait_queues[2],
        };
        let body = serde_json::to_vec(&job)?;
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type(ShortString::from("application/json")),
            )
            .await?;
        match confirm.await? {
            lapin::Confirmation::Nack(_) => Err(DelayError::Refused),
            _ => Ok(()),
        }
    }
}
