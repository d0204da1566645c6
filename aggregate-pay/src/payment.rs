//! Payments and refunds, and the only state changes they allow.
//!
//! ```text
//! PENDING ──paid──▶ PAID ──refund──▶ REFUNDING ──▶ PARTIALLY_REFUNDED ──refund──▶ REFUNDING …
//!    │                                   └────────▶ REFUNDED
//!    ├──closed──▶ CLOSED     (a payment that arrives after all is still recorded: CLOSED → PAID)
//!    └──failed──▶ FAILED
//! ```
//!
//! Amounts are [`Fen`]; a payment is never marked paid unless the amount received equals the
//! amount asked, to the fen. A mismatch flags the payment for review instead.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Fen;

/// Our id of a payment (`pay_…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PaymentId(pub String);

impl PaymentId {
    /// A new random id.
    pub fn generate() -> Self {
        PaymentId(crate::sortable_id("pay_"))
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! status_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$d:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($(#[$d])* $v,)* }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Reads a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Where a payment is.
    pub enum PaymentStatus {
        /// Created, waiting for the payer.
        Pending => "PENDING",
        /// Paid in full.
        Paid => "PAID",
        /// A refund is in progress.
        Refunding => "REFUNDING",
        /// Part of the amount was refunded.
        PartiallyRefunded => "PARTIALLY_REFUNDED",
        /// All of the amount was refunded.
        Refunded => "REFUNDED",
        /// Closed before payment.
        Closed => "CLOSED",
        /// The payment failed.
        Failed => "FAILED",
    }
}

impl PaymentStatus {
    /// Whether the money was received (whatever happened after).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            PaymentStatus::Paid
                | PaymentStatus::Refunding
                | PaymentStatus::PartiallyRefunded
                | PaymentStatus::Refunded
        )
    }

    /// Whether the payment can still be paid.
    pub fn is_open(self) -> bool {
        self == PaymentStatus::Pending
    }
}

status_enum! {
    /// Where a refund is.
    pub enum RefundStatus {
        /// Requested, not confirmed: sent, or to be sent again with the same number.
        Pending => "PENDING",
        /// The channel took the refund but could not deliver the money (WeChat v3 `ABNORMAL`,
        /// v2 `CHANGE`: the payer's card was closed, say). The money has left the merchant's
        /// hands for this refund: it stays counted as being refunded until the merchant
        /// resolves it and the channel says `SUCCESS` or `CLOSED`.
        Abnormal => "ABNORMAL",
        /// The money is back with the payer.
        Succeeded => "SUCCEEDED",
        /// The channel refused it for good: no money moved (its code in `last_error`).
        Failed => "FAILED",
    }
}

impl RefundStatus {
    /// Whether the refund has not ended: its amount is counted as being refunded, the payment
    /// stays REFUNDING, and the reconciler keeps asking the channel about it.
    pub fn is_open(self) -> bool {
        matches!(self, RefundStatus::Pending | RefundStatus::Abnormal)
    }

    /// Whether nothing can change it any more.
    pub fn is_final(self) -> bool {
        !self.is_open()
    }
}

/// How the payer pays. Each method belongs to one channel; [`crate::Channels`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayMethod {
    /// WeChat Pay in the Official Account's browser (needs the payer's openid).
    WechatJsapi,
    /// WeChat Pay in a Mini Program (needs the payer's openid).
    WechatMiniProgram,
    /// A WeChat Pay QR code.
    WechatNative,
    /// WeChat Pay in a mobile browser.
    WechatH5,
    /// WeChat Pay in a native app.
    WechatApp,
    /// An Alipay QR code.
    AlipayQr,
    /// The Alipay web cashier.
    AlipayPage,
    /// The Alipay mobile web cashier.
    AlipayWap,
    /// Alipay in a native app.
    AlipayApp,
    /// Alipay in an Alipay Mini Program (`alipay.trade.create` for the logged-in buyer; needs
    /// the payer's Alipay user id or open id).
    AlipayMiniProgram,
    /// The buyer's WeChat payment code, scanned by the merchant (a machine's scanner): charged
    /// with [`Payments::pay_by_code`](crate::Payments::pay_by_code).
    WechatPaymentCode,
    /// The buyer's Alipay payment code (bar code), scanned by the merchant: charged with
    /// [`Payments::pay_by_code`](crate::Payments::pay_by_code).
    AlipayPaymentCode,
    /// The in-process sandbox channel.
    Sandbox,
}

