//! Bills: the trade bill and the fund-flow bill of a day. WeChat answers a link and the file's
//! SHA-1; the file itself is downloaded with a signed request (it carries no signature of its
//! own), checked against the hash, decompressed, and parsed into the same typed rows as v2's.

use serde::Deserialize;
use time::Date;

use super::segment;
use crate::api::{AccountType, BillType};
use crate::v3::Request;

/// `GET /v3/bill/tradebill?bill_date=…&bill_type=…[&tar_type=GZIP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradeBill {
    /// The day (UTC+8).
    pub bill_date: Date,
    /// Which records.
    pub bill_type: BillType,
    /// Ask for a gzip file (decompressed by the client).
    pub gzip: bool,
    /// Partner mode: one sub-merchant's records only (`sub_mchid`); `None`: the whole
    /// merchant's (a service provider's: every sub-merchant's).
    pub sub_mchid: Option<String>,
}

/// `GET /v3/bill/fundflowbill?bill_date=…&account_type=…[&tar_type=GZIP]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundFlowBill {
    /// The day (UTC+8).
    pub bill_date: Date,
    /// Which account.
    pub account_type: AccountType,
    /// Ask for a gzip file (decompressed by the client).
    pub gzip: bool,
}

/// Where a bill is, and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct BillLink {
    /// `SHA1`.
    pub hash_type: String,
    /// The file's hash, hex.
    pub hash_value: String,
    /// Where to download it (valid 30 s; the request is signed).
    pub download_url: String,
}

pub(super) fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl Request for TradeBill {
    type Response = BillLink;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let mut p = format!(
            "/v3/bill/tradebill?bill_date={}&bill_type={}",
            date(self.bill_date),
            segment(self.bill_type.as_str())
        );
        if let Some(sub) = &self.sub_mchid {
            p.push_str("&sub_mchid=");
            p.push_str(&segment(sub));
        }
        if self.gzip {
            p.push_str("&tar_type=GZIP");
        }
        p
    }
}

impl Request for FundFlowBill {
    type Response = BillLink;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let mut p = format!(
            "/v3/bill/fundflowbill?bill_date={}&account_type={}",
            date(self.bill_date),
            self.account_type.as_str().to_ascii_uppercase()
        );
        if self.gzip {
            p.push_str("&tar_type=GZIP");
        }
        p
    }
}
