//! What a seller (vending-server) or an operator (pay-platform) sends to resolve an abnormal
//! refund — the money could not reach the buyer: `{"to": "merchant_bank_account"}`, or
//! `{"to": "payer_bank_card", "bank_type", "bank_account", "real_name"}` with a debit card the
//! buyer gave. Checked here, before any channel sees it; the card's account and holder never
//! print (`Debug`) and are never recorded in the audit.

use aggregate_pay::channels::AbnormalRefundResolution;
use serde::Deserialize;

use crate::error::AppError;

/// The request body.
#[derive(Deserialize)]
#[serde(tag = "to", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResolveAbnormalRefund {
    /// To the merchant's own settlement account.
    MerchantBankAccount,
    /// To a debit card of the buyer's.
    PayerBankCard {
        /// The provider's bank type code (`ICBC_DEBIT`…).
        bank_type: String,
        /// The card number.
        bank_account: String,
        /// The holder's name.
        real_name: String,
    },
}

impl std::fmt::Debug for ResolveAbnormalRefund {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl ResolveAbnormalRefund {
    /// `merchant_bank_account` or `payer_bank_card` (what the audit records).
    pub fn kind(&self) -> &'static str {
        match self {
            ResolveAbnormalRefund::MerchantBankAccount => "merchant_bank_account",
            ResolveAbnormalRefund::PayerBankCard { .. } => "payer_bank_card",
        }
    }

    /// The resolution, once every field is of the right form (422 `RESOLUTION_INVALID` else).
    pub fn checked(self) -> Result<AbnormalRefundResolution, AppError> {
        let invalid = |m: &str| AppError::unprocessable("RESOLUTION_INVALID", m);
        Ok(match self {
            ResolveAbnormalRefund::MerchantBankAccount => {
                AbnormalRefundResolution::MerchantBankAccount
            }
            ResolveAbnormalRefund::PayerBankCard {
                bank_type,
                bank_account,
                real_name,
            } => {
                let bank_type = bank_type.trim().to_owned();
                if bank_type.is_empty()
                    || bank_type.len() > 32
                    || !bank_type
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(invalid(
                        "bank_type is the provider's code, such as ICBC_DEBIT",
                    ));
                }
                let bank_account: String = bank_account
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if !(10..=30).contains(&bank_account.len())
                    || !bank_account.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid("bank_account is a card number of 10 to 30 digits"));
                }
                let real_name = real_name.trim().to_owned();
                if real_name.is_empty() || real_name.chars().count() > 64 {
                    return Err(invalid("real_name is the card holder's name"));
                }
                AbnormalRefundResolution::PayerBankCard {
                    bank_type,
                    bank_account,
                    real_name,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_details_are_checked_and_never_print() {
        let ok: ResolveAbnormalRefund = serde_json::from_value(serde_json::json!({
            "to": "payer_bank_card", "bank_type": "ICBC_DEBIT",
            "bank_account": "6222 0000 1111 2222", "real_name": "张三"
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{ok:?}"), "payer_bank_card");
        let resolution = ok.checked().unwrap_or_else(|e| panic!("{e:?}"));
        let shown = format!("{resolution:?}");
        assert!(
            !shown.contains("6222") && !shown.contains("张三"),
            "{shown}"
        );
        for bad in [
            serde_json::json!({"to": "payer_bank_card", "bank_type": "icbc", "bank_account": "6222000011112222", "real_name": "x"}),
            serde_json::json!({"to": "payer_bank_card", "bank_type": "ICBC_DEBIT", "bank_account": "12ab", "real_name": "x"}),
            serde_json::json!({"to": "payer_bank_card", "bank_type": "ICBC_DEBIT", "bank_account": "6222000011112222", "real_name": " "}),
        ] {
            let r: ResolveAbnormalRefund =
                serde_json::from_value(bad.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert!(r.checked().is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<ResolveAbnormalRefund>(
                serde_json::json!({"to": "somewhere_else"})
            )
            .is_err()
        );
    }
}
