//! A small Alipay open-API client: RSA2-signed requests, RSA2-verified responses.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::rsa2::{self, AlipayPrivateKey, AlipayPublicKey};
use crate::ChannelError;

/// The production gateway.
pub const DEFAULT_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// The Alipay client of one app.
#[derive(Clone)]
pub struct AlipayClient {
    app_id: String,
    private_key: AlipayPrivateKey,
    alipay_public_key: AlipayPublicKey,
    gateway: String,
    http: reqwest::Client,
}

impl fmt::Debug for AlipayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayClient")
            .field("app_id", &self.app_id)
            .field("private_key", &self.private_key)
            .field("gateway", &self.gateway)
            .finish()
    }
}

/// `yyyy-MM-dd HH:mm:ss` in UTC+8, as Alipay wants its timestamps.
fn timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

impl AlipayClient {
    /// A client for `app_id`, signing with its private key and verifying with Alipay's public
    /// key, against `gateway` (default [`DEFAULT_GATEWAY`]).
    pub fn new(
        app_id: impl Into<String>,
        private_key: AlipayPrivateKey,
        alipay_public_key: AlipayPublicKey,
        gateway: impl Into<String>,
    ) -> Result<Self, ChannelError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        Ok(AlipayClient {
            app_id: app_id.into(),
            private_key,
            alipay_public_key,
            gateway: gateway.into(),
            http,
        })
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Alipay's public key (notifications are verified with it).
    pub fn alipay_public_key(&self) -> &AlipayPublicKey {
        &self.alipay_public_key
    }

    /// The signed parameters of a call.
    fn signed_params(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, ChannelError> {
        let mut p: Vec<(String, String)> = vec![
            ("app_id".into(), self.app_id.clone()),
            ("method".into(), method.into()),
            ("format".into(), "JSON".into()),
            ("charset".into(), "utf-8".into()),
            ("sign_type".into(), "RSA2".into()),
            ("timestamp".into(), timestamp(OffsetDateTime::now_utc())),
            ("version".into(), "1.0".into()),
            ("biz_content".into(), biz.to_string()),
        ];
        p.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let content = rsa2::canonical(
            p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            rsa2::REQUEST_EXCLUDES,
        );
        let sign = self
            .private_key
            .sign(&content)
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        p.push(("sign".into(), sign));
        Ok(p)
    }

    /// Calls `method` and returns its verified response object (`code` 10000), or the
    /// refusal as [`ChannelError::Rejected`] with Alipay's `sub_code`.
    pub async fn execute(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Value, ChannelError> {
        let params = self.signed_params(method, biz, extra)?;
        let body = serde_urlencoded::to_string(&params)
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        let response = self
            .http
            .post(&self.gateway)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| ChannelError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(ChannelError::Transport(format!(
                "http status {}",
                response.status()
            )));
        }
        let text = response
            .text()
            .await
            .map_err(|e| ChannelError::Transport(e.without_url().to_string()))?;
        let key = format!("{}_response", method.replace('.', "_"));
        let content = rsa2::response_content(&text, &key)
            .or_else(|| rsa2::response_content(&text, "error_response"))
            .ok_or_else(|| ChannelError::Decode(format!("no {key} in the gateway's answer")))?;
        let whole: Value =
            serde_json::from_str(&text).map_err(|e| ChannelError::Decode(e.to_string()))?;
        let sign = whole["sign"]
            .as_str()
            .ok_or_else(|| ChannelError::Signature("the answer is not signed".into()))?;
        self.alipay_public_key
            .verify(content, sign)
            .map_err(|e| ChannelError::Signature(e.to_string()))?;
        let object: Value =
            serde_json::from_str(content).map_err(|e| ChannelError::Decode(e.to_string()))?;
        if object["code"] == "10000" {
            return Ok(object);
        }
        Err(ChannelError::Rejected {
            code: object["sub_code"]
                .as_str()
                .or_else(|| object["code"].as_str())
                .unwrap_or("UNKNOWN")
                .to_owned(),
            message: object["sub_msg"]
                .as_str()
                .or_else(|| object["msg"].as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// The signed gateway URL a browser opens (`alipay.trade.page.pay`, `wap.pay`).
    pub fn page_url(
        &self,
        method: &str,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> Result<String, ChannelError> {
        let params = self.signed_params(method, biz, extra)?;
        let query = serde_urlencoded::to_string(&params)
            .map_err(|e| ChannelError::Config(e.to_string()))?;
        Ok(format!("{}?{query}", self.gateway))
    }

    /// The signed order string the Alipay app SDK takes (`alipay.trade.app.pay`).
    pub fn order_string(
        &self,
        biz: &Value,
        extra: &[(&str, &str)],
    ) -> Result<String, ChannelError> {
        let params = self.signed_params("alipay.trade.app.pay", biz, extra)?;
        serde_urlencoded::to_string(&params).map_err(|e| ChannelError::Config(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_china_standard_time() {
        let t = time::macros::datetime!(2024-01-31 16:05:09 UTC);
        assert_eq!(super::timestamp(t), "2024-02-01 00:05:09");
    }
}
