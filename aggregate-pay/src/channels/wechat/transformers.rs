//! WeChat Pay's wire values ↔ the channel vocabulary.

use wechat_pay::{
    Client, Error as WxError, H5Info, OrderQueryResponse, RefundStatus as WxRefundStatus, Trade,
    TradeState, UnifiedOrder, UnifiedOrderResponse,
};

use crate::channels::{ChannelPaymentState, CreatePayment, PayAction};
use crate::{ChannelError, PayMethod, RefundStatus};

/// The unified order for a payment request.
pub(super) fn unified_order(r: &CreatePayment) -> Result<UnifiedOrder, ChannelError> {
    let open_id = || {
        r.open_id
            .clone()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| ChannelError::Rejected {
                code: "OPENID_REQUIRED".into(),
                message: format!("{} needs the payer's openid", r.method),
            })
    };
    let trade = match r.method {
        PayMethod::WechatJsapi | PayMethod::WechatMiniProgram => Trade::jsapi(open_id()?),
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

/// A refund state.
pub(super) fn refund_status(s: &WxRefundStatus) -> RefundStatus {
    match s {
        WxRefundStatus::Success => RefundStatus::Succeeded,
        WxRefundStatus::RefundClose | WxRefundStatus::Change => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    }
}

/// A client error, as a channel error.
pub(super) fn error(e: WxError) -> ChannelError {
    match e {
        WxError::Transport(_) | WxError::HttpStatus { .. } => {
            ChannelError::Transport(e.to_string())
        }
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
        WxError::Config(m) => ChannelError::Config(m),
        other => ChannelError::Decode(other.to_string()),
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
