//! [`NotifyProcessor`]: the one fixed sequence every channel notification goes through.
//!
//! verify → decode → find the payment → check the account and the amount (integers, exact) →
//! compare-and-set the state → record the events in the same transaction → acknowledge in the
//! channel's format.
//!
//! It never marks a payment paid unless the amount matches exactly; it never acknowledges a
//! notification it could not record (a storage failure answers "send it again"); a duplicate is
//! acknowledged and changes nothing. Channels supply the verification and the acknowledgement
//! format; they cannot reorder or skip a step.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::channels::{
    AckBody, AckOutcome, ChannelNotification, Channels, NotifiedStatus, RawNotify,
};
use crate::store::PaymentStore;
use crate::transitions::{self, Applied};
use crate::{PaymentStatus, RefundStatus, StoreError};

/// What happened to a notification (for logs and metrics; the channel only sees the ack).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyOutcome {
    /// A state change was recorded.
    Applied,
    /// Already recorded: acknowledged, nothing changed.
    Duplicate,
    /// The amount did not match: flagged for review, alert recorded, not marked paid.
    AmountMismatch,
    /// A state the payment is past (e.g. "closed" for a paid payment): acknowledged, ignored.
    Ignored,
    /// Failed verification or names another account: not acknowledged.
    Rejected(String),
    /// No such payment or refund here: not acknowledged.
    Unknown(String),
    /// Storage failed: not acknowledged, so the channel sends it again.
    StoreFailed(String),
    /// No channel with this id is registered.
    NoChannel,
}

/// A handled notification: the response to send, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The HTTP response for the channel.
    pub ack: AckBody,
    /// What happened.
    pub outcome: NotifyOutcome,
}

/// The notification template.
#[derive(Debug, Clone)]
pub struct NotifyProcessor {
    channels: Channels,
    store: Arc<dyn PaymentStore>,
}

impl NotifyProcessor {
    /// A processor for the registered channels over `store`.
    pub fn new(channels: Channels, store: Arc<dyn PaymentStore>) -> Self {
        NotifyProcessor { channels, store }
    }

    /// The registered channels.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Handles one notification POSTed to the channel `channel_id`'s notify URL.
    pub async fn handle(&self, channel_id: &str, raw: &RawNotify) -> Handled {
        let Some(channel) = self.channels.get(channel_id) else {
            return Handled {
                ack: AckBody {
                    status: 404,
                    content_type: "text/plain; charset=utf-8",
                    body: "unknown channel".to_owned(),
                },
                outcome: NotifyOutcome::NoChannel,
            };
        };
        let outcome = match channel.verify_notify(raw).await {
            Err(e) => NotifyOutcome::Rejected(e.to_string()),
            Ok(n) => match self.record(channel_id, channel.account(), n).await {
                Ok(outcome) => outcome,
                Err(e) => NotifyOutcome::StoreFailed(e.to_string()),
            },
        };
        let ack = match &outcome {
            NotifyOutcome::Applied
            | NotifyOutcome::Duplicate
            | NotifyOutcome::AmountMismatch
            | NotifyOutcome::Ignored => AckOutcome::Accepted,
            NotifyOutcome::Rejected(r)
            | NotifyOutcome::Unknown(r)
            | NotifyOutcome::StoreFailed(r) => AckOutcome::Retry(r.clone()),
            NotifyOutcome::NoChannel => AckOutcome::Retry("unknown channel".into()),
        };
        match &outcome {
            NotifyOutcome::Rejected(r) => {
                tracing::warn!(channel = channel_id, reason = %r, "notification rejected")
            }
            NotifyOutcome::StoreFailed(r) => {
                tracing::error!(channel = channel_id, error = %r, "notification not recorded; the channel will retry")
            }
            NotifyOutcome::AmountMismatch => tracing::error!(
                channel = channel_id,
                "payment amount mismatch; flagged for review"
            ),
            other => {
                tracing::debug!(channel = channel_id, outcome = ?other, "notification handled")
            }
        }
        Handled {
            ack: channel.ack(&ack),
            outcome,
        }
    }

    async fn record(
        &self,
        channel_id: &str,
        account: &str,
        n: ChannelNotification,
    ) -> Result<NotifyOutcome, StoreError> {
        match n {
            ChannelNotification::Payment {
                out_trade_no,
                transaction_id,
                amount,
                currency,
                account: notified_account,
                status,
            } => {
                let payment = PaymentFact {
                    out_trade_no,
                    transaction_id,
                    amount,
                    currency,
                    account: notified_account,
                    status,
                };
                self.record_payment(channel_id, account, payment).await
            }
            ChannelNotification::Refund {
                out_refund_no,
                channel_refund_id,
                amount,
                account: notified_account,
                status,
                ..
            } => {
                let refund = RefundFact {
                    out_refund_no,
                    channel_refund_id,
                    amount,
                    account: notified_account,
                    status,
                };
                self.record_refund(channel_id, account, refund).await
            }
        }
    }

