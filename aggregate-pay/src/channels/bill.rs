//! A provider's daily trade bill, as every channel hands it to the bill reconciler
//! ([`crate::bills`]): downloaded to a file ([`PaymentChannel::download_bill`]), then read a row
//! at a time into [`BillEntry`]s ([`PaymentChannel::read_bill`]), whatever the provider's
//! format (WeChat Pay's backtick table, Alipay's zip of GBK CSV files, the sandbox's lines).
//!
//! [`PaymentChannel::download_bill`]: super::PaymentChannel::download_bill
//! [`PaymentChannel::read_bill`]: super::PaymentChannel::read_bill

use crate::{ChannelError, Fen, RefundStatus};

/// What the provider answered when asked for a day's bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillAvailability {
    /// The bill is in the file.
    Ready,
    /// The provider is still making it (WeChat's `Bill Creating` / `STATEMENT_CREATING`;
    /// Alipay's `isp.bill_not_exist` until noon the next day): ask again later.
    NotReady,
    /// The provider says there is no bill for the day (WeChat's `No Bill Exist` /
    /// `NO_STATEMENT_EXIST`; Alipay's `isp.bill_not_exist` after noon the next day): nothing
    /// moved that day.
    NoBill,
}

/// What a bill row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillEntryKind {
    /// Money the payer paid.
    Payment,
    /// Money given back.
    Refund,
}

impl BillEntryKind {
    /// `payment` or `refund`.
    pub fn as_str(self) -> &'static str {
        match self {
            BillEntryKind::Payment => "payment",
            BillEntryKind::Refund => "refund",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "payment" => Some(BillEntryKind::Payment),
            "refund" => Some(BillEntryKind::Refund),
            _ => None,
        }
    }
}

/// One row of a trade bill, in the channel's own terms made common: numbers, amount, fee.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BillEntry {
    /// Payment or refund.
    pub kind: BillEntryKind,
    /// The payment's number (ours).
    pub out_trade_no: String,
    /// The provider's transaction id.
    pub transaction_id: String,
    /// A refund's number (ours); `None` for a payment.
    pub out_refund_no: Option<String>,
    /// A refund's id at the provider.
    pub channel_refund_id: Option<String>,
    /// The amount paid, or refunded (always positive).
    pub amount: Fen,
    /// The currency (`CNY` when the bill does not say).
    pub currency: String,
    /// A refund's state in the bill (`Succeeded`, or `Pending` for one still processing);
    /// `Succeeded` for a payment.
    pub status: RefundStatus,
    /// The provider's fee, in fen: positive on a payment, negative on a refund (given back).
    pub fee: i64,
}

impl BillEntry {
    /// A payment row.
    pub fn payment(
        out_trade_no: impl Into<String>,
        transaction_id: impl Into<String>,
        amount: Fen,
    ) -> Self {
        BillEntry {
            kind: BillEntryKind::Payment,
            out_trade_no: out_trade_no.into(),
            transaction_id: transaction_id.into(),
            out_refund_no: None,
            channel_refund_id: None,
            amount,
            currency: "CNY".to_owned(),
            status: RefundStatus::Succeeded,
            fee: 0,
        }
    }

    /// A (succeeded) refund row.
    pub fn refund(
        out_trade_no: impl Into<String>,
        out_refund_no: impl Into<String>,
        amount: Fen,
    ) -> Self {
        BillEntry {
            kind: BillEntryKind::Refund,
            out_refund_no: Some(out_refund_no.into()),
            ..BillEntry::payment(out_trade_no, String::new(), amount)
        }
    }

    /// With the provider's fee.
    pub fn fee(mut self, fee: i64) -> Self {
        self.fee = fee;
        self
    }

    /// In another currency.
    pub fn currency(mut self, currency: impl Into<String>) -> Self {
        self.currency = currency.into();
        self
    }

    /// The number the row is about: the refund's for a refund, the payment's otherwise.
    pub fn number(&self) -> &str {
        match self.kind {
            BillEntryKind::Refund => self.out_refund_no.as_deref().unwrap_or(&self.out_trade_no),
            BillEntryKind::Payment => &self.out_trade_no,
        }
    }
}

/// Where [`PaymentChannel::read_bill`](super::PaymentChannel::read_bill) hands each row; it
/// answers `false` to stop reading (the reconciler has gone).
pub type BillSink<'a> = &'a mut (dyn FnMut(BillEntry) -> bool + Send);

/// A bill row that cannot be read, as a channel error.
pub(crate) fn unreadable(e: impl std::fmt::Display) -> ChannelError {
    ChannelError::Decode(format!("bill: {e}"))
}
