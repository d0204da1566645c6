//! Refunds and their life cycle.
//!
//! A refund is recorded PENDING (and its payment REFUNDING) before the channel is asked, so a
//! crash in between loses nothing. Then only a **definitive** answer ends it:
//!
//! | the channel answers | the refund |
//! |---|---|
//! | done | SUCCEEDED (the payment REFUNDED, or back to PAID / partly refunded) |
//! | accepted, processing | PENDING until its notification or a query says how it ended |
//! | taken, but the money could not reach the payer (WeChat `ABNORMAL` / `CHANGE`) | ABNORMAL: still counted as being refunded, until the merchant resolves it ([`Payments::resolve_abnormal_refund`]) and the channel says SUCCESS or CLOSED |
//! | a refusal from the channel's table of definitive codes (bad amount, order too old…) | FAILED with that code: no money moved |
//! | anything else: a temporary error (`SYSTEMERROR`, `INVALID_REQ_TOO_MUCH`, 429, 5xx…), an unknown code, a timeout, an answer that fails verification or decoding | PENDING with the reason (`last_error`): queried, and sent again with the **same** `out_refund_no` (idempotent at the channel) after the wait the channel asked for |
//!
//! While a refund is open (PENDING or ABNORMAL) its amount is not refundable again: no second
//! refund number can be issued for the same money.
//!
//! [`Reconciler`](crate::Reconciler) drives every open refund through
//! [`Payments::settle_refund`]: it queries the channel, applies a final state, and sends the
//! refund again when the channel has no record of it.
//!
//! Refunds recorded FAILED before refusals were told apart from temporary errors (schema
//! version 4) were re-opened as PENDING with `last_error` starting [`UNVERIFIED_FAILURE`]: the
//! reconciler asks the channel what became of each; one the channel never received is sent
//! again only if no later refund of the payment replaced it.

use time::OffsetDateTime;

use super::Payments;
use crate::channels::{AbnormalRefundResolution, ChannelRefund, RefundRequest};
use crate::store::{Change, Commit, RefundChange};
use crate::transitions::{self, Applied};
use crate::{ChannelError, Error, Fen, PaymentId, PaymentStatus, Refund, RefundStatus};

/// How `last_error` starts on a refund recorded FAILED by an older version without a definitive
/// answer (re-opened by the schema's version 4).
pub const UNVERIFIED_FAILURE: &str = "UNVERIFIED_FAILURE";

