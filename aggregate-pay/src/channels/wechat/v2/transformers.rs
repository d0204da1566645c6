//! WeChat Pay API v2's wire values ↔ the channel vocabulary, and its refund codes that are final.

use std::time::Duration;

use wechat_pay::{
    Client, ErrCode, Error as WxError, H5Info, OrderQueryResponse, RefundStatus as WxRefundStatus,
    Trade, TradeState, UnifiedOrder, UnifiedOrderResponse,
};

use crate::channels::wechat::{BALANCE_WAIT, RATE_WAIT, client_error, open_id};
use crate::channels::{ChannelPaymentState, NewPayment, PayAction};
use crate::{ChannelError, PayMethod, RefundStatus};

/// The unified order for a payment request.
pub(super) fn unified_order(r: &NewPayment) -> Result<UnifiedOrder, ChannelError> {
    let trade = match r.method {
        PayMethod::WechatJsapi | PayMethod::WechatMiniProgram => Trade::jsapi(open_id(r)?),
        PayMethod::WechatNative => Trade::native(r.out_trade_no.clone()),
        PayMethod::WechatApp => Trade::App,
        PayMethod::WechatH5 => Trade::Mweb {
            scene: H5Info::Wap {
                wap_url: r.return_url.clone().unwrap_or_else(|| r.notify_url.clone()),
                wap_name: r.subject.chars().take(32).collect(),
            },
        },
        other => return Err(ChannelError::Unsupported(format!("method {other}"))),
    };
    let mut order = UnifiedOrder::new(
        trade,
        r.subject.chars().take(128).collect::<String>(),
        r.out_trade_no.clone(),
        r.amount,
        r.client_ip.clone(),
        r.notify_url.clone(),
    );
    if let Some(at) = r.expires_at {
        order = order.time_expire(at);
    }
    Ok(order)
}

/// What the front end does with a created order.
pub(super) fn pay_action(
    client: &Client,
    method: PayMethod,
    created: UnifiedOrderResponse,
) -> Result<PayAction, ChannelError> {
    let missing =
        |what: &str| ChannelError::Decode(format!("{what} missing from the unified order answer"));
    Ok(match method {
        PayMethod::WechatJsapi | PayMethod::WechatMiniProgram => PayAction::WechatJsapi {
            params: client.jsapi_params(&created.prepay_id).map_err(error)?,
        },
        PayMethod::WechatApp => PayAction::WechatApp {
            params: client.app_params(&created.prepay_id).map_err(error)?,
        },
        PayMethod::WechatNative => PayAction::QrCode {
            content: created.code_url.ok_or_else(|| missing("code_url"))?,
        },
        PayMethod::WechatH5 => PayAction::Redirect {
            url: created.mweb_url.ok_or_else(|| missing("mweb_url"))?,
        },
        other => return Err(ChannelError::Unsupported(format!("method {other}"))),
    })
}

/// An order query, as a channel state.
pub(super) fn payment_state(q: &OrderQueryResponse) -> ChannelPaymentState {
    match &q.trade_state {
        TradeState::Success | TradeState::Refund => match (&q.transaction_id, q.total_fee) {
            (Some(tid), Some(amount)) => ChannelPaymentState::Paid {
                transaction_id: tid.clone(),
                amount,
            },
            // Paid but the answer lacks the details: not something to act on.
            _ => ChannelPaymentState::Pending,
        },
        TradeState::Closed | TradeState::Revoked => ChannelPaymentState::Closed,
        TradeState::PayError => ChannelPaymentState::Failed,
        _ => ChannelPaymentState::Pending,
    }
}

/// Whether a payment-code error is the buyer's definitive "no" (nothing taken): the code is
/// expired, invalid or of another kind, the buyer's balance or card will not do, the order was
/// reversed or closed meanwhile.
pub(super) fn declines_code(code: &ErrCode) -> bool {
    matches!(
        code,
        ErrCode::AuthCodeExpire
            | ErrCode::AuthCodeInvalid
            | ErrCode::AuthCodeError
            | ErrCode::NotEnough
            | ErrCode::BuyerMismatch
            | ErrCode::UserAccountAbnormal
            | ErrCode::OrderReversed
            | ErrCode::OrderClosed
    ) || matches!(code, ErrCode::Other(c) if ["NOTSUPORTCARD", "PAYERROR", "TRADE_ERROR"].contains(&c.as_str()))
}

/// A refund state: `CHANGE` (the money could not reach the payer; resolved on the merchant
/// platform) is abnormal — still counted as being refunded, never a failure.
pub(super) fn refund_status(s: &WxRefundStatus) -> RefundStatus {
    match s {
        WxRefundStatus::Success => RefundStatus::Succeeded,
        WxRefundStatus::RefundClose => RefundStatus::Failed,
        WxRefundStatus::Change => RefundStatus::Abnormal,
        _ => RefundStatus::Pending,
    }
}

/// A client error, as a channel error: WeChat's "retry the same request" codes are
/// [`ChannelError::Unavailable`], other business codes definitive refusals.
pub(super) fn error(e: WxError) -> ChannelError {
    if e.is_retryable() {
        return unavailable(e, None);
    }
    match e {
        WxError::Business {
            err_code,
            err_code_des,
        } => ChannelError::Rejected {
            code: err_code.to_string(),
            message: err_code_des,
        },
        WxError::Protocol { return_msg } => ChannelError::Rejected {
            code: "FAIL".into(),
            message: return_msg,
        },
        WxError::Signature(_) => ChannelError::Signature(e.to_string()),
        other => client_error(other),
    }
}

