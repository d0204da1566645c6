//! Reading Alipay's daily bills: the zip behind a
//! [`BillDownloadUrl`](crate::api::bill::BillDownloadUrl), its GBK CSV files, typed rows.
//!
//! A bill zip holds a detail file (`…_业务明细.csv` for the trade bill, `…_账务明细.csv` for the
//! account bill) and summaries. A detail file is `#` comment lines (the account, the dates), the
//! list between `#-----…列表-----` and `#-----…列表结束-----` (a header row, then one row per
//! trade or movement), then `#` totals lines. [`BillArchive`] finds the detail file;
//! [`TradeBill`] and [`AccountBill`] read it row by row (decompressed, decoded and parsed as
//! they go, never the whole file at once). Columns are found by their header, so a column
//! Alipay adds or moves does not break the reader. Amounts are exact integers of fen, negative
//! for refunds and outgoing movements.

use std::io::{Read, Seek};

use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use crate::{Error, Fen};

/// A bill zip, as downloaded.
pub struct BillArchive<R> {
    zip: zip::ZipArchive<R>,
}

impl<R: Read + Seek> std::fmt::Debug for BillArchive<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BillArchive")
            .field("files", &self.zip.len())
            .finish()
    }
}

/// A detail file being read: decompressed and decoded from GBK as it is read.
pub type Detail<'a, R> = DecodeReaderBytes<zip::read::ZipFile<'a, R>, Vec<u8>>;

impl<R: Read + Seek> BillArchive<R> {
    /// Opens a downloaded zip (a file, or bytes in a `Cursor`).
    pub fn new(reader: R) -> Result<Self, Error> {
        let zip = zip::ZipArchive::new(reader).map_err(|e| Error::decode("bill zip", e))?;
        Ok(BillArchive { zip })
    }

    /// The names of the files in it.
    pub fn file_names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_owned).collect()
    }

    /// The trade bill's rows (`业务明细`).
    pub fn trade_bill(&mut self) -> Result<TradeBill<Detail<'_, R>>, Error> {
        TradeBill::new(self.detail("业务明细")?)
    }

    /// The account bill's rows (`账务明细`).
    pub fn account_bill(&mut self) -> Result<AccountBill<Detail<'_, R>>, Error> {
        AccountBill::new(self.detail("账务明细")?)
    }

    /// The detail file whose name has `kind` (not its summary, `…(汇总)`).
    fn detail(&mut self, kind: &str) -> Result<Detail<'_, R>, Error> {
        let index = (0..self.zip.len())
            .find(|&i| {
                self.zip
                    .name_for_index(i)
                    .is_some_and(|n| n.contains(kind) && !n.contains("汇总"))
            })
            .ok_or_else(|| Error::decode("bill zip", format!("no {kind} file")))?;
        let file = self
            .zip
            .by_index(index)
            .map_err(|e| Error::decode("bill zip", e))?;
        Ok(DecodeReaderBytesBuilder::new()
            .encoding(Some(encoding_rs::GBK))
            .build(file))
    }
}

/// One row of the trade bill (`业务明细`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TradeBillRow {
    /// 支付宝交易号.
    pub trade_no: String,
    /// 商户订单号.
    pub out_trade_no: String,
    /// 业务类型: a payment or a refund.
    pub kind: TradeBillKind,
    /// 商品名称.
    pub subject: String,
    /// 创建时间 (`yyyy-MM-dd HH:mm:ss`, China time).
    pub created_at: String,
    /// 完成时间 (`yyyy-MM-dd HH:mm:ss`, China time).
    pub finished_at: String,
    /// 对方账户 (the buyer's masked account).
    pub counterparty: String,
    /// 订单金额（元）, in fen: negative for a refund.
    pub amount: i64,
    /// 商家实收（元）, in fen: what the merchant received (negative for a refund).
    pub received: i64,
    /// 商家优惠（元）, in fen.
    pub merchant_discount: i64,
    /// 支付宝优惠（元）, in fen.
    pub alipay_discount: i64,
    /// 退款批次号/请求号: the refund's `out_request_no`, for a refund.
    pub out_request_no: Option<String>,
    /// 服务费（元）, in fen (Alipay's fee; negative, or given back on a refund).
    pub service_fee: i64,
    /// 分润（元）, in fen.
    pub profit_share: i64,
    /// 备注.
    pub remark: String,
}