/// What one step on an open refund did.
#[derive(Debug)]
#[non_exhaustive]
pub enum RefundProgress {
    /// It ended: succeeded or failed (see its status).
    Finished(Refund),
    /// The channel has it and has not finished it: its notification, or a later query, ends it.
    Processing,
    /// The channel took it but the money could not reach the payer: the merchant must resolve
    /// it ([`Payments::resolve_abnormal_refund`]).
    Abnormal(Refund),
    /// Nothing was decided: the channel could not be reached, said "not now", or gave an answer
    /// that could not be trusted. It stays PENDING and is sent again with the same number later.
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
            // Open refunds (pending, abnormal) hold their money: never refundable twice.
            let pending = refunds
                .iter()
                .filter(|r| r.status.is_open())
                .fold(Fen::ZERO, |a, r| a.checked_add(r.amount).unwrap_or(a));
            if amount > payment.refundable(pending) {
                return Err(Error::Invalid(format!(
                    "{} fen exceeds the {} fen left to refund",
                    amount.as_u64(),
                    payment.refundable(pending).as_u64()
                )));
            }
            let mut refund = Refund::new(
                payment.id.clone(),
                out_refund_no,
                amount,
                OffsetDateTime::now_utc(),
            );
            refund.reason = reason.clone();
            refund.notify_url = notify_url.clone();
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
            Sent::Progress(RefundProgress::Finished(r) | RefundProgress::Abnormal(r)) => Ok(r),
            Sent::Progress(RefundProgress::Processing) => {
                self.get_refund(&refund.out_refund_no).await
            }
            Sent::Progress(RefundProgress::Unsettled(e)) => {
                tracing::warn!(
                    refund = %refund.out_refund_no, error = %e,
                    "refund not settled; it stays pending and is sent again later"
                );
                self.get_refund(&refund.out_refund_no).await
            }
            Sent::Refused(_, e) => Err(e.into()),
        }
    }

    /// Sends the refund to its channel (again: the same number) and applies a definitive answer.
    async fn submit(&self, refund: &Refund) -> Result<Sent, Error> {
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel_of(&payment)?;
        let mut share_returned = Fen::ZERO;
        if let Some(sharing) = &self.sharing {
            match sharing
                .before_refund(&payment, refund, channel.as_ref())
                .await
            {
                Ok(returned) => share_returned = returned,
                // The platform's fee must come back first: the refund waits, with the reason.
                Err(Error::Channel(e)) => {
                    self.unsettled(&refund.out_refund_no, &e).await?;
                    return Ok(Sent::Progress(RefundProgress::Unsettled(e)));
                }
                Err(e) => return Err(e),
            }
        }
        let request = RefundRequest {
            out_trade_no: payment.out_trade_no.clone(),
            out_refund_no: refund.out_refund_no.clone(),
            total: payment.amount,
            amount: refund.amount,
            reason: refund.reason.clone(),
            notify_url: refund.notify_url.clone(),
            share_returned,
        };
        Ok(match channel.refund(&request).await {
            Ok(answer) => Sent::Progress(self.apply_answer(refund, answer).await?),
            // Refused outright, by a code the channel's table says is final: no money moved.
            Err(e) if e.is_refusal() => Sent::Refused(
                self.move_refund(refund, RefundStatus::Failed, None, Some(e.summary()))
                    .await?,
                e,
            ),
            // Anything else decides nothing: the refund stays pending, with the reason.
            Err(e) => {
                self.unsettled(&refund.out_refund_no, &e).await?;
                Sent::Progress(RefundProgress::Unsettled(e))
            }
        })
    }

    /// Records why a refund is not settled, and the wait the channel asked for.
    async fn unsettled(&self, out_refund_no: &str, e: &ChannelError) -> Result<(), Error> {
        let until = e.retry_after().map(|wait| OffsetDateTime::now_utc() + wait);
        Ok(self
            .store
            .defer_refund(out_refund_no, until, Some(&e.summary()))
            .await?)
    }

    /// Applies what the channel says of a refund (an answer to sending it, or to a query).
    async fn apply_answer(
        &self,
        refund: &Refund,
        answer: ChannelRefund,
    ) -> Result<RefundProgress, Error> {
        let note = match answer.status {
            RefundStatus::Pending => return Ok(RefundProgress::Processing),
            RefundStatus::Abnormal => Some(crate::notify::ABNORMAL_NOTE.to_owned()),
            RefundStatus::Failed => Some("CLOSED: the channel closed the refund".to_owned()),
            RefundStatus::Succeeded => None,
        };
        let moved = self
            .move_refund(refund, answer.status, answer.channel_refund_id, note)
            .await?;
        Ok(match moved.status {
            RefundStatus::Abnormal => RefundProgress::Abnormal(moved),
            RefundStatus::Pending => RefundProgress::Processing,
            _ => RefundProgress::Finished(moved),
        })
    }

    /// Moves a refund to `to` (see `transitions::refund_moved`) and returns it as it stands.
    async fn move_refund(
        &self,
        refund: &Refund,
        to: RefundStatus,
        channel_refund_id: Option<String>,
        note: Option<String>,
    ) -> Result<Refund, Error> {
        let out_refund_no = refund.out_refund_no.clone();
        let applied =
            transitions::apply(
                self.store.as_ref(),
                &refund.payment_id,
                |p, refunds| match refunds.iter().find(|r| r.out_refund_no == out_refund_no) {
                    Some(r) => transitions::refund_moved(
                        p,
                        r,
                        refunds,
                        to,
                        channel_refund_id.clone(),
                        note.clone(),
                    ),
                    None => (transitions::Decision::Nothing, Applied::Unchanged),
                },
            )
            .await?;
        tracing::debug!(refund = %out_refund_no, ?applied, to = %to, "refund moved");
        self.get_refund(&out_refund_no).await
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

    /// Asks the channel about an open refund and applies the answer; returns the refund as it
    /// stands (see [`Payments::settle_refund`] for the step itself).
    pub async fn sync_refund(&self, out_refund_no: &str) -> Result<Refund, Error> {
        match self.settle_refund(out_refund_no).await? {
            RefundProgress::Finished(r) | RefundProgress::Abnormal(r) => Ok(r),
            RefundProgress::Processing | RefundProgress::Unsettled(_) => {
                self.get_refund(out_refund_no).await
            }
        }
    }

    /// One step towards a final state for an open refund: asks the channel where it is, applies
    /// a verified answer, and sends a pending refund again (same number) when the channel has
    /// no record of it. A refund already final is returned as it is.
    pub async fn settle_refund(&self, out_refund_no: &str) -> Result<RefundProgress, Error> {
        let refund = self.get_refund(out_refund_no).await?;
        if refund.status.is_final() {
            return Ok(RefundProgress::Finished(refund));
        }
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel_of(&payment)?;
        let found = match channel
            .query_refund(&payment.out_trade_no, out_refund_no)
            .await
        {
            Ok(found) => found,
            Err(e) if !e.is_refusal() => {
                self.unsettled(out_refund_no, &e).await?;
                return Ok(RefundProgress::Unsettled(e));
            }
            Err(e) => return Err(e.into()),
        };
        match found {
            Some(answer) => self.apply_answer(&refund, answer).await,
            // The channel had it (it answered ABNORMAL): never a second one.
            None if refund.status == RefundStatus::Abnormal => {
                Ok(RefundProgress::Unsettled(ChannelError::Unavailable {
                    code: "REFUND_NOT_FOUND".into(),
                    message: "the channel no longer finds an abnormal refund".into(),
                    retry_after: None,
                }))
            }
            // Failed under an older version without a definitive answer, and never received
            // by the channel: sent again only if nothing replaced it since.
            None if self.replaced(&refund).await? => Ok(RefundProgress::Finished(
                self.move_refund(
                    &refund,
                    RefundStatus::Failed,
                    None,
                    Some(
                        "NOT_AT_CHANNEL: the channel never received it, and a later refund \
                         replaced it"
                            .to_owned(),
                    ),
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

    /// For a refund recorded FAILED here that a provider's bill lists as made: asks the
    /// channel, and when it answers SUCCESS corrects the refund to SUCCEEDED (its amount counted
    /// as refunded, with its event). Any other refund, or any other answer, leaves it as it is.
    /// The refund as it stands.
    pub async fn recheck_failed_refund(&self, out_refund_no: &str) -> Result<Refund, Error> {
        let refund = self.get_refund(out_refund_no).await?;
        if refund.status != RefundStatus::Failed {
            return Ok(refund);
        }
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel_of(&payment)?;
        let answer = channel
            .query_refund(&payment.out_trade_no, out_refund_no)
            .await?;
        let Some(answer) = answer.filter(|a| a.status == RefundStatus::Succeeded) else {
            return Ok(refund);
        };
        let no = out_refund_no.to_owned();
        transitions::apply(
            self.store.as_ref(),
            &refund.payment_id,
            |p, refunds| match refunds.iter().find(|r| r.out_refund_no == no) {
                Some(r) => transitions::failed_refund_succeeded(
                    p,
                    r,
                    refunds,
                    answer.channel_refund_id.clone(),
                ),
                None => (transitions::Decision::Nothing, Applied::Unchanged),
            },
        )
        .await?;
        self.get_refund(out_refund_no).await
    }

    /// Whether `refund` is one re-opened from an unverified failure that a later refund of the
    /// same payment replaced (sending it again could refund the same money twice).
    async fn replaced(&self, refund: &Refund) -> Result<bool, Error> {
        if !refund
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with(UNVERIFIED_FAILURE))
        {
            return Ok(false);
        }
        Ok(self
            .store
            .refunds_of(&refund.payment_id)
            .await?
            .iter()
            .any(|r| r.out_refund_no != refund.out_refund_no && r.created_at >= refund.created_at))
    }

    /// Sends an abnormal refund's money another way — to a bank card of the payer's, or to the
    /// merchant's account — where the channel has an API for it (WeChat Pay API v3). The refund
    /// stays ABNORMAL (its money still counted as being refunded) until the channel says
    /// SUCCESS or CLOSED, by notification or query.
    pub async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<Refund, Error> {
        let refund = self.get_refund(out_refund_no).await?;
        if refund.status != RefundStatus::Abnormal {
            return Err(Error::RefundState {
                out_refund_no: out_refund_no.to_owned(),
                status: refund.status,
            });
        }
        let channel_refund_id = refund.channel_refund_id.clone().ok_or_else(|| {
            Error::Invalid(format!(
                "refund {out_refund_no} has no channel refund id yet"
            ))
        })?;
        let payment = self.get(&refund.payment_id).await?;
        let channel = self.channel_of(&payment)?;
        let answer = channel
            .resolve_abnormal_refund(out_refund_no, &channel_refund_id, to)
            .await?;
        let note = format!(
            "ABNORMAL: sent again ({}); waiting for the channel's SUCCESS or CLOSED",
            to.as_str()
        );
        self.store
            .defer_refund(out_refund_no, None, Some(&note))
            .await?;
        match self.apply_answer(&refund, answer).await? {
            RefundProgress::Finished(r) | RefundProgress::Abnormal(r) => Ok(r),
            _ => self.get_refund(out_refund_no).await,
        }
    }
}
