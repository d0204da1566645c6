//! [`SqlStore`]: payments, refunds and the outbox in SQLite, PostgreSQL or MySQL, through one
//! code path (sqlx's `Any` driver, runtime queries). The schema is portable SQL (VARCHAR, BIGINT,
//! TEXT; times as milliseconds since the epoch) and is migrated at connect, under sqlx's
//! migration lock so that instances starting together do not race.
//!
//! Claims (reconciliation, outbox delivery) are compare-and-set updates of a lease column, so
//! they are safe on any of the three engines without `SELECT … FOR UPDATE SKIP LOCKED`.
//!
//! SQLite has one writer at a time, so there this store writes in turns (a fair async queue, not
//! SQLite's sleeping busy handler), and one writer task groups concurrent commits and outbox
//! writes into one transaction, still all or nothing per change (see `writer`); the database
//! runs in WAL mode. Concurrent lookups of payments are read together on every engine (see
//! `lookups`).
//!
//! - `schema` — the tables and their migrations (and an application's own, `migrate_tables`).
//! - `rows` — column lists, row readers, query arguments, JSON batches.
//! - `reconcile` — claims of pending payments and refunds for the reconciler.
//! - `bills` — the bill reconciler's lookups, runs and items.
//! - `commit` — the write paths of a change, per engine (alone, in steps, one PostgreSQL
//!   statement) and outbox claims.
//! - `writer` — SQLite's one writer task and its background checkpoints; `lookups` — batched
//!   payment reads; `dedicated` — connections a background task keeps to itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, AssertSqlSafe, Executor as _};
use time::OffsetDateTime;

use self::lookups::{Key, PaymentLookups};
use self::writer::{Claim, Writer};
use super::hand_off::HandOff;
use super::{Change, Commit, Insert, PaymentStore, RefundClaim};
use crate::events::{EventStatus, OutboxEvent};
use crate::{Payment, PaymentId, Refund, StoreError};

mod lookups;
mod writer;

mod bills;
mod commit;
mod dedicated;
mod group;
mod reconcile;
mod rows;
mod schema;
mod shares;

use self::dedicated::Dedicated;
use self::group::GroupCommit;
use self::rows::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

/// The SQL store.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite: commits and outbox writes go through one writer that groups them (see
    /// [`writer`]).
    writer: Option<Writer>,
    /// PostgreSQL: payment-only commits of a moment go in one statement (see [`group`]).
    group: Option<GroupCommit>,
    /// SQLite: this store's writes take turns here, in a fair async queue, rather than in
    /// SQLite's busy handler (which sleeps whole milliseconds between tries).
    write_gate: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Concurrent lookups of a payment by `id` / by `out_trade_no`, answered together (see
    /// [`lookups`]).
    by_id: Option<PaymentLookups>,
    by_out_trade_no: Option<PaymentLookups>,
    /// The in-process dispatcher its committed events go to, if one listens (see
    /// [`PaymentStore::hand_off_events`]).
    hand_off: Arc<HandOff>,
}

/// SQLite, per connection: write-ahead log (readers never wait for the writer), fsync at
/// checkpoints rather than at every commit (a committed change survives a crash of the process;
/// an OS crash can lose the last ones, which the reconciler finds again at the channel), wait
/// for the writer instead of failing with SQLITE_BUSY, and no checkpoint inside a commit: the
/// writer's checkpointer task copies the log into the database in the background (see
/// [`writer`]), so that no commit waits for a checkpoint and its fsync. And the log is cut back
/// to nothing each time it starts over (`journal_size_limit = 0`): it never keeps the size of
/// its largest burst, and a commit always appends to it. Rewriting an old log in place made
/// commits read its blocks back from disk first wherever the OS had dropped them from its page
/// cache (log frames are not aligned to pages) — seen on the benchmark machine as synchronous
/// disk reads in 3 % of the SQLite thread's time, inside the commit; the truncation costs 1 %.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 0;";

