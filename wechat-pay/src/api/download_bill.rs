//! `/pay/downloadbill`: the trade bill of one day, as typed records plus the summary.

use std::io::{BufRead, BufReader, Read};

use time::Date;

use super::bill_table::{self, Columns, Summary};
use super::{Download, Endpoint};
use crate::{Error, Fen, Params, TradeType};

/// Which records the bill holds (`bill_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BillType {
    /// `ALL`: payments and refunds.
    #[default]
    All,
    /// `SUCCESS`: successful payments.
    Success,
    /// `REFUND`: refunds.
    Refund,
    /// `RECHARGE_REFUND`: refunds of recharge coupons.
    RechargeRefund,
}

impl BillType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BillType::All => "ALL",
            BillType::Success => "SUCCESS",
            BillType::Refund => "REFUND",
            BillType::RechargeRefund => "RECHARGE_REFUND",
        }
    }
}

/// A bill download request. Bills are ready after 10:00 (UTC+8) the next day.
///
/// ```
/// use wechat_pay::{BillType, DownloadBill};
/// let req = DownloadBill::new(time::macros::date!(2024-01-31), BillType::All).gzip();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadBill {
    bill_date: Date,
    bill_type: BillType,
    gzip: bool,
}

impl DownloadBill {
    /// The bill of `bill_date` (a day in UTC+8).
    pub fn new(bill_date: Date, bill_type: BillType) -> Self {
        DownloadBill {
            bill_date,
            bill_type,
            gzip: false,
        }
    }

    /// Asks for a gzip-compressed file (`tar_type=GZIP`); the client decompresses it.
    pub fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }
}

/// `yyyyMMdd`.
pub(crate) fn bill_date(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Endpoint for DownloadBill {
    const PATH: &'static str = "/pay/downloadbill";

    fn write_params(&self, p: &mut Params) {
        p.insert("bill_date", bill_date(self.bill_date));
        p.insert("bill_type", self.bill_type.as_str());
        if self.gzip {
            p.insert("tar_type", "GZIP");
        }
    }
}

impl Download for DownloadBill {
    type Output = Bill;

    fn parse(text: &str) -> Result<Bill, Error> {
        Bill::parse(text)
    }
}

/// A day's trade bill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bill {
    /// One record per payment or refund.
    pub rows: Vec<BillRow>,
    /// The totals line.
    pub summary: BillSummary,
}

/// One record of a trade bill. Columns are read by their header name, so the `ALL`, `SUCCESS`
/// and `REFUND` layouts (and older layouts) all decode; columns a layout lacks are `None`.
/// Amounts are converted exactly from yuan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillRow {
    /// 交易时间 (`yyyy-MM-dd HH:mm:ss`, UTC+8).
    pub trade_time: String,
    /// 公众账号ID.
    pub app_id: String,
    /// 商户号.
    pub mch_id: String,
    /// 特约商户号 / 子商户号.
    pub sub_mch_id: Option<String>,
    /// 设备号.
    pub device_info: Option<String>,
    /// 微信订单号.
    pub transaction_id: String,
    /// 商户订单号.
    pub out_trade_no: String,
    /// 用户标识.
    pub open_id: Option<String>,
    /// 交易类型.
    pub trade_type: Option<TradeType>,
    /// 交易状态 (`SUCCESS`, `REFUND`, `REVOKED`…).
    pub trade_state: Option<String>,
    /// 付款银行.
    pub bank_type: Option<String>,
    /// 货币种类.
    pub fee_type: Option<String>,
    /// 应结订单金额.
    pub settlement_total_fee: Option<Fen>,
    /// 代金券金额 (企业红包金额 in older layouts).
    pub coupon_fee: Option<Fen>,
    /// 微信退款单号.
    pub refund_id: Option<String>,
    /// 商户退款单号.
    pub out_refund_no: Option<String>,
    /// 退款金额.
    pub settlement_refund_fee: Option<Fen>,
    /// 充值券退款金额 (企业红包退款金额 in older layouts).
    pub coupon_refund_fee: Option<Fen>,
    /// 退款类型.
    pub refund_type: Option<String>,
    /// 退款状态.
    pub refund_status: Option<String>,
    /// 商品名称.
    pub body: Option<String>,
    /// 商户数据包.
    pub attach: Option<String>,
    /// 手续费, in fen: negative on refund records (the fee is returned).
    pub service_fee: Option<i64>,
    /// 费率 (e.g. `0.60%`).
    pub fee_rate: Option<String>,
    /// 订单金额.
    pub total_fee: Option<Fen>,
    /// 申请退款金额.
    pub refund_fee: Option<Fen>,
    /// 费率备注.
    pub fee_rate_remark: Option<String>,
    /// 退款申请时间 (REFUND bills).
    pub refund_apply_time: Option<String>,
    /// 退款成功时间 (REFUND bills).
    pub refund_success_time: Option<String>,
}

