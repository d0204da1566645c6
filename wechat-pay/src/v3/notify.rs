//! API v3 notifications: verify the headers' signature over the raw body **first**, then decrypt
//! the `resource` (`AEAD_AES_256_GCM`, the API v3 key) into a typed event. An event type this
//! crate does not model is kept as JSON, never an error.
//!
//! Answer a handled notification with [`reply_success`] (204) and one you could not handle with
//! [`reply_fail`] (a 5xx with `{"code":"FAIL","message":…}`): WeChat Pay sends it again.

use serde::Deserialize;
use serde_json::Value;

use super::{Client, aead, api::RefundAmount, api::RefundStatus, api::Transaction};
use crate::Error;

/// A notification's envelope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Envelope {
    /// The notification's id.
    pub id: String,
    /// When created.
    #[serde(default)]
    pub create_time: String,
    /// `TRANSACTION.SUCCESS`, `REFUND.SUCCESS`, …
    pub event_type: String,
    /// `encrypt-resource`.
    #[serde(default)]
    pub resource_type: String,
    /// In words.
    #[serde(default)]
    pub summary: String,
    /// The encrypted payload.
    pub resource: Resource,
}

/// The encrypted payload.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Resource {
    /// `transaction`, `refund`, …
    #[serde(default)]
    pub original_type: String,
    /// `AEAD_AES_256_GCM`.
    pub algorithm: String,
    /// Base64 ciphertext and tag.
    pub ciphertext: String,
    /// Associated data.
    #[serde(default)]
    pub associated_data: String,
    /// The nonce.
    pub nonce: String,
}

/// A payment's notification: the transaction as WeChat Pay has it.
pub type TransactionNotification = Transaction;

/// A refund's notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundNotification {
    /// `mchid` (`sp_mchid` in partner mode).
    #[serde(alias = "sp_mchid")]
    pub mchid: String,
    /// Partner mode: the sub-merchant refunded.
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// WeChat's transaction id.
    #[serde(default)]
    pub transaction_id: String,
    /// The refund's number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// Where it is.
    pub refund_status: RefundStatus,
    /// When done.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The amounts.
    pub amount: RefundAmount,
}

/// A verified, decrypted notification.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// `TRANSACTION.*`.
    Transaction(Box<TransactionNotification>),
    /// `REFUND.*`.
    Refund(Box<RefundNotification>),
    /// `MCHTRANSFER.*` (a transfer's result).
    Transfer(Box<super::api::TransferBill>),
    /// `PROFITSHARING.*` (a share succeeded or closed).
    ProfitSharing(Box<super::api::SharingNotification>),
    /// `TRANSACTION.*` about a combined payment (its resource names `combine_out_trade_no`).
    Combine(Box<super::api::CombineTransaction>),
    /// `COMPLAINT.*` (a complaint made, or its state changed).
    Complaint(Box<super::api::ComplaintNotification>),
    /// Another event type, its resource as JSON.
    Other {
        /// The event type.
        event_type: String,
        /// The decrypted resource.
        resource: Value,
    },
}

impl Client {
    /// Verifies a notification (its headers through `header`, its raw body) and decrypts it.
    /// Returns the envelope and the event.
    pub async fn notification<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Result<(Envelope, Notification), Error> {
        self.verify(header, body).await?;
        decrypt_notification(self.api_v3_key(), body)
    }

    /// Verifies a notification as of `at` (Unix seconds) with the keys the client holds, and
    /// decrypts it — synchronously: nothing is downloaded (a certificate-mode client that has
    /// not met the signing certificate yet says so, `SignatureError::UnknownSerial`). For
    /// replaying a recorded notification at the time it was received, or verifying where no
    /// runtime is at hand; a live notification goes through [`Client::notification`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use wechat_pay::test_util::V3Wechat;
    /// use wechat_pay::v3::{ApiV3Key, Client, MerchantKey, Notification, WechatPayKey};
    ///
    /// # let merchant_pem = include_str!("../../testdata/v3/merchant_private_key.pem");
    /// # let wechat_private = include_str!("../../testdata/v3/wechatpay_private_key.pem");
    /// # let wechat_public = include_str!("../../testdata/v3/wechatpay_public_key.pem");
    /// let key_id = "PUB_KEY_ID_0114232134912410000000000000";
    /// let api_key = ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01")?;
    /// let client = Client::builder("1900009191", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
    ///         MerchantKey::from_pem(merchant_pem)?, api_key.clone())
    ///     .wechat_pay_key(WechatPayKey::from_pem(key_id, wechat_public)?)
    ///     .build()?;
    ///
    /// // A notification recorded an hour ago, signed then.
    /// let wechat = V3Wechat::new(wechat_private, key_id, api_key)?;
    /// let resource = serde_json::json!({"mchid": "1900009191", "appid": "wxd678efh567hg6787",
    ///     "out_trade_no": "A1", "transaction_id": "4200000001", "trade_state": "SUCCESS",
    ///     "amount": {"total": 100, "currency": "CNY"}});
    /// let (body, _) = wechat.notification("TRANSACTION.SUCCESS", "transaction", &resource);
    /// let received_at = 1_796_000_000;
    /// let headers = wechat.sign_at(&body, received_at);
    /// let header = |name: &str| {
    ///     headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    /// };
    ///
    /// // Replayed as of when it arrived: verified and decrypted.
    /// let (_, event) = client.notification_at(header, body.as_bytes(), received_at)?;
    /// assert!(matches!(event, Notification::Transaction(t) if t.out_trade_no == "A1"));
    /// // Its timestamp is stale at any later time: refused, saying so.
    /// let stale = client.notification_at(header, body.as_bytes(), received_at + 3600);
    /// assert!(stale.unwrap_err().to_string().contains("3600 s behind this clock"));
    /// # Ok(()) }
    /// ```
    pub fn notification_at<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
        at: i64,
    ) -> Result<(Envelope, Notification), Error> {
        let signature = super::WechatPaySignature::from_headers(header)?;
        self.not_own_serial(&signature)?;
        let key = self.wechat_pay_key(&signature.serial);
        signature.verify(body, at, |_| key.as_ref())?;
        decrypt_notification(self.api_v3_key(), body)
    }
}

