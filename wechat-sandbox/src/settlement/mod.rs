//! What WeChat Pay's API v2 (`wxpay`) and API v3 (`wxpay_v3`) share: an order's and a
//! refund's life — paid, refund ended or resolved, a refund completing by itself — the changes to
//! persist, and the bills (`bills`). The two version folders use this module and never each
//! other: a change here returns the changed record, and whoever caused it sends the
//! notification of the record's API version (`control.rs` for the control API).

pub mod bills;

use std::sync::Arc;

use crate::state::{WxOrder, WxRefund, hex32, key, now};
use crate::{SandboxState, lock};

/// Orders and refunds an endpoint changed, to persist before answering.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub orders: Vec<WxOrder>,
    pub refunds: Vec<WxRefund>,
}

/// Why the control API could not pay an order.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// No such order.
    #[error("no WeChat Pay order {0}")]
    NotFound(String),
    /// The order cannot be paid in its state.
    #[error("order {0} is {1} and cannot be paid")]
    State(String, String),
}

/// An order as it was before it was paid (what a withheld query answers: see
/// [`crate::faults`]).
pub(crate) fn unpaid(order: &WxOrder) -> WxOrder {
    let mut o = order.clone();
    if o.paid_at.is_some() {
        o.state = "NOTPAY".to_owned();
        o.paid_at = None;
    }
    o
}

/// The paying user's action: marks the order paid (or failed) and persists it; the caller
/// sends the notification of its API version.
pub async fn pay_order(
    state: &SandboxState,
    out_trade_no: &str,
    success: bool,
    open_id: Option<&str>,
) -> Result<WxOrder, PayError> {
    let order = {
        let mut wx = lock(&state.wechat);
        let order = wx
            .orders
            .values_mut()
            .find(|o| o.out_trade_no == out_trade_no)
            .ok_or_else(|| PayError::NotFound(out_trade_no.to_owned()))?;
        if !matches!(order.state.as_str(), "NOTPAY" | "USERPAYING") {
            return Err(PayError::State(
                out_trade_no.to_owned(),
                order.state.clone(),
            ));
        }
        if success {
            order.state = "SUCCESS".to_owned();
            order.paid_at = Some(now());
            if let Some(o) = open_id {
                order.openid = Some(o.to_owned());
            } else if order.openid.is_none() {
                order.openid = Some(format!("oSandbox{}", &hex32()[..20]));
            }
        } else {
            order.state = "PAYERROR".to_owned();
        }
        order.clone()
    };
    state
        .persist_wechat(&Changes {
            orders: vec![order.clone()],
            refunds: vec![],
        })
        .await;
    Ok(order)
}

/// Completes the refund by itself after the configured delay (scaled), if there is one, and
/// sends its notification with `notify` (the refund's API version's).
pub(crate) fn schedule_completion(
    state: &Arc<SandboxState>,
    out_refund_no: &str,
    notify: fn(&SandboxState, &WxRefund),
) {
    let Some(delay) = state.config.refund_delay else {
        return;
    };
    let state = Arc::clone(state);
    let out_refund_no = out_refund_no.to_owned();
    let delay = delay.div_f64(state.config.time_scale.max(f64::MIN_POSITIVE));
    tokio::spawn(async move {
        tokio::select! {
            _ = state.shutdown.cancelled() => {}
            _ = tokio::time::sleep(delay) => {
                if let Ok((refund, true)) =
                    finish_refund(&state, &out_refund_no, RefundOutcome::Success).await
                {
                    notify(&state, &refund);
                }
            }
        }
    });
}

/// Why a refund could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteRefundError {
    /// No such refund.
    #[error("no WeChat Pay refund {0}")]
    NotFound(String),
}

/// The refund numbered `out_refund_no`.
fn refund_mut<'a>(
    wx: &'a mut crate::state::WechatPayState,
    out_refund_no: &str,
) -> Result<&'a mut WxRefund, CompleteRefundError> {
    wx.refunds
        .values_mut()
        .find(|r| r.out_refund_no == out_refund_no)
        .ok_or_else(|| CompleteRefundError::NotFound(out_refund_no.to_owned()))
}

/// The merchant resolved an abnormal refund on the merchant platform (API v2's only way; v3
/// has the abnormal-refund call too): it is PROCESSING again, to end like any refund. A refund
/// that is not abnormal is returned unchanged.
pub async fn resolve_on_platform(
    state: &SandboxState,
    out_refund_no: &str,
) -> Result<WxRefund, CompleteRefundError> {
    let refund = {
        let mut wx = lock(&state.wechat);
        let refund = refund_mut(&mut wx, out_refund_no)?;
        if refund.status != "ABNORMAL" {
            return Ok(refund.clone());
        }
        refund.status = "PROCESSING".to_owned();
        refund.clone()
    };
    state
        .persist_wechat(&Changes {
            orders: vec![],
            refunds: vec![refund.clone()],
        })
        .await;
    Ok(refund)
}

/// How a refund ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundOutcome {
    /// The money reached the payer.
    Success,
    /// It could not reach the payer (API v3: the merchant applies for an abnormal refund).
    Abnormal,
    /// Closed without refunding: the amount can be refunded again.
    Closed,
}

impl RefundOutcome {
    fn status(self) -> &'static str {
        match self {
            RefundOutcome::Success => "SUCCESS",
            RefundOutcome::Abnormal => "ABNORMAL",
            RefundOutcome::Closed => "CLOSED",
        }
    }
}

/// Ends a refund that is still processing as `outcome` and persists it; `true` with it when it
/// changed (the caller then notifies it in its API version). A refund already ended is
/// returned unchanged, with `false`.
pub async fn finish_refund(
    state: &SandboxState,
    out_refund_no: &str,
    outcome: RefundOutcome,
) -> Result<(WxRefund, bool), CompleteRefundError> {
    let (refund, order) = {
        let mut wx = lock(&state.wechat);
        let refund = refund_mut(&mut wx, out_refund_no)?;
        if refund.status != "PROCESSING" {
            return Ok((refund.clone(), false));
        }
        refund.status = outcome.status().to_owned();
        if outcome == RefundOutcome::Success {
            refund.success_at = Some(now());
        }
        let refund = refund.clone();
        let order = (outcome == RefundOutcome::Closed)
            .then(|| {
                wx.orders
                    .get_mut(&key(&refund.mch_id, &refund.out_trade_no))
            })
            .flatten()
            .map(|o| {
                o.refunded = o.refunded.saturating_sub(refund.refund_fee);
                if o.refunded == 0 {
                    o.state = "SUCCESS".to_owned();
                }
                o.clone()
            });
        (refund, order)
    };
    state
        .persist_wechat(&Changes {
            orders: order.into_iter().collect(),
            refunds: vec![refund.clone()],
        })
        .await;
    Ok((refund, true))
}
