//! Outbox delivery over RabbitMQ (feature `rabbitmq`), for any number of instances.
//!
//! - [`RabbitPublisher`] is an [`EventHandler`] for the [`Dispatcher`](crate::Dispatcher): it
//!   publishes each outbox event (persistent, `message_id` = event id) to a topic exchange and
//!   counts it delivered only once the broker confirms it. A batch is published in one go and
//!   its confirms awaited together.
//! - [`RabbitConsumer`] takes events from the queue (a prefetch window, so batches), hands each
//!   to your handler and acks it only after the handler succeeded. A consumer that dies before
//!   acking leaves the message to the broker, which redelivers it. A failed event goes to a retry
//!   queue whose TTL sends it back later; after `max_attempts` it is dead-lettered to the
//!   `.dead` queue, where it stays until someone moves it back.
//!
//! Topology (all durable), for a prefix `p`: exchange `p` (topic) → queue `p` (bound `#`,
//! dead-letters to exchange `p.dlx`); queue `p.retry` (TTL, dead-letters back to `p`); exchange
//! `p.dlx` → queue `p.dead`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use lapin::{Confirmation, PublisherConfirm};
use tokio_util::sync::CancellationToken;

use crate::events::{EventKind, EventStatus, OutboxEvent};
use crate::outbox::EventHandler;
use crate::{PaymentId, StoreError};

const ATTEMPTS_HEADER: &str = "x-attempts";
const LAST_ERROR_HEADER: &str = "x-last-error";

fn amqp(e: lapin::Error) -> StoreError {
    StoreError(format!("rabbitmq: {e}"))
}

/// The names of the topology for a prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The topic exchange events are published to.
    pub exchange: String,
    /// The work queue.
    pub queue: String,
    /// The retry queue (messages wait there for the retry delay).
    pub retry_queue: String,
    /// The dead-letter exchange.
    pub dead_exchange: String,
    /// Where dead events stay.
    pub dead_queue: String,
    /// How long a failed event waits before its next attempt.
    pub retry_delay: Duration,
}

impl Topology {
    /// The topology named after `prefix` (e.g. `aggregate-pay.events`).
    pub fn new(prefix: &str, retry_delay: Duration) -> Self {
        Topology {
            exchange: prefix.to_owned(),
            queue: prefix.to_owned(),
            retry_queue: format!("{prefix}.retry"),
            dead_exchange: format!("{prefix}.dlx"),
            dead_queue: format!("{prefix}.dead"),
            retry_delay,
        }
    }

    /// Declares everything (idempotent).
    pub async fn declare(&self, channel: &Channel) -> Result<(), StoreError> {
        declare_exchange(channel, &self.exchange, ExchangeKind::Topic)
            .await
            .map_err(amqp)?;
        declare_exchange(channel, &self.dead_exchange, ExchangeKind::Fanout)
            .await
            .map_err(amqp)?;
        declare_queue(channel, &self.queue, Some(&self.dead_exchange), None)
            .await
            .map_err(amqp)?;
        bind_queue(channel, &self.queue, &self.exchange, "#")
            .await
            .map_err(amqp)?;
        declare_queue(
            channel,
            &self.retry_queue,
            Some(&self.exchange),
            Some(self.retry_delay),
        )
        .await
        .map_err(amqp)?;
        declare_queue(channel, &self.dead_queue, None, None)
            .await
            .map_err(amqp)?;
        bind_queue(channel, &self.dead_queue, &self.dead_exchange, "")
            .await
            .map_err(amqp)?;
        Ok(())
    }
}

/// Declares a durable exchange (idempotent).
pub async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares a durable queue (idempotent) whose rejected or expired messages go to
/// `dead_letter_exchange`, and whose messages expire after `ttl` — together, a delay queue.
pub async fn declare_queue(
    channel: &Channel,
    name: &str,
    dead_letter_exchange: Option<&str>,
    ttl: Option<Duration>,
) -> Result<(), lapin::Error> {
    let mut args = FieldTable::default();
    if let Some(exchange) = dead_letter_exchange {
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(exchange)),
        );
    }
    if let Some(ttl) = ttl {
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
        );
    }
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .map(|_| ())
}

