//! Refunds: accepted as `PROCESSING`, completed later (automatically after the configured delay,
//! or through the control API: `settlement`), and the encrypted refund notification.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::Response;
use wechat_pay::Params;

use super::{Prefixed, WxReply, protocol, run};
use crate::notifier::{Ack, Delivery, WECHAT_SCHEDULE};
use crate::settlement;
use crate::state::{WxRefund, dashed_time, digits, key, now, wechat_time};
use crate::{SandboxState, lock};

fn business(code: &'static str, des: impl Into<String>) -> WxReply {
    WxReply::Business(code, des.into())
}

/// `/secapi/pay/refund`: idempotent by `out_refund_no`.
pub(super) async fn refund(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    let mut created: Option<WxRefund> = None;
    let response = run(&state, prefixed, &body, |state, req, changes| {
        for f in ["out_refund_no", "total_fee", "refund_fee"] {
            req.required(f)?;
        }
        let total_fee = req.amount("total_fee")?;
        let refund_fee = req.amount("refund_fee")?;
        let out_refund_no = req.required("out_refund_no")?;
        let mut wx = lock(&state.wechat);
        let mch = req.merchant.mch_id.clone();
        let order_key = {
            let order = match req.optional("transaction_id") {
                Some(tid) => wx
                    .orders
                    .values()
                    .find(|o| o.mch_id == mch && o.transaction_id == tid),
                None => {
                    let no = req
                        .optional("out_trade_no")
                        .ok_or_else(|| protocol("缺少参数 out_trade_no 或 transaction_id"))?;
                    wx.orders.get(&key(&mch, no))
                }
            }
            .ok_or_else(|| business("ORDERNOTEXIST", "订单不存在"))?;
            key(&mch, &order.out_trade_no)
        };
        let refund_key = key(&mch, out_refund_no);
        if let Some(existing) = wx.refunds.get(&refund_key) {
            if existing.refund_fee != refund_fee || existing.total_fee != total_fee {
                return Err(business(
                    "INVALID_REQUEST",
                    "退款单号重复，且退款金额与原请求不一致",
                ));
            }
            return Ok(WxReply::Ok(refund_fields(existing)));
        }
        let order = wx
            .orders
            .get_mut(&order_key)
            .ok_or_else(|| business("ORDERNOTEXIST", "订单不存在"))?;
        if !matches!(order.state.as_str(), "SUCCESS" | "REFUND") {
            return Err(business(
                "TRADE_STATE_ERROR",
                "订单状态错误：未支付的订单不能退款",
            ));
        }
        if total_fee != order.total_fee {
            return Err(business("INVALID_REQUEST", "订单金额与原订单不一致"));
        }
        if order.refunded + refund_fee > order.total_fee {
            return Err(business("ERROR", "累计退款金额大于支付金额"));
        }
        order.refunded += refund_fee;
        order.state = "REFUND".to_owned();
        let refund = WxRefund {
            app_id: order.app_id.clone(),
            mch_id: mch.clone(),
            out_refund_no: out_refund_no.to_owned(),
            refund_id: format!("5030{}{}", &wechat_time(now())[..8], digits(16)),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: order.transaction_id.clone(),
            total_fee,
            refund_fee,
            status: "PROCESSING".to_owned(),
            notify_url: req.optional("notify_url").map(str::to_owned),
            created_at: now(),
            success_at: None,
            sandbox_key: req.sandbox,
            v3: false,
            sub_mchid: None,
        };
        changes.orders.push(order.clone());
        changes.refunds.push(refund.clone());
        wx.refunds.insert(refund_key, refund.clone());
        created = Some(refund.clone());
        Ok(WxReply::Ok(refund_fields(&refund)))
    })
    .await;
    if let Some(refund) = created {
        settlement::schedule_completion(&state, &refund.out_refund_no, notify_refund);
    }
    response
}

fn refund_fields(r: &WxRefund) -> Params {
    let mut p = Params::new();
    p.insert("transaction_id", r.transaction_id.as_str());
    p.insert("out_trade_no", r.out_trade_no.as_str());
    p.insert("out_refund_no", r.out_refund_no.as_str());
    p.insert("refund_id", r.refund_id.as_str());
    p.insert("refund_fee", r.refund_fee.to_string());
    p.insert("total_fee", r.total_fee.to_string());
    p.insert("cash_fee", r.total_fee.to_string());
    p.insert("cash_refund_fee", r.refund_fee.to_string());
    p
}

