//! The SQLite writer: one task that makes every hot write of the store, grouped.
//!
//! SQLite has one writer at a time. Rather than let each commit, outbox claim and outbox
//! acknowledgement take that lock in turn — each its own transaction, each a few trips to the
//! connection's thread — they queue here, and the writer puts whatever has queued into **one
//! transaction, sent as one multi-statement query**: a burst of notifications and the outbox
//! work beside it cost one `BEGIN` … `COMMIT` and one trip per round.
//!
//! Each request is still decided on its own: a change whose payment moved on is reported as a
//! conflict and writes nothing (its events included), a claim gets exactly the events it won.
//! If the transaction fails as a whole, each request is retried in a transaction of its own, so
//! that one bad request fails alone. Refund steps (and a second change to one payment in the
//! same round) are written step by step, in a transaction of their own first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::{AssertSqlSafe, Executor as _, Row as _};
use tokio::sync::{mpsc, oneshot};

use super::{Args, Dedicated, EVENT_COLUMNS, SqlStore, batch_rows, db, json, millis, now_millis};
use crate::StoreError;
use crate::store::hand_off::leased_until;
use crate::store::{Change, Commit};

/// Leasing outbox events: those of `ids` still pending and not leased at `now` are leased
/// until `until`.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub(super) ids: Vec<String>,
    pub(super) until: i64,
    pub(super) now: i64,
}

enum Request {
    Commit(Box<Change>, oneshot::Sender<Result<Commit, StoreError>>),
    Delivered(Vec<String>, oneshot::Sender<Result<(), StoreError>>),
    Claim(Claim, oneshot::Sender<Result<Vec<String>, StoreError>>),
}

/// Requests per transaction at most.
const GROUP_MAX: usize = 256;

