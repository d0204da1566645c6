//! Payments: create (JSAPI / Mini Program, Native, APP, H5), query, close.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::segment;
use crate::Fen;
pub use crate::TradeState;
use crate::v3::Request;

/// An amount in fen, in a currency (`CNY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Amount {
    /// The order amount.
    pub total: Fen,
    /// What the payer paid (after discounts), in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<Fen>,
    /// `CNY`.
    #[serde(default = "cny")]
    pub currency: String,
    /// The payer's currency, in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_currency: Option<String>,
}

fn cny() -> String {
    "CNY".to_owned()
}

/// Who pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payer {
    /// The payer's openid under the order's app id (`sp_openid` in partner mode, under the
    /// service provider's app).
    #[serde(default, alias = "sp_openid")]
    pub openid: String,
    /// Partner mode: the payer's openid under the sub-merchant's app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_openid: Option<String>,
}

/// What every order carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrderRequest {
    /// The app id (Official Account, Mini Program, mobile app).
    pub app_id: String,
    /// What is bought (≤ 127 characters).
    pub description: String,
    /// The merchant's order number (6–32 characters).
    pub out_trade_no: String,
    /// The amount, in fen of CNY.
    pub total: Fen,
    /// Where WeChat notifies (https).
    pub notify_url: String,
    /// When the order expires (RFC 3339).
    pub time_expire: Option<time::OffsetDateTime>,
    /// Business data returned as is.
    pub attach: Option<String>,
    /// Service-provider (partner) mode: the sub-merchant the order is for (the client's
    /// merchant is the service provider, `sp_mchid`; `app_id` is then `sp_appid`).
    pub partner: Option<Partner>,
    /// Freeze the money for profit sharing (`settle_info.profit_sharing`): it is shared with
    /// [`CreateSharing`](super::CreateSharing) or unfrozen later, not settled at once.
    pub profit_sharing: bool,
}

/// A sub-merchant, for service-provider (partner) mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// `sub_mchid`.
    pub sub_mchid: String,
    /// `sub_appid`: the sub-merchant's own app, when the payer's openid is under it.
    pub sub_appid: Option<String>,
}

impl Partner {
    /// The sub-merchant `sub_mchid`.
    pub fn new(sub_mchid: impl Into<String>) -> Self {
        Partner {
            sub_mchid: sub_mchid.into(),
            sub_appid: None,
        }
    }

    /// The sub-merchant's app (the payer's openid is then a `sub_openid`).
    pub fn sub_appid(mut self, app_id: impl Into<String>) -> Self {
        self.sub_appid = Some(app_id.into());
        self
    }
}

impl OrderRequest {
    /// An order with the required fields.
    pub fn new(
        app_id: impl Into<String>,
        description: impl Into<String>,
        out_trade_no: impl Into<String>,
        total: Fen,
        notify_url: impl Into<String>,
    ) -> Self {
        OrderRequest {
            app_id: app_id.into(),
            description: description.into(),
            out_trade_no: out_trade_no.into(),
            total,
            notify_url: notify_url.into(),
            time_expire: None,
            attach: None,
            partner: None,
            profit_sharing: false,
        }
    }

    /// Freezes the money for profit sharing (`settle_info.profit_sharing = true`).
    pub fn profit_sharing(mut self) -> Self {
        self.profit_sharing = true;
        self
    }

    /// For a sub-merchant (service-provider mode).
    pub fn for_sub_merchant(mut self, partner: Partner) -> Self {
        self.partner = Some(partner);
        self
    }

    /// The path of this order's kind (`jsapi`, `native`…), direct or partner.
    fn path(&self, kind: &str) -> String {
        if self.partner.is_some() {
            format!("/v3/pay/partner/transactions/{kind}")
        } else {
            format!("/v3/pay/transactions/{kind}")
        }
    }

