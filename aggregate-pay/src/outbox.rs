//! Delivering outbox events: at least once, retried with exponential backoff, parked as dead
//! after too many failures (with the last error kept) until someone redelivers them.
//!
//! The [`Dispatcher`] claims due events from the store (a lease, so several instances can run
//! it), hands each to an [`EventHandler`], and records the result. Where the store hands off
//! what it commits ([`PaymentStore::hand_off_events`]), the dispatcher running takes those
//! events as they commit, already leased to it, and polls only for the rest (retries, events
//! of other instances, leases run out). Handlers get every event at least once and must dedupe
//! by [`OutboxEvent::id`]. With the `rabbitmq` feature, the handler can be a publisher to
//! RabbitMQ, whose consumers then do the work on any number of instances.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::StoreError;
use crate::events::OutboxEvent;
use crate::store::PaymentStore;

/// Why a handler did not handle an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// It may work later (the other side is down, busy, timed out): retried on the policy's
    /// schedule, dead-lettered after the last attempt.
    #[error("{0}")]
    Retry(String),
    /// It will never work (the event cannot be read, what it is for is gone): dead-lettered
    /// now, for a person to look at.
    #[error("{0}")]
    Reject(String),
}

impl HandlerError {
    /// A failure worth retrying.
    pub fn retry(why: impl std::fmt::Display) -> Self {
        HandlerError::Retry(why.to_string())
    }

    /// A failure retrying cannot fix.
    pub fn reject(why: impl std::fmt::Display) -> Self {
        HandlerError::Reject(why.to_string())
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Retry(_))
    }
}

/// Does something with an event (send a callback, publish it, notify a merchant…).
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Handles `event`; see [`HandlerError`] for what an error leads to.
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError>;

    /// Handles a batch (the dispatcher always calls this); one result per event, in order.
    /// Handlers that can pipeline (a publisher awaiting confirms for a whole batch) override it.
    async fn handle_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), HandlerError>> {
        let mut results = Vec::with_capacity(events.len());
        for e in events {
            results.push(self.handle(e).await);
        }
        results
    }
}

/// When to retry and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before an event is dead.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` after `attempt` failures (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Hands outbox events to a handler.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn PaymentStore>,
    handler: Arc<dyn EventHandler>,
    policy: RetryPolicy,
    batch: usize,
    lease: Duration,
    linger: Duration,
    concurrency: usize,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("policy", &self.policy)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher from `store` to `handler`.
    pub fn new(store: Arc<dyn PaymentStore>, handler: Arc<dyn EventHandler>) -> Self {
        Dispatcher {
            store,
            handler,
            policy: RetryPolicy::default(),
            batch: 100,
            lease: Duration::from_secs(60),
            linger: Duration::ZERO,
            concurrency: 1,
        }
    }

    /// Batches handled at once (default 1: one after the other, in order). More lets a batch
    /// stuck on a slow recipient not hold up the next ones; events of a payment may then be
    /// handled out of order, so only for handlers that do not care (each event stands alone).
    pub fn concurrency(mut self, batches: usize) -> Self {
        self.concurrency = batches.max(1);
        self
    }

    /// The retry policy.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Events claimed per round.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// After a round that found fewer events than a batch, wait this long before the next, so
    /// that under a steady stream each round carries many events instead of each event costing
    /// a round of its own (claim, acknowledge) on the store. Delivery waits at most this much
    /// longer. Zero (the default) goes again at once.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Delivers what is due now; returns how many events were handed to the handler.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let events = self.store.claim_events(now, self.lease, self.batch).await?;
        self.deliver(&events).await?;
        Ok(events.len())
    }

    /// Hands `events` (leased to this dispatcher) to the handler and records the results.
    async fn deliver(&self, events: &[OutboxEvent]) -> Result<(), StoreError> {
        let results = self.handler.handle_batch(events).await;
        let mut delivered = Vec::with_capacity(events.len());
        for (event, result) in events.iter().zip(results) {
            match result {
                Ok(()) => delivered.push(event.id.clone()),
                Err(error) => {
                    let attempt = event.attempts + 1;
                    let retry_at = (error.is_retryable() && attempt < self.policy.max_attempts)
                        .then(|| OffsetDateTime::now_utc() + self.policy.delay(attempt));
                    if retry_at.is_none() {
                        tracing::error!(event = %event.id, kind = %event.kind, %error, "event dead after {attempt} attempts");
                    } else {
                        tracing::warn!(event = %event.id, kind = %event.kind, %error, attempt, "event delivery failed; will retry");
                    }
                    self.store
                        .event_failed(&event.id, &error.to_string(), retry_at)
                        .await?;
                }
            }
        }
        self.store.events_delivered(&delivered).await
    }

    /// Delivers until `shutdown`: the events the store hands off as they commit, if it does,
    /// and the others by polling, every `idle` when there is nothing to do. In-flight events
    /// finish before it returns.
    pub async fn run(&self, idle: Duration, shutdown: CancellationToken) {
        let mut handed = self
            .store
            .hand_off_events(self.lease, self.batch.saturating_mul(HAND_OFF_BATCHES));
        let mut next_poll = tokio::time::Instant::now();
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() >= self.concurrency {
                in_flight.join_next().await;
            }
            let mut events = Vec::new();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = receive(&mut handed, &mut events, self.batch) => {
                    if n == 0 {
                        // The store let go of the channel: polling only, from now on.
                        handed = None;
                    } else {
                        self.spawn_delivery(&mut in_flight, events);
                    }
                    continue;
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                _ = tokio::time::sleep_until(next_poll) => {}
            }
            let now = OffsetDateTime::now_utc();
            let pause = match self.store.claim_events(now, self.lease, self.batch).await {
                Ok(events) if events.is_empty() => idle,
                Ok(events) => {
                    let n = events.len();
                    self.spawn_delivery(&mut in_flight, events);
                    if n < self.batch {
                        self.linger
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox dispatch failed");
                    idle
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            next_poll = tokio::time::Instant::now() + pause;
        }
        // In-flight events finish (and are recorded) before returning.
        while in_flight.join_next().await.is_some() {}
    }

    fn spawn_delivery(&self, in_flight: &mut tokio::task::JoinSet<()>, events: Vec<OutboxEvent>) {
        let this = self.clone();
        in_flight.spawn(async move {
            if let Err(e) = this.deliver(&events).await {
                tracing::error!(error = %e, "outbox delivery not recorded; the events will be claimed again");
            }
        });
    }
}

/// Batches' worth of handed-off events that may wait for the dispatcher; beyond, the store
/// keeps them for polling.
const HAND_OFF_BATCHES: usize = 10;

/// Up to `limit` handed-off events into `events` (waits for the first); 0 when the store has
/// let go. Never returns without a channel.
async fn receive(
    handed: &mut Option<tokio::sync::mpsc::Receiver<OutboxEvent>>,
    events: &mut Vec<OutboxEvent>,
    limit: usize,
) -> usize {
    match handed {
        Some(rx) => rx.recv_many(events, limit).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        assert_eq!(p.delay(1), Duration::from_secs(1));
        assert_eq!(p.delay(2), Duration::from_secs(2));
        assert_eq!(p.delay(4), Duration::from_secs(8));
        assert_eq!(p.delay(5), Duration::from_secs(10));
        assert_eq!(p.delay(60), Duration::from_secs(10));
    }
}
