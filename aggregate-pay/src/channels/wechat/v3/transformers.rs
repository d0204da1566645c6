//! WeChat Pay API v3's wire values ↔ the channel vocabulary, and its refund codes that are final.

use wechat_pay::Error as WxError;
use wechat_pay::v3::{
    AbnormalRefundTo, RefundStatus as V3RefundStatus, TradeState, Transaction, V3ErrorCode,
};

use crate::channels::wechat::{BALANCE_WAIT, RATE_WAIT, client_error};
use crate::channels::{AbnormalRefundResolution, ChannelPaymentState, NotifiedStatus};
use crate::{ChannelError, RefundStatus};

/// WeChat's error code, when the error is WeChat's answer.
pub(super) fn v3_code(e: &WxError) -> Option<&V3ErrorCode> {
    match e {
        WxError::V3Api { code, .. } => Some(code),
        _ => None,
    }
}

/// Whether a code payment's error is the buyer's definitive "no" (nothing taken).
pub(super) fn declines_code(code: &V3ErrorCode) -> bool {
    matches!(
        code,
        V3ErrorCode::UserAccountAbnormal | V3ErrorCode::TradeError | V3ErrorCode::NotEnough
    ) || matches!(code, V3ErrorCode::Other(c) if [
            "AUTHCODEEXPIRE", "AUTH_CODE_INVALID", "AUTH_CODE_ERROR", "NOTENOUGH",
            "BUYER_MISMATCH", "NOTSUPORTCARD", "PAYERROR", "ORDERREVERSED",
        ].contains(&c.as_str()))
}

/// A client error, as a channel error: WeChat's "retry" answers (5xx, 429, `SYSTEM_ERROR`…) are
/// [`ChannelError::Unavailable`], other error codes definitive refusals, bad signatures on an
/// answer signature errors.
pub(super) fn error(e: WxError) -> ChannelError {
    let retryable = e.is_retryable();
    match e {
        WxError::V3Api { code, message, .. } if retryable => ChannelError::Unavailable {
            code: code.to_string(),
            message,
            retry_after: None,
        },
        WxError::V3Api { code, message, .. } => ChannelError::Rejected {
            code: code.to_string(),
            message,
        },
        WxError::V3Signature(_) | WxError::V3Decrypt(_) => ChannelError::Signature(e.to_string()),
        WxError::V3Key(_) => ChannelError::Config(e.to_string()),
        other => client_error(other),
    }
}

/// A refund error. Only codes that say the refund can never be made are definitive (the table
/// below); the rest — `SYSTEM_ERROR`, `FREQUENCY_LIMITED` and 429 (after [`RATE_WAIT`]),
/// `BANKERROR`, `NOT_ENOUGH` (after [`BALANCE_WAIT`]), any 5xx and any code this crate does not
/// know — leave the refund pending, to be sent again with the same `out_refund_no`. So does an
/// answer whose signature does not verify: WeChat may have made the refund.
pub(super) fn refund_error(e: WxError) -> ChannelError {
    let Some(code) = v3_code(&e) else {
        return error(e);
    };
    let definitive = matches!(
        code,
        V3ErrorCode::ParamError
            | V3ErrorCode::InvalidRequest
            | V3ErrorCode::ResourceNotExists
            | V3ErrorCode::OrderNotExist
            | V3ErrorCode::UserAccountAbnormal
            | V3ErrorCode::NoAuth
            | V3ErrorCode::MchNotExists
            | V3ErrorCode::AppIdMchIdNotMatch
            | V3ErrorCode::SignError
    );
    if definitive {
        return error(e);
    }
    let wait = match (code, &e) {
        (V3ErrorCode::NotEnough, _) => Some(BALANCE_WAIT),
        (V3ErrorCode::FrequencyLimited, _) | (_, WxError::V3Api { status: 429, .. }) => {
            Some(RATE_WAIT)
        }
        _ => None,
    };
    match e {
        WxError::V3Api { code, message, .. } => ChannelError::Unavailable {
            code: code.to_string(),
            message,
            retry_after: wait,
        },
        other => error(other),
    }
}

