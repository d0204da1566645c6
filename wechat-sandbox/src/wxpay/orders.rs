//! Orders: unified order, query, close, micropay, reverse — and the signed payment
//! notification of a paid (or failed) order.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::Response;
use wechat_pay::{Params, SignType};

use super::{Prefixed, WxReply, WxRequest, protocol, run};
use crate::control::Channel;
use crate::notifier::{Ack, Delivery, WECHAT_SCHEDULE};
use crate::payment_codes::Behaviour;
use crate::state::{WxOrder, digits, hex32, key, now, wechat_time};
use crate::{SandboxState, lock};

fn business(code: &'static str, des: impl Into<String>) -> WxReply {
    WxReply::Business(code, des.into())
}

/// The fields that identify an order's request, to tell a retry from a conflicting reuse of the
/// number (`nonce_str` and `sign` change on every retry).
fn fingerprint(p: &Params) -> String {
    p.iter()
        .filter(|(k, _)| !matches!(*k, "nonce_str" | "sign" | "sign_type"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn valid_out_trade_no(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
}

/// The paid-or-not fields an order reports.
fn order_fields(o: &WxOrder) -> Params {
    let mut p = Params::new();
    p.insert("out_trade_no", o.out_trade_no.as_str());
    p.insert("trade_state", o.state.as_str());
    p.insert("trade_state_desc", state_desc(&o.state));
    p.insert("total_fee", o.total_fee.to_string());
    p.insert("fee_type", o.fee_type.as_str());
    p.insert_opt("attach", o.attach.as_deref());
    p.insert_opt("device_info", o.device_info.as_deref());
    if matches!(o.state.as_str(), "SUCCESS" | "REFUND") || o.paid_at.is_some() {
        p.insert("transaction_id", o.transaction_id.as_str());
        p.insert_opt("openid", o.openid.as_deref());
        p.insert("is_subscribe", "N");
        p.insert("trade_type", o.trade_type.as_str());
        p.insert("bank_type", "CMC");
        p.insert("cash_fee", o.total_fee.to_string());
        p.insert("time_end", wechat_time(o.paid_at.unwrap_or(o.created_at)));
    }
    p
}

fn state_desc(state: &str) -> &'static str {
    match state {
        "SUCCESS" => "支付成功",
        "REFUND" => "转入退款",
        "NOTPAY" => "未支付",
        "CLOSED" => "已关闭",
        "REVOKED" => "已撤销",
        "USERPAYING" => "用户支付中",
        "PAYERROR" => "支付失败",
        _ => "",
    }
}

/// Finds an order by `transaction_id` or `out_trade_no`.
fn find_order<'a>(
    orders: &'a mut std::collections::BTreeMap<String, WxOrder>,
    req: &WxRequest,
) -> Result<&'a mut WxOrder, WxReply> {
    let mch = req.merchant.mch_id.as_str();
    if let Some(tid) = req.optional("transaction_id") {
        return orders
            .values_mut()
            .find(|o| o.mch_id == mch && o.transaction_id == tid)
            .ok_or_else(|| business("ORDERNOTEXIST", "此交易订单号不存在"));
    }
    let no = req
        .optional("out_trade_no")
        .ok_or_else(|| protocol("缺少参数 out_trade_no 或 transaction_id"))?;
    orders
        .get_mut(&key(mch, no))
        .ok_or_else(|| business("ORDERNOTEXIST", "此交易订单号不存在"))
}

fn new_order(
    state: &SandboxState,
    req: &WxRequest,
    trade_type: &str,
    total_fee: u64,
) -> Result<WxOrder, WxReply> {
    let out_trade_no = req.required("out_trade_no")?;
    let now = now();
    let prepay_id = format!("wx{}{}", wechat_time(now), &hex32()[..18]);
    let mut order = WxOrder {
        app_id: req.merchant.app_id.clone(),
        mch_id: req.merchant.mch_id.clone(),
        out_trade_no: out_trade_no.to_owned(),
        transaction_id: format!("4200{}{}", &wechat_time(now)[..8], digits(16)),
        body: req.required("body")?.to_owned(),
        total_fee,
        trade_type: trade_type.to_owned(),
        notify_url: req.optional("notify_url").map(str::to_owned),
        openid: req.optional("openid").map(str::to_owned),
        product_id: req.optional("product_id").map(str::to_owned),
        attach: req.optional("attach").map(str::to_owned),
        device_info: req.optional("device_info").map(str::to_owned),
        fee_type: req.optional("fee_type").unwrap_or("CNY").to_owned(),
        code_url: None,
        mweb_url: None,
        state: "NOTPAY".to_owned(),
        time_expire: req.optional("time_expire").map(str::to_owned),
        created_at: now,
        paid_at: None,
        sign_type: req.sign_type.as_str().to_owned(),
        sandbox_key: req.sandbox,
        fingerprint: fingerprint(&req.params),
        refunded: 0,
        partner: None,
        profit_sharing: false,
        prepay_id: prepay_id.clone(),
    };
    match trade_type {
        "NATIVE" => {
            order.code_url = Some(format!("weixin://wxpay/bizpayurl?pr={}", &hex32()[..7]));
        }
        "MWEB" => {
            order.mweb_url = Some(format!(
                "{}/sandbox/h5pay?prepay_id={prepay_id}",
                state.config.public_url
            ));
        }
        _ => {}
    }
    Ok(order)
}