    /// The payer object for `openid` (`sub_openid` under a sub-merchant's own app).
    fn payer(&self, openid: &str) -> Value {
        match &self.partner {
            Some(Partner {
                sub_appid: Some(_), ..
            }) => json!({"sub_openid": openid}),
            Some(_) => json!({"sp_openid": openid}),
            None => json!({"openid": openid}),
        }
    }

    /// The expiry.
    pub fn time_expire(mut self, at: time::OffsetDateTime) -> Self {
        self.time_expire = Some(at);
        self
    }

    pub(super) fn body(&self, mch_id: &str) -> Value {
        let mut body = accounts(&self.app_id, mch_id, self.partner.as_ref());
        for (k, v) in [
            ("description", json!(self.description)),
            ("out_trade_no", json!(self.out_trade_no)),
            ("notify_url", json!(self.notify_url)),
            ("amount", json!({"total": self.total, "currency": "CNY"})),
        ] {
            body[k] = v;
        }
        if let Some(at) = self.time_expire {
            let at =
                at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
            if let Ok(text) = at.format(&time::format_description::well_known::Rfc3339) {
                body["time_expire"] = json!(text);
            }
        }
        if let Some(a) = &self.attach {
            body["attach"] = json!(a);
        }
        if self.profit_sharing {
            body["settle_info"] = json!({"profit_sharing": true});
        }
        body
    }
}

/// The accounts of a request body: `appid` and `mchid`, or for a sub-merchant `sp_appid`,
/// `sp_mchid`, `sub_mchid` (and `sub_appid`).
pub(super) fn accounts(app_id: &str, mch_id: &str, partner: Option<&Partner>) -> Value {
    match partner {
        None => json!({"appid": app_id, "mchid": mch_id}),
        Some(p) => {
            let mut b = json!({"sp_appid": app_id, "sp_mchid": mch_id, "sub_mchid": p.sub_mchid});
            if let Some(sub_appid) = &p.sub_appid {
                b["sub_appid"] = json!(sub_appid);
            }
            b
        }
    }
}

/// `POST /v3/pay/transactions/jsapi`: an Official Account (JSAPI) or Mini Program payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiOrder {
    /// The order.
    pub order: OrderRequest,
    /// The payer's openid under the order's app id.
    pub openid: String,
}

/// A prepay id (JSAPI, Mini Program, APP): what the front-end parameters are made from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrepayId {
    /// `prepay_id` (valid two hours).
    pub prepay_id: String,
}

impl Request for JsapiOrder {
    type Response = PrepayId;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        self.order.path("jsapi")
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        let mut body = self.order.body(mch_id);
        body["payer"] = self.order.payer(&self.openid);
        Some(body)
    }
}

/// `POST /v3/pay/transactions/native`: a QR code to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeOrder(pub OrderRequest);

/// The QR code content of a Native order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CodeUrl {
    /// `code_url` (`weixin://wxpay/bizpayurl?pr=…`).
    pub code_url: String,
}

impl Request for NativeOrder {
    type Response = CodeUrl;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        self.0.path("native")
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        Some(self.0.body(mch_id))
    }
}

/// `POST /v3/pay/transactions/app`: a mobile app payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOrder(pub OrderRequest);

impl Request for AppOrder {
    type Response = PrepayId;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        self.0.path("app")
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        Some(self.0.body(mch_id))
    }
}

/// `POST /v3/pay/transactions/h5`: a payment in a mobile browser outside WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H5Order {
    /// The order.
    pub order: OrderRequest,
    /// The payer's IP address.
    pub payer_client_ip: String,
    /// `Wap`, `iOS` or `Android`.
    pub h5_type: String,
}

/// Where to send the payer's browser.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct H5Url {
    /// `h5_url`.
    pub h5_url: String,
}

impl Request for H5Order {
    type Response = H5Url;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        self.order.path("h5")
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        let mut body = self.order.body(mch_id);
        body["scene_info"] = json!({
            "payer_client_ip": self.payer_client_ip,
            "h5_info": {"type": self.h5_type},
        });
        Some(body)
    }
}

/// The answer of an endpoint that answers 204 No Content (any body is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoContent;

