//! Outbox delivery over RabbitMQ (feature `rabbitmq`), for any number of instances.
//!
//! - [`RabbitPublisher`] is an [`EventHandler`](crate::EventHandler) for the [`Dispatcher`](crate::Dispatcher): it
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

//!
//! - `topology` — the exchanges and queues (declared, deleted), and the dead letters (listed,
//!   moved back).
//! - `publisher` — [`RabbitPublisher`]; `consumer` — [`RabbitConsumer`] and its ack window.

mod consumer;
mod publisher;
mod topology;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};

pub use consumer::RabbitConsumer;
pub use publisher::RabbitPublisher;
pub use topology::{Topology, bind_queue, declare_exchange, declare_queue};

use crate::StoreError;
use crate::events::OutboxEvent;

pub(crate) const ATTEMPTS_HEADER: &str = "x-attempts";
pub(crate) const LAST_ERROR_HEADER: &str = "x-last-error";

pub(crate) fn amqp(e: lapin::Error) -> StoreError {
    StoreError::Unavailable(format!("rabbitmq: {e}"))
}
/// Opens a connection to `url` (`amqp://…`).
pub async fn connect(url: &str) -> Result<Connection, StoreError> {
    Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(amqp)
}

pub(crate) fn properties(id: &str, attempts: u32) -> BasicProperties {
    failed_properties(id, attempts, None)
}

/// Properties of a message that failed `attempts` times, the last with `error`.
pub(crate) fn failed_properties(id: &str, attempts: u32, error: Option<&str>) -> BasicProperties {
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

/// Why the broker did not take a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    /// The connection or channel failed.
    #[error("the broker cannot be reached: {0}")]
    Amqp(#[from] lapin::Error),
    /// No queue was bound for it.
    #[error("unroutable: returned by the broker")]
    Returned,
    /// The broker refused it.
    #[error("the broker did not accept the message")]
    Nacked,
}

pub(crate) fn confirmed(c: Result<Confirmation, lapin::Error>) -> Result<(), PublishError> {
    match c? {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_)) => Err(PublishError::Returned),
        Confirmation::Nack(_) => Err(PublishError::Nacked),
    }
}

/// The attempts so far and the last error, from a message's headers.
pub(crate) fn failures(properties: &BasicProperties) -> (u32, Option<String>) {
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

pub(crate) fn decode(delivery: &lapin::message::Delivery) -> Option<OutboxEvent> {
    let (attempts, last_error) = failures(&delivery.properties);
    OutboxEvent::from_wire(&delivery.data, attempts, last_error).ok()
}