    /// A payment notification: the payment's account and amount checked, then its state.
    async fn record_payment(
        &self,
        channel_id: &str,
        account: &str,
        fact: PaymentFact,
    ) -> Result<NotifyOutcome, StoreError> {
        let PaymentFact {
            out_trade_no,
            transaction_id,
            amount,
            currency,
            account: notified_account,
            status,
        } = fact;
        let Some(payment) = self.store.payment_by_out_trade_no(&out_trade_no).await? else {
            return Ok(NotifyOutcome::Unknown(format!("no payment {out_trade_no}")));
        };
        if payment.channel != channel_id
            || !of_channel(account, &notified_account)
            || payment.channel_account != notified_account
        {
            return Ok(NotifyOutcome::Rejected(format!(
                "payment {out_trade_no} belongs to {}/{}, the notification to {channel_id}/{notified_account}",
                payment.channel, payment.channel_account
            )));
        }
        let now = OffsetDateTime::now_utc();
        let id = payment.id.clone();
        let applied = match status {
            NotifiedStatus::Paid => {
                transitions::apply_to_payment(self.store.as_ref(), &id, Some(payment), |p| {
                    transitions::paid(p, &transaction_id, amount, &currency, now)
                })
                .await?
            }
            NotifiedStatus::Closed | NotifiedStatus::Failed => {
                let target = if status == NotifiedStatus::Closed {
                    PaymentStatus::Closed
                } else {
                    PaymentStatus::Failed
                };
                match transitions::apply_to_payment(self.store.as_ref(), &id, Some(payment), |p| {
                    transitions::ended(p, target)
                })
                .await?
                {
                    Applied::Unchanged => return Ok(NotifyOutcome::Ignored),
                    other => other,
                }
            }
            NotifiedStatus::Pending => return Ok(NotifyOutcome::Ignored),
        };
        Ok(match applied {
            Applied::Changed => NotifyOutcome::Applied,
            Applied::Unchanged => NotifyOutcome::Duplicate,
            Applied::Flagged => NotifyOutcome::AmountMismatch,
        })
    }

    /// A refund notification: the refund's account and amount checked, then its state.
    async fn record_refund(
        &self,
        channel_id: &str,
        account: &str,
        fact: RefundFact,
    ) -> Result<NotifyOutcome, StoreError> {
        let RefundFact {
            out_refund_no,
            channel_refund_id,
            amount,
            account: notified_account,
            status,
        } = fact;
        let Some(refund) = self.store.refund(&out_refund_no).await? else {
            return Ok(NotifyOutcome::Unknown(format!("no refund {out_refund_no}")));
        };
        let Some(payment) = self.store.payment(&refund.payment_id).await? else {
            return Ok(NotifyOutcome::Unknown(format!(
                "no payment for refund {out_refund_no}"
            )));
        };
        // A refund of a sub-merchant's payment names the sub-merchant: it must be the payment's.
        if payment.channel != channel_id
            || !of_channel(account, &notified_account)
            || (notified_account != account && payment.channel_account != notified_account)
        {
            return Ok(NotifyOutcome::Rejected(format!(
                "refund {out_refund_no} is not this channel account's"
            )));
        }
        // Money that moved (or left for the payer) must be the amount asked, exactly.
        if status != RefundStatus::Failed && amount != refund.amount {
            return Ok(NotifyOutcome::Rejected(format!(
                "refund {out_refund_no}: {} fen reported, {} fen asked",
                amount.as_u64(),
                refund.amount.as_u64()
            )));
        }
        let note = match status {
            RefundStatus::Abnormal => Some(ABNORMAL_NOTE.to_owned()),
            RefundStatus::Failed => Some("CLOSED: the channel closed the refund".to_owned()),
            _ => None,
        };
        let applied =
            transitions::apply(self.store.as_ref(), &payment.id, |p, refunds| match refunds
                .iter()
                .find(|r| r.out_refund_no == out_refund_no)
            {
                Some(r) => transitions::refund_moved(
                    p,
                    r,
                    refunds,
                    status,
                    Some(channel_refund_id.clone()),
                    note.clone(),
                ),
                None => (transitions::Decision::Nothing, Applied::Unchanged),
            })
            .await?;
        Ok(match applied {
            Applied::Changed => NotifyOutcome::Applied,
            _ => NotifyOutcome::Duplicate,
        })
    }
}

/// Whether a notification for `notified` is the channel's (`account`): the channel's own
/// account, or one of its sub-merchants' (`{account}/{sub-merchant}`, service-provider mode).
fn of_channel(account: &str, notified: &str) -> bool {
    notified == account
        || notified
            .strip_prefix(account)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|sub| !sub.is_empty() && !sub.contains('/'))
}

/// What a payment notification says, once verified.
struct PaymentFact {
    out_trade_no: String,
    transaction_id: String,
    amount: crate::Fen,
    currency: String,
    account: String,
    status: NotifiedStatus,
}

/// What a refund notification says, once verified.
struct RefundFact {
    out_refund_no: String,
    channel_refund_id: String,
    amount: crate::Fen,
    account: String,
    status: RefundStatus,
}

/// What an abnormal refund's `last_error` says: what happened and what the merchant does.
pub(crate) const ABNORMAL_NOTE: &str = "ABNORMAL: the money could not reach the payer (a closed \
     or frozen card); resolve it: send it to a bank card of the payer's or to the merchant's \
     account (WeChat Pay API v3's abnormal refund), or on the provider's merchant platform";

#[cfg(test)]
mod tests {
    use super::of_channel;

    #[test]
    fn a_notification_is_the_channels_or_one_of_its_sub_merchants_only() {
        let channel = "wxapp/1900009191";
        assert!(of_channel(channel, "wxapp/1900009191"));
        assert!(of_channel(channel, "wxapp/1900009191/1900000109"));
        for other in [
            "wxapp/19000091910",
            "wxapp/1900009191/",
            "wxapp/1900009191/1900000109/x",
            "wxother/1900009191/1900000109",
            "?/1900009191",
            "",
        ] {
            assert!(!of_channel(channel, other), "{other}");
        }
    }
}
