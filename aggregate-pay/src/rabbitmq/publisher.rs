//! Publishing outbox events, confirmed by the broker.

use async_trait::async_trait;
use lapin::PublisherConfirm;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{Channel, Connection};

use crate::StoreError;
use crate::events::OutboxEvent;
use crate::outbox::{EventHandler, HandlerError};

use super::*;

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

    async fn publish(&self, event: &OutboxEvent) -> Result<PublisherConfirm, PublishError> {
        let body = event.to_wire();
        self.channel
            .basic_publish(
                self.topology.exchange.as_str().into(),
                event.kind.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                properties(&event.id, 0),
            )
            .await
            .map_err(PublishError::Amqp)
    }
}

#[async_trait]
impl EventHandler for RabbitPublisher {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        let confirm = self.publish(event).await.map_err(HandlerError::retry)?;
        confirmed(confirm.await).map_err(HandlerError::retry)
    }

    async fn handle_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), HandlerError>> {
        // Hand the whole batch to the connection at once (the publishes are written in order,
        // without a wait for each), then await the confirms: one round trip per batch.
        let pending = futures_util::future::join_all(events.iter().map(|e| self.publish(e))).await;
        let mut results = Vec::with_capacity(events.len());
        for p in pending {
            results.push(match p {
                Ok(confirm) => confirmed(confirm.await).map_err(HandlerError::retry),
                Err(e) => Err(HandlerError::retry(e)),
            });
        }
        results
    }
}
