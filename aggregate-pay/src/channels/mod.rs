//! Payment channels: one strategy trait, one folder per channel.
//!
//! A channel speaks a small fixed vocabulary — create, query, close, refund, query a refund,
//! verify a notification, acknowledge it — and maps its provider's codes to these values.
//! Declines and states are values; only transport trouble, refusals and forgeries are errors.
//!
//! | channel (default id) | folder | methods |
//! |---|---|---|
//! | `wechat` (an Official Account), `wechat_mini` (a Mini Program) | [`wechat`] | JSAPI, Native (QR), H5, APP; Mini Program |
//! | `alipay` | `alipay` (feature `alipay`) | QR, page, wap, APP |
//! | `sandbox` | [`sandbox`] | sandbox (in-process, deterministic — the reference implementation) |
//!
//! A channel instance's id is chosen where it is registered (`with_id`; the defaults above): two
//! WeChat apps under one merchant are two channels, `wechat` and `wechat_mini`, each with its own
//! app id and methods. Notifications for a channel arrive at `/notify/{id}` (and
//! `/notify/{id}/refund` when [`Capabilities::refund_notifications`] says its refunds notify).
//!
//! # Adding a channel, step by step
//!
//! [`sandbox::SandboxChannel`] is the reference: every method there says what a real channel
//! must do at that point. For a new provider `acme`:
//!
//! 1. Add its pay methods to [`PayMethod`] (`AcmeQr`, …).
//! 2. Create `channels/acme/mod.rs` with `pub struct AcmeChannel` implementing
//!    [`PaymentChannel`]: `id()` returns its id (`"acme"` by default, `with_id` to register a
//!    second account); `capabilities()` lists its methods;
//!    `create` is idempotent by `out_trade_no`; `query` maps every provider state to
//!    [`ChannelPaymentState`] (unknown order: `NotFound`); `close` reports
//!    [`CloseOutcome::AlreadyPaid`] instead of failing; `refund` is idempotent by
//!    `out_refund_no`; `verify_notify` checks the signature over everything received before
//!    decoding; `ack` writes the provider's acknowledgement.
//!    A provider with service providers also implements `for_sub_merchant` (a copy of the channel
//!    acting for one sub-merchant, its account naming it), `share` and `return_share`
//!    ([`crate::sharing`]; `wechat/v3` is the example).
//! 3. Put the provider's wire types and the `From`-style conversions in
//!    `channels/acme/transformers.rs`, behaviour in `mod.rs` (as `wechat` does).
//! 4. Add `pub mod acme;` below (behind a feature named after it if it pulls dependencies).
//! 5. Add one line to the channel contract test (`tests/integration/channel_contract.rs`), with
//!    a [`Provider`-style fake or emulator](sandbox) that can make its payer pay.
//! 6. Register it: `Channels::new().with(AcmeChannel::new(…))`. Callers pick it by id or by
//!    [`PayMethod`] — never by `if` on a channel name.

#[cfg(feature = "alipay")]
pub mod alipay;
pub mod bill;
pub mod sandbox;
pub mod wechat;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::{ChannelError, Fen, NewPayment, PayMethod, RefundStatus};

pub use bill::{BillAvailability, BillEntry, BillEntryKind, BillSink};

/// What a channel can do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The pay methods it serves.
    pub methods: Vec<PayMethod>,
    /// Whether a payment can be refunded in parts.
    pub partial_refunds: bool,
    /// Whether refunds complete asynchronously with a notification (otherwise the refund call
    /// answers the outcome).
    pub refund_notifications: bool,
}

