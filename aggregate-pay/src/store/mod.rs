//! Where payments, refunds and the outbox live.
//!
//! Every state change goes through [`PaymentStore::commit`]: a compare-and-set on the payment's
//! version, the refund's insert or compare-and-set, and the change's outbox events, in **one
//! transaction**. If any part does not apply, nothing does. That is what makes notifications
//! exactly-once: two copies of the same notification race, one commits, the other gets
//! [`Commit::Conflict`], reloads, and finds the payment already paid.
//!
//! Reconciling against the providers' daily bills reads and records through [`BillStore`],
//! which both stores implement too.
//!
//! - [`MemoryStore`] — always available (tests, the embedded default).
//! - `SqlStore` — SQLite, PostgreSQL or MySQL through sqlx (features `sqlite`, `postgres`,
//!   `mysql`), with its schema migrated at connect.

mod bills;
mod hand_off;
mod memory;
#[cfg(feature = "sql")]
mod sql;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::mpsc;

pub use bills::{BillStore, DayCursor, PaymentBrief, RefundOfChannel};
pub use memory::MemoryStore;
#[cfg(feature = "sql")]
pub use sql::SqlStore;

use crate::events::{EventStatus, NewEvent, OutboxEvent};
use crate::{Payment, PaymentId, Refund, RefundStatus, StoreError};

/// The result of inserting something with a unique number.
#[derive(Debug, Clone, PartialEq)]
pub enum Insert<T> {
    /// Stored.
    Inserted,
    /// Something with the same number exists; here it is.
    Existing(T),
}

/// How a change touches a refund.
#[derive(Debug, Clone, PartialEq)]
pub enum RefundChange {
    /// A new refund (its `out_refund_no` must be unused).
    Insert(Refund),
    /// The refund's new state, if its status is still `expected`.
    Update {
        /// The new state.
        refund: Refund,
        /// The status it must have now.
        expected: RefundStatus,
    },
}

/// A state change, applied all or nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The payment's new state; its `version` is the version it must have now (the store
    /// increments it).
    pub payment: Payment,
    /// The refund it touches, if any.
    pub refund: Option<RefundChange>,
    /// The events it produces.
    pub events: Vec<NewEvent>,
}

/// The result of [`PaymentStore::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Applied, events recorded.
    Committed,
    /// Someone changed the payment (or the refund) first; nothing was applied.
    Conflict,
}

/// A pending refund claimed for reconciliation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RefundClaim {
    /// The refund.
    pub refund: Refund,
    /// How many times it has been claimed, this claim included.
    pub attempts: u32,
}

/// Payments, refunds and the outbox.
#[async_trait]
pub trait PaymentStore: Send + Sync + fmt::Debug {
    /// Stores a new payment. A payment with the same `out_trade_no` is returned instead.
    async fn insert_payment(&self, payment: &Payment) -> Result<Insert<Payment>, StoreError>;

    /// A payment by id.
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError>;

    /// A payment by the number the channel knows.
    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError>;

    /// A refund by its number.
    async fn refund(&self, out_refund_no: &str) -> Result<Option<Refund>, StoreError>;

    /// The refunds of a payment, oldest first.
    async fn refunds_of(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError>;

    /// Applies `change` atomically (see [`Change`]).
    async fn commit(&self, change: Change) -> Result<Commit, StoreError>;

    /// Claims up to `limit` unpaid, unflagged payments created before `stale_before` or expired
    /// at `now`, for `lease`: concurrent reconcilers get different payments. The least recently
    /// looked at come first, so a round robin reaches every pending payment however many there
    /// are.
    async fn claim_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError>;

    /// Claims up to `limit` open refunds (PENDING or ABNORMAL) requested before `stale_before`
    /// and not deferred past `now`, for `lease` (least recently looked at first, so none
    /// starves): concurrent reconcilers get different refunds. Each claim counts as an attempt.
    async fn claim_refunds_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RefundClaim>, StoreError>;

    /// On an open refund (PENDING or ABNORMAL): leaves it alone until `until`, when given (a
    /// backoff, or the wait a channel asked for), and records `last_error`, when given (why it
    /// is not settled yet). A final refund is left as it is.
    async fn defer_refund(
        &self,
        out_refund_no: &str,
        until: Option<OffsetDateTime>,
        last_error: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` outbox events due at `now`, for `lease`.
    async fn claim_events(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// From now on, hands the events this store commits to the returned receiver as soon as
    /// their transaction commits (at most `capacity` waiting), stored **leased for `lease`**
    /// so that no poller claims them meanwhile: a dispatcher in the same process delivers them
    /// without claiming them first. An event not acknowledged within its lease is claimed again
    /// as usual; one the channel has no room for is stored unleased and polled. `None` if this
    /// store does not hand events off or another receiver listens.
    fn hand_off_events(
        &self,
        lease: Duration,
        capacity: usize,
    ) -> Option<mpsc::Receiver<OutboxEvent>> {
        let _ = (lease, capacity);
        None
    }

    /// Marks an event delivered.
    async fn event_delivered(&self, id: &str) -> Result<(), StoreError>;

    /// Marks events delivered (a store may do it in one statement).
    async fn events_delivered(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            self.event_delivered(id).await?;
        }
        Ok(())
    }

    /// Records a failed delivery: retried at `retry_at`, or dead when `None`.
    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;

    /// Events, newest first, optionally of one status.
    async fn events(
        &self,
        status: Option<EventStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError>;

    /// Puts a dead event back for delivery; `false` if it is not dead.
    async fn redeliver(&self, id: &str) -> Result<bool, StoreError>;
}
