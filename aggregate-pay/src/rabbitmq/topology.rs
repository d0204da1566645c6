//! The exchanges and queues, and the dead letters.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::StoreError;
use crate::events::OutboxEvent;

use super::*;

/// The names of the topology for a prefix.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The topic exchange events are published to.
    pub exchange: String,
    /// The work queue.
    pub queue: String,
    /// The (first) retry queue (messages wait there for the retry delay).
    pub retry_queue: String,
    /// The dead-letter exchange.
    pub dead_exchange: String,
    /// Where dead events stay.
    pub dead_queue: String,
    /// How long a failed event waits before its (first) next attempt.
    pub retry_delay: Duration,
    /// The retry queues, one per distinct delay (RabbitMQ expires messages from a queue's head
    /// only, so each delay needs its own queue), and which one each attempt uses.
    tiers: Vec<(Duration, String)>,
    /// Per failed attempt (1-based, index 0 for the first failure), its tier; the last repeats.
    schedule: Vec<usize>,
}

impl Topology {
    /// The topology named after `prefix` (e.g. `aggregate-pay.events`), every retry after
    /// `retry_delay`.
    pub fn new(prefix: &str, retry_delay: Duration) -> Self {
        Self::with_schedule(prefix, &[retry_delay])
    }

    /// The topology with a retry schedule: after failure `n` (1-based) an event waits
    /// `delays[n - 1]`, the last delay repeating (e.g. a [`crate::RetryPolicy`]'s delays, which
    /// span hours).
    pub fn with_schedule(prefix: &str, delays: &[Duration]) -> Self {
        let delays = if delays.is_empty() {
            vec![Duration::from_secs(1)]
        } else {
            delays.to_vec()
        };
        let mut tiers: Vec<(Duration, String)> = Vec::new();
        let mut schedule = Vec::with_capacity(delays.len());
        for d in &delays {
            let i = match tiers.iter().position(|(t, _)| t == d) {
                Some(i) => i,
                None => {
                    let name = if tiers.is_empty() {
                        format!("{prefix}.retry")
                    } else {
                        format!("{prefix}.retry.{}ms", d.as_millis())
                    };
                    tiers.push((*d, name));
                    tiers.len() - 1
                }
            };
            schedule.push(i);
        }
        Topology {
            exchange: prefix.to_owned(),
            queue: prefix.to_owned(),
            retry_queue: tiers[0].1.clone(),
            dead_exchange: format!("{prefix}.dlx"),
            dead_queue: format!("{prefix}.dead"),
            retry_delay: delays[0],
            tiers,
            schedule,
        }
    }

    /// The retry queue an event goes to after its `attempts`-th failure (1-based).
    pub fn retry_queue_for(&self, attempts: u32) -> &str {
        let step = usize::try_from(attempts.max(1) - 1).unwrap_or(usize::MAX);
        let tier = self
            .schedule
            .get(step)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(0);
        &self.tiers[tier].1
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
        for (delay, name) in &self.tiers {
            declare_queue(channel, name, Some(&self.exchange), Some(*delay))
                .await
                .map_err(amqp)?;
        }
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
        let queues = [&self.queue, &self.dead_queue]
            .into_iter()
            .chain(self.tiers.iter().map(|(_, name)| name));
        for q in queues {
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
        confirmed(confirm.await).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_distinct_delay_has_its_retry_queue_and_the_last_repeats() {
        let s = |n| Duration::from_secs(n);
        let t = Topology::with_schedule("cb", &[s(15), s(30), s(60), s(60)]);
        assert_eq!(t.retry_queue, "cb.retry");
        assert_eq!(t.retry_delay, s(15));
        assert_eq!(t.retry_queue_for(1), "cb.retry");
        assert_eq!(t.retry_queue_for(2), "cb.retry.30000ms");
        assert_eq!(t.retry_queue_for(3), "cb.retry.60000ms");
        assert_eq!(t.retry_queue_for(4), "cb.retry.60000ms");
        assert_eq!(
            t.retry_queue_for(40),
            "cb.retry.60000ms",
            "the last delay repeats"
        );
        assert_eq!(t.tiers.len(), 3);
        let fixed = Topology::new("ev", s(3));
        assert_eq!(fixed.retry_queue_for(7), "ev.retry");
        assert_eq!(fixed.tiers.len(), 1);
    }
}