impl<'de> Deserialize<'de> for NoContent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| NoContent)
    }
}

/// Which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionRef {
    /// By the merchant's number.
    OutTradeNo(String),
    /// By WeChat's transaction id.
    TransactionId(String),
}

/// `GET /v3/pay/transactions/out-trade-no/{no}` or `…/id/{transaction_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTransaction(pub TransactionRef);

/// A discount applied to a payment (`promotion_detail[]`): a coupon, what it took off, and who
/// paid for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Promotion {
    /// The coupon's id.
    pub coupon_id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// `GLOBAL` (the whole order) or `SINGLE` (some goods).
    #[serde(default)]
    pub scope: Option<String>,
    /// `CASH` (paid for by its funder) or `NOCASH` (a discount the merchant gives).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// What it took off.
    pub amount: Fen,
    /// The stock (batch) it came from.
    #[serde(default)]
    pub stock_id: Option<String>,
    /// Paid for by WeChat Pay.
    #[serde(default)]
    pub wechatpay_contribute: Option<Fen>,
    /// Paid for by the merchant.
    #[serde(default)]
    pub merchant_contribute: Option<Fen>,
    /// Paid for by others.
    #[serde(default)]
    pub other_contribute: Option<Fen>,
    /// `CNY`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The goods it covered (`SINGLE`).
    #[serde(default)]
    pub goods_detail: Vec<PromotionGoods>,
    /// Every other field WeChat sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// Goods a coupon covered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PromotionGoods {
    /// The goods' id.
    pub goods_id: String,
    /// How many.
    #[serde(default)]
    pub quantity: u32,
    /// The unit price.
    #[serde(default)]
    pub unit_price: Fen,
    /// What the coupon took off them.
    #[serde(default)]
    pub discount_amount: Fen,
    /// The merchant's note.
    #[serde(default)]
    pub goods_remark: Option<String>,
}

/// An order as WeChat Pay has it (a query's answer, a payment notification's resource): every
/// field WeChat documents, and the ones it does not in [`Transaction::other`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Transaction {
    /// `appid` (`sp_appid` in partner mode).
    #[serde(default, alias = "sp_appid")]
    pub appid: String,
    /// `mchid` (`sp_mchid` in partner mode).
    #[serde(default, alias = "sp_mchid")]
    pub mchid: String,
    /// `sub_mchid` (partner mode).
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// `sub_appid` (partner mode, when the sub-merchant's app was used).
    #[serde(default)]
    pub sub_appid: Option<String>,
    /// The merchant's number.
    pub out_trade_no: String,
    /// WeChat's id, once paid.
    #[serde(default)]
    pub transaction_id: Option<String>,
    /// `JSAPI`, `NATIVE`, `APP`, `MWEB`…, once paid.
    #[serde(default)]
    pub trade_type: Option<String>,
    /// Where it is.
    pub trade_state: TradeState,
    /// In words.
    #[serde(default)]
    pub trade_state_desc: String,
    /// When paid (RFC 3339).
    #[serde(default)]
    pub success_time: Option<String>,
    /// The payer.
    #[serde(default)]
    pub payer: Option<Payer>,
    /// The amount (in fen of its currency).
    #[serde(default)]
    pub amount: Option<Amount>,
    /// `attach`.
    #[serde(default)]
    pub attach: Option<String>,
    /// The payer's bank (`OTHERS`, `CMC`, `ICBC_DEBIT`…), once paid.
    #[serde(default)]
    pub bank_type: Option<String>,
    /// The scene the order named (`device_id`…), as sent.
    #[serde(default)]
    pub scene_info: Option<Value>,
    /// The discounts applied (coupons, with who paid for them and the goods they covered).
    #[serde(default)]
    pub promotion_detail: Vec<Promotion>,
    /// Every other field WeChat sent (kept: WeChat adds fields without notice).
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

