//! Reconciliation against the providers' daily bills (对账): the ground truth of the money
//! moved, compared with the store, every day, on every channel.
//!
//! [`BillReconciler::reconcile`] takes a bill day (China time) and a channel, downloads the
//! channel's trade bill to a temporary file, reads it a row at a time on a thread of its own
//! (never the whole file in memory), and compares it with the store a chunk of rows at a time
//! (one lookup of the chunk's payments, one of its refunds). Then it pages through the store's
//! payments and refunds of the day that no row named. Every row, and every such payment or
//! refund, ends in one [`BillClass`]:
//!
//! | class | what was found | what the run does |
//! |---|---|---|
//! | `matched` | the bill and the store agree | nothing |
//! | `unpaid_here` | paid at the provider; PENDING, CLOSED or FAILED here | **settled**: the channel is queried and its answer applied through the usual transition (events and all); flagged if the query does not confirm |
//! | `orphan` | paid at the provider; unknown here | flagged for a human |
//! | `missing_at_provider` | paid here; not in the bill, and the provider's query does not say paid | **critical**, flagged, never fixed automatically |
//! | `amount_differs` | the amount or the currency differs | flagged |
//! | `refund_differs` | succeeded at the provider, pending or failed here | **settled** through the refund query (a FAILED refund the provider confirms is corrected to SUCCEEDED) |
//! | `refund_differs` | succeeded here, not at the provider; unknown here; another amount | flagged |
//! | `other_day` | paid or refunded here this day, and the provider confirms it (its bill has it on a neighbouring day: midnight fell between the provider and the store) | counted, not a difference |
//!
//! Nothing is ever settled from the bill alone: a fix goes through the same query → transition
//! path as a notification, so its events are recorded once whoever else applies the same fact.
//! The bill's totals (payments, refunds, the provider's fees) are recorded with the run.
//!
//! A run is **idempotent**: running a day again changes nothing already settled and gives the
//! same counts (a finding settled before stays counted as settled). It is **resumable**: it
//! records how many rows it compared; a run stopped half way resumes after them when the bill is
//! the same file (its SHA-256). It runs **once per (day, channel)** across instances: it holds the
//! lock `bill:{channel}:{day}` ([`LockManager`]); another instance finds it busy. A bill "not
//! ready yet" ends the run [`BillRunStatus::NotReady`] (run it again later:
//! [`BillReconciler::reconcile_until_ready`]); "no bill for the day" is a day in which nothing
//! moved at the provider — an empty, successful run, in which every payment the store has paid
//! that day is a difference.

mod compare;
mod report;

use std::collections::HashMap;
use std::io::{Seek, Write};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use time::{Date, OffsetDateTime, Time, UtcOffset};
use tokio::sync::mpsc;

pub use report::{BillClass, BillItem, BillRun, BillRunStatus, BillTotals, items_csv};

use crate::channels::{BillAvailability, BillEntry, Channels, PaymentChannel};
use crate::lock::LockManager;
use crate::store::{BillStore, PaymentStore};
use crate::{ChannelError, Error, Payments, StoreError};

/// China time, the providers' bill days.
pub const CHINA: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// Rows compared per chunk: one store lookup each for the chunk's payments and refunds.
const CHUNK: usize = 1000;

/// Chunks read ahead of the comparison.
const READ_AHEAD: usize = 4;

/// Chunks compared at once.
const PARALLEL_CHUNKS: usize = 4;

/// Why a run could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BillError {
    /// No channel with this id.
    #[error("no channel {0}")]
    UnknownChannel(String),
    /// The channel could not give its bill (see [`ChannelError::is_retryable`]), or the bill
    /// could not be read.
    #[error("bill of {channel}: {source}")]
    Channel {
        /// The channel.
        channel: String,
        /// What it said.
        source: ChannelError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The temporary file of the bill failed.
    #[error("bill file: {0}")]
    File(#[from] std::io::Error),
}

impl From<Error> for BillError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => BillError::Store(e),
            other => BillError::Store(StoreError::Other(other.to_string())),
        }
    }
}

/// What [`BillReconciler::reconcile`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillOutcome {
    /// The day is compared: the run, with its counts.
    Done(BillRun),
    /// The provider is still making the bill.
    NotReady(BillRun),
    /// Another instance (or task) is running this day and channel now.
    Busy,
}

/// Reconciles days of bills against the store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BillReconciler {
    payments: Payments,
    channels: Channels,
    store: Arc<dyn PaymentStore>,
    bills: Arc<dyn BillStore>,
    locks: Arc<dyn LockManager>,
    lock_ttl: Duration,
}

impl BillReconciler {
    /// Over `channels`, the payments in `store`, the runs in `bills` (usually the same store),
    /// one run per day and channel across everyone sharing `locks`.
    pub fn new(
        channels: Channels,
        store: Arc<dyn PaymentStore>,
        bills: Arc<dyn BillStore>,
        locks: Arc<dyn LockManager>,
    ) -> Self {
        BillReconciler {
            payments: Payments::new(channels.clone(), Arc::clone(&store)),
            channels,
            store,
            bills,
            locks,
            lock_ttl: Duration::from_secs(120),
        }
    }

