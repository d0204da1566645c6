//! Service-provider mode: the platform's fee, shared from each sub-merchant's payment.
//!
//! A platform that onboards its merchants as sub-merchants of its service-provider account
//! never holds their money: a payment made with [`NewPayment::sub_merchant`](crate::NewPayment)
//! settles in the sub-merchant's own account, held back for sharing when it carries a
//! [`platform_fee`](crate::NewPayment::platform_fee). After it succeeds, [`ProfitSharing`]
//! shares the fee to the service provider and releases the rest to the sub-merchant:
//!
//! - **Driven by the outbox, exactly once.** [`ProfitSharing`] is an [`EventHandler`]: on
//!   `payment.succeeded` it records the payment's [`Share`] (one per payment, numbered
//!   [`ProfitSharing::out_order_no`]) and tries it. An attempt first claims the share (a
//!   compare-and-set that marks it in flight for a lease), so two instances that see the same
//!   success share once; the channel is idempotent by the number besides.
//! - **Pending until the channel says it is done.** A refusal (the receiver not added yet,
//!   say), a timeout or a temporary error leaves the share PENDING with the reason in
//!   [`Share::last_error`], tried again after a backoff (30 s doubling to an hour) by
//!   [`ProfitSharing::run_once`] — or at once with [`ProfitSharing::retry_now`] after the
//!   operator fixed the cause. Nothing is ever given up on.
//! - **The amount.** The fee kept of a payment is [`fees::kept`]: the fee in proportion to what
//!   is left paid, rounded down. An attempt shares what is kept counting every refund recorded
//!   when it claimed the share (a refund not FAILED), so a refund made before sharing shrinks
//!   the share instead of being returned.
//! - **Return, then refund.** WeChat Pay refunds only what the sub-merchant holds, so the
//!   refund of a shared payment first takes back the part of the fee it no longer keeps
//!   ([`PaymentChannel::return_share`], numbered by the refund's own number and recorded on the
//!   share before it is sent, so sending the refund again returns the same amount). While the
//!   return is not confirmed the refund stays PENDING with the reason and is sent again later;
//!   while a sharing attempt is in flight the refund waits for it.
//!
//! Limits: a refund that ends FAILED after its return leaves that part of the fee with the
//! sub-merchant (it is recorded on the share); a lease that runs out while a channel call is
//! still in flight lets another attempt begin, which the channel's idempotency by number covers
//! unless a refund changed the amount in between (the channel then refuses the second
//! attempt, and the share says so).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::channels::{PaymentChannel, ShareAnswer, ShareRequest, ShareReturn};
use crate::events::{EventKind, OutboxEvent};
use crate::fees;
use crate::outbox::{EventHandler, HandlerError};
use crate::store::{Insert, PaymentStore};
use crate::{
    ChannelError, Channels, Error, Fen, Payment, PaymentId, Refund, RefundStatus, StoreError,
};

/// Where a share is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShareStatus {
    /// Not shared yet: tried again until the channel says it is done.
    Pending,
    /// The channel shared the fee and released the rest to the sub-merchant.
    Shared,
}

impl ShareStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Pending => "PENDING",
            ShareStatus::Shared => "SHARED",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PENDING" => Some(ShareStatus::Pending),
            "SHARED" => Some(ShareStatus::Shared),
            _ => None,
        }
    }
}

impl fmt::Display for ShareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A part of a share taken back before a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareReturned {
    /// The refund it was taken back for (also the return's number at the channel).
    pub out_refund_no: String,
    /// How much.
    pub amount: Fen,
}

/// The platform fee of one sub-merchant payment, and where its sharing is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Share {
    /// The payment.
    pub payment_id: PaymentId,
    /// The sharing's number at the channel ([`ProfitSharing::out_order_no`]).
    pub out_order_no: String,
    /// The payment's channel.
    pub channel: String,
    /// The sub-merchant paid.
    pub sub_merchant: String,
    /// The channel's transaction id of the payment.
    pub transaction_id: String,
    /// The fee shared (once SHARED), or to share as last computed.
    pub amount: Fen,
    /// Where it is.
    pub status: ShareStatus,
    /// The channel's id of the sharing.
    pub channel_order_id: Option<String>,
    /// Why it is not shared yet, as `CODE: message`.
    pub last_error: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
    /// An attempt claimed it (until `next_attempt_at`).
    pub in_flight: bool,
    /// When it is tried next (while PENDING).
    pub next_attempt_at: OffsetDateTime,
    /// Parts taken back before refunds.
    pub returns: Vec<ShareReturned>,
    /// When recorded.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
    /// When shared.
    pub shared_at: Option<OffsetDateTime>,
    /// Optimistic-concurrency version: every update increments it.
    pub version: i64,
}

