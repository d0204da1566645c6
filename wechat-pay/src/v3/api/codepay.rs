//! Payment codes: the merchant scans the payer's code (`codepay`) and, when the outcome does not
//! come in time, reverses the payment (`reverse`: closes it if unpaid, gives the money back if
//! it was paid after all).
//!
//! WeChat answers a code payment at once when the payer needs no confirmation
//! ([`TradeState::Success`](crate::TradeState::Success)); otherwise the payer is confirming
//! (`USERPAYING`: a transaction in that state, or the error code
//! [`V3ErrorCode::UserPaying`](crate::v3::V3ErrorCode::UserPaying)) and the merchant queries
//! the order until it is paid or its time is up, then reverses it. Payment codes have no
//! notification. `aggregate_pay` runs this whole flow (`Payments::pay_by_code`).

use std::fmt;

use serde_json::Value;
use serde_json::json;

use super::segment;
use super::transactions::{OrderRequest, Transaction, accounts};
use crate::Fen;
use crate::v3::Request;

/// `POST /v3/pay/transactions/codepay` (`/v3/pay/partner/transactions/codepay` for a
/// sub-merchant): charges the payer's payment code. `Debug` masks the code.
#[derive(Clone, PartialEq, Eq)]
pub struct CodePayOrder {
    /// The order (its `notify_url` is not sent: code payments are not notified).
    pub order: OrderRequest,
    /// The payer's payment code (`payer.auth_code`), as scanned.
    pub auth_code: String,
    /// The scanning device's id (`scene_info.device_id`).
    pub device_id: Option<String>,
    /// The scanning device's IP address (`scene_info.device_ip`).
    pub device_ip: Option<String>,
    /// The merchant's own id of the store (`scene_info.store_info.out_id`).
    pub store_out_id: Option<String>,
}

impl fmt::Debug for CodePayOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodePayOrder")
            .field("order", &self.order)
            .field("auth_code", &"***")
            .field("device_id", &self.device_id)
            .field("device_ip", &self.device_ip)
            .field("store_out_id", &self.store_out_id)
            .finish()
    }
}

impl CodePayOrder {
    /// Charges `total` for `description` to the payment code `auth_code`, as order
    /// `out_trade_no` of app `app_id`.
    pub fn new(
        app_id: impl Into<String>,
        description: impl Into<String>,
        out_trade_no: impl Into<String>,
        total: Fen,
        auth_code: impl Into<String>,
    ) -> Self {
        CodePayOrder {
            order: OrderRequest::new(app_id, description, out_trade_no, total, ""),
            auth_code: auth_code.into(),
            device_id: None,
            device_ip: None,
            store_out_id: None,
        }
    }

    /// The order as built (for a sub-merchant, profit sharing, attach…).
    pub fn with_order(mut self, f: impl FnOnce(OrderRequest) -> OrderRequest) -> Self {
        self.order = f(self.order);
        self
    }

    /// The scanning device (`scene_info.device_id`).
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.device_id = Some(id.into());
        self
    }

    /// The scanning device's IP address (`scene_info.device_ip`).
    pub fn device_ip(mut self, ip: impl Into<String>) -> Self {
        self.device_ip = Some(ip.into());
        self
    }

    /// The merchant's id of the store (`scene_info.store_info.out_id`).
    pub fn store_out_id(mut self, id: impl Into<String>) -> Self {
        self.store_out_id = Some(id.into());
        self
    }
}

impl Request for CodePayOrder {
    type Response = Transaction;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        if self.order.partner.is_some() {
            "/v3/pay/partner/transactions/codepay".to_owned()
        } else {
            "/v3/pay/transactions/codepay".to_owned()
        }
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        let mut body = self.order.body(mch_id);
        if let Some(map) = body.as_object_mut() {
            map.remove("notify_url");
            map.remove("time_expire");
        }
        body["payer"] = json!({"auth_code": self.auth_code});
        let mut scene = json!({});
        if let Some(id) = &self.device_id {
            scene["device_id"] = json!(id);
        }
        if let Some(ip) = &self.device_ip {
            scene["device_ip"] = json!(ip);
        }
        if let Some(out_id) = &self.store_out_id {
            scene["store_info"] = json!({"out_id": out_id});
        }
        body["scene_info"] = scene;
        Some(body)
    }
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/reverse` (`/v3/pay/partner/…` for a
/// sub-merchant): reverses a code payment — closed if unpaid, the money given back if paid.
/// Call it only after a query found no definitive outcome, and not within 15 seconds of the
/// payment (WeChat's advice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseTransaction {
    /// The app id the order was made with (`sp_appid` for a sub-merchant's order).
    pub app_id: String,
    /// The merchant's number.
    pub out_trade_no: String,
    /// The sub-merchant, for a service provider's order.
    pub partner: Option<super::Partner>,
}

/// What a reverse answers (the order it reversed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct Reversed {
    /// The merchant's number.
    #[serde(default)]
    pub out_trade_no: String,
}

impl Request for ReverseTransaction {
    type Response = Reversed;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        let scope = if self.partner.is_some() {
            "pay/partner"
        } else {
            "pay"
        };
        format!(
            "/v3/{scope}/transactions/out-trade-no/{}/reverse",
            segment(&self.out_trade_no)
        )
    }
    fn body(&self, mch_id: &str) -> Option<Value> {
        Some(accounts(&self.app_id, mch_id, self.partner.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::api::Partner;

    #[test]
    fn a_code_payment_sends_the_code_and_no_notify_url() {
        let order = CodePayOrder::new("wxapp", "Cola", "M1", Fen::new(300), "134567890123456789")
            .device_id("machine-7");
        assert_eq!(order.path("1900000109"), "/v3/pay/transactions/codepay");
        let body = order.body("1900000109").unwrap_or_default();
        assert_eq!(body["payer"]["auth_code"], "134567890123456789");
        assert_eq!(body["amount"]["total"], 300);
        assert_eq!(body["mchid"], "1900000109");
        assert_eq!(body["scene_info"]["device_id"], "machine-7");
        assert!(body.get("notify_url").is_none());
        assert!(!format!("{order:?}").contains("134567890123456789"));
    }

    #[test]
    fn a_sub_merchants_code_payment_and_reverse_use_the_partner_paths() {
        let order = CodePayOrder::new("wxsp", "Cola", "M1", Fen::new(300), "134567890123456789")
            .with_order(|o| o.for_sub_merchant(Partner::new("1900100001")));
        assert_eq!(
            order.path("1900000100"),
            "/v3/pay/partner/transactions/codepay"
        );
        let body = order.body("1900000100").unwrap_or_default();
        assert_eq!(body["sp_mchid"], "1900000100");
        assert_eq!(body["sub_mchid"], "1900100001");
        let reverse = ReverseTransaction {
            app_id: "wxsp".into(),
            out_trade_no: "M1".into(),
            partner: Some(Partner::new("1900100001")),
        };
        assert_eq!(
            reverse.path("1900000100"),
            "/v3/pay/partner/transactions/out-trade-no/M1/reverse"
        );
        assert_eq!(
            reverse.body("1900000100").unwrap_or_default()["sub_mchid"],
            "1900100001"
        );
    }
}
