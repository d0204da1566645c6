//! Settlement sharing (分账): `alipay.trade.royalty.relation.bind` records who may receive a
//! share of an app's (or, with `app_auth_token`, a merchant's) trades; `alipay.trade.order.settle`
//! moves a share of a paid trade to bound receivers — never more than the trade has left (paid,
//! less refunded and already settled), idempotent by `out_request_no`. A refund of a settled
//! trade comes from what the seller still holds of it (paid, less refunded, less settled and
//! not given back): beyond that, the refund takes the settlement back from its receivers
//! (`refund_royalty_parameters`), never more than each received.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{AliReply, AliRequest, business, missing};
use crate::state::{digits, now, wechat_time};
use crate::{SandboxState, lock};

/// Bound receivers and settlements.
#[derive(Debug, Default)]
pub(crate) struct SettleBook {
    /// `app/merchant/account`.
    receivers: BTreeSet<String>,
    /// `app/out_request_no` → (trade_no, amount in fen, settle_no).
    settlements: BTreeMap<String, (String, u64, String)>,
    /// `(trade_no, receiver)` → (settled to it, taken back from it by refunds).
    received: BTreeMap<(String, String), (u64, u64)>,
}

impl SettleBook {
    /// What the seller no longer holds of trade `trade_no`: settled and not taken back.
    pub(crate) fn out_of(&self, trade_no: &str) -> u64 {
        self.received
            .iter()
            .filter(|((t, _), _)| t == trade_no)
            .map(|(_, (settled, back))| settled - back)
            .sum()
    }

    /// Whether `backs` (receiver, fen) can be taken back from trade `trade_no`'s receivers.
    pub(crate) fn can_take_back(&self, trade_no: &str, backs: &[(String, u64)]) -> bool {
        backs.iter().all(|(account, amount)| {
            self.received
                .get(&(trade_no.to_owned(), account.clone()))
                .is_some_and(|(settled, back)| back + amount <= *settled)
        })
    }

    /// Takes `backs` back (checked with [`Self::can_take_back`]).
    pub(crate) fn take_back(&mut self, trade_no: &str, backs: &[(String, u64)]) {
        for (account, amount) in backs {
            if let Some(r) = self
                .received
                .get_mut(&(trade_no.to_owned(), account.clone()))
            {
                r.1 += amount;
            }
        }
    }
}

/// The `refund_royalty_parameters` of a refund: (receiver, fen).
pub(crate) fn royalty_backs(req: &AliRequest) -> Result<Vec<(String, u64)>, AliReply> {
    let mut backs = Vec::new();
    for p in req.biz["refund_royalty_parameters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let account = p["trans_out"]
            .as_str()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("refund_royalty_parameters.trans_out"))?;
        let amount = p["amount"]
            .as_str()
            .and_then(pay_money_fen)
            .ok_or_else(|| missing("refund_royalty_parameters.amount"))?;
        backs.push((account.to_owned(), amount));
    }
    Ok(backs)
}

fn owner(req: &AliRequest) -> String {
    format!("{}/{}", req.app_id, req.merchant.as_deref().unwrap_or("-"))
}

/// `alipay.trade.royalty.relation.bind`.
pub(super) fn bind(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let list = req.biz["receiver_list"]
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| missing("receiver_list"))?;
    let mut accounts = Vec::new();
    for r in list {
        let account = r["account"]
            .as_str()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing("receiver_list.account"))?;
        accounts.push(account.to_owned());
    }
    let mut ali = lock(&state.alipay);
    for a in accounts {
        ali.settle.receivers.insert(format!("{}/{a}", owner(req)));
    }
    Ok(AliReply::Ok(json!({"result_code": "SUCCESS"})))
}

/// `alipay.trade.order.settle`.
pub(super) fn settle(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let out_request_no = req.biz["out_request_no"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("out_request_no"))?;
    let trade_no = req.biz["trade_no"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("trade_no"))?;
    let mut shares = Vec::new();
    for p in req.biz["royalty_parameters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let account = p["trans_in"].as_str().unwrap_or_default().to_owned();
        let amount = p["amount"]
            .as_str()
            .and_then(pay_money_fen)
            .ok_or_else(|| missing("royalty_parameters.amount"))?;
        shares.push((account, amount));
    }
    if shares.is_empty() {
        return Err(missing("royalty_parameters"));
    }
    let total: u64 = shares.iter().map(|s| s.1).sum();
    let mut ali = lock(&state.alipay);
    let key = format!("{}/{out_request_no}", req.app_id);
    if let Some((t, amount, settle_no)) = ali.settle.settlements.get(&key) {
        if t != trade_no || *amount != total {
            return Err(business(
                "ACQ.DISCORDANT_REPEAT_REQUEST",
                "本次请求和之前的请求不一致",
            ));
        }
        return Ok(AliReply::Ok(json!({"trade_no": t, "settle_no": settle_no})));
    }
    let trade = ali
        .trades
        .values()
        .find(|t| t.app_id == req.app_id && t.trade_no == trade_no && t.merchant == req.merchant)
        .cloned()
        .ok_or_else(|| business("ACQ.TRADE_NOT_EXIST", "交易不存在"))?;
    if trade.paid_at.is_none() {
        return Err(business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
    }
    for (account, _) in &shares {
        if !ali
            .settle
            .receivers
            .contains(&format!("{}/{account}", owner(req)))
        {
            return Err(business("ACQ.TRANS_IN_NOT_BIND", "分账收入方未绑定"));
        }
    }
    let settled: u64 = ali
        .settle
        .settlements
        .values()
        .filter(|s| s.0 == trade_no)
        .map(|s| s.1)
        .sum();
    if settled + total + trade.refunded_fen > trade.total_fen {
        return Err(business(
            "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR",
            "分账金额超过最大可分账金额",
        ));
    }
    let settle_no = format!("{}{}", &wechat_time(now())[..8], digits(16));
    ali.settle
        .settlements
        .insert(key, (trade_no.to_owned(), total, settle_no.clone()));
    for (account, amount) in shares {
        ali.settle
            .received
            .entry((trade_no.to_owned(), account))
            .or_default()
            .0 += amount;
    }
    Ok(AliReply::Ok(
        json!({"trade_no": trade_no, "settle_no": settle_no}),
    ))
}

fn pay_money_fen(yuan: &str) -> Option<u64> {
    wechat_pay::Fen::from_yuan_str(yuan)
        .ok()
        .map(wechat_pay::Fen::as_u64)
        .filter(|f| *f > 0)
}
