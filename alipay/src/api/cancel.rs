//! `alipay.trade.cancel`: reverses a trade whose outcome is unknown — the barcode payment that
//! timed out. Unpaid, Alipay closes it; paid, it refunds the whole amount. Safe to repeat: the
//! answer says whether to call again (`retry_flag`).

use serde::{Deserialize, Serialize};

use super::{Request, TradeRef};

/// Cancels `trade`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeCancel {
    #[serde(flatten)]
    trade: TradeRef,
}

impl TradeCancel {
    /// Cancels `trade`.
    pub fn new(trade: TradeRef) -> Self {
        TradeCancel { trade }
    }
}

/// What cancelling did.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CancelResponse {
    /// Alipay's number (absent when the trade never reached Alipay's records).
    #[serde(default)]
    pub trade_no: Option<String>,
    /// The merchant's number.
    pub out_trade_no: String,
    /// `Y`: not done yet, call cancel again; `N`: done.
    #[serde(default)]
    pub retry_flag: Option<String>,
    /// `close` (it was unpaid), `refund` (it was paid: refunded in full), or absent (nothing
    /// to do).
    #[serde(default)]
    pub action: Option<String>,
}

impl CancelResponse {
    /// Whether Alipay asks to call cancel again.
    pub fn must_retry(&self) -> bool {
        self.retry_flag.as_deref() == Some("Y")
    }
}

impl Request for TradeCancel {
    const METHOD: &'static str = "alipay.trade.cancel";
    type Response = CancelResponse;
}