/// `/pay/unifiedorder`.
pub(super) async fn unified_order(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, changes| {
        for f in [
            "body",
            "out_trade_no",
            "total_fee",
            "spbill_create_ip",
            "notify_url",
            "trade_type",
        ] {
            req.required(f)?;
        }
        let total_fee = req.amount("total_fee")?;
        let out_trade_no = req.required("out_trade_no")?;
        if !valid_out_trade_no(out_trade_no) {
            return Err(business(
                "PARAM_ERROR",
                "out_trade_no参数错误: 1 to 32 letters, digits, _-|*",
            ));
        }
        let trade_type = req.required("trade_type")?;
        match trade_type {
            "JSAPI" if req.optional("openid").is_none() => {
                return Err(business(
                    "PARAM_ERROR",
                    "trade_type=JSAPI时，openid为必填参数",
                ));
            }
            "NATIVE" if req.optional("product_id").is_none() => {
                return Err(business(
                    "PARAM_ERROR",
                    "trade_type=NATIVE时，product_id为必填参数",
                ));
            }
            "MWEB"
                if !req
                    .optional("scene_info")
                    .unwrap_or_default()
                    .contains("h5_info") =>
            {
                return Err(business(
                    "PARAM_ERROR",
                    "trade_type=MWEB时，scene_info必须包含h5_info",
                ));
            }
            "JSAPI" | "NATIVE" | "APP" | "MWEB" => {}
            _ => return Err(business("PARAM_ERROR", "trade_type参数错误")),
        }
        let mut wx = lock(&state.wechat);
        let k = key(&req.merchant.mch_id, out_trade_no);
        let order = match wx.orders.get(&k) {
            Some(existing) => {
                match existing.state.as_str() {
                    "SUCCESS" | "REFUND" => return Err(business("ORDERPAID", "该订单已支付")),
                    "CLOSED" | "REVOKED" => return Err(business("ORDERCLOSED", "该订单已关闭")),
                    _ => {}
                }
                if existing.fingerprint != fingerprint(&req.params) {
                    return Err(business("INVALID_REQUEST", "201 商户订单号重复"));
                }
                existing.clone()
            }
            None => {
                let order = new_order(state, req, trade_type, total_fee)?;
                wx.orders.insert(k, order.clone());
                changes.orders.push(order.clone());
                order
            }
        };
        let mut p = Params::new();
        p.insert("trade_type", order.trade_type.as_str());
        p.insert("prepay_id", order.prepay_id.as_str());
        p.insert_opt("code_url", order.code_url.as_deref());
        p.insert_opt("mweb_url", order.mweb_url.as_deref());
        Ok(WxReply::Ok(p))
    })
    .await
}

/// `/pay/orderquery`.
pub(super) async fn order_query(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, _| {
        let mut wx = lock(&state.wechat);
        let order = find_order(&mut wx.orders, req)?;
        if state.faults.withheld(&order.out_trade_no) {
            return Ok(WxReply::Ok(order_fields(&crate::settlement::unpaid(order))));
        }
        Ok(WxReply::Ok(order_fields(order)))
    })
    .await
}

/// `/pay/closeorder`.
pub(super) async fn close_order(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, changes| {
        req.required("out_trade_no")?;
        let mut wx = lock(&state.wechat);
        let order = find_order(&mut wx.orders, req)?;
        match order.state.as_str() {
            "SUCCESS" | "REFUND" => Err(business("ORDERPAID", "订单已支付，不能发起关单")),
            "CLOSED" | "REVOKED" => Err(business("ORDERCLOSED", "订单已关闭，无法重复关闭")),
            _ => {
                order.state = "CLOSED".to_owned();
                changes.orders.push(order.clone());
                Ok(WxReply::Ok(Params::new()))
            }
        }
    })
    .await
}

