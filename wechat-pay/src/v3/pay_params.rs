//! What the front end needs to start an API v3 payment, signed with the merchant key (RSA).
//!
//! JSAPI / Mini Program (`wx.requestPayment`): `paySign` over
//! `appId\ntimeStamp\nnonceStr\npackage\n`, `signType: "RSA"`. APP (`PayReq`): `sign` over
//! `appid\ntimestamp\nnoncestr\nprepayid\n`.

use super::{Client, MerchantKey};
use crate::Error;

/// `wx.requestPayment` / `WeixinJSBridge` parameters: the same fields as v2's, with
/// `signType: "RSA"` and an RSA `paySign`.
pub use crate::JsapiParams;

/// The mobile SDK's `PayReq` parameters: the same fields as v2's, with `signType: "RSA"` and
/// an RSA `sign`.
pub use crate::AppParams;

/// Signs JSAPI parameters at `timestamp` with `nonce_str` (pure: the client supplies both).
pub fn jsapi_params(
    key: &MerchantKey,
    app_id: &str,
    prepay_id: &str,
    timestamp: i64,
    nonce_str: &str,
) -> JsapiParams {
    let package = format!("prepay_id={prepay_id}");
    let message = format!("{app_id}\n{timestamp}\n{nonce_str}\n{package}\n");
    JsapiParams {
        app_id: app_id.to_owned(),
        time_stamp: timestamp.to_string(),
        nonce_str: nonce_str.to_owned(),
        package,
        sign_type: "RSA".to_owned(),
        pay_sign: key.sign(message.as_bytes()),
    }
}

/// Signs APP parameters at `timestamp` with `nonce_str`.
pub fn app_params(
    key: &MerchantKey,
    app_id: &str,
    mch_id: &str,
    prepay_id: &str,
    timestamp: i64,
    nonce_str: &str,
) -> AppParams {
    let message = format!("{app_id}\n{timestamp}\n{nonce_str}\n{prepay_id}\n");
    AppParams {
        appid: app_id.to_owned(),
        partnerid: mch_id.to_owned(),
        prepayid: prepay_id.to_owned(),
        package: "Sign=WXPay".to_owned(),
        noncestr: nonce_str.to_owned(),
        timestamp: timestamp.to_string(),
        sign_type: "RSA".to_owned(),
        sign: key.sign(message.as_bytes()),
    }
}

impl Client {
    /// `wx.requestPayment` parameters for `prepay_id` of app `app_id`, signed now.
    pub fn jsapi_params(&self, app_id: &str, prepay_id: &str) -> Result<JsapiParams, Error> {
        Ok(jsapi_params(
            self.merchant_key(),
            app_id,
            prepay_id,
            self.now(),
            &crate::client::nonce()?,
        ))
    }

    /// `PayReq` parameters for `prepay_id` of app `app_id`, signed now.
    pub fn app_params(&self, app_id: &str, prepay_id: &str) -> Result<AppParams, Error> {
        Ok(app_params(
            self.merchant_key(),
            app_id,
            self.mch_id(),
            prepay_id,
            self.now(),
            &crate::client::nonce()?,
        ))
    }
}
