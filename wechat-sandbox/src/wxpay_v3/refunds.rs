//! `/v3/refund/domestic/refunds`: create (idempotent by `out_refund_no`), query, apply for an
//! abnormal refund; and the v3 refund notification. v3 refunds live beside v2's, marked `v3`;
//! they end through the same completion (after the configured delay, or the control API).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Answer, V3Error, V3Notification, authenticated, decrypt_field, notify, param, reply, rfc3339,
    text, v3_error,
};
use crate::state::{WxOrder, WxRefund, digits, key, now, wechat_time};
use crate::{SandboxState, lock};

fn not_found(what: &str) -> V3Error {
    v3_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", what)
}

fn invalid(message: &str) -> V3Error {
    v3_error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// A refund as v3 reports it (answers and notifications).
pub(crate) fn refund_record(r: &WxRefund) -> Value {
    let mut v = json!({
        "refund_id": r.refund_id,
        "out_refund_no": r.out_refund_no,
        "transaction_id": r.transaction_id,
        "out_trade_no": r.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(r.created_at),
        "status": r.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": r.total_fee,
            "refund": r.refund_fee,
            "payer_total": r.total_fee,
            "payer_refund": r.refund_fee,
            "settlement_refund": r.refund_fee,
            "settlement_total": r.total_fee,
            "discount_refund": 0,
            "currency": "CNY",
        },
    });
    if let Some(sub) = &r.sub_mchid {
        v["sub_mchid"] = json!(sub);
    }
    if let Some(t) = r.success_at {
        v["success_time"] = json!(rfc3339(t));
    }
    v
}

/// `POST /v3/refund/domestic/refunds`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut created = None;
    let answer = create_refund(&state, &method, &uri, &headers, &body).map(|(r, new)| {
        if new {
            created = Some(r.out_refund_no.clone());
        }
        (StatusCode::OK, Some(refund_record(&r)))
    });
    if let Some(no) = &created {
        let changes = {
            let wx = lock(&state.wechat);
            let refund = wx
                .refunds
                .values()
                .find(|r| &r.out_refund_no == no)
                .cloned();
            let order = refund
                .as_ref()
                .and_then(|r| wx.orders.get(&key(&r.mch_id, &r.out_trade_no)).cloned());
            crate::settlement::Changes {
                orders: order.into_iter().collect(),
                refunds: refund.into_iter().collect(),
            }
        };
        state.persist_wechat(&changes).await;
        crate::settlement::schedule_completion(&state, no, refund_notification);
    }
    reply(&state, &headers, answer)
}

