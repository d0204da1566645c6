//! Alipay trades: creation (precreate, page / wap / app pay), query, close, refund, refund query,
//! and paying a trade (the control API), which sends the signed notification.

use ::alipay::sign;
use serde_json::json;
use wechat_pay::Fen;

use super::{AliReply, AliRequest, business, invalid, missing};
use crate::notifier::{ALIPAY_SCHEDULE, Ack, Delivery};
use crate::state::{AliRefund, AliTrade, dashed_time, digits, hex32, key, now, wechat_time};
use crate::{SandboxState, lock};

pub(super) fn yuan(fen: u64) -> String {
    Fen::new(fen).to_yuan_string()
}

fn biz_str<'a>(req: &'a AliRequest, f: &str) -> Option<&'a str> {
    req.biz[f].as_str().filter(|s| !s.is_empty())
}

pub(super) fn amount(req: &AliRequest, f: &str) -> Result<u64, AliReply> {
    let v = biz_str(req, f).ok_or_else(|| missing(f))?;
    match Fen::from_yuan_str(v) {
        Ok(fen) if fen.as_u64() > 0 => Ok(fen.as_u64()),
        _ => Err(invalid(
            "isv.invalid-parameter",
            format!("{f} 格式错误: yuan with at most 2 decimals"),
        )),
    }
}

/// Runs the method.
pub(super) async fn dispatch(state: &SandboxState, req: &AliRequest) -> AliReply {
    let result = match req.method.as_str() {
        "alipay.trade.precreate" => create(state, req).map(|t| {
            AliReply::Ok(json!({
                "out_trade_no": t.out_trade_no,
                "qr_code": format!("https://qr.alipay.com/bax0{}", &hex32()[..20]),
            }))
        }),
        "alipay.trade.page.pay" | "alipay.trade.wap.pay" | "alipay.trade.app.pay" => {
            create(state, req).map(|t| AliReply::Page(cashier_page(&t)))
        }
        "alipay.trade.query" => query(state, req),
        "alipay.trade.create" => create_for_buyer(state, req),
        "alipay.trade.close" => close(state, req),
        "alipay.open.auth.token.app" => super::app_auth::token(state, req),
        "alipay.trade.royalty.relation.bind" => super::settle::bind(state, req),
        "alipay.trade.order.settle" => super::settle::settle(state, req),
        "alipay.open.auth.token.app.query" => super::app_auth::query(state, req),
        "alipay.trade.cancel" => cancel(state, req),
        "alipay.trade.pay" => pay_by_code(state, req),
        "alipay.fund.trans.uni.transfer" => super::transfers::transfer(state, req),
        "alipay.fund.trans.common.query" => super::transfers::query(state, req),
        "alipay.system.oauth.token" => super::oauth::token(state, req),
        "alipay.user.info.share" => super::oauth::user_info(state, req),
        "alipay.trade.refund" => refund(state, req),
        "alipay.trade.fastpay.refund.query" => refund_query(state, req),
        "alipay.data.dataservice.bill.downloadurl.query" => super::bills::download_url(state, req),
        "alipay.open.app.alipaycert.download" => match &state.alipay_pki {
            Some(pki) => pki.download(req),
            None => Err(invalid("isv.invalid-method", "应用未使用公钥证书模式")),
        },
        _ => Err(invalid("isv.invalid-method", "不存在的方法名")),
    };
    let reply = result.unwrap_or_else(|e| e);
    state.persist_alipay().await;
    reply
}