impl SqlStore {
    /// Connects to `url` (`sqlite://path?mode=rwc`, `postgres://…`, `mysql://…`) and migrates
    /// the schema. The engine's feature must be enabled. It starts background tasks on the
    /// current Tokio runtime (the payment readers, and on SQLite the writer): use the store on
    /// that runtime.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let dialect = match url.split(':').next().unwrap_or_default() {
            "sqlite" => Dialect::Sqlite,
            "postgres" | "postgresql" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::Mysql,
            other => {
                return Err(StoreError::Other(format!(
                    "unsupported database url scheme {other:?}"
                )));
            }
        };
        sqlx::any::install_default_drivers();
        // No ping before each use: a broken connection fails its statement and is dropped, and
        // the ping would double every statement's round trips.
        let mut options = AnyPoolOptions::new()
            .max_connections(if dialect == Dialect::Sqlite { 8 } else { 10 })
            .test_before_acquire(false);
        if dialect == Dialect::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SQLITE_PRAGMAS).await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to the database: {e}")))?;
        let mut store = SqlStore {
            pool,
            dialect,
            writer: None,
            group: None,
            write_gate: (dialect == Dialect::Sqlite).then(Arc::default),
            by_id: None,
            by_out_trade_no: None,
            hand_off: Arc::default(),
        };
        store.migrate().await?;
        // The background tasks work on a plain copy (no writer, no batching of its own).
        let plain = store.clone();
        match dialect {
            Dialect::Sqlite => store.writer = Some(Writer::start(&plain)),
            Dialect::Postgres | Dialect::Mysql => store.group = Some(GroupCommit::start(&plain)),
        }
        store.by_id = Some(PaymentLookups::start(&plain, Key::Id));
        store.by_out_trade_no = Some(PaymentLookups::start(&plain, Key::OutTradeNo));
        Ok(store)
    }

    /// The connection pool, for an application that keeps its own tables in the same database
    /// (one pool, one set of connections).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A query with `?` placeholders, rewritten for the engine (`$1`… on PostgreSQL), for use
    /// with [`SqlStore::pool`].
    pub fn query_text(&self, q: &str) -> AssertSqlSafe<String> {
        self.sql(q)
    }

    /// Waits for this store's turn to write (SQLite only).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// The query with `?` placeholders rewritten for the engine (`$1`… on PostgreSQL).
    fn sql(&self, q: &str) -> AssertSqlSafe<String> {
        if self.dialect != Dialect::Postgres {
            return AssertSqlSafe(q.to_owned());
        }
        let mut out = String::with_capacity(q.len() + 16);
        let mut n = 0;
        for c in q.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        AssertSqlSafe(out)
    }

    /// One payment by `key`, read on its own (see [`lookups`] for the batched reads).
    async fn fetch_payment(&self, key: Key, value: &str) -> Result<Option<Payment>, StoreError> {
        let q = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {} = ?",
            key.column()
        );
        let row = sqlx::query(self.sql(&q))
            .bind(value.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(payment_from).transpose()
    }
}

