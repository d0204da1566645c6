//! Combined payments (合单支付): one payment for several orders of the merchant, created,
//! queried, closed and paid together (`POST /sandbox/pay` with the combined number pays every
//! order), notified once with the combined resource (`TRANSACTION.SUCCESS`, `sub_orders`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::transactions::{insert_or_same, requested_order};
use super::{
    V3Error, V3Notification, app_bound, authenticate, notify, param, path_and_query, reply,
    rfc3339, v3_error,
};
use crate::state::{WxOrder, key};
use crate::{SandboxState, lock};

/// A combined payment the sandbox holds.
#[derive(Debug, Clone)]
pub(crate) struct Combined {
    app_id: String,
    mch_id: String,
    no: String,
    /// Its orders' numbers (all of `mch_id`).
    orders: Vec<String>,
    notify_url: String,
    openid: Option<String>,
}

/// The combined payments, by merchant and number.
pub(crate) type CombineBook = BTreeMap<String, Combined>;

fn view(state: &SandboxState, c: &Combined) -> Value {
    let wx = lock(&state.wechat);
    let subs: Vec<Value> = c
        .orders
        .iter()
        .filter_map(|no| wx.orders.get(&key(&c.mch_id, no)))
        .map(|o| {
            let mut v = json!({
                "mchid": o.mch_id,
                "out_trade_no": o.out_trade_no,
                "trade_state": o.state,
                "trade_type": o.trade_type,
                "amount": {"total_amount": o.total_fee, "currency": "CNY"},
                "attach": o.attach.clone().unwrap_or_default(),
            });
            if let Some(paid) = o.paid_at {
                v["transaction_id"] = json!(o.transaction_id);
                v["bank_type"] = json!("OTHERS");
                v["success_time"] = json!(rfc3339(paid));
                v["amount"]["payer_amount"] = json!(o.total_fee);
                v["amount"]["payer_currency"] = json!("CNY");
            }
            v
        })
        .collect();
    let mut v = json!({
        "combine_appid": c.app_id,
        "combine_mchid": c.mch_id,
        "combine_out_trade_no": c.no,
        "sub_orders": subs,
    });
    if let Some(o) = &c.openid {
        v["combine_payer_info"] = json!({"openid": o});
    }
    v
}

/// `POST /v3/combine-transactions/{jsapi,native,app,h5}`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    Path(kind): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = (|| {
        let m = authenticate(&state, "POST", &path_and_query(&uri), &headers, &body)?;
        let trade_type = match kind.as_str() {
            "jsapi" => "JSAPI",
            "native" => "NATIVE",
            "app" => "APP",
            "h5" => "MWEB",
            _ => {
                return Err(v3_error(
                    StatusCode::NOT_FOUND,
                    "RESOURCE_NOT_EXISTS",
                    "no such API",
                ));
            }
        };
        let req: Value = serde_json::from_slice(&body).map_err(|e| param(format!("body: {e}")))?;
        let text = |f: &str| req[f].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        if text("combine_mchid").as_deref() != Some(m.mch_id.as_str()) {
            return Err(param("combine_mchid与请求签名的商户号不一致"));
        }
        let app_id = text("combine_appid").ok_or_else(|| param("缺少参数 combine_appid"))?;
        if !app_bound(&state, &m.mch_id, &app_id) {
            return Err(v3_error(
                StatusCode::BAD_REQUEST,
                "APPID_MCHID_NOT_MATCH",
                "appid和mch_id不匹配",
            ));
        }
        let no =
            text("combine_out_trade_no").ok_or_else(|| param("缺少参数 combine_out_trade_no"))?;
        let notify_url = text("notify_url").ok_or_else(|| param("缺少参数 notify_url"))?;
        let openid = req["combine_payer_info"]["openid"]
            .as_str()
            .map(str::to_owned);
        if trade_type == "JSAPI" && openid.is_none() {
            return Err(param("JSAPI 合单需要 combine_payer_info.openid"));
        }
        let subs = req["sub_orders"].as_array().cloned().unwrap_or_default();
        if subs.is_empty() || subs.len() > 50 {
            return Err(param("sub_orders: 1 to 50 orders"));
        }
        let mut orders: Vec<WxOrder> = Vec::new();
        for sub in &subs {
            if sub["mchid"].as_str() != Some(m.mch_id.as_str()) {
                return Err(param("子单商户号须为合单商户号"));
            }
            // Each order checked as an order of its own would be.
            let as_order = json!({
                "mchid": m.mch_id,
                "appid": app_id,
                "out_trade_no": sub["out_trade_no"],
                "description": sub["description"],
                "notify_url": notify_url,
                "amount": {"total": sub["amount"]["total_amount"]},
                "attach": sub["attach"],
                "payer": {"openid": openid},
                "settle_info": sub["settle_info"],
            });
            let mut order = requested_order(&state, &m.mch_id, trade_type, &as_order)?;
            // The combined payment notifies, not its orders.
            order.notify_url = None;
            if orders.iter().any(|o| o.out_trade_no == order.out_trade_no) {
                return Err(param("子单商户订单号重复"));
            }
            orders.push(order);
        }
        let combine_key = key(&m.mch_id, &no);
        let existing = lock(&state.v3).combines.get(&combine_key).cloned();
        if let Some(c) = existing {
            let same: Vec<&String> = orders.iter().map(|o| &o.out_trade_no).collect();
            if c.orders.iter().collect::<Vec<_>>() != same {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "OUT_TRADE_NO_USED",
                    "合单商户订单号重复",
                ));
            }
        }
        let mut made = Vec::new();
        for order in orders {
            made.push(insert_or_same(&state, order)?);
        }
        lock(&state.v3).combines.insert(
            combine_key,
            Combined {
                app_id,
                mch_id: m.mch_id.clone(),
                no,
                orders: made.iter().map(|o| o.out_trade_no.clone()).collect(),
                notify_url,
                openid,
            },
        );
        let first = &made[0];
        Ok((
            StatusCode::OK,
            Some(match trade_type {
                "NATIVE" => json!({"code_url": first.code_url}),
                "MWEB" => json!({"h5_url": first.mweb_url}),
                _ => json!({"prepay_id": first.prepay_id}),
            }),
        ))
    })();
    reply(&state, &headers, answer)
}

