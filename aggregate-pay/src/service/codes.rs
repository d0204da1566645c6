//! Payment codes: the buyer shows the payment code in WeChat or Alipay, the merchant's scanner
//! reads it, and [`Payments::pay_by_code`] charges it — exactly once, with a definite end.
//!
//! 1. The code picks the channel ([`PaymentCode`]); the payment is recorded PENDING, its
//!    expiry set past the wait below so that the reconciler takes over only if this instance
//!    dies.
//! 2. A lock on the payment's number (shared by every instance: [`Payments::locks`]) lets one
//!    caller at a time work on it; a second delivery of the same scan meanwhile gets
//!    [`CodeOutcome::Busy`], and one after the end gets that end — never a second charge.
//! 3. The channel charges the code: paid, declined (nothing taken), or no outcome yet (the buyer
//!    is confirming — WeChat `USERPAYING`, Alipay `10003` — or the channel did not know).
//! 4. Without an outcome, the channel is queried every [`CodeWait::poll_every`] until paid,
//!    failed, or [`CodeWait::give_up_after`]; then the payment is reversed (WeChat's reverse,
//!    Alipay's cancel), so that it can never be paid later: the buyer keeps the money.
//! 5. A reverse that does not go through leaves the payment PENDING ([`CodeOutcome::Unresolved`]);
//!    the reconciler reverses it after its expiry. Only a definitive answer ends a payment.
//!
//! Every state change goes through the same transitions as a notification, so a paid code
//! records `payment.succeeded` once, whoever saw it first.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::Payments;
use crate::channels::{CloseOutcome, CodeCharge, PaymentChannel, end_unpaid};
use crate::{ChannelError, Error, NewPayment, Payment, PaymentCode, PaymentStatus};

/// How long a payment code waits for the buyer, and how often it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeWait {
    /// Between queries (WeChat: wait 5 s after an unknown outcome, then ask again).
    pub poll_every: Duration,
    /// When to stop waiting and reverse (WeChat suggests 30 s to 45 s and no reverse within
    /// 15 s of the charge).
    pub give_up_after: Duration,
}

impl Default for CodeWait {
    /// Every 5 s, for 30 s.
    fn default() -> Self {
        CodeWait {
            poll_every: Duration::from_secs(5),
            give_up_after: Duration::from_secs(30),
        }
    }
}

/// How long after the wait a code payment's expiry lies: the reconciler reverses an expired one,
/// and must not while its instance is still waiting.
const RECONCILER_GRACE: Duration = Duration::from_secs(60);

/// What came of a scanned payment code.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CodeOutcome {
    /// Paid (now, or by an earlier delivery of the same scan).
    Paid(Payment),
    /// Declined for good, nothing taken (FAILED).
    Declined {
        /// The payment.
        payment: Payment,
        /// The channel's code (`AUTH_CODE_INVALID`, `ACQ.BUYER_BALANCE_NOT_ENOUGH`…).
        code: String,
        /// Its message.
        message: String,
    },
    /// The buyer did not confirm in time: reversed, nothing taken (CLOSED).
    Reversed(Payment),
    /// Neither paid nor reversed yet — the channel could not be reached, or the amount it
    /// reported differs (flagged for review): PENDING, the reconciler finishes it.
    Unresolved(Payment),
    /// Another caller (a second delivery of the same scan, on this or another instance) is
    /// charging it right now.
    Busy(Payment),
}

impl CodeOutcome {
    /// The payment.
    pub fn payment(&self) -> &Payment {
        match self {
            CodeOutcome::Paid(p)
            | CodeOutcome::Reversed(p)
            | CodeOutcome::Unresolved(p)
            | CodeOutcome::Busy(p)
            | CodeOutcome::Declined { payment: p, .. } => p,
        }
    }

    /// The outcome of a payment as it stands.
    fn of(payment: Payment) -> Self {
        match payment.status {
            PaymentStatus::Pending => CodeOutcome::Unresolved(payment),
            PaymentStatus::Closed => CodeOutcome::Reversed(payment),
            PaymentStatus::Failed => CodeOutcome::Declined {
                payment,
                code: "FAILED".into(),
                message: "the payment failed".into(),
            },
            _ => CodeOutcome::Paid(payment),
        }
    }
}

