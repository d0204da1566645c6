//! HTTP routes, one module per resource. What several of them share lives here: the JSON views
//! of orders and refunds, starting a payment for an order (open API and cashier alike), and
//! validation of merchant-supplied numbers.

pub mod admin;
pub mod alipay_auth;
pub mod bills;
pub mod bind;
pub mod cashier;
pub mod complaints;
pub mod mp;
pub mod open_api;

use std::sync::Arc;

use aggregate_pay::{Error, NewPayment, PayMethod, Payment, PaymentStatus};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::PlatformState;
use super::callback_data::PaymentTag;
use super::db::{Merchant, Order};
use crate::error::AppError;

/// Order and refund numbers: 1 to 32 of `[A-Za-z0-9_-]`.
pub fn valid_number(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The refund notify URL of the channel `channel_id`, when its refunds notify.
pub fn refund_notify_url(state: &PlatformState, channel_id: &str) -> Option<String> {
    state
        .payments
        .channels()
        .get(channel_id)
        .and_then(|c| crate::notify::refund_url(&state.settings.public_url, c.as_ref()))
}

/// The cashier page of an order.
pub fn cashier_url(state: &PlatformState, token: &str) -> String {
    format!("{}/cashier/{token}", state.settings.public_url)
}

/// Resolves `method` / `channel` of a request: a method wins (checked against the named
/// channel); a channel alone means its scan-to-pay method; neither means the buyer chooses at
/// the cashier.
pub fn resolve_method(
    state: &PlatformState,
    method: Option<&str>,
    channel: Option<&str>,
) -> Result<Option<PayMethod>, AppError> {
    Ok(crate::providers::resolve(state.payments.channels(), channel, method, &[])?.map(|(_, m)| m))
}

/// The order's status as the merchant sees it.
fn order_status(order: &Order, payment: Option<&Payment>, now: i64) -> &'static str {
    match payment {
        Some(p) => p.status.as_str(),
        None if order.closed => PaymentStatus::Closed.as_str(),
        None if order.expires_at.is_some_and(|t| t <= now) => PaymentStatus::Closed.as_str(),
        None => PaymentStatus::Pending.as_str(),
    }
}

/// The merchant's view of an order (what `merchant_client::PaymentView` decodes).
pub fn payment_view(state: &PlatformState, order: &Order, payment: Option<&Payment>) -> Value {
    json!({
        "out_trade_no": order.out_trade_no,
        "amount": order.amount,
        "subject": order.subject,
        "status": order_status(order, payment, crate::clock::unix_now()),
        "channel": payment.map(|p| p.channel.clone()),
        "method": order.method,
        "refunded_amount": payment.map_or(0, |p| p.refunded_amount.as_u64()),
        // Gross (`amount`), the platform's fee of what is still paid, and what the merchant nets.
        "fee": fee_and_net(payment).0,
        "net": fee_and_net(payment).1,
        "channel_transaction_id": payment.and_then(|p| p.channel_transaction_id.clone()),
        "pay": order.pay_action.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
        "payment_token": order.token,
        "cashier_url": cashier_url(state, &order.token),
        "expires_at": order.expires_at,
        "metadata": serde_json::from_str::<Value>(&order.metadata).unwrap_or(Value::Null),
    })
}

/// The fee and net of an order's payment: nothing is netted before it is paid.
fn fee_and_net(payment: Option<&Payment>) -> (u64, u64) {
    match payment.filter(|p| p.status.is_paid()) {
        Some(p) => {
            let (fee, net) = crate::platform::callback_data::fee_and_net(
                p.amount,
                p.refunded_amount,
                p.platform_fee,
            );
            (fee.as_u64(), net.as_u64())
        }
        None => (0, 0),
    }
}

/// Partner mode: the merchant's sub-merchant for `method`'s provider, or why it cannot take
/// payments there (`CHANNEL_UNAVAILABLE`): onboarded on WeChat Pay with its sub-merchant id, or
/// on Alipay by authorizing the platform's app (its Alipay user id).
pub(crate) fn sub_merchant_for(merchant: &Merchant, method: PayMethod) -> Result<String, AppError> {
    let sub = match method {
        PayMethod::WechatJsapi
        | PayMethod::WechatMiniProgram
        | PayMethod::WechatNative
        | PayMethod::WechatH5
        | PayMethod::WechatApp => merchant.wechat_sub_mchid.clone(),
        // For a merchant, Alipay's QR code and Mini Program (the others are signed pages the
        // buyer's browser carries, without the merchant's token).
        PayMethod::AlipayQr | PayMethod::AlipayMiniProgram => merchant.alipay_user_id.clone(),
        _ => None,
    };
    sub.ok_or_else(|| {
        AppError::unprocessable(
            "CHANNEL_UNAVAILABLE",
            format!(
                "{method} is not available to this merchant: the platform collects as a service \
                 provider, and the merchant is not onboarded on that provider"
            ),
        )
    })
}

