//! Comparing: a chunk of bill rows against the store, then the store's day against the rows
//! seen. Each finding is classed ([`BillClass`]); what can be settled is settled through the
//! channel's query and the usual transitions, never from the bill alone.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use time::{Date, OffsetDateTime};

use super::{BillClass, BillItem};
use crate::channels::{BillEntry, BillEntryKind, ChannelPaymentState, PaymentChannel};
use crate::service::RefundProgress;
use crate::store::{BillStore, PaymentBrief, PaymentStore};
use crate::transitions::{self, Applied};
use crate::{Error, Payments, Refund, RefundStatus, StoreError};

/// A finding's key: kind and number.
pub(super) type Key = (BillEntryKind, String);

/// The rows seen, as 128-bit hashes of their keys (two independent keyed hashes): a day of a
/// million rows in some 30 MiB, where the numbers themselves would take several times that.
pub(super) struct Seen {
    hashers: (RandomState, RandomState),
    keys: HashSet<u128>,
}

impl Seen {
    pub(super) fn new() -> Self {
        Seen {
            hashers: (RandomState::new(), RandomState::new()),
            keys: HashSet::new(),
        }
    }

    fn hash(&self, kind: BillEntryKind, number: &str) -> u128 {
        let (a, b) = &self.hashers;
        (u128::from(a.hash_one((kind, number))) << 64) | u128::from(b.hash_one((kind, number)))
    }

    pub(super) fn insert(&mut self, e: &BillEntry) {
        let h = self.hash(e.kind, e.number());
        self.keys.insert(h);
    }

    pub(super) fn contains(&self, kind: BillEntryKind, number: &str) -> bool {
        self.keys.contains(&self.hash(kind, number))
    }
}

/// What a comparison needs: the day, the channel, the store, the service that settles.
pub(super) struct Context<'a> {
    pub day: Date,
    pub channel: &'a Arc<dyn PaymentChannel>,
    pub store: &'a Arc<dyn PaymentStore>,
    pub bills: &'a Arc<dyn BillStore>,
    pub payments: &'a Payments,
    /// The items earlier runs of the day recorded, by key.
    pub existing: &'a HashMap<Key, BillItem>,
}

impl Context<'_> {
    fn item(
        &self,
        kind: BillEntryKind,
        out_trade_no: &str,
        out_refund_no: Option<&str>,
        class: BillClass,
    ) -> BillItem {
        BillItem {
            day: self.day,
            channel: self.channel.id().to_owned(),
            kind,
            out_trade_no: out_trade_no.to_owned(),
            out_refund_no: out_refund_no.map(str::to_owned),
            class,
            settled: false,
            bill_amount: None,
            store_amount: None,
            detail: String::new(),
            found_at: OffsetDateTime::now_utc(),
        }
    }

    /// What to record for a finding: nothing when it matches and nothing was recorded before;
    /// a difference recorded before that matches now is marked so ("agrees now"), and one
    /// settled before stays as it was (running a day again gives the same report); a
    /// difference otherwise, keeping when it was first found.
    fn record(&self, found: BillItem, out: &mut Vec<BillItem>) {
        let before = self.existing.get(&found.key());
        match (found.class, before) {
            (BillClass::Matched, Some(b)) if !b.settled && b.class != BillClass::Matched => {
                out.push(BillItem {
                    detail: format!("agrees now; was {}: {}", b.class, b.detail),
                    found_at: b.found_at,
                    ..found
                });
            }
            (BillClass::Matched, _) => {}
            (_, Some(b)) if b.class == found.class && b.settled => {}
            (_, Some(b)) => out.push(BillItem {
                found_at: b.found_at,
                ..found
            }),
            (_, None) => out.push(found),
        }
    }
}