    /// The ids of the registered channels.
    pub fn channel_ids(&self) -> Vec<String> {
        self.channels.ids().into_iter().map(str::to_owned).collect()
    }

    /// The runs, newest day first, optionally of one channel.
    pub async fn runs(
        &self,
        channel: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BillRun>, StoreError> {
        self.bills.bill_runs(channel, limit).await
    }

    /// The items of `day` on `channel`.
    pub async fn items(&self, day: Date, channel: &str) -> Result<Vec<BillItem>, StoreError> {
        self.bills.bill_items(day, channel).await
    }

    /// The run of `day` on `channel`, as last recorded.
    pub async fn run_of(&self, day: Date, channel: &str) -> Result<Option<BillRun>, StoreError> {
        self.bills.bill_run(day, channel).await
    }

    /// Reconciles `day` (China time) on `channel`.
    pub async fn reconcile(&self, day: Date, channel: &str) -> Result<BillOutcome, BillError> {
        let ch = self
            .channels
            .get(channel)
            .ok_or_else(|| BillError::UnknownChannel(channel.to_owned()))?
            .clone();
        let key = format!("bill:{channel}:{day}");
        let Some(guard) = self.locks.acquire(&key, self.lock_ttl).await? else {
            return Ok(BillOutcome::Busy);
        };
        let result = self.run(day, &ch, &guard).await;
        if let Err(e) = self.locks.release(&guard).await {
            tracing::warn!(lock = %key, error = %e, "bill run lock not released (it expires)");
        }
        result
    }

    /// Reconciles `day` on every channel that has bills (channels without bills are left out);
    /// each channel's outcome.
    pub async fn reconcile_day(&self, day: Date) -> Vec<(String, Result<BillOutcome, BillError>)> {
        let mut out = Vec::new();
        for ch in self.channels.iter() {
            let id = ch.id().to_owned();
            let outcome = self.reconcile(day, &id).await;
            if let Err(BillError::Channel {
                source: ChannelError::Unsupported(_),
                ..
            }) = &outcome
            {
                continue;
            }
            out.push((id, outcome));
        }
        out
    }

    /// Reconciles `day` on `channel`, asking again every `every` while the bill is not ready
    /// or the channel answers a temporary error, at most `attempts` times.
    pub async fn reconcile_until_ready(
        &self,
        day: Date,
        channel: &str,
        every: Duration,
        attempts: u32,
    ) -> Result<BillOutcome, BillError> {
        let mut left = attempts.max(1);
        loop {
            left -= 1;
            let outcome = self.reconcile(day, channel).await;
            let again = match &outcome {
                Ok(BillOutcome::NotReady(_) | BillOutcome::Busy) => true,
                Err(BillError::Channel { source, .. }) => source.is_retryable(),
                _ => false,
            };
            if !again || left == 0 {
                return outcome;
            }
            tokio::time::sleep(every).await;
        }
    }

    async fn run(
        &self,
        day: Date,
        channel: &Arc<dyn PaymentChannel>,
        guard: &crate::lock::LockGuard,
    ) -> Result<BillOutcome, BillError> {
        let before = self.bills.bill_run(day, channel.id()).await?;
        let mut run = before
            .clone()
            .unwrap_or_else(|| BillRun::new(day, channel.id()));
        run.attempts += 1;
        run.started_at = OffsetDateTime::now_utc();
        let mut file = tempfile::tempfile()?;
        let mut hashing = HashingWriter::new(&mut file);
        let availability = channel.download_bill(day, &mut hashing).await;
        let sha256 = hashing.finish();
        let availability = match availability {
            Ok(a) => a,
            Err(source) => {
                run.status = BillRunStatus::Failed;
                run.last_error = Some(source.summary());
                self.bills.save_bill_run(&run).await?;
                return Err(BillError::Channel {
                    channel: channel.id().to_owned(),
                    source,
                });
            }
        };
        if availability == BillAvailability::NotReady {
            run.status = BillRunStatus::NotReady;
            run.last_error = Some("the provider is still making the bill".to_owned());
            self.bills.save_bill_run(&run).await?;
            return Ok(BillOutcome::NotReady(run));
        }
        let sha256 = (availability == BillAvailability::Ready).then_some(sha256);
        // A run stopped half way over the same file resumes after the rows it compared.
        let resume_after = match &before {
            Some(b) if b.status == BillRunStatus::Running && b.bill_sha256 == sha256 => b.rows_done,
            _ => 0,
        };
        run.status = BillRunStatus::Running;
        run.bill_sha256 = sha256;
        run.totals = BillTotals::default();
        run.rows_done = resume_after;
        run.last_error = None;
        self.bills.save_bill_run(&run).await?;
        file.rewind()?;
        let file = (availability == BillAvailability::Ready).then_some(file);
        match self.compare(&mut run, channel, file, guard).await {
            Ok(()) => Ok(BillOutcome::Done(run)),
            Err(e) => {
                if let BillError::Channel { source, .. } = &e {
                    run.status = BillRunStatus::Failed;
                    run.last_error = Some(source.summary());
                    self.bills.save_bill_run(&run).await?;
                }
                Err(e)
            }
        }
    }

    async fn compare(
        &self,
        run: &mut BillRun,
        channel: &Arc<dyn PaymentChannel>,
        file: Option<std::fs::File>,
        guard: &crate::lock::LockGuard,
    ) -> Result<(), BillError> {
        let existing: HashMap<compare::Key, BillItem> = self
            .bills
            .bill_items(run.day, channel.id())
            .await?
            .into_iter()
            .map(|i| (i.key(), i))
            .collect();
        let cx = compare::Context {
            day: run.day,
            channel,
            store: &self.store,
            bills: &self.bills,
            payments: &self.payments,
            existing: &existing,
        };
        let mut seen = compare::Seen::new();
        let mut totals = BillTotals::default();
        let (chunks, reader) = read_in_chunks(Arc::clone(channel), file);
        let resume_after = run.rows_done;
        let mut read = 0u64;
        // Chunks compared a few at once (their lookups overlap), their findings recorded in
        // order: the checkpoint never passes a chunk not compared.
        let cx = &cx;
        let mut done = 0u64;
        {
            let compared = stream::unfold(chunks, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            })
            .map(|chunk: Vec<BillEntry>| {
                for e in &chunk {
                    seen.insert(e);
                    totals.add(e);
                }
                read += chunk.len() as u64;
                let skip = read <= resume_after;
                async move {
                    let items = match skip {
                        true => Vec::new(),
                        false => compare::rows(cx, &chunk).await?,
                    };
                    Ok::<_, Error>((chunk.len() as u64, items))
                }
            })
            .buffered(PARALLEL_CHUNKS);
            let mut compared = std::pin::pin!(compared);
            while let Some(compared_chunk) = compared.next().await {
                let (len, items) = compared_chunk?;
                done += len;
                if done <= resume_after {
                    continue;
                }
                self.bills.save_bill_items(&items).await?;
                run.rows_done = done;
                self.bills.save_bill_run(run).await?;
                self.locks.extend(guard, self.lock_ttl).await?;
            }
        }
        run.totals = totals;
        reader
            .await
            .map_err(|e| std::io::Error::other(format!("the bill reader stopped: {e}")))?
            .map_err(|source| BillError::Channel {
                channel: channel.id().to_owned(),
                source,
            })?;
        let (from, to) = day_bounds(run.day);
        let items = compare::store_day(cx, &seen, from, to).await?;
        self.bills.save_bill_items(&items).await?;
        let all = self.bills.bill_items(run.day, channel.id()).await?;
        run.rows_done = done;
        run.count_items(&all);
        run.status = BillRunStatus::Done;
        run.finished_at = Some(OffsetDateTime::now_utc());
        self.bills.save_bill_run(run).await?;
        tracing::info!(
            day = %run.day,
            channel = %run.channel,
            rows = run.totals.rows(),
            differences = run.differences(),
            "bill reconciled"
        );
        Ok(())
    }
}

