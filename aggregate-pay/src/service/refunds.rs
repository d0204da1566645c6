//! Refunds and their life cycle.
//!
//! A refund is recorded PENDING (and its payment REFUNDING) before the channel is asked, so a
//! crash in between loses nothing. Then only a **definitive** answer ends it:
//!
//! | the channel answers | the refund |
//! |---|---|
//! | done | SUCCEEDED (the payment REFUNDED, or back to PAID / partly refunded) |
//! | accepted, processing | PENDING until its notification or a query says how it ended |
//! | a final refusal (bad amount, order too old…) | FAILED: no money moved |
//! | a temporary error, an unknown code, a timeout, no answer | PENDING: sent again later with the **same** `out_refund_no` (idempotent at the channel), after the wait the channel asked for (a balance to top up waits longer) |
//!
//! [`Reconciler`](crate::Reconciler) drives every refund still PENDING after a while through
//! [`Payments::settle_refund`]: it queries the channel, applies a final state, and sends the
//! refund again when the channel has no record of it.

use std::time::Duration;

use time::OffsetDateTime;

use super::Payments;
use crate::channels::RefundRequest;
use crate::store::{Change, Commit, RefundChange};
use crate::transitions::{self, Applied};
use crate::{ChannelError, Error, Fen, PaymentId, PaymentStatus, Refund, RefundStatus};

/// What one step on a pending refund did.
#[derive(Debug)]
#[non_exhaustive]
pub enum RefundProgress {
    /// It ended: succeeded or failed (see its status).
    Finished(Refund),
    /// The channel has it and has not finished it: its notification, or a later query, ends it.
    Processing,
    /// Nothing was decided: the channel could not be reached or said "not now". It stays
    /// PENDING and is sent again with the same number later.
    Unsettled(ChannelError),
}

/// The result of sending a refund to its channel.
enum Sent {
    Progress(RefundProgress),
    /// A definitive refusal: the refund is FAILED now.
    Refused(Refund, ChannelError),
}

impl Payments {
    /// Refunds `amount` of a paid payment under the number `out_refund_no` (idempotent by it).
    /// Returns the refund as it stands: SUCCEEDED for channels that answer at once, PENDING for
    /// those that notify later **and** when the channel could not give a definitive answer (it
    /// is sent again later with the same number; see the module docs). A definitive refusal is
    /// an error, and the refund is FAILED.
    pub async fn refund(
        &self,
        id: &PaymentId,
        out_refund_no: &str,
        amount: Fen,
        reason: Option<String>,
        notify_url: Option<String>,
    ) -> Result<Refund, Error> {
        if amount == Fen::ZERO {
            return Err(Error::Invalid(
                "the refund amount must be more than zero".into(),
            ));
        }
        if let Some(existing) = self.store.refund(out_refund_no).await? {
            if &existing.payment_id != id || existing.amount != amount {
                return Err(Error::Conflict(format!("out_refund_no {out_refund_no}")));
            }
            if existing.status != RefundStatus::Pending {
                return Ok(existing);
            }
            return self.send_refund(existing).await;
        }
        // Record the refund and move the payment to REFUNDING in one change.
        let refund = loop {
            let payment = self.get(id).await?;
            if !payment.status.is_paid() || payment.status == PaymentStatus::Refunded {
                return Err(Error::InvalidState {
                    id: payment.id,
                    status: payment.status,
                });
            }
            let refunds = self.store.refunds_of(id).await?;
            let pending = refunds
                .iter()
                .filter(|r| r.status == RefundStatus::Pending)
                .fold(Fen::ZERO, |a, r| a.checked_add(r.amount).unwrap_or(a));
            if amount > payment.refundable(pending) {
                return Err(Error::Invalid(format!(
                    "{} fen exceeds the {} fen left to refund",
                    amount.as_u64(),
                    payment.refundable(pending).as_u64()
                )));
            }
            let now = OffsetDateTime::now_utc();
            let refund = Refund {
                id: crate::sortable_id("ref_"),
                payment_id: payment.id.clone(),
                out_refund_no: out_refund_no.to_owned(),
                amount,
                status: RefundStatus::Pending,
                channel_refund_id: None,
                reason: reason.clone(),
                notify_url: notify_url.clone(),
                created_at: now,
                updated_at: now,
            };
            let mut next = payment.clone();
            next.status = PaymentStatus::Refunding;
            let change = Change {
                payment: next,
                refund: Some(RefundChange::Insert(refund.clone())),
                events: vec![],
            };
            match self.store.commit(change).await? {
                Commit::Committed => break refund,
                Commit::Conflict => {
                    // Another refund with this number may have won the race.
                    if let Some(existing) = self.store.refund(out_refund_no).await? {
                        if &existing.payment_id != id || existing.amount != amount {
                            return Err(Error::Conflict(format!("out_refund_no {out_refund_no}")));
                        }
                        break existing;
                    }
                }
            }
        };
        self.send_refund(refund).await
    }

