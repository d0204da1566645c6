//! `/pay/unifiedorder`: create an order and get what the front end needs to pay it.

use time::OffsetDateTime;

use super::{Endpoint, FromReply, Request};
use crate::types::wechat_time;
use crate::{Error, Fen, Params, TradeType};

/// How the payer will pay, with what each way requires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trade {
    /// In the WeChat browser (Official Account) or a Mini Program: `wx.requestPayment`.
    /// The client's app id must be the Official Account's or the Mini Program's, and `open_id`
    /// the payer's openid under that app id.
    Jsapi {
        /// The payer's openid.
        open_id: String,
    },
    /// A QR code (`code_url`) the payer scans.
    Native {
        /// The merchant's product id, written into the QR code.
        product_id: String,
    },
    /// A native mobile app (the WeChat SDK).
    App,
    /// A mobile browser outside WeChat (`mweb_url`).
    Mweb {
        /// Where the payment starts (required by WeChat for H5 payments).
        scene: H5Info,
    },
}

impl Trade {
    /// A JSAPI trade (Official Account or Mini Program) for `open_id`.
    pub fn jsapi(open_id: impl Into<String>) -> Self {
        Trade::Jsapi {
            open_id: open_id.into(),
        }
    }

    /// A Native (QR code) trade for `product_id`.
    pub fn native(product_id: impl Into<String>) -> Self {
        Trade::Native {
            product_id: product_id.into(),
        }
    }

    fn trade_type(&self) -> TradeType {
        match self {
            Trade::Jsapi { .. } => TradeType::Jsapi,
            Trade::Native { .. } => TradeType::Native,
            Trade::App => TradeType::App,
            Trade::Mweb { .. } => TradeType::Mweb,
        }
    }
}

/// The `h5_info` of an H5 (MWEB) payment's `scene_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum H5Info {
    /// A mobile web site.
    Wap {
        /// The site's URL.
        wap_url: String,
        /// The site's name.
        wap_name: String,
    },
    /// An iOS app.
    Ios {
        /// The app's name.
        app_name: String,
        /// The bundle id.
        bundle_id: String,
    },
    /// An Android app.
    Android {
        /// The app's name.
        app_name: String,
        /// The package name.
        package_name: String,
    },
}

impl H5Info {
    /// The `scene_info` JSON, e.g. `{"h5_info":{"type":"Wap","wap_url":"…","wap_name":"…"}}`.
    pub fn to_scene_info(&self) -> String {
        let h5_info = match self {
            H5Info::Wap { wap_url, wap_name } => {
                serde_json::json!({"type": "Wap", "wap_url": wap_url, "wap_name": wap_name})
            }
            H5Info::Ios {
                app_name,
                bundle_id,
            } => serde_json::json!({"type": "IOS", "app_name": app_name, "bundle_id": bundle_id}),
            H5Info::Android {
                app_name,
                package_name,
            } => serde_json::json!({
                "type": "Android", "app_name": app_name, "package_name": package_name
            }),
        };
        serde_json::json!({ "h5_info": h5_info }).to_string()
    }
}

/// A unified order request.
///
/// ```
/// use wechat_pay::{Fen, Trade, UnifiedOrder};
/// let order = UnifiedOrder::new(
///     Trade::jsapi("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
///     "Cola 330ml",
///     "20240101000001",
///     Fen::new(350),
///     "203.0.113.7",
///     "https://shop.example/notify/wechat",
/// )
/// .attach("machine=M001")
/// .time_expire(time::OffsetDateTime::now_utc() + time::Duration::minutes(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedOrder {
    trade: Trade,
    body: String,
    out_trade_no: String,
    total_fee: Fen,
    spbill_create_ip: String,
    notify_url: String,
    device_info: Option<String>,
    detail: Option<String>,
    attach: Option<String>,
    fee_type: Option<String>,
    time_start: Option<String>,
    time_expire: Option<String>,
    goods_tag: Option<String>,
    limit_pay: Option<String>,
    receipt: bool,
    profit_sharing: bool,
    scene_info: Option<String>,
}

