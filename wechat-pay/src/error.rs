//! The crate's one error type.
//!
//! Transport trouble, a protocol failure (`return_code=FAIL`), a business failure
//! (`result_code=FAIL` with `err_code`), a bad signature, an undecodable message and a bad
//! configuration are distinct variants, so callers can tell "retry later" from "fix the request"
//! from "someone is forging messages". Payment states (NOTPAY, CLOSED, REFUND…) are values in the
//! responses, not errors.

use crate::sign::SignatureError;
use crate::wire_enum::wire_enum;
use crate::xml::XmlError;

/// Everything that can go wrong talking to WeChat Pay or reading its messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not complete (connection, TLS, timeout).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// WeChat Pay answered with an HTTP status other than 200.
    #[error("unexpected http status {status}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// `return_code=FAIL`: the request was not processed (bad signature, bad parameters…).
    #[error("wechat pay rejected the request: {return_msg}")]
    Protocol {
        /// WeChat's `return_msg`.
        return_msg: String,
    },
    /// `result_code=FAIL`: the request was processed and the operation failed.
    #[error("wechat pay business error {err_code}: {err_code_des}")]
    Business {
        /// WeChat's `err_code`.
        err_code: ErrCode,
        /// WeChat's `err_code_des`.
        err_code_des: String,
    },
    /// A response or notification failed signature verification.
    #[error("signature verification failed: {0}")]
    Signature(#[from] SignatureError),
    /// A body is not an acceptable XML message.
    #[error("invalid xml message: {0}")]
    Xml(#[from] XmlError),
    /// A field is missing or has a value that cannot be decoded.
    #[error("cannot decode field `{field}`: {reason}")]
    Decode {
        /// The field that failed.
        field: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An authentic payment notification (signature verified, for this account) saying the
    /// payment failed: record it and acknowledge it.
    #[error("payment {} failed: {}", .0.out_trade_no, .0.err_code)]
    PaymentFailed(Box<crate::notify::FailedPayment>),
    /// A refund notification's `req_info` could not be decrypted.
    #[error("cannot decrypt req_info: {0}")]
    Decrypt(&'static str),
    /// A signed message names another merchant or app than this client's.
    #[error("message is for another account: {field} is {value:?}")]
    AccountMismatch {
        /// `appid` or `mch_id`.
        field: &'static str,
        /// The value received.
        value: String,
    },
    /// API v3: WeChat Pay answered an error (`{code, message, detail}`) with `status`.
    #[error("wechat pay v3 error {status} {code}: {message}")]
    V3Api {
        /// The HTTP status.
        status: u16,
        /// WeChat's `code`.
        code: crate::v3::V3ErrorCode,
        /// WeChat's `message`.
        message: String,
        /// WeChat's `detail`, when given.
        detail: Option<serde_json::Value>,
    },
    /// API v3: WeChat Pay's signature on a response or notification was not accepted.
    #[error("wechat pay v3 signature: {0}")]
    V3Signature(#[from] crate::v3::SignatureError),
    /// API v3: a key could not be used.
    #[error("wechat pay v3 key: {0}")]
    V3Key(#[from] crate::v3::KeyError),
    /// API v3: an encrypted resource did not decrypt.
    #[error("wechat pay v3 resource: {0}")]
    V3Decrypt(#[from] crate::v3::aead::DecryptError),
    /// The client is not configured for this call (missing certificate, bad key…).
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn decode(field: &str, reason: impl Into<String>) -> Self {
        Error::Decode {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// The business error code, if this is a `result_code=FAIL` error.
    pub fn err_code(&self) -> Option<&ErrCode> {
        match self {
            Error::Business { err_code, .. } => Some(err_code),
            _ => None,
        }
    }

    /// Whether retrying the same request later may succeed (transport trouble, HTTP 5xx,
    /// WeChat's `SYSTEMERROR`, `BANKERROR`, `FREQUENCY_LIMITED`, `BIZERR_NEED_RETRY`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::HttpStatus { status } => *status >= 500,
            Error::V3Api { status, code, .. } => {
                *status >= 500 || *status == 429 || code.is_retryable()
            }
            Error::Business { err_code, .. } => matches!(
                err_code,
                ErrCode::SystemError
                    | ErrCode::BankError
                    | ErrCode::FrequencyLimited
                    | ErrCode::BizErrNeedRetry
            ),
            _ => false,
        }
    }
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        // reqwest errors can carry the URL; ours never has secrets in it (they travel in the
        // body), so it is kept for diagnosis.
        Error::Transport(e)
    }
}

wire_enum! {
    /// WeChat Pay's `err_code` values.
    pub enum ErrCode {
        /// The merchant lacks permission for this API.
        NoAuth => "NOAUTH",
        /// The payer's balance is insufficient.
        NotEnough => "NOTENOUGH",
        /// The order is already paid.
        OrderPaid => "ORDERPAID",
        /// The order is already closed.
        OrderClosed => "ORDERCLOSED",
        /// The order is already reversed.
        OrderReversed => "ORDERREVERSED",
        /// WeChat had an internal error; retry with the same parameters.
        SystemError => "SYSTEMERROR",
        /// The bank had an error; query before retrying.
        BankError => "BANKERROR",
        /// The app id does not exist.
        AppIdNotExist => "APPID_NOT_EXIST",
        /// The merchant id does not exist.
        MchIdNotExist => "MCHID_NOT_EXIST",
        /// The app id and merchant id do not belong together.
        AppIdMchIdNotMatch => "APPID_MCHID_NOT_MATCH",
        /// A required parameter is missing.
        LackParams => "LACK_PARAMS",
        /// The out_trade_no was already used with other parameters.
        OutTradeNoUsed => "OUT_TRADE_NO_USED",
        /// WeChat could not verify the request's signature.
        SignError => "SIGNERROR",
        /// The request body is not valid XML.
        XmlFormatError => "XML_FORMAT_ERROR",
        /// The request was not a POST.
        RequirePostMethod => "REQUIRE_POST_METHOD",
        /// The request body was empty.
        PostDataEmpty => "POST_DATA_EMPTY",
        /// The request was not UTF-8.
        NotUtf8 => "NOT_UTF8",
        /// The order does not exist.
        OrderNotExist => "ORDERNOTEXIST",
        /// The refund does not exist.
        RefundNotExist => "REFUNDNOTEXIST",
        /// The payer is entering their password (micropay): query the order.
        UserPaying => "USERPAYING",
        /// The payment code has expired (micropay).
        AuthCodeExpire => "AUTHCODEEXPIRE",
        /// The payment code is invalid (micropay).
        AuthCodeInvalid => "AUTH_CODE_INVALID",
        /// The payment code failed verification (micropay).
        AuthCodeError => "AUTH_CODE_ERROR",
        /// A parameter has an invalid value.
        ParamError => "PARAM_ERROR",
        /// The order is too old to refund.
        TradeOverdue => "TRADE_OVERDUE",
        /// A generic business error; see `err_code_des`.
        Error => "ERROR",
        /// The payer's account is abnormal.
        UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
        /// The transaction id is invalid.
        InvalidTransactionId => "INVALID_TRANSACTIONID",
        /// Too many requests; slow down and retry.
        FrequencyLimited => "FREQUENCY_LIMITED",
        /// The request conflicts with an earlier one with the same number.
        InvalidRequest => "INVALID_REQUEST",
        /// Retry the same request.
        BizErrNeedRetry => "BIZERR_NEED_RETRY",
        /// The payment type is not allowed for this payer.
        BuyerMismatch => "BUYER_MISMATCH",
        /// No bill exists for the date (downloadbill).
        NoBillExist => "NO_BILL_EXIST",
        /// The bill is not generated yet (downloadbill).
        BillCreating => "BILL_CREATING",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_codes_round_trip_and_keep_unknown_values() {
        assert_eq!(ErrCode::from_wire("ORDERPAID"), ErrCode::OrderPaid);
        assert_eq!(ErrCode::OrderPaid.as_str(), "ORDERPAID");
        assert_eq!(
            ErrCode::from_wire("SOMETHING_NEW"),
            ErrCode::Other("SOMETHING_NEW".into())
        );
        assert_eq!(
            ErrCode::from_wire("SOMETHING_NEW").as_str(),
            "SOMETHING_NEW"
        );
    }

    #[test]
    fn retryable_errors() {
        let business = |code: &str| Error::Business {
            err_code: ErrCode::from_wire(code),
            err_code_des: String::new(),
        };
        assert!(business("SYSTEMERROR").is_retryable());
        assert!(!business("ORDERPAID").is_retryable());
        assert!(Error::HttpStatus { status: 502 }.is_retryable());
        assert!(!Error::HttpStatus { status: 404 }.is_retryable());
    }
}