/// Reads `file` with the channel on a blocking thread, in chunks, into a bounded queue: the
/// comparison holds at most a few chunks however long the bill.
fn read_in_chunks(
    channel: Arc<dyn PaymentChannel>,
    file: Option<std::fs::File>,
) -> (
    mpsc::Receiver<Vec<BillEntry>>,
    tokio::task::JoinHandle<Result<(), ChannelError>>,
) {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let reader = tokio::task::spawn_blocking(move || {
        let Some(file) = file else { return Ok(()) };
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut open = true;
        channel.read_bill(file, &mut |e| {
            chunk.push(e);
            if chunk.len() == CHUNK {
                open = tx.blocking_send(std::mem::take(&mut chunk)).is_ok();
            }
            open
        })?;
        if open && !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        Ok(())
    });
    (rx, reader)
}

/// `[start, end)` of a China-time day, as instants.
pub fn day_bounds(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    let start = day.with_time(Time::MIDNIGHT).assume_offset(CHINA);
    (start, start + time::Duration::days(1))
}

/// The China-time day of an instant.
pub fn china_day(at: OffsetDateTime) -> Date {
    at.to_offset(CHINA).date()
}

/// Writes through, hashing what passes (SHA-256).
struct HashingWriter<'a> {
    to: &'a mut std::fs::File,
    sha: sha2::Sha256,
}

impl<'a> HashingWriter<'a> {
    fn new(to: &'a mut std::fs::File) -> Self {
        use sha2::Digest;
        HashingWriter {
            to,
            sha: sha2::Sha256::new(),
        }
    }

    fn finish(self) -> String {
        use sha2::Digest;
        self.sha
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.to.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
}
