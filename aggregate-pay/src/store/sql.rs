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

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor as _, Row};
use time::OffsetDateTime;

use self::lookups::{Key, PaymentLookups};
use self::writer::{Claim, Writer};
use super::hand_off::{HandOff, leased_until};
use super::{Change, Commit, Insert, PaymentStore, RefundChange};
use crate::events::{EventKind, EventStatus, OutboxEvent};
use crate::{Fen, PayMethod, Payment, PaymentId, PaymentStatus, Refund, RefundStatus, StoreError};

mod lookups;
mod writer;

const SCHEMA_V1: &str = "
CREATE TABLE payments (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    out_trade_no VARCHAR(64) NOT NULL UNIQUE,
    channel VARCHAR(32) NOT NULL,
    channel_account VARCHAR(128) NOT NULL,
    method VARCHAR(32) NOT NULL,
    amount BIGINT NOT NULL,
    currency VARCHAR(8) NOT NULL,
    subject TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    channel_transaction_id VARCHAR(64),
    refunded_amount BIGINT NOT NULL,
    needs_review BIGINT NOT NULL,
    open_id VARCHAR(128),
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    paid_at BIGINT,
    expires_at BIGINT,
    version BIGINT NOT NULL,
    reconcile_after BIGINT NOT NULL
);
CREATE INDEX payments_pending ON payments (status, created_at);
CREATE TABLE refunds (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    payment_id VARCHAR(64) NOT NULL,
    out_refund_no VARCHAR(64) NOT NULL UNIQUE,
    amount BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    channel_refund_id VARCHAR(64),
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE TABLE outbox (
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    kind VARCHAR(64) NOT NULL,
    payment_id VARCHAR(64) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
";

/// Who claimed an outbox event last, so one statement can claim a whole batch.
const SCHEMA_V2: &str = "ALTER TABLE outbox ADD COLUMN claim_token VARCHAR(32);";

/// Milliseconds since the epoch (how times are stored).
fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Now, as stored (whole milliseconds), and as that time.
fn now_millis() -> (i64, OffsetDateTime) {
    let now = millis(OffsetDateTime::now_utc());
    (now, from_millis(now))
}

/// The inverse of [`millis`].
fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

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

/// An outbox event as a row of a JSON batch, with the version its payment must have.
#[derive(serde::Serialize)]
struct EventRow<'a> {
    id: &'a str,
    kind: &'a str,
    payment_id: &'a str,
    payload: String,
    version: i64,
}

impl<'a> EventRow<'a> {
    fn new(e: &'a crate::events::NewEvent, version: i64) -> Self {
        EventRow {
            id: &e.id,
            kind: e.kind.as_str(),
            payment_id: &e.payment_id.0,
            payload: e.payload.to_string(),
            version,
        }
    }
}

/// Rows for a statement that unpacks them from one JSON array (SQLite's `json_each`,
/// PostgreSQL's `json_to_recordset`).
fn json(rows: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError(format!("cannot encode a batch: {e}")))
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

const PAYMENT_COLUMNS: &str = "id, out_trade_no, channel, channel_account, method, amount, currency, subject, status, \
     channel_transaction_id, refunded_amount, needs_review, open_id, metadata, created_at, updated_at, paid_at, \
     expires_at, version";
const REFUND_COLUMNS: &str = "id, payment_id, out_refund_no, amount, status, channel_refund_id, reason, created_at, updated_at";
const EVENT_COLUMNS: &str =
    "id, kind, payment_id, payload, created_at, status, attempts, last_error, next_attempt_at";

fn fen(v: i64, what: &str) -> Result<Fen, StoreError> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| StoreError(format!("negative {what} in the database")))
}

fn amount(f: Fen) -> Result<i64, StoreError> {
    i64::try_from(f.as_u64()).map_err(|_| StoreError("amount too large to store".into()))
}

fn payment_from(row: &AnyRow) -> Result<Payment, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let method: String = row.try_get("method").map_err(db)?;
    let metadata: String = row.try_get("metadata").map_err(db)?;
    Ok(Payment {
        id: PaymentId(row.try_get("id").map_err(db)?),
        out_trade_no: row.try_get("out_trade_no").map_err(db)?,
        channel: row.try_get("channel").map_err(db)?,
        channel_account: row.try_get("channel_account").map_err(db)?,
        method: PayMethod::parse(&method)
            .ok_or_else(|| StoreError(format!("unknown method {method}")))?,
        amount: fen(row.try_get("amount").map_err(db)?, "amount")?,
        currency: row.try_get("currency").map_err(db)?,
        subject: row.try_get("subject").map_err(db)?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError(format!("unknown status {status}")))?,
        channel_transaction_id: row.try_get("channel_transaction_id").map_err(db)?,
        refunded_amount: fen(
            row.try_get("refunded_amount").map_err(db)?,
            "refunded_amount",
        )?,
        needs_review: row.try_get::<i64, _>("needs_review").map_err(db)? != 0,
        open_id: row.try_get("open_id").map_err(db)?,
        metadata: serde_json::from_str(&metadata).map_err(db)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
        paid_at: row
            .try_get::<Option<i64>, _>("paid_at")
            .map_err(db)?
            .map(from_millis),
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")
            .map_err(db)?
            .map(from_millis),
        version: row.try_get("version").map_err(db)?,
    })
}