/// What a trade bill row is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TradeBillKind {
    /// `交易`: a payment.
    Payment,
    /// `退款`: a refund.
    Refund,
    /// Anything else, as written.
    Other(String),
}

impl TradeBillKind {
    fn parse(s: &str) -> Self {
        match s {
            "交易" => TradeBillKind::Payment,
            "退款" => TradeBillKind::Refund,
            other => TradeBillKind::Other(other.to_owned()),
        }
    }
}

/// One row of the account bill (`账务明细`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountBillRow {
    /// 账务流水号.
    pub entry_no: String,
    /// 业务流水号 (the trade number, for a trade's movement).
    pub business_no: String,
    /// 商户订单号.
    pub out_trade_no: String,
    /// 商品名称.
    pub subject: String,
    /// 发生时间 (`yyyy-MM-dd HH:mm:ss`, China time).
    pub occurred_at: String,
    /// 对方账号.
    pub counterparty: String,
    /// 收入金额（+元）, in fen.
    pub income: Fen,
    /// 支出金额（-元）, in fen (written as a positive amount).
    pub expense: Fen,
    /// 账户余额（元）, in fen, after the movement.
    pub balance: i64,
    /// 交易渠道.
    pub channel: String,
    /// 业务类型 (`在线支付`, `交易退款`, `收费`…).
    pub kind: String,
    /// 备注.
    pub remark: String,
}

/// The totals lines after a list (`#交易合计：…`, `#退款合计：…`), as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillFooter {
    /// Each `#` line after the list, without the `#`.
    pub lines: Vec<String>,
}

impl BillFooter {
    /// The count in the totals line that starts with `label` (`交易合计` → the `N笔`).
    pub fn count(&self, label: &str) -> Option<u64> {
        let line = self.lines.iter().find(|l| l.starts_with(label))?;
        let before = line.split('笔').next()?;
        let digits: String = before
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        digits.parse().ok()
    }
}

/// Reads a detail file's list: the rows between its markers, by header name.
#[derive(Debug)]
struct List<R> {
    records: csv::Reader<R>,
    record: csv::StringRecord,
    header: Vec<String>,
    section: &'static str,
    ended: bool,
    footer: BillFooter,
    line: u64,
}

impl<R: Read> List<R> {
    /// Skips the lines before `section`'s list and reads its header row.
    fn new(reader: R, section: &'static str) -> Result<Self, Error> {
        let records = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut list = List {
            records,
            record: csv::StringRecord::new(),
            header: Vec::new(),
            section,
            ended: false,
            footer: BillFooter::default(),
            line: 0,
        };
        loop {
            if !list.read()? {
                return Err(Error::decode(section, "the list's start is missing"));
            }
            let first = list.record.get(0).unwrap_or_default();
            if first.starts_with('#') && first.contains(section) && !first.contains("结束") {
                break;
            }
        }
        if !list.read()? {
            return Err(Error::decode(section, "the list's header is missing"));
        }
        list.header = list.record.iter().map(|h| clean(h).to_owned()).collect();
        Ok(list)
    }

    /// The next record; `false` at the end of the file.
    fn read(&mut self) -> Result<bool, Error> {
        self.line += 1;
        self.records
            .read_record(&mut self.record)
            .map_err(|e| Error::decode(self.section, e))
    }

