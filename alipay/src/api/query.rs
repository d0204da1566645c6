//! `alipay.trade.query`: where a trade is.

use serde::{Deserialize, Serialize};

use super::{Request, TradeRef, TradeStatus};
use crate::Fen;

/// Asks where a trade is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeQuery {
    #[serde(flatten)]
    trade: TradeRef,
}

impl TradeQuery {
    /// The trade `trade`.
    pub fn new(trade: TradeRef) -> Self {
        TradeQuery { trade }
    }
}

/// A trade.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TradeQueryResponse {
    /// Alipay's number.
    pub trade_no: String,
    /// The merchant's number.
    pub out_trade_no: String,
    /// Where it is.
    pub trade_status: TradeStatus,
    /// The amount.
    #[serde(with = "pay_money::yuan")]
    pub total_amount: Fen,
    /// What the buyer paid, once paid.
    #[serde(default, with = "pay_money::yuan::option")]
    pub buyer_pay_amount: Option<Fen>,
    /// The buyer's masked login.
    #[serde(default)]
    pub buyer_logon_id: Option<String>,
    /// The buyer's Alipay user id, once paid.
    #[serde(default)]
    pub buyer_user_id: Option<String>,
    /// The buyer's open id for this app, once paid (apps on open ids).
    #[serde(default)]
    pub buyer_open_id: Option<String>,
    /// When it was paid (`yyyy-MM-dd HH:mm:ss`, China time).
    #[serde(default)]
    pub send_pay_date: Option<String>,
}

impl Request for TradeQuery {
    const METHOD: &'static str = "alipay.trade.query";
    type Response = TradeQueryResponse;
}