fn create(state: &SandboxState, req: &AliRequest) -> Result<AliTrade, AliReply> {
    let out_trade_no = biz_str(req, "out_trade_no").ok_or_else(|| missing("out_trade_no"))?;
    let subject = biz_str(req, "subject").ok_or_else(|| missing("subject"))?;
    let total = amount(req, "total_amount")?;
    let mut ali = lock(&state.alipay);
    let k = key(&req.app_id, out_trade_no);
    if let Some(existing) = ali.trades.get(&k) {
        // Numbers are unique per app here: another merchant's trade is not this one.
        if existing.merchant != req.merchant {
            return Err(business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
        }
        if existing.status != "WAIT_BUYER_PAY" {
            return Err(business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付或关闭"));
        }
        if existing.total_fen != total || existing.subject != subject {
            return Err(business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
        }
        return Ok(existing.clone());
    }
    let t = AliTrade {
        app_id: req.app_id.clone(),
        out_trade_no: out_trade_no.to_owned(),
        trade_no: format!("{}22001{}", &wechat_time(now())[..8], digits(15)),
        total_fen: total,
        subject: subject.to_owned(),
        method: req.method.clone(),
        status: "WAIT_BUYER_PAY".to_owned(),
        notify_url: req
            .params
            .get("notify_url")
            .filter(|u| !u.is_empty())
            .cloned(),
        return_url: req
            .params
            .get("return_url")
            .filter(|u| !u.is_empty())
            .cloned(),
        refunded_fen: 0,
        created_at: now(),
        paid_at: None,
        buyer_id: None,
        merchant: req.merchant.clone(),
    };
    ali.trades.insert(k, t.clone());
    Ok(t)
}

/// `alipay.trade.pay` (`scene=bar_code`): charges the buyer's payment code as its buyer behaves
/// ([`crate::payment_codes`]): paid (`10000`), waiting for the buyer (`10003`, paid or closed
/// later through the control API), or declined (`ACQ.BUYER_BALANCE_NOT_ENOUGH`, no trade). The
/// same trade again answers it as it is.
fn pay_by_code(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let out_trade_no = biz_str(req, "out_trade_no").ok_or_else(|| missing("out_trade_no"))?;
    let auth_code = biz_str(req, "auth_code").ok_or_else(|| missing("auth_code"))?;
    if biz_str(req, "scene") != Some("bar_code") {
        return Err(invalid("isv.invalid-parameter", "scene 只支持 bar_code"));
    }
    let existing = lock(&state.alipay)
        .trades
        .get(&key(&req.app_id, out_trade_no))
        .cloned();
    let trade = match existing {
        Some(t) if t.method == req.method => {
            if t.merchant != req.merchant {
                return Err(business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
            }
            t
        }
        Some(_) => return Err(business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")),
        None => {
            let Ok(charge) = state.payment_codes.charge(
                crate::control::Channel::Alipay,
                auth_code,
                out_trade_no,
            ) else {
                return Err(business(
                    "ACQ.PAYMENT_AUTH_CODE_INVALID",
                    "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
                ));
            };
            if charge.behaviour == crate::payment_codes::Behaviour::Decline {
                return Err(business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"));
            }
            let mut t = create(state, req)?;
            if charge.behaviour == crate::payment_codes::Behaviour::Approve {
                let mut ali = lock(&state.alipay);
                if let Some(stored) = ali.trades.get_mut(&key(&req.app_id, out_trade_no)) {
                    stored.status = "TRADE_SUCCESS".to_owned();
                    stored.paid_at = Some(now());
                    stored.buyer_id = Some(
                        charge
                            .open_id
                            .unwrap_or_else(|| format!("2088{}", digits(12))),
                    );
                    t = stored.clone();
                }
            }
            t
        }
    };
    let fields = json!({
        "out_trade_no": trade.out_trade_no,
        "trade_no": trade.trade_no,
        "total_amount": yuan(trade.total_fen),
        "buyer_pay_amount": yuan(trade.total_fen),
        "buyer_logon_id": "san***@sandbox.example",
    });
    match trade.status.as_str() {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => Ok(AliReply::Ok(fields)),
        "WAIT_BUYER_PAY" => Ok(AliReply::Waiting(fields)),
        _ => Err(business("ACQ.TRADE_HAS_CLOSE", "交易已关闭")),
    }
}

/// `alipay.trade.create`: a trade for a known buyer (`buyer_id` or `buyer_open_id`), paid in the
/// Mini Program with its `trade_no`.
fn create_for_buyer(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let buyer = biz_str(req, "buyer_id")
        .or_else(|| biz_str(req, "buyer_open_id"))
        .ok_or_else(|| missing("buyer_id"))?
        .to_owned();
    let t = create(state, req)?;
    if let Some(stored) = lock(&state.alipay)
        .trades
        .get_mut(&key(&req.app_id, &t.out_trade_no))
    {
        stored.buyer_id = Some(buyer);
    }
    Ok(AliReply::Ok(
        json!({"out_trade_no": t.out_trade_no, "trade_no": t.trade_no}),
    ))
}

/// `alipay.trade.cancel`: an unpaid trade is closed, a paid one refunded in full (and closed); a
/// closed one answers again with nothing to do.
fn cancel(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let mut ali = lock(&state.alipay);
    let t = find(&mut ali.trades, req)?;
    let action = match t.status.as_str() {
        "WAIT_BUYER_PAY" => "close",
        "TRADE_SUCCESS" => "refund",
        "TRADE_CLOSED" => "",
        _ => return Err(business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")),
    };
    let refund = (action == "refund").then(|| t.total_fen - t.refunded_fen);
    t.status = "TRADE_CLOSED".to_owned();
    if refund.is_some() {
        t.refunded_fen = t.total_fen;
    }
    let (out_trade_no, trade_no) = (t.out_trade_no.clone(), t.trade_no.clone());
    if let Some(amount) = refund.filter(|a| *a > 0) {
        let request_no = format!("{out_trade_no}-cancel");
        ali.refunds.insert(
            format!("{}/{out_trade_no}/{request_no}", req.app_id),
            AliRefund {
                app_id: req.app_id.clone(),
                out_trade_no: out_trade_no.clone(),
                out_request_no: request_no,
                amount_fen: amount,
                created_at: now(),
            },
        );
    }
    let mut v = json!({"trade_no": trade_no, "out_trade_no": out_trade_no, "retry_flag": "N"});
    if !action.is_empty() {
        v["action"] = json!(action);
    }
    Ok(AliReply::Ok(v))
}

fn cashier_page(t: &AliTrade) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Alipay sandbox cashier</title></head>\
         <body><h1>Alipay sandbox</h1><p>{} — ¥{}</p>\
         <form method=\"post\" action=\"/sandbox/pay-form\">\
         <input type=\"hidden\" name=\"out_trade_no\" value=\"{}\">\
         <input type=\"hidden\" name=\"channel\" value=\"alipay\">\
         <button name=\"result\" value=\"SUCCESS\">Pay</button></form></body></html>",
        esc(&t.subject),
        yuan(t.total_fen),
        esc(&t.out_trade_no)
    )
}

fn find<'a>(
    trades: &'a mut std::collections::BTreeMap<String, AliTrade>,
    req: &AliRequest,
) -> Result<&'a mut AliTrade, AliReply> {
    // A merchant's trades are seen only with its token; the provider's own only without one.
    if let Some(no) = biz_str(req, "out_trade_no") {
        return trades
            .get_mut(&key(&req.app_id, no))
            .filter(|t| t.merchant == req.merchant)
            .ok_or_else(|| business("ACQ.TRADE_NOT_EXIST", "交易不存在"));
    }
    let trade_no = biz_str(req, "trade_no").ok_or_else(|| missing("out_trade_no 或 trade_no"))?;
    trades
        .values_mut()
        .find(|t| t.app_id == req.app_id && t.trade_no == trade_no && t.merchant == req.merchant)
        .ok_or_else(|| business("ACQ.TRADE_NOT_EXIST", "交易不存在"))
}

fn query(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let mut ali = lock(&state.alipay);
    let found = find(&mut ali.trades, req)?;
    let mut t = found.clone();
    if state.faults.withheld(&t.out_trade_no) && t.paid_at.is_some() {
        t.status = "WAIT_BUYER_PAY".to_owned();
        t.paid_at = None;
    }
    let mut v = json!({
        "trade_no": t.trade_no,
        "out_trade_no": t.out_trade_no,
        "trade_status": t.status,
        "total_amount": yuan(t.total_fen),
    });
    if let Some(paid) = t.paid_at {
        v["send_pay_date"] = json!(dashed_time(paid));
        v["buyer_logon_id"] = json!("san***@sandbox.com");
        v["buyer_user_id"] = json!(t.buyer_id);
        v["receipt_amount"] = json!(yuan(t.total_fen));
    }
    Ok(AliReply::Ok(v))
}

fn close(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let mut ali = lock(&state.alipay);
    let t = find(&mut ali.trades, req)?;
    if t.status != "WAIT_BUYER_PAY" {
        return Err(business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
    }
    t.status = "TRADE_CLOSED".to_owned();
    Ok(AliReply::Ok(
        json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no}),
    ))
}

fn refund(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let amount = amount(req, "refund_amount")?;
    let mut ali = lock(&state.alipay);
    let (out_trade_no, trade_no, refunded, total, status) = {
        let t = find(&mut ali.trades, req)?;
        (
            t.out_trade_no.clone(),
            t.trade_no.clone(),
            t.refunded_fen,
            t.total_fen,
            t.status.clone(),
        )
    };
    let request_no = biz_str(req, "out_request_no")
        .unwrap_or(&out_trade_no)
        .to_owned();
    let rk = format!("{}/{}/{}", req.app_id, out_trade_no, request_no);
    let reply = |refunded: u64, fund_change: &str| {
        AliReply::Ok(json!({
            "trade_no": trade_no,
            "out_trade_no": out_trade_no,
            "buyer_logon_id": "san***@sandbox.com",
            "fund_change": fund_change,
            "refund_fee": yuan(refunded),
            "gmt_refund_pay": dashed_time(now()),
        }))
    };
    if let Some(existing) = ali.refunds.get(&rk) {
        if existing.amount_fen != amount {
            return Err(business(
                "ACQ.DISCORDANT_REPEAT_REQUEST",
                "本次请求和之前的请求不一致",
            ));
        }
        return Ok(reply(refunded, "N"));
    }
    if status != "TRADE_SUCCESS" {
        return Err(business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
    }
    if refunded + amount > total {
        return Err(business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限"));
    }
    // What was settled away is refunded only by taking it back from its receivers.
    let backs = super::settle::royalty_backs(req)?;
    if !ali.settle.can_take_back(&trade_no, &backs) {
        return Err(business(
            "ACQ.REFUND_ROYALTY_AMOUNT_EXCEED",
            "退分账金额超过分账收入方已分得的金额",
        ));
    }
    let back: u64 = backs.iter().map(|b| b.1).sum();
    if refunded + amount + ali.settle.out_of(&trade_no) > total + back {
        return Err(business(
            "ACQ.SELLER_BALANCE_NOT_ENOUGH",
            "卖家余额不足：已分账的资金须随退款退回（refund_royalty_parameters）",
        ));
    }
    ali.settle.take_back(&trade_no, &backs);
    ali.refunds.insert(
        rk,
        AliRefund {
            app_id: req.app_id.clone(),
            out_trade_no: out_trade_no.clone(),
            out_request_no: request_no,
            amount_fen: amount,
            created_at: now(),
        },
    );
    let t = find(&mut ali.trades, req)?;
    t.refunded_fen += amount;
    if t.refunded_fen == t.total_fen {
        t.status = "TRADE_CLOSED".to_owned();
    }
    Ok(reply(t.refunded_fen, "Y"))
}

/// `alipay.trade.refund` answered `10000` with `fund_change = N` although nothing moved (a fault):
/// what Alipay's documentation warns a merchant to confirm with a refund query.
pub(super) fn unchanged_refund(state: &SandboxState, req: &AliRequest) -> AliReply {
    let mut ali = lock(&state.alipay);
    match find(&mut ali.trades, req) {
        Ok(t) => AliReply::Ok(json!({
            "trade_no": t.trade_no,
            "out_trade_no": t.out_trade_no,
            "buyer_logon_id": "san***@sandbox.com",
            "fund_change": "N",
            "refund_fee": yuan(t.refunded_fen),
            "gmt_refund_pay": dashed_time(now()),
        })),
        Err(reply) => reply,
    }
}

fn refund_query(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let mut ali = lock(&state.alipay);
    let (out_trade_no, trade_no, total) = {
        let t = find(&mut ali.trades, req)?;
        (t.out_trade_no.clone(), t.trade_no.clone(), t.total_fen)
    };
    let request_no = biz_str(req, "out_request_no")
        .unwrap_or(&out_trade_no)
        .to_owned();
    let mut v =
        json!({"trade_no": trade_no, "out_trade_no": out_trade_no, "out_request_no": request_no});
    // Alipay answers success with no refund fields when the refund does not exist.
    if let Some(r) = ali
        .refunds
        .get(&format!("{}/{}/{}", req.app_id, out_trade_no, request_no))
    {
        v["refund_amount"] = json!(yuan(r.amount_fen));
        v["total_amount"] = json!(yuan(total));
        v["refund_status"] = json!("REFUND_SUCCESS");
    }
    Ok(AliReply::Ok(v))
}

/// Why a trade could not be paid.
#[derive(Debug, thiserror::Error)]
pub enum PayTradeError {
    /// No such trade.
    #[error("no Alipay trade {0}")]
    NotFound(String),
    /// Not waiting for payment.
    #[error("trade {0} is {1} and cannot be paid")]
    State(String, String),
}

/// Closes a trade still waiting for its buyer (a held payment code the buyer declined).
pub async fn close_waiting_trade(state: &SandboxState, out_trade_no: &str) -> Option<AliTrade> {
    let trade = {
        let mut ali = lock(&state.alipay);
        let t = ali
            .trades
            .values_mut()
            .find(|t| t.out_trade_no == out_trade_no && t.status == "WAIT_BUYER_PAY")?;
        t.status = "TRADE_CLOSED".to_owned();
        t.clone()
    };
    state.persist_alipay().await;
    Some(trade)
}

/// The buyer pays: `TRADE_SUCCESS`, then the signed form notification with Alipay's retries.
pub async fn pay_trade(
    state: &SandboxState,
    out_trade_no: &str,
) -> Result<AliTrade, PayTradeError> {
    let trade = {
        let mut ali = lock(&state.alipay);
        let t = ali
            .trades
            .values_mut()
            .find(|t| t.out_trade_no == out_trade_no)
            .ok_or_else(|| PayTradeError::NotFound(out_trade_no.to_owned()))?;
        if t.status != "WAIT_BUYER_PAY" {
            return Err(PayTradeError::State(
                out_trade_no.to_owned(),
                t.status.clone(),
            ));
        }
        t.status = "TRADE_SUCCESS".to_owned();
        t.paid_at = Some(now());
        // A trade.create trade is paid by the buyer it named.
        if t.buyer_id.is_none() {
            t.buyer_id = Some(format!("2088{}", digits(12)));
        }
        t.clone()
    };
    state.persist_alipay().await;
    if let Some(url) = &trade.notify_url {
        state.notifier.send(Delivery {
            kind: "alipay.payment",
            reference: trade.out_trade_no.clone(),
            url: url.clone(),
            content_type: "application/x-www-form-urlencoded; charset=utf-8",
            body: notification(state, &trade),
            ack: Ack::AlipayText,
            schedule: ALIPAY_SCHEDULE,
            headers: None,
        });
    }
    Ok(trade)
}

/// The signed `trade_status_sync` form.
pub(crate) fn notification(state: &SandboxState, t: &AliTrade) -> String {
    let paid = t.paid_at.unwrap_or(t.created_at);
    let mut p: Vec<(&str, String)> = vec![
        ("notify_time", dashed_time(now())),
        ("notify_type", "trade_status_sync".into()),
        ("notify_id", hex32()),
        ("app_id", t.app_id.clone()),
        (
            "seller_id",
            t.merchant.clone().unwrap_or_else(|| {
                state
                    .config
                    .alipay_apps
                    .iter()
                    .find(|a| a.app_id == t.app_id)
                    .map(|a| a.seller_id.clone())
                    .unwrap_or_default()
            }),
        ),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
        ("sign_type", "RSA2".into()),
        ("trade_no", t.trade_no.clone()),
        ("out_trade_no", t.out_trade_no.clone()),
        ("trade_status", t.status.clone()),
        ("total_amount", yuan(t.total_fen)),
        ("receipt_amount", yuan(t.total_fen)),
        ("buyer_pay_amount", yuan(t.total_fen)),
        ("buyer_id", t.buyer_id.clone().unwrap_or_default()),
        ("subject", t.subject.clone()),
        ("gmt_create", dashed_time(t.created_at)),
        ("gmt_payment", dashed_time(paid)),
    ];
    let content = sign::canonical(
        p.iter().map(|(k, v)| (*k, v.as_str())),
        sign::NOTIFY_EXCLUDES,
    );
    p.push((
        "sign",
        state
            .alipay_signer(&t.app_id)
            .0
            .sign(&content)
            .unwrap_or_default(),
    ));
    serde_urlencoded::to_string(&p).unwrap_or_default()
}