/// What the front end does to pay: serialized as `{"type": "…", …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayAction {
    /// Call `wx.requestPayment` / `WeixinJSBridge` with these parameters.
    WechatJsapi {
        /// The parameters.
        params: wechat_pay::JsapiParams,
    },
    /// Call the WeChat SDK's `PayReq` with these parameters.
    WechatApp {
        /// The parameters.
        params: wechat_pay::AppParams,
    },
    /// Show this as a QR code (WeChat Native, Alipay precreate).
    QrCode {
        /// The QR code's content.
        content: String,
    },
    /// Send the browser here (WeChat H5, Alipay page / wap).
    Redirect {
        /// The URL.
        url: String,
    },
    /// Pass this order string to the Alipay SDK.
    AlipayApp {
        /// The signed order string.
        order_string: String,
    },
    /// In the Alipay Mini Program: `my.tradePay({ tradeNO: trade_no })`.
    AlipayTradePay {
        /// Alipay's trade number.
        trade_no: String,
    },
    /// The in-process sandbox: pay with `SandboxChannel::pay`.
    Sandbox {
        /// The payment's number.
        out_trade_no: String,
    },
}

/// A payment as the channel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelPaymentState {
    /// Not paid yet.
    Pending,
    /// Paid.
    Paid {
        /// The channel's transaction id.
        transaction_id: String,
        /// The amount paid.
        amount: Fen,
    },
    /// Closed (or reversed) before payment.
    Closed,
    /// The payment failed.
    Failed,
    /// The channel has no such payment (creation never reached it).
    NotFound,
}

/// The result of closing at the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed (or never existed): it can no longer be paid.
    Closed,
    /// Too late: it was paid.
    AlreadyPaid,
}

/// What charging a buyer's payment code answered ([`PaymentChannel::charge_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeCharge {
    /// Paid.
    Paid {
        /// The channel's transaction id.
        transaction_id: String,
        /// The amount paid.
        amount: Fen,
    },
    /// No outcome yet: the buyer is confirming (WeChat `USERPAYING`, Alipay `10003`) or the
    /// channel did not know (`SYSTEMERROR`, `BANKERROR`). Query it until it ends; reverse it
    /// when the time is up.
    Waiting,
    /// Declined for good, nothing taken: the code is invalid, expired or used, the buyer's
    /// balance is short, the buyer cancelled.
    Declined {
        /// The channel's code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// What reversing a payment-code payment answered ([`PaymentChannel::reverse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reversal {
    /// Done: closed if unpaid, the money given back if it was paid (or no such payment).
    Done,
    /// Not finished (WeChat `recall=Y`, Alipay `retry_flag=Y`): reverse it again.
    Again,
}

/// A refund to make.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RefundRequest {
    /// The payment's number.
    pub out_trade_no: String,
    /// The refund's number (refunds are idempotent by it).
    pub out_refund_no: String,
    /// The payment's amount.
    pub total: Fen,
    /// The amount to refund.
    pub amount: Fen,
    /// Why.
    pub reason: Option<String>,
    /// Where the refund notification goes (channels that send one).
    pub notify_url: Option<String>,
    /// Service-provider mode: the part of the platform's shared fee this refund takes back
    /// ([`crate::sharing`]). A channel that takes shares back within the refund itself
    /// (Alipay's `refund_royalty_parameters`) sends it with the refund; one with a separate
    /// return ([`PaymentChannel::return_share`], WeChat Pay) has made it already.
    pub share_returned: Fen,
}

impl RefundRequest {
    /// A refund of `amount` of the payment `out_trade_no` (whose amount is `total`).
    pub fn new(
        out_trade_no: impl Into<String>,
        out_refund_no: impl Into<String>,
        total: Fen,
        amount: Fen,
    ) -> Self {
        RefundRequest {
            out_trade_no: out_trade_no.into(),
            out_refund_no: out_refund_no.into(),
            total,
            amount,
            reason: None,
            notify_url: None,
            share_returned: Fen::ZERO,
        }
    }
}

/// A refund as the channel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelRefund {
    /// Where it is: `Pending` (accepted, processing), `Abnormal` (taken, but the money could
    /// not reach the payer), `Succeeded`, or `Failed` (closed: nothing moved).
    pub status: RefundStatus,
    /// The channel's refund id.
    pub channel_refund_id: Option<String>,
}

/// A platform fee to share from a sub-merchant's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareRequest {
    /// The channel's transaction id of the payment.
    pub transaction_id: String,
    /// The sharing's number (sharing is idempotent by it).
    pub out_order_no: String,
    /// The fee to share (zero: release everything to the sub-merchant).
    pub amount: Fen,
}