/// Compares a chunk of bill rows with the store; the items to record.
pub(super) async fn rows(cx: &Context<'_>, chunk: &[BillEntry]) -> Result<Vec<BillItem>, Error> {
    let (pays, refunds): (Vec<&BillEntry>, Vec<&BillEntry>) =
        chunk.iter().partition(|e| e.kind == BillEntryKind::Payment);
    let numbers: Vec<String> = pays.iter().map(|e| e.out_trade_no.clone()).collect();
    let known: HashMap<String, PaymentBrief> = cx
        .bills
        .payments_by_numbers(&numbers)
        .await?
        .into_iter()
        .map(|p| (p.out_trade_no.clone(), p))
        .collect();
    let numbers: Vec<String> = refunds.iter().map(|e| e.number().to_owned()).collect();
    let known_refunds: HashMap<String, (Refund, String)> = cx
        .bills
        .refunds_by_numbers(&numbers)
        .await?
        .into_iter()
        .map(|(r, channel)| (r.out_refund_no.clone(), (r, channel)))
        .collect();
    let mut out = Vec::new();
    for e in pays {
        let found = payment_row(cx, e, known.get(&e.out_trade_no)).await?;
        cx.record(found, &mut out);
    }
    for e in refunds {
        let found = refund_row(cx, e, known_refunds.get(e.number())).await?;
        cx.record(found, &mut out);
    }
    Ok(out)
}

async fn payment_row(
    cx: &Context<'_>,
    e: &BillEntry,
    here: Option<&PaymentBrief>,
) -> Result<BillItem, Error> {
    let mut item = cx.item(e.kind, &e.out_trade_no, None, BillClass::Matched);
    item.bill_amount = Some(e.amount);
    let Some(p) = here.filter(|p| p.channel == cx.channel.id()) else {
        item.class = BillClass::Orphan;
        item.detail = match here {
            Some(p) => format!(
                "paid at the provider; here a payment of channel {}",
                p.channel
            ),
            None => "paid at the provider; no such payment here".to_owned(),
        };
        return Ok(item);
    };
    item.store_amount = Some(p.amount);
    if e.amount != p.amount || e.currency != p.currency {
        item.class = BillClass::AmountDiffers;
        item.detail = format!(
            "the bill says {} {}, here {} {}",
            e.amount.to_yuan_string(),
            e.currency,
            p.amount.to_yuan_string(),
            p.currency
        );
        return Ok(item);
    }
    if p.status.is_paid() {
        return Ok(item);
    }
    item.class = BillClass::UnpaidHere;
    let was = p.status;
    match cx.channel.query(&p.out_trade_no).await {
        Ok(ChannelPaymentState::Paid {
            transaction_id,
            amount,
        }) => {
            let now = OffsetDateTime::now_utc();
            let applied = transitions::apply_to_payment(cx.store.as_ref(), &p.id, None, |cur| {
                transitions::paid(cur, &transaction_id, amount, &cur.currency, now)
            })
            .await?;
            item.settled = applied != Applied::Flagged;
            item.detail = if item.settled {
                format!("{was} here, paid at the provider: recorded paid")
            } else {
                format!(
                    "{was} here; the provider's query says paid {}: flagged",
                    amount.to_yuan_string()
                )
            };
        }
        Ok(state) => {
            item.detail = format!("{was} here, in the bill; the provider's query says {state:?}");
        }
        Err(e) => {
            item.detail = format!("{was} here, in the bill; the provider's query failed: {e}");
        }
    }
    Ok(item)
}

async fn refund_row(
    cx: &Context<'_>,
    e: &BillEntry,
    here: Option<&(Refund, String)>,
) -> Result<BillItem, Error> {
    let mut item = cx.item(
        e.kind,
        &e.out_trade_no,
        Some(e.number()),
        BillClass::RefundDiffers,
    );
    item.bill_amount = Some(e.amount);
    let Some((r, _)) = here.filter(|(_, channel)| channel == cx.channel.id()) else {
        item.detail = "refunded at the provider; no such refund here".to_owned();
        return Ok(item);
    };
    item.store_amount = Some(r.amount);
    if e.amount != r.amount {
        item.detail = format!(
            "the bill says {}, here {}",
            e.amount.to_yuan_string(),
            r.amount.to_yuan_string()
        );
        return Ok(item);
    }
    match (e.status, r.status) {
        (RefundStatus::Succeeded, RefundStatus::Succeeded) => item.class = BillClass::Matched,
        (RefundStatus::Succeeded, RefundStatus::Pending | RefundStatus::Abnormal) => {
            let was = r.status;
            item.settled = match cx.payments.settle_refund(&r.out_refund_no).await {
                Ok(RefundProgress::Finished(now)) => now.status == RefundStatus::Succeeded,
                Ok(_) => false,
                Err(Error::Store(e)) => return Err(Error::Store(e)),
                Err(_) => false,
            };
            item.detail = if item.settled {
                format!("{was} here, made at the provider: recorded succeeded")
            } else {
                format!("{was} here, in the bill; the provider's refund query does not confirm it")
            };
        }
        (RefundStatus::Succeeded, RefundStatus::Failed) => {
            item.settled = match cx.payments.recheck_failed_refund(&r.out_refund_no).await {
                Ok(now) => now.status == RefundStatus::Succeeded,
                Err(Error::Store(e)) => return Err(Error::Store(e)),
                Err(_) => false,
            };
            item.detail = if item.settled {
                "FAILED here, made at the provider: recorded succeeded".to_owned()
            } else {
                "FAILED here, in the bill; the provider's refund query does not confirm it"
                    .to_owned()
            };
        }
        (bill, RefundStatus::Succeeded) => {
            item.detail = format!("succeeded here, {bill} in the bill");
        }
        _ => item.class = BillClass::Matched,
    }
    Ok(item)
}