fn find(state: &SandboxState, mch_id: &str, no: &str) -> Result<Combined, V3Error> {
    lock(&state.v3)
        .combines
        .get(&key(mch_id, no))
        .cloned()
        .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))
}

/// `GET /v3/combine-transactions/out-trade-no/{no}`.
pub(super) async fn query(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"")
        .and_then(|m| find(&state, &m.mch_id, &no))
        .map(|c| (StatusCode::OK, Some(view(&state, &c))));
    reply(&state, &headers, answer)
}

/// `POST /v3/combine-transactions/out-trade-no/{no}/close` (204): every unpaid order closed; a
/// paid one refuses it.
pub(super) async fn close(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = authenticate(&state, "POST", &path_and_query(&uri), &headers, &body)
        .and_then(|m| find(&state, &m.mch_id, &no))
        .and_then(|c| {
            let mut wx = lock(&state.wechat);
            let paid = c.orders.iter().any(|no| {
                wx.orders
                    .get(&key(&c.mch_id, no))
                    .is_some_and(|o| o.paid_at.is_some())
            });
            if paid {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "ORDERPAID",
                    "订单已支付，不能关单",
                ));
            }
            for no in &c.orders {
                if let Some(o) = wx.orders.get_mut(&key(&c.mch_id, no)) {
                    o.state = "CLOSED".to_owned();
                }
            }
            Ok((StatusCode::NO_CONTENT, None))
        });
    reply(&state, &headers, answer)
}

/// The combined payment numbered `no` (of any merchant), if there is one: for the control API.
pub(crate) fn orders_of(state: &SandboxState, no: &str) -> Option<Vec<String>> {
    lock(&state.v3)
        .combines
        .values()
        .find(|c| c.no == no)
        .map(|c| c.orders.clone())
}

/// Sends the combined payment's notification (after its orders were paid).
pub(crate) fn notify_paid(state: &SandboxState, no: &str) {
    let Some(c) = lock(&state.v3)
        .combines
        .values()
        .find(|c| c.no == no)
        .cloned()
    else {
        return;
    };
    notify(
        state,
        &c.mch_id,
        V3Notification {
            kind: "wechat.combine",
            reference: &c.no,
            url: &c.notify_url,
            event_type: "TRANSACTION.SUCCESS",
            summary: "支付成功",
            original_type: "transaction",
            plain: view(state, &c),
        },
    );
}