impl ShareRequest {
    /// `amount` of transaction `transaction_id`, numbered `out_order_no`.
    pub fn new(
        transaction_id: impl Into<String>,
        out_order_no: impl Into<String>,
        amount: Fen,
    ) -> Self {
        ShareRequest {
            transaction_id: transaction_id.into(),
            out_order_no: out_order_no.into(),
            amount,
        }
    }
}

/// What the channel answered to a sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShareAnswer {
    /// Done: the fee is with the service provider, the rest released.
    Shared {
        /// The channel's id of the sharing.
        order_id: String,
    },
    /// Accepted, not finished: ask again (same number) later.
    Processing,
}

/// A share to take back before a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShareReturn {
    /// The sharing's number.
    pub out_order_no: String,
    /// The return's number (idempotent by it).
    pub out_return_no: String,
    /// How much.
    pub amount: Fen,
}

impl ShareReturn {
    /// `amount` of sharing `out_order_no`, numbered `out_return_no`.
    pub fn new(
        out_order_no: impl Into<String>,
        out_return_no: impl Into<String>,
        amount: Fen,
    ) -> Self {
        ShareReturn {
            out_order_no: out_order_no.into(),
            out_return_no: out_return_no.into(),
            amount,
        }
    }
}

/// Which kind of notification arrived (channels use different URLs or bodies for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// A payment result.
    Payment,
    /// A refund result.
    Refund,
}

/// A notification as received: the raw body, exactly as POSTed, and the request's headers
/// (WeChat Pay API v3 signs in headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawNotify {
    /// Payment or refund.
    pub kind: NotifyKind,
    /// The body.
    pub body: Vec<u8>,
    /// The request's headers (names as received).
    pub headers: Vec<(String, String)>,
}

impl RawNotify {
    /// A payment notification body.
    pub fn payment(body: impl Into<Vec<u8>>) -> Self {
        RawNotify {
            kind: NotifyKind::Payment,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// A refund notification body.
    pub fn refund(body: impl Into<Vec<u8>>) -> Self {
        RawNotify {
            kind: NotifyKind::Refund,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// With the request's headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a payment notification says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifiedStatus {
    /// Paid.
    Paid,
    /// Closed.
    Closed,
    /// Failed.
    Failed,
    /// Still waiting (some channels notify intermediate states).
    Pending,
}

/// A verified, decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelNotification {
    /// About a payment.
    Payment {
        /// The payment's number.
        out_trade_no: String,
        /// The channel's transaction id.
        transaction_id: String,
        /// The amount the channel reports.
        amount: Fen,
        /// The currency the amount is in (WeChat's `fee_type`; `CNY` when the channel does not
        /// say). A payment is marked paid only when it matches the payment's.
        currency: String,
        /// The channel account it was sent for.
        account: String,
        /// What happened.
        status: NotifiedStatus,
    },
    /// About a refund.
    Refund {
        /// The payment's number.
        out_trade_no: String,
        /// The refund's number.
        out_refund_no: String,
        /// The channel's refund id.
        channel_refund_id: String,
        /// The amount refunded.
        amount: Fen,
        /// The channel account it was sent for.
        account: String,
        /// Where the refund is now (`Succeeded`, `Abnormal`, `Failed` for closed).
        status: RefundStatus,
    },
}

/// Where the money of an abnormal refund goes instead (WeChat Pay API v3's abnormal refund).
/// `Debug` masks the card's account and holder.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbnormalRefundResolution {
    /// To a debit card of the payer's (the payer tells the merchant which).
    PayerBankCard {
        /// The provider's bank type code (`ICBC_DEBIT`…).
        bank_type: String,
        /// The card's account number.
        bank_account: String,
        /// The card holder's name.
        real_name: String,
    },
    /// To the merchant's own settlement account; the merchant then pays the payer another way.
    MerchantBankAccount,
}

impl fmt::Debug for AbnormalRefundResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbnormalRefundResolution::PayerBankCard { bank_type, .. } => f
                .debug_struct("PayerBankCard")
                .field("bank_type", bank_type)
                .field("bank_account", &"***")
                .field("real_name", &"***")
                .finish(),
            AbnormalRefundResolution::MerchantBankAccount => f.write_str("MerchantBankAccount"),
        }
    }
}

