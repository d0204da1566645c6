//! What the front end needs to start a payment: `wx.requestPayment` parameters for JSAPI and
//! Mini Program payments, and `PayReq` parameters for APP payments.
//!
//! Both are signed with the merchant API key (the real one, also in sandbox mode: the WeChat app
//! that checks them knows no sandbox key). These are pure functions of their inputs; the client's
//! methods supply the clock and a fresh nonce.

use serde::{Deserialize, Serialize};

use crate::ApiKey;
use crate::sign::{self, SignType};

/// The parameters of `wx.requestPayment` (Mini Program) and `WeixinJSBridge.invoke(
/// 'getBrandWCPayRequest', …)` (Official Account), serialized with WeChat's camel-case names:
/// `appId`, `timeStamp` (a string), `nonceStr`, `package`, `signType`, `paySign`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JsapiParams {
    /// `appId`.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// `timeStamp`: Unix seconds, as a string.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// `nonceStr`.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `package`: `prepay_id=…`.
    pub package: String,
    /// `signType`: `MD5` or `HMAC-SHA256`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// `paySign`.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

/// The parameters of the WeChat mobile SDK's `PayReq`, with WeChat's lower-case names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppParams {
    /// `appid`.
    pub appid: String,
    /// `partnerid`: the merchant id.
    pub partnerid: String,
    /// `prepayid`.
    pub prepayid: String,
    /// `package`: always `Sign=WXPay`.
    pub package: String,
    /// `noncestr`.
    pub noncestr: String,
    /// `timestamp`: Unix seconds, as a string.
    pub timestamp: String,
    /// `signType` (`MD5` or `HMAC-SHA256`): the type the unified order was signed with, which
    /// the sign must use too; set `PayReq.signType` to it.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// `sign`, over the six fields above (not `signType`).
    pub sign: String,
}

/// Signs JSAPI parameters at `timestamp` with `nonce_str`.
///
/// ```
/// use wechat_pay::{pay_params, ApiKey, SignType};
/// let p = pay_params::jsapi_params(
///     "wx2421b1c4370ec43b", "wx201410272009395522657a690389285100",
///     &ApiKey::new("192006250b4c09247ec02edce69f6a2d"), SignType::Md5,
///     1414561699, "e61463f8efa94090b1f366cccfbbb444",
/// );
/// assert_eq!(p.package, "prepay_id=wx201410272009395522657a690389285100");
/// assert_eq!(p.time_stamp, "1414561699");
/// ```
pub fn jsapi_params(
    app_id: &str,
    prepay_id: &str,
    key: &ApiKey,
    sign_type: SignType,
    timestamp: u64,
    nonce_str: &str,
) -> JsapiParams {
    let time_stamp = timestamp.to_string();
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = sign::sign(
        [
            ("appId", app_id),
            ("timeStamp", time_stamp.as_str()),
            ("nonceStr", nonce_str),
            ("package", package.as_str()),
            ("signType", sign_type.as_str()),
        ],
        key,
        sign_type,
    );
    JsapiParams {
        app_id: app_id.to_owned(),
        time_stamp,
        nonce_str: nonce_str.to_owned(),
        package,
        sign_type: sign_type.as_str().to_owned(),
        pay_sign,
    }
}

/// Signs APP parameters at `timestamp` with `nonce_str`, with `sign_type` — the type the unified
/// order was signed with (WeChat requires the same).
pub fn app_params(
    app_id: &str,
    mch_id: &str,
    prepay_id: &str,
    key: &ApiKey,
    sign_type: SignType,
    timestamp: u64,
    nonce_str: &str,
) -> AppParams {
    let timestamp = timestamp.to_string();
    let sign = sign::sign(
        [
            ("appid", app_id),
            ("partnerid", mch_id),
            ("prepayid", prepay_id),
            ("package", "Sign=WXPay"),
            ("noncestr", nonce_str),
            ("timestamp", timestamp.as_str()),
        ],
        key,
        sign_type,
    );
    AppParams {
        appid: app_id.to_owned(),
        partnerid: mch_id.to_owned(),
        prepayid: prepay_id.to_owned(),
        package: "Sign=WXPay".to_owned(),
        noncestr: nonce_str.to_owned(),
        timestamp,
        sign_type: sign_type.as_str().to_owned(),
        sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsapi_params_sign_the_five_fields() {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let p = jsapi_params(
            "wx1",
            "wx2014",
            &key,
            SignType::HmacSha256,
            1414561699,
            "n1",
        );
        let expected = sign::sign(
            [
                ("appId", "wx1"),
                ("timeStamp", "1414561699"),
                ("nonceStr", "n1"),
                ("package", "prepay_id=wx2014"),
                ("signType", "HMAC-SHA256"),
            ],
            &key,
            SignType::HmacSha256,
        );
        assert_eq!(p.pay_sign, expected);
        assert_eq!(p.pay_sign.len(), 64);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["appId"], "wx1");
        assert_eq!(
            json["timeStamp"], "1414561699",
            "timeStamp must be a string"
        );
        assert_eq!(json["package"], "prepay_id=wx2014");
        assert_eq!(json["signType"], "HMAC-SHA256");
        assert_eq!(json["paySign"], expected.as_str());
    }

    /// The vectors in `testdata/pay_params_vectors.txt` (an independent implementation's).
    #[test]
    fn signatures_match_the_independent_vectors() {
        let vectors = include_str!("../testdata/pay_params_vectors.txt");
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let (app, mch, prepay, ts, nonce) = (
            "wx2421b1c4370ec43b",
            "10000100",
            "wx201410272009395522657a690389285100",
            1414561699,
            "e61463f8efa94090b1f366cccfbbb444",
        );
        let mut checked = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let [kind, sign_type, expected] = line.split(' ').collect::<Vec<_>>()[..] else {
                panic!("bad vector line {line:?}");
            };
            let sign_type: SignType = sign_type.parse().unwrap();
            let got = match kind {
                "jsapi" => jsapi_params(app, prepay, &key, sign_type, ts, nonce).pay_sign,
                "app" => app_params(app, mch, prepay, &key, sign_type, ts, nonce).sign,
                other => panic!("unknown vector kind {other}"),
            };
            assert_eq!(got, expected, "{kind} {sign_type:?}");
            checked += 1;
        }
        assert_eq!(checked, 4);
    }

    #[test]
    fn app_params_use_lower_case_names_and_the_sign_type() {
        let key = ApiKey::new("k");
        let hmac = app_params(
            "wx1",
            "10000100",
            "wx2014",
            &key,
            SignType::HmacSha256,
            1,
            "n",
        );
        assert_eq!(hmac.sign.len(), 64);
        assert_eq!(hmac.sign_type, "HMAC-SHA256");
        let p = app_params("wx1", "10000100", "wx2014", &key, SignType::Md5, 1, "n");
        assert_eq!(p.package, "Sign=WXPay");
        assert_eq!(p.sign.len(), 32);
        let json = serde_json::to_value(&p).unwrap();
        for f in [
            "appid",
            "partnerid",
            "prepayid",
            "package",
            "noncestr",
            "timestamp",
            "sign",
        ] {
            assert!(json.get(f).is_some(), "{f} missing");
        }
    }
}