impl PayMethod {
    /// The stored name (`wechat_jsapi`…).
    pub fn as_str(self) -> &'static str {
        match self {
            PayMethod::WechatJsapi => "wechat_jsapi",
            PayMethod::WechatMiniProgram => "wechat_mini_program",
            PayMethod::WechatNative => "wechat_native",
            PayMethod::WechatH5 => "wechat_h5",
            PayMethod::WechatApp => "wechat_app",
            PayMethod::AlipayQr => "alipay_qr",
            PayMethod::AlipayPage => "alipay_page",
            PayMethod::AlipayWap => "alipay_wap",
            PayMethod::AlipayApp => "alipay_app",
            PayMethod::AlipayMiniProgram => "alipay_mini_program",
            PayMethod::WechatPaymentCode => "wechat_payment_code",
            PayMethod::AlipayPaymentCode => "alipay_payment_code",
            PayMethod::Sandbox => "sandbox",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// Whether the channel needs the payer's id at the provider (a WeChat openid; an Alipay
    /// user id or open id).
    pub fn needs_open_id(self) -> bool {
        matches!(
            self,
            PayMethod::WechatJsapi | PayMethod::WechatMiniProgram | PayMethod::AlipayMiniProgram
        )
    }

    /// Whether the merchant scans the buyer's payment code (charged at once with
    /// [`Payments::pay_by_code`](crate::Payments::pay_by_code), reversed instead of closed).
    pub fn is_payment_code(self) -> bool {
        matches!(
            self,
            PayMethod::WechatPaymentCode | PayMethod::AlipayPaymentCode
        )
    }

    /// Whether it works from any screen with nothing known about the payer: a code the payer
    /// scans with their phone (WeChat Native, Alipay QR), or the test-money button. A page that
    /// names only a channel gets that channel's first such method.
    pub fn is_scan_to_pay(self) -> bool {
        matches!(
            self,
            PayMethod::WechatNative | PayMethod::AlipayQr | PayMethod::Sandbox
        )
    }
}

impl fmt::Display for PayMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payment to create: what [`Payments::create`](crate::Payments::create) takes and what a
/// channel's [`create`](crate::PaymentChannel::create) receives.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewPayment {
    /// The number the channel will know it by (unique).
    pub out_trade_no: String,
    /// The amount (more than zero).
    pub amount: Fen,
    /// What is bought.
    pub subject: String,
    /// How the payer pays (picks the channel).
    pub method: PayMethod,
    /// The payer's IP.
    pub client_ip: String,
    /// The payer's id at the provider: a WeChat openid (JSAPI / Mini Program) or an Alipay user
    /// id (`2088…`) or open id (Alipay Mini Program).
    pub open_id: Option<String>,
    /// When the payment expires (by default, per method: see
    /// [`Payments::expire_after`](crate::Payments::expire_after)).
    pub expires_at: Option<OffsetDateTime>,
    /// Where the channel notifies.
    pub notify_url: String,
    /// Where the payer's browser returns.
    pub return_url: Option<String>,
    /// Business data kept with the payment.
    pub metadata: serde_json::Value,
    /// Service-provider mode: the sub-merchant whose own account the money goes to (a WeChat
    /// Pay `sub_mchid`; an Alipay merchant who authorized the platform). The platform sets it
    /// from the merchant's own record — never from what a caller sends.
    pub sub_merchant: Option<String>,
    /// Service-provider mode: the platform's fee, shared from the sub-merchant's payment to the
    /// platform once it succeeds ([`crate::sharing`]). Zero: nothing is shared and the money is
    /// not held back for sharing.
    pub platform_fee: Fen,
}

impl NewPayment {
    /// A payment with the required fields.
    pub fn new(
        out_trade_no: impl Into<String>,
        amount: Fen,
        subject: impl Into<String>,
        method: PayMethod,
        notify_url: impl Into<String>,
    ) -> Self {
        NewPayment {
            out_trade_no: out_trade_no.into(),
            amount,
            subject: subject.into(),
            method,
            client_ip: "127.0.0.1".to_owned(),
            open_id: None,
            expires_at: None,
            notify_url: notify_url.into(),
            return_url: None,
            metadata: serde_json::Value::Object(Default::default()),
            sub_merchant: None,
            platform_fee: Fen::ZERO,
        }
    }

    /// Paid to sub-merchant `sub_merchant` of the channel's service provider (its payments,
    /// refunds and queries go through [`PaymentChannel::for_sub_merchant`](crate::PaymentChannel::for_sub_merchant)).
    pub fn sub_merchant(mut self, sub_merchant: impl Into<String>) -> Self {
        self.sub_merchant = Some(sub_merchant.into());
        self
    }

    /// The platform's fee, shared to the platform after the payment succeeds (needs a
    /// sub-merchant; see [`crate::fees::FeeRate`] for computing it).
    pub fn platform_fee(mut self, fee: Fen) -> Self {
        self.platform_fee = fee;
        self
    }

    /// The payer's openid.
    pub fn open_id(mut self, open_id: impl Into<String>) -> Self {
        self.open_id = Some(open_id.into());
        self
    }

    /// The payer's IP.
    pub fn client_ip(mut self, ip: impl Into<String>) -> Self {
        self.client_ip = ip.into();
        self
    }

