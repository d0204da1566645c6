//! Combined payments (合单支付, `/v3/combine-transactions/…`): one payment by the payer for
//! several orders (sub-orders), each of its own merchant and number, paid, queried and closed
//! together; each sub-order is then refunded as an order of its own (`CreateRefund` with the
//! sub-order's `out_trade_no`). The notification's resource is a [`CombineTransaction`]
//! ([`Notification::Combine`](crate::v3::Notification::Combine)).
//!
//! ```no_run
//! # async fn pay(client: wechat_pay::v3::Client) -> Result<(), wechat_pay::Error> {
//! use wechat_pay::Fen;
//! use wechat_pay::v3::{CombineKind, CombineOrder, SubOrder};
//!
//! let order = CombineOrder::new("wxd678efh567hg6787", "C20261207001", "https://shop.example/notify")
//!     .sub_order(SubOrder::new("1900000109", "S1", Fen::new(300), "Cola"))
//!     .sub_order(SubOrder::new("1900000109", "S2", Fen::new(200), "Chips"));
//! let qr = client.execute(&order.kind(CombineKind::Native)).await?;
//! # let _ = qr; Ok(()) }
//! ```

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::segment;
use super::transactions::{NoContent, TradeState};
use crate::Fen;
use crate::v3::Request;

/// One order of a combined payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubOrder {
    /// Its merchant.
    pub mchid: String,
    /// Its number (unique for its merchant).
    pub out_trade_no: String,
    /// Its amount.
    pub amount: Fen,
    /// What it sells.
    pub description: String,
    /// Business data returned as is.
    pub attach: String,
    /// Hold the money for profit sharing.
    pub profit_sharing: bool,
}

impl SubOrder {
    /// `amount` for `description`, order `out_trade_no` of merchant `mchid`.
    pub fn new(
        mchid: impl Into<String>,
        out_trade_no: impl Into<String>,
        amount: Fen,
        description: impl Into<String>,
    ) -> Self {
        SubOrder {
            mchid: mchid.into(),
            out_trade_no: out_trade_no.into(),
            amount,
            description: description.into(),
            attach: String::new(),
            profit_sharing: false,
        }
    }

    fn body(&self) -> Value {
        let mut b = json!({
            "mchid": self.mchid,
            "out_trade_no": self.out_trade_no,
            "amount": {"total_amount": self.amount, "currency": "CNY"},
            "description": self.description,
            "attach": self.attach,
        });
        if self.profit_sharing {
            b["settle_info"] = json!({"profit_sharing": true});
        }
        b
    }
}

/// How the payer pays a combined payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CombineKind {
    /// In WeChat (an Official Account page or a Mini Program): the payer's openid under the
    /// combined app id.
    Jsapi {
        /// The payer.
        openid: String,
    },
    /// A QR code.
    Native,
    /// A mobile app.
    App,
    /// A mobile browser outside WeChat.
    H5 {
        /// The payer's IP address.
        payer_client_ip: String,
    },
}

/// A combined payment to create: `POST /v3/combine-transactions/{jsapi,native,app,h5}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CombineOrder {
    /// The app the payer pays in.
    pub combine_appid: String,
    /// The combined payment's number.
    pub combine_out_trade_no: String,
    /// The orders (2 to 50 for WeChat; at least 1 here).
    pub sub_orders: Vec<SubOrder>,
    /// Where WeChat notifies.
    pub notify_url: String,
    /// When it expires.
    pub time_expire: Option<time::OffsetDateTime>,
    /// How the payer pays ([`CombineOrder::kind`]).
    pub kind: CombineKind,
}

impl CombineOrder {
    /// A combined payment `combine_out_trade_no` in app `combine_appid` (a Native QR code until
    /// [`kind`](Self::kind) says otherwise).
    pub fn new(
        combine_appid: impl Into<String>,
        combine_out_trade_no: impl Into<String>,
        notify_url: impl Into<String>,
    ) -> Self {
        CombineOrder {
            combine_appid: combine_appid.into(),
            combine_out_trade_no: combine_out_trade_no.into(),
            sub_orders: Vec::new(),
            notify_url: notify_url.into(),
            time_expire: None,
            kind: CombineKind::Native,
        }
    }

    /// With another order.
    pub fn sub_order(mut self, order: SubOrder) -> Self {
        self.sub_orders.push(order);
        self
    }

    /// Paid this way.
    pub fn kind(mut self, kind: CombineKind) -> Self {
        self.kind = kind;
        self
    }

    /// The total of its orders.
    pub fn total(&self) -> Fen {
        self.sub_orders
            .iter()
            .fold(Fen::ZERO, |sum, o| sum.checked_add(o.amount).unwrap_or(sum))
    }
}

/// What creating a combined payment answers: the field of its kind (`prepay_id`, `code_url`,
/// `h5_url`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CombineCreated {
    /// JSAPI / Mini Program / APP: what the front-end parameters are made from.
    #[serde(default)]
    pub prepay_id: Option<String>,
    /// Native: the QR code's content.
    #[serde(default)]
    pub code_url: Option<String>,
    /// H5: where to send the browser.
    #[serde(default)]
    pub h5_url: Option<String>,
}