fn refund_from(row: &AnyRow) -> Result<Refund, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    Ok(Refund {
        id: row.try_get("id").map_err(db)?,
        payment_id: PaymentId(row.try_get("payment_id").map_err(db)?),
        out_refund_no: row.try_get("out_refund_no").map_err(db)?,
        amount: fen(row.try_get("amount").map_err(db)?, "amount")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| StoreError(format!("unknown refund status {status}")))?,
        channel_refund_id: row.try_get("channel_refund_id").map_err(db)?,
        reason: row.try_get("reason").map_err(db)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
    })
}

fn event_from(row: &AnyRow) -> Result<OutboxEvent, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let payload: String = row.try_get("payload").map_err(db)?;
    let kind: String = row.try_get("kind").map_err(db)?;
    Ok(OutboxEvent {
        id: row.try_get("id").map_err(db)?,
        kind: EventKind::parse(&kind),
        payment_id: PaymentId(row.try_get("payment_id").map_err(db)?),
        payload: serde_json::from_str(&payload).map_err(db)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        status: EventStatus::parse(&status)
            .ok_or_else(|| StoreError(format!("unknown event status {status}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error").map_err(db)?,
        next_attempt_at: from_millis(row.try_get("next_attempt_at").map_err(db)?),
    })
}

/// SQLite, per connection: write-ahead log (readers never wait for the writer), fsync at
/// checkpoints rather than at every commit (a committed change survives a crash of the process;
/// an OS crash can lose the last ones, which the reconciler finds again at the channel), wait
/// for the writer instead of failing with SQLITE_BUSY, and no checkpoint inside a commit: the
/// writer's checkpointer task copies the log into the database in the background (see
/// [`writer`]), so that no commit waits for a checkpoint and its fsync.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA wal_autocheckpoint = 0;";

/// Query arguments, added one after another (an encoding error is kept and reported by
/// [`Args::finish`]).
#[derive(Default)]
struct Args {
    args: sqlx::any::AnyArguments,
    error: Option<String>,
}

impl Args {
    fn add<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: sqlx::Encode<'t, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        use sqlx::Arguments as _;
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    fn finish(self) -> Result<sqlx::any::AnyArguments, StoreError> {
        match self.error {
            Some(e) => Err(StoreError(format!("cannot encode a query argument: {e}"))),
            None => Ok(self.args),
        }
    }
}

/// Adds what a change may alter of a payment, in this order: status, channel transaction id,
/// refunded amount, review flag, openid, metadata, paid at, expires at.
fn add_payment_state(args: &mut Args, p: &Payment) -> Result<(), StoreError> {
    args.add(p.status.as_str().to_owned())
        .add(p.channel_transaction_id.clone())
        .add(amount(p.refunded_amount)?)
        .add(i64::from(p.needs_review))
        .add(p.open_id.clone())
        .add(p.metadata.to_string())
        .add(p.paid_at.map(millis))
        .add(p.expires_at.map(millis));
    Ok(())
}

/// A connection a background task keeps to itself: taken out of the pool once, so that a use
/// costs no checkout and no liveness check on return (sqlx pings a connection each time it
/// goes back to the pool; on SQLite that is one more trip to the connection's thread). After
/// an error it is dropped — which also ends a transaction left open — and replaced on next use.
struct Dedicated {
    pool: AnyPool,
    conn: Option<sqlx::AnyConnection>,
}

impl Dedicated {
    fn new(pool: AnyPool) -> Self {
        Dedicated { pool, conn: None }
    }

    async fn get(&mut self) -> Result<&mut sqlx::AnyConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await.map_err(db)?.detach(),
        };
        Ok(self.conn.insert(conn))
    }

    /// `result` of a statement on this connection; an error drops the connection.
    fn checked<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        if result.is_err() {
            self.reset();
        }
        result.map_err(db)
    }

    /// Drops the connection (a new one is taken on next use).
    fn reset(&mut self) {
        self.conn = None;
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

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
                return Err(StoreError(format!(
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
            .map_err(|e| StoreError(format!("cannot connect to the database: {e}")))?;
        let mut store = SqlStore {
            pool,
            dialect,
            writer: None,
            write_gate: (dialect == Dialect::Sqlite).then(Arc::default),
            by_id: None,
            by_out_trade_no: None,
            hand_off: Arc::default(),
        };
        store.migrate().await?;
        // The background tasks work on a plain copy (no writer, no batching of its own).
        let plain = store.clone();
        if dialect == Dialect::Sqlite {
            store.writer = Some(Writer::start(&plain));
        }
        store.by_id = Some(PaymentLookups::start(&plain, Key::Id));
        store.by_out_trade_no = Some(PaymentLookups::start(&plain, Key::OutTradeNo));
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = Migrator::with_migrations(vec![
            Migration::new(
                1,
                Cow::Borrowed("payments, refunds, outbox"),
                MigrationType::Simple,
                AssertSqlSafe(SCHEMA_V1).into_sql_str(),
                false,
            ),
            Migration::new(
                2,
                Cow::Borrowed("outbox claim token"),
                MigrationType::Simple,
                AssertSqlSafe(SCHEMA_V2).into_sql_str(),
                false,
            ),
        ]);
        migrator.dangerous_set_table_name("aggregate_pay_migrations");
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError(format!("cannot migrate the schema: {e}")))
    }

    /// The connection pool, for an application that keeps its own tables in the same database
    /// (one pool, one set of connections).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Migrates an application's own tables (`migrations`: version, description, SQL) under
    /// its own migration table.
    pub async fn migrate_tables(
        &self,
        table_name: &'static str,
        migrations: &[(i64, &'static str, &'static str)],
    ) -> Result<(), StoreError> {
        let mut migrator = Migrator::with_migrations(
            migrations
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        AssertSqlSafe(*sql).into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        migrator.dangerous_set_table_name(table_name);
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError(format!("cannot migrate {table_name}: {e}")))
    }

    /// A query with `?` placeholders, rewritten for the engine (`$1`… on PostgreSQL), for use
    /// with [`SqlStore::pool`].
    pub fn query_text(&self, q: &str) -> AssertSqlSafe<String> {
        self.sql(q)
    }

    /// Writes `change`'s payment and refund on `conn` (inside the caller's transaction; the
    /// caller writes the events). `Conflict` means the payment or refund moved on; the caller
    /// rolls back what this wrote.
    async fn write_change(
        &self,
        conn: &mut sqlx::AnyConnection,
        change: &Change,
        now: i64,
    ) -> Result<Commit, StoreError> {
        let p = &change.payment;
        let mut args = Args::default();
        args.add(now);
        add_payment_state(&mut args, p)?;
        args.add(p.id.0.clone()).add(p.version);
        let updated = sqlx::query_with(
            self.sql(
                "UPDATE payments SET updated_at = ?, status = ?, channel_transaction_id = ?, \
                 refunded_amount = ?, needs_review = ?, open_id = ?, metadata = ?, paid_at = ?, \
                 expires_at = ?, version = version + 1 WHERE id = ? AND version = ?",
            ),
            args.finish()?,
        )
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if updated.rows_affected() != 1 {
            return Ok(Commit::Conflict);
        }
        match &change.refund {
            None => {}
            Some(RefundChange::Insert(r)) => {
                let q = format!(
                    "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                let inserted = sqlx::query(self.sql(&q))
                    .bind(r.id.clone())
                    .bind(r.payment_id.0.clone())
                    .bind(r.out_refund_no.clone())
                    .bind(amount(r.amount)?)
                    .bind(r.status.as_str().to_owned())
                    .bind(r.channel_refund_id.clone())
                    .bind(r.reason.clone())
                    .bind(millis(r.created_at))
                    .bind(millis(r.updated_at))
                    .execute(&mut *conn)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Ok(Commit::Conflict),
                    Err(e) => return Err(db(e)),
                }
            }
            Some(RefundChange::Update {
                refund: r,
                expected,
            }) => {
                let done = sqlx::query(self.sql(
                    "UPDATE refunds SET status = ?, channel_refund_id = ?, updated_at = ? \
                     WHERE out_refund_no = ? AND status = ?",
                ))
                .bind(r.status.as_str().to_owned())
                .bind(r.channel_refund_id.clone())
                .bind(now)
                .bind(r.out_refund_no.clone())
                .bind(expected.as_str().to_owned())
                .execute(&mut *conn)
                .await
                .map_err(db)?;
                if done.rows_affected() != 1 {
                    return Ok(Commit::Conflict);
                }
            }
        }
        Ok(Commit::Committed)
    }

    /// Inserts outbox events, many rows per statement.
    async fn insert_events(
        &self,
        conn: &mut sqlx::AnyConnection,
        events: &[&crate::events::NewEvent],
        now: i64,
        locked_until: i64,
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(256) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let mut q = sqlx::query(self.sql(&format!(
                "INSERT INTO outbox ({EVENT_COLUMNS}, locked_until) VALUES {rows}"
            )));
            for e in chunk {
                q = q
                    .bind(e.id.clone())
                    .bind(e.kind.as_str().to_owned())
                    .bind(e.payment_id.0.clone())
                    .bind(e.payload.to_string())
                    .bind(now)
                    .bind(EventStatus::Pending.as_str().to_owned())
                    .bind(0i64)
                    .bind(None::<String>)
                    .bind(now)
                    .bind(locked_until);
            }
            q.execute(&mut *conn).await.map_err(db)?;
        }
        Ok(())
    }

    /// Waits for this store's turn to write (SQLite only).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    /// One change in its own transaction on `conn` (the caller has its write turn).
    async fn commit_alone(
        &self,
        conn: &mut sqlx::AnyConnection,
        change: &Change,
    ) -> Result<Commit, StoreError> {
        use sqlx::Connection as _;
        let (now, at) = now_millis();
        let mut tx = conn.begin().await.map_err(db)?;
        let events: Vec<_> = change.events.iter().collect();
        match self.write_change(&mut tx, change, now).await? {
            Commit::Committed => {
                self.commit_with_events(tx, events, at).await?;
                Ok(Commit::Committed)
            }
            Commit::Conflict => {
                tx.rollback().await.map_err(db)?;
                Ok(Commit::Conflict)
            }
        }
    }

    /// Several changes in one transaction on `conn`, one after another: each is decided on its
    /// own — a refund step that conflicts after writing something is undone to its savepoint,
    /// a second change to the same payment conflicts with the first — and the others commit
    /// together. Returns `Err` only if the transaction as a whole failed.
    async fn commit_in_steps(
        &self,
        conn: &mut sqlx::AnyConnection,
        changes: &[Change],
    ) -> Result<Vec<Commit>, StoreError> {
        use sqlx::Connection as _;
        let (now, at) = now_millis();
        let mut tx = conn.begin().await.map_err(db)?;
        let mut results = Vec::with_capacity(changes.len());
        for change in changes {
            let guarded = change.refund.is_some();
            if guarded {
                tx.execute("SAVEPOINT change").await.map_err(db)?;
            }
            let result = self.write_change(&mut tx, change, now).await?;
            if guarded {
                if result == Commit::Conflict {
                    tx.execute("ROLLBACK TO SAVEPOINT change")
                        .await
                        .map_err(db)?;
                }
                tx.execute("RELEASE SAVEPOINT change").await.map_err(db)?;
            }
            results.push(result);
        }
        let events: Vec<_> = changes
            .iter()
            .zip(&results)
            .filter(|(_, r)| **r == Commit::Committed)
            .flat_map(|(c, _)| c.events.iter())
            .collect();
        self.commit_with_events(tx, events, at).await?;
        Ok(results)
    }

    /// Records `events` in `tx` at `at` and commits; then hands them to the dispatcher of this
    /// process if it listens and has room (they are stored leased to it, see
    /// [`PaymentStore::hand_off_events`]).
    async fn commit_with_events(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        events: Vec<&crate::events::NewEvent>,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let reserved = self.hand_off.reserve(events.len());
        let until = millis(leased_until(reserved.as_ref(), at));
        self.insert_events(&mut tx, &events, millis(at), until)
            .await?;
        tx.commit().await.map_err(db)?;
        if let Some(r) = reserved {
            r.hand_over(events.into_iter().cloned(), at);
        }
        Ok(())
    }

    /// A payment-only change on PostgreSQL as one statement (so one round trip, committed on
    /// its own): the compare-and-set update of the payment, and its events inserted only if
    /// that update applied, in data-modifying `WITH` clauses that see the same snapshot.
    async fn commit_in_one_statement(&self, change: &Change) -> Result<Commit, StoreError> {
        let (now, at) = now_millis();
        let reserved = self.hand_off.reserve(change.events.len());
        let p = &change.payment;
        let events: Vec<_> = change
            .events
            .iter()
            .map(|e| EventRow::new(e, p.version))
            .collect();
        let mut args = Args::default();
        args.add(now);
        add_payment_state(&mut args, p)?;
        args.add(p.id.0.clone())
            .add(p.version)
            .add(now)
            .add(millis(leased_until(reserved.as_ref(), at)))
            .add(json(&events)?);
        let q = format!(
            "WITH updated AS (UPDATE payments SET updated_at = $1, status = $2, \
             channel_transaction_id = $3, refunded_amount = $4, needs_review = $5, open_id = $6, \
             metadata = $7, paid_at = $8, expires_at = $9, version = version + 1 \
             WHERE id = $10 AND version = $11 RETURNING id), \
             recorded AS (INSERT INTO outbox ({EVENT_COLUMNS}, locked_until) \
             SELECT e.id, e.kind, e.payment_id, e.payload, $12, 'PENDING', 0, NULL, $12, $13 \
             FROM json_to_recordset($14::json) \
             AS e(id text, kind text, payment_id text, payload text) \
             WHERE EXISTS (SELECT 1 FROM updated)) \
             SELECT COUNT(*) AS n FROM updated"
        );
        let updated: i64 = sqlx::query_scalar_with(AssertSqlSafe(q), args.finish()?)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        if updated != 1 {
            return Ok(Commit::Conflict);
        }
        if let Some(r) = reserved {
            r.hand_over(change.events.iter().cloned(), at);
        }
        Ok(Commit::Committed)
    }

    /// Makes `claim` with one conditional `UPDATE` stamping a token of its own (the engines
    /// without a writer task); the ids won. When every candidate was stamped they are all
    /// ours; otherwise the token tells which.
    async fn claim_by_token(&self, claim: &Claim) -> Result<Vec<String>, StoreError> {
        let token = crate::random_hex(16);
        let marks = vec!["?"; claim.ids.len()].join(", ");
        let mut update = sqlx::query(self.sql(&format!(
            "UPDATE outbox SET locked_until = ?, claim_token = ? WHERE id IN ({marks}) \
             AND status = 'PENDING' AND locked_until <= ?"
        )))
        .bind(claim.until)
        .bind(token.clone());
        for id in &claim.ids {
            update = update.bind(id.clone());
        }
        let won = update
            .bind(claim.now)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        if usize::try_from(won).ok() == Some(claim.ids.len()) {
            return Ok(claim.ids.clone());
        }
        let mut mine = sqlx::query_scalar(self.sql(&format!(
            "SELECT id FROM outbox WHERE claim_token = ? AND id IN ({marks})"
        )))
        .bind(token);
        for id in &claim.ids {
            mine = mine.bind(id.clone());
        }
        mine.fetch_all(&self.pool).await.map_err(db)
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

use sqlx::SqlSafeStr as _;

#[async_trait]
impl PaymentStore for SqlStore {
    async fn insert_payment(&self, p: &Payment) -> Result<Insert<Payment>, StoreError> {
        let _turn = self.write_turn().await;
        if let Some(existing) = self.fetch_payment(Key::OutTradeNo, &p.out_trade_no).await? {
            return Ok(Insert::Existing(existing));
        }
        let q = format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}, reconcile_after) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)"
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
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(Insert::Inserted),
            Err(e) if is_unique_violation(&e) => self
                .fetch_payment(Key::OutTradeNo, &p.out_trade_no)
                .await?
                .map(Insert::Existing)
                .ok_or_else(|| StoreError("payment number collision with a different id".into())),
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
            None if self.dialect == Dialect::Postgres && change.refund.is_none() => {
                self.commit_in_one_statement(&change).await
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
        let _turn = self.write_turn().await;
        let now_ms = millis(now);
        let q = format!(
            "SELECT {PAYMENT_COLUMNS}, reconcile_after FROM payments WHERE status = 'PENDING' AND needs_review = 0 \
             AND (created_at < ? OR (expires_at IS NOT NULL AND expires_at <= ?)) AND reconcile_after <= ? \
             ORDER BY created_at LIMIT ?"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(millis(stale_before))
            .bind(now_ms)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let until = millis(now + lease);
        let mut claimed = Vec::new();
        for row in &rows {
            let p = payment_from(row)?;
            let previous: i64 = row.try_get("reconcile_after").map_err(db)?;
            let won = sqlx::query(self.sql(
                "UPDATE payments SET reconcile_after = ? WHERE id = ? AND reconcile_after = ?",
            ))
            .bind(until)
            .bind(p.id.0.clone())
            .bind(previous)
            .execute(&self.pool)
            .await
            .map_err(db)?;
            if won.rows_affected() == 1 {
                claimed.push(p);
            }
        }
        Ok(claimed)
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