    /// The expiry.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The return URL.
    pub fn return_url(mut self, url: impl Into<String>) -> Self {
        self.return_url = Some(url.into());
        self
    }

    /// Business data.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Payment {
    /// Our id.
    pub id: PaymentId,
    /// The number the channel knows it by (unique).
    pub out_trade_no: String,
    /// The channel id (`wechat`, `alipay`, `sandbox`).
    pub channel: String,
    /// The channel account (app id / merchant id) it was created under.
    pub channel_account: String,
    /// How the payer pays.
    pub method: PayMethod,
    /// The amount asked.
    pub amount: Fen,
    /// The currency (`CNY`).
    pub currency: String,
    /// What is bought.
    pub subject: String,
    /// Where it is.
    pub status: PaymentStatus,
    /// The channel's transaction id, once paid.
    pub channel_transaction_id: Option<String>,
    /// Refunded so far.
    pub refunded_amount: Fen,
    /// Something did not add up (an amount mismatch): a human must look.
    pub needs_review: bool,
    /// The payer's openid (WeChat JSAPI / Mini Program).
    pub open_id: Option<String>,
    /// Business data, kept as given.
    pub metadata: serde_json::Value,
    /// When created.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
    /// When paid.
    pub paid_at: Option<OffsetDateTime>,
    /// After this the payment is closed if still unpaid.
    pub expires_at: Option<OffsetDateTime>,
    /// Optimistic-concurrency version: every committed change increments it.
    pub version: i64,
    /// Service-provider mode: the sub-merchant paid (see [`NewPayment::sub_merchant`]).
    pub sub_merchant: Option<String>,
    /// Service-provider mode: the platform's fee (see [`NewPayment::platform_fee`]).
    pub platform_fee: Fen,
}

impl Payment {
    /// What is left to refund, counting refunds still pending.
    pub fn refundable(&self, pending_refunds: Fen) -> Fen {
        self.amount
            .checked_sub(self.refunded_amount)
            .and_then(|left| left.checked_sub(pending_refunds))
            .unwrap_or(Fen::ZERO)
    }
}

/// A refund of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refund {
    /// Our id (`ref_…`).
    pub id: String,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// The number the channel knows it by (unique; refunds are idempotent by it).
    pub out_refund_no: String,
    /// The amount.
    pub amount: Fen,
    /// Where it is.
    pub status: RefundStatus,
    /// The channel's refund id.
    pub channel_refund_id: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Where the channel sends the refund's notification (kept so that sending the refund
    /// again is the same request).
    pub notify_url: Option<String>,
    /// Why it is not settled yet (a pending refund: the last temporary error, an answer that
    /// could not be verified; an abnormal one: what the channel said) or why it failed (the
    /// channel's definitive code), as `CODE: message`.
    pub last_error: Option<String>,
    /// When requested.
    pub created_at: OffsetDateTime,
    /// When last changed.
    pub updated_at: OffsetDateTime,
}

impl Refund {
    /// A new PENDING refund of `amount` of payment `payment_id`, numbered `out_refund_no`,
    /// requested `at` (for stores and tests; services create refunds with
    /// [`Payments::refund`](crate::Payments::refund)).
    pub fn new(
        payment_id: PaymentId,
        out_refund_no: impl Into<String>,
        amount: Fen,
        at: OffsetDateTime,
    ) -> Self {
        Refund {
            id: crate::sortable_id("ref_"),
            payment_id,
            out_refund_no: out_refund_no.into(),
            amount,
            status: RefundStatus::Pending,
            channel_refund_id: None,
            reason: None,
            notify_url: None,
            last_error: None,
            created_at: at,
            updated_at: at,
        }
    }
}

/// A payment `pay_1` (`A1`) of `amount` fen, `status`, for unit tests.
#[cfg(test)]
pub(crate) fn test_payment(amount: u64, status: PaymentStatus) -> Payment {
    let now = OffsetDateTime::now_utc();
    Payment {
        id: PaymentId("pay_1".into()),
        out_trade_no: "A1".into(),
        channel: "sandbox".into(),
        channel_account: "shop".into(),
        method: PayMethod::Sandbox,
        amount: Fen::new(amount),
        currency: "CNY".into(),
        subject: "Cola".into(),
        status,
        channel_transaction_id: None,
        refunded_amount: Fen::ZERO,
        needs_review: false,
        open_id: None,
        metadata: serde_json::Value::Null,
        created_at: now,
        updated_at: now,
        paid_at: None,
        expires_at: None,
        version: 1,
        sub_merchant: None,
        platform_fee: Fen::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in [
            PaymentStatus::Pending,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Closed,
        ] {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            PayMethod::parse("wechat_native"),
            Some(PayMethod::WechatNative)
        );
        assert_eq!(PayMethod::parse("nope"), None);
        assert!(PaymentStatus::PartiallyRefunded.is_paid());
        assert!(!PaymentStatus::Closed.is_paid());
    }
}
