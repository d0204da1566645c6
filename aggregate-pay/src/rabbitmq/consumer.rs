//! Consuming events: a prefetch window, acks after the handler succeeded, retries and dead letters.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio_util::sync::CancellationToken;

use crate::StoreError;
use crate::outbox::EventHandler;

use super::*;

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
            Err(e) => return Err(StoreError::Other(format!("a handler task failed: {e}"))),
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
                let (exchange, routing_key) = if error.is_retryable()
                    && attempts < self.max_attempts
                {
                    tracing::warn!(event = %event.id, %error, attempt = attempts, "event failed; retrying later");
                    ("", self.topology.retry_queue_for(attempts))
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
                        failed_properties(&event.id, attempts, Some(&error.to_string())),
                    )
                    .await
                    .map_err(amqp)?;
                confirmed(confirm.await).map_err(|e| StoreError::Unavailable(e.to_string()))?;
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