    /// The next row; after the list, the totals lines are kept and `None` is returned.
    fn next_row(&mut self) -> Option<Result<Row<'_>, Error>> {
        if self.ended {
            return None;
        }
        loop {
            match self.read() {
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
                Ok(false) => {
                    self.ended = true;
                    return Some(Err(Error::decode(
                        self.section,
                        "the list's end is missing",
                    )));
                }
                Ok(true) => {}
            }
            let first = self.record.get(0).unwrap_or_default();
            if first.starts_with('#') {
                self.ended = true;
                // The totals after the marker; a read error there loses only the totals.
                while let Ok(true) = self.read() {
                    let text = self.record.iter().collect::<Vec<_>>().join(",");
                    if let Some(line) = text.strip_prefix('#') {
                        self.footer
                            .lines
                            .push(line.trim_start_matches('#').to_owned());
                    }
                }
                return None;
            }
            if self.record.iter().all(|f| clean(f).is_empty()) {
                continue;
            }
            return Some(Ok(Row {
                header: &self.header,
                record: &self.record,
                section: self.section,
                line: self.line,
            }));
        }
    }
}

/// A field as Alipay writes it: padded with tabs and spaces.
fn clean(field: &str) -> &str {
    field.trim_matches(|c: char| c == '\t' || c.is_whitespace())
}

/// One row of a list, its fields by header.
#[doc(hidden)]
#[derive(Debug)]
pub struct Row<'a> {
    header: &'a [String],
    record: &'a csv::StringRecord,
    section: &'static str,
    line: u64,
}

impl Row<'_> {
    /// The field of the first column whose header starts with `name`.
    fn text(&self, name: &str) -> String {
        self.header
            .iter()
            .position(|h| h.starts_with(name))
            .and_then(|i| self.record.get(i))
            .map(|f| clean(f).to_owned())
            .unwrap_or_default()
    }

    /// A required field.
    fn required(&self, name: &str) -> Result<String, Error> {
        let text = self.text(name);
        if text.is_empty() {
            return Err(self.error(name, "missing"));
        }
        Ok(text)
    }

    /// A signed amount in yuan, in fen (empty is zero).
    fn fen(&self, name: &str) -> Result<i64, Error> {
        let text = self.text(name);
        if text.is_empty() {
            return Ok(0);
        }
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(&text)),
        };
        let fen = Fen::from_yuan_str(digits).map_err(|e| self.error(name, e))?;
        let value = i64::try_from(fen.as_u64()).map_err(|e| self.error(name, e))?;
        Ok(if negative { -value } else { value })
    }

    /// An unsigned amount in yuan (a leading sign is refused).
    fn unsigned(&self, name: &str) -> Result<Fen, Error> {
        let text = self.text(name);
        if text.is_empty() {
            return Ok(Fen::ZERO);
        }
        Fen::from_yuan_str(&text).map_err(|e| self.error(name, e))
    }

    fn error(&self, name: &str, detail: impl std::fmt::Display) -> Error {
        Error::decode(
            format!("{} line {} {name}", self.section, self.line),
            detail,
        )
    }
}

/// A bill's detail file, row by row: an iterator of its rows ([`TradeBillRow`] for a
/// [`TradeBill`], [`AccountBillRow`] for an [`AccountBill`]); the totals lines in
/// [`Bill::footer`] once it has ended.
pub struct Bill<R, T> {
    list: List<R>,
    row: std::marker::PhantomData<fn() -> T>,
}

/// The trade bill (`业务明细`), row by row.
pub type TradeBill<R> = Bill<R, TradeBillRow>;

/// The account bill (`账务明细`), row by row.
pub type AccountBill<R> = Bill<R, AccountBillRow>;

impl<R, T> std::fmt::Debug for Bill<R, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bill")
            .field("section", &self.list.section)
            .field("line", &self.list.line)
            .finish_non_exhaustive()
    }
}

impl<R: Read, T: ListRow> Bill<R, T> {
    /// Reads the detail file's UTF-8 text from `reader` (see [`BillArchive`] for the zip as
    /// downloaded).
    pub fn new(reader: R) -> Result<Self, Error> {
        Ok(Bill {
            list: List::new(reader, T::SECTION)?,
            row: std::marker::PhantomData,
        })
    }

    /// The totals lines (complete once the rows have all been read).
    pub fn footer(&self) -> &BillFooter {
        &self.list.footer
    }
}

impl<R: Read, T: ListRow> Iterator for Bill<R, T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.list.next_row()?.and_then(|row| T::read(&row)))
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TradeBillRow {}
    impl Sealed for super::AccountBillRow {}
}

