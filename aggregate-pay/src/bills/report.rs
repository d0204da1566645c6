//! What a bill run records: the run of a (day, channel) with its counts and totals, and one item
//! per difference found.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::Fen;
use crate::channels::{BillEntry, BillEntryKind};

// A bill day as `YYYY-MM-DD`.
time::serde::format_description!(day_text, Date, "[year]-[month]-[day]");

macro_rules! named_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$d:meta])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$d])* $v,)* }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Reads a stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What comparing one bill row (or one payment or refund of the store's day) found. See the
    /// [module documentation](crate::bills) for what is settled and what is flagged.
    pub enum BillClass {
        /// The bill and the store agree.
        Matched => "matched",
        /// Paid at the provider, and the store has no such payment (or it belongs to another
        /// channel): an orphan, flagged for a human.
        Orphan => "orphan",
        /// Paid at the provider, known here but not paid: settled through the channel's query
        /// and the usual transition (events and all); flagged when the query does not confirm.
        UnpaidHere => "unpaid_here",
        /// Paid here, and neither in the provider's bill nor paid when asked: critical, flagged,
        /// never fixed automatically.
        MissingAtProvider => "missing_at_provider",
        /// The amount or the currency differs: flagged.
        AmountDiffers => "amount_differs",
        /// A refund differs: succeeded at the provider while pending or failed here (settled
        /// through the refund query), or the reverse, unknown here, or of another amount
        /// (flagged).
        RefundDiffers => "refund_differs",
        /// Paid (or refunded) here on this day, in the provider's bill of a neighbouring day
        /// (the provider confirms it when asked): not a difference, counted.
        OtherDay => "other_day",
    }
}

impl BillClass {
    /// Whether a human must look (a difference the run could not settle).
    pub fn is_difference(self) -> bool {
        !matches!(self, BillClass::Matched | BillClass::OtherDay)
    }
}

named_enum! {
    /// Where a bill run is.
    pub enum BillRunStatus {
        /// Comparing (or stopped while comparing: the next run resumes it).
        Running => "running",
        /// The provider is still making the bill: asked again later.
        NotReady => "not_ready",
        /// Every row and every payment of the day compared.
        Done => "done",
        /// The bill could not be had or read (`last_error`): tried again at the next run.
        Failed => "failed",
    }
}

/// One difference (or one fix) found by a run, by the number it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BillItem {
    /// The bill's day (China time).
    #[serde(with = "day_text")]
    pub day: Date,
    /// The channel.
    pub channel: String,
    /// Payment or refund.
    pub kind: BillEntryKind,
    /// The payment's number.
    pub out_trade_no: String,
    /// The refund's number, for a refund.
    pub out_refund_no: Option<String>,
    /// What was found.
    pub class: BillClass,
    /// Whether the run settled it (through the channel's query and the usual transition).
    pub settled: bool,
    /// The amount in the provider's bill (`None`: not in it).
    pub bill_amount: Option<Fen>,
    /// The amount here (`None`: unknown here).
    pub store_amount: Option<Fen>,
    /// What was seen, in words.
    pub detail: String,
    /// When first found.
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
}

impl BillItem {
    /// The number it is about: the refund's for a refund.
    pub fn number(&self) -> &str {
        match self.kind {
            BillEntryKind::Refund => self.out_refund_no.as_deref().unwrap_or(&self.out_trade_no),
            BillEntryKind::Payment => &self.out_trade_no,
        }
    }

    pub(crate) fn key(&self) -> (BillEntryKind, String) {
        (self.kind, self.number().to_owned())
    }
}

/// The bill's own totals, summed from its rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BillTotals {
    /// Payment rows.
    pub payments: u64,
    /// Their amount.
    pub paid: Fen,
    /// Refund rows.
    pub refunds: u64,
    /// Their amount.
    pub refunded: Fen,
    /// The provider's fees, in fen (payments' fees less the fees refunds gave back).
    pub fees: i64,
}