/// A refund error. Only the codes WeChat documents as final for a refund are definitive (the
/// table below); the rest — `SYSTEMERROR`, `BIZERR_NEED_RETRY`, `INVALID_REQ_TOO_MUCH` and
/// `FREQUENCY_LIMITED` (after [`RATE_WAIT`]), `NOTENOUGH` (after [`BALANCE_WAIT`]) and any code
/// this crate does not know — leave the refund pending, to be sent again with the same
/// `out_refund_no`. So do errors that are not WeChat's answer at all (a transport error, an
/// answer whose signature does not verify): WeChat may have made the refund.
pub(super) fn refund_error(e: WxError) -> ChannelError {
    let Some(code) = e.err_code() else {
        return error(e);
    };
    let definitive = matches!(
        code,
        ErrCode::TradeOverdue
            | ErrCode::Error
            | ErrCode::UserAccountAbnormal
            | ErrCode::InvalidTransactionId
            | ErrCode::ParamError
            | ErrCode::AppIdNotExist
            | ErrCode::MchIdNotExist
            | ErrCode::AppIdMchIdNotMatch
            | ErrCode::OrderNotExist
            | ErrCode::LackParams
            | ErrCode::SignError
            | ErrCode::XmlFormatError
            | ErrCode::RequirePostMethod
            | ErrCode::PostDataEmpty
            | ErrCode::NotUtf8
            | ErrCode::NoAuth
            | ErrCode::InvalidRequest
    ) || matches!(code, ErrCode::Other(c) if DEFINITIVE_REFUND_CODES.contains(&c.as_str()));
    if definitive {
        return error(e);
    }
    let wait = match code {
        ErrCode::NotEnough => Some(BALANCE_WAIT),
        ErrCode::FrequencyLimited => Some(RATE_WAIT),
        ErrCode::Other(c) if c == "INVALID_REQ_TOO_MUCH" => Some(RATE_WAIT),
        _ => None,
    };
    unavailable(e, wait)
}

/// Final refund codes the `ErrCode` enum keeps as `Other`.
const DEFINITIVE_REFUND_CODES: &[&str] = &["TRADE_STATE_ERROR", "CERT_ERROR", "REFUND_FEE_INVALID"];

fn unavailable(e: WxError, retry_after: Option<Duration>) -> ChannelError {
    match e {
        WxError::Business {
            err_code,
            err_code_des,
        } => ChannelError::Unavailable {
            code: err_code.to_string(),
            message: err_code_des,
            retry_after,
        },
        other => ChannelError::Transport(other.to_string()),
    }
}

/// A notification error: forgeries are signature errors, the rest decode errors.
pub(super) fn notify_error(e: WxError) -> ChannelError {
    match e {
        WxError::Signature(_) | WxError::Decrypt(_) | WxError::AccountMismatch { .. } => {
            ChannelError::Signature(e.to_string())
        }
        other => error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business(code: &str) -> WxError {
        WxError::Business {
            err_code: ErrCode::from_wire(code),
            err_code_des: "des".into(),
        }
    }

    #[test]
    fn only_final_refund_codes_are_definitive() {
        for code in ["SYSTEMERROR", "BIZERR_NEED_RETRY", "SOMETHING_NEW"] {
            let e = refund_error(business(code));
            assert!(
                matches!(&e, ChannelError::Unavailable { code: c, retry_after: None, .. } if c == code),
                "{code}: {e:?}"
            );
        }
        let e = refund_error(business("NOTENOUGH"));
        assert_eq!(e.retry_after(), Some(BALANCE_WAIT), "{e:?}");
        assert!(e.is_retryable());
        // "Retry after a minute" is not a refusal: finding 1 of issue 27.
        for code in ["INVALID_REQ_TOO_MUCH", "FREQUENCY_LIMITED"] {
            let e = refund_error(business(code));
            assert!(!e.is_refusal(), "{code}: {e:?}");
            assert_eq!(e.retry_after(), Some(RATE_WAIT), "{code}: {e:?}");
        }
        for code in ["ERROR", "TRADE_OVERDUE", "USER_ACCOUNT_ABNORMAL"] {
            let e = refund_error(business(code));
            assert!(
                matches!(&e, ChannelError::Rejected { code: c, .. } if c == code),
                "{code}: {e:?}"
            );
        }
        assert!(matches!(
            refund_error(WxError::HttpStatus { status: 502 }),
            ChannelError::Transport(_)
        ));
        // An answer that does not verify or decode may hide a refund WeChat made.
        for e in [
            WxError::Signature(wechat_pay::SignatureError::Mismatch),
            WxError::Decode {
                field: "refund_id".into(),
                reason: "missing".into(),
            },
        ] {
            let e = refund_error(e);
            assert!(!e.is_refusal(), "{e:?}");
        }
        assert!(matches!(
            refund_error(WxError::Protocol {
                return_msg: "签名错误".into()
            }),
            ChannelError::Rejected { .. }
        ));
    }

    #[test]
    fn change_is_abnormal_not_failed() {
        assert_eq!(
            refund_status(&WxRefundStatus::Change),
            RefundStatus::Abnormal
        );
        assert_eq!(
            refund_status(&WxRefundStatus::RefundClose),
            RefundStatus::Failed
        );
        assert_eq!(
            refund_status(&WxRefundStatus::Processing),
            RefundStatus::Pending
        );
    }

    #[test]
    fn retryable_codes_are_not_refusals_anywhere() {
        assert!(error(business("SYSTEMERROR")).is_retryable());
        assert!(!error(business("ORDERPAID")).is_retryable());
    }
}