/// A row of one of the detail files ([`TradeBillRow`], [`AccountBillRow`]).
pub trait ListRow: sealed::Sealed + Sized {
    /// The list's name in its markers.
    #[doc(hidden)]
    const SECTION: &'static str;
    /// The row, from its fields by header.
    #[doc(hidden)]
    fn read(row: &Row<'_>) -> Result<Self, Error>;
}

impl ListRow for TradeBillRow {
    const SECTION: &'static str = "业务明细列表";

    fn read(row: &Row<'_>) -> Result<Self, Error> {
        let out_request_no = row.text("退款批次号");
        Ok(TradeBillRow {
            trade_no: row.required("支付宝交易号")?,
            out_trade_no: row.text("商户订单号"),
            kind: TradeBillKind::parse(&row.text("业务类型")),
            subject: row.text("商品名称"),
            created_at: row.text("创建时间"),
            finished_at: row.text("完成时间"),
            counterparty: row.text("对方账户"),
            amount: row.fen("订单金额")?,
            received: row.fen("商家实收")?,
            merchant_discount: row.fen("商家优惠")?,
            alipay_discount: row.fen("支付宝优惠")?,
            out_request_no: (!out_request_no.is_empty()).then_some(out_request_no),
            service_fee: row.fen("服务费")?,
            profit_share: row.fen("分润")?,
            remark: row.text("备注"),
        })
    }
}

impl ListRow for AccountBillRow {
    const SECTION: &'static str = "账务明细列表";

