//! `/v3/pay/transactions/…`: create (JSAPI, APP, H5, Native), query, close; and the v3 payment
//! notification. v3 orders live in the same order book as v2's, marked `sign_type = "RSA"`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    V3Error, V3Notification, authenticate, notify, param, path_and_query, reply, rfc3339, v3_error,
};
use crate::control::Channel;
use crate::state::{WxOrder, digits, hex32, key, now, wechat_time};
use crate::{SandboxState, lock};

/// `POST /v3/pay/transactions/{jsapi|app|h5|native}`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    Path(kind): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = if kind == "codepay" {
        codepay(&state, method.as_str(), &uri, &headers, &body).await
    } else {
        create_order(&state, &kind, method.as_str(), &uri, &headers, &body).await
    }
    .map(|v| (StatusCode::OK, Some(v)));
    reply(&state, &headers, answer)
}

async fn create_order(
    state: &SandboxState,
    kind: &str,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, V3Error> {
    let merchant = authenticate(state, method, &path_and_query(uri), headers, body)?;
    let trade_type = match kind {
        "jsapi" => "JSAPI",
        "app" => "APP",
        "h5" => "MWEB",
        "native" => "NATIVE",
        _ => {
            return Err(v3_error(
                StatusCode::NOT_FOUND,
                "RESOURCE_NOT_EXISTS",
                "no such API",
            ));
        }
    };
    let req: Value = serde_json::from_slice(body).map_err(|e| param(format!("body: {e}")))?;
    let requested = requested_order(state, &merchant.mch_id, trade_type, &req)?;
    let order = insert_or_same(state, requested)?;
    state
        .persist_wechat(&crate::settlement::Changes {
            orders: vec![order.clone()],
            refunds: vec![],
        })
        .await;
    Ok(match trade_type {
        "NATIVE" => json!({"code_url": order.code_url}),
        "MWEB" => json!({"h5_url": order.mweb_url}),
        _ => json!({"prepay_id": order.prepay_id}),
    })
}

/// `POST /v3/pay/transactions/codepay`: charges the buyer's payment code as its buyer behaves
/// ([`crate::payment_codes`]): the transaction paid, or waiting for the buyer (`USERPAYING`), or
/// declined (`NOT_ENOUGH`, the order failed). The same request again answers the order as it is.
async fn codepay(
    state: &SandboxState,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, V3Error> {
    let merchant = authenticate(state, method, &path_and_query(uri), headers, body)?;
    let req: Value = serde_json::from_slice(body).map_err(|e| param(format!("body: {e}")))?;
    let auth_code =
        text_at(&req["payer"]["auth_code"]).ok_or_else(|| param("缺少参数 payer.auth_code"))?;
    let mut requested = requested_order(state, &merchant.mch_id, "MICROPAY", &req)?;
    let order = {
        let mut wx = lock(&state.wechat);
        let k = key(&requested.mch_id, &requested.out_trade_no);
        if let Some(existing) = wx.orders.get(&k) {
            if existing.fingerprint != requested.fingerprint {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "OUT_TRADE_NO_USED",
                    "商户订单号重复",
                ));
            }
            return Ok(transaction(existing));
        }
        let charge = state
            .payment_codes
            .charge(Channel::Wechat, &auth_code, &requested.out_trade_no)
            .map_err(|_| param("付款码无效，请重新扫码"))?;
        requested.openid = charge.open_id;
        crate::wxpay::charge_code(&mut requested, charge.behaviour);
        wx.orders.insert(k, requested.clone());
        requested
    };
    state
        .persist_wechat(&crate::settlement::Changes {
            orders: vec![order.clone()],
            refunds: vec![],
        })
        .await;
    if order.state == "PAYERROR" {
        return Err(v3_error(
            StatusCode::FORBIDDEN,
            "NOT_ENOUGH",
            "用户余额不足",
        ));
    }
    Ok(transaction(&order))
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/reverse`: a payment-code order is reversed —
/// closed if unpaid, its money given back if paid (`REVOKED` either way).
pub(super) async fn reverse(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reversed =
        authenticate(&state, "POST", &path_and_query(&uri), &headers, &body).and_then(|m| {
            let mut wx = lock(&state.wechat);
            let order = wx
                .orders
                .get_mut(&key(&m.mch_id, &no))
                .filter(|o| o.sign_type == "RSA" && o.partner.is_none())
                .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))?;
            if order.trade_type != "MICROPAY" {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "非付款码订单不能撤销",
                ));
            }
            if order.refunded > 0 {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "订单已退款，不能撤销",
                ));
            }
            order.state = "REVOKED".to_owned();
            Ok(order.clone())
        });
    let answer = match reversed {
        Ok(order) => {
            state
                .persist_wechat(&crate::settlement::Changes {
                    orders: vec![order.clone()],
                    refunds: vec![],
                })
                .await;
            Ok((
                StatusCode::OK,
                Some(
                    json!({"appid": order.app_id, "mchid": order.mch_id, "out_trade_no": order.out_trade_no}),
                ),
            ))
        }
        Err(e) => Err(e),
    };
    reply(&state, &headers, answer)
}

/// The order a request of merchant `mch_id` asks for, checked as WeChat checks it: required
/// fields, the app bound to the merchant, the number's form, a positive amount, an openid for
/// JSAPI.
pub(super) fn requested_order(
    state: &SandboxState,
    mch_id: &str,
    trade_type: &str,
    req: &Value,
) -> Result<WxOrder, V3Error> {
    let text = |f: &str| req[f].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let need = |f: &str| text(f).ok_or_else(|| param(format!("缺少参数 {f}")));
    if need("mchid")? != mch_id {
        return Err(param("mchid与请求签名的商户号不一致"));
    }
    let app_id = need("appid")?;
    if !super::app_bound(state, mch_id, &app_id) {
        return Err(v3_error(
            StatusCode::BAD_REQUEST,
            "APPID_MCHID_NOT_MATCH",
            "appid和mch_id不匹配",
        ));
    }
    let out_trade_no = need("out_trade_no")?;
    if !(6..=32).contains(&out_trade_no.len())
        || !out_trade_no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
    {
        return Err(param("out_trade_no: 6 to 32 letters, digits, _-|*"));
    }
    let description = need("description")?;
    // Payment codes are not notified.
    let notify_url = match trade_type {
        "MICROPAY" => None,
        _ => Some(need("notify_url")?),
    };
    let total = req["amount"]["total"]
        .as_u64()
        .filter(|t| *t > 0)
        .ok_or_else(|| param("amount.total: a positive integer of fen"))?;
    let openid = text_at(&req["payer"]["openid"]);
    if trade_type == "JSAPI" && openid.is_none() {
        return Err(param("JSAPI下单时 payer.openid 为必填参数"));
    }
    // The same request again (whatever its expiry) is the same order.
    let fingerprint = {
        let mut r = req.clone();
        r.as_object_mut().map(|o| o.remove("time_expire"));
        format!("v3:{trade_type}:{r}")
    };
    let at = now();
    let prepay_id = format!("wx{}{}", wechat_time(at), &hex32()[..18]);
    Ok(WxOrder {
        app_id,
        mch_id: mch_id.to_owned(),
        out_trade_no,
        transaction_id: format!("4200{}{}", &wechat_time(at)[..8], digits(16)),
        body: description,
        total_fee: total,
        trade_type: trade_type.to_owned(),
        notify_url,
        openid,
        product_id: None,
        attach: text("attach"),
        device_info: None,
        fee_type: "CNY".to_owned(),
        code_url: (trade_type == "NATIVE")
            .then(|| format!("weixin://wxpay/bizpayurl?pr={}", &hex32()[..7])),
        mweb_url: (trade_type == "MWEB").then(|| {
            format!(
                "{}/sandbox/h5pay?prepay_id={prepay_id}",
                state.config.public_url
            )
        }),
        state: "NOTPAY".to_owned(),
        time_expire: text("time_expire"),
        created_at: at,
        paid_at: None,
        sign_type: "RSA".to_owned(),
        sandbox_key: false,
        fingerprint,
        refunded: 0,
        partner: None,
        profit_sharing: req["settle_info"]["profit_sharing"].as_bool() == Some(true),
        prepay_id,
    })
}

fn text_at(v: &Value) -> Option<String> {
    v.as_str().filter(|o| !o.is_empty()).map(str::to_owned)
}

/// Records `requested`, or answers the order already under its number: the same (unpaid) one
/// again, an error if it was paid or closed or asked with other parameters.
pub(super) fn insert_or_same(state: &SandboxState, requested: WxOrder) -> Result<WxOrder, V3Error> {
    let mut wx = lock(&state.wechat);
    let k = key(&requested.mch_id, &requested.out_trade_no);
    let Some(existing) = wx.orders.get(&k) else {
        wx.orders.insert(k, requested.clone());
        return Ok(requested);
    };
    match existing.state.as_str() {
        "SUCCESS" | "REFUND" => Err(v3_error(
            StatusCode::BAD_REQUEST,
            "ORDERPAID",
            "该订单已支付",
        )),
        "CLOSED" => Err(v3_error(
            StatusCode::BAD_REQUEST,
            "ORDER_CLOSED",
            "该订单已关闭",
        )),
        _ if existing.fingerprint != requested.fingerprint => Err(v3_error(
            StatusCode::BAD_REQUEST,
            "OUT_TRADE_NO_USED",
            "商户订单号重复",
        )),
        _ => Ok(existing.clone()),
    }
}

/// An order as v3 reports it (queries, notifications).
pub(crate) fn transaction(o: &WxOrder) -> Value {
    let trade_state_desc = match o.state.as_str() {
        "SUCCESS" => "支付成功",
        "REFUND" => "转入退款",
        "NOTPAY" => "未支付",
        "CLOSED" => "已关闭",
        "PAYERROR" => "支付失败",
        _ => "",
    };
    let mut v = match &o.partner {
        None => json!({"appid": o.app_id, "mchid": o.mch_id}),
        Some(p) => {
            let mut v =
                json!({"sp_appid": o.app_id, "sp_mchid": o.mch_id, "sub_mchid": p.sub_mchid});
            if let Some(a) = &p.sub_appid {
                v["sub_appid"] = json!(a);
            }
            v
        }
    };
    for (k, value) in [
        ("out_trade_no", json!(o.out_trade_no)),
        ("trade_state", json!(o.state)),
        ("trade_state_desc", json!(trade_state_desc)),
        (
            "amount",
            json!({"total": o.total_fee, "currency": o.fee_type}),
        ),
    ] {
        v[k] = value;
    }
    if let Some(a) = &o.attach {
        v["attach"] = json!(a);
    }
    if o.paid_at.is_some() {
        v["transaction_id"] = json!(o.transaction_id);
        v["trade_type"] = json!(o.trade_type);
        v["bank_type"] = json!("OTHERS");
        v["success_time"] = json!(rfc3339(o.paid_at.unwrap_or(o.created_at)));
        v["payer"] = match &o.partner {
            None => json!({"openid": o.openid}),
            Some(p) => match &p.sub_openid {
                Some(sub) => json!({"sub_openid": sub}),
                None => json!({"sp_openid": o.openid}),
            },
        };
        v["amount"] = json!({"total": o.total_fee, "payer_total": o.total_fee,
            "currency": o.fee_type, "payer_currency": o.fee_type});
    }
    v
}

/// A v3 order of merchant `mch_id` (of its sub-merchant `sub`, in partner mode) that `pick`
/// chooses.
pub(super) fn find(
    state: &SandboxState,
    mch_id: &str,
    sub: Option<&str>,
    pick: impl Fn(&WxOrder) -> bool,
) -> Result<WxOrder, V3Error> {
    lock(&state.wechat)
        .orders
        .values()
        .find(|o| {
            o.mch_id == mch_id
                && o.sign_type == "RSA"
                && o.partner.as_ref().map(|p| p.sub_mchid.as_str()) == sub
                && pick(o)
        })
        .cloned()
        .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))
}

/// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`.
pub(super) async fn query_by_out_trade_no(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let found = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"")
        .and_then(|m| find(&state, &m.mch_id, None, |o| o.out_trade_no == no))
        .map(|o| match state.faults.withheld(&o.out_trade_no) {
            true => crate::settlement::unpaid(&o),
            false => o,
        });
    reply(
        &state,
        &headers,
        found.map(|o| (StatusCode::OK, Some(transaction(&o)))),
    )
}

/// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`.
pub(super) async fn query_by_id(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let found = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        find(&state, &m.mch_id, None, |o| {
            o.transaction_id == id && o.paid_at.is_some()
        })
    });
    reply(
        &state,
        &headers,
        found.map(|o| (StatusCode::OK, Some(transaction(&o)))),
    )
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/close` → 204.
pub(super) async fn close(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let closed = authenticate(&state, "POST", &path_and_query(&uri), &headers, &body)
        .and_then(|m| close_order(&state, &m.mch_id, None, &no));
    closed_reply(&state, &headers, closed).await
}

/// Closes merchant `mch_id`'s (sub-merchant `sub`'s) unpaid order `no`.
pub(super) fn close_order(
    state: &SandboxState,
    mch_id: &str,
    sub: Option<&str>,
    no: &str,
) -> Result<WxOrder, V3Error> {
    let mut wx = lock(&state.wechat);
    let order = wx
        .orders
        .get_mut(&key(mch_id, no))
        .filter(|o| o.sign_type == "RSA" && o.partner.as_ref().map(|p| p.sub_mchid.as_str()) == sub)
        .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在"))?;
    match order.state.as_str() {
        "SUCCESS" | "REFUND" => Err(v3_error(
            StatusCode::BAD_REQUEST,
            "ORDERPAID",
            "订单已支付，不能关单",
        )),
        _ => {
            order.state = "CLOSED".to_owned();
            Ok(order.clone())
        }
    }
}

/// The answer to a close: 204, the order kept.
pub(super) async fn closed_reply(
    state: &SandboxState,
    headers: &HeaderMap,
    closed: Result<WxOrder, V3Error>,
) -> Response {
    let answer = match closed {
        Ok(order) => {
            state
                .persist_wechat(&crate::settlement::Changes {
                    orders: vec![order],
                    refunds: vec![],
                })
                .await;
            Ok((StatusCode::NO_CONTENT, None))
        }
        Err(e) => Err(e),
    };
    reply(state, headers, answer)
}

/// Sends the v3 payment notification of a v3 order (paid or failed): JSON, the transaction
/// encrypted with the merchant's API v3 key, signed again for every attempt.
pub fn notification(state: &SandboxState, order: &WxOrder) {
    let Some(url) = &order.notify_url else { return };
    let (event_type, summary) = if order.state == "SUCCESS" {
        ("TRANSACTION.SUCCESS", "支付成功")
    } else {
        ("TRANSACTION.FAIL", "支付失败")
    };
    notify(
        state,
        &order.mch_id,
        V3Notification {
            kind: "wechat.payment",
            reference: &order.out_trade_no,
            url,
            event_type,
            summary,
            original_type: "transaction",
            plain: transaction(order),
        },
    );
}