impl Payments {
    /// Charges the buyer's payment `code` for `req` (whose method the code decides).
    /// Idempotent by `req.out_trade_no`: the same scan delivered again is charged once.
    ///
    /// The payment is recorded PENDING (expiring a minute after the wait, for the reconciler)
    /// and, under a lock on its number shared by every instance ([`Payments::locks`]; a second
    /// caller meanwhile gets [`CodeOutcome::Busy`]), the channel charges the code: paid,
    /// declined, or no outcome yet (the buyer confirming on the phone — WeChat `USERPAYING`,
    /// Alipay `10003` — or an unknown answer). Then the channel is queried every
    /// [`CodeWait::poll_every`] until the payment ends or [`CodeWait::give_up_after`], when it is
    /// reversed (WeChat's reverse, Alipay's cancel) so that it can never be paid later. A reverse
    /// that does not go through leaves it PENDING ([`CodeOutcome::Unresolved`]) for the
    /// reconciler, which reverses expired code payments. Every change goes through the
    /// notifications' transitions: a paid code records `payment.succeeded` once.
    ///
    /// ```no_run
    /// # async fn scanned(payments: aggregate_pay::Payments, scanned: &str) -> Result<(), aggregate_pay::Error> {
    /// use aggregate_pay::service::CodeOutcome;
    /// use aggregate_pay::{Fen, NewPayment, PayMethod, PaymentCode};
    ///
    /// let code = PaymentCode::parse(scanned)?; // WeChat or Alipay, by its prefix
    /// let order = NewPayment::new("S20261207001", Fen::new(350), "Cola", code.method(), "https://shop.example/notify");
    /// match payments.pay_by_code(order, &code).await? {
    ///     CodeOutcome::Paid(p) => println!("paid {}: vend", p.out_trade_no),
    ///     CodeOutcome::Declined { code, .. } => println!("declined ({code}): nothing taken"),
    ///     CodeOutcome::Reversed(_) => println!("not confirmed in time: reversed"),
    ///     other => println!("no answer yet: {:?}", other.payment().status),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn pay_by_code(
        &self,
        req: NewPayment,
        code: &PaymentCode,
    ) -> Result<CodeOutcome, Error> {
        let mut req = req;
        req.method = code.method();
        let wait = self.code_wait;
        req.expires_at = Some(OffsetDateTime::now_utc() + wait.give_up_after + RECONCILER_GRACE);
        let key = format!("payment-code:{}", req.out_trade_no);
        let ttl = wait.give_up_after + wait.poll_every + Duration::from_secs(30);
        let Some(guard) = self.locks.acquire(&key, ttl).await? else {
            let (payment, _, _) = self.record(&req).await?;
            return Ok(CodeOutcome::Busy(payment));
        };
        let outcome = self.charge_locked(&req, code, wait).await;
        if let Err(e) = self.locks.release(&guard).await {
            tracing::warn!(error = %e, out_trade_no = %req.out_trade_no, "payment-code lock not released (it expires)");
        }
        outcome
    }

    async fn charge_locked(
        &self,
        req: &NewPayment,
        code: &PaymentCode,
        wait: CodeWait,
    ) -> Result<CodeOutcome, Error> {
        let started = tokio::time::Instant::now();
        let (payment, channel, new) = self.record(req).await?;
        if payment.status != PaymentStatus::Pending {
            return Ok(CodeOutcome::of(payment));
        }
        // A payment recorded before, still pending: an earlier attempt ended without an answer.
        // Ask before charging again.
        let charge = if new {
            true
        } else {
            match channel.query(&payment.out_trade_no).await {
                Ok(crate::channels::ChannelPaymentState::NotFound) => true,
                Ok(crate::channels::ChannelPaymentState::Pending) | Err(_) => false,
                Ok(state) => {
                    self.apply_state(&payment.id, state).await?;
                    return Ok(CodeOutcome::of(self.get(&payment.id).await?));
                }
            }
        };
        if charge {
            match channel.charge_code(req, code).await {
                Ok(CodeCharge::Paid {
                    transaction_id,
                    amount,
                }) => {
                    let state = crate::channels::ChannelPaymentState::Paid {
                        transaction_id,
                        amount,
                    };
                    self.apply_state(&payment.id, state).await?;
                    return Ok(CodeOutcome::of(self.get(&payment.id).await?));
                }
                Ok(CodeCharge::Declined { code, message }) => {
                    return self.declined(&payment, code, message).await;
                }
                Ok(CodeCharge::Waiting) => {}
                Err(ChannelError::Rejected { code, message }) => {
                    return self.declined(&payment, code, message).await;
                }
                Err(e @ (ChannelError::Unsupported(_) | ChannelError::Config(_))) => {
                    // Refused before anything was sent: nothing taken.
                    return self
                        .declined(&payment, "REFUSED".into(), e.to_string())
                        .await;
                }
                // Unknown: the money may have moved. Ask.
                Err(e) => {
                    tracing::warn!(error = %e, out_trade_no = %payment.out_trade_no, "payment code charged without a definitive answer");
                }
            }
        }
        self.wait_then_reverse(&payment, channel, started, wait)
            .await
    }

    /// Records a decline (FAILED): nothing was taken.
    async fn declined(
        &self,
        payment: &Payment,
        code: String,
        message: String,
    ) -> Result<CodeOutcome, Error> {
        self.apply_state(&payment.id, crate::channels::ChannelPaymentState::Failed)
            .await?;
        let after = self.get(&payment.id).await?;
        Ok(match after.status {
            PaymentStatus::Failed => CodeOutcome::Declined {
                payment: after,
                code,
                message,
            },
            _ => CodeOutcome::of(after),
        })
    }

    /// Queries until the payment ends or the wait is over, then reverses it.
    async fn wait_then_reverse(
        &self,
        payment: &Payment,
        channel: Arc<dyn PaymentChannel>,
        started: tokio::time::Instant,
        wait: CodeWait,
    ) -> Result<CodeOutcome, Error> {
        let deadline = started + wait.give_up_after;
        loop {
            tokio::time::sleep(wait.poll_every).await;
            match channel.query(&payment.out_trade_no).await {
                Ok(
                    crate::channels::ChannelPaymentState::Pending
                    | crate::channels::ChannelPaymentState::NotFound,
                ) => {}
                Ok(state) => {
                    self.apply_state(&payment.id, state).await?;
                    return Ok(CodeOutcome::of(self.get(&payment.id).await?));
                }
                Err(e) => {
                    tracing::warn!(error = %e, out_trade_no = %payment.out_trade_no, "payment code query failed");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        match end_unpaid(channel.as_ref(), payment).await {
            Ok(CloseOutcome::Closed) => {
                self.apply_state(&payment.id, crate::channels::ChannelPaymentState::Closed)
                    .await?;
            }
            Ok(CloseOutcome::AlreadyPaid) => {
                let state = channel.query(&payment.out_trade_no).await?;
                self.apply_state(&payment.id, state).await?;
            }
            Err(e) => {
                tracing::warn!(error = %e, out_trade_no = %payment.out_trade_no, "payment code not reversed yet: the reconciler will");
            }
        }
        Ok(CodeOutcome::of(self.get(&payment.id).await?))
    }
}