/// `/pay/micropay`: payment codes starting with `13` ask the payer to confirm (`USERPAYING`,
/// completed through the control API); other valid codes pay at once.
pub(super) async fn micropay(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, changes| {
        for f in [
            "body",
            "out_trade_no",
            "total_fee",
            "spbill_create_ip",
            "auth_code",
        ] {
            req.required(f)?;
        }
        let total_fee = req.amount("total_fee")?;
        let auth_code = req.required("auth_code")?;
        let out_trade_no = req.required("out_trade_no")?;
        let Ok(charge) = state
            .payment_codes
            .charge(Channel::Wechat, auth_code, out_trade_no)
        else {
            return Err(business(
                "AUTH_CODE_INVALID",
                "每个二维码仅限使用一次，请刷新再试",
            ));
        };
        let mut wx = lock(&state.wechat);
        let k = key(&req.merchant.mch_id, out_trade_no);
        if let Some(existing) = wx.orders.get(&k) {
            if existing.fingerprint != fingerprint(&req.params) {
                return Err(business("INVALID_REQUEST", "201 商户订单号重复"));
            }
            return match existing.state.as_str() {
                "SUCCESS" => Ok(WxReply::Ok(order_fields(existing))),
                "USERPAYING" => Err(business("USERPAYING", "需要用户输入支付密码")),
                _ => Err(business("ORDERCLOSED", "该订单已关闭")),
            };
        }
        let mut order = new_order(state, req, "MICROPAY", total_fee)?;
        order.notify_url = None;
        order.openid = charge.open_id;
        charge_code(&mut order, charge.behaviour);
        wx.orders.insert(k, order.clone());
        changes.orders.push(order.clone());
        match charge.behaviour {
            Behaviour::Hold => Err(business("USERPAYING", "需要用户输入支付密码")),
            Behaviour::Decline => Err(business("NOTENOUGH", "用户余额不足")),
            Behaviour::Approve => Ok(WxReply::Ok(order_fields(&order))),
        }
    })
    .await
}

/// Charges a payment-code order (v2 and v3) as its buyer behaves: paid at once, waiting for the
/// buyer (`USERPAYING`), or failed.
pub(crate) fn charge_code(order: &mut WxOrder, behaviour: Behaviour) {
    match behaviour {
        Behaviour::Approve => {
            order.state = "SUCCESS".to_owned();
            order.paid_at = Some(now());
            if order.openid.is_none() {
                order.openid = Some(format!("oSandbox{}", &hex32()[..20]));
            }
        }
        Behaviour::Hold => order.state = "USERPAYING".to_owned(),
        Behaviour::Decline => order.state = "PAYERROR".to_owned(),
    }
}

/// `/secapi/pay/reverse`.
pub(super) async fn reverse(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, changes| {
        let mut wx = lock(&state.wechat);
        let order = find_order(&mut wx.orders, req)?;
        match order.state.as_str() {
            "REFUND" => return Err(business("REVERSE_EXPIRE", "订单已退款，不能撤销")),
            "REVOKED" => {}
            _ => {
                order.state = "REVOKED".to_owned();
                changes.orders.push(order.clone());
            }
        }
        let mut p = Params::new();
        p.insert("recall", "N");
        Ok(WxReply::Ok(p))
    })
    .await
}

/// Sends API v2's signed payment notification of `order` (paid, or failed: `result_code=FAIL`,
/// as WeChat documents), with WeChat's retry schedule, if it named a notify URL.
pub(crate) fn notify_payment(state: &SandboxState, order: &WxOrder) {
    if let Some(url) = &order.notify_url {
        state.notifier.send(Delivery {
            kind: "wechat.payment",
            reference: order.out_trade_no.clone(),
            url: url.clone(),
            content_type: "text/xml; charset=utf-8",
            body: payment_notification(state, order),
            ack: Ack::WechatXml,
            schedule: WECHAT_SCHEDULE,
            headers: None,
        });
    }
}

/// The signed payment notification for a paid order (`result_code=SUCCESS`) or a failed one
/// (`result_code=FAIL`, `err_code=BANKERROR`).
fn payment_notification(state: &SandboxState, o: &WxOrder) -> String {
    let mut p = order_fields(o);
    p.remove("trade_state");
    p.remove("trade_state_desc");
    p.insert("return_code", "SUCCESS");
    p.insert("return_msg", "OK");
    if o.state == "PAYERROR" {
        p.insert("result_code", "FAIL");
        p.insert("err_code", "BANKERROR");
        p.insert("err_code_des", "支付失败 (sandbox)");
    } else {
        p.insert("result_code", "SUCCESS");
    }
    p.insert("appid", o.app_id.as_str());
    p.insert("mch_id", o.mch_id.as_str());
    p.insert("nonce_str", hex32());
    let sign_type = if o.sign_type == "HMAC-SHA256" {
        p.insert("sign_type", "HMAC-SHA256");
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    if let Some(key) = state.order_key(o) {
        p.sign(&key, sign_type);
    }
    p.to_xml()
}
