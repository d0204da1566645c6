//! A buyer's payment code, as a scanner reads it, and the channel it belongs to.
//!
//! WeChat and Alipay document their codes' shapes, so the code alone says where to charge it:
//!
//! | provider | digits | prefix | method |
//! |---|---|---|---|
//! | WeChat Pay | 18 | `10`–`15` | [`PayMethod::WechatPaymentCode`] |
//! | Alipay | 16–24 | `25`–`30` | [`PayMethod::AlipayPaymentCode`] |
//!
//! Anything else is refused before any channel is called. A code is a one-time credential
//! worth the buyer's balance for a minute: `Debug` and `Display` show only its first digits.

use std::fmt;

use crate::{Error, PayMethod};

/// A payment code of a known provider (see the module's table).
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentCode {
    code: String,
    method: PayMethod,
}

impl PaymentCode {
    /// Reads a scanned code (surrounding whitespace ignored); a code of no known provider is
    /// [`Error::Invalid`].
    pub fn parse(scanned: &str) -> Result<Self, Error> {
        let code = scanned.trim();
        let digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
        let prefix = code.get(..2).and_then(|p| p.parse::<u8>().ok());
        let method = match (digits, code.len(), prefix) {
            (true, 18, Some(10..=15)) => PayMethod::WechatPaymentCode,
            (true, 16..=24, Some(25..=30)) => PayMethod::AlipayPaymentCode,
            _ => {
                return Err(Error::Invalid(
                    "not a WeChat Pay (18 digits from 10–15) or Alipay (16–24 digits from 25–30) \
                     payment code"
                        .into(),
                ));
            }
        };
        Ok(PaymentCode {
            code: code.to_owned(),
            method,
        })
    }

    /// The method (and so the channel) the code is charged through.
    pub fn method(&self) -> PayMethod {
        self.method
    }

    /// The code itself, to send to its provider.
    pub fn expose(&self) -> &str {
        &self.code
    }
}

impl fmt::Debug for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentCode({self} via {})", self.method)
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.code[..4])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_prefix_is_routed_to_its_provider() {
        let method = |c: &str| PaymentCode::parse(c).map(|c| c.method()).ok();
        for p in 10..=15 {
            assert_eq!(
                method(&format!("{p}3456789012345678")),
                Some(PayMethod::WechatPaymentCode)
            );
        }
        for p in 25..=30 {
            for len in [16, 18, 24] {
                let code = format!("{p}{}", "7".repeat(len - 2));
                assert_eq!(method(&code), Some(PayMethod::AlipayPaymentCode), "{code}");
            }
        }
        assert_eq!(
            method(" 134567890123456789\n"),
            Some(PayMethod::WechatPaymentCode)
        );
    }

    #[test]
    fn unknown_prefixes_and_shapes_are_refused() {
        for bad in [
            "",
            "16345678901234567",         // WeChat prefix, 17 digits
            "163456789012345678",        // 16 is not a WeChat prefix, 18 digits
            "093456789012345678",        // 09
            "31345678901234567",         // 31
            "2534567890123",             // Alipay prefix, too short
            "2534567890123456789012345", // 25 digits
            "13456789012345678a",
            "１３４５６７８９０１２３４５６７８９",
        ] {
            assert!(
                matches!(PaymentCode::parse(bad), Err(Error::Invalid(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn the_code_never_shows_in_debug_or_display() {
        let code = PaymentCode::parse("134567890123456789").unwrap_or_else(|e| panic!("{e}"));
        for shown in [format!("{code:?}"), code.to_string()] {
            assert!(!shown.contains("134567890123456789"), "{shown}");
        }
        assert_eq!(code.expose(), "134567890123456789");
    }
}