/// A page of the store's day.
const PAGE: usize = 500;

/// The store's payments and refunds of the day that no bill row named: each confirmed with the
/// channel (paid or refunded on a neighbouring day) or flagged.
pub(super) async fn store_day(
    cx: &Context<'_>,
    seen: &Seen,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<BillItem>, Error> {
    let id = cx.channel.id();
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = cx
            .bills
            .paid_between(id, from, to, after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.paid_at.unwrap_or(from), last.out_trade_no.clone()));
        for p in page
            .iter()
            .filter(|p| !seen.contains(BillEntryKind::Payment, &p.out_trade_no))
        {
            let found = missing_payment(cx, p).await;
            cx.record(found, &mut out);
        }
    }
    let mut after = None;
    loop {
        let page = cx
            .bills
            .refunds_succeeded_between(id, from, to, after.as_ref(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.updated_at, last.out_refund_no.clone()));
        for r in page
            .iter()
            .filter(|r| !seen.contains(BillEntryKind::Refund, &r.out_refund_no))
        {
            let found = missing_refund(cx, r).await?;
            cx.record(found, &mut out);
        }
    }
    Ok(out)
}

async fn missing_payment(cx: &Context<'_>, p: &PaymentBrief) -> BillItem {
    let mut item = cx.item(
        BillEntryKind::Payment,
        &p.out_trade_no,
        None,
        BillClass::MissingAtProvider,
    );
    item.store_amount = Some(p.amount);
    match cx.channel.query(&p.out_trade_no).await {
        Ok(ChannelPaymentState::Paid { amount, .. }) if amount == p.amount => {
            item.class = BillClass::OtherDay;
            item.detail = "paid here this day; the provider has it paid on another day".into();
        }
        Ok(state) => {
            item.detail = format!(
                "paid here, not in the provider's bill; the provider's query says {state:?}"
            );
        }
        Err(e) => {
            item.detail =
                format!("paid here, not in the provider's bill; the provider's query failed: {e}");
        }
    }
    item
}

async fn missing_refund(cx: &Context<'_>, r: &Refund) -> Result<BillItem, StoreError> {
    let out_trade_no = cx
        .store
        .payment(&r.payment_id)
        .await?
        .map(|p| p.out_trade_no)
        .unwrap_or_default();
    let mut item = cx.item(
        BillEntryKind::Refund,
        &out_trade_no,
        Some(&r.out_refund_no),
        BillClass::RefundDiffers,
    );
    item.store_amount = Some(r.amount);
    match cx
        .channel
        .query_refund(&out_trade_no, &r.out_refund_no)
        .await
    {
        Ok(Some(c)) if c.status == RefundStatus::Succeeded => {
            item.class = BillClass::OtherDay;
            item.detail = "refunded here this day; the provider has it on another day".into();
        }
        Ok(found) => {
            item.detail = format!(
                "succeeded here, not in the provider's bill; its refund query says {:?}",
                found.map(|c| c.status)
            );
        }
        Err(e) => {
            item.detail =
                format!("succeeded here, not in the provider's bill; its refund query failed: {e}");
        }
    }
    Ok(item)
}
