//! The `wechat` channel over API v3 (JSON, RSA signatures): transactions (JSAPI / Mini Program,
//! Native, H5, APP), query, close, refunds; notifications verified from their headers before
//! the resource is decrypted, acknowledged with 204 (or a 5xx with `{code, message}` to have
//! them sent again).

use wechat_pay::Error as WxError;
use wechat_pay::v3::{
    AbnormalRefund, AbnormalRefundTo, AppOrder, Client, CloseTransaction, CreateRefund, H5Order,
    JsapiOrder, NativeOrder, Notification, OrderRequest, QueryRefund, QueryTransaction,
    RefundStatus as V3RefundStatus, TradeState, TransactionRef, V3ErrorCode,
};

use super::transformers::{self, BALANCE_WAIT, RATE_WAIT};
use crate::channels::{
    AbnormalRefundResolution, AckBody, AckOutcome, ChannelNotification, ChannelPaymentState,
    ChannelRefund, CloseOutcome, CreatePayment, NotifiedStatus, NotifyKind, PayAction, RawNotify,
    RefundRequest,
};
use crate::{ChannelError, PayMethod, RefundStatus};

fn v3_code(e: &WxError) -> Option<&V3ErrorCode> {
    match e {
        WxError::V3Api { code, .. } => Some(code),
        _ => None,
    }
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
        other => transformers::error(other),
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

pub(super) async fn create(
    client: &Client,
    app_id: &str,
    r: &CreatePayment,
) -> Result<PayAction, ChannelError> {
    let mut order = OrderRequest::new(
        app_id,
        r.subject.chars().take(127).collect::<String>(),
        r.out_trade_no.clone(),
        r.amount,
        r.notify_url.clone(),
    );
    if let Some(at) = r.expires_at {
        order = order.time_expire(at);
    }
    let open_id = || {
        r.open_id
            .clone()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| ChannelError::Rejected {
                code: "OPENID_REQUIRED".into(),
                message: format!("{} needs the payer's openid", r.method),
            })
    };
    Ok(match r.method {
        PayMethod::WechatJsapi | PayMethod::WechatMiniProgram => {
            let openid = open_id()?;
            let prepay = client
                .execute(&JsapiOrder { order, openid })
                .await
                .map_err(error)?;
            PayAction::WechatJsapi {
                params: client
                    .jsapi_params(app_id, &prepay.prepay_id)
                    .map_err(error)?,
            }
        }
        PayMethod::WechatApp => {
            let prepay = client.execute(&AppOrder(order)).await.map_err(error)?;
            PayAction::WechatApp {
                params: client
                    .app_params(app_id, &prepay.prepay_id)
                    .map_err(error)?,
            }
        }
        PayMethod::WechatNative => PayAction::QrCode {
            content: client
                .execute(&NativeOrder(order))
                .await
                .map_err(error)?
                .code_url,
        },
        PayMethod::WechatH5 => PayAction::Redirect {
            url: client
                .execute(&H5Order {
                    order,
                    payer_client_ip: r.client_ip.clone(),
                    h5_type: "Wap".into(),
                })
                .await
                .map_err(error)?
                .h5_url,
        },
        other => return Err(ChannelError::Unsupported(format!("method {other}"))),
    })
}

pub(super) async fn query(
    client: &Client,
    out_trade_no: &str,
) -> Result<ChannelPaymentState, ChannelError> {
    let t = match client
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(
            out_trade_no.to_owned(),
        )))
        .await
    {
        Ok(t) => t,
        Err(e) if v3_code(&e) == Some(&V3ErrorCode::OrderNotExist) => {
            return Ok(ChannelPaymentState::NotFound);
        }
        Err(e) => return Err(error(e)),
    };
    Ok(match t.trade_state {
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
    })
}

pub(super) async fn close(
    client: &Client,
    out_trade_no: &str,
) -> Result<CloseOutcome, ChannelError> {
    match client
        .execute(&CloseTransaction {
            out_trade_no: out_trade_no.to_owned(),
        })
        .await
    {
        Ok(_) => Ok(CloseOutcome::Closed),
        Err(e) => match v3_code(&e) {
            Some(V3ErrorCode::OrderPaid) => Ok(CloseOutcome::AlreadyPaid),
            Some(V3ErrorCode::OrderClosed | V3ErrorCode::OrderNotExist) => Ok(CloseOutcome::Closed),
            _ => Err(error(e)),
        },
    }
}

