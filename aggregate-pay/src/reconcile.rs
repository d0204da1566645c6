//! [`Reconciler`]: because a notification may never come, and a channel may not answer.
//!
//! - **Payments** still PENDING after a while: asks their channel and applies the answer exactly
//!   as a notification would (same transitions, same events); closes payments past their expiry,
//!   at the channel first. The least recently looked at go first, so however many old payments
//!   wait, a new one gets its turn.
//! - **Refunds** still open (PENDING, or ABNORMAL until the merchant resolves them) after a while: [`Payments::settle_refund`] queries the channel,
//!   applies a final answer (with its events: a lost refund notification still ends the refund),
//!   and sends the refund again with the same number when the channel has no record of it. A
//!   refund that is still processing or got no definitive answer is looked at again after a
//!   backoff that doubles per attempt (up to an hour), or after the wait the channel asked for.
//!
//! Safe on every instance at once: payments and refunds are claimed with a lease so instances
//! share the work, and every change is a compare-and-set, so even two instances looking at the
//! same payment record its events once.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::channels::{ChannelPaymentState, Channels, CloseOutcome};
use crate::service::RefundProgress;
use crate::sharing::ProfitSharing;
use crate::store::{PaymentStore, RefundClaim};
use crate::transitions::{self, Applied};
use crate::{Error, Payment, PaymentStatus, Payments, RefundStatus, StoreError};

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
    /// Refunds looked at.
    pub refunds_checked: usize,
    /// Refunds found succeeded.
    pub refunds_succeeded: usize,
    /// Refunds found failed (a definitive answer).
    pub refunds_failed: usize,
    /// Refunds without a definitive answer yet (processing, abnormal, or the channel said "not
    /// now").
    pub refunds_unsettled: usize,
    /// Of those, refunds the channel took but could not deliver (the merchant must resolve
    /// them).
    pub refunds_abnormal: usize,
    /// Platform fee shares tried ([`crate::sharing`]).
    pub shares_tried: usize,
    /// Of those, shared.
    pub shares_done: usize,
}

/// The reconciler.
#[derive(Debug, Clone)]
pub struct Reconciler {
    payments: Payments,
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    stale_after: Duration,
    lease: Duration,
    batch: usize,
    backoff: (Duration, Duration),
    sharing: Option<ProfitSharing>,
}

impl Reconciler {
    /// Looks at payments and refunds PENDING for longer than `stale_after`.
    pub fn new(channels: Channels, store: Arc<dyn PaymentStore>, stale_after: Duration) -> Self {
        Reconciler {
            payments: Payments::new(channels.clone(), Arc::clone(&store)),
            channels,
            store,
            stale_after,
            lease: Duration::from_secs(60),
            batch: 100,
            backoff: (Duration::from_secs(30), Duration::from_secs(60 * 60)),
            sharing: None,
        }
    }

    /// Also tries the platform fee shares that are due, and takes a shared fee back before
    /// sending a refund again ([`crate::sharing`]).
    pub fn profit_sharing(mut self, sharing: ProfitSharing) -> Self {
        self.payments = self.payments.profit_sharing(sharing.clone());
        self.sharing = Some(sharing);
        self
    }

    /// How long an unsettled refund waits before its next look: `first` after the first
    /// attempt, doubling each time, never more than `max` (default 30 s … 1 h).
    pub fn refund_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    fn backoff_after(&self, attempts: u32) -> Duration {
        let (first, max) = self.backoff;
        let doublings = attempts.saturating_sub(1).min(20);
        first.saturating_mul(1 << doublings).min(max)
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
        let refunds = self
            .store
            .claim_refunds_for_reconciliation(now - self.stale_after, now, self.lease, self.batch)
            .await?;
        for claim in &refunds {
            report.refunds_checked += 1;
            self.reconcile_refund(claim, &mut report).await?;
        }
        if let Some(sharing) = &self.sharing {
            match sharing.run_once().await {
                Ok(shares) => {
                    report.shares_tried = shares.tried;
                    report.shares_done = shares.shared;
                }
                Err(Error::Store(e)) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "profit sharing round failed"),
            }
        }
        Ok(report)
    }

    async fn reconcile_refund(
        &self,
        claim: &RefundClaim,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let no = &claim.refund.out_refund_no;
        let wait = match self.payments.settle_refund(no).await {
            Ok(RefundProgress::Finished(r)) => {
                match r.status {
                    RefundStatus::Succeeded => report.refunds_succeeded += 1,
                    RefundStatus::Failed => report.refunds_failed += 1,
                    _ => {}
                }
                return Ok(());
            }
            Ok(RefundProgress::Processing) => None,
            Ok(RefundProgress::Abnormal(_)) => {
                report.refunds_abnormal += 1;
                None
            }
            Ok(RefundProgress::Unsettled(e)) => {
                tracing::warn!(refund = %no, attempts = claim.attempts, error = %e, "refund still unsettled");
                e.retry_after()
            }
            Err(Error::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(refund = %no, error = %e, "refund reconciliation failed");
                report.errors += 1;
                None
            }
        };
        report.refunds_unsettled += 1;
        let wait = wait.unwrap_or_else(|| self.backoff_after(claim.attempts));
        // A wait the channel asked for may already be recorded by the resend; the later wins.
        let until = OffsetDateTime::now_utc() + wait;
        let current = self.store.refund(no).await?;
        if current.is_some_and(|r| r.status.is_open()) {
            self.store.defer_refund(no, Some(until), None).await?;
        }
        Ok(())
    }

    async fn reconcile(
        &self,
        p: &Payment,
        now: OffsetDateTime,
    ) -> Result<Option<PaymentStatus>, ReconcileError> {
        let channel = self
            .channels
            .for_payment(p)
            .map_err(|e| ReconcileError::Channel(e.to_string()))?;
        let state = channel
            .query(&p.out_trade_no)
            .await
            .map_err(|e| ReconcileError::Channel(e.to_string()))?;
        let expired = p.expires_at.is_some_and(|e| e <= now);
        let state = match state {
            ChannelPaymentState::Pending | ChannelPaymentState::NotFound if expired => {
                // A payment code cannot be closed: it is reversed (the query just found it
                // unpaid).
                match crate::channels::end_unpaid(channel.as_ref(), p)
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
                    transitions::paid(cur, &transaction_id, amount, &cur.currency, now)
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
