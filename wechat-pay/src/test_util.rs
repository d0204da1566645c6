//! A signer that produces what WeChat Pay would send — signed replies, payment notifications,
//! encrypted refund notifications — so that other crates' tests (and emulators) can produce
//! valid inputs without a merchant account. Enabled by the `test-util` feature.

use crate::{ApiKey, Fen, Params, SignType};

/// Signs messages as WeChat Pay does for one app id and merchant.
///
/// ```
/// use wechat_pay::{ApiKey, Fen, NotifySignType, notify, test_util::TestSigner};
/// let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
/// let signer = TestSigner::new("wx2421b1c4370ec43b", "10000100", key.clone());
/// let body = signer.payment_notification("20240101000001", Fen::new(350));
/// let n = notify::verify_payment_notification(body.as_bytes(), &key, NotifySignType::FromBody).unwrap();
/// assert_eq!(n.total_fee, Fen::new(350));
/// ```
#[derive(Debug, Clone)]
pub struct TestSigner {
    app_id: String,
    mch_id: String,
    key: ApiKey,
    sign_type: SignType,
}

impl TestSigner {
    /// A signer for `app_id` / `mch_id` with the merchant `key`, signing with MD5.
    pub fn new(app_id: impl Into<String>, mch_id: impl Into<String>, key: ApiKey) -> Self {
        TestSigner {
            app_id: app_id.into(),
            mch_id: mch_id.into(),
            key,
            sign_type: SignType::Md5,
        }
    }

    /// Signs with `sign_type` instead (notifications then carry `sign_type`).
    pub fn with_sign_type(mut self, sign_type: SignType) -> Self {
        self.sign_type = sign_type;
        self
    }

