//! [`ShortPoll`]: the short loop while a buyer waits.
//!
//! A buyer who has paid watches a page that waits for the payment. The notification normally
//! arrives in a second; when it does not (lost, late, a provider that does not notify), the
//! reconciler would find the payment only a minute or more later. So while a page waits, each
//! of its polls nudges the payment: once it is a few seconds old and still unpaid, its channel
//! is asked — at most once per interval for that payment, **one query at a time across every
//! viewer and every instance** (a lock per payment, held through the query and for the rest of
//! the interval) — and the answer is applied through the same transitions as a notification
//! (events and all). After a bounded time the loop stops and the reconciler takes over.
//!
//! ```text
//!   page polls ─▶ nudge ─▶ unpaid, ≥ after, ≤ for_at_most? ─▶ lock poll:{id} free? ─▶ query ─▶ apply
//!                                     └────── no ──────────────────────┴─ no ─▶ nothing
//! ```

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::lock::LockManager;
use crate::{Error, Payment, Payments};

/// Queries a waiting buyer's payment now and then, one query at a time. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ShortPoll {
    payments: Payments,
    locks: Arc<dyn LockManager>,
    after: Duration,
    every: Duration,
    for_at_most: Duration,
    query_timeout: Duration,
}

/// What a nudge did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nudge {
    /// Nothing to ask: paid or ended, too young (its notification may still come) or too old
    /// (the reconciler's now).
    NotDue,
    /// Someone asked less than an interval ago, or is asking now.
    Asked,
    /// The channel was asked; the payment as it is now.
    Queried(Box<Payment>),
}

impl ShortPoll {
    /// Over `payments`, one query at a time per payment across everyone sharing `locks`:
    /// from 3 s after the payment was created, every 3 s, for at most 5 minutes.
    pub fn new(payments: Payments, locks: Arc<dyn LockManager>) -> Self {
        ShortPoll {
            payments,
            locks,
            after: Duration::from_secs(3),
            every: Duration::from_secs(3),
            for_at_most: Duration::from_secs(300),
            query_timeout: Duration::from_secs(30),
        }
    }

    /// How old an unpaid payment must be before its channel is asked (its notification's
    /// chance), how often it is asked, and until what age.
    pub fn timing(mut self, after: Duration, every: Duration, for_at_most: Duration) -> Self {
        self.after = after;
        self.every = every.max(Duration::from_millis(100));
        self.for_at_most = for_at_most;
        self
    }

    /// A page is waiting on the payment `out_trade_no`: asks its channel if it is due (see the
    /// [module documentation](self)).
    pub async fn nudge(&self, out_trade_no: &str) -> Result<Nudge, Error> {
        let payment = self.payments.get_by_out_trade_no(out_trade_no).await?;
        let age = OffsetDateTime::now_utc() - payment.created_at;
        if !payment.status.is_open() || age < self.after || age > self.for_at_most {
            return Ok(Nudge::NotDue);
        }
        let key = format!("poll:{}", payment.id);
        let started = std::time::Instant::now();
        // Held through the query (however slow, up to its timeout) and for the rest of the
        // interval: one query at a time, at most one per interval.
        let Some(guard) = self
            .locks
            .acquire(&key, self.every + self.query_timeout)
            .await?
        else {
            return Ok(Nudge::Asked);
        };
        let synced =
            tokio::time::timeout(self.query_timeout, self.payments.sync(&payment.id)).await;
        let rest = self.every.saturating_sub(started.elapsed());
        if rest.is_zero() {
            self.locks.release(&guard).await?;
        } else {
            self.locks.extend(&guard, rest).await?;
        }
        match synced {
            Ok(now) => Ok(Nudge::Queried(Box::new(now?))),
            Err(_) => Ok(Nudge::Asked),
        }
    }

    /// [`nudge`](Self::nudge) on a task of its own: the page's poll answers at once, and sees
    /// the outcome at its next poll.
    pub fn nudge_in_background(&self, out_trade_no: &str) {
        let (poll, no) = (self.clone(), out_trade_no.to_owned());
        tokio::spawn(async move {
            if let Err(e) = poll.nudge(&no).await {
                tracing::debug!(payment = %no, error = %e, "short poll failed");
            }
        });
    }
}