impl Request for CombineOrder {
    type Response = CombineCreated;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        let kind = match self.kind {
            CombineKind::Jsapi { .. } => "jsapi",
            CombineKind::Native => "native",
            CombineKind::App => "app",
            CombineKind::H5 { .. } => "h5",
        };
        format!("/v3/combine-transactions/{kind}")
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        let mut b = json!({
            "combine_appid": self.combine_appid,
            "combine_mchid": mch_id,
            "combine_out_trade_no": self.combine_out_trade_no,
            "sub_orders": self.sub_orders.iter().map(SubOrder::body).collect::<Vec<_>>(),
            "notify_url": self.notify_url,
        });
        match &self.kind {
            CombineKind::Jsapi { openid } => b["combine_payer_info"] = json!({"openid": openid}),
            CombineKind::H5 { payer_client_ip } => {
                b["scene_info"] =
                    json!({"payer_client_ip": payer_client_ip, "h5_info": {"type": "Wap"}});
            }
            CombineKind::Native | CombineKind::App => {}
        }
        if let Some(at) = self.time_expire {
            let at =
                at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
            if let Ok(text) = at.format(&time::format_description::well_known::Rfc3339) {
                b["time_expire"] = json!(text);
            }
        }
        Some(b)
    }
}

/// A sub-order as WeChat reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CombineSubOrder {
    /// Its merchant.
    pub mchid: String,
    /// Its number.
    pub out_trade_no: String,
    /// Where it is.
    pub trade_state: TradeState,
    /// WeChat's id, once paid.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `JSAPI`, `NATIVE`…
    #[serde(default)]
    pub trade_type: Option<String>,
    /// The payer's bank, once paid.
    #[serde(default)]
    pub bank_type: Option<String>,
    /// When paid.
    #[serde(default)]
    pub success_time: Option<String>,
    /// Its amount: `total_amount` (and `payer_amount` once paid), in fen.
    pub amount: CombineAmount,
    /// `attach`.
    #[serde(default)]
    pub attach: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A sub-order's amount.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CombineAmount {
    /// The order's amount.
    pub total_amount: Fen,
    /// What the payer paid.
    #[serde(default)]
    pub payer_amount: Option<Fen>,
    /// `CNY`.
    #[serde(default)]
    pub currency: Option<String>,
}

/// A combined payment as WeChat has it (a query's answer, a notification's resource).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct CombineTransaction {
    /// The app.
    pub combine_appid: String,
    /// The merchant that made it.
    pub combine_mchid: String,
    /// Its number.
    pub combine_out_trade_no: String,
    /// Its orders.
    #[serde(default)]
    pub sub_orders: Vec<CombineSubOrder>,
    /// The payer.
    #[serde(default)]
    pub combine_payer_info: Option<Value>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CombineTransaction {
    /// Whether every order is paid.
    pub fn is_paid(&self) -> bool {
        !self.sub_orders.is_empty() && self.sub_orders.iter().all(|o| o.trade_state.is_paid())
    }
}

/// `GET /v3/combine-transactions/out-trade-no/{combine_out_trade_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCombine(pub String);

impl Request for QueryCombine {
    type Response = CombineTransaction;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        format!("/v3/combine-transactions/out-trade-no/{}", segment(&self.0))
    }
}

/// `POST /v3/combine-transactions/out-trade-no/{combine_out_trade_no}/close` (204): closes every
/// order of an unpaid combined payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseCombine {
    /// The app.
    pub combine_appid: String,
    /// The combined payment.
    pub combine_out_trade_no: String,
    /// Its orders: `(mchid, out_trade_no)`.
    pub sub_orders: Vec<(String, String)>,
}

impl Request for CloseCombine {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/combine-transactions/out-trade-no/{}/close",
            segment(&self.combine_out_trade_no)
        )
    }
    fn body(&self, _: &str) -> Option<Value> {
        Some(json!({
            "combine_appid": self.combine_appid,
            "sub_orders": self
                .sub_orders
                .iter()
                .map(|(mchid, no)| json!({"mchid": mchid, "out_trade_no": no}))
                .collect::<Vec<_>>(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_combined_order_names_each_sub_order_and_its_kind() {
        let order = CombineOrder::new("wxapp", "C1", "https://n")
            .sub_order(SubOrder::new("1900", "S1", Fen::new(300), "Cola"))
            .sub_order(SubOrder::new("1900", "S2", Fen::new(200), "Chips"))
            .kind(CombineKind::Jsapi {
                openid: "o1".into(),
            });
        assert_eq!(order.total(), Fen::new(500));
        assert_eq!(order.path("1900"), "/v3/combine-transactions/jsapi");
        let b = order.body("1900").unwrap_or_default();
        assert_eq!(b["combine_mchid"], "1900");
        assert_eq!(b["sub_orders"][1]["amount"]["total_amount"], 200);
        assert_eq!(b["combine_payer_info"]["openid"], "o1");
    }
}
