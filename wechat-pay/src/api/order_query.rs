//! `/pay/orderquery`: the state of an order, by merchant or WeChat order number.

use super::{Endpoint, FromReply, Request};
use crate::types::flag;
use crate::{Coupon, Error, Fen, OrderId, Params, TradeState, TradeType};

/// An order query.
///
/// ```
/// use wechat_pay::{OrderId, OrderQuery};
/// let q = OrderQuery::new(OrderId::OutTradeNo("20240101000001".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    order: OrderId,
}

impl OrderQuery {
    /// Queries `order`.
    pub fn new(order: OrderId) -> Self {
        OrderQuery { order }
    }
}

impl Endpoint for OrderQuery {
    const PATH: &'static str = "/pay/orderquery";

    fn write_params(&self, p: &mut Params) {
        self.order.write(p);
    }
}

impl Request for OrderQuery {
    type Response = OrderQueryResponse;
}

/// The state of an order. Fields that only exist once paid are `Option`s.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderQueryResponse {
    /// `trade_state`: a value, never an error (NOTPAY, CLOSED… are normal answers).
    pub trade_state: TradeState,
    /// `trade_state_desc`.
    pub trade_state_desc: Option<String>,
    /// `out_trade_no`.
    pub out_trade_no: Option<String>,
    /// `transaction_id` (once paid).
    pub transaction_id: Option<String>,
    /// `openid` (once paid).
    pub open_id: Option<String>,
    /// `is_subscribe`.
    pub is_subscribe: Option<bool>,
    /// `trade_type`.
    pub trade_type: Option<TradeType>,
    /// `bank_type`.
    pub bank_type: Option<String>,
    /// `total_fee`: the order amount.
    pub total_fee: Option<Fen>,
    /// `settlement_total_fee`: the amount due after non-cash coupons.
    pub settlement_total_fee: Option<Fen>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `cash_fee`: what the payer paid in cash.
    pub cash_fee: Option<Fen>,
    /// `cash_fee_type`.
    pub cash_fee_type: Option<String>,
    /// `coupon_fee`.
    pub coupon_fee: Option<Fen>,
    /// `coupon_*_$n`.
    pub coupons: Vec<Coupon>,
    /// `attach`.
    pub attach: Option<String>,
    /// `time_end` (`yyyyMMddHHmmss`, UTC+8).
    pub time_end: Option<String>,
    /// `device_info`.
    pub device_info: Option<String>,
}

impl FromReply for OrderQueryResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        Ok(OrderQueryResponse {
            trade_state: p.required_parse("trade_state")?,
            trade_state_desc: p.optional_string("trade_state_desc"),
            out_trade_no: p.optional_string("out_trade_no"),
            transaction_id: p.optional_string("transaction_id"),
            open_id: p.optional_string("openid"),
            is_subscribe: flag(&p, "is_subscribe"),
            trade_type: p.optional_parse("trade_type")?,
            bank_type: p.optional_string("bank_type"),
            total_fee: p.optional_fen("total_fee")?,
            settlement_total_fee: p.optional_fen("settlement_total_fee")?,
            fee_type: p.optional_string("fee_type"),
            cash_fee: p.optional_fen("cash_fee")?,
            cash_fee_type: p.optional_string("cash_fee_type"),
            coupon_fee: p.optional_fen("coupon_fee")?,
            coupons: Coupon::read_all(&p)?,
            attach: p.optional_string("attach"),
            time_end: p.optional_string("time_end"),
            device_info: p.optional_string("device_info"),
        })
    }
}
