//! `alipay.trade.fastpay.refund.query`: whether a refund was made. An answer without
//! `refund_amount` means Alipay has no such successful refund.

use serde::{Deserialize, Serialize};

use super::{Request, TradeRef};
use crate::Fen;

/// Asks about one refund of a trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundQuery {
    #[serde(flatten)]
    trade: TradeRef,
    out_request_no: String,
    query_options: [&'static str; 1],
}

impl RefundQuery {
    /// The refund `out_request_no` of `trade`.
    pub fn new(trade: TradeRef, out_request_no: impl Into<String>) -> Self {
        RefundQuery {
            trade,
            out_request_no: out_request_no.into(),
            query_options: ["gmt_refund_pay"],
        }
    }
}

/// A refund, if made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundQueryResponse {
    /// Alipay's trade number.
    #[serde(default)]
    pub trade_no: Option<String>,
    /// The merchant's trade number.
    #[serde(default)]
    pub out_trade_no: Option<String>,
    /// The refund's number.
    #[serde(default)]
    pub out_request_no: Option<String>,
    /// The amount refunded; absent when there is no such (successful) refund.
    #[serde(default, with = "pay_money::yuan::option")]
    pub refund_amount: Option<Fen>,
    /// `REFUND_SUCCESS` when Alipay says so explicitly.
    #[serde(default)]
    pub refund_status: Option<String>,
}

impl RefundQueryResponse {
    /// Whether the refund was made.
    pub fn is_refunded(&self) -> bool {
        self.refund_amount.is_some() || self.refund_status.as_deref() == Some("REFUND_SUCCESS")
    }
}

impl Request for RefundQuery {
    const METHOD: &'static str = "alipay.trade.fastpay.refund.query";
    type Response = RefundQueryResponse;
}