impl Share {
    /// What the platform keeps of it: shared, less what was taken back.
    pub fn kept(&self) -> Fen {
        if self.status != ShareStatus::Shared {
            return Fen::ZERO;
        }
        let back: u64 = self.returns.iter().map(|r| r.amount.as_u64()).sum();
        Fen::new(self.amount.as_u64().saturating_sub(back))
    }

    /// A new PENDING share of `payment`'s platform fee, due `at` — `None` when there is nothing
    /// to share (not a sub-merchant's payment, no fee, not paid). For stores and tests; the
    /// sharer records shares itself.
    pub fn of(payment: &Payment, at: OffsetDateTime) -> Option<Share> {
        let (Some(sub), Some(transaction_id)) =
            (&payment.sub_merchant, &payment.channel_transaction_id)
        else {
            return None;
        };
        if payment.platform_fee == Fen::ZERO || !payment.status.is_paid() {
            return None;
        }
        Some(Share {
            payment_id: payment.id.clone(),
            out_order_no: ProfitSharing::out_order_no(&payment.id),
            channel: payment.channel.clone(),
            sub_merchant: sub.clone(),
            transaction_id: transaction_id.clone(),
            amount: payment.platform_fee,
            status: ShareStatus::Pending,
            channel_order_id: None,
            last_error: None,
            attempts: 0,
            in_flight: false,
            next_attempt_at: at,
            returns: Vec::new(),
            created_at: at,
            updated_at: at,
            shared_at: None,
            version: 0,
        })
    }

    /// What was taken back so far.
    pub fn returned(&self) -> Fen {
        Fen::new(self.returns.iter().map(|r| r.amount.as_u64()).sum())
    }
}

/// Where shares live (both stores implement it).
#[async_trait]
pub trait ShareStore: Send + Sync + fmt::Debug {
    /// Records a new share; the payment's share is returned instead if it has one.
    async fn insert_share(&self, share: &Share) -> Result<Insert<Share>, StoreError>;

    /// The share of a payment.
    async fn share(&self, payment_id: &PaymentId) -> Result<Option<Share>, StoreError>;

    /// Replaces the share if its stored version is still `share.version` (the stored version
    /// becomes one more); `false` when someone changed it first.
    async fn update_share(&self, share: &Share) -> Result<bool, StoreError>;

    /// Up to `limit` PENDING shares due at `now`, the longest waiting first.
    async fn due_shares(&self, now: OffsetDateTime, limit: usize)
    -> Result<Vec<Share>, StoreError>;

    /// Shares SHARED in `[from, to)`, oldest first, up to `limit`.
    async fn shares_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Share>, StoreError>;
}

/// What a round of [`ProfitSharing::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareReport {
    /// Shares tried.
    pub tried: usize,
    /// Of those, shared.
    pub shared: usize,
    /// Of those, still pending (the reason is on the share).
    pub pending: usize,
}

/// Shares platform fees (see the module documentation).
#[derive(Debug, Clone)]
pub struct ProfitSharing {
    channels: Channels,
    payments: Arc<dyn PaymentStore>,
    shares: Arc<dyn ShareStore>,
    lease: Duration,
    backoff: (Duration, Duration),
    batch: usize,
}

/// How long a refund waits for a sharing attempt in flight.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

impl ProfitSharing {
    /// Over the registered channels, the payments and the shares (a store implements both).
    pub fn new(
        channels: Channels,
        payments: Arc<dyn PaymentStore>,
        shares: Arc<dyn ShareStore>,
    ) -> Self {
        ProfitSharing {
            channels,
            payments,
            shares,
            lease: Duration::from_secs(60),
            backoff: (Duration::from_secs(30), Duration::from_secs(60 * 60)),
            batch: 100,
        }
    }

    /// How long an attempt holds a share (default a minute).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The wait after the first failed attempt, doubling each time up to `max` (default 30 s
    /// … 1 h).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    /// The sharing's number of a payment at the channel: `fee_` and the payment id's unique
    /// part (at most 32 characters, of the characters WeChat Pay allows).
    pub fn out_order_no(payment_id: &PaymentId) -> String {
        format!(
            "fee_{}",
            payment_id.0.strip_prefix("pay_").unwrap_or(&payment_id.0)
        )
    }