/// A refund state: `ABNORMAL` (the money could not reach the payer) waits for the merchant to
/// apply for an abnormal refund — still counted as being refunded, never a failure.
pub(super) fn refund_status(s: &V3RefundStatus) -> RefundStatus {
    match s {
        V3RefundStatus::Success => RefundStatus::Succeeded,
        V3RefundStatus::Closed => RefundStatus::Failed,
        V3RefundStatus::Abnormal => RefundStatus::Abnormal,
        _ => RefundStatus::Pending,
    }
}

/// A queried transaction, as a channel state.
pub(super) fn payment_state(t: Transaction) -> ChannelPaymentState {
    match t.trade_state {
        TradeState::Success | TradeState::Refund => match (t.transaction_id, t.amount) {
            (Some(transaction_id), Some(amount)) => ChannelPaymentState::Paid {
                transaction_id,
                amount: amount.total,
            },
            // Paid but the answer lacks the details: not something to act on.
            _ => ChannelPaymentState::Pending,
        },
        TradeState::Closed | TradeState::Revoked => ChannelPaymentState::Closed,
        TradeState::PayError => ChannelPaymentState::Failed,
        _ => ChannelPaymentState::Pending,
    }
}

/// A notified trade state.
pub(super) fn notified(state: &TradeState) -> NotifiedStatus {
    match state {
        TradeState::Success => NotifiedStatus::Paid,
        TradeState::PayError => NotifiedStatus::Failed,
        TradeState::Closed | TradeState::Revoked => NotifiedStatus::Closed,
        _ => NotifiedStatus::Pending,
    }
}

/// Where an abnormal refund's money goes, in v3's terms.
pub(super) fn abnormal_refund_to(to: &AbnormalRefundResolution) -> AbnormalRefundTo {
    match to {
        AbnormalRefundResolution::PayerBankCard {
            bank_type,
            bank_account,
            real_name,
        } => AbnormalRefundTo::UserBankCard {
            bank_type: bank_type.clone(),
            bank_account: bank_account.clone(),
            real_name: real_name.clone(),
        },
        AbnormalRefundResolution::MerchantBankAccount => AbnormalRefundTo::MerchantBankCard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> WxError {
        WxError::V3Api {
            status,
            code: V3ErrorCode::from_wire(code),
            message: "m".into(),
            detail: None,
        }
    }

    #[test]
    fn only_final_v3_refund_codes_are_definitive() {
        for (status, code) in [(500, "SYSTEM_ERROR"), (400, "SOMETHING_NEW")] {
            let e = refund_error(api(status, code));
            assert!(
                matches!(&e, ChannelError::Unavailable { code: c, retry_after: None, .. } if c == code),
                "{code}: {e:?}"
            );
        }
        let e = refund_error(api(403, "NOT_ENOUGH"));
        assert_eq!(e.retry_after(), Some(BALANCE_WAIT), "{e:?}");
        for (status, code) in [(429, "FREQUENCY_LIMITED"), (429, "RATELIMIT_EXCEEDED")] {
            let e = refund_error(api(status, code));
            assert!(!e.is_refusal(), "{code}: {e:?}");
            assert_eq!(e.retry_after(), Some(RATE_WAIT), "{code}: {e:?}");
        }
        assert!(
            !refund_error(WxError::V3Signature(
                wechat_pay::v3::SignatureError::Mismatch
            ))
            .is_refusal(),
            "an answer that does not verify may hide a refund WeChat made"
        );
        assert_eq!(
            refund_status(&V3RefundStatus::Abnormal),
            RefundStatus::Abnormal
        );
        for code in ["PARAM_ERROR", "INVALID_REQUEST", "RESOURCE_NOT_EXISTS"] {
            let e = refund_error(api(400, code));
            assert!(
                matches!(&e, ChannelError::Rejected { code: c, .. } if c == code),
                "{code}: {e:?}"
            );
        }
        assert!(error(api(500, "SYSTEM_ERROR")).is_retryable());
        assert!(!error(api(400, "ORDERPAID")).is_retryable());
    }
}