impl UnifiedOrder {
    /// An order of `total_fee` for `body` (what the payer sees), numbered `out_trade_no` (unique
    /// per merchant, ≤ 32 characters), requested from `spbill_create_ip`, whose result WeChat
    /// POSTs to `notify_url`.
    pub fn new(
        trade: Trade,
        body: impl Into<String>,
        out_trade_no: impl Into<String>,
        total_fee: Fen,
        spbill_create_ip: impl Into<String>,
        notify_url: impl Into<String>,
    ) -> Self {
        UnifiedOrder {
            trade,
            body: body.into(),
            out_trade_no: out_trade_no.into(),
            total_fee,
            spbill_create_ip: spbill_create_ip.into(),
            notify_url: notify_url.into(),
            device_info: None,
            detail: None,
            attach: None,
            fee_type: None,
            time_start: None,
            time_expire: None,
            goods_tag: None,
            limit_pay: None,
            receipt: false,
            profit_sharing: false,
            scene_info: None,
        }
    }

    /// `device_info`: the terminal (shop or machine) number.
    pub fn device_info(mut self, v: impl Into<String>) -> Self {
        self.device_info = Some(v.into());
        self
    }

    /// `detail`: the goods detail (JSON, see WeChat's documentation).
    pub fn detail(mut self, v: impl Into<String>) -> Self {
        self.detail = Some(v.into());
        self
    }

    /// `attach`: data returned unchanged in the query and the notification.
    pub fn attach(mut self, v: impl Into<String>) -> Self {
        self.attach = Some(v.into());
        self
    }

    /// `fee_type`: the currency (default `CNY`).
    pub fn fee_type(mut self, v: impl Into<String>) -> Self {
        self.fee_type = Some(v.into());
        self
    }

    /// `time_start`: when the order was created.
    pub fn time_start(mut self, t: OffsetDateTime) -> Self {
        self.time_start = Some(wechat_time(t));
        self
    }

    /// `time_expire`: after this the order can no longer be paid (at least 1 minute after
    /// creation; WeChat's default is 2 hours).
    pub fn time_expire(mut self, t: OffsetDateTime) -> Self {
        self.time_expire = Some(wechat_time(t));
        self
    }

    /// `goods_tag`: the coupon tag.
    pub fn goods_tag(mut self, v: impl Into<String>) -> Self {
        self.goods_tag = Some(v.into());
        self
    }

    /// `limit_pay=no_credit`: refuse credit cards.
    pub fn no_credit(mut self) -> Self {
        self.limit_pay = Some("no_credit".to_owned());
        self
    }

    /// `receipt=Y`: offer an electronic invoice.
    pub fn receipt(mut self) -> Self {
        self.receipt = true;
        self
    }

    /// `profit_sharing=Y`: the order's funds are frozen for profit sharing.
    pub fn profit_sharing(mut self) -> Self {
        self.profit_sharing = true;
        self
    }

    /// `scene_info` for non-H5 trades (store information JSON). For H5 it comes from
    /// [`Trade::Mweb`].
    pub fn scene_info(mut self, json: impl Into<String>) -> Self {
        self.scene_info = Some(json.into());
        self
    }

    /// The merchant order number.
    pub fn out_trade_no(&self) -> &str {
        &self.out_trade_no
    }

    /// The amount.
    pub fn total_fee(&self) -> Fen {
        self.total_fee
    }
}

impl Endpoint for UnifiedOrder {
    const PATH: &'static str = "/pay/unifiedorder";

    fn write_params(&self, p: &mut Params) {
        p.insert("body", self.body.as_str());
        p.insert("out_trade_no", self.out_trade_no.as_str());
        p.insert("total_fee", self.total_fee.to_string());
        p.insert("spbill_create_ip", self.spbill_create_ip.as_str());
        p.insert("notify_url", self.notify_url.as_str());
        p.insert("trade_type", self.trade.trade_type().as_str());
        match &self.trade {
            Trade::Jsapi { open_id } => {
                p.insert("openid", open_id.as_str());
            }
            Trade::Native { product_id } => {
                p.insert("product_id", product_id.as_str());
            }
            Trade::App => {}
            Trade::Mweb { scene } => {
                p.insert("scene_info", scene.to_scene_info());
            }
        }
        p.insert_opt("device_info", self.device_info.as_deref());
        p.insert_opt("detail", self.detail.as_deref());
        p.insert_opt("attach", self.attach.as_deref());
        p.insert_opt("fee_type", self.fee_type.as_deref());
        p.insert_opt("time_start", self.time_start.as_deref());
        p.insert_opt("time_expire", self.time_expire.as_deref());
        p.insert_opt("goods_tag", self.goods_tag.as_deref());
        p.insert_opt("limit_pay", self.limit_pay.as_deref());
        if self.receipt {
            p.insert("receipt", "Y");
        }
        if self.profit_sharing {
            p.insert("profit_sharing", "Y");
        }
        if !matches!(self.trade, Trade::Mweb { .. }) {
            p.insert_opt("scene_info", self.scene_info.as_deref());
        }
    }
}