impl AbnormalRefundResolution {
    /// `payer_bank_card` or `merchant_bank_account`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AbnormalRefundResolution::PayerBankCard { .. } => "payer_bank_card",
            AbnormalRefundResolution::MerchantBankAccount => "merchant_bank_account",
        }
    }
}

/// How a notification was handled, to tell the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Processed (or already processed): stop sending it.
    Accepted,
    /// Not processed: send it again later.
    Retry(String),
}

/// The HTTP response that acknowledges a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckBody {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

/// A payment channel (the strategy). Object-safe: the service holds `Arc<dyn PaymentChannel>`.
#[async_trait]
pub trait PaymentChannel: Send + Sync + fmt::Debug {
    /// The channel's id (`wechat`, `alipay`, `sandbox`).
    fn id(&self) -> &str;

    /// What a payer is shown for it ("WeChat Pay"); the id when not overridden.
    fn label(&self) -> &str {
        self.id()
    }

    /// The account payments are made to (app id / merchant id); notifications must name it.
    fn account(&self) -> &str;

    /// What it can do.
    fn capabilities(&self) -> &Capabilities;

    /// Creates the payment at the channel; returns what the front end does. Calling it again
    /// with the same request returns the same action (channels are idempotent by number).
    async fn create(&self, request: &NewPayment) -> Result<PayAction, ChannelError>;

    /// Asks the channel where a payment is.
    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError>;

    /// Closes an unpaid payment at the channel.
    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError>;

    /// Charges the buyer's payment code for `request` (a payment-code method: the merchant
    /// scanned the buyer's phone). Idempotent by `out_trade_no`. Channels without payment codes
    /// say so ([`ChannelError::Unsupported`]).
    async fn charge_code(
        &self,
        request: &NewPayment,
        code: &crate::PaymentCode,
    ) -> Result<CodeCharge, ChannelError> {
        let _ = (request, code);
        Err(ChannelError::Unsupported(format!(
            "{} takes no payment codes",
            self.id()
        )))
    }

    /// Reverses a payment-code payment whose outcome did not come in time (WeChat's reverse,
    /// Alipay's cancel): closed if unpaid, the money given back if it was paid after all — so
    /// call it only after a query found it unpaid. [`Reversal::Done`] also for a payment the
    /// channel never had.
    async fn reverse(&self, out_trade_no: &str) -> Result<Reversal, ChannelError> {
        let _ = out_trade_no;
        Err(ChannelError::Unsupported(format!(
            "{} takes no payment codes",
            self.id()
        )))
    }

    /// Refunds (part of) a paid payment.
    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError>;

    /// Asks the channel where a refund is: `None` when the channel has no refund with this
    /// number (the request never reached it, or it refused it without recording it), so sending
    /// the same refund again is safe.
    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError>;

