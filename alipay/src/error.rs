//! One error enum for the crate. Transport trouble, a gateway refusal, a bad signature, an
//! undecodable answer and a configuration mistake are distinct variants; a refusal carries
//! Alipay's `code`, a typed `sub_code` and the message, and says whether retrying may help.

/// What can go wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The gateway could not be reached, timed out, or answered with an HTTP error.
    #[error("transport error: {0}")]
    Transport(String),
    /// The gateway answered, signed, with a code other than success (`10000`).
    #[error("alipay refused ({code} {sub_code}): {message}")]
    Gateway {
        /// Alipay's `code` (`40004` business failure, `20000` service unavailable, `40002`
        /// invalid parameter…).
        code: String,
        /// Alipay's `sub_code` (`ACQ.TRADE_NOT_EXIST`…).
        sub_code: SubCode,
        /// `sub_msg`, else `msg`.
        message: String,
    },
    /// A signature is missing or does not verify.
    #[error("signature error: {0}")]
    Signature(SignatureError),
    /// A notification names another app or seller than this client's.
    #[error("{field} is {actual:?}, expected {expected:?}")]
    AccountMismatch {
        /// `app_id` or `seller_id`.
        field: &'static str,
        /// This client's.
        expected: String,
        /// The notification's.
        actual: String,
    },
    /// An answer or a notification could not be decoded.
    #[error("cannot decode {field}: {detail}")]
    Decode {
        /// The field (or `response`, `form`).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A key could not be read or used.
    #[error("key error: {0}")]
    Key(String),
    /// The client is misconfigured.
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn decode(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Decode {
            field: field.into(),
            detail: detail.to_string(),
        }
    }

    /// Whether the same request may succeed later: transport trouble, Alipay's "service
    /// unavailable" (`20000`) and its system errors. Idempotent requests (same `out_trade_no`,
    /// same `out_request_no`) are safe to retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::Gateway { code, sub_code, .. } => code == "20000" || sub_code.is_retryable(),
            _ => false,
        }
    }

    /// The `sub_code` of a gateway refusal.
    pub fn sub_code(&self) -> Option<&SubCode> {
        match self {
            Error::Gateway { sub_code, .. } => Some(sub_code),
            _ => None,
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// There is no `sign`.
    #[error("not signed")]
    Missing,
    /// The signature is not valid base64 or does not match the content.
    #[error(
        "the RSA2 signature does not match: verify with Alipay's public key (not the app's own \
         public key, the usual mix-up; in certificate mode, the Alipay certificate's), over the \
         answer's or notification's text exactly as received"
    )]
    Mismatch,
    /// The notification says it is signed with another algorithm than RSA2 (`sign_type=RSA`:
    /// SHA1withRSA, which this client does not verify).
    #[error(
        "the notification is signed with sign_type {0:?}; this client verifies RSA2 only: set \
         the app's signing to RSA2 (SHA256withRSA) in Alipay's console"
    )]
    SignTypeNotConfigured(String),
    /// Certificate mode: the answer names an Alipay certificate (`alipay_cert_sn`) this client
    /// does not hold and could not download (or was not allowed to try again yet).
    #[error("signed with an Alipay certificate this client does not hold")]
    UnknownCertificate,
    /// Certificate mode: a downloaded Alipay certificate does not chain to the root, is outside
    /// its validity, or is not the one asked for.
    #[error("the Alipay certificate is not trusted")]
    UntrustedCertificate,
}