/// Binds `queue` to `exchange` with `routing_key`.
pub async fn bind_queue(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            routing_key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

impl Topology {
    /// Deletes the queues and exchanges (tests, decommissioning). Messages in them are lost.
    pub async fn delete(&self, channel: &Channel) -> Result<(), StoreError> {
        use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
        for q in [&self.queue, &self.retry_queue, &self.dead_queue] {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(amqp)?;
        }
        for e in [&self.exchange, &self.dead_exchange] {
            channel
                .exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(amqp)?;
        }
        Ok(())
    }
}

impl Topology {
    /// Takes up to `limit` messages from the dead queue, hands each to `f` (which says whether
    /// to take it out of the dead queue), and puts the others back.
    async fn sweep_dead(
        &self,
        channel: &Channel,
        limit: usize,
        mut f: impl FnMut(&lapin::message::Delivery, OutboxEvent) -> bool,
    ) -> Result<(), StoreError> {
        let mut keep = Vec::new();
        for _ in 0..limit {
            let Some(msg) = channel
                .basic_get(
                    self.dead_queue.as_str().into(),
                    lapin::options::BasicGetOptions { no_ack: false },
                )
                .await
                .map_err(amqp)?
            else {
                break;
            };
            let delivery = msg.delivery;
            let take = match decode(&delivery) {
                Some(event) => f(&delivery, event),
                None => false,
            };
            if take {
                delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(amqp)?;
            } else {
                keep.push(delivery);
            }
        }
        for d in keep {
            d.nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map_err(amqp)?;
        }
        Ok(())
    }

    /// The dead events (up to `limit`); they stay in the dead queue.
    pub async fn dead_letters(
        &self,
        channel: &Channel,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut found = Vec::new();
        self.sweep_dead(channel, limit, |_, event| {
            found.push(event);
            false
        })
        .await?;
        Ok(found)
    }

    /// Moves the dead event `id` back to the work queue with a fresh attempt count; `false`
    /// when it is not in the dead queue.
    pub async fn redeliver_dead(&self, channel: &Channel, id: &str) -> Result<bool, StoreError> {
        let mut target = None;
        self.sweep_dead(channel, 10_000, |delivery, event| {
            if target.is_none() && event.id == id {
                target = Some((delivery.data.clone(), event.kind));
                true
            } else {
                false
            }
        })
        .await?;
        let Some((body, kind)) = target else {
            return Ok(false);
        };
        let confirm = channel
            .basic_publish(
                self.exchange.as_str().into(),
                kind.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(id, 0),
            )
            .await
            .map_err(amqp)?;
        confirmed(confirm.await).map_err(StoreError)?;
        Ok(true)
    }
}

/// Opens a connection to `url` (`amqp://…`).
pub async fn connect(url: &str) -> Result<Connection, StoreError> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(amqp)
}

fn properties(id: &str, attempts: u32) -> BasicProperties {
    failed_properties(id, attempts, None)
}

/// Properties of a message that failed `attempts` times, the last with `error`.
fn failed_properties(id: &str, attempts: u32, error: Option<&str>) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongUInt(attempts));
    if let Some(e) = error {
        let e: String = e.chars().take(500).collect();
        headers.insert(
            LAST_ERROR_HEADER.into(),
            AMQPValue::LongString(LongString::from(e.as_str())),
        );
    }
    BasicProperties::default()
        .with_message_id(ShortString::from(id))
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers)
}

/// Publishes outbox events to the exchange with publisher confirms.
#[derive(Debug, Clone)]
pub struct RabbitPublisher {
    channel: Channel,
    topology: Topology,
}

impl RabbitPublisher {
    /// A publisher on its own channel of `connection` (the topology is declared).
    pub async fn new(connection: &Connection, topology: Topology) -> Result<Self, StoreError> {
        let channel = connection.create_channel().await.map_err(amqp)?;
        topology.declare(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp)?;
        Ok(RabbitPublisher { channel, topology })
    }

    async fn publish(&self, event: &OutboxEvent) -> Result<PublisherConfirm, String> {
        let body = event.to_json().to_string();
        self.channel
            .basic_publish(
                self.topology.exchange.as_str().into(),
                event.kind.as_str().into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                properties(&event.id, 0),
            )
            .await
            .map_err(|e| e.to_string())
    }
}

