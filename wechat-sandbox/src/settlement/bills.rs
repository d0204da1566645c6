//! Bills generated from the sandbox's own orders and refunds, in WeChat's backtick format: the
//! same text for API v2's `/pay/downloadbill` and API v3's bill downloads.

use std::io::Write;

use crate::state::{WxOrder, WxRefund, dashed_time, wechat_time};
use crate::{SandboxState, lock};

/// `yuan` with two decimals.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let f = fen.unsigned_abs();
    format!("{sign}{}.{:02}", f / 100, f % 100)
}

/// The fee the sandbox charges: 0.6%, rounded to the fen.
fn fee(amount: u64) -> i64 {
    i64::try_from((amount * 6 + 500) / 1000).unwrap_or(i64::MAX)
}

fn record(fields: &[String]) -> String {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('`');
        line.push_str(f);
    }
    line.push('\n');
    line
}

const ALL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

/// A payment's row, listing `amount` (what was paid, unless a fault says otherwise).
fn payment_row(o: &WxOrder, amount: u64) -> Vec<String> {
    vec![
        dashed_time(o.paid_at.unwrap_or(o.created_at)),
        o.app_id.clone(),
        o.mch_id.clone(),
        "0".into(),
        o.device_info.clone().unwrap_or_default(),
        o.transaction_id.clone(),
        o.out_trade_no.clone(),
        o.openid.clone().unwrap_or_default(),
        o.trade_type.clone(),
        "SUCCESS".into(),
        "CMC".into(),
        o.fee_type.clone(),
        yuan(amount as i64),
        "0.00".into(),
        "0".into(),
        "0".into(),
        "0.00".into(),
        "0.00".into(),
        String::new(),
        String::new(),
        o.body.clone(),
        o.attach.clone().unwrap_or_default(),
        yuan(fee(amount)),
        "0.60%".into(),
        yuan(amount as i64),
        "0.00".into(),
        String::new(),
    ]
}

fn refund_row(o: &WxOrder, r: &WxRefund) -> Vec<String> {
    let mut row = payment_row(o, o.total_fee);
    row[0] = dashed_time(r.success_at.unwrap_or(r.created_at));
    row[9] = "REFUND".into();
    row[12] = "0.00".into();
    row[14] = r.refund_id.clone();
    row[15] = r.out_refund_no.clone();
    row[16] = yuan(r.refund_fee as i64);
    row[18] = "ORIGINAL".into();
    row[19] = r.status.clone();
    row[22] = yuan(-fee(r.refund_fee));
    row[24] = "0.00".into();
    row[25] = yuan(r.refund_fee as i64);
    row
}

/// The trade bill of merchant `mch` for `date` (`yyyyMMdd`, UTC+8) with `bill_type` (`ALL`,
/// `SUCCESS`, `REFUND`); `None` when there is nothing in it (WeChat's "No Bill Exist").
pub(crate) fn trade_bill(
    state: &SandboxState,
    mch: &str,
    date: &str,
    bill_type: &str,
) -> Option<String> {
    let wx = lock(&state.wechat);
    let on_day = |t: Option<i64>| t.is_some_and(|t| wechat_time(t).starts_with(date));
    let mut rows: Vec<(Vec<String>, i64, i64, u64)> = Vec::new(); // row, paid, refunded, fee
    if bill_type != "REFUND" {
        for o in wx
            .orders
            .values()
            .filter(|o| o.mch_id == mch && on_day(o.paid_at))
        {
            let amount = state
                .faults
                .bill_amount(&o.out_trade_no)
                .unwrap_or(o.total_fee);
            rows.push((payment_row(o, amount), amount as i64, 0, amount));
        }
    }
    if bill_type != "SUCCESS" {
        for r in wx
            .refunds
            .values()
            .filter(|r| r.mch_id == mch && on_day(r.success_at))
        {
            if let Some(o) = wx.orders.get(&crate::state::key(mch, &r.out_trade_no)) {
                rows.push((refund_row(o, r), 0, r.refund_fee as i64, 0));
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    // Queries withheld until the bill tell the truth again.
    state
        .faults
        .billed(rows.iter().map(|(row, ..)| row[6].as_str()));
    let mut text = String::from(ALL_HEADER);
    text.push('\n');
    let (mut paid, mut refunded, mut fees, mut ordered) = (0i64, 0i64, 0i64, 0u64);
    for (row, p, r, o) in &rows {
        text.push_str(&record(row));
        paid += p;
        refunded += r;
        ordered += o;
        fees += fee(u64::try_from(*p).unwrap_or(0)) - fee(u64::try_from(*r).unwrap_or(0));
    }
    text.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n");
    text.push_str(&record(&[
        rows.len().to_string(),
        yuan(paid),
        yuan(refunded),
        "0.00".into(),
        yuan(fees),
        yuan(ordered as i64),
        yuan(refunded),
    ]));
    Some(text)
}

/// The fund-flow bill of merchant `mch`'s `account` (`Basic`, `Operation`, `Fees`) for `date`
/// (`yyyyMMdd`); `None` when there is nothing in it. Only the basic account moves here.
pub(crate) fn fund_flow_bill(
    state: &SandboxState,
    mch: &str,
    date: &str,
    account: &str,
) -> Option<String> {
    let wx = lock(&state.wechat);
    let on_day = |t: Option<i64>| t.is_some_and(|t| wechat_time(t).starts_with(date));
    let mut movements: Vec<(i64, String, String, &str, i64, String)> = Vec::new();
    for o in wx
        .orders
        .values()
        .filter(|o| o.mch_id == mch && on_day(o.paid_at))
    {
        movements.push((
            o.paid_at.unwrap_or(0),
            o.transaction_id.clone(),
            "交易".into(),
            "收入",
            o.total_fee as i64,
            String::new(),
        ));
    }
    for r in wx
        .refunds
        .values()
        .filter(|r| r.mch_id == mch && on_day(r.success_at))
    {
        movements.push((
            r.success_at.unwrap_or(0),
            r.refund_id.clone(),
            "退款".into(),
            "支出",
            r.refund_fee as i64,
            r.out_refund_no.clone(),
        ));
    }
    if movements.is_empty() || !account.eq_ignore_ascii_case("Basic") {
        return None;
    }
    movements.sort_by_key(|m| m.0);
    let mut text = String::from(
        "记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额（元）,账户结余（元）,资金变更提交申请人,备注,业务凭证号\n",
    );
    let (mut balance, mut income, mut expense, mut n_in, mut n_out) = (0i64, 0i64, 0i64, 0, 0);
    for (t, no, name, direction, amount, voucher) in &movements {
        if *direction == "收入" {
            balance += amount;
            income += amount;
            n_in += 1;
        } else {
            balance -= amount;
            expense += amount;
            n_out += 1;
        }
        text.push_str(&record(&[
            dashed_time(*t),
            no.clone(),
            no.clone(),
            name.clone(),
            name.clone(),
            (*direction).to_owned(),
            yuan(*amount),
            yuan(balance),
            "system".into(),
            String::new(),
            voucher.clone(),
        ]));
    }
    text.push_str("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额\n");
    text.push_str(&record(&[
        movements.len().to_string(),
        n_in.to_string(),
        yuan(income),
        n_out.to_string(),
        yuan(expense),
    ]));
    Some(text)
}

/// `text`, gzip-compressed.
pub(crate) fn gzip(text: &str) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes())?;
    enc.finish()
}