impl Request for UnifiedOrder {
    type Response = UnifiedOrderResponse;
}

/// A created order: the prepay id and, by trade type, the QR code or H5 URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnifiedOrderResponse {
    /// `appid`.
    pub app_id: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `trade_type`.
    pub trade_type: TradeType,
    /// `prepay_id`, valid for 2 hours: what JSAPI and APP payments are started with.
    pub prepay_id: String,
    /// `code_url` (NATIVE): the content of the QR code to show.
    pub code_url: Option<String>,
    /// `mweb_url` (MWEB): where to send the mobile browser.
    pub mweb_url: Option<String>,
    /// `device_info`.
    pub device_info: Option<String>,
}

impl FromReply for UnifiedOrderResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        let trade_type: TradeType = p.required_parse("trade_type")?;
        let code_url = p.optional_string("code_url");
        let mweb_url = p.optional_string("mweb_url");
        if trade_type == TradeType::Native && code_url.is_none() {
            return Err(Error::decode("code_url", "missing for a NATIVE order"));
        }
        if trade_type == TradeType::Mweb && mweb_url.is_none() {
            return Err(Error::decode("mweb_url", "missing for an MWEB order"));
        }
        Ok(UnifiedOrderResponse {
            app_id: p.required_string("appid")?,
            mch_id: p.required_string("mch_id")?,
            trade_type,
            prepay_id: p.required_string("prepay_id")?,
            code_url,
            mweb_url,
            device_info: p.optional_string("device_info"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(trade: Trade) -> UnifiedOrder {
        UnifiedOrder::new(trade, "body", "no1", Fen::new(1), "127.0.0.1", "https://n/")
    }

    #[test]
    fn each_trade_writes_what_it_requires() {
        let mut p = Params::new();
        order(Trade::jsapi("o1")).write_params(&mut p);
        assert_eq!(p.get("trade_type"), Some("JSAPI"));
        assert_eq!(p.get("openid"), Some("o1"));

        let mut p = Params::new();
        order(Trade::native("sku-1")).write_params(&mut p);
        assert_eq!(p.get("trade_type"), Some("NATIVE"));
        assert_eq!(p.get("product_id"), Some("sku-1"));
        assert_eq!(p.get("openid"), None);

        let mut p = Params::new();
        order(Trade::Mweb {
            scene: H5Info::Wap {
                wap_url: "https://m.example".into(),
                wap_name: "shop".into(),
            },
        })
        .scene_info("ignored for H5")
        .write_params(&mut p);
        assert_eq!(p.get("trade_type"), Some("MWEB"));
        let scene: serde_json::Value = serde_json::from_str(p.get("scene_info").unwrap()).unwrap();
        assert_eq!(scene["h5_info"]["type"], "Wap");
        assert_eq!(scene["h5_info"]["wap_url"], "https://m.example");
    }

    #[test]
    fn optional_fields_are_written_only_when_set() {
        let mut p = Params::new();
        order(Trade::App).write_params(&mut p);
        assert_eq!(p.len(), 6);
        let mut p = Params::new();
        order(Trade::App)
            .attach("a")
            .no_credit()
            .receipt()
            .time_expire(time::macros::datetime!(2024-01-01 00:00:00 UTC))
            .write_params(&mut p);
        assert_eq!(p.get("attach"), Some("a"));
        assert_eq!(p.get("limit_pay"), Some("no_credit"));
        assert_eq!(p.get("receipt"), Some("Y"));
        assert_eq!(p.get("time_expire"), Some("20240101080000"));
    }

    #[test]
    fn native_response_requires_code_url() {
        let p: Params = [
            ("appid", "wx1"),
            ("mch_id", "1"),
            ("trade_type", "NATIVE"),
            ("prepay_id", "wx201410272009395522657a690389285100"),
        ]
        .into_iter()
        .collect();
        assert!(UnifiedOrderResponse::from_params(p.clone()).is_err());
        let mut p = p;
        p.insert("code_url", "weixin://wxpay/bizpayurl?pr=abc");
        let r = UnifiedOrderResponse::from_params(p).unwrap();
        assert_eq!(
            r.code_url.as_deref(),
            Some("weixin://wxpay/bizpayurl?pr=abc")
        );
    }
}
