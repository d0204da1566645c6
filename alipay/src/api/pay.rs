//! `alipay.trade.pay`: the merchant scans the buyer's payment code (or face). The answer is
//! final (`10000`), or "waiting for the buyer" (`10003`: query until it is paid or close it).

use serde::{Deserialize, Serialize};

use super::{Request, urls};
use crate::Fen;

/// A payment by the buyer's code. `Debug` masks the code.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TradePay {
    out_trade_no: String,
    scene: &'static str,
    auth_code: String,
    #[serde(with = "pay_money::yuan")]
    total_amount: Fen,
    subject: String,
    #[serde(skip)]
    notify_url: Option<String>,
}

impl std::fmt::Debug for TradePay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TradePay")
            .field("out_trade_no", &self.out_trade_no)
            .field("scene", &self.scene)
            .field("auth_code", &"***")
            .field("total_amount", &self.total_amount)
            .field("subject", &self.subject)
            .finish()
    }
}

impl TradePay {
    /// Takes `total_amount` for `subject` with the buyer's barcode `auth_code`.
    pub fn new(
        out_trade_no: impl Into<String>,
        auth_code: impl Into<String>,
        total_amount: Fen,
        subject: impl Into<String>,
    ) -> Self {
        TradePay {
            out_trade_no: out_trade_no.into(),
            scene: "bar_code",
            auth_code: auth_code.into(),
            total_amount,
            subject: subject.into(),
            notify_url: None,
        }
    }

    /// Where Alipay sends the notification (for payments that wait for the buyer).
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }
}

/// The payment, or that it waits for the buyer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PayResponse {
    /// `10000` paid, `10003` waiting for the buyer to confirm.
    pub code: String,
    /// Alipay's number.
    #[serde(default)]
    pub trade_no: Option<String>,
    /// The merchant's number.
    pub out_trade_no: String,
    /// The amount.
    #[serde(default, with = "pay_money::yuan::option")]
    pub total_amount: Option<Fen>,
    /// What the buyer paid.
    #[serde(default, with = "pay_money::yuan::option")]
    pub buyer_pay_amount: Option<Fen>,
    /// The buyer's masked login.
    #[serde(default)]
    pub buyer_logon_id: Option<String>,
}

impl PayResponse {
    /// Whether the money arrived (otherwise: waiting for the buyer).
    pub fn is_paid(&self) -> bool {
        self.code == "10000"
    }
}

impl Request for TradePay {
    const METHOD: &'static str = "alipay.trade.pay";
    type Response = PayResponse;

    fn top_level(&self) -> Vec<(&'static str, String)> {
        urls(self.notify_url.as_ref(), None)
    }

    fn accepts(code: &str) -> bool {
        code == "10000" || code == "10003"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_buyers_code() {
        let pay = TradePay::new("T1", "281234567890123456", Fen::new(100), "Cola");
        assert!(!format!("{pay:?}").contains("281234567890123456"));
    }
}
