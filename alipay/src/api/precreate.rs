//! `alipay.trade.precreate`: a QR code the buyer scans with the Alipay app.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Request, expire_text, urls};
use crate::Fen;

/// A QR-code payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradePrecreate {
    out_trade_no: String,
    #[serde(with = "pay_money::yuan")]
    total_amount: Fen,
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip)]
    notify_url: Option<String>,
}

impl TradePrecreate {
    /// A payment of `total_amount` for `subject`, numbered `out_trade_no` by the merchant.
    pub fn new(
        out_trade_no: impl Into<String>,
        total_amount: Fen,
        subject: impl Into<String>,
    ) -> Self {
        TradePrecreate {
            out_trade_no: out_trade_no.into(),
            total_amount,
            subject: subject.into(),
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

    /// When the QR code can no longer be paid.
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

/// The QR code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PrecreateResponse {
    /// The merchant's number.
    pub out_trade_no: String,
    /// The QR code's content.
    pub qr_code: String,
}

impl Request for TradePrecreate {
    const METHOD: &'static str = "alipay.trade.precreate";
    type Response = PrecreateResponse;

    fn top_level(&self) -> Vec<(&'static str, String)> {
        urls(self.notify_url.as_ref(), None)
    }
}
