//! Alipay's trade bill (`trade`): a link from `alipay.data.dataservice.bill.downloadurl.query`,
//! a zip of GBK CSV files, its detail file read a row at a time.
//!
//! Alipay answers `isp.bill_not_exist` both before a day's bill is made and for a day without a
//! bill; it documents that a day's bill is made by 09:00 the next day (China time). So the answer
//! means "not ready yet" until noon the next day ([`READY_BY`] after the day began), and "no
//! bill: nothing moved" after.

use alipay::bill::{BillArchive, TradeBillKind, TradeBillRow};
use alipay::{BillDownloadUrlQuery, BillType, Client, Fen, SubCode};

use super::transformers::{error, is};
use crate::channels::bill::unreadable;
use crate::channels::{BillAvailability, BillEntry, BillEntryKind, BillSink};
use crate::{ChannelError, RefundStatus};

/// How long after a day began its bill is surely made: noon the next day.
pub(crate) const READY_BY: time::Duration = time::Duration::hours(36);

pub(super) async fn download(
    client: &Client,
    day: time::Date,
    to: &mut (dyn std::io::Write + Send),
) -> Result<BillAvailability, ChannelError> {
    let link = match client
        .execute(&BillDownloadUrlQuery::new(BillType::Trade, day))
        .await
    {
        Ok(link) => link,
        Err(e) if is(&e, &SubCode::BillNotExist) => {
            let (start, _) = crate::bills::day_bounds(day);
            return Ok(if time::OffsetDateTime::now_utc() >= start + READY_BY {
                BillAvailability::NoBill
            } else {
                BillAvailability::NotReady
            });
        }
        Err(e) => return Err(error(e)),
    };
    client
        .download_bill(&link.bill_download_url, to)
        .await
        .map_err(error)?;
    Ok(BillAvailability::Ready)
}

pub(super) fn read(file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
    let mut archive = BillArchive::new(file).map_err(unreadable)?;
    let mut rows = archive.trade_bill().map_err(unreadable)?;
    for row in rows.by_ref() {
        if let Some(entry) = entry(row.map_err(unreadable)?)? {
            if !each(entry) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A payment (`交易`) or a refund (`退款`, its `out_request_no` our refund number); other rows
/// move no money of a trade. Alipay writes a refund's amounts and the payment's fee negative.
fn entry(row: TradeBillRow) -> Result<Option<BillEntry>, ChannelError> {
    let kind = match row.kind {
        TradeBillKind::Payment => BillEntryKind::Payment,
        TradeBillKind::Refund => BillEntryKind::Refund,
        _ => return Ok(None),
    };
    let amount = Fen::new(row.amount.unsigned_abs());
    if kind == BillEntryKind::Refund && row.out_request_no.is_none() {
        return Err(unreadable(format!(
            "a refund of {} has no request number",
            row.out_trade_no
        )));
    }
    Ok(Some(BillEntry {
        kind,
        out_trade_no: row.out_trade_no,
        transaction_id: row.trade_no,
        out_refund_no: row.out_request_no,
        channel_refund_id: None,
        amount,
        currency: "CNY".to_owned(),
        status: RefundStatus::Succeeded,
        fee: -row.service_fee,
    }))
}