/// The handle of the writer task.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the writer over `store` (which must not itself have one) on the current Tokio
    /// runtime. It stops when the last handle is dropped.
    pub(super) fn start(store: &SqlStore) -> Self {
        let (queue, mut requests) = mpsc::channel::<Request>(1024);
        let checkpoints = store.clone();
        let store = store.clone();
        tokio::spawn(async move {
            let mut conn = Dedicated::new(store.pool.clone());
            while let Some(first) = requests.recv().await {
                let mut batch = Vec::with_capacity(GROUP_MAX.min(requests.len() + 1));
                batch.push(first);
                while batch.len() < GROUP_MAX {
                    match requests.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let _turn = store.write_turn().await;
                store.write_batch(&mut conn, batch).await;
            }
        });
        spawn_checkpointer(checkpoints, queue.downgrade());
        Writer { queue }
    }

    /// Applies `change` (see [`crate::store::PaymentStore::commit`]).
    pub(super) async fn commit(&self, change: Change) -> Result<Commit, StoreError> {
        self.ask(|reply| Request::Commit(Box::new(change), reply))
            .await
    }

    /// Marks the events `ids` delivered.
    pub(super) async fn delivered(&self, ids: Vec<String>) -> Result<(), StoreError> {
        self.ask(|reply| Request::Delivered(ids, reply)).await
    }

    /// Makes `claim`; the ids of the events it won.
    pub(super) async fn claim(&self, claim: Claim) -> Result<Vec<String>, StoreError> {
        self.ask(|reply| Request::Claim(claim, reply)).await
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let stopped = || StoreError::Unavailable("the SQLite writer stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(request(reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// How often the log is copied into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies the write-ahead log into the database every [`CHECKPOINT_EVERY`], on a connection of
/// its own, as long as the writer runs (`writer`). A passive checkpoint waits for nobody and
/// blocks nobody: commits go on meanwhile, and the log starts over once it has been copied
/// entirely. (The connections do not checkpoint by themselves; see `SQLITE_PRAGMAS`.)
fn spawn_checkpointer(store: SqlStore, writer: mpsc::WeakSender<Request>) {
    tokio::spawn(async move {
        let mut conn = Dedicated::new(store.pool.clone());
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            if writer.upgrade().is_none() {
                return;
            }
            let done = match conn.get().await {
                Ok(c) => c
                    .execute("PRAGMA wal_checkpoint(PASSIVE)")
                    .await
                    .map(|_| ()),
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint: no connection");
                    continue;
                }
            };
            if let Err(e) = conn.checked(done) {
                tracing::warn!(error = %e, "SQLite checkpoint failed; will try again");
            }
        }
    });
}

/// When a trip writes, and the lease of the events it stores (0: not leased).
#[derive(Debug, Clone, Copy)]
struct Stamp {
    now: i64,
    locked_until: i64,
}

impl Stamp {
    fn unleased() -> Self {
        Stamp {
            now: now_millis().0,
            locked_until: 0,
        }
    }
}

/// What one trip wrote.
#[derive(Debug, Default)]
struct Written {
    /// The payments updated (the others had moved on).
    updated: HashSet<String>,
    /// Per claim, the events it won.
    claimed: HashMap<usize, Vec<String>>,
}

impl SqlStore {
    /// Writes one round of requests and answers each.
    async fn write_batch(&self, conn: &mut Dedicated, batch: Vec<Request>) {
        let mut changes = Vec::new();
        let mut change_replies = Vec::new();
        let mut delivered = Vec::new();
        let mut delivered_replies = Vec::new();
        let mut claims = Vec::new();
        let mut claim_replies = Vec::new();
        for request in batch {
            match request {
                Request::Commit(change, reply) => {
                    changes.push(*change);
                    change_replies.push(reply);
                }
                Request::Delivered(ids, reply) => {
                    delivered.extend(ids);
                    delivered_replies.push(reply);
                }
                Request::Claim(claim, reply) => {
                    claims.push(claim);
                    claim_replies.push(reply);
                }
            }
        }

        // Payment-only changes to distinct payments (a burst of notifications) go in the trip;
        // otherwise the changes are written step by step first.
        let mut seen = HashSet::new();
        let in_trip = changes
            .iter()
            .all(|c| c.refund.is_none() && seen.insert(c.payment.id.0.as_str()));
        if !in_trip {
            let results = self.write_in_steps(conn, &changes).await;
            for (reply, result) in change_replies.drain(..).zip(results) {
                let _ = reply.send(result);
            }
            changes.clear();
        }
        if changes.is_empty() && delivered.is_empty() && claims.is_empty() {
            return;
        }

        // The events, leased to the dispatcher of this process if it has room for them (see
        // `store::hand_off`).
        let (now, at) = now_millis();
        let reserved = self
            .hand_off
            .reserve(changes.iter().map(|c| c.events.len()).sum());
        let stamp = Stamp {
            now,
            locked_until: millis(leased_until(reserved.as_ref(), at)),
        };
        match self
            .write_in_one_trip(conn, &changes, &delivered, &claims, stamp)
            .await
        {
            Ok(mut written) => {
                for (reply, change) in change_replies.into_iter().zip(&changes) {
                    let _ = reply.send(Ok(commit_of(&written, change)));
                }
                for reply in delivered_replies {
                    let _ = reply.send(Ok(()));
                }
                for (k, reply) in claim_replies.into_iter().enumerate() {
                    let _ = reply.send(Ok(written.claimed.remove(&k).unwrap_or_default()));
                }
                if let Some(r) = reserved {
                    let committed = changes
                        .into_iter()
                        .filter(|c| written.updated.contains(&c.payment.id.0));
                    r.hand_over(committed.flat_map(|c| c.events), at);
                }
            }
            // Each on its own, so that one bad request fails alone (its events for polling).
            Err(_) => {
                drop(reserved);
                for (reply, change) in change_replies.into_iter().zip(&changes) {
                    let result = self
                        .write_in_one_trip(
                            conn,
                            std::slice::from_ref(change),
                            &[],
                            &[],
                            Stamp::unleased(),
                        )
                        .await
                        .map(|w| commit_of(&w, change));
                    let _ = reply.send(result);
                }
                let result = self
                    .write_in_one_trip(conn, &[], &delivered, &[], Stamp::unleased())
                    .await
                    .map(|_| ());
                for reply in delivered_replies {
                    let _ = reply.send(result.as_ref().map_err(|e| e.clone()).copied());
                }
                for (reply, claim) in claim_replies.into_iter().zip(claims) {
                    let result = self
                        .write_in_one_trip(
                            conn,
                            &[],
                            &[],
                            std::slice::from_ref(&claim),
                            Stamp::unleased(),
                        )
                        .await
                        .map(|mut w| w.claimed.remove(&0).unwrap_or_default());
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// Changes that cannot go in the trip, in a transaction of their own, or each alone if that
    /// fails.
    async fn write_in_steps(
        &self,
        conn: &mut Dedicated,
        changes: &[Change],
    ) -> Vec<Result<Commit, StoreError>> {
        let together = match conn.get().await {
            Ok(c) => self.commit_in_steps(c, changes).await,
            Err(e) => Err(e),
        };
        if let Ok(results) = together {
            return results.into_iter().map(Ok).collect();
        }
        conn.reset();
        let mut alone = Vec::with_capacity(changes.len());
        for change in changes {
            let result = match conn.get().await {
                Ok(c) => self.commit_alone(c, change).await,
                Err(e) => Err(e),
            };
            if result.is_err() {
                conn.reset();
            }
            alone.push(result);
        }
        alone
    }

    /// One transaction in one multi-statement query: `BEGIN`; the outbox events of every
    /// change whose payment still has the expected version; the compare-and-set update of
    /// those payments (`RETURNING` which ones); the delivered events; each claim (`RETURNING`
    /// what it won); `COMMIT`. The events and the payments are decided on the same state
    /// (nothing else writes in between), so a change's events are stored exactly when its
    /// payment is updated.
    ///
    /// The rows travel as one JSON array per statement, unpacked by SQLite's `json_each`: the
    /// text of the query does not depend on how many rows there are (so it is prepared once,
    /// not once per size), and a round binds a handful of arguments instead of thousands. Rows
    /// that are objects are unpacked with `jsonb_each`, whose rows are binary JSON that `->>`
    /// reads as it is (`json_each` would give each as text, parsed again for every field).
    async fn write_in_one_trip(
        &self,
        conn: &mut Dedicated,
        changes: &[Change],
        delivered: &[String],
        claims: &[Claim],
        stamp: Stamp,
    ) -> Result<Written, StoreError> {
        let now = stamp.now;
        let (payments, events) = batch_rows(changes)?;

        let mut sql = format!(
            "BEGIN; \
             INSERT INTO outbox ({EVENT_COLUMNS}, locked_until) \
             SELECT e.value->>'id', e.value->>'kind', e.value->>'payment_id', e.value->>'payload', \
             ?, 'PENDING', 0, NULL, ?, ? \
             FROM jsonb_each(?) AS e \
             JOIN payments ON payments.id = e.value->>'payment_id' \
             AND payments.version = e.value->>'version'; \
             UPDATE payments SET updated_at = ?, status = v.value->>'status', \
             channel_transaction_id = v.value->>'channel_transaction_id', \
             refunded_amount = v.value->>'refunded_amount', needs_review = v.value->>'needs_review', \
             open_id = v.value->>'open_id', metadata = v.value->>'metadata', \
             paid_at = v.value->>'paid_at', expires_at = v.value->>'expires_at', \
             version = payments.version + 1 \
             FROM jsonb_each(?) AS v \
             WHERE payments.id = v.value->>'id' AND payments.version = v.value->>'version' \
             RETURNING 'p', payments.id; \
             UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1 \
             WHERE id IN (SELECT value FROM json_each(?)); "
        );
        let mut args = Args::default();
        args.add(now)
            .add(now)
            .add(stamp.locked_until)
            .add(json(&events)?)
            .add(now)
            .add(json(&payments)?)
            .add(json(&delivered)?);
        for (k, claim) in claims.iter().enumerate() {
            // By id: `+status` keeps SQLite (without statistics) from walking `outbox_due`
            // over every pending event instead.
            sql.push_str(&format!(
                "UPDATE outbox SET locked_until = ?, claim_token = ? \
                 WHERE id IN (SELECT value FROM json_each(?)) \
                 AND +status = 'PENDING' AND locked_until <= ? RETURNING 'c{k}', id; "
            ));
            args.add(claim.until)
                .add(crate::random_hex(16))
                .add(json(&claim.ids)?)
                .add(claim.now);
        }
        sql.push_str("COMMIT;");

        let query = sqlx::query_with(AssertSqlSafe(sql), args.finish()?);
        let fetched = query.fetch_all(conn.get().await?).await;
        let rows = conn.checked(fetched)?;
        let mut written = Written::default();
        for row in &rows {
            let tag: String = row.try_get(0).map_err(db)?;
            let id: String = row.try_get(1).map_err(db)?;
            match tag.strip_prefix('c').and_then(|k| k.parse::<usize>().ok()) {
                Some(k) => written.claimed.entry(k).or_default().push(id),
                None => {
                    written.updated.insert(id);
                }
            }
        }
        Ok(written)
    }
}

fn commit_of(written: &Written, change: &Change) -> Commit {
    if written.updated.contains(&change.payment.id.0) {
        Commit::Committed
    } else {
        Commit::Conflict
    }
}