/// A refund state: `ABNORMAL` (the money could not reach the payer) waits for the merchant to
/// apply for an abnormal refund — still counted as being refunded, never a failure.
fn refund_status(s: &V3RefundStatus) -> RefundStatus {
    match s {
        V3RefundStatus::Success => RefundStatus::Succeeded,
        V3RefundStatus::Closed => RefundStatus::Failed,
        V3RefundStatus::Abnormal => RefundStatus::Abnormal,
        _ => RefundStatus::Pending,
    }
}

pub(super) async fn resolve_abnormal_refund(
    client: &Client,
    out_refund_no: &str,
    refund_id: &str,
    to: &AbnormalRefundResolution,
) -> Result<ChannelRefund, ChannelError> {
    let to = match to {
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
    };
    let r = client
        .execute(&AbnormalRefund {
            refund_id: refund_id.to_owned(),
            out_refund_no: out_refund_no.to_owned(),
            to,
            sub_mchid: None,
        })
        .await
        .map_err(error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

pub(super) async fn refund(
    client: &Client,
    request: &RefundRequest,
) -> Result<ChannelRefund, ChannelError> {
    let mut refund = CreateRefund::new(
        TransactionRef::OutTradeNo(request.out_trade_no.clone()),
        request.out_refund_no.clone(),
        request.amount,
        request.total,
    );
    if let Some(reason) = &request.reason {
        refund = refund.reason(reason.chars().take(80).collect::<String>());
    }
    if let Some(url) = &request.notify_url {
        refund = refund.notify_url(url.clone());
    }
    let r = client.execute(&refund).await.map_err(refund_error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

pub(super) async fn query_refund(
    client: &Client,
    out_refund_no: &str,
) -> Result<Option<ChannelRefund>, ChannelError> {
    match client.execute(&QueryRefund::new(out_refund_no)).await {
        Ok(r) => Ok(Some(ChannelRefund {
            status: refund_status(&r.status),
            channel_refund_id: Some(r.refund_id),
        })),
        Err(e) if v3_code(&e) == Some(&V3ErrorCode::ResourceNotExists) => Ok(None),
        Err(e) => Err(error(e)),
    }
}

pub(super) async fn verify_notify(
    client: &Client,
    account: &str,
    raw: &RawNotify,
) -> Result<ChannelNotification, ChannelError> {
    let (envelope, event) = client
        .notification(|name| raw.header(name), &raw.body)
        .await
        .map_err(error)?;
    match (raw.kind, event) {
        (NotifyKind::Payment, Notification::Transaction(t)) => {
            let amount = t.amount.ok_or_else(|| {
                ChannelError::Decode(format!("{}: no amount", envelope.event_type))
            })?;
            Ok(ChannelNotification::Payment {
                account: format!("{}/{}", t.appid, t.mchid),
                out_trade_no: t.out_trade_no,
                transaction_id: t.transaction_id.unwrap_or_default(),
                amount: amount.total,
                currency: amount.currency,
                status: match t.trade_state {
                    TradeState::Success => NotifiedStatus::Paid,
                    TradeState::PayError => NotifiedStatus::Failed,
                    TradeState::Closed | TradeState::Revoked => NotifiedStatus::Closed,
                    _ => NotifiedStatus::Pending,
                },
            })
        }
        (NotifyKind::Refund, Notification::Refund(r)) => Ok(ChannelNotification::Refund {
            // A refund names only the merchant: it is this channel's when the merchant is.
            account: if r.mchid == client.mch_id() {
                account.to_owned()
            } else {
                format!("?/{}", r.mchid)
            },
            out_trade_no: r.out_trade_no,
            out_refund_no: r.out_refund_no,
            channel_refund_id: r.refund_id,
            amount: r.amount.refund,
            status: refund_status(&r.refund_status),
        }),
        (kind, _) => Err(ChannelError::Decode(format!(
            "{} is not a {kind:?} notification",
            envelope.event_type
        ))),
    }
}

pub(super) fn ack(outcome: &AckOutcome) -> AckBody {
    let (status, body) = match outcome {
        AckOutcome::Accepted => wechat_pay::v3::notify::reply_success(),
        AckOutcome::Retry(reason) => wechat_pay::v3::notify::reply_fail(reason),
    };
    AckBody {
        status,
        content_type: "application/json",
        body,
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

    #[test]
    fn acknowledgements_are_v3s() {
        let ok = ack(&AckOutcome::Accepted);
        assert_eq!((ok.status, ok.body.as_str()), (204, ""));
        let retry = ack(&AckOutcome::Retry("busy".into()));
        assert!(retry.status >= 500, "{retry:?}");
        assert!(retry.body.contains("FAIL"), "{retry:?}");
    }
}