fn confirmed(c: Result<Confirmation, lapin::Error>) -> Result<(), String> {
    match c {
        Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
        Ok(Confirmation::Ack(Some(_))) => Err("unroutable: returned by the broker".into()),
        Ok(Confirmation::Nack(_)) => Err("the broker did not accept the message".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[async_trait]
impl EventHandler for RabbitPublisher {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), String> {
        confirmed(self.publish(event).await?.await)
    }

    async fn handle_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), String>> {
        // Hand the whole batch to the connection at once (the publishes are written in order,
        // without a wait for each), then await the confirms: one round trip per batch.
        let pending = futures_util::future::join_all(events.iter().map(|e| self.publish(e))).await;
        let mut results = Vec::with_capacity(events.len());
        for p in pending {
            results.push(match p {
                Ok(confirm) => confirmed(confirm.await),
                Err(e) => Err(e),
            });
        }
        results
    }
}

/// Consumes events and hands them to a handler, acking only after success.
#[derive(Clone)]
pub struct RabbitConsumer {
    channel: Channel,
    topology: Topology,
    max_attempts: u32,
    prefetch: u16,
}

impl std::fmt::Debug for RabbitConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitConsumer")
            .field("queue", &self.topology.queue)
            .field("max_attempts", &self.max_attempts)
            .field("prefetch", &self.prefetch)
            .finish()
    }
}

/// The attempts so far and the last error, from a message's headers.
fn failures(properties: &BasicProperties) -> (u32, Option<String>) {
    let headers = properties.headers().as_ref().map(|h| h.inner());
    let attempts = headers
        .and_then(|h| h.get(ATTEMPTS_HEADER).cloned())
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(n),
            AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0);
    let last_error = headers
        .and_then(|h| h.get(LAST_ERROR_HEADER).cloned())
        .and_then(|v| match v {
            AMQPValue::LongString(s) => Some(s.to_string()),
            _ => None,
        });
    (attempts, last_error)
}

fn decode(delivery: &lapin::message::Delivery) -> Option<OutboxEvent> {
    let (attempts, last_error) = failures(&delivery.properties);
    let v: serde_json::Value = serde_json::from_slice(&delivery.data).ok()?;
    let created = v["created_at"].as_i64().unwrap_or(0);
    let created = time::OffsetDateTime::from_unix_timestamp(created).ok()?;
    Some(OutboxEvent {
        id: v["id"].as_str()?.to_owned(),
        kind: EventKind::parse(v["type"].as_str()?),
        payment_id: PaymentId(v["payment_id"].as_str()?.to_owned()),
        payload: v["data"].clone(),
        created_at: created,
        status: EventStatus::Pending,
        attempts,
        last_error,
        next_attempt_at: created,
    })
}

impl RabbitConsumer {
    /// A consumer on its own channel of `connection`; events failing `max_attempts` times are
    /// dead-lettered. `prefetch` messages are in flight at once.
    pub async fn new(
        connection: &Connection,
        topology: Topology,
        max_attempts: u32,
        prefetch: u16,
    ) -> Result<Self, StoreError> {
        let channel = connection.create_channel().await.map_err(amqp)?;
        topology.declare(&channel).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(amqp)?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(amqp)?;
        Ok(RabbitConsumer {
            channel,
            topology,
            max_attempts: max_attempts.max(1),
            prefetch,
        })
    }