impl BillTotals {
    pub(crate) fn add(&mut self, e: &BillEntry) {
        match e.kind {
            BillEntryKind::Payment => {
                self.payments += 1;
                self.paid = self.paid.checked_add(e.amount).unwrap_or(self.paid);
            }
            BillEntryKind::Refund => {
                self.refunds += 1;
                self.refunded = self.refunded.checked_add(e.amount).unwrap_or(self.refunded);
            }
        }
        self.fees = self.fees.saturating_add(e.fee);
    }

    /// Rows in the bill.
    pub fn rows(&self) -> u64 {
        self.payments + self.refunds
    }
}

/// The run of one (day, channel): where it is, what it counted, the bill's totals and hash.
/// Running a day again gives the same run (the same counts), and changes nothing settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BillRun {
    /// The bill's day (China time).
    #[serde(with = "day_text")]
    pub day: Date,
    /// The channel.
    pub channel: String,
    /// Where it is.
    pub status: BillRunStatus,
    /// Items per class (`matched` counts the bill rows that agreed).
    pub counts: BTreeMap<BillClass, u64>,
    /// Of the items, those the run settled (through the channel's query and the usual
    /// transition).
    pub settled: u64,
    /// The bill's totals.
    pub totals: BillTotals,
    /// Rows compared so far (where a stopped run resumes).
    pub rows_done: u64,
    /// The SHA-256 of the bill file as downloaded (hex), when there was one.
    pub bill_sha256: Option<String>,
    /// Runs of this day so far.
    pub attempts: u32,
    /// Why it is not done (not ready, a download or read error).
    pub last_error: Option<String>,
    /// When the last run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it was done.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl BillRun {
    /// A run of `day` on `channel` that has not started.
    pub fn new(day: Date, channel: impl Into<String>) -> Self {
        BillRun {
            day,
            channel: channel.into(),
            status: BillRunStatus::Running,
            counts: BTreeMap::new(),
            settled: 0,
            totals: BillTotals::default(),
            rows_done: 0,
            bill_sha256: None,
            attempts: 0,
            last_error: None,
            started_at: OffsetDateTime::now_utc(),
            finished_at: None,
        }
    }

    /// How many items of `class`.
    pub fn count(&self, class: BillClass) -> u64 {
        self.counts.get(&class).copied().unwrap_or(0)
    }

    /// The differences a human must look at.
    pub fn differences(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(c, _)| c.is_difference())
            .map(|(_, n)| n)
            .sum()
    }

    /// The counts from the run's items: each class counted, and `matched` the bill rows left
    /// (an item that agrees now, after a difference, is one of them).
    pub(crate) fn count_items(&mut self, items: &[BillItem]) {
        let mut counts = BTreeMap::new();
        let mut from_bill = 0u64;
        for item in items.iter().filter(|i| i.class != BillClass::Matched) {
            *counts.entry(item.class).or_insert(0) += 1;
            if item.bill_amount.is_some() {
                from_bill += 1;
            }
        }
        counts.insert(
            BillClass::Matched,
            self.totals.rows().saturating_sub(from_bill),
        );
        self.counts = counts;
        self.settled = items.iter().filter(|i| i.settled).count() as u64;
    }
}

/// A run's items as CSV (a header, then one line per item, in the order given).
pub fn items_csv(items: &[BillItem]) -> String {
    let mut out = String::from(
        "day,channel,kind,out_trade_no,out_refund_no,class,settled,bill_amount,store_amount,detail,found_at\n",
    );
    let amount = |a: Option<Fen>| a.map(|a| a.to_yuan_string()).unwrap_or_default();
    for i in items {
        let fields = [
            i.day.to_string(),
            i.channel.clone(),
            i.kind.as_str().to_owned(),
            i.out_trade_no.clone(),
            i.out_refund_no.clone().unwrap_or_default(),
            i.class.as_str().to_owned(),
            i.settled.to_string(),
            amount(i.bill_amount),
            amount(i.store_amount),
            i.detail.clone(),
            i.found_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it must be; a field a spreadsheet would run as a formula is
/// prefixed with `'`.
fn csv_field(f: &str) -> String {
    let f = if f.starts_with(['=', '+', '-', '@']) && f.parse::<f64>().is_err() {
        format!("'{f}")
    } else {
        f.to_owned()
    };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}