/// The totals of a trade bill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillSummary {
    /// 总交易单数.
    pub trade_count: u64,
    /// 应结订单总金额.
    pub settlement_total_fee: Option<Fen>,
    /// 退款总金额.
    pub refund_fee: Option<Fen>,
    /// 充值券退款总金额 (企业红包退款总金额 in older layouts).
    pub coupon_refund_fee: Option<Fen>,
    /// 手续费总金额, in fen (negative when refunds outweigh payments).
    pub service_fee: Option<i64>,
    /// 订单总金额.
    pub total_fee: Option<Fen>,
    /// 申请退款总金额.
    pub applied_refund_fee: Option<Fen>,
}

impl Bill {
    /// Parses a trade bill's text (see [`BillRows`] to read a large bill a row at a time).
    pub fn parse(text: &str) -> Result<Bill, Error> {
        bill_table::read_all(text, row, summary).map(|(rows, summary)| Bill { rows, summary })
    }
}

/// A trade bill read a row at a time, so that a day of any size is read in constant memory:
/// an iterator of [`BillRow`]s; once it has ended, [`summary`](BillRows::summary) holds the
/// totals line. A file that ends before its totals ends the iteration with an error (a
/// truncated download is never taken for a shorter day).
///
/// ```
/// # fn main() -> Result<(), wechat_pay::Error> {
/// let file = "交易时间,公众账号ID,商户号,微信订单号,商户订单号,应结订单金额\n\
///             `2024-01-31 10:15:02,`wx2421b1c4370ec43b,`10000100,`4200001,`A1,`3.50\n\
///             总交易单数,应结订单总金额\n`1,`3.50\n";
/// let mut rows = wechat_pay::BillRows::new(file.as_bytes())?;
/// let first = rows.next().transpose()?.map(|r| r.settlement_total_fee);
/// assert_eq!(first, Some(Some(wechat_pay::Fen::new(350))));
/// assert!(rows.next().is_none());
/// assert_eq!(rows.summary().map(|s| s.trade_count), Some(1));
/// # Ok(()) }
/// ```
pub struct BillRows<R> {
    table: bill_table::TableReader<R>,
    summary: Option<BillSummary>,
    failed: bool,
}

impl<R> std::fmt::Debug for BillRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillRows")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> BillRows<R> {
    /// Reads the header of a (decompressed) bill.
    pub fn new(reader: R) -> Result<Self, Error> {
        Ok(BillRows {
            table: bill_table::TableReader::new(reader)?,
            summary: None,
            failed: false,
        })
    }

    /// The totals line, once every row has been read.
    pub fn summary(&self) -> Option<&BillSummary> {
        self.summary.as_ref()
    }
}

impl BillRows<Box<dyn BufRead + Send>> {
    /// Reads a bill file as WeChat sends it (what [`Client::download_to`](crate::Client::download_to)
    /// and the API v3 client's `download_to` write): gzip-compressed or plain, with or without
    /// a byte-order mark. WeChat's XML error in place of the file is returned as that error.
    pub fn open(file: impl Read + Send + 'static) -> Result<Self, Error> {
        let mut reader = BufReader::new(file);
        let gzip = reader
            .fill_buf()
            .map_err(|e| Error::decode("bill", format!("cannot read: {e}")))?
            .starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead + Send> = if gzip {
            Box::new(BufReader::new(flate2::read::GzDecoder::new(reader)))
        } else {
            Box::new(reader)
        };
        let head = reader
            .fill_buf()
            .map_err(|e| Error::decode("bill", format!("cannot read: {e}")))?;
        if head.trim_ascii_start().starts_with(b"<xml") {
            let mut xml = Vec::new();
            reader
                .take(64 * 1024)
                .read_to_end(&mut xml)
                .map_err(|e| Error::decode("bill", format!("cannot read: {e}")))?;
            return Err(crate::client::xml_instead_of_file(&xml));
        }
        BillRows::new(reader)
    }
}

impl<R: BufRead> Iterator for BillRows<R> {
    type Item = Result<BillRow, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match self.table.next_record() {
            Some(record) => record.and_then(|r| row(self.table.columns(), &r)),
            None => match self.table.summary().map(summary) {
                Some(Ok(s)) => {
                    self.summary = Some(s);
                    return None;
                }
                Some(Err(e)) => Err(e),
                None => return None,
            },
        };
        self.failed = item.is_err();
        Some(item)
    }
}

