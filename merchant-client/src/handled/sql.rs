//! [`SqlHandledEvents`]: handled callback events in the merchant's own database (PostgreSQL,
//! MySQL / MariaDB or SQLite, through sqlx's `Any` driver), one row per event:
//! `(event_id, state 'taken' | 'done', until_ms)`. A claim is an insert (the primary key settles
//! a race), or a compare-and-set on a row whose time ran out.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool};
use sqlx::{AssertSqlSafe, Executor, Row};

use crate::{Claim, HandledEvents, StoreError};

const TAKEN: &str = "taken";
const DONE: &str = "done";

fn store(e: sqlx::Error) -> StoreError {
    StoreError::new(e)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Handled callback events in a SQL table (`merchant_handled_events` unless named otherwise),
/// shared by every instance on the same database. `Debug` names the table only (never the
/// pool's connection settings).
#[derive(Clone)]
pub struct SqlHandledEvents {
    pool: AnyPool,
    postgres: bool,
    table: String,
}

impl std::fmt::Debug for SqlHandledEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlHandledEvents")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl SqlHandledEvents {
    /// Connects to `url` (`postgres://…`, `mysql://…`, `sqlite://…`) and creates the table if it
    /// is missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(5)
            .connect(url)
            .await
            .map_err(store)?;
        Self::new(pool).await
    }

    /// On the merchant's `pool` (its application's own), creating the table if it is missing.
    pub async fn new(pool: AnyPool) -> Result<Self, StoreError> {
        Self::with_table(pool, "merchant_handled_events").await
    }

    /// The same, in table `table` (letters, digits and `_` only).
    pub async fn with_table(pool: AnyPool, table: &str) -> Result<Self, StoreError> {
        if table.is_empty()
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(StoreError::new(format!("not a table name: {table:?}")));
        }
        let backend = pool
            .acquire()
            .await
            .map_err(store)?
            .backend_name()
            .to_owned();
        let events = SqlHandledEvents {
            pool,
            postgres: backend == "PostgreSQL",
            table: table.to_owned(),
        };
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} (event_id VARCHAR(191) NOT NULL PRIMARY KEY, \
             state VARCHAR(8) NOT NULL, until_ms BIGINT NOT NULL)",
            events.table
        );
        events
            .pool
            .execute(AssertSqlSafe(create))
            .await
            .map_err(store)?;
        Ok(events)
    }

    /// `q` with `?` placeholders, numbered for PostgreSQL, the table named.
    fn sql(&self, q: &str) -> AssertSqlSafe<String> {
        let q = q.replace("{table}", &self.table);
        if !self.postgres {
            return AssertSqlSafe(q);
        }
        let mut out = String::with_capacity(q.len() + 8);
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

    /// Records event `id` handled on `conn` — inside the transaction that handled it, so the
    /// event and its effects are committed together (or neither): `&mut *tx` of the merchant's
    /// `sqlx::Transaction<'_, Any>` on the same database. [`crate::Callbacks::handle`] records it
    /// again after the handler returns, which changes nothing.
    pub async fn mark_handled_in(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let until = now_ms().saturating_add(super::millis(keep));
        let updated =
            sqlx::query(self.sql("UPDATE {table} SET state = ?, until_ms = ? WHERE event_id = ?"))
                .bind(DONE)
                .bind(until)
                .bind(id.to_owned())
                .execute(&mut *conn)
                .await
                .map_err(store)?;
        if updated.rows_affected() > 0 {
            return Ok(());
        }
        let inserted = sqlx::query(
            self.sql("INSERT INTO {table} (event_id, state, until_ms) VALUES (?, ?, ?)"),
        )
        .bind(id.to_owned())
        .bind(DONE)
        .bind(until)
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if unique_violation(&e) => Ok(()),
            Err(e) => Err(store(e)),
        }
    }

    /// Deletes the rows whose time ran out (handled events past their keep period, claims past
    /// their lease): how many. Run it now and then.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(self.sql("DELETE FROM {table} WHERE until_ms < ?"))
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(store)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl HandledEvents for SqlHandledEvents {
    async fn claim(&self, id: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = now_ms();
        let until = now.saturating_add(super::millis(lease));
        let inserted = sqlx::query(
            self.sql("INSERT INTO {table} (event_id, state, until_ms) VALUES (?, ?, ?)"),
        )
        .bind(id.to_owned())
        .bind(TAKEN)
        .bind(until)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => return Ok(Claim::Taken),
            Err(e) if unique_violation(&e) => {}
            Err(e) => return Err(store(e)),
        }
        let row = sqlx::query(self.sql("SELECT state, until_ms FROM {table} WHERE event_id = ?"))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(store)?;
        let Some(row) = row else {
            // Released or pruned between the two statements: the platform retries.
            return Ok(Claim::Busy);
        };
        let state: String = row.try_get("state").map_err(store)?;
        let was: i64 = row.try_get("until_ms").map_err(store)?;
        if was > now {
            return Ok(if state == DONE {
                Claim::Handled
            } else {
                Claim::Busy
            });
        }
        // Its time ran out (a lease, or a handled event past its keep): take it over, once.
        let taken = sqlx::query(self.sql(
            "UPDATE {table} SET state = ?, until_ms = ? WHERE event_id = ? AND state = ? \
             AND until_ms = ?",
        ))
        .bind(TAKEN)
        .bind(until)
        .bind(id.to_owned())
        .bind(state)
        .bind(was)
        .execute(&self.pool)
        .await
        .map_err(store)?;
        Ok(if taken.rows_affected() == 1 {
            Claim::Taken
        } else {
            Claim::Busy
        })
    }

    async fn handled(&self, id: &str, keep: Duration) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(store)?;
        self.mark_handled_in(&mut conn, id, keep).await
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(self.sql("DELETE FROM {table} WHERE event_id = ? AND state = ?"))
            .bind(id.to_owned())
            .bind(TAKEN)
            .execute(&self.pool)
            .await
            .map_err(store)?;
        Ok(())
    }
}