    /// Sends an abnormal refund's money another way (`refund` is the channel's refund id).
    /// Channels without such an API say how the merchant resolves it instead
    /// ([`ChannelError::Unsupported`]).
    async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        channel_refund_id: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        let _ = (out_refund_no, channel_refund_id, to);
        Err(ChannelError::Unsupported(format!(
            "{} has no API for abnormal refunds: resolve it on the provider's merchant platform",
            self.id()
        )))
    }

    /// Downloads the trade bill of `day` (a day in China time) into `to`, as the provider
    /// sends it, never holding it in memory; or says it is not ready, or that there is none.
    /// Channels without bills say so ([`ChannelError::Unsupported`]).
    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        let _ = (day, to);
        Err(ChannelError::Unsupported(format!(
            "{} has no daily bill to reconcile against",
            self.id()
        )))
    }

    /// Reads a bill [`download_bill`](Self::download_bill) wrote, a row at a time, handing
    /// each payment and refund row to `each` (blocking: the reconciler calls it on a thread of
    /// its own). A file that cannot be read to its end, totals included, is an error: a
    /// truncated bill is never taken for a shorter day.
    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        let _ = (file, each);
        Err(ChannelError::Unsupported(format!(
            "{} has no daily bill to read",
            self.id()
        )))
    }

    /// This channel acting for `sub_merchant`, a sub-merchant of the service provider the
    /// channel is configured as: payments go straight to the sub-merchant's own account (WeChat
    /// Pay partner mode's `sub_mchid`), and its queries, refunds and profit sharing name it. Its
    /// [`account`](Self::account) names the sub-merchant too, so that a notification about
    /// another sub-merchant's payment never settles this one's. Channels that cannot act for
    /// sub-merchants say so ([`ChannelError::Unsupported`]).
    fn for_sub_merchant(
        &self,
        sub_merchant: &str,
    ) -> Result<Arc<dyn PaymentChannel>, ChannelError> {
        let _ = sub_merchant;
        Err(ChannelError::Unsupported(format!(
            "{} is not configured as a service provider",
            self.id()
        )))
    }

    /// Onboarding a sub-merchant (on a channel from [`for_sub_merchant`](Self::for_sub_merchant)):
    /// makes the service provider — `receiver_name`, its registered name — a receiver of the
    /// sub-merchant's profit sharing, so that its fee can be shared. Idempotent.
    async fn add_fee_receiver(&self, receiver_name: &str) -> Result<(), ChannelError> {
        let _ = receiver_name;
        Err(no_profit_sharing(self.id()))
    }

    /// Shares the platform's fee of a sub-merchant's paid payment to the service provider
    /// (profit sharing; on a channel from [`for_sub_merchant`](Self::for_sub_merchant)),
    /// releasing the rest to the sub-merchant; with an amount of zero, only releases it.
    /// Idempotent by [`ShareRequest::out_order_no`].
    async fn share(&self, request: &ShareRequest) -> Result<ShareAnswer, ChannelError> {
        let _ = request;
        Err(no_profit_sharing(self.id()))
    }

    /// Takes (part of) a share back from the service provider to the sub-merchant, before a
    /// refund (WeChat refunds only what the sub-merchant holds). `Ok` only once the money is
    /// back; idempotent by [`ShareReturn::out_return_no`]. A channel that takes it back within
    /// the refund itself answers `Ok` and reads [`RefundRequest::share_returned`].
    async fn return_share(&self, request: &ShareReturn) -> Result<(), ChannelError> {
        let _ = request;
        Err(no_profit_sharing(self.id()))
    }

    /// Verifies and decodes a notification.
    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError>;

    /// The acknowledgement in the channel's format.
    fn ack(&self, outcome: &AckOutcome) -> AckBody;
}

/// What a channel without profit sharing answers to its calls.
fn no_profit_sharing(channel: &str) -> ChannelError {
    ChannelError::Unsupported(format!("{channel} has no profit sharing"))
}

/// How many times [`end_unpaid`] asks for a reverse that is not finished before leaving it to
/// the next round.
const REVERSE_ATTEMPTS: usize = 3;

/// Ends an unpaid payment at its channel: closes it, or — a payment code, which the channel
/// cannot close — reverses it (after the caller's query found it unpaid).
pub(crate) async fn end_unpaid(
    channel: &dyn PaymentChannel,
    payment: &crate::Payment,
) -> Result<CloseOutcome, ChannelError> {
    if !payment.method.is_payment_code() {
        return channel.close(&payment.out_trade_no).await;
    }
    for _ in 0..REVERSE_ATTEMPTS {
        if channel.reverse(&payment.out_trade_no).await? == Reversal::Done {
            return Ok(CloseOutcome::Closed);
        }
    }
    Err(ChannelError::Unavailable {
        code: "REVERSE_NOT_FINISHED".into(),
        message: format!(
            "the channel asked for the reverse of {} again {REVERSE_ATTEMPTS} times",
            payment.out_trade_no
        ),
        retry_after: None,
    })
}

