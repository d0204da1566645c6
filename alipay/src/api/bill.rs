//! `alipay.data.dataservice.bill.downloadurl.query`: where a day's bill can be downloaded (the
//! link lives 30 seconds; download it with [`crate::Client::download_bill`], read it with
//! [`crate::bill::BillArchive`]).
//!
//! A day's bill exists from the next morning (T+1, usually before 09:00 China time). Until then,
//! and for a day without any trade, Alipay answers `isp.bill_not_exist`
//! ([`crate::SubCode::BillNotExist`]): the two cannot be told apart from the answer.

use serde::{Deserialize, Serialize};
use time::Date;

use super::Request;

/// Which bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BillType {
    /// `trade`: the acquiring business — every payment and refund ([`crate::bill::TradeBillRow`]).
    Trade,
    /// `signcustomer`: the account — every movement of the balance
    /// ([`crate::bill::AccountBillRow`]).
    SignCustomer,
}

/// Asks where the bill of one day is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillDownloadUrlQuery {
    bill_type: BillType,
    bill_date: String,
}

impl BillDownloadUrlQuery {
    /// The `bill_type` bill of `day` (China time).
    pub fn new(bill_type: BillType, day: Date) -> Self {
        BillDownloadUrlQuery {
            bill_type,
            bill_date: format!(
                "{:04}-{:02}-{:02}",
                day.year(),
                u8::from(day.month()),
                day.day()
            ),
        }
    }
}

/// Where to download it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillDownloadUrl {
    /// The link (valid for 30 seconds).
    pub bill_download_url: String,
}

impl Request for BillDownloadUrlQuery {
    const METHOD: &'static str = "alipay.data.dataservice.bill.downloadurl.query";
    type Response = BillDownloadUrl;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_and_the_type_are_written_as_alipay_reads_them() {
        let q = BillDownloadUrlQuery::new(
            BillType::SignCustomer,
            Date::from_calendar_date(2026, time::Month::March, 5).unwrap(),
        );
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"bill_type":"signcustomer","bill_date":"2026-03-05"}"#
        );
    }
}