    /// Consumes until `shutdown`. Up to `prefetch` events are handled concurrently; those in
    /// flight are finished (and acked) before it returns.
    ///
    /// Acks are coalesced: one `multiple` ack covers every finished message below the oldest
    /// one still in flight, sent once a quarter of the prefetch window has finished (or every
    /// 20 ms), so a message is never acked before it was handled.
    pub async fn run(
        &self,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) -> Result<(), StoreError> {
        let mut consumer = self
            .channel
            .basic_consume(
                self.topology.queue.as_str().into(),
                format!("aggregate-pay-{}", crate::random_hex(6))
                    .as_str()
                    .into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp)?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut window = AckWindow::default();
        let flush_at = usize::from(self.prefetch.max(4) / 4);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                d = consumer.next() => match d {
                    None => break Ok(()),
                    Some(Err(e)) => break Err(amqp(e)),
                    Some(Ok(delivery)) => {
                        let tag = delivery.delivery_tag;
                        window.started(tag);
                        let (this, handler) = (self.clone(), handler.clone());
                        tasks.spawn(async move { (tag, this.process(handler.as_ref(), delivery).await) });
                    }
                },
                Some(done) = tasks.join_next() => {
                    if let Err(e) = self.settle(&mut window, done).await {
                        break Err(e);
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.flush(&mut window).await {
                        break Err(e);
                    }
                }
            }
            if window.pending() >= flush_at {
                if let Err(e) = self.flush(&mut window).await {
                    break Err(e);
                }
            }
        };
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = self.settle(&mut window, done).await {
                result = result.and(Err(e));
            }
        }
        self.flush(&mut window).await.and(result)
    }

    /// Records a finished message. One whose handling could not be settled at all is put back
    /// in the queue; if even that fails, it stays "in flight" so no ack ever covers it (the
    /// broker redelivers it when the channel closes).
    async fn settle(
        &self,
        window: &mut AckWindow,
        done: Result<(u64, Result<Settled, StoreError>), tokio::task::JoinError>,
    ) -> Result<(), StoreError> {
        let (tag, outcome) = match done {
            Ok(d) => d,
            // A panicking handler: its message stays unacked (redelivered with the channel).
            Err(e) => return Err(StoreError(format!("a handler task failed: {e}"))),
        };
        match outcome {
            Ok(Settled::Ack) => window.finished(tag, true),
            Ok(Settled::Already) => window.finished(tag, false),
            Err(e) => {
                tracing::error!(error = %e, "could not settle a message; putting it back");
                self.channel
                    .basic_nack(
                        tag,
                        BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        },
                    )
                    .await
                    .map_err(amqp)?;
                window.finished(tag, false);
            }
        }
        Ok(())
    }

    /// Acks what can be acked.
    async fn flush(&self, window: &mut AckWindow) -> Result<(), StoreError> {
        if let Some(tag) = window.ackable() {
            self.channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await
                .map_err(amqp)?;
        }
        Ok(())
    }

    async fn process(
        &self,
        handler: &dyn EventHandler,
        delivery: lapin::message::Delivery,
    ) -> Result<Settled, StoreError> {
        let Some(event) = decode(&delivery) else {
            tracing::error!("undecodable message; dead-lettering it");
            return delivery
                .nack(BasicNackOptions {
                    requeue: false,
                    ..BasicNackOptions::default()
                })
                .await
                .map(|_| Settled::Already)
                .map_err(amqp);
        };
        match handler.handle(&event).await {
            Ok(()) => Ok(Settled::Ack),
            Err(error) => {
                let attempts = event.attempts + 1;
                // Park a copy — in the retry queue (it comes back after the delay) or, out of
                // attempts, in the dead queue — with the error; ack only once it is confirmed.
                let (exchange, routing_key) = if attempts < self.max_attempts {
                    tracing::warn!(event = %event.id, %error, attempt = attempts, "event failed; retrying later");
                    ("", self.topology.retry_queue.as_str())
                } else {
                    tracing::error!(event = %event.id, %error, "event failed too often; dead-lettered");
                    (self.topology.dead_exchange.as_str(), "")
                };
                let confirm = self
                    .channel
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        BasicPublishOptions::default(),
                        &delivery.data,
                        failed_properties(&event.id, attempts, Some(&error)),
                    )
                    .await
                    .map_err(amqp)?;
                confirmed(confirm.await).map_err(StoreError)?;
                Ok(Settled::Ack)
            }
        }
    }
}

/// How a handled message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// To be acked (coalesced).
    Ack,
    /// Already settled on its own (nacked).
    Already,
}

/// The delivery tags in flight and those finished but not yet acked. A `multiple` ack of tag
/// `n` settles every outstanding tag up to `n`, so it may only be sent for `n` below the oldest
/// tag still in flight.
#[derive(Debug, Default)]
struct AckWindow {
    in_flight: std::collections::BTreeSet<u64>,
    to_ack: std::collections::BTreeSet<u64>,
}

impl AckWindow {
    fn started(&mut self, tag: u64) {
        self.in_flight.insert(tag);
    }

    fn finished(&mut self, tag: u64, ack: bool) {
        self.in_flight.remove(&tag);
        if ack {
            self.to_ack.insert(tag);
        }
    }

    fn pending(&self) -> usize {
        self.to_ack.len()
    }

    /// The tag to ack with `multiple` now, if any; those it covers are forgotten.
    fn ackable(&mut self) -> Option<u64> {
        let floor = self.in_flight.first().copied().unwrap_or(u64::MAX);
        let keep = self.to_ack.split_off(&floor);
        let covered = std::mem::replace(&mut self.to_ack, keep);
        covered.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::AckWindow;

    #[test]
    fn a_multiple_ack_never_covers_a_message_still_in_flight() {
        let mut w = AckWindow::default();
        for tag in 1..=5 {
            w.started(tag);
        }
        w.finished(2, true);
        w.finished(3, true);
        assert_eq!(w.ackable(), None, "1 is still in flight");
        w.finished(1, true);
        assert_eq!(w.ackable(), Some(3));
        assert_eq!(w.ackable(), None, "already covered");
        w.finished(5, true);
        w.finished(4, false); // nacked on its own
        assert_eq!(w.ackable(), Some(5));
        w.started(6);
        w.started(7);
        w.finished(7, true);
        assert_eq!(w.ackable(), None);
        assert_eq!(w.pending(), 1);
    }
}
