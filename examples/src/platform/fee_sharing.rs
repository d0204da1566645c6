//! Partner mode's outbox handler: a payment's success first records and tries the platform's
//! fee share, then goes to the merchant as a callback — so a share is never forgotten for a
//! callback delivered (the share itself is retried until done, [`aggregate_pay::sharing`]).

use std::sync::Arc;

use aggregate_pay::sharing::ProfitSharing;
use aggregate_pay::{EventHandler, EventKind, HandlerError, OutboxEvent};
use async_trait::async_trait;

/// Shares, then hands every event to `then`.
#[derive(Debug)]
pub struct ShareThen<H> {
    sharing: ProfitSharing,
    then: Arc<H>,
}

impl<H> ShareThen<H> {
    /// `then` after `sharing`.
    pub fn new(sharing: ProfitSharing, then: Arc<H>) -> Self {
        ShareThen { sharing, then }
    }
}

#[async_trait]
impl<H: EventHandler + 'static> EventHandler for ShareThen<H> {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        self.sharing.handle(event).await?;
        self.then.handle(event).await
    }

    async fn handle_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), HandlerError>> {
        let mut shared = Vec::with_capacity(events.len());
        for e in events {
            shared.push(match e.kind {
                EventKind::PaymentSucceeded => self.sharing.handle(e).await,
                _ => Ok(()),
            });
        }
        // The events whose share could not be recorded wait (retried) with their callbacks.
        let ready: Vec<OutboxEvent> = events
            .iter()
            .zip(&shared)
            .filter(|(_, r)| r.is_ok())
            .map(|(e, _)| e.clone())
            .collect();
        let mut delivered = self.then.handle_batch(&ready).await.into_iter();
        shared
            .into_iter()
            .map(|r| match r {
                Ok(()) => delivered
                    .next()
                    .unwrap_or_else(|| Err(HandlerError::Retry("no answer".into()))),
                Err(e) => Err(e),
            })
            .collect()
    }
}
