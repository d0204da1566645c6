//! [`Payments`]: create, look up, close and refund payments through whichever channel serves
//! the method. Idempotent by number: creating the same payment twice, or the same refund twice,
//! returns the first one; the same number with other parameters is a conflict.

mod codes;
mod refunds;

pub use codes::{CodeOutcome, CodeWait};
pub use refunds::{RefundProgress, UNVERIFIED_FAILURE};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::channels::{
    ChannelPaymentState, Channels, CloseOutcome, PayAction, PaymentChannel, acting_for, end_unpaid,
};
use crate::lock::{LockManager, MemoryLockManager};
use crate::sharing::ProfitSharing;
use crate::store::{Insert, PaymentStore};
use crate::transitions;
use crate::{Error, Fen, NewPayment, PayMethod, Payment, PaymentId, PaymentStatus};

/// How long a payment created without an expiry stays payable, unless set per method with
/// [`Payments::expire_after`]: two hours, WeChat Pay's own default. Every payment has an expiry
/// so that the reconciler closes it in the end instead of asking about it forever.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(2 * 60 * 60);

/// The payment service.
#[derive(Debug, Clone)]
pub struct Payments {
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    expiries: Arc<HashMap<PayMethod, Duration>>,
    sharing: Option<Arc<ProfitSharing>>,
    locks: Arc<dyn LockManager>,
    code_wait: CodeWait,
}

impl Payments {
    /// The service over the registered channels and a store.
    pub fn new(channels: Channels, store: Arc<dyn PaymentStore>) -> Self {
        Payments {
            channels,
            store,
            expiries: Arc::default(),
            sharing: None,
            locks: Arc::new(MemoryLockManager::new()),
            code_wait: CodeWait::default(),
        }
    }

    /// The locks that make a payment code charged once across instances (by default, this
    /// process's: give every instance the same Redis locks).
    pub fn locks(mut self, locks: Arc<dyn LockManager>) -> Self {
        self.locks = locks;
        self
    }

    /// How long a payment code waits for the buyer, and how often it asks
    /// ([`CodeWait::default`]).
    pub fn code_wait(mut self, wait: CodeWait) -> Self {
        self.code_wait = wait;
        self
    }

    /// Refunds of sub-merchants' payments take back the platform's shared fee first
    /// ([`crate::sharing`]).
    pub fn profit_sharing(mut self, sharing: ProfitSharing) -> Self {
        self.sharing = Some(Arc::new(sharing));
        self
    }

    /// Payments of `method` created without an expiry expire `after` their creation (instead of
    /// [`DEFAULT_EXPIRY`]).
    pub fn expire_after(mut self, method: PayMethod, after: Duration) -> Self {
        Arc::make_mut(&mut self.expiries).insert(method, after);
        self
    }

    /// When a payment of `method` created at `now` without an expiry expires.
    pub fn default_expiry(&self, method: PayMethod, now: OffsetDateTime) -> OffsetDateTime {
        now + self
            .expiries
            .get(&method)
            .copied()
            .unwrap_or(DEFAULT_EXPIRY)
    }

