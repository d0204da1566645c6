//! [`MemoryStore`]: the store in a mutex. Same semantics as the SQL store, one process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use time::{Date, OffsetDateTime};

use tokio::sync::mpsc;

use super::hand_off::{HandOff, leased_until};
use super::{
    BillStore, Change, Commit, DayCursor, Insert, PaymentBrief, PaymentStore, RefundChange,
    RefundClaim, RefundOfChannel,
};
use crate::bills::{BillItem, BillRun};
use crate::channels::BillEntryKind;
use crate::events::{EventStatus, OutboxEvent};
use crate::sharing::{Share, ShareStatus, ShareStore};
use crate::{Payment, PaymentId, PaymentStatus, Refund, RefundStatus, StoreError};

/// Payments, refunds and the outbox in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    hand_off: HandOff,
}

#[derive(Debug, Default)]
struct Inner {
    payments: HashMap<PaymentId, Payment>,
    by_out_trade_no: HashMap<String, PaymentId>,
    reconcile_after: HashMap<PaymentId, OffsetDateTime>,
    refunds: HashMap<String, Refund>,
    /// Per refund number: not before, attempts.
    refund_reconcile: HashMap<String, (OffsetDateTime, u32)>,
    events: Vec<(OutboxEvent, OffsetDateTime)>,
    bill_runs: HashMap<(Date, String), BillRun>,
    bill_items: BTreeMap<(Date, String, BillEntryKind, String), BillItem>,
    shares: HashMap<PaymentId, Share>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl PaymentStore for MemoryStore {
    async fn insert_payment(&self, payment: &Payment) -> Result<Insert<Payment>, StoreError> {
        let mut s = self.lock();
        if let Some(id) = s.by_out_trade_no.get(&payment.out_trade_no) {
            return Ok(Insert::Existing(s.payments[id].clone()));
        }
        s.by_out_trade_no
            .insert(payment.out_trade_no.clone(), payment.id.clone());
        s.payments.insert(payment.id.clone(), payment.clone());
        Ok(Insert::Inserted)
    }

    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.lock().payments.get(id).cloned())
    }

    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError> {
        let s = self.lock();
        Ok(s.by_out_trade_no
            .get(out_trade_no)
            .and_then(|id| s.payments.get(id))
            .cloned())
    }

    async fn refund(&self, out_refund_no: &str) -> Result<Option<Refund>, StoreError> {
        Ok(self.lock().refunds.get(out_refund_no).cloned())
    }

    async fn refunds_of(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        let mut list: Vec<Refund> = self
            .lock()
            .refunds
            .values()
            .filter(|r| &r.payment_id == payment_id)
            .cloned()
            .collect();
        list.sort_by_key(|r| r.created_at);
        Ok(list)
    }

    async fn commit(&self, change: Change) -> Result<Commit, StoreError> {
        let mut s = self.lock();
        let current = s.payments.get(&change.payment.id).ok_or_else(|| {
            StoreError::Conflict(format!("payment {} does not exist", change.payment.id))
        })?;
        if current.version != change.payment.version {
            return Ok(Commit::Conflict);
        }
        match &change.refund {
            Some(RefundChange::Insert(r)) if s.refunds.contains_key(&r.out_refund_no) => {
                return Ok(Commit::Conflict);
            }
            Some(RefundChange::Update { refund, expected }) => {
                match s.refunds.get(&refund.out_refund_no) {
                    Some(r) if r.status == *expected => {}
                    _ => return Ok(Commit::Conflict),
                }
            }
            _ => {}
        }
        // Everything checked: apply all of it.
        let Change {
            mut payment,
            refund,
            events,
        } = change;
        payment.version += 1;
        s.payments.insert(payment.id.clone(), payment);
        match refund {
            Some(RefundChange::Insert(r)) | Some(RefundChange::Update { refund: r, .. }) => {
                s.refunds.insert(r.out_refund_no.clone(), r);
            }
            None => {}
        }
        let now = OffsetDateTime::now_utc();
        let reserved = self.hand_off.reserve(events.len());
        let locked_until = leased_until(reserved.as_ref(), now);
        for e in &events {
            s.events.push((OutboxEvent::pending(e, now), locked_until));
        }
        drop(s);
        if let Some(r) = reserved {
            r.hand_over(events, now);
        }
        Ok(Commit::Committed)
    }

    async fn claim_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut s = self.lock();
        let mut due: Vec<Payment> = s
            .payments
            .values()
            .filter(|p| p.status == PaymentStatus::Pending && !p.needs_review)
            .filter(|p| p.created_at < stale_before || p.expires_at.is_some_and(|e| e <= now))
            .filter(|p| s.reconcile_after.get(&p.id).is_none_or(|t| *t <= now))
            .cloned()
            .collect();
        let last_looked = |p: &Payment| s.reconcile_after.get(&p.id).copied();
        due.sort_by_key(|p| (last_looked(p), p.created_at));
        due.truncate(limit);
        for p in &due {
            s.reconcile_after.insert(p.id.clone(), now + lease);
        }
        Ok(due)
    }

    async fn claim_refunds_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RefundClaim>, StoreError> {
        let mut s = self.lock();
        let state = |s: &Inner, no: &str| s.refund_reconcile.get(no).copied();
        let mut due: Vec<(Option<(OffsetDateTime, u32)>, Refund)> = s
            .refunds
            .values()
            .filter(|r| r.status.is_open() && r.created_at < stale_before)
            .map(|r| (state(&s, &r.out_refund_no), r.clone()))
            .filter(|(st, _)| st.is_none_or(|(t, _)| t <= now))
            .collect();
        due.sort_by_key(|(st, r)| (st.map(|(t, _)| t), r.created_at));
        due.truncate(limit);
        let mut claimed = Vec::with_capacity(due.len());
        for (st, refund) in due {
            let attempts = st.map_or(0, |(_, a)| a) + 1;
            s.refund_reconcile
                .insert(refund.out_refund_no.clone(), (now + lease, attempts));
            claimed.push(RefundClaim { refund, attempts });
        }
        Ok(claimed)
    }

    async fn defer_refund(
        &self,
        out_refund_no: &str,
        until: Option<OffsetDateTime>,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        let Some(refund) = s
            .refunds
            .get_mut(out_refund_no)
            .filter(|r| r.status.is_open())
        else {
            return Ok(());
        };
        if let Some(e) = last_error {
            refund.last_error = Some(e.to_owned());
        }
        if let Some(until) = until {
            let entry = s
                .refund_reconcile
                .entry(out_refund_no.to_owned())
                .or_insert((until, 0));
            entry.0 = until;
        }
        Ok(())
    }

    async fn claim_events(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut s = self.lock();
        let mut claimed = Vec::new();
        for (event, locked_until) in s.events.iter_mut() {
            if claimed.len() >= limit {
                break;
            }
            if event.status == EventStatus::Pending
                && event.next_attempt_at <= now
                && *locked_until <= now
            {
                *locked_until = now + lease;
                claimed.push(event.clone());
            }
        }
        Ok(claimed)
    }

    fn hand_off_events(
        &self,
        lease: Duration,
        capacity: usize,
    ) -> Option<mpsc::Receiver<OutboxEvent>> {
        self.hand_off.subscribe(lease, capacity)
    }

    async fn event_delivered(&self, id: &str) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some((e, _)) = s.events.iter_mut().find(|(e, _)| e.id == id) {
            e.status = EventStatus::Delivered;
            e.attempts += 1;
        }
        Ok(())
    }

    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some((e, locked)) = s.events.iter_mut().find(|(e, _)| e.id == id) {
            e.attempts += 1;
            e.last_error = Some(error.to_owned());
            match retry_at {
                Some(t) => {
                    e.next_attempt_at = t;
                    *locked = OffsetDateTime::UNIX_EPOCH;
                }
                None => e.status = EventStatus::Dead,
            }
        }
        Ok(())
    }

    async fn events(
        &self,
        status: Option<EventStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        Ok(self
            .lock()
            .events
            .iter()
            .rev()
            .filter(|(e, _)| status.is_none_or(|s| e.status == s))
            .take(limit)
            .map(|(e, _)| e.clone())
            .collect())
    }

    async fn redeliver(&self, id: &str) -> Result<bool, StoreError> {
        let mut s = self.lock();
        match s.events.iter_mut().find(|(e, _)| e.id == id) {
            Some((e, locked)) if e.status == EventStatus::Dead => {
                e.status = EventStatus::Pending;
                e.attempts = 0;
                e.next_attempt_at = OffsetDateTime::now_utc();
                *locked = OffsetDateTime::UNIX_EPOCH;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl BillStore for MemoryStore {
    async fn payments_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<PaymentBrief>, StoreError> {
        let s = self.lock();
        Ok(numbers
            .iter()
            .filter_map(|n| s.by_out_trade_no.get(n))
            .map(|id| PaymentBrief::from(&s.payments[id]))
            .collect())
    }

    async fn refunds_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<RefundOfChannel>, StoreError> {
        let s = self.lock();
        Ok(numbers
            .iter()
            .filter_map(|n| s.refunds.get(n))
            .map(|r| {
                let channel = s
                    .payments
                    .get(&r.payment_id)
                    .map(|p| p.channel.clone())
                    .unwrap_or_default();
                (r.clone(), channel)
            })
            .collect())
    }

    async fn paid_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<PaymentBrief>, StoreError> {
        let s = self.lock();
        let mut page: Vec<PaymentBrief> = s
            .payments
            .values()
            .filter(|p| {
                p.channel == channel
                    && p.paid_at.is_some_and(|t| {
                        t >= from
                            && t < to
                            && after.is_none_or(|(at, no)| (t, &p.out_trade_no) > (*at, no))
                    })
            })
            .map(PaymentBrief::from)
            .collect();
        page.sort_by(|a, b| (a.paid_at, &a.out_trade_no).cmp(&(b.paid_at, &b.out_trade_no)));
        page.truncate(limit);
        Ok(page)
    }

    async fn refunds_succeeded_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError> {
        let s = self.lock();
        let mut page: Vec<Refund> = s
            .refunds
            .values()
            .filter(|r| {
                r.status == RefundStatus::Succeeded
                    && after.is_none_or(|(at, no)| (r.updated_at, &r.out_refund_no) > (*at, no))
                    && r.updated_at >= from
                    && r.updated_at < to
                    && s.payments
                        .get(&r.payment_id)
                        .is_some_and(|p| p.channel == channel)
            })
            .cloned()
            .collect();
        page.sort_by(|a, b| {
            (a.updated_at, &a.out_refund_no).cmp(&(b.updated_at, &b.out_refund_no))
        });
        page.truncate(limit);
        Ok(page)
    }

    async fn bill_run(&self, day: Date, channel: &str) -> Result<Option<BillRun>, StoreError> {
        Ok(self
            .lock()
            .bill_runs
            .get(&(day, channel.to_owned()))
            .cloned())
    }

    async fn save_bill_run(&self, run: &BillRun) -> Result<(), StoreError> {
        self.lock()
            .bill_runs
            .insert((run.day, run.channel.clone()), run.clone());
        Ok(())
    }

    async fn bill_runs(
        &self,
        channel: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BillRun>, StoreError> {
        let s = self.lock();
        let mut runs: Vec<BillRun> = s
            .bill_runs
            .values()
            .filter(|r| channel.is_none_or(|c| r.channel == c))
            .cloned()
            .collect();
        runs.sort_by(|a, b| (b.day, &a.channel).cmp(&(a.day, &b.channel)));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn save_bill_items(&self, items: &[BillItem]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for item in items {
            let (kind, number) = item.key();
            s.bill_items
                .insert((item.day, item.channel.clone(), kind, number), item.clone());
        }
        Ok(())
    }

    async fn bill_items(&self, day: Date, channel: &str) -> Result<Vec<BillItem>, StoreError> {
        let s = self.lock();
        Ok(s.bill_items
            .values()
            .filter(|i| i.day == day && i.channel == channel)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl ShareStore for MemoryStore {
    async fn insert_share(&self, share: &Share) -> Result<Insert<Share>, StoreError> {
        let mut inner = self.lock();
        if let Some(existing) = inner.shares.get(&share.payment_id) {
            return Ok(Insert::Existing(existing.clone()));
        }
        inner.shares.insert(share.payment_id.clone(), share.clone());
        Ok(Insert::Inserted)
    }

    async fn share(&self, payment_id: &PaymentId) -> Result<Option<Share>, StoreError> {
        Ok(self.lock().shares.get(payment_id).cloned())
    }

    async fn update_share(&self, share: &Share) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.shares.get_mut(&share.payment_id) {
            Some(stored) if stored.version == share.version => {
                *stored = share.clone();
                stored.version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn due_shares(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Share>, StoreError> {
        let inner = self.lock();
        let mut due: Vec<Share> = inner
            .shares
            .values()
            .filter(|s| s.status == ShareStatus::Pending && s.next_attempt_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|s| s.next_attempt_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn shares_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Share>, StoreError> {
        let inner = self.lock();
        let mut done: Vec<Share> = inner
            .shares
            .values()
            .filter(|s| s.shared_at.is_some_and(|at| at >= from && at < to))
            .cloned()
            .collect();
        done.sort_by_key(|s| (s.shared_at, s.payment_id.clone()));
        done.truncate(limit);
        Ok(done)
    }
}