impl Request for QueryTransaction {
    type Response = Transaction;
    const METHOD: &'static str = "GET";
    fn path(&self, mch_id: &str) -> String {
        match &self.0 {
            TransactionRef::OutTradeNo(no) => format!(
                "/v3/pay/transactions/out-trade-no/{}?mchid={}",
                segment(no),
                segment(mch_id)
            ),
            TransactionRef::TransactionId(id) => format!(
                "/v3/pay/transactions/id/{}?mchid={}",
                segment(id),
                segment(mch_id)
            ),
        }
    }
}

/// `GET /v3/pay/partner/transactions/out-trade-no/{no}?sp_mchid=…&sub_mchid=…` (or `…/id/…`):
/// a sub-merchant's order (service-provider mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerQueryTransaction {
    /// Which order.
    pub by: TransactionRef,
    /// The sub-merchant.
    pub sub_mchid: String,
}

impl Request for PartnerQueryTransaction {
    type Response = Transaction;
    const METHOD: &'static str = "GET";
    fn path(&self, mch_id: &str) -> String {
        let (kind, no) = match &self.by {
            TransactionRef::OutTradeNo(no) => ("out-trade-no", no),
            TransactionRef::TransactionId(id) => ("id", id),
        };
        format!(
            "/v3/pay/partner/transactions/{kind}/{}?sp_mchid={}&sub_mchid={}",
            segment(no),
            segment(mch_id),
            segment(&self.sub_mchid)
        )
    }
}

/// `POST /v3/pay/partner/transactions/out-trade-no/{no}/close` (answers 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerCloseTransaction {
    /// The merchant's number.
    pub out_trade_no: String,
    /// The sub-merchant.
    pub sub_mchid: String,
}

impl Request for PartnerCloseTransaction {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/pay/partner/transactions/out-trade-no/{}/close",
            segment(&self.out_trade_no)
        )
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        Some(json!({"sp_mchid": mch_id, "sub_mchid": self.sub_mchid}))
    }
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/close` (answers 204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseTransaction {
    /// The merchant's number.
    pub out_trade_no: String,
}

impl Request for CloseTransaction {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            segment(&self.out_trade_no)
        )
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        Some(json!({"mchid": mch_id}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_keeps_every_field_documented_or_not() {
        let t: Transaction = serde_json::from_value(json!({
            "appid": "wxd678efh567hg6787", "mchid": "1230000109",
            "out_trade_no": "1217752501201407033233368018",
            "transaction_id": "1217752501201407033233368018",
            "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
            "bank_type": "CMC", "success_time": "2018-06-08T10:34:56+08:00",
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": 100, "payer_total": 90, "currency": "CNY", "payer_currency": "CNY"},
            "scene_info": {"device_id": "013467007045764"},
            "promotion_detail": [{"coupon_id": "109519", "amount": 10, "type": "CASH",
                "scope": "SINGLE", "wechatpay_contribute": 10, "merchant_contribute": 0,
                "goods_detail": [{"goods_id": "cola", "quantity": 1, "unit_price": 100,
                                  "discount_amount": 10}],
                "a_coupon_field_from_next_year": true}],
            "a_field_from_next_year": {"x": 1},
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.bank_type.as_deref(), Some("CMC"));
        assert_eq!(
            t.scene_info.as_ref().map(|s| &s["device_id"]),
            Some(&json!("013467007045764"))
        );
        let coupon = &t.promotion_detail[0];
        assert_eq!(
            (
                coupon.coupon_id.as_str(),
                coupon.amount,
                coupon.kind.as_deref()
            ),
            ("109519", Fen::new(10), Some("CASH"))
        );
        assert_eq!(coupon.wechatpay_contribute, Some(Fen::new(10)));
        assert_eq!(coupon.goods_detail[0].discount_amount, Fen::new(10));
        assert!(coupon.other.contains_key("a_coupon_field_from_next_year"));
        assert_eq!(
            t.amount.as_ref().and_then(|a| a.payer_total),
            Some(Fen::new(90))
        );
        assert_eq!(t.other["a_field_from_next_year"]["x"], 1);
    }
}
