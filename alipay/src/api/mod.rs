//! One file per Alipay method. Each request is plain data (`new(required…)` plus setters) that
//! knows its method name, its response type, and the top-level parameters it adds beside
//! `biz_content` (the notify and return URLs); [`crate::Client::execute`] is the one funnel.
//!
//! - [`precreate`] `alipay.trade.precreate` — a QR code the buyer scans.
//! - [`page_pay`] `alipay.trade.page.pay`, `alipay.trade.wap.pay` — a signed URL the browser
//!   opens; `alipay.trade.app.pay` — the order string for the app SDK.
//! - [`pay`] `alipay.trade.pay` — the merchant scans the buyer's code (barcode / face).
//! - [`create`] `alipay.trade.create` — a Mini Program (JSAPI) payment for a known buyer.
//! - [`query`] `alipay.trade.query`, [`close`] `alipay.trade.close`, [`cancel`]
//!   `alipay.trade.cancel` (reverse a trade whose outcome is unknown).
//! - [`refund`] `alipay.trade.refund`, [`refund_query`] `alipay.trade.fastpay.refund.query`.
//! - [`bill`] `alipay.data.dataservice.bill.downloadurl.query` — where a day's bill is.
//! - [`cert_download`] `alipay.open.app.alipaycert.download` — an Alipay certificate by SN.
//! - [`transfer`] `alipay.fund.trans.uni.transfer`, `alipay.fund.trans.common.query` — money to
//!   a user's Alipay account.
//! - [`oauth`] `alipay.system.oauth.token`, `alipay.user.info.share` — buyer login.
//! - [`open_auth`] `alipay.open.auth.token.app` (+ `.query`) — a merchant authorizes a
//!   service provider's app (third-party apps).
//! - [`settle`] `alipay.trade.royalty.relation.bind`, `alipay.trade.order.settle` — settlement
//!   sharing.

pub mod bill;
pub mod cancel;
pub mod cert_download;
pub mod close;
pub mod create;
pub mod oauth;
pub mod open_auth;
pub mod page_pay;
pub mod pay;
pub mod precreate;
pub mod query;
pub mod refund;
pub mod refund_query;
pub mod settle;
pub mod transfer;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

/// A method called through the gateway, whose signed answer is read.
pub trait Request: Serialize + Send + Sync {
    /// Alipay's method name.
    const METHOD: &'static str;
    /// What a successful answer decodes into.
    type Response: DeserializeOwned;
    /// Whether the request sends `biz_content` (the login methods take only top-level
    /// parameters).
    const BIZ_CONTENT: bool = true;

    /// Parameters beside `biz_content` (`notify_url`…).
    fn top_level(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Whether an answer's `code` means it went through (`10000`; a barcode payment also
    /// answers `10003`, "waiting for the buyer").
    fn accepts(code: &str) -> bool {
        code == "10000"
    }
}

/// A method the buyer's browser or the Alipay app carries out: signed here, never posted.
pub trait PageRequest: Serialize {
    /// Alipay's method name.
    fn method(&self) -> &'static str;

    /// Parameters beside `biz_content` (`notify_url`, `return_url`).
    fn top_level(&self) -> Vec<(&'static str, String)>;
}

/// Which trade a query, close or refund is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TradeRef {
    /// The merchant's number.
    #[serde(rename = "out_trade_no")]
    OutTradeNo(String),
    /// Alipay's number.
    #[serde(rename = "trade_no")]
    TradeNo(String),
}

/// Where a trade is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TradeStatus {
    /// Created, not paid yet.
    WaitBuyerPay,
    /// Closed unpaid, or fully refunded.
    TradeClosed,
    /// Paid (refundable).
    TradeSuccess,
    /// Paid and finished (no longer refundable).
    TradeFinished,
    /// A status this crate does not know.
    Other(String),
}

impl TradeStatus {
    /// Reads Alipay's text.
    pub fn parse(s: &str) -> Self {
        match s {
            "WAIT_BUYER_PAY" => TradeStatus::WaitBuyerPay,
            "TRADE_CLOSED" => TradeStatus::TradeClosed,
            "TRADE_SUCCESS" => TradeStatus::TradeSuccess,
            "TRADE_FINISHED" => TradeStatus::TradeFinished,
            other => TradeStatus::Other(other.to_owned()),
        }
    }

    /// Whether the money arrived.
    pub fn is_paid(&self) -> bool {
        matches!(self, TradeStatus::TradeSuccess | TradeStatus::TradeFinished)
    }
}

impl<'de> Deserialize<'de> for TradeStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(TradeStatus::parse(&String::deserialize(d)?))
    }
}

/// `time_expire` as Alipay takes it.
pub(crate) fn expire_text(at: OffsetDateTime) -> String {
    crate::client::china_time(at)
}

/// `("notify_url", …)` and `("return_url", …)` when set.
pub(crate) fn urls(
    notify_url: Option<&String>,
    return_url: Option<&String>,
) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(u) = notify_url {
        v.push(("notify_url", u.clone()));
    }
    if let Some(u) = return_url {
        v.push(("return_url", u.clone()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_refs_and_statuses() {
        assert_eq!(
            serde_json::to_value(TradeRef::OutTradeNo("A1".into())).unwrap(),
            serde_json::json!({"out_trade_no": "A1"})
        );
        assert_eq!(
            serde_json::from_str::<TradeStatus>(r#""TRADE_SUCCESS""#).unwrap(),
            TradeStatus::TradeSuccess
        );
        let odd: TradeStatus = serde_json::from_str(r#""TRADE_PENDING""#).unwrap();
        assert_eq!(odd, TradeStatus::Other("TRADE_PENDING".into()));
        assert!(!odd.is_paid());
        assert!(TradeStatus::TradeFinished.is_paid());
    }
}