    /// The channels.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn PaymentStore> {
        &self.store
    }

    /// The channel a payment was made through — for a sub-merchant's payment, acting for that
    /// sub-merchant.
    pub(crate) fn channel_of(&self, payment: &Payment) -> Result<Arc<dyn PaymentChannel>, Error> {
        let channel = self
            .channels
            .get(&payment.channel)
            .ok_or_else(|| Error::NoChannel(payment.channel.clone()))?;
        Ok(acting_for(channel, payment.sub_merchant.as_deref())?)
    }

    /// Records the payment (PENDING) and creates it at the channel; returns it with what the
    /// front end does to pay. Retrying with the same request is safe and returns the same
    /// action; if the channel call fails the payment stays PENDING and the reconciler looks
    /// after it.
    pub async fn create(&self, req: NewPayment) -> Result<(Payment, PayAction), Error> {
        if req.method.is_payment_code() {
            return Err(Error::Invalid(format!(
                "{} is charged with pay_by_code, with the scanned code",
                req.method
            )));
        }
        let (payment, channel, _) = self.record(&req).await?;
        if payment.status != PaymentStatus::Pending {
            return Err(Error::InvalidState {
                id: payment.id,
                status: payment.status,
            });
        }
        // The same request again: a payment created before keeps its openid and expiry.
        let mut req = req;
        req.open_id = payment.open_id.clone();
        req.expires_at = payment.expires_at;
        let action = channel.create(&req).await?;
        Ok((payment, action))
    }

    /// Checks `req`, and records it (PENDING) unless a payment with its number exists: returns
    /// the payment (the existing one, in whatever state, when the same request came before), the
    /// channel it is made through, and whether it is new. The same number with other parameters
    /// is a conflict.
    async fn record(
        &self,
        req: &NewPayment,
    ) -> Result<(Payment, Arc<dyn PaymentChannel>, bool), Error> {
        if req.amount == Fen::ZERO {
            return Err(Error::Invalid("the amount must be more than zero".into()));
        }
        if req.out_trade_no.is_empty() || req.out_trade_no.len() > 32 {
            return Err(Error::Invalid(
                "out_trade_no must be 1 to 32 characters".into(),
            ));
        }
        if req.method.needs_open_id() && req.open_id.as_deref().is_none_or(str::is_empty) {
            return Err(Error::Invalid(format!(
                "{} needs the payer's openid",
                req.method
            )));
        }
        if req.platform_fee > req.amount {
            return Err(Error::Invalid(
                "the platform fee is more than the amount".into(),
            ));
        }
        if req.platform_fee > Fen::ZERO && req.sub_merchant.is_none() {
            return Err(Error::Invalid(
                "a platform fee is shared from a sub-merchant's payment: name the sub-merchant"
                    .into(),
            ));
        }
        let channel = self
            .channels
            .for_method(req.method)
            .ok_or_else(|| Error::NoChannel(req.method.to_string()))?;
        let channel = acting_for(channel, req.sub_merchant.as_deref())?;
        let now = OffsetDateTime::now_utc();
        let candidate = Payment {
            id: PaymentId::generate(),
            out_trade_no: req.out_trade_no.clone(),
            channel: channel.id().to_owned(),
            channel_account: channel.account().to_owned(),
            method: req.method,
            amount: req.amount,
            currency: "CNY".to_owned(),
            subject: req.subject.clone(),
            status: PaymentStatus::Pending,
            channel_transaction_id: None,
            refunded_amount: Fen::ZERO,
            needs_review: false,
            open_id: req.open_id.clone(),
            metadata: req.metadata.clone(),
            created_at: now,
            updated_at: now,
            paid_at: None,
            expires_at: Some(
                req.expires_at
                    .unwrap_or_else(|| self.default_expiry(req.method, now)),
            ),
            version: 0,
            sub_merchant: req.sub_merchant.clone(),
            platform_fee: req.platform_fee,
        };
        let (payment, new) = match self.store.insert_payment(&candidate).await? {
            Insert::Inserted => (candidate, true),
            Insert::Existing(p) => {
                if p.amount != req.amount
                    || p.method != req.method
                    || p.subject != req.subject
                    || p.sub_merchant != req.sub_merchant
                    || p.platform_fee != req.platform_fee
                {
                    return Err(Error::Conflict(format!(
                        "out_trade_no {}",
                        req.out_trade_no
                    )));
                }
                (p, false)
            }
        };
        Ok((payment, channel, new))
    }

    /// A payment by id.
    pub async fn get(&self, id: &PaymentId) -> Result<Payment, Error> {
        self.store
            .payment(id)
            .await?
            .ok_or_else(|| Error::PaymentNotFound(id.to_string()))
    }

    /// A payment by its number.
    pub async fn get_by_out_trade_no(&self, out_trade_no: &str) -> Result<Payment, Error> {
        self.store
            .payment_by_out_trade_no(out_trade_no)
            .await?
            .ok_or_else(|| Error::PaymentNotFound(out_trade_no.to_owned()))
    }

    /// Asks the channel and applies what it says (as a notification would): paid, closed,
    /// failed. Returns the payment as it is afterwards.
    pub async fn sync(&self, id: &PaymentId) -> Result<Payment, Error> {
        let payment = self.get(id).await?;
        let channel = self.channel_of(&payment)?;
        let state = channel.query(&payment.out_trade_no).await?;
        self.apply_state(id, state).await?;
        self.get(id).await
    }

    /// Applies what the channel says of a payment (as a notification would).
    pub(crate) async fn apply_state(
        &self,
        id: &PaymentId,
        state: ChannelPaymentState,
    ) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        match state {
            ChannelPaymentState::Paid {
                transaction_id,
                amount,
            } => {
                transitions::apply_to_payment(self.store.as_ref(), id, None, |p| {
                    transitions::paid(p, &transaction_id, amount, &p.currency, now)
                })
                .await?;
            }
            ChannelPaymentState::Closed => {
                transitions::apply_to_payment(self.store.as_ref(), id, None, |p| {
                    transitions::ended(p, PaymentStatus::Closed)
                })
                .await?;
            }
            ChannelPaymentState::Failed => {
                transitions::apply_to_payment(self.store.as_ref(), id, None, |p| {
                    transitions::ended(p, PaymentStatus::Failed)
                })
                .await?;
            }
            ChannelPaymentState::Pending | ChannelPaymentState::NotFound => {}
        }
        Ok(())
    }

    /// Closes an unpaid payment, at the channel first. If the channel says it was paid after
    /// all, the payment is recorded as paid and [`Error::InvalidState`] says so.
    pub async fn close(&self, id: &PaymentId) -> Result<Payment, Error> {
        let payment = self.get(id).await?;
        match payment.status {
            PaymentStatus::Pending => {}
            PaymentStatus::Closed => return Ok(payment),
            status => {
                return Err(Error::InvalidState {
                    id: payment.id,
                    status,
                });
            }
        }
        let channel = self.channel_of(&payment)?;
        match end_unpaid(channel.as_ref(), &payment).await? {
            CloseOutcome::Closed => {
                transitions::apply_to_payment(self.store.as_ref(), id, None, |p| {
                    transitions::ended(p, PaymentStatus::Closed)
                })
                .await?;
                let after = self.get(id).await?;
                if after.status == PaymentStatus::Closed {
                    Ok(after)
                } else {
                    Err(Error::InvalidState {
                        id: after.id,
                        status: after.status,
                    })
                }
            }
            CloseOutcome::AlreadyPaid => {
                let after = self.sync(id).await?;
                Err(Error::InvalidState {
                    id: after.id,
                    status: after.status,
                })
            }
        }
    }
}
