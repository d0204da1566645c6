//! `alipay.data.dataservice.bill.downloadurl.query` and the bills behind it: a zip of GBK CSV
//! files made from the sandbox's own trades and refunds of that day (China time), in Alipay's
//! layout — the detail (`…_业务明细.csv` / `…_账务明细.csv`) and its summary — served for 30
//! seconds at `/sandbox/alipay/bill/{token}`.
//!
//! As Alipay: a day without a row is `isp.bill_not_exist`; a future day is an invalid argument.
//! Unlike Alipay (T+1), today's bill is answered too, so that a test need not wait a day. The
//! service fee is 0.6%, rounded to the fen, given back on refunds.

use std::io::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AliReply, AliRequest, invalid, missing};
use crate::state::{AliRefund, AliTrade, dashed_time, hex32, now};
use crate::{SandboxState, lock};

/// How long a download link works.
const LINK_SECS: i64 = 30;

/// A bill behind a link.
#[derive(Debug, Clone)]
pub(crate) struct BillLink {
    zip: Vec<u8>,
    expires_at: i64,
}

/// `alipay.data.dataservice.bill.downloadurl.query`.
pub(super) fn download_url(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let bill_type = req.biz["bill_type"]
        .as_str()
        .ok_or_else(|| missing("bill_type"))?;
    let date = req.biz["bill_date"]
        .as_str()
        .ok_or_else(|| missing("bill_date"))?;
    let day =
        parse_day(date).ok_or_else(|| invalid("isv.invalid-parameter", "bill_date 格式错误"))?;
    if day > china_day(now()) {
        return Err(invalid(
            "isv.invalid_arguments",
            "bill_date 只能是今天以前的日期",
        ));
    }
    if state.faults.take_bill_not_ready() {
        return Err(bill_not_exist());
    }
    let ali = lock(&state.alipay);
    let trades: Vec<&AliTrade> = ali
        .trades
        .values()
        .filter(|t| t.app_id == req.app_id)
        .collect();
    let refunds: Vec<&AliRefund> = ali
        .refunds
        .values()
        .filter(|r| r.app_id == req.app_id && china_day(r.created_at) == day)
        .collect();
    // Each payment of the day, with the amount a fault may have the bill say instead.
    let listed: Vec<AliTrade> = trades
        .iter()
        .filter(|t| t.paid_at.is_some_and(|at| china_day(at) == day))
        .map(|t| {
            let mut t = (*t).clone();
            if let Some(amount) = state.faults.bill_amount(&t.out_trade_no) {
                t.total_fen = amount;
            }
            t
        })
        .collect();
    let paid: Vec<&AliTrade> = listed.iter().collect();
    if paid.is_empty() && refunds.is_empty() {
        return Err(bill_not_exist());
    }
    state
        .faults
        .billed(paid.iter().map(|t| t.out_trade_no.as_str()));
    let account = state
        .config
        .alipay_apps
        .iter()
        .find(|a| a.app_id == req.app_id)
        .map(|a| a.seller_id.clone())
        .unwrap_or_default();
    let compact = date.replace('-', "");
    let (detail, name) = match bill_type {
        "trade" => (
            trade_detail(&account, date, &paid, &trades, &refunds),
            "业务明细",
        ),
        "signcustomer" => (
            account_detail(&account, date, &paid, &trades, &refunds),
            "账务明细",
        ),
        _ => return Err(invalid("isv.invalid-parameter", "bill_type 错误")),
    };
    drop(ali);
    let zip = zipped(&[
        (format!("{account}_{compact}_{name}.csv"), detail),
        (
            format!("{account}_{compact}_{name}(汇总).csv"),
            format!("#支付宝{name}汇总查询\n#账号：[{account}]\n"),
        ),
    ])
    .map_err(|e| invalid("isp.unknow-error", e.to_string()))?;
    let token = hex32();
    let at = now();
    let mut ali = lock(&state.alipay);
    ali.bill_links.retain(|_, l| l.expires_at > at);
    ali.bill_links.insert(
        token.clone(),
        BillLink {
            zip,
            expires_at: at + LINK_SECS,
        },
    );
    Ok(AliReply::Ok(json!({
        "bill_download_url": format!("{}/sandbox/alipay/bill/{token}", state.config.public_url),
    })))
}

fn bill_not_exist() -> AliReply {
    AliReply::Fail(
        "40004",
        "Business Failed",
        "isp.bill_not_exist",
        "账单不存在".to_owned(),
    )
}

