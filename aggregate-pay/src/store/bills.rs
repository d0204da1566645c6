//! [`BillStore`]: what reconciling against the providers' bills reads and records — the
//! store's payments and refunds looked up a chunk of bill rows at a time, the day's payments and
//! refunds in pages, and the runs and their items.

use std::fmt;

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use crate::bills::{BillItem, BillRun};
use crate::{Fen, Payment, PaymentId, PaymentStatus, Refund, StoreError};

/// What comparing a bill needs to know of a payment (read without its subject, metadata and
/// the rest: a day of them is read).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PaymentBrief {
    /// Our id.
    pub id: PaymentId,
    /// The number the channel knows.
    pub out_trade_no: String,
    /// The channel.
    pub channel: String,
    /// The amount asked.
    pub amount: Fen,
    /// The currency.
    pub currency: String,
    /// Where it is.
    pub status: PaymentStatus,
    /// When paid.
    pub paid_at: Option<OffsetDateTime>,
}

impl From<&Payment> for PaymentBrief {
    fn from(p: &Payment) -> Self {
        PaymentBrief {
            id: p.id.clone(),
            out_trade_no: p.out_trade_no.clone(),
            channel: p.channel.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            status: p.status,
            paid_at: p.paid_at,
        }
    }
}

/// A refund with its payment's channel.
pub type RefundOfChannel = (Refund, String);

/// Where a page of a day ended: the last one's time and number (pages go in that order).
pub type DayCursor = (OffsetDateTime, String);

/// The store of bill runs, and the lookups they make.
#[async_trait]
pub trait BillStore: Send + Sync + fmt::Debug {
    /// The payments whose `out_trade_no` is one of `numbers` (any order; unknown ones left out).
    async fn payments_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<PaymentBrief>, StoreError>;

    /// The refunds whose `out_refund_no` is one of `numbers`, each with its payment's channel.
    async fn refunds_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<RefundOfChannel>, StoreError>;

    /// Up to `limit` payments of `channel` paid in `[from, to)`, in (`paid_at`,
    /// `out_trade_no`) order, after `after` (a page of the day).
    async fn paid_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<PaymentBrief>, StoreError>;

    /// Up to `limit` SUCCEEDED refunds of `channel`'s payments last changed in `[from, to)`, in
    /// (`updated_at`, `out_refund_no`) order, after `after`.
    async fn refunds_succeeded_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError>;

    /// The run of `day` on `channel`.
    async fn bill_run(&self, day: Date, channel: &str) -> Result<Option<BillRun>, StoreError>;

    /// Stores a run (replacing the one of its day and channel).
    async fn save_bill_run(&self, run: &BillRun) -> Result<(), StoreError>;

    /// Runs, newest day first, optionally of one channel.
    async fn bill_runs(
        &self,
        channel: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BillRun>, StoreError>;

    /// Stores items (each replacing the item of its day, channel, kind and number).
    async fn save_bill_items(&self, items: &[BillItem]) -> Result<(), StoreError>;

    /// The items of `day` on `channel`, by kind and number.
    async fn bill_items(&self, day: Date, channel: &str) -> Result<Vec<BillItem>, StoreError>;
}