macro_rules! sub_codes {
    ($($variant:ident => $text:literal, $retry:literal;)*) => {
        /// Alipay's `sub_code` of a refusal; unknown codes are kept as they are.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SubCode {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )*
            /// Any other code (or none: empty).
            Other(String),
        }

        impl SubCode {
            /// The code as Alipay writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(SubCode::$variant => $text,)*
                    SubCode::Other(s) => s,
                }
            }

            /// Reads a code (Alipay sometimes prefixes trade codes with `aop.`).
            pub fn parse(s: &str) -> Self {
                match s.strip_prefix("aop.").unwrap_or(s) {
                    $($text => SubCode::$variant,)*
                    other => SubCode::Other(other.to_owned()),
                }
            }

            /// Whether retrying the same request later may succeed.
            pub fn is_retryable(&self) -> bool {
                match self {
                    $(SubCode::$variant => $retry,)*
                    SubCode::Other(s) => s.is_empty() || s.ends_with("SYSTEM_ERROR") || s.starts_with("isp."),
                }
            }
        }
    };
}

sub_codes! {
    SystemError => "ACQ.SYSTEM_ERROR", true;
    InvalidParameter => "ACQ.INVALID_PARAMETER", false;
    TradeNotExist => "ACQ.TRADE_NOT_EXIST", false;
    TradeHasSuccess => "ACQ.TRADE_HAS_SUCCESS", false;
    TradeHasClose => "ACQ.TRADE_HAS_CLOSE", false;
    TradeStatusError => "ACQ.TRADE_STATUS_ERROR", false;
    TradeHasFinished => "ACQ.TRADE_HAS_FINISHED", false;
    SellerBalanceNotEnough => "ACQ.SELLER_BALANCE_NOT_ENOUGH", true;
    RefundAmountNotEqualTotal => "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", false;
    RefundAmountRestricted => "ACQ.REFUND_AMOUNT_RESTRICTED", false;
    BuyerBalanceNotEnough => "ACQ.BUYER_BALANCE_NOT_ENOUGH", false;
    PaymentAuthCodeInvalid => "ACQ.PAYMENT_AUTH_CODE_INVALID", false;
    ContextInconsistent => "ACQ.CONTEXT_INCONSISTENT", false;
    TotalFeeExceed => "ACQ.TOTAL_FEE_EXCEED", false;
    InvalidSignature => "isv.invalid-signature", false;
    InvalidAppId => "isv.invalid-app-id", false;
    BillNotExist => "isp.bill_not_exist", true;
}

impl std::fmt::Display for SubCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_where_to_look() {
        let text = SignatureError::Mismatch.to_string();
        assert!(text.contains("Alipay's public key"), "{text}");
        assert!(text.contains("exactly as received"), "{text}");
    }

    #[test]
    fn sub_codes_round_trip_and_keep_unknown_ones() {
        assert_eq!(
            SubCode::parse("ACQ.TRADE_NOT_EXIST"),
            SubCode::TradeNotExist
        );
        assert_eq!(SubCode::parse("aop.ACQ.SYSTEM_ERROR"), SubCode::SystemError);
        let odd = SubCode::parse("ACQ.SOMETHING_NEW");
        assert_eq!(odd, SubCode::Other("ACQ.SOMETHING_NEW".into()));
        assert_eq!(odd.as_str(), "ACQ.SOMETHING_NEW");
        assert!(!odd.is_retryable());
        assert!(SubCode::SystemError.is_retryable());
        assert!(SubCode::parse("isp.unknow-error").is_retryable());
        assert!(!SubCode::TradeNotExist.is_retryable());
    }

    #[test]
    fn retryable_errors() {
        assert!(Error::Transport("timeout".into()).is_retryable());
        let unavailable = Error::Gateway {
            code: "20000".into(),
            sub_code: SubCode::Other("isp.unknow-error".into()),
            message: "Service Currently Unavailable".into(),
        };
        assert!(unavailable.is_retryable());
        let missing = Error::Gateway {
            code: "40004".into(),
            sub_code: SubCode::TradeNotExist,
            message: "no trade".into(),
        };
        assert!(!missing.is_retryable());
        assert_eq!(missing.sub_code(), Some(&SubCode::TradeNotExist));
        assert!(!Error::Signature(SignatureError::Mismatch).is_retryable());
    }
}
