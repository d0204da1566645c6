//! `alipay.trade.refund`: money back to the buyer, synchronously. Idempotent by
//! `out_request_no`: the same refund asked again answers `fund_change = N`.

use serde::{Deserialize, Serialize};

use super::{Request, TradeRef};
use crate::Fen;

/// A (partial) refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeRefund {
    #[serde(flatten)]
    trade: TradeRef,
    #[serde(with = "pay_money::yuan")]
    refund_amount: Fen,
    out_request_no: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    refund_royalty_parameters: Vec<RoyaltyBack>,
}

/// Part of a settlement taken back from its receiver with a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RoyaltyBack {
    royalty_type: &'static str,
    trans_out_type: &'static str,
    trans_out: String,
    #[serde(with = "pay_money::yuan")]
    amount: Fen,
}

impl TradeRefund {
    /// Refunds `refund_amount` of `trade`, numbered `out_request_no` by the merchant.
    pub fn new(trade: TradeRef, out_request_no: impl Into<String>, refund_amount: Fen) -> Self {
        TradeRefund {
            trade,
            refund_amount,
            out_request_no: out_request_no.into(),
            refund_reason: None,
            refund_royalty_parameters: Vec::new(),
        }
    }

    /// Takes `amount` of what the trade's settlement gave receiver `trans_out` (an Alipay user
    /// id) back with this refund (`refund_royalty_parameters`).
    pub fn royalty_back(mut self, trans_out: impl Into<String>, amount: Fen) -> Self {
        self.refund_royalty_parameters.push(RoyaltyBack {
            royalty_type: "transfer",
            trans_out_type: "userId",
            trans_out: trans_out.into(),
            amount,
        });
        self
    }

    /// Why (shown to the buyer).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.refund_reason = Some(reason.into());
        self
    }
}

/// The refund.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundResponse {
    /// Alipay's trade number.
    pub trade_no: String,
    /// The merchant's trade number.
    pub out_trade_no: String,
    /// `Y` when this call moved money, `N` when it was already refunded (a retry).
    #[serde(default)]
    pub fund_change: Option<String>,
    /// Everything refunded on the trade so far.
    #[serde(with = "pay_money::yuan")]
    pub refund_fee: Fen,
}

impl Request for TradeRefund {
    const METHOD: &'static str = "alipay.trade.refund";
    type Response = RefundResponse;
}