fn row(t: &Columns, r: &[String]) -> Result<BillRow, Error> {
    Ok(BillRow {
        trade_time: t.text(r, &["交易时间"])?,
        app_id: t.text(r, &["公众账号ID"])?,
        mch_id: t.text(r, &["商户号"])?,
        sub_mch_id: t.opt_text(r, &["特约商户号", "子商户号"]),
        device_info: t.opt_text(r, &["设备号"]),
        transaction_id: t.text(r, &["微信订单号"])?,
        out_trade_no: t.text(r, &["商户订单号"])?,
        open_id: t.opt_text(r, &["用户标识"]),
        trade_type: t.field(r, &["交易类型"]).map(TradeType::from_wire),
        trade_state: t.opt_text(r, &["交易状态"]),
        bank_type: t.opt_text(r, &["付款银行"]),
        fee_type: t.opt_text(r, &["货币种类"]),
        settlement_total_fee: t.opt_yuan(r, &["应结订单金额", "总金额"])?,
        coupon_fee: t.opt_yuan(r, &["代金券金额", "企业红包金额", "代金券或立减优惠金额"])?,
        refund_id: t.opt_text(r, &["微信退款单号"]),
        out_refund_no: t.opt_text(r, &["商户退款单号"]),
        settlement_refund_fee: t.opt_yuan(r, &["退款金额"])?,
        coupon_refund_fee: t.opt_yuan(
            r,
            &[
                "充值券退款金额",
                "企业红包退款金额",
                "代金券或立减优惠退款金额",
            ],
        )?,
        refund_type: t.opt_text(r, &["退款类型"]),
        refund_status: t.opt_text(r, &["退款状态"]),
        body: t.opt_text(r, &["商品名称"]),
        attach: t.opt_text(r, &["商户数据包"]),
        service_fee: t.opt_signed_yuan(r, &["手续费"])?,
        fee_rate: t.opt_text(r, &["费率"]),
        total_fee: t.opt_yuan(r, &["订单金额"])?,
        refund_fee: t.opt_yuan(r, &["申请退款金额"])?,
        fee_rate_remark: t.opt_text(r, &["费率备注"]),
        refund_apply_time: t.opt_text(r, &["退款申请时间"]),
        refund_success_time: t.opt_text(r, &["退款成功时间"]),
    })
}

fn summary(s: &Summary) -> Result<BillSummary, Error> {
    Ok(BillSummary {
        trade_count: s
            .count("总交易单数")?
            .ok_or_else(|| Error::decode("总交易单数", "missing"))?,
        settlement_total_fee: s.yuan(&["应结订单总金额", "总交易额"])?,
        refund_fee: s.yuan(&["退款总金额"])?,
        coupon_refund_fee: s.yuan(&["充值券退款总金额", "企业红包退款总金额"])?,
        service_fee: s.signed_yuan(&["手续费总金额"])?,
        total_fee: s.yuan(&["订单总金额"])?,
        applied_refund_fee: s.yuan(&["申请退款总金额"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &str = include_str!("../../testdata/bill_all.csv");

    #[test]
    fn parses_the_all_layout() {
        let bill = Bill::parse(ALL).unwrap();
        assert_eq!(bill.rows.len(), 3);
        let first = &bill.rows[0];
        assert_eq!(first.trade_time, "2024-01-31 10:15:02");
        assert_eq!(first.app_id, "wx2421b1c4370ec43b");
        assert_eq!(first.out_trade_no, "20240131000001");
        assert_eq!(first.trade_type, Some(TradeType::Jsapi));
        assert_eq!(first.settlement_total_fee, Some(Fen::new(350)));
        assert_eq!(first.total_fee, Some(Fen::new(350)));
        assert_eq!(first.service_fee, Some(2));
        assert_eq!(first.fee_rate.as_deref(), Some("0.60%"));
        // A product name with a comma stays one field.
        assert_eq!(bill.rows[1].body.as_deref(), Some("Cola, 330ml"));
        let refund = &bill.rows[2];
        assert_eq!(refund.out_refund_no.as_deref(), Some("R20240131000001"));
        assert_eq!(refund.settlement_refund_fee, Some(Fen::new(350)));
        assert_eq!(refund.service_fee, Some(-2));
        assert_eq!(bill.summary.trade_count, 3);
        assert_eq!(bill.summary.settlement_total_fee, Some(Fen::new(700)));
        assert_eq!(bill.summary.refund_fee, Some(Fen::new(350)));
        assert_eq!(bill.summary.service_fee, Some(2));
    }

    #[test]
    fn rejects_malformed_bills() {
        assert!(Bill::parse("").is_err());
        let no_summary = ALL.lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(Bill::parse(&no_summary).is_err());
        let bad_amount = ALL.replace("`3.50,`0.00,`0", "`3.505,`0.00,`0");
        assert!(matches!(
            Bill::parse(&bad_amount),
            Err(Error::Decode { .. })
        ));
        let short = ALL.replacen("`wx2421b1c4370ec43b,", "", 1);
        assert!(Bill::parse(&short).is_err());
    }
}
