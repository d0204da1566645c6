//! `alipay.trade.close`: an unpaid trade can no longer be paid.

use serde::{Deserialize, Serialize};

use super::{Request, TradeRef};

/// Closes an unpaid trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeClose {
    #[serde(flatten)]
    trade: TradeRef,
}

impl TradeClose {
    /// The trade `trade`.
    pub fn new(trade: TradeRef) -> Self {
        TradeClose { trade }
    }
}

/// The closed trade.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CloseResponse {
    /// Alipay's number (absent when the trade never reached Alipay's records).
    #[serde(default)]
    pub trade_no: Option<String>,
    /// The merchant's number.
    #[serde(default)]
    pub out_trade_no: Option<String>,
}

impl Request for TradeClose {
    const METHOD: &'static str = "alipay.trade.close";
    type Response = CloseResponse;
}