    fn read(row: &Row<'_>) -> Result<Self, Error> {
        Ok(AccountBillRow {
            entry_no: row.required("账务流水号")?,
            business_no: row.text("业务流水号"),
            out_trade_no: row.text("商户订单号"),
            subject: row.text("商品名称"),
            occurred_at: row.text("发生时间"),
            counterparty: row.text("对方账号"),
            income: row.unsigned("收入金额")?,
            expense: row.fen("支出金额").map(|f| Fen::new(f.unsigned_abs()))?,
            balance: row.fen("账户余额")?,
            channel: row.text("交易渠道"),
            kind: row.text("业务类型"),
            remark: row.text("备注"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use super::*;

    const TRADE: &str = "#支付宝业务明细查询\n\
#账号：[20881234567890120156]\n\
#起始日期：[2026年12月05日 00:00:00]   终止日期：[2026年12月06日 00:00:00]\n\
#-----------------------------------------业务明细列表----------------------------------------\n\
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n\
2026120522001400001\t,ORDER-1\t,交易\t,Cola\t,2026-12-05 10:00:01\t,2026-12-05 10:00:09\t,,,,,buy***@example.com\t,3.50\t,3.50\t,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,\t,-0.02\t,0.00,\n\
2026120522001400002\t,ORDER-2\t,交易\t,\"Chips, salted\"\t,2026-12-05 11:00:00\t,2026-12-05 11:00:05\t,,,,,b2***\t,12\t,11.50\t,0.00,0.00,0.50,0.00,0.00,,0.00,0.00,\t,-0.07\t,0.00,\n\
\n\
2026120522001400001\t,ORDER-1\t,退款\t,Cola\t,2026-12-05 10:00:01\t,2026-12-05 15:30:00\t,,,,,buy***@example.com\t,-1.00\t,-1.00\t,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,R-1\t,0.01\t,0.00,partial\n\
#-----------------------------------------业务明细列表结束------------------------------------\n\
#交易合计：2笔，商家实收共15.00元，商家优惠共0.00元\n\
#退款合计：1笔，商家实收退款共-1.00元，商家优惠退款共0.00元\n\
#导出时间：[2026年12月06日 08:12:31]\n";

    #[test]
    fn trade_rows_are_read_by_header_with_exact_signed_amounts() {
        let mut bill = TradeBill::new(TRADE.as_bytes()).unwrap();
        let rows: Vec<TradeBillRow> = bill.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(rows.len(), 3, "the blank line is no row");
        assert_eq!(rows[0].trade_no, "2026120522001400001");
        assert_eq!(rows[0].out_trade_no, "ORDER-1");
        assert_eq!(rows[0].kind, TradeBillKind::Payment);
        assert_eq!((rows[0].amount, rows[0].received), (350, 350));
        assert_eq!(rows[0].service_fee, -2);
        assert_eq!(rows[0].out_request_no, None);
        assert_eq!(
            rows[1].subject, "Chips, salted",
            "a quoted comma stays in its field"
        );
        assert_eq!((rows[1].amount, rows[1].received), (1200, 1150));
        assert_eq!(rows[1].alipay_discount, 50);
        assert_eq!(rows[2].kind, TradeBillKind::Refund);
        assert_eq!((rows[2].amount, rows[2].received), (-100, -100));
        assert_eq!(rows[2].out_request_no.as_deref(), Some("R-1"));
        assert_eq!(rows[2].remark, "partial");
        assert_eq!(bill.footer().count("交易合计"), Some(2));
        assert_eq!(bill.footer().count("退款合计"), Some(1));
        assert!(bill.next().is_none(), "ended");
    }

    #[test]
    fn a_bill_that_is_not_one_is_an_error_not_an_empty_day() {
        // No list at all.
        assert!(TradeBill::new("#支付宝业务明细查询\n".as_bytes()).is_err());
        // The list never ends (a truncated download).
        let cut = &TRADE[..TRADE.find("2026120522001400002").unwrap()];
        let rows: Vec<_> = TradeBill::new(cut.as_bytes()).unwrap().collect();
        assert!(rows.last().unwrap().is_err(), "{rows:?}");
        // An amount that is not a whole number of fen, with the line and column named.
        let bad = TRADE.replace(",3.50\t,3.50\t", ",3.505\t,3.50\t");
        let err = TradeBill::new(bad.as_bytes())
            .unwrap()
            .find_map(Result::err)
            .unwrap();
        assert!(err.to_string().contains("订单金额"), "{err}");
    }

    const ACCOUNT: &str = "#支付宝账务明细查询\n\
#账号：[20881234567890120156]\n\
#-----------------------------------------账务明细列表----------------------------------------\n\
账务流水号,业务流水号,商户订单号,商品名称,发生时间,对方账号,收入金额（+元）,支出金额（-元）,账户余额（元）,交易渠道,业务类型,备注\n\
300001\t,2026120522001400001\t,ORDER-1\t,Cola\t,2026-12-05 10:00:09\t,buy***\t,3.50\t,0.00\t,103.50\t,支付宝\t,在线支付\t,\n\
300002\t,2026120522001400001\t,ORDER-1\t,Cola\t,2026-12-05 10:00:09\t,支付宝\t,0.00\t,-0.02\t,103.48\t,支付宝\t,收费\t,服务费\n\
#----------------------------------------账务明细列表结束-------------------------------------\n\
#收入合计：1笔，共3.50元\n";

    #[test]
    fn account_rows_are_read() {
        let rows: Vec<AccountBillRow> = AccountBill::new(ACCOUNT.as_bytes())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].income, Fen::new(350));
        assert_eq!(rows[0].balance, 10350);
        assert_eq!(rows[1].expense, Fen::new(2));
        assert_eq!(rows[1].kind, "收费");
    }

    /// A zip as Alipay sends it: GBK CSV files, the detail and its summary.
    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, text) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
            assert!(!unmappable);
            zip.write_all(&gbk).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn the_detail_file_is_found_in_the_zip_and_decoded_from_gbk() {
        let bytes = zip_of(&[
            (
                "20881234567890120156_20261205_业务明细(汇总).csv",
                "#汇总\n",
            ),
            ("20881234567890120156_20261205_业务明细.csv", TRADE),
        ]);
        let mut archive = BillArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(archive.file_names().len(), 2);
        let rows: Vec<TradeBillRow> = archive
            .trade_bill()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].subject, "Chips, salted");
        assert!(
            archive.account_bill().is_err(),
            "no account file in a trade zip"
        );
        assert!(BillArchive::new(Cursor::new(b"not a zip".to_vec())).is_err());
    }
}
