//! The payments the buyer's side carries out, signed here and never posted by the merchant:
//! `alipay.trade.page.pay` (desktop checkout, a URL the browser opens), `alipay.trade.wap.pay`
//! (mobile-web checkout, likewise) and `alipay.trade.app.pay` (the order string the Alipay app
//! SDK takes). They share their fields; [`Product`] says which.

use serde::Serialize;
use time::OffsetDateTime;

use super::{PageRequest, expire_text, urls};
use crate::Fen;

/// Which checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `alipay.trade.page.pay` (`FAST_INSTANT_TRADE_PAY`): [`crate::Client::page_url`].
    Desktop,
    /// `alipay.trade.wap.pay` (`QUICK_WAP_WAY`): [`crate::Client::page_url`].
    MobileWeb,
    /// `alipay.trade.app.pay` (`QUICK_MSECURITY_PAY`): [`crate::Client::order_string`].
    App,
}

impl Product {
    fn method(self) -> &'static str {
        match self {
            Product::Desktop => "alipay.trade.page.pay",
            Product::MobileWeb => "alipay.trade.wap.pay",
            Product::App => "alipay.trade.app.pay",
        }
    }

    fn code(self) -> &'static str {
        match self {
            Product::Desktop => "FAST_INSTANT_TRADE_PAY",
            Product::MobileWeb => "QUICK_WAP_WAY",
            Product::App => "QUICK_MSECURITY_PAY",
        }
    }
}

/// A payment the buyer completes in a browser or the Alipay app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradePagePay {
    out_trade_no: String,
    #[serde(with = "pay_money::yuan")]
    total_amount: Fen,
    subject: String,
    product_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expire: Option<String>,
    #[serde(skip)]
    product: Product,
    #[serde(skip)]
    notify_url: Option<String>,
    #[serde(skip)]
    return_url: Option<String>,
}

impl TradePagePay {
    /// A `product` payment of `total_amount` for `subject`, numbered `out_trade_no`.
    pub fn new(
        product: Product,
        out_trade_no: impl Into<String>,
        total_amount: Fen,
        subject: impl Into<String>,
    ) -> Self {
        TradePagePay {
            out_trade_no: out_trade_no.into(),
            total_amount,
            subject: subject.into(),
            product_code: product.code(),
            time_expire: None,
            product,
            notify_url: None,
            return_url: None,
        }
    }

    /// Where Alipay sends the payment notification.
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }

    /// Where the browser returns after paying (desktop and mobile web).
    pub fn return_url(mut self, url: impl Into<String>) -> Self {
        self.return_url = Some(url.into());
        self
    }

    /// When it can no longer be paid.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.time_expire = Some(expire_text(at));
        self
    }
}

impl PageRequest for TradePagePay {
    fn method(&self) -> &'static str {
        self.product.method()
    }

    fn top_level(&self) -> Vec<(&'static str, String)> {
        urls(self.notify_url.as_ref(), self.return_url.as_ref())
    }
}
