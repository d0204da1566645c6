//! Asynchronous notifications (`trade_status_sync`): a form POSTed to the `notify_url`, signed
//! with Alipay's key over every field but `sign` and `sign_type`. Verify first, then trust: the
//! signature, then that it names this app (and this seller, when configured), then decode.
//! Answer [`NotifyReply::Success`] (`success`) once handled; anything else and Alipay sends it
//! again (over about 25 hours).

use std::collections::BTreeMap;

use crate::api::TradeStatus;
use crate::sign::{self, PublicKey};
use crate::{Client, Error, Fen, SignatureError};

/// A verified payment notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TradeNotification {
    /// The app it was sent for.
    pub app_id: String,
    /// The seller (`2088…`).
    pub seller_id: Option<String>,
    /// Alipay's number.
    pub trade_no: String,
    /// The merchant's number.
    pub out_trade_no: String,
    /// Where the trade is.
    pub trade_status: TradeStatus,
    /// The trade's amount.
    pub total_amount: Fen,
    /// What the merchant received, when said.
    pub receipt_amount: Option<Fen>,
    /// Refunded so far, when said (notifications of refunds).
    pub refund_fee: Option<Fen>,
    /// The refund's number, for notifications of refunds.
    pub out_biz_no: Option<String>,
    /// The buyer's id.
    pub buyer_id: Option<String>,
    /// The notification's id.
    pub notify_id: Option<String>,
    /// When it was paid.
    pub gmt_payment: Option<String>,
    /// Every field as received (signature excluded).
    pub fields: BTreeMap<String, String>,
}

/// The answer to a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyReply {
    /// Handled: stop sending it.
    Success,
    /// Not handled: send it again later.
    Fail,
}

impl NotifyReply {
    /// The response body (`text/plain`).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReply::Success => "success",
            NotifyReply::Fail => "fail",
        }
    }
}

/// Checks the signature of a notification's `form` with `key`.
pub fn verify_form(form: &BTreeMap<String, String>, key: &PublicKey) -> Result<(), Error> {
    let signature = form
        .get("sign")
        .filter(|s| !s.is_empty())
        .ok_or(Error::Signature(SignatureError::Missing))?;
    let content = sign::canonical(
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::NOTIFY_EXCLUDES,
    );
    key.verify(&content, signature).map_err(|e| {
        // Said why when the notification names another algorithm.
        match form
            .get("sign_type")
            .filter(|t| !t.is_empty() && *t != "RSA2")
        {
            Some(other) if matches!(e, Error::Signature(SignatureError::Mismatch)) => {
                Error::Signature(SignatureError::SignTypeNotConfigured(other.clone()))
            }
            _ => e,
        }
    })
}

impl Client {
    /// Verifies a notification body (the raw form as POSTed) and decodes it: signature with
    /// Alipay's key, `app_id` this client's, `seller_id` the configured one (when configured).
    pub fn verify_notification(&self, body: &[u8]) -> Result<TradeNotification, Error> {
        self.verify_notification_of(body, true)
    }

    /// The same for a service provider's third-party app, whose trades are also those of the
    /// merchants who authorized it: `seller_id` is any merchant's, and the caller checks it
    /// against its own record of the trade (the signature and `app_id` are checked here).
    pub fn verify_merchant_notification(&self, body: &[u8]) -> Result<TradeNotification, Error> {
        self.verify_notification_of(body, false)
    }

    fn verify_notification_of(
        &self,
        body: &[u8],
        own_seller: bool,
    ) -> Result<TradeNotification, Error> {
        let mut form: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(body).map_err(|e| Error::decode("form", e))?;
        // Certificate mode holds every Alipay certificate seen: one of them signed it.
        let keys = self.notification_keys();
        let first = verify_form(&form, &keys[0]);
        if first.is_err() && !keys[1..].iter().any(|k| verify_form(&form, k).is_ok()) {
            first?;
        }
        form.remove("sign");
        let get = |k: &str| form.get(k).filter(|v| !v.is_empty()).cloned();
        let need = |k: &str| get(k).ok_or_else(|| Error::decode(k, "missing"));
        let amount = |k: &str| -> Result<Option<Fen>, Error> {
            get(k)
                .map(|v| Fen::from_yuan_str(&v).map_err(|e| Error::decode(k, e)))
                .transpose()
        };
        let app_id = need("app_id")?;
        if app_id != self.app_id() {
            return Err(Error::AccountMismatch {
                field: "app_id",
                expected: self.app_id().to_owned(),
                actual: app_id,
            });
        }
        let seller_id = get("seller_id");
        if let Some(expected) = self.seller_id().filter(|_| own_seller) {
            if seller_id.as_deref() != Some(expected) {
                return Err(Error::AccountMismatch {
                    field: "seller_id",
                    expected: expected.to_owned(),
                    actual: seller_id.unwrap_or_default(),
                });
            }
        }
        Ok(TradeNotification {
            app_id,
            seller_id,
            trade_no: need("trade_no")?,
            out_trade_no: need("out_trade_no")?,
            trade_status: TradeStatus::parse(&need("trade_status")?),
            total_amount: amount("total_amount")?
                .ok_or_else(|| Error::decode("total_amount", "missing"))?,
            receipt_amount: amount("receipt_amount")?,
            refund_fee: amount("refund_fee")?,
            out_biz_no: get("out_biz_no"),
            buyer_id: get("buyer_id"),
            notify_id: get("notify_id"),
            gmt_payment: get("gmt_payment"),
            fields: form,
        })
    }
}