/// `/pay/refundquery`: by refund number (one refund) or order number (all of the order's).
pub(super) async fn refund_query(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, _| {
        let wx = lock(&state.wechat);
        let mch = req.merchant.mch_id.as_str();
        let mine = wx.refunds.values().filter(|r| r.mch_id == mch);
        let refunds: Vec<&WxRefund> = if let Some(id) = req.optional("refund_id") {
            mine.filter(|r| r.refund_id == id).collect()
        } else if let Some(no) = req.optional("out_refund_no") {
            mine.filter(|r| r.out_refund_no == no).collect()
        } else if let Some(tid) = req.optional("transaction_id") {
            mine.filter(|r| r.transaction_id == tid).collect()
        } else if let Some(no) = req.optional("out_trade_no") {
            mine.filter(|r| r.out_trade_no == no).collect()
        } else {
            return Err(protocol(
                "缺少参数 out_refund_no / refund_id / out_trade_no / transaction_id",
            ));
        };
        let first = refunds
            .first()
            .ok_or_else(|| business("REFUNDNOTEXIST", "退款订单查询失败"))?;
        let order = wx
            .orders
            .get(&key(mch, &first.out_trade_no))
            .ok_or_else(|| business("REFUNDNOTEXIST", "退款订单查询失败"))?;
        let mut p = Params::new();
        p.insert("transaction_id", order.transaction_id.as_str());
        p.insert("out_trade_no", order.out_trade_no.as_str());
        p.insert("total_fee", order.total_fee.to_string());
        p.insert("cash_fee", order.total_fee.to_string());
        p.insert("fee_type", order.fee_type.as_str());
        p.insert("refund_count", refunds.len().to_string());
        for (n, r) in refunds.iter().enumerate() {
            p.insert(format!("out_refund_no_{n}"), r.out_refund_no.as_str());
            p.insert(format!("refund_id_{n}"), r.refund_id.as_str());
            p.insert(format!("refund_channel_{n}"), "ORIGINAL");
            p.insert(format!("refund_fee_{n}"), r.refund_fee.to_string());
            p.insert(
                format!("settlement_refund_fee_{n}"),
                r.refund_fee.to_string(),
            );
            p.insert(format!("refund_status_{n}"), v2_status(&r.status));
            p.insert(
                format!("refund_account_{n}"),
                "REFUND_SOURCE_UNSETTLED_FUNDS",
            );
            p.insert(format!("refund_recv_accout_{n}"), "支付用户的零钱");
            if let Some(t) = r.success_at {
                p.insert(format!("refund_success_time_{n}"), dashed_time(t));
            }
        }
        Ok(WxReply::Ok(p))
    })
    .await
}

/// A refund status as API v2 names it (`CHANGE` for abnormal, `REFUNDCLOSE` for closed).
fn v2_status(status: &str) -> &str {
    match status {
        "ABNORMAL" => "CHANGE",
        "CLOSED" => "REFUNDCLOSE",
        other => other,
    }
}

/// Sends API v2's encrypted refund notification of an ended refund (`SUCCESS`, `CHANGE`,
/// `REFUNDCLOSE`), if it named a notify URL.
pub(crate) fn notify_refund(state: &SandboxState, refund: &WxRefund) {
    // API v2 notifies every end: SUCCESS, CHANGE (abnormal) and REFUNDCLOSE.
    if let (Some(url), Some(key)) = (&refund.notify_url, state.refund_key(refund)) {
        let mut info = Params::new();
        info.insert("transaction_id", refund.transaction_id.as_str());
        info.insert("out_trade_no", refund.out_trade_no.as_str());
        info.insert("refund_id", refund.refund_id.as_str());
        info.insert("out_refund_no", refund.out_refund_no.as_str());
        info.insert("total_fee", refund.total_fee.to_string());
        info.insert("refund_fee", refund.refund_fee.to_string());
        info.insert("settlement_refund_fee", refund.refund_fee.to_string());
        info.insert("refund_status", v2_status(&refund.status));
        if let Some(at) = refund.success_at {
            info.insert("success_time", dashed_time(at));
        }
        info.insert("refund_recv_accout", "支付用户的零钱");
        info.insert("refund_account", "REFUND_SOURCE_UNSETTLED_FUNDS");
        info.insert("refund_request_source", "API");
        let mut outer = Params::new();
        outer.insert("return_code", "SUCCESS");
        outer.insert("appid", refund.app_id.as_str());
        outer.insert("mch_id", refund.mch_id.as_str());
        outer.insert("nonce_str", crate::state::hex32());
        outer.insert(
            "req_info",
            wechat_pay::notify::encrypt_refund_info(&info, &key),
        );
        state.notifier.send(Delivery {
            kind: "wechat.refund",
            reference: refund.out_refund_no.clone(),
            url: url.clone(),
            content_type: "text/xml; charset=utf-8",
            body: outer.to_xml(),
            ack: Ack::WechatXml,
            schedule: WECHAT_SCHEDULE,
            headers: None,
        });
    }
}