#[async_trait]
impl PaymentStore for SqlStore {
    async fn insert_payment(&self, p: &Payment) -> Result<Insert<Payment>, StoreError> {
        let _turn = self.write_turn().await;
        if let Some(existing) = self.fetch_payment(Key::OutTradeNo, &p.out_trade_no).await? {
            return Ok(Insert::Existing(existing));
        }
        let q = format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}, reconcile_after) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
        );
        let result = sqlx::query(self.sql(&q))
            .bind(p.id.0.clone())
            .bind(p.out_trade_no.clone())
            .bind(p.channel.clone())
            .bind(p.channel_account.clone())
            .bind(p.method.as_str().to_owned())
            .bind(amount(p.amount)?)
            .bind(p.currency.clone())
            .bind(p.subject.clone())
            .bind(p.status.as_str().to_owned())
            .bind(p.channel_transaction_id.clone())
            .bind(amount(p.refunded_amount)?)
            .bind(i64::from(p.needs_review))
            .bind(p.open_id.clone())
            .bind(p.metadata.to_string())
            .bind(millis(p.created_at))
            .bind(millis(p.updated_at))
            .bind(p.paid_at.map(millis))
            .bind(p.expires_at.map(millis))
            .bind(p.version)
            .bind(p.sub_merchant.clone())
            .bind(amount(p.platform_fee)?)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(Insert::Inserted),
            Err(e) if is_unique_violation(&e) => self
                .fetch_payment(Key::OutTradeNo, &p.out_trade_no)
                .await?
                .map(Insert::Existing)
                .ok_or_else(|| {
                    StoreError::Conflict("payment number collision with a different id".into())
                }),
            Err(e) => Err(db(e)),
        }
    }

    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        match &self.by_id {
            Some(readers) => readers.get(&id.0).await,
            None => self.fetch_payment(Key::Id, &id.0).await,
        }
    }

    async fn payment_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<Option<Payment>, StoreError> {
        match &self.by_out_trade_no {
            Some(readers) => readers.get(out_trade_no).await,
            None => self.fetch_payment(Key::OutTradeNo, out_trade_no).await,
        }
    }

    async fn refund(&self, out_refund_no: &str) -> Result<Option<Refund>, StoreError> {
        let q = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE out_refund_no = ?");
        let row = sqlx::query(self.sql(&q))
            .bind(out_refund_no.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(refund_from).transpose()
    }

    async fn refunds_of(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        let q = format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ? ORDER BY created_at, id"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(payment_id.0.clone())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(refund_from).collect()
    }

    async fn commit(&self, change: Change) -> Result<Commit, StoreError> {
        match &self.writer {
            Some(writer) => writer.commit(change).await,
            None if self.dialect != Dialect::Sqlite && change.refund.is_none() => {
                match &self.group {
                    Some(group) => group.commit(change).await,
                    None => self.commit_one(&change).await,
                }
            }
            None => {
                let mut conn = self.pool.acquire().await.map_err(db)?;
                let _turn = self.write_turn().await;
                self.commit_alone(&mut conn, &change).await
            }
        }
    }

    async fn claim_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.claim_payments(stale_before, now, lease, limit).await
    }

    async fn claim_refunds_for_reconciliation(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<RefundClaim>, StoreError> {
        self.claim_refunds(stale_before, now, lease, limit).await
    }

    async fn defer_refund(
        &self,
        out_refund_no: &str,
        until: Option<OffsetDateTime>,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql(
            "UPDATE refunds SET reconcile_after = COALESCE(?, reconcile_after), \
             last_error = COALESCE(?, last_error) \
             WHERE out_refund_no = ? AND status IN ('PENDING', 'ABNORMAL')",
        ))
        .bind(until.map(millis))
        .bind(last_error.map(str::to_owned))
        .bind(out_refund_no.to_owned())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn claim_events(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let now_ms = millis(now);
        // Candidates (a plain read), then a conditional update leasing those still pending and
        // unleased: a row another instance claimed meanwhile no longer matches.
        let q = format!(
            "SELECT {EVENT_COLUMNS} FROM outbox WHERE status = 'PENDING' AND next_attempt_at <= ? \
             AND locked_until <= ? ORDER BY next_attempt_at, created_at LIMIT ?"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(now_ms)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let candidates = rows.iter().map(event_from).collect::<Result<Vec<_>, _>>()?;
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let claim = Claim {
            ids: candidates.iter().map(|e| e.id.clone()).collect(),
            until: millis(now + lease),
            now: now_ms,
        };
        let won: std::collections::HashSet<String> = match &self.writer {
            Some(writer) => writer.claim(claim).await?,
            None => self.claim_by_token(&claim).await?,
        }
        .into_iter()
        .collect();
        Ok(candidates
            .into_iter()
            .filter(|e| won.contains(&e.id))
            .collect())
    }

    async fn events_delivered(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        if let Some(writer) = &self.writer {
            return writer.delivered(ids.to_vec()).await;
        }
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut q = sqlx::query(self.sql(&format!(
                "UPDATE outbox SET status = 'DELIVERED', attempts = attempts + 1 WHERE id IN ({marks})"
            )));
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.execute(&self.pool).await.map_err(db)?;
        }
        Ok(())
    }

    fn hand_off_events(
        &self,
        lease: Duration,
        capacity: usize,
    ) -> Option<tokio::sync::mpsc::Receiver<OutboxEvent>> {
        self.hand_off.subscribe(lease, capacity)
    }

    async fn event_delivered(&self, id: &str) -> Result<(), StoreError> {
        self.events_delivered(&[id.to_owned()]).await
    }

    async fn event_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let error: String = error.chars().take(2000).collect();
        let query = match retry_at {
            Some(t) => sqlx::query(self.sql(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, locked_until = 0 \
                 WHERE id = ?",
            ))
            .bind(error)
            .bind(millis(t))
            .bind(id.to_owned()),
            None => sqlx::query(self.sql(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, status = 'DEAD' WHERE id = ?",
            ))
            .bind(error)
            .bind(id.to_owned()),
        };
        query.execute(&self.pool).await.map(|_| ()).map_err(db)
    }

    async fn events(
        &self,
        status: Option<EventStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match status {
            Some(s) => {
                let q = format!("SELECT {EVENT_COLUMNS} FROM outbox WHERE status = ? ORDER BY created_at DESC, id LIMIT ?");
                sqlx::query(self.sql(&q))
                    .bind(s.as_str().to_owned())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                let q = format!("SELECT {EVENT_COLUMNS} FROM outbox ORDER BY created_at DESC, id LIMIT ?");
                sqlx::query(self.sql(&q)).bind(limit).fetch_all(&self.pool).await
            }
        }
        .map_err(db)?;
        rows.iter().map(event_from).collect()
    }

    async fn redeliver(&self, id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(self.sql(
            "UPDATE outbox SET status = 'PENDING', attempts = 0, next_attempt_at = ?, locked_until = 0 \
             WHERE id = ? AND status = 'DEAD'",
        ))
        .bind(millis(OffsetDateTime::now_utc()))
        .bind(id.to_owned())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }
}