/// Decrypts an already verified notification body with `api_v3_key`.
pub fn decrypt_notification(
    api_v3_key: &super::ApiV3Key,
    body: &[u8],
) -> Result<(Envelope, Notification), Error> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| Error::decode("notification", e.to_string()))?;
    let r = &envelope.resource;
    let plain = aead::decrypt(
        api_v3_key,
        &r.algorithm,
        &r.ciphertext,
        &r.nonce,
        &r.associated_data,
    )?;
    let decode = |what: &str, e: serde_json::Error| Error::decode(what, e.to_string());
    let combined = serde_json::from_str::<Value>(&plain)
        .ok()
        .is_some_and(|v| v.get("combine_out_trade_no").is_some());
    let event = if envelope.event_type.starts_with("TRANSACTION.") && combined {
        Notification::Combine(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("combined payment", e))?,
        ))
    } else if envelope.event_type.starts_with("TRANSACTION.") {
        Notification::Transaction(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("transaction", e))?,
        ))
    } else if envelope.event_type.starts_with("REFUND.") {
        Notification::Refund(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("refund", e))?,
        ))
    } else if envelope.event_type.starts_with("MCHTRANSFER.") {
        Notification::Transfer(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("transfer", e))?,
        ))
    } else if envelope.event_type.starts_with("PROFITSHARING.") {
        Notification::ProfitSharing(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("profit sharing", e))?,
        ))
    } else if envelope.event_type.starts_with("COMPLAINT.") {
        Notification::Complaint(Box::new(
            serde_json::from_str(&plain).map_err(|e| decode("complaint", e))?,
        ))
    } else {
        Notification::Other {
            event_type: envelope.event_type.clone(),
            resource: serde_json::from_str(&plain).map_err(|e| decode("resource", e))?,
        }
    };
    Ok((envelope, event))
}

/// The answer to a handled notification: HTTP 204, no body.
pub fn reply_success() -> (u16, String) {
    (204, String::new())
}

/// The answer to a notification that could not be handled (WeChat sends it again): HTTP 500
/// with `{"code":"FAIL","message":…}`.
pub fn reply_fail(message: &str) -> (u16, String) {
    (
        500,
        serde_json::json!({"code": "FAIL", "message": message}).to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's property (`fuzz/fuzz_targets/v3_notification.rs`) on a few thousand
    /// deterministic mutations of a valid notification: never a panic, a typed error or an event.
    #[test]
    fn mutated_notifications_never_panic() {
        let key = super::super::ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").unwrap();
        let ciphertext = aead::encrypt(
            &key,
            r#"{"out_trade_no":"A1","trade_state":"SUCCESS","appid":"wx","mchid":"1"}"#,
            "fdasflkja484",
            "transaction",
        )
        .unwrap();
        let valid = serde_json::json!({
            "id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext, "associated_data": "transaction", "nonce": "fdasflkja484"},
        })
        .to_string()
        .into_bytes();
        assert!(decrypt_notification(&key, &valid).is_ok());
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for _ in 0..3000 {
            let mut input = valid.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, next() as u8),
                }
            }
            if decrypt_notification(&key, &input).is_ok() {
                decoded += 1;
            }
        }
        // A byte flipped inside the ciphertext or tag fails authentication; some mutations
        // land in whitespace-free JSON keys or values that do not matter.
        assert!(decoded < 3000);
    }
}