    /// The share of a payment, if it has one.
    pub async fn share(&self, payment_id: &PaymentId) -> Result<Option<Share>, StoreError> {
        self.shares.share(payment_id).await
    }

    /// After a payment succeeded: records its share (once) and tries it. `None` when there is
    /// nothing to share (not a sub-merchant's payment, no fee, not paid).
    pub async fn on_paid(&self, payment_id: &PaymentId) -> Result<Option<Share>, Error> {
        let payment = self
            .payments
            .payment(payment_id)
            .await?
            .ok_or_else(|| Error::PaymentNotFound(payment_id.to_string()))?;
        let Some(share) = self.record(&payment).await? else {
            return Ok(None);
        };
        self.attempt(share).await.map(Some)
    }

    /// Tries a pending share now (after the operator fixed what it waited for, say).
    pub async fn retry_now(&self, payment_id: &PaymentId) -> Result<Option<Share>, Error> {
        let Some(mut share) = self.shares.share(payment_id).await? else {
            return self.on_paid(payment_id).await;
        };
        if share.status == ShareStatus::Pending && !share.in_flight {
            share.next_attempt_at = OffsetDateTime::now_utc();
        }
        self.attempt(share).await.map(Some)
    }

    /// One round: tries the pending shares that are due.
    pub async fn run_once(&self) -> Result<ShareReport, Error> {
        let now = OffsetDateTime::now_utc();
        let mut report = ShareReport::default();
        for share in self.shares.due_shares(now, self.batch).await? {
            report.tried += 1;
            match self.attempt(share).await?.status {
                ShareStatus::Shared => report.shared += 1,
                ShareStatus::Pending => report.pending += 1,
            }
        }
        Ok(report)
    }

    /// Rounds every `every` until `shutdown`.
    pub async fn run(&self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "profit sharing round failed");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The payment's share, recorded if it has none yet.
    async fn record(&self, payment: &Payment) -> Result<Option<Share>, StoreError> {
        let Some(candidate) = Share::of(payment, OffsetDateTime::now_utc()) else {
            return Ok(None);
        };
        Ok(Some(match self.shares.insert_share(&candidate).await? {
            Insert::Inserted => candidate,
            Insert::Existing(existing) => existing,
        }))
    }

    fn backoff_after(&self, attempts: u32) -> Duration {
        let (first, max) = self.backoff;
        first
            .saturating_mul(1 << attempts.saturating_sub(1).min(20))
            .min(max)
    }

    /// Refunds of `payment` that count against what is kept: every one not FAILED.
    async fn refunded(&self, payment: &Payment) -> Result<Fen, StoreError> {
        let refunds = self.payments.refunds_of(&payment.id).await?;
        Ok(Fen::new(
            refunds
                .iter()
                .filter(|r| r.status != RefundStatus::Failed)
                .map(|r| r.amount.as_u64())
                .sum(),
        ))
    }

    /// Claims the share (if due and nobody else holds it), asks the channel, records the answer.
    async fn attempt(&self, share: Share) -> Result<Share, Error> {
        let now = OffsetDateTime::now_utc();
        if share.status == ShareStatus::Shared || share.next_attempt_at > now {
            return Ok(share);
        }
        let mut claimed = share.clone();
        claimed.in_flight = true;
        claimed.attempts += 1;
        claimed.next_attempt_at = now + self.lease;
        claimed.updated_at = now;
        if !self.shares.update_share(&claimed).await? {
            // Another attempt (another instance) got there first: it decides.
            return Ok(self.shares.share(&share.payment_id).await?.unwrap_or(share));
        }
        claimed.version += 1;
        let payment = self
            .payments
            .payment(&claimed.payment_id)
            .await?
            .ok_or_else(|| Error::PaymentNotFound(claimed.payment_id.to_string()))?;
        // Counted after the claim: a refund recorded before it shrinks the share; one recorded
        // after it waits for this attempt (`before_refund`).
        claimed.amount = fees::kept(
            payment.platform_fee,
            payment.amount,
            self.refunded(&payment).await?,
        );
        let request = ShareRequest::new(
            claimed.transaction_id.clone(),
            claimed.out_order_no.clone(),
            claimed.amount,
        );
        let answer = match self.channels.for_payment(&payment) {
            Ok(channel) => channel.share(&request).await,
            Err(e) => Err(e),
        };
        let mut next = claimed.clone();
        let now = OffsetDateTime::now_utc();
        next.in_flight = false;
        next.updated_at = now;
        match answer {
            Ok(ShareAnswer::Shared { order_id }) => {
                next.status = ShareStatus::Shared;
                next.channel_order_id = Some(order_id);
                next.last_error = None;
                next.shared_at = Some(now);
            }
            Ok(ShareAnswer::Processing) => {
                next.last_error = Some("PROCESSING: the channel is still sharing".into());
                next.next_attempt_at = now + self.backoff.0;
            }
            Err(e) => {
                tracing::warn!(
                    payment = %next.payment_id, error = %e,
                    "platform fee not shared; it stays pending and is tried again"
                );
                next.last_error = Some(e.summary());
                next.next_attempt_at = now
                    + e.retry_after()
                        .unwrap_or_else(|| self.backoff_after(next.attempts));
            }
        }
        if !self.shares.update_share(&next).await? {
            return Ok(self.shares.share(&next.payment_id).await?.unwrap_or(next));
        }
        next.version += 1;
        Ok(next)
    }

