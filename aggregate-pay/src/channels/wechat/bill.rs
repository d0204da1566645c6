//! WeChat Pay's trade bill, the same file for API v2 and v3: downloaded as `ALL` (payments and
//! refunds), gzip-compressed, and read a row at a time. A merchant's bill lists every app under
//! it: a channel keeps the rows of its own app id.

use wechat_pay::{BillRow, BillRows, Fen};

use crate::ChannelError;
use crate::RefundStatus;
use crate::channels::bill::unreadable;
use crate::channels::{BillAvailability, BillEntry, BillEntryKind, BillSink};

/// What API v2's answer in place of the file means (`return_msg`).
pub(crate) fn v2_availability(return_msg: &str) -> Option<BillAvailability> {
    let msg = return_msg.to_ascii_lowercase();
    if msg.contains("no bill exist") {
        Some(BillAvailability::NoBill)
    } else if msg.contains("bill creating") {
        Some(BillAvailability::NotReady)
    } else {
        None
    }
}

/// What API v3's error code for a bill means.
pub(crate) fn v3_availability(code: &str) -> Option<BillAvailability> {
    match code {
        "NO_STATEMENT_EXIST" => Some(BillAvailability::NoBill),
        "STATEMENT_CREATING" => Some(BillAvailability::NotReady),
        _ => None,
    }
}

/// Reads the bill in `file`, handing `each` the payment and refund rows of `app_id`.
pub(crate) fn read(
    file: std::fs::File,
    app_id: &str,
    each: BillSink<'_>,
) -> Result<(), ChannelError> {
    let mut rows = BillRows::open(file).map_err(unreadable)?;
    for row in rows.by_ref() {
        let row = row.map_err(unreadable)?;
        if row.app_id != app_id {
            continue;
        }
        if let Some(entry) = entry(row)? {
            if !each(entry) {
                return Ok(());
            }
        }
    }
    match rows.summary() {
        Some(_) => Ok(()),
        None => Err(unreadable("the bill ends before its totals")),
    }
}

/// A row as an entry: `SUCCESS` a payment, `REFUND` a refund; a reversed payment (`REVOKED`)
/// moved no money and is left out.
fn entry(row: BillRow) -> Result<Option<BillEntry>, ChannelError> {
    let kind = match row.trade_state.as_deref() {
        Some("SUCCESS") => BillEntryKind::Payment,
        Some("REFUND") => BillEntryKind::Refund,
        _ => return Ok(None),
    };
    let amount = match kind {
        BillEntryKind::Payment => row.total_fee.or(row.settlement_total_fee),
        BillEntryKind::Refund => row.refund_fee.or(row.settlement_refund_fee),
    };
    let amount: Fen =
        amount.ok_or_else(|| unreadable(format!("{} has no amount", row.out_trade_no)))?;
    let status = match (kind, row.refund_status.as_deref()) {
        (BillEntryKind::Payment, _) | (_, Some("SUCCESS")) => RefundStatus::Succeeded,
        (_, Some("REFUNDCLOSE" | "CLOSED" | "FAIL")) => RefundStatus::Failed,
        (_, Some("CHANGE" | "ABNORMAL")) => RefundStatus::Abnormal,
        _ => RefundStatus::Pending,
    };
    if kind == BillEntryKind::Refund && row.out_refund_no.is_none() {
        return Err(unreadable(format!(
            "a refund of {} has no number",
            row.out_trade_no
        )));
    }
    // A payment row writes `0` in the refund columns.
    let refund = kind == BillEntryKind::Refund;
    Ok(Some(BillEntry {
        kind,
        out_trade_no: row.out_trade_no,
        transaction_id: row.transaction_id,
        out_refund_no: row.out_refund_no.filter(|_| refund),
        channel_refund_id: row.refund_id.filter(|_| refund),
        amount,
        currency: row.fee_type.unwrap_or_else(|| "CNY".to_owned()),
        status,
        fee: row.service_fee.unwrap_or(0),
    }))
}
