//! The seller feed's bus: every order change, to the dashboards of every instance.
//!
//! - In process (no `AMQP_URL`): one broadcast channel.
//! - RabbitMQ: each change is published to the fanout exchange `{AMQP_PREFIX}.feed`; each
//!   instance reads its own exclusive, auto-deleted queue bound to it and hands what arrives to
//!   its local broadcast — so a dashboard on instance A sees an order paid on instance B.
//!
//! The feed is a view, not a record: a change that cannot be published is logged and the
//! dashboard catches up from its snapshot when it reconnects. Each change names its order's
//! seller, so each dashboard forwards only its seller's.

use std::sync::Arc;

use aggregate_pay::rabbitmq::declare_exchange;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One order change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEvent {
    /// The machine of the order.
    pub inner_code: String,
    /// The order's seller: the only one whose dashboards see it.
    #[serde(default)]
    pub seller: Option<String>,
    /// The message for the dashboard (JSON text).
    pub message: String,
}

/// Where order changes go.
#[derive(Clone)]
pub struct Feed {
    local: broadcast::Sender<FeedEvent>,
    remote: Option<RabbitFeed>,
}

#[derive(Clone)]
struct RabbitFeed {
    channel: Channel,
    exchange: String,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("exchange", &self.remote.as_ref().map(|r| &r.exchange))
            .finish_non_exhaustive()
    }
}

impl Feed {
    /// A feed within this process.
    pub fn in_process() -> Self {
        let (local, _) = broadcast::channel(256);
        Feed {
            local,
            remote: None,
        }
    }

    /// A feed shared by every instance through the fanout exchange `{prefix}.feed`; this
    /// instance's queue is read until `shutdown`.
    pub async fn rabbit(
        connection: &Connection,
        prefix: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, lapin::Error> {
        let exchange = format!("{prefix}.feed");
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &exchange, ExchangeKind::Fanout).await?;
        // A queue of this instance's own: the server names it, it goes when the connection does.
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(
                queue.name().clone(),
                "vending-feed".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (local, _) = broadcast::channel(256);
        let to_dashboards = local.clone();
        tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    d = consumer.next() => match d {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "seller feed: delivery failed");
                            continue;
                        }
                        None => return,
                    },
                };
                match serde_json::from_slice::<FeedEvent>(&delivery.data) {
                    Ok(event) => {
                        let _ = to_dashboards.send(event);
                    }
                    Err(e) => tracing::warn!(error = %e, "seller feed: undecodable change"),
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
        });
        Ok(Feed {
            local,
            remote: Some(RabbitFeed { channel, exchange }),
        })
    }

    /// Sends a change to every dashboard (of every instance).
    pub async fn publish(&self, event: FeedEvent) {
        if let Some(remote) = &self.remote {
            let body = serde_json::to_vec(&event).unwrap_or_default();
            let sent = remote
                .channel
                .basic_publish(
                    remote.exchange.as_str().into(),
                    "".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await;
            match sent {
                // It comes back through this instance's queue, like everyone else's.
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "seller feed: not published; this instance only");
                }
            }
        }
        let _ = self.local.send(event);
    }

    /// Changes as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.local.subscribe()
    }

    /// Removes the exchange (tests).
    pub async fn delete(&self) -> Result<(), lapin::Error> {
        if let Some(remote) = &self.remote {
            remote
                .channel
                .exchange_delete(
                    remote.exchange.as_str().into(),
                    ExchangeDeleteOptions::default(),
                )
                .await?;
        }
        Ok(())
    }
}

/// A feed for `connection`, or in process without one.
pub async fn connect(
    connection: Option<&Arc<Connection>>,
    prefix: &str,
    shutdown: CancellationToken,
) -> Result<Feed, lapin::Error> {
    match connection {
        Some(c) => Feed::rabbit(c, prefix, shutdown).await,
        None => Ok(Feed::in_process()),
    }
}
