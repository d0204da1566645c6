//! `/secapi/pay/refund`: refund all or part of a paid order (needs the client certificate).
//!
//! Refunds are idempotent by `out_refund_no`: retrying the same request (same number, same
//! amount) after a timeout is safe and must be done with the same parameters.

use super::{Endpoint, FromReply, Request};
use crate::{Error, Fen, OrderId, Params};

/// Which merchant balance pays the refund (`refund_account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefundAccount {
    /// `REFUND_SOURCE_UNSETTLED_FUNDS`: unsettled funds (WeChat's default).
    UnsettledFunds,
    /// `REFUND_SOURCE_RECHARGE_FUNDS`: the available balance.
    RechargeFunds,
}

impl RefundAccount {
    fn as_str(self) -> &'static str {
        match self {
            RefundAccount::UnsettledFunds => "REFUND_SOURCE_UNSETTLED_FUNDS",
            RefundAccount::RechargeFunds => "REFUND_SOURCE_RECHARGE_FUNDS",
        }
    }
}

/// A refund request.
///
/// ```
/// use wechat_pay::{Fen, OrderId, Refund};
/// let r = Refund::new(
///     OrderId::OutTradeNo("20240101000001".into()),
///     "R20240101000001",
///     Fen::new(350),
///     Fen::new(350),
/// )
/// .refund_desc("vend failed")
/// .notify_url("https://shop.example/notify/wechat/refund");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    order: OrderId,
    out_refund_no: String,
    total_fee: Fen,
    refund_fee: Fen,
    refund_fee_type: Option<String>,
    refund_desc: Option<String>,
    refund_account: Option<RefundAccount>,
    notify_url: Option<String>,
}

impl Refund {
    /// Refunds `refund_fee` of the order `order` (whose amount is `total_fee`) under the
    /// merchant's refund number `out_refund_no`.
    pub fn new(
        order: OrderId,
        out_refund_no: impl Into<String>,
        total_fee: Fen,
        refund_fee: Fen,
    ) -> Self {
        Refund {
            order,
            out_refund_no: out_refund_no.into(),
            total_fee,
            refund_fee,
            refund_fee_type: None,
            refund_desc: None,
            refund_account: None,
            notify_url: None,
        }
    }

    /// `refund_fee_type`: the currency (default `CNY`).
    pub fn refund_fee_type(mut self, v: impl Into<String>) -> Self {
        self.refund_fee_type = Some(v.into());
        self
    }

    /// `refund_desc`: the reason shown to the payer.
    pub fn refund_desc(mut self, v: impl Into<String>) -> Self {
        self.refund_desc = Some(v.into());
        self
    }

    /// `refund_account`.
    pub fn refund_account(mut self, v: RefundAccount) -> Self {
        self.refund_account = Some(v);
        self
    }

    /// `notify_url`: where the (encrypted) refund notification goes, overriding the merchant
    /// platform's setting.
    pub fn notify_url(mut self, v: impl Into<String>) -> Self {
        self.notify_url = Some(v.into());
        self
    }
}

impl Endpoint for Refund {
    const PATH: &'static str = "/secapi/pay/refund";
    const NEEDS_CERTIFICATE: bool = true;

    fn write_params(&self, p: &mut Params) {
        self.order.write(p);
        p.insert("out_refund_no", self.out_refund_no.as_str());
        p.insert("total_fee", self.total_fee.to_string());
        p.insert("refund_fee", self.refund_fee.to_string());
        p.insert_opt("refund_fee_type", self.refund_fee_type.as_deref());
        p.insert_opt("refund_desc", self.refund_desc.as_deref());
        p.insert_opt(
            "refund_account",
            self.refund_account.map(RefundAccount::as_str),
        );
        p.insert_opt("notify_url", self.notify_url.as_deref());
    }
}

impl Request for Refund {
    type Response = RefundResponse;
}

/// A coupon refunded with a refund (`coupon_refund_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundCoupon {
    /// `coupon_refund_id`.
    pub id: String,
    /// `coupon_type`.
    pub coupon_type: Option<String>,
    /// `coupon_refund_fee`.
    pub fee: Fen,
}

/// The refund was accepted. It completes asynchronously: query it or wait for the refund
/// notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundResponse {
    /// `transaction_id`.
    pub transaction_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `out_refund_no`.
    pub out_refund_no: String,
    /// `refund_id`: WeChat's refund number.
    pub refund_id: String,
    /// `refund_fee`.
    pub refund_fee: Fen,
    /// `settlement_refund_fee`.
    pub settlement_refund_fee: Option<Fen>,
    /// `total_fee`.
    pub total_fee: Fen,
    /// `settlement_total_fee`.
    pub settlement_total_fee: Option<Fen>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `cash_fee`.
    pub cash_fee: Fen,
    /// `cash_refund_fee`.
    pub cash_refund_fee: Option<Fen>,
    /// `coupon_refund_fee`.
    pub coupon_refund_fee: Option<Fen>,
    /// `coupon_refund_id_$n` / `coupon_type_$n` / `coupon_refund_fee_$n`.
    pub coupons: Vec<RefundCoupon>,
}

impl FromReply for RefundResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        let count = p.optional_count("coupon_refund_count")?;
        let coupons = (0..count)
            .map(|n| {
                Ok(RefundCoupon {
                    id: p.required_string(&format!("coupon_refund_id_{n}"))?,
                    coupon_type: p.optional_string(&format!("coupon_type_{n}")),
                    fee: p.required_fen(&format!("coupon_refund_fee_{n}"))?,
                })
            })
            .collect::<Result<_, Error>>()?;
        Ok(RefundResponse {
            transaction_id: p.required_string("transaction_id")?,
            out_trade_no: p.required_string("out_trade_no")?,
            out_refund_no: p.required_string("out_refund_no")?,
            refund_id: p.required_string("refund_id")?,
            refund_fee: p.required_fen("refund_fee")?,
            settlement_refund_fee: p.optional_fen("settlement_refund_fee")?,
            total_fee: p.required_fen("total_fee")?,
            settlement_total_fee: p.optional_fen("settlement_total_fee")?,
            fee_type: p.optional_string("fee_type"),
            cash_fee: p.required_fen("cash_fee")?,
            cash_refund_fee: p.optional_fen("cash_refund_fee")?,
            coupon_refund_fee: p.optional_fen("coupon_refund_fee")?,
            coupons,
        })
    }
}