/// `channel`, or — for a payment of a service provider's sub-merchant — the same channel acting
/// for `sub_merchant` ([`PaymentChannel::for_sub_merchant`]).
pub fn acting_for(
    channel: &Arc<dyn PaymentChannel>,
    sub_merchant: Option<&str>,
) -> Result<Arc<dyn PaymentChannel>, ChannelError> {
    match sub_merchant {
        Some(sub) => channel.for_sub_merchant(sub),
        None => Ok(Arc::clone(channel)),
    }
}

/// The registered channels (the strategy registry).
#[derive(Debug, Clone, Default)]
pub struct Channels {
    list: Vec<Arc<dyn PaymentChannel>>,
}

impl Channels {
    /// No channels.
    pub fn new() -> Self {
        Channels::default()
    }

    /// Registers a channel under its id; a channel already registered under that id is
    /// replaced (ids are unique).
    pub fn with(self, channel: impl PaymentChannel + 'static) -> Self {
        self.with_shared(Arc::new(channel))
    }

    /// Registers a shared channel under its id (replacing one with the same id).
    pub fn with_shared(mut self, channel: Arc<dyn PaymentChannel>) -> Self {
        match self.list.iter_mut().find(|c| c.id() == channel.id()) {
            Some(slot) => *slot = channel,
            None => self.list.push(channel),
        }
        self
    }

    /// The channel with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn PaymentChannel>> {
        self.list.iter().find(|c| c.id() == id)
    }

    /// The channel serving this method (the first registered, when several could).
    pub fn for_method(&self, method: PayMethod) -> Option<&Arc<dyn PaymentChannel>> {
        self.list
            .iter()
            .find(|c| c.capabilities().methods.contains(&method))
    }

    /// The channel a payment was made through, acting for its sub-merchant if it has one.
    pub fn for_payment(
        &self,
        payment: &crate::Payment,
    ) -> Result<Arc<dyn PaymentChannel>, ChannelError> {
        let channel = self.get(&payment.channel).ok_or_else(|| {
            ChannelError::Config(format!("no channel {} is registered", payment.channel))
        })?;
        acting_for(channel, payment.sub_merchant.as_deref())
    }

    /// The registered channels, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn PaymentChannel>> {
        self.list.iter()
    }

    /// The registered ids.
    pub fn ids(&self) -> Vec<&str> {
        self.list.iter().map(|c| c.id()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wechat(app_id: &str) -> wechat_pay::Client {
        wechat_pay::Client::builder(app_id, "10000100", wechat_pay::ApiKey::new("k"))
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn two_wechat_apps_are_two_channels_resolved_by_method() {
        let channels = Channels::new()
            .with(wechat::WechatChannel::official_account(wechat(
                "wxofficial",
            )))
            .with(wechat::WechatChannel::mini_program(wechat("wxmini")))
            .with(sandbox::SandboxChannel::new("shop", "secret"));
        assert_eq!(channels.ids(), ["wechat", "wechat_mini", "sandbox"]);
        let by = |m| channels.for_method(m).map(|c| c.id().to_owned());
        assert_eq!(by(PayMethod::WechatNative).as_deref(), Some("wechat"));
        assert_eq!(
            by(PayMethod::WechatMiniProgram).as_deref(),
            Some("wechat_mini")
        );
        assert_eq!(by(PayMethod::Sandbox).as_deref(), Some("sandbox"));
        assert_eq!(by(PayMethod::AlipayQr), None);
        assert_eq!(
            channels.get("wechat_mini").map(|c| c.account().to_owned()),
            Some("wxmini/10000100".to_owned())
        );
    }

    #[test]
    fn an_id_is_chosen_at_registration_and_unique() {
        let channels = Channels::new()
            .with(sandbox::SandboxChannel::new("a", "s").with_id("test_money"))
            .with(sandbox::SandboxChannel::new("b", "s").with_id("test_money"));
        assert_eq!(channels.ids(), ["test_money"]);
        assert_eq!(
            channels.get("test_money").map(|c| c.account().to_owned()),
            Some("b".to_owned()),
            "the later registration replaces the earlier"
        );
        assert!(channels.get("sandbox").is_none());
    }
}
