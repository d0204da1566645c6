//! `alipay.fund.trans.uni.transfer` and `alipay.fund.trans.common.query`: money from the app's
//! sandbox balance to a user's Alipay account. As on Alipay, only apps in certificate mode may
//! transfer; a transfer is idempotent by `out_biz_no` (the same one again answers the same order;
//! with other content it is refused); a login id needs the payee's name; the least is ¥0.10; a
//! transfer beyond the balance left is refused and moves nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AliReply, AliRequest, business, invalid, missing};
use crate::state::{dashed_time, digits, now, wechat_time};
use crate::{SandboxState, lock};

/// Each app's sandbox balance, in fen (¥100,000).
pub const BALANCE_FEN: u64 = 10_000_000;

/// A transfer made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliTransfer {
    /// `app_id`.
    pub app_id: String,
    /// `out_biz_no`.
    pub out_biz_no: String,
    /// Alipay's transfer order.
    pub order_id: String,
    /// Alipay's fund order.
    pub pay_fund_order_id: String,
    /// The amount, in fen.
    pub amount_fen: u64,
    /// `payee_info.identity_type`.
    pub payee_type: String,
    /// `payee_info.identity`.
    pub payee: String,
    /// `SUCCESS`.
    pub status: String,
    /// When made.
    pub created_at: i64,
}

fn biz<'a>(req: &'a AliRequest, path: &[&str]) -> Option<&'a str> {
    let mut v: &Value = &req.biz;
    for p in path {
        v = v.get(*p)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// `alipay.fund.trans.uni.transfer`.
pub(super) fn transfer(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    if !state
        .alipay_pki
        .as_ref()
        .is_some_and(|p| p.has_app(&req.app_id))
    {
        return Err(AliReply::Fail(
            "40006",
            "Insufficient Permissions",
            "isv.insufficient-isv-permissions",
            "转账须使用公钥证书模式".into(),
        ));
    }
    let out_biz_no = biz(req, &["out_biz_no"]).ok_or_else(|| missing("out_biz_no"))?;
    let amount = super::trades::amount(req, "trans_amount")?;
    if biz(req, &["product_code"]) != Some("TRANS_ACCOUNT_NO_PWD")
        || biz(req, &["biz_scene"]) != Some("DIRECT_TRANSFER")
    {
        return Err(invalid(
            "isv.invalid-parameter",
            "product_code 须为 TRANS_ACCOUNT_NO_PWD，biz_scene 须为 DIRECT_TRANSFER",
        ));
    }
    let payee =
        biz(req, &["payee_info", "identity"]).ok_or_else(|| missing("payee_info.identity"))?;
    let payee_type = biz(req, &["payee_info", "identity_type"])
        .ok_or_else(|| missing("payee_info.identity_type"))?;
    match payee_type {
        "ALIPAY_USER_ID" | "ALIPAY_OPEN_ID" => {}
        "ALIPAY_LOGON_ID" if biz(req, &["payee_info", "name"]).is_some() => {}
        "ALIPAY_LOGON_ID" => {
            return Err(business("PAYEE_USER_INFO_ERROR", "收款方姓名不能为空"));
        }
        _ => return Err(invalid("isv.invalid-parameter", "identity_type 不合法")),
    }
    if amount < 10 {
        return Err(business(
            "EXCEED_LIMIT_SM_MIN_AMOUNT",
            "单笔最低转账金额0.1元",
        ));
    }
    let mut ali = lock(&state.alipay);
    let key = format!("{}/{out_biz_no}", req.app_id);
    if let Some(t) = ali.transfers.get(&key) {
        if t.amount_fen != amount || t.payee != payee || t.payee_type != payee_type {
            return Err(business(
                "PARAM_ILLEGAL",
                "out_biz_no 已使用，且请求参数与之前不一致",
            ));
        }
        return Ok(made(t));
    }
    let spent: u64 = ali
        .transfers
        .values()
        .filter(|t| t.app_id == req.app_id)
        .map(|t| t.amount_fen)
        .sum();
    if spent + amount > BALANCE_FEN {
        return Err(business("PAYER_BALANCE_NOT_ENOUGH", "付款方余额不足"));
    }
    let day = &wechat_time(now())[..8];
    let t = AliTransfer {
        app_id: req.app_id.clone(),
        out_biz_no: out_biz_no.to_owned(),
        order_id: format!("{day}110070000{}", digits(13)),
        pay_fund_order_id: format!("{day}110070001{}", digits(13)),
        amount_fen: amount,
        payee_type: payee_type.to_owned(),
        payee: payee.to_owned(),
        status: "SUCCESS".into(),
        created_at: now(),
    };
    let reply = made(&t);
    ali.transfers.insert(key, t);
    Ok(reply)
}

fn made(t: &AliTransfer) -> AliReply {
    AliReply::Ok(json!({
        "out_biz_no": t.out_biz_no,
        "order_id": t.order_id,
        "pay_fund_order_id": t.pay_fund_order_id,
        "status": t.status,
        "trans_date": dashed_time(t.created_at),
    }))
}

/// `alipay.fund.trans.common.query`.
pub(super) fn query(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let ali = lock(&state.alipay);
    let mine = ali.transfers.values().filter(|t| t.app_id == req.app_id);
    let found = match (biz(req, &["out_biz_no"]), biz(req, &["order_id"])) {
        (Some(no), _) => mine.into_iter().find(|t| t.out_biz_no == no),
        (None, Some(id)) => mine.into_iter().find(|t| t.order_id == id),
        (None, None) => return Err(missing("out_biz_no 或 order_id")),
    };
    let t = found.ok_or_else(|| business("ORDER_NOT_EXIST", "转账订单不存在"))?;
    Ok(AliReply::Ok(json!({
        "order_id": t.order_id,
        "out_biz_no": t.out_biz_no,
        "pay_fund_order_id": t.pay_fund_order_id,
        "status": t.status,
        "trans_amount": super::trades::yuan(t.amount_fen),
        "pay_date": dashed_time(t.created_at),
    })))
}
