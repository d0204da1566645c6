//! Inbound notifications: payment results (signed XML) and refund results (encrypted
//! `req_info`), and the replies WeChat expects.
//!
//! A payment notification is verified over **every field received**, including fields this crate
//! does not model (`coupon_fee_0`, `sub_*`, whatever WeChat adds next), because the signature
//! covers them all. A missing `sign` is a failure, never a skip. The amount is decoded as an
//! integer [`Fen`] and must be compared with the order's as an integer.
//!
//! WeChat v2 notifications carry no signed timestamp, so unlike webhook schemes with a tolerance
//! window there is no clock to inject: the same notification is re-sent for up to 24 hours and
//! every copy is valid. Duplicates are the receiver's state machine's business.

use crate::types::flag;
use crate::{ApiKey, Coupon, ErrCode, Error, Fen, Params, RefundStatus, SignType, TradeType};

/// Which algorithm verifies a payment notification. A [`crate::Client`] uses its own sign type
/// unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifySignType {
    /// Whichever the notification's own `sign_type` names, MD5 when it has none: accepts both
    /// types, so a key that signs with one can be verified with the other. An explicit choice
    /// (while switching types), never the client's default.
    FromBody,
    /// Always this type, whatever the body says (the client's default: its own sign type).
    Forced(SignType),
}

/// An authentic payment notification saying the payment failed (`result_code=FAIL`): record the
/// failure and acknowledge it, or WeChat sends it again for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedPayment {
    /// `appid`.
    pub app_id: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `transaction_id`, when WeChat sent one.
    pub transaction_id: Option<String>,
    /// `total_fee`, when WeChat sent it.
    pub total_fee: Option<Fen>,
    /// `err_code`.
    pub err_code: ErrCode,
    /// `err_code_des`.
    pub err_code_des: String,
    /// Every field received.
    pub raw: Params,
}

/// A verified payment notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaymentNotification {
    /// `appid`.
    pub app_id: String,
    /// `mch_id`.
    pub mch_id: String,
    /// `device_info`.
    pub device_info: Option<String>,
    /// `openid`.
    pub open_id: String,
    /// `is_subscribe`.
    pub is_subscribe: Option<bool>,
    /// `trade_type`.
    pub trade_type: TradeType,
    /// `bank_type`.
    pub bank_type: String,
    /// `total_fee`: the order amount. Compare it with the order's, as integers.
    pub total_fee: Fen,
    /// `settlement_total_fee`.
    pub settlement_total_fee: Option<Fen>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `cash_fee`.
    pub cash_fee: Fen,
    /// `cash_fee_type`.
    pub cash_fee_type: Option<String>,
    /// `coupon_fee`.
    pub coupon_fee: Option<Fen>,
    /// `coupon_*_$n`.
    pub coupons: Vec<Coupon>,
    /// `transaction_id`.
    pub transaction_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `attach`.
    pub attach: Option<String>,
    /// `time_end` (`yyyyMMddHHmmss`, UTC+8).
    pub time_end: String,
    /// Every field received, the unmodeled ones included.
    pub raw: Params,
}

impl FailedPayment {
    fn decode(params: Params) -> Result<Self, Error> {
        Ok(FailedPayment {
            app_id: params.optional_string("appid").unwrap_or_default(),
            mch_id: params.optional_string("mch_id").unwrap_or_default(),
            out_trade_no: params
                .optional_string("out_trade_no")
                .ok_or_else(|| Error::decode("out_trade_no", "missing"))?,
            transaction_id: params.optional_string("transaction_id"),
            total_fee: params.optional_fen("total_fee")?,
            err_code: ErrCode::from_wire(params.get("err_code").unwrap_or_default()),
            err_code_des: params.optional_string("err_code_des").unwrap_or_default(),
            raw: params,
        })
    }
}

/// Verifies a payment notification body with `key` and decodes it.
///
/// Order of checks: size and XML shape, `return_code`, the signature, `result_code` (a
/// `FAIL` is returned as [`Error::PaymentFailed`] — the message was authentic: record it and
/// acknowledge it), then the typed fields.
///
/// ```
/// use wechat_pay::{notify, ApiKey, Error, NotifySignType};
/// let forged = b"<xml><return_code>SUCCESS</return_code><out_trade_no>1</out_trade_no></xml>";
/// let err = notify::verify_payment_notification(forged, &ApiKey::new("k"), NotifySignType::FromBody)
///     .unwrap_err();
/// assert!(matches!(err, Error::Signature(_)));
/// ```
pub fn verify_payment_notification(
    body: &[u8],
    key: &ApiKey,
    policy: NotifySignType,
) -> Result<PaymentNotification, Error> {
    let params = Params::from_xml(body)?;
    if params.get("return_code") != Some("SUCCESS") {
        return Err(Error::Protocol {
            return_msg: params.get("return_msg").unwrap_or_default().to_owned(),
        });
    }
    let sign_type = match policy {
        NotifySignType::Forced(t) => t,
        NotifySignType::FromBody => match params.optional("sign_type") {
            None => SignType::Md5,
            Some(t) => t.parse::<SignType>()?,
        },
    };
    params.verify(key, sign_type)?;
    if params.get("result_code") != Some("SUCCESS") {
        return Err(Error::PaymentFailed(Box::new(FailedPayment::decode(
            params,
        )?)));
    }
    PaymentNotification::decode(params)
}

