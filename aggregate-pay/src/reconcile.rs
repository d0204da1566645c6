//! [`Reconciler`]: because a notification may never come. Finds payments still PENDING after a
//! while, asks their channel, and applies the answer exactly as a notification would (same
//! transitions, same events); closes payments past their expiry, at the channel first.
//!
//! Safe on every instance at once: payments are claimed with a lease so instances share the
//! work, and every change is a compare-and-set, so even two instances looking at the same
//! payment record its events once.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::channels::{ChannelPaymentState, Channels, CloseOutcome};
use crate::store::PaymentStore;
use crate::transitions::{self, Applied};
use crate::{Payment, PaymentStatus, StoreError};

/// What a reconciliation round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Payments looked at.
    pub checked: usize,
    /// Found paid.
    pub paid: usize,
    /// Closed (expired, or closed at the channel).
    pub closed: usize,
    /// Found failed.
    pub failed: usize,
    /// Channel calls that failed (retried next round).
    pub errors: usize,
}

/// The reconciler.
#[derive(Debug, Clone)]
pub struct Reconciler {
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    stale_after: Duration,
    lease: Duration,
    batch: usize,
}

impl Reconciler {
    /// Looks at payments PENDING for longer than `stale_after`.
    pub fn new(channels: Channels, store: Arc<dyn PaymentStore>, stale_after: Duration) -> Self {
        Reconciler {
            channels,
            store,
            stale_after,
            lease: Duration::from_secs(60),
            batch: 100,
        }
    }

    /// How long a claimed payment is left to this instance.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Payments per round.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One round.
    pub async fn run_once(&self) -> Result<ReconcileReport, StoreError> {
        let now = OffsetDateTime::now_utc();
        let claimed = self
            .store
            .claim_for_reconciliation(now - self.stale_after, now, self.lease, self.batch)
            .await?;
        let mut report = ReconcileReport::default();
        for payment in &claimed {
            report.checked += 1;
            match self.reconcile(payment, now).await {
                Ok(Some(PaymentStatus::Paid)) => report.paid += 1,
                Ok(Some(PaymentStatus::Closed)) => report.closed += 1,
                Ok(Some(PaymentStatus::Failed)) => report.failed += 1,
                Ok(_) => {}
                Err(ReconcileError::Store(e)) => return Err(e),
                Err(ReconcileError::Channel(e)) => {
                    tracing::warn!(payment = %payment.id, error = %e, "reconciliation query failed");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    async fn reconcile(
        &self,
        p: &Payment,
        now: OffsetDateTime,
    ) -> Result<Option<PaymentStatus>, ReconcileError> {
        let Some(channel) = self.channels.get(&p.channel) else {
            return Err(ReconcileError::Channel(format!("no channel {}", p.channel)));
        };
        let state = channel
            .query(&p.out_trade_no)
            .await
            .map_err(|e| ReconcileError::Channel(e.to_string()))?;
        let expired = p.expires_at.is_some_and(|e| e <= now);
        let state = match state {
            ChannelPaymentState::Pending | ChannelPaymentState::NotFound if expired => {
                match channel
                    .close(&p.out_trade_no)
                    .await
                    .map_err(|e| ReconcileError::Channel(e.to_string()))?
                {
                    CloseOutcome::Closed => ChannelPaymentState::Closed,
                    // Paid at the last moment: record it.
                    CloseOutcome::AlreadyPaid => channel
                        .query(&p.out_trade_no)
                        .await
                        .map_err(|e| ReconcileError::Channel(e.to_string()))?,
                }
            }
            other => other,
        };
        let (applied, status) = match state {
            ChannelPaymentState::Paid {
                transaction_id,
                amount,
            } => (
                transitions::apply_to_payment(self.store.as_ref(), &p.id, None, |cur| {
                    transitions::paid(cur, &transaction_id, amount, now)
                })
                .await?,
                PaymentStatus::Paid,
            ),
            ChannelPaymentState::Closed => (
                transitions::apply_to_payment(self.store.as_ref(), &p.id, None, |cur| {
                    transitions::ended(cur, PaymentStatus::Closed)
                })
                .await?,
                PaymentStatus::Closed,
            ),
            ChannelPaymentState::Failed => (
                transitions::apply_to_payment(self.store.as_ref(), &p.id, None, |cur| {
                    transitions::ended(cur, PaymentStatus::Failed)
                })
                .await?,
                PaymentStatus::Failed,
            ),
            ChannelPaymentState::Pending | ChannelPaymentState::NotFound => return Ok(None),
        };
        Ok((applied == Applied::Changed).then_some(status))
    }

    /// Rounds every `every` until `shutdown`.
    pub async fn run(&self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::error!(error = %e, "reconciliation round failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

enum ReconcileError {
    Store(StoreError),
    Channel(String),
}

impl From<StoreError> for ReconcileError {
    fn from(e: StoreError) -> Self {
        ReconcileError::Store(e)
    }
}