    /// Before `refund` of `payment` is sent to `channel`: takes back the part of a shared fee
    /// the payment no longer keeps; returns it (zero when nothing comes back). An error says
    /// why the refund must wait (it stays PENDING and is sent again later); it never fails the
    /// refund.
    pub(crate) async fn before_refund(
        &self,
        payment: &Payment,
        refund: &Refund,
        channel: &dyn PaymentChannel,
    ) -> Result<Fen, Error> {
        if payment.sub_merchant.is_none() || payment.platform_fee == Fen::ZERO {
            return Ok(Fen::ZERO);
        }
        let wait = |code: &str, message: String, after: Option<Duration>| {
            Error::Channel(ChannelError::Unavailable {
                code: code.into(),
                message,
                retry_after: after,
            })
        };
        // A compare-and-set loop: concurrent refunds of one payment record their returns one
        // after the other.
        for _ in 0..8 {
            let Some(share) = self.shares.share(&payment.id).await? else {
                return Ok(Fen::ZERO); // not shared yet: the attempt will count this refund
            };
            if share.status == ShareStatus::Pending {
                if share.in_flight && share.next_attempt_at > OffsetDateTime::now_utc() {
                    return Err(wait(
                        "SHARING_IN_FLIGHT",
                        "the platform fee is being shared; the refund follows it".into(),
                        Some(IN_FLIGHT_WAIT),
                    ));
                }
                return Ok(Fen::ZERO);
            }
            let recorded = share
                .returns
                .iter()
                .find(|r| r.out_refund_no == refund.out_refund_no)
                .map(|r| r.amount);
            let amount = match recorded {
                Some(amount) => amount,
                None => {
                    let keep = fees::kept(
                        payment.platform_fee,
                        payment.amount,
                        self.refunded(payment).await?,
                    );
                    let amount = share.kept().checked_sub(keep).unwrap_or(Fen::ZERO);
                    let mut next = share.clone();
                    next.returns.push(ShareReturned {
                        out_refund_no: refund.out_refund_no.clone(),
                        amount,
                    });
                    next.updated_at = OffsetDateTime::now_utc();
                    if !self.shares.update_share(&next).await? {
                        continue;
                    }
                    amount
                }
            };
            if amount == Fen::ZERO {
                return Ok(Fen::ZERO);
            }
            let back = ShareReturn::new(
                share.out_order_no.clone(),
                refund.out_refund_no.clone(),
                amount,
            );
            return channel
                .return_share(&back)
                .await
                .map(|()| amount)
                .map_err(|e| {
                    wait(
                        "SHARE_NOT_RETURNED",
                        format!(
                            "{} fen of the platform fee must come back first: {}",
                            amount.as_u64(),
                            e.summary()
                        ),
                        e.retry_after(),
                    )
                });
        }
        Err(wait(
            "SHARE_CONTENDED",
            "other refunds of this payment are recording their returns".into(),
            Some(IN_FLIGHT_WAIT),
        ))
    }
}

#[async_trait]
impl EventHandler for ProfitSharing {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        if event.kind != EventKind::PaymentSucceeded {
            return Ok(());
        }
        match self.on_paid(&event.data.payment.payment_id).await {
            // Recorded: whatever the channel said, the share itself is retried until done.
            Ok(_) => Ok(()),
            Err(Error::Store(e)) => Err(HandlerError::Retry(e.to_string())),
            Err(e) => Err(HandlerError::Reject(e.to_string())),
        }
    }
}