/// `GET /sandbox/alipay/bill/{token}`: the zip, while the link lives.
pub(super) async fn download(
    State(state): State<Arc<SandboxState>>,
    Path(token): Path<String>,
) -> Response {
    let link = lock(&state.alipay).bill_links.get(&token).cloned();
    match link {
        Some(l) if l.expires_at > now() => {
            ([(header::CONTENT_TYPE, "application/zip")], l.zip).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `yyyy-MM-dd` as days since the epoch.
fn parse_day(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    let epoch = time::macros::date!(1970 - 01 - 01);
    Some(i64::from(date.to_julian_day()) - i64::from(epoch.to_julian_day()))
}

/// The China-time day of `unix` (days since the epoch).
fn china_day(unix: i64) -> i64 {
    (unix + 8 * 3600).div_euclid(86_400)
}

/// Alipay's fee on `fen`: 0.6%, rounded to the fen.
fn fee(fen: u64) -> u64 {
    (fen * 6 + 500) / 1000
}

use super::trades::yuan;

fn minus(fen: u64) -> String {
    if fen == 0 {
        return "0.00".to_owned();
    }
    format!("-{}", yuan(fen))
}

/// The trade bill's detail: a row per payment of the day, a row per refund of the day.
fn trade_detail(
    account: &str,
    date: &str,
    paid: &[&AliTrade],
    trades: &[&AliTrade],
    refunds: &[&AliRefund],
) -> String {
    let mut out = format!(
        "#支付宝业务明细查询\n#账号：[{account}]\n#起始日期：[{date} 00:00:00]   终止日期：[{date} 23:59:59]\n\
         #-----------------------------------------业务明细列表----------------------------------------\n\
         支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,\
         订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,\
         券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n"
    );
    let mut received = 0u64;
    for t in paid {
        received += t.total_fen;
        out.push_str(&format!(
            "{}\t,{}\t,交易\t,{}\t,{}\t,{}\t,,,,,{}\t,{}\t,{}\t,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,\t,{}\t,0.00,\n",
            t.trade_no,
            t.out_trade_no,
            csv_text(&t.subject),
            dashed_time(t.created_at),
            dashed_time(t.paid_at.unwrap_or(t.created_at)),
            t.buyer_id.as_deref().unwrap_or_default(),
            yuan(t.total_fen),
            yuan(t.total_fen),
            minus(fee(t.total_fen)),
        ));
    }
    let mut refunded = 0u64;
    for r in refunds {
        let Some(t) = trades.iter().find(|t| t.out_trade_no == r.out_trade_no) else {
            continue;
        };
        refunded += r.amount_fen;
        out.push_str(&format!(
            "{}\t,{}\t,退款\t,{}\t,{}\t,{}\t,,,,,{}\t,{}\t,{}\t,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{}\t,{}\t,0.00,\n",
            t.trade_no,
            t.out_trade_no,
            csv_text(&t.subject),
            dashed_time(t.created_at),
            dashed_time(r.created_at),
            t.buyer_id.as_deref().unwrap_or_default(),
            minus(r.amount_fen),
            minus(r.amount_fen),
            r.out_request_no,
            yuan(fee(r.amount_fen)),
        ));
    }
    out.push_str(&format!(
        "#-----------------------------------------业务明细列表结束------------------------------------\n\
         #交易合计：{}笔，商家实收共{}元，商家优惠共0.00元\n\
         #退款合计：{}笔，商家实收退款共{}元，商家优惠退款共0.00元\n\
         #导出时间：[{}]\n",
        paid.len(),
        yuan(received),
        refunds.len(),
        minus(refunded),
        dashed_time(now()),
    ));
    out
}

/// The account bill's detail: the income of each payment and its fee, each refund and the fee
/// given back, with the balance as it moves (from zero at the start of the day).
fn account_detail(
    account: &str,
    date: &str,
    paid: &[&AliTrade],
    trades: &[&AliTrade],
    refunds: &[&AliRefund],
) -> String {
    let mut out = format!(
        "#支付宝账务明细查询\n#账号：[{account}]\n#起始日期：[{date} 00:00:00]   终止日期：[{date} 23:59:59]\n\
         #-----------------------------------------账务明细列表----------------------------------------\n\
         账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注\n"
    );
    let mut balance: i64 = 0;
    let mut entry = 0u32;
    let mut line =
        |out: &mut String, t: &AliTrade, at: i64, income: u64, expense: u64, kind: &str| {
            entry += 1;
            balance += i64::try_from(income).unwrap_or(i64::MAX)
                - i64::try_from(expense).unwrap_or(i64::MAX);
            let shown = if balance < 0 {
                minus(balance.unsigned_abs())
            } else {
                yuan(balance.unsigned_abs())
            };
            out.push_str(&format!(
                "{}{entry:06}\t,{}\t,{}\t,{}\t,{}\t,{}\t,{}\t,{}\t,{shown}\t,支付宝\t,{kind}\t,\n",
                &t.trade_no[..8.min(t.trade_no.len())],
                t.trade_no,
                t.out_trade_no,
                csv_text(&t.subject),
                dashed_time(at),
                t.buyer_id.as_deref().unwrap_or_default(),
                yuan(income),
                minus(expense),
            ));
        };
    for t in paid {
        let at = t.paid_at.unwrap_or(t.created_at);
        line(&mut out, t, at, t.total_fen, 0, "在线支付");
        line(&mut out, t, at, 0, fee(t.total_fen), "收费");
    }
    for r in refunds {
        let Some(t) = trades.iter().find(|t| t.out_trade_no == r.out_trade_no) else {
            continue;
        };
        line(&mut out, t, r.created_at, 0, r.amount_fen, "交易退款");
        line(&mut out, t, r.created_at, fee(r.amount_fen), 0, "收费退回");
    }
    out.push_str(
        "#----------------------------------------账务明细列表结束-------------------------------------\n",
    );
    out
}

/// A text field as CSV writes it (quoted when it holds a comma or a quote).
fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The files, GBK-encoded, in a zip.
fn zipped(files: &[(String, String)]) -> Result<Vec<u8>, zip::result::ZipError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, text) in files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())?;
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        zip.write_all(&gbk)?;
    }
    Ok(zip.finish()?.into_inner())
}
