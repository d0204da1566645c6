//! Buyers' payment codes: a test (or the `/sandbox` page) mints a code with what its buyer will
//! do — pay at once, hold the payment while "confirming", or decline — and a merchant's scanner
//! charges it through WeChat Pay (v2 `micropay`, v3 `codepay`) or Alipay (`alipay.trade.pay`).
//! A held payment is approved or declined later with `POST /sandbox/payment-code/decide`.
//!
//! Codes have the providers' shapes (WeChat: 18 digits from `10`–`15`; Alipay: 16–24 digits
//! from `25`–`30`) and are good for one order: a code charged for another order is refused. A
//! well-formed code that was not minted still works: WeChat codes from `13` are held, others
//! paid at once.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::control::Channel;
use crate::lock;
use crate::state::digits;

/// What the buyer does when the code is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// Pays at once.
    #[default]
    Approve,
    /// Confirms on the phone: the payment waits (`USERPAYING`, Alipay `10003`) until decided.
    Hold,
    /// Cannot pay (the balance is short): declined, nothing taken.
    Decline,
}

#[derive(Debug, Clone)]
struct Minted {
    provider: Channel,
    behaviour: Behaviour,
    open_id: Option<String>,
    /// The order it was charged for.
    used_by: Option<String>,
}

/// The minted codes (in memory: a code lives for minutes).
#[derive(Debug, Default)]
pub(crate) struct PaymentCodes {
    codes: Mutex<HashMap<String, Minted>>,
}

/// The code cannot pay (malformed, of the other provider, or already used for another order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidCode;

/// What charging a code found: the buyer's behaviour, and who pays (when minted for a buyer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Charge {
    pub behaviour: Behaviour,
    pub open_id: Option<String>,
}

fn well_formed(provider: Channel, code: &str) -> bool {
    let prefix = code.get(..2).and_then(|p| p.parse::<u8>().ok());
    code.bytes().all(|b| b.is_ascii_digit())
        && match provider {
            Channel::Wechat => code.len() == 18 && matches!(prefix, Some(10..=15)),
            Channel::Alipay => (16..=24).contains(&code.len()) && matches!(prefix, Some(25..=30)),
        }
}

impl PaymentCodes {
    /// A new code of `provider` whose buyer (`open_id`, when given) will behave so.
    pub(crate) fn mint(
        &self,
        provider: Channel,
        behaviour: Behaviour,
        open_id: Option<String>,
    ) -> String {
        let code = match provider {
            Channel::Wechat => format!("10{}", digits(16)),
            Channel::Alipay => format!("28{}", digits(16)),
        };
        lock(&self.codes).insert(
            code.clone(),
            Minted {
                provider,
                behaviour,
                open_id,
                used_by: None,
            },
        );
        code
    }

    /// Charges `code` for order `out_trade_no` of `provider`: once per code (the same order
    /// again is the same charge).
    pub(crate) fn charge(
        &self,
        provider: Channel,
        code: &str,
        out_trade_no: &str,
    ) -> Result<Charge, InvalidCode> {
        if !well_formed(provider, code) {
            return Err(InvalidCode);
        }
        let mut codes = lock(&self.codes);
        let Some(minted) = codes.get_mut(code) else {
            let held = provider == Channel::Wechat && code.starts_with("13");
            return Ok(Charge {
                behaviour: if held {
                    Behaviour::Hold
                } else {
                    Behaviour::Approve
                },
                open_id: None,
            });
        };
        if minted.provider != provider
            || minted
                .used_by
                .as_deref()
                .is_some_and(|used| used != out_trade_no)
        {
            return Err(InvalidCode);
        }
        minted.used_by = Some(out_trade_no.to_owned());
        Ok(Charge {
            behaviour: minted.behaviour,
            open_id: minted.open_id.clone(),
        })
    }

    /// The provider and order a minted code was charged for.
    pub(crate) fn order_of(&self, code: &str) -> Option<(Channel, String)> {
        lock(&self.codes)
            .get(code)
            .and_then(|m| m.used_by.clone().map(|o| (m.provider, o)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_pays_one_order_only() {
        let codes = PaymentCodes::default();
        let code = codes.mint(Channel::Wechat, Behaviour::Hold, None);
        assert!(well_formed(Channel::Wechat, &code));
        assert_eq!(
            codes
                .charge(Channel::Wechat, &code, "A")
                .map(|c| c.behaviour),
            Ok(Behaviour::Hold)
        );
        assert!(
            codes.charge(Channel::Wechat, &code, "A").is_ok(),
            "the same order again"
        );
        assert_eq!(codes.charge(Channel::Wechat, &code, "B"), Err(InvalidCode));
        assert_eq!(codes.charge(Channel::Alipay, &code, "A"), Err(InvalidCode));
        assert_eq!(
            codes.order_of(&code),
            Some((Channel::Wechat, "A".to_owned()))
        );
    }

    #[test]
    fn codes_have_their_providers_shapes() {
        let codes = PaymentCodes::default();
        let ali = codes.mint(Channel::Alipay, Behaviour::Decline, None);
        assert!(well_formed(Channel::Alipay, &ali));
        assert!(!well_formed(Channel::Wechat, &ali));
        assert_eq!(
            codes.charge(Channel::Wechat, "163456789012345678", "A"),
            Err(InvalidCode)
        );
        assert_eq!(
            codes
                .charge(Channel::Wechat, "134567890123456789", "A")
                .map(|c| c.behaviour),
            Ok(Behaviour::Hold)
        );
    }
}