impl PaymentNotification {
    fn decode(p: Params) -> Result<Self, Error> {
        Ok(PaymentNotification {
            app_id: p.required_string("appid")?,
            mch_id: p.required_string("mch_id")?,
            device_info: p.optional_string("device_info"),
            open_id: p.required_string("openid")?,
            is_subscribe: flag(&p, "is_subscribe"),
            trade_type: p.required_parse("trade_type")?,
            bank_type: p.required_string("bank_type")?,
            total_fee: p.required_fen("total_fee")?,
            settlement_total_fee: p.optional_fen("settlement_total_fee")?,
            fee_type: p.optional_string("fee_type"),
            cash_fee: p.required_fen("cash_fee")?,
            cash_fee_type: p.optional_string("cash_fee_type"),
            coupon_fee: p.optional_fen("coupon_fee")?,
            coupons: Coupon::read_all(&p)?,
            transaction_id: p.required_string("transaction_id")?,
            out_trade_no: p.required_string("out_trade_no")?,
            attach: p.optional_string("attach"),
            time_end: p.required_string("time_end")?,
            raw: p,
        })
    }
}

/// A decrypted refund notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundNotification {
    /// `appid` (outer message).
    pub app_id: String,
    /// `mch_id` (outer message).
    pub mch_id: String,
    /// `transaction_id`.
    pub transaction_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `refund_id`.
    pub refund_id: String,
    /// `out_refund_no`.
    pub out_refund_no: String,
    /// `total_fee`.
    pub total_fee: Fen,
    /// `settlement_total_fee`.
    pub settlement_total_fee: Option<Fen>,
    /// `refund_fee`: the amount asked.
    pub refund_fee: Fen,
    /// `settlement_refund_fee`: the amount refunded.
    pub settlement_refund_fee: Option<Fen>,
    /// `refund_status`: a value (SUCCESS, CHANGE, REFUNDCLOSE).
    pub refund_status: RefundStatus,
    /// `success_time` (`yyyy-MM-dd HH:mm:ss`, UTC+8).
    pub success_time: Option<String>,
    /// `refund_recv_accout` (WeChat's spelling).
    pub refund_recv_account: Option<String>,
    /// `refund_account`.
    pub refund_account: Option<String>,
    /// `refund_request_source` (`API` or `VENDOR_PLATFORM`).
    pub refund_request_source: Option<String>,
    /// Every decrypted field.
    pub raw: Params,
}

/// Decrypts and decodes a refund notification body with `key`.
///
/// The outer message is not signed; `req_info` is AES-256-ECB encrypted with the lower-case hex
/// MD5 of the API key, which is what authenticates it: a body that does not decrypt with the key
/// into a well-formed message is rejected.
pub fn decrypt_refund_notification(body: &[u8], key: &ApiKey) -> Result<RefundNotification, Error> {
    let outer = Params::from_xml(body)?;
    if outer.get("return_code") != Some("SUCCESS") {
        return Err(Error::Protocol {
            return_msg: outer.get("return_msg").unwrap_or_default().to_owned(),
        });
    }
    let plain = crate::refund_crypto::decrypt_req_info(outer.required("req_info")?, key)?;
    let p = Params::from_xml_any_root(plain.as_bytes())?;
    Ok(RefundNotification {
        app_id: outer.required_string("appid")?,
        mch_id: outer.required_string("mch_id")?,
        transaction_id: p.required_string("transaction_id")?,
        out_trade_no: p.required_string("out_trade_no")?,
        refund_id: p.required_string("refund_id")?,
        out_refund_no: p.required_string("out_refund_no")?,
        total_fee: p.required_fen("total_fee")?,
        settlement_total_fee: p.optional_fen("settlement_total_fee")?,
        refund_fee: p.required_fen("refund_fee")?,
        settlement_refund_fee: p.optional_fen("settlement_refund_fee")?,
        refund_status: p.required_parse("refund_status")?,
        success_time: p.optional_string("success_time"),
        refund_recv_account: p.optional_string("refund_recv_accout"),
        refund_account: p.optional_string("refund_account"),
        refund_request_source: p.optional_string("refund_request_source"),
        raw: p,
    })
}

/// Encrypts the fields of a refund notification into `req_info` as WeChat does (for emulators
/// and tests; a merchant never needs this). `info` is written as the `<root>` document WeChat
/// encrypts.
pub fn encrypt_refund_info(info: &Params, key: &ApiKey) -> String {
    let xml = info.to_xml();
    let inner = xml
        .strip_prefix("<xml>")
        .and_then(|s| s.strip_suffix("</xml>"))
        .unwrap_or(&xml);
    crate::refund_crypto::encrypt_req_info(&format!("<root>{inner}</root>"), key)
}

/// The reply to a notification. `SUCCESS` stops WeChat's retries; anything else (or no reply)
/// makes WeChat send the notification again later.
///
/// ```
/// use wechat_pay::NotifyReply;
/// assert_eq!(
///     NotifyReply::success().to_xml(),
///     "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyReply {
    success: bool,
    message: String,
}

impl NotifyReply {
    /// Processed (or already processed): stop sending it.
    pub fn success() -> Self {
        NotifyReply {
            success: true,
            message: "OK".to_owned(),
        }
    }

    /// Not processed: send it again later. The message is for WeChat's logs.
    pub fn fail(message: impl Into<String>) -> Self {
        NotifyReply {
            success: false,
            message: message.into(),
        }
    }

    /// Whether this acknowledges the notification.
    pub fn is_success(&self) -> bool {
        self.success
    }

    /// The reply body.
    pub fn to_xml(&self) -> String {
        let code = if self.success { "SUCCESS" } else { "FAIL" };
        // `]]>` cannot appear inside CDATA: split the section around it.
        let message = self.message.replace("]]>", "]]]]><![CDATA[>");
        format!(
            "<xml><return_code><![CDATA[{code}]]></return_code>\
             <return_msg><![CDATA[{message}]]></return_msg></xml>"
        )
    }
}
