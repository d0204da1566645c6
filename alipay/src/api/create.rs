//! `alipay.trade.create`: a trade for a buyer already known — the Alipay Mini Program's and
//! in-app JSAPI payments. The answer's `trade_no` is handed to the Mini Program, which opens the
//! cashier with `my.tradePay({ tradeNO })`; the result arrives as the usual notification.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Request, expire_text, urls};
use crate::Fen;

/// Who pays: the buyer's Alipay user id (`2088…`) or, for apps on open ids, their open id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Buyer {
    /// `buyer_id`: the buyer's Alipay user id.
    #[serde(rename = "buyer_id")]
    UserId(String),
    /// `buyer_open_id`: the buyer's open id for this app.
    #[serde(rename = "buyer_open_id")]
    OpenId(String),
}

/// A Mini Program (JSAPI) payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeCreate {
    out_trade_no: String,
    #[serde(with = "pay_money::yuan")]
    total_amount: Fen,
    subject: String,
    #[serde(flatten)]
    buyer: Buyer,
    product_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    op_app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip)]
    notify_url: Option<String>,
}

impl TradeCreate {
    /// A payment of `total_amount` for `subject` by `buyer`, numbered `out_trade_no`.
    pub fn new(
        out_trade_no: impl Into<String>,
        total_amount: Fen,
        subject: impl Into<String>,
        buyer: Buyer,
    ) -> Self {
        TradeCreate {
            out_trade_no: out_trade_no.into(),
            total_amount,
            subject: subject.into(),
            buyer,
            product_code: "JSAPI_PAY",
            op_app_id: None,
            time_expire: None,
            body: None,
            notify_url: None,
        }
    }

    /// Where Alipay sends the payment notification.
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }

    /// The Mini Program's app id, when the trade is created by another app of the merchant.
    pub fn op_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.op_app_id = Some(app_id.into());
        self
    }

    /// When the trade can no longer be paid.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.time_expire = Some(expire_text(at));
        self
    }

    /// A description.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// The trade: its `trade_no` is what the Mini Program pays (`my.tradePay({ tradeNO })`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CreateResponse {
    /// The merchant's number.
    pub out_trade_no: String,
    /// Alipay's number: the Mini Program's `tradeNO`.
    pub trade_no: String,
}

impl Request for TradeCreate {
    const METHOD: &'static str = "alipay.trade.create";
    type Response = CreateResponse;

    fn top_level(&self) -> Vec<(&'static str, String)> {
        urls(self.notify_url.as_ref(), None)
    }
}
