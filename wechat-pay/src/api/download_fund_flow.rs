//! `/pay/downloadfundflow`: the movements of one merchant account on one day (needs the client
//! certificate; WeChat accepts only HMAC-SHA256 here).

use time::Date;

use super::download_bill::bill_date;
use super::{Download, Endpoint, bill_table};
use crate::{Error, Fen, Params, SignType};

/// Which merchant account (`account_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AccountType {
    /// `Basic`: the basic account.
    #[default]
    Basic,
    /// `Operation`: the operation account.
    Operation,
    /// `Fees`: the fees account.
    Fees,
}

impl AccountType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccountType::Basic => "Basic",
            AccountType::Operation => "Operation",
            AccountType::Fees => "Fees",
        }
    }
}

/// A fund-flow download request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadFundFlow {
    bill_date: Date,
    account_type: AccountType,
    gzip: bool,
}

impl DownloadFundFlow {
    /// The movements of `account_type` on `bill_date` (a day in UTC+8).
    pub fn new(bill_date: Date, account_type: AccountType) -> Self {
        DownloadFundFlow {
            bill_date,
            account_type,
            gzip: false,
        }
    }

    /// Asks for a gzip-compressed file; the client decompresses it.
    pub fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }
}

impl Endpoint for DownloadFundFlow {
    const PATH: &'static str = "/pay/downloadfundflow";
    const NEEDS_CERTIFICATE: bool = true;
    const SIGN_TYPE: Option<SignType> = Some(SignType::HmacSha256);

    fn write_params(&self, p: &mut Params) {
        p.insert("bill_date", bill_date(self.bill_date));
        p.insert("account_type", self.account_type.as_str());
        if self.gzip {
            p.insert("tar_type", "GZIP");
        }
    }
}

impl Download for DownloadFundFlow {
    type Output = FundFlow;

    fn parse(text: &str) -> Result<FundFlow, Error> {
        FundFlow::parse(text)
    }
}

/// A day's fund flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FundFlow {
    /// One record per movement.
    pub rows: Vec<FundFlowRow>,
    /// The totals line.
    pub summary: FundFlowSummary,
}

/// One movement of money.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FundFlowRow {
    /// 记账时间.
    pub booked_at: String,
    /// 微信支付业务单号.
    pub business_no: String,
    /// 资金流水单号.
    pub flow_no: String,
    /// 业务名称.
    pub business_name: Option<String>,
    /// 业务类型.
    pub business_type: Option<String>,
    /// 收支类型: `收入` (income) or `支出` (expense).
    pub direction: String,
    /// 收支金额（元）.
    pub amount: Fen,
    /// 账户结余（元）, in fen.
    pub balance: Option<i64>,
    /// 资金变更提交申请人.
    pub applicant: Option<String>,
    /// 备注.
    pub remark: Option<String>,
    /// 业务凭证号.
    pub voucher_no: Option<String>,
}

/// The totals of a fund flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FundFlowSummary {
    /// 资金流水总笔数.
    pub count: u64,
    /// 收入笔数.
    pub income_count: Option<u64>,
    /// 收入金额.
    pub income: Option<Fen>,
    /// 支出笔数.
    pub expense_count: Option<u64>,
    /// 支出金额.
    pub expense: Option<Fen>,
}

impl FundFlow {
    /// Parses a fund-flow file's text.
    pub fn parse(text: &str) -> Result<FundFlow, Error> {
        let (rows, summary) = bill_table::read_all(
            text,
            |t, r| {
                Ok(FundFlowRow {
                    booked_at: t.text(r, &["记账时间"])?,
                    business_no: t.text(r, &["微信支付业务单号"])?,
                    flow_no: t.text(r, &["资金流水单号"])?,
                    business_name: t.opt_text(r, &["业务名称"]),
                    business_type: t.opt_text(r, &["业务类型"]),
                    direction: t.text(r, &["收支类型"])?,
                    amount: t
                        .opt_yuan(r, &["收支金额（元）", "收支金额(元)"])?
                        .ok_or_else(|| Error::decode("收支金额（元）", "missing"))?,
                    balance: t.opt_signed_yuan(r, &["账户结余（元）", "账户结余(元)"])?,
                    applicant: t.opt_text(r, &["资金变更提交申请人"]),
                    remark: t.opt_text(r, &["备注"]),
                    voucher_no: t.opt_text(r, &["业务凭证号"]),
                })
            },
            |s| {
                Ok(FundFlowSummary {
                    count: s
                        .count("资金流水总笔数")?
                        .ok_or_else(|| Error::decode("资金流水总笔数", "missing"))?,
                    income_count: s.count("收入笔数")?,
                    income: s.yuan(&["收入金额"])?,
                    expense_count: s.count("支出笔数")?,
                    expense: s.yuan(&["支出金额"])?,
                })
            },
        )?;
        Ok(FundFlow { rows, summary })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fund_flow() {
        let f = FundFlow::parse(include_str!("../../testdata/fund_flow.csv")).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.rows[0].amount, Fen::new(350));
        assert_eq!(f.rows[0].balance, Some(10350));
        assert_eq!(f.rows[1].direction, "支出");
        assert_eq!(f.rows[1].remark.as_deref(), Some("vend failed"));
        assert_eq!(f.summary.count, 2);
        assert_eq!(f.summary.expense, Some(Fen::new(350)));
    }
}