    async fn send_refund(&self, refund: Refund) -> Result<Refund, Error> {
        match self.submit(&refund).await? {
            Sent::Progress(RefundProgress::Finished(r)) => Ok(r),
            Sent::Progress(RefundProgress::Processing) => Ok(refund),
            Sent::Progress(RefundProgress::Unsettled(e)) => {
                tracing::warn!(
                    refund = %refund.out_refund_no, error = %e,
                    "refund not settled; it stays pending and is sent again later"
                );
                Ok(refund)
            }
            Sent::Refused(_, e) => Err(e.into()),
        }
    }

    /// Sends the refund to its channel (again: the same number) and applies a definitive answer.
    async fn submit(&self, refund: &Refund) -> Result<Sent, Error> {
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel(&payment.channel)?;
        let request = RefundRequest {
            out_trade_no: payment.out_trade_no.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            total: payment.amount,
            amount: refund.amount,
            reason: refund.reason.clone(),
            notify_url: refund.notify_url.clone(),
        };
        Ok(match channel.refund(&request).await {
            // Accepted; the notification (or the reconciler) completes it.
            Ok(r) if r.status == RefundStatus::Pending => {
                Sent::Progress(RefundProgress::Processing)
            }
            Ok(r) => Sent::Progress(RefundProgress::Finished(
                self.finish_refund(
                    refund,
                    r.status == RefundStatus::Succeeded,
                    r.channel_refund_id,
                )
                .await?,
            )),
            Err(e) if e.is_retryable() => {
                if let Some(wait) = e.retry_after() {
                    self.defer_refund(&refund.out_refund_no, wait).await?;
                }
                Sent::Progress(RefundProgress::Unsettled(e))
            }
            // Refused outright: no money moved.
            Err(e) => Sent::Refused(self.finish_refund(refund, false, None).await?, e),
        })
    }

    async fn defer_refund(&self, out_refund_no: &str, wait: Duration) -> Result<(), Error> {
        let until = OffsetDateTime::now_utc() + wait;
        Ok(self.store.defer_refund(out_refund_no, until).await?)
    }

    pub(crate) async fn finish_refund(
        &self,
        refund: &Refund,
        succeeded: bool,
        channel_refund_id: Option<String>,
    ) -> Result<Refund, Error> {
        let out_refund_no = refund.out_refund_no.clone();
        let applied =
            transitions::apply(
                self.store.as_ref(),
                &refund.payment_id,
                |p, refunds| match refunds.iter().find(|r| r.out_refund_no == out_refund_no) {
                    Some(r) => transitions::refund_finished(
                        p,
                        r,
                        refunds,
                        succeeded,
                        channel_refund_id.clone(),
                    ),
                    None => (transitions::Decision::Nothing, Applied::Unchanged),
                },
            )
            .await?;
        tracing::debug!(refund = %out_refund_no, ?applied, "refund finished");
        self.store
            .refund(&out_refund_no)
            .await?
            .ok_or(Error::RefundNotFound(out_refund_no))
    }

    /// Every refund of a payment, in the order they were asked for.
    pub async fn refunds(&self, id: &PaymentId) -> Result<Vec<Refund>, Error> {
        Ok(self.store.refunds_of(id).await?)
    }

    /// A refund by its number.
    pub async fn get_refund(&self, out_refund_no: &str) -> Result<Refund, Error> {
        self.store
            .refund(out_refund_no)
            .await?
            .ok_or_else(|| Error::RefundNotFound(out_refund_no.to_owned()))
    }

    /// Asks the channel about a pending refund and applies the answer; returns the refund as it
    /// stands (see [`Payments::settle_refund`] for the step itself).
    pub async fn sync_refund(&self, out_refund_no: &str) -> Result<Refund, Error> {
        match self.settle_refund(out_refund_no).await? {
            RefundProgress::Finished(r) => Ok(r),
            RefundProgress::Processing | RefundProgress::Unsettled(_) => {
                self.get_refund(out_refund_no).await
            }
        }
    }

    /// One step towards a final state for a pending refund: asks the channel where it is,
    /// applies a final answer, and sends it again (same number) when the channel has no record
    /// of it. A refund already final is returned as it is.
    pub async fn settle_refund(&self, out_refund_no: &str) -> Result<RefundProgress, Error> {
        let refund = self.get_refund(out_refund_no).await?;
        if refund.status != RefundStatus::Pending {
            return Ok(RefundProgress::Finished(refund));
        }
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel(&payment.channel)?;
        let found = match channel
            .query_refund(&payment.out_trade_no, out_refund_no)
            .await
        {
            Ok(found) => found,
            Err(e) if e.is_retryable() => return Ok(RefundProgress::Unsettled(e)),
            Err(e) => return Err(e.into()),
        };
        match found {
            Some(r) if r.status == RefundStatus::Pending => Ok(RefundProgress::Processing),
            Some(r) => Ok(RefundProgress::Finished(
                self.finish_refund(
                    &refund,
                    r.status == RefundStatus::Succeeded,
                    r.channel_refund_id,
                )
                .await?,
            )),
            // Never reached the channel (or it kept no record): the same request again.
            None => Ok(match self.submit(&refund).await? {
                Sent::Progress(p) => p,
                Sent::Refused(r, e) => {
                    tracing::warn!(refund = %out_refund_no, error = %e, "refund refused");
                    RefundProgress::Finished(r)
                }
            }),
        }
    }
}