/// The payment behind an order, if one was created (even if attaching it to the order did
/// not complete).
pub async fn payment_of(state: &PlatformState, order: &Order) -> Result<Option<Payment>, AppError> {
    match state.payments.get_by_out_trade_no(&order.platform_no).await {
        Ok(p) => Ok(Some(p)),
        Err(Error::PaymentNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates the payment of `order` with `method` and attaches it; returns the updated order and
/// the payment. Safe to repeat with the same method; another method than the one chosen first
/// is a conflict.
pub async fn start_payment(
    state: &Arc<PlatformState>,
    order: &Order,
    method: PayMethod,
) -> Result<(Order, Payment), AppError> {
    if let Some(chosen) = order.method {
        if chosen != method {
            return Err(AppError::conflict(
                "METHOD_ALREADY_CHOSEN",
                format!("the payment is already made by {chosen}"),
            ));
        }
    }
    let now = crate::clock::unix_now();
    if order.closed {
        return Err(AppError::conflict("INVALID_STATE", "the payment is closed"));
    }
    if order.payment_id.is_none() && order.expires_at.is_some_and(|t| t <= now) {
        return Err(AppError::conflict(
            "INVALID_STATE",
            "the payment has expired",
        ));
    }
    let channel = crate::providers::channel_for(state.payments.channels(), method)?
        .id()
        .to_owned();
    let mut request = NewPayment::new(
        order.platform_no.clone(),
        order.amount,
        order.subject.clone(),
        method,
        crate::notify::payment_url(&state.settings.public_url, &channel),
    )
    .metadata(
        PaymentTag {
            merchant_id: order.merchant_id.clone(),
            out_trade_no: order.out_trade_no.clone(),
            merchant_metadata: serde_json::from_str(&order.metadata).unwrap_or(Value::Null),
        }
        .to_metadata(),
    );
    if let Some(open_id) = &order.open_id {
        request = request.open_id(open_id.clone());
    }
    if let Some(at) = order
        .expires_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
    {
        request = request.expires_at(at);
    }
    if let Some(partner) = &state.partner {
        // The sub-merchant and fee come from the merchant's own record, never from the request.
        if method != PayMethod::Sandbox {
            let merchant = state
                .db
                .merchant(&order.merchant_id)
                .await
                .map_err(AppError::internal)?
                .ok_or_else(|| AppError::internal("an order's merchant vanished"))?;
            let sub = sub_merchant_for(&merchant, method)?;
            let rate = match merchant.fee_bps {
                Some(bps) => aggregate_pay::fees::FeeRate::bps(bps).map_err(AppError::internal)?,
                None => partner.fee_rate,
            };
            request = request
                .sub_merchant(sub)
                .platform_fee(rate.fee(order.amount));
        }
    }
    let (payment, action) = state.payments.create(request).await.map_err(|e| match e {
        Error::Conflict(_) => AppError::conflict(
            "METHOD_ALREADY_CHOSEN",
            "the payment was started with another method",
        ),
        other => other.into(),
    })?;
    let action = serde_json::to_string(&action).map_err(AppError::internal)?;
    let attached = state
        .db
        .attach_payment(order, method, &payment.id.0, &action)
        .await
        .map_err(AppError::internal)?;
    if !attached {
        return Err(AppError::conflict(
            "METHOD_ALREADY_CHOSEN",
            "the payment was started with another method",
        ));
    }
    let order = state
        .db
        .order(&order.merchant_id, &order.out_trade_no)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::internal("an order vanished"))?;
    Ok((order, payment))
}

/// `Ok((status, json))` or the error as `(status, {code, message})`: the answer stored under an
/// idempotency key.
pub fn answer(result: Result<(StatusCode, Value), AppError>) -> (StatusCode, Value) {
    match result {
        Ok(ok) => ok,
        Err(e) => (e.status, json!({"code": e.code, "message": e.message})),
    }
}