    /// The fields of a successful payment notification for `out_trade_no`, unsigned, so a test
    /// can change or add fields before [`TestSigner::sign`].
    pub fn payment_notification_params(&self, out_trade_no: &str, total_fee: Fen) -> Params {
        let mut p = Params::new();
        p.insert("return_code", "SUCCESS");
        p.insert("return_msg", "OK");
        p.insert("appid", self.app_id.as_str());
        p.insert("mch_id", self.mch_id.as_str());
        p.insert("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS");
        p.insert("result_code", "SUCCESS");
        p.insert("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
        p.insert("is_subscribe", "Y");
        p.insert("trade_type", "JSAPI");
        p.insert("bank_type", "CMC");
        p.insert("total_fee", total_fee.to_string());
        p.insert("fee_type", "CNY");
        p.insert("cash_fee", total_fee.to_string());
        p.insert("transaction_id", format!("4200000{out_trade_no}"));
        p.insert("out_trade_no", out_trade_no);
        p.insert("time_end", "20240101120000");
        if self.sign_type != SignType::Md5 {
            p.insert("sign_type", self.sign_type.as_str());
        }
        p
    }

    /// A signed payment notification body.
    pub fn payment_notification(&self, out_trade_no: &str, total_fee: Fen) -> String {
        self.sign(self.payment_notification_params(out_trade_no, total_fee))
    }

    /// Signs `params` (every field, as WeChat does) and returns the XML body.
    pub fn sign(&self, mut params: Params) -> String {
        params.sign(&self.key, self.sign_type);
        params.to_xml()
    }

    /// A signed reply to a request: `params` plus `return_code` / `result_code` SUCCESS (unless
    /// set), `appid`, `mch_id` and a nonce.
    pub fn reply(&self, mut params: Params) -> String {
        for (k, v) in [
            ("return_code", "SUCCESS"),
            ("return_msg", "OK"),
            ("result_code", "SUCCESS"),
            ("appid", self.app_id.as_str()),
            ("mch_id", self.mch_id.as_str()),
            ("nonce_str", "IITRi8Iabbblz1Jc"),
        ] {
            if !params.contains_key(k) {
                params.insert(k, v);
            }
        }
        self.sign(params)
    }

    /// A signed `result_code=FAIL` reply with `err_code`.
    pub fn business_failure(&self, err_code: &str, err_code_des: &str) -> String {
        let mut p = Params::new();
        p.insert("result_code", "FAIL");
        p.insert("err_code", err_code);
        p.insert("err_code_des", err_code_des);
        self.reply(p)
    }

    /// The decrypted fields of a successful refund notification.
    pub fn refund_notification_info(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        total_fee: Fen,
        refund_fee: Fen,
    ) -> Params {
        let mut p = Params::new();
        p.insert("transaction_id", format!("4200000{out_trade_no}"));
        p.insert("out_trade_no", out_trade_no);
        p.insert("refund_id", format!("5000000{out_refund_no}"));
        p.insert("out_refund_no", out_refund_no);
        p.insert("total_fee", total_fee.to_string());
        p.insert("refund_fee", refund_fee.to_string());
        p.insert("settlement_refund_fee", refund_fee.to_string());
        p.insert("refund_status", "SUCCESS");
        p.insert("success_time", "2024-01-01 12:30:00");
        p.insert("refund_recv_accout", "支付用户的零钱");
        p.insert("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS");
        p.insert("refund_request_source", "API");
        p
    }

    /// A refund notification body whose `req_info` encrypts `info` (written with a `<root>`
    /// element, as WeChat does).
    pub fn refund_notification(&self, info: &Params) -> String {
        let mut outer = Params::new();
        outer.insert("return_code", "SUCCESS");
        outer.insert("appid", self.app_id.as_str());
        outer.insert("mch_id", self.mch_id.as_str());
        outer.insert("nonce_str", "TeqClE3i0mvn3DrK");
        outer.insert(
            "req_info",
            crate::notify::encrypt_refund_info(info, &self.key),
        );
        outer.to_xml()
    }
}

/// Plays WeChat Pay for API v3: signs responses and notifications with "WeChat Pay's" private
/// key (published to clients as a [`crate::v3::WechatPayKey`] with `key_id`), encrypts
/// notification resources with the merchant's API v3 key.
#[derive(Debug)]
pub struct V3Wechat {
    key: crate::v3::MerchantKey,
    key_id: String,
    api_v3_key: crate::v3::ApiV3Key,
}

impl V3Wechat {
    /// WeChat Pay with private key `private_key_pem`, known to clients as `key_id`, for a
    /// merchant whose API v3 key is `api_v3_key`.
    pub fn new(
        private_key_pem: &str,
        key_id: impl Into<String>,
        api_v3_key: crate::v3::ApiV3Key,
    ) -> Result<Self, crate::v3::KeyError> {
        Ok(V3Wechat {
            key: crate::v3::MerchantKey::from_pem(private_key_pem)?,
            key_id: key_id.into(),
            api_v3_key,
        })
    }

    /// The four signature headers for `body`, signed at `timestamp` (what a response or a
    /// notification carries).
    pub fn sign_at(&self, body: &str, timestamp: i64) -> Vec<(&'static str, String)> {
        let nonce = crate::client::nonce().unwrap_or_else(|_| "0".repeat(32));
        crate::v3::signing::wechat_pay_headers(&self.key, &self.key_id, body, timestamp, &nonce)
    }

    /// The headers for `body`, signed now.
    pub fn sign(&self, body: &str) -> Vec<(&'static str, String)> {
        self.sign_at(body, crate::v3::client::unix_now())
    }

    /// A notification of `event_type` whose resource (`original_type`) is `resource` (JSON):
    /// its body and signed headers.
    pub fn notification(
        &self,
        event_type: &str,
        original_type: &str,
        resource: &serde_json::Value,
    ) -> (String, Vec<(&'static str, String)>) {
        let nonce: String = crate::client::nonce()
            .unwrap_or_else(|_| "0".repeat(32))
            .chars()
            .take(12)
            .collect();
        let ciphertext = crate::v3::aead::encrypt(
            &self.api_v3_key,
            &resource.to_string(),
            &nonce,
            original_type,
        )
        .unwrap_or_default();
        let body = serde_json::json!({
            "id": format!("EV-{nonce}"),
            "create_time": "2026-12-03T10:00:00+08:00",
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "test",
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": original_type,
                "nonce": nonce,
            },
        })
        .to_string();
        let headers = self.sign(&body);
        (body, headers)
    }
}