/// The refund, and whether it is new.
fn create_refund(
    state: &SandboxState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(WxRefund, bool), V3Error> {
    let req = authenticated(state, method, uri, headers, body)?;
    let b = &req.body;
    let mch = req.merchant.mch_id.clone();
    let out_refund_no = text(b, "out_refund_no")?;
    if !(1..=64).contains(&out_refund_no.len()) {
        return Err(param("out_refund_no: 1 to 64 characters"));
    }
    let amount = |f: &str| {
        b["amount"][f]
            .as_u64()
            .filter(|a| *a > 0)
            .ok_or_else(|| param(format!("amount.{f}: a positive integer of fen")))
    };
    let refund_fee = amount("refund")?;
    let total_fee = amount("total")?;
    if b["amount"]["currency"].as_str() != Some("CNY") {
        return Err(param("amount.currency 只支持 CNY"));
    }
    // Partner mode: the sub-merchant named must be the order's (and one of this provider's).
    let sub_mchid = b["sub_mchid"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    if let Some(sub) = &sub_mchid {
        if !req.merchant.sub_merchants.contains(sub) {
            return Err(super::no_relation());
        }
    }
    let ours = |o: &&WxOrder| {
        o.sign_type == "RSA" && o.partner.as_ref().map(|p| &p.sub_mchid) == sub_mchid.as_ref()
    };
    let mut wx = lock(&state.wechat);
    let order_key = {
        let order = match (b["transaction_id"].as_str(), b["out_trade_no"].as_str()) {
            (Some(tid), _) => wx
                .orders
                .values()
                .find(|o| o.mch_id == mch && o.transaction_id == tid),
            (None, Some(no)) => wx.orders.get(&key(&mch, no)),
            (None, None) => return Err(param("缺少参数 out_trade_no 或 transaction_id")),
        }
        .filter(ours)
        .ok_or_else(|| not_found("订单不存在"))?;
        key(&mch, &order.out_trade_no)
    };
    let refund_key = key(&mch, &out_refund_no);
    if let Some(existing) = wx.refunds.get(&refund_key) {
        if existing.refund_fee != refund_fee || existing.total_fee != total_fee {
            return Err(invalid("退款单号重复，且退款金额与原请求不一致"));
        }
        return Ok((existing.clone(), false));
    }
    let order = wx
        .orders
        .get_mut(&order_key)
        .ok_or_else(|| not_found("订单不存在"))?;
    if !matches!(order.state.as_str(), "SUCCESS" | "REFUND") {
        return Err(invalid("订单状态错误：未支付的订单不能退款"));
    }
    if total_fee != order.total_fee {
        return Err(param("amount.total 与原订单金额不一致"));
    }
    if order.refunded + refund_fee > order.total_fee {
        return Err(invalid("申请退款金额超过订单可退金额"));
    }
    // Money shared away is not the merchant's to refund until it is returned.
    if !super::profit_sharing::refundable(state, order, refund_fee) {
        return Err(v3_error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            "基本账户余额不足：已分账的资金须先回退再退款",
        ));
    }
    let at = now();
    order.refunded += refund_fee;
    order.state = "REFUND".to_owned();
    let refund = WxRefund {
        app_id: order.app_id.clone(),
        mch_id: mch,
        out_refund_no,
        refund_id: format!("5030{}{}", &wechat_time(at)[..8], digits(16)),
        out_trade_no: order.out_trade_no.clone(),
        transaction_id: order.transaction_id.clone(),
        total_fee,
        refund_fee,
        status: "PROCESSING".to_owned(),
        notify_url: b["notify_url"].as_str().map(str::to_owned),
        created_at: at,
        success_at: None,
        sandbox_key: false,
        v3: true,
        sub_mchid,
    };
    wx.refunds.insert(refund_key, refund.clone());
    Ok((refund, true))
}

fn find(state: &SandboxState, mch: &str, pick: impl Fn(&WxRefund) -> bool) -> Option<WxRefund> {
    lock(&state.wechat)
        .refunds
        .values()
        .find(|r| r.mch_id == mch && r.v3 && pick(r))
        .cloned()
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
pub(super) async fn query(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer: Answer =
        authenticated(&state, &method, &uri, &headers, &Bytes::new()).and_then(|req| {
            let r = find(&state, &req.merchant.mch_id, |r| r.out_refund_no == no)
                .ok_or_else(|| not_found("退款单不存在"))?;
            Ok((StatusCode::OK, Some(refund_record(&r))))
        });
    reply(&state, &headers, answer)
}

/// `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund`: an `ABNORMAL` refund
/// is sent again: to a bank card of the payer's that the merchant names (`USER_BANK_CARD`, with
/// `bank_type` and the encrypted `bank_account` and `real_name`), or to the merchant's own
/// settlement account (`MERCHANT_BANK_CARD`).
pub(super) async fn abnormal(
    State(state): State<Arc<SandboxState>>,
    Path(refund_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let applied = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let b = &req.body;
        let out_refund_no = text(b, "out_refund_no")?;
        match text(b, "type")?.as_str() {
            "USER_BANK_CARD" => {
                text(b, "bank_type")?;
                for field in ["bank_account", "real_name"] {
                    let value = text(b, field)?;
                    decrypt_field(&state, &headers, &value)?;
                }
            }
            "MERCHANT_BANK_CARD" => {}
            other => return Err(param(format!("type {other} 无效"))),
        }
        let mut wx = lock(&state.wechat);
        let refund = wx
            .refunds
            .values_mut()
            .find(|r| {
                r.mch_id == req.merchant.mch_id
                    && r.v3
                    && r.refund_id == refund_id
                    && r.out_refund_no == out_refund_no
            })
            .ok_or_else(|| not_found("退款单不存在"))?;
        if refund.status != "ABNORMAL" {
            return Err(invalid("退款单状态不是异常 (the refund is not ABNORMAL)"));
        }
        refund.status = "PROCESSING".to_owned();
        Ok(refund.clone())
    })();
    let answer = match applied {
        Ok(refund) => {
            state
                .persist_wechat(&crate::settlement::Changes {
                    orders: vec![],
                    refunds: vec![refund.clone()],
                })
                .await;
            crate::settlement::schedule_completion(
                &state,
                &refund.out_refund_no,
                refund_notification,
            );
            Ok((StatusCode::OK, Some(refund_record(&refund))))
        }
        Err(e) => Err(e),
    };
    reply(&state, &headers, answer)
}

/// Sends the v3 refund notification of an ended refund (`REFUND.SUCCESS`, `REFUND.ABNORMAL`,
/// `REFUND.CLOSED`), if it named a notify URL.
pub(crate) fn refund_notification(state: &SandboxState, r: &WxRefund) {
    let Some(url) = &r.notify_url else { return };
    let (event_type, summary) = match r.status.as_str() {
        "SUCCESS" => ("REFUND.SUCCESS", "退款成功"),
        "ABNORMAL" => ("REFUND.ABNORMAL", "退款异常"),
        "CLOSED" => ("REFUND.CLOSED", "退款关闭"),
        _ => return,
    };
    let mut plain = json!({
        "mchid": r.mch_id,
        "out_trade_no": r.out_trade_no,
        "transaction_id": r.transaction_id,
        "out_refund_no": r.out_refund_no,
        "refund_id": r.refund_id,
        "refund_status": r.status,
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": r.total_fee,
            "refund": r.refund_fee,
            "payer_total": r.total_fee,
            "payer_refund": r.refund_fee,
        },
    });
    if let Some(t) = r.success_at {
        plain["success_time"] = json!(rfc3339(t));
    }
    if let Some(sub) = &r.sub_mchid {
        let o = plain.as_object_mut().map(|o| o.remove("mchid"));
        plain["sp_mchid"] = o.flatten().unwrap_or_default();
        plain["sub_mchid"] = json!(sub);
    }
    notify(
        state,
        &r.mch_id,
        V3Notification {
            kind: "wechat.refund",
            reference: &r.out_refund_no,
            url,
            event_type,
            summary,
            original_type: "refund",
            plain,
        },
    );
}
