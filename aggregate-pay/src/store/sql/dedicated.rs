//! Connections background tasks keep to themselves.

use sqlx::AnyPool;

use super::rows::db;
use crate::StoreError;

/// A connection a background task keeps to itself: taken out of the pool once, so that a use
/// costs no checkout and no liveness check on return (sqlx pings a connection each time it
/// goes back to the pool; on SQLite that is one more trip to the connection's thread). After
/// an error it is dropped — which also ends a transaction left open — and replaced on next use.
pub(super) struct Dedicated {
    pool: AnyPool,
    conn: Option<sqlx::AnyConnection>,
}

impl Dedicated {
    pub(super) fn new(pool: AnyPool) -> Self {
        Dedicated { pool, conn: None }
    }

    pub(super) async fn get(&mut self) -> Result<&mut sqlx::AnyConnection, StoreError> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await.map_err(db)?.detach(),
        };
        Ok(self.conn.insert(conn))
    }

    /// `result` of a statement on this connection; an error drops the connection.
    pub(super) fn checked<T>(&mut self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        if result.is_err() {
            self.reset();
        }
        result.map_err(db)
    }

    /// Drops the connection (a new one is taken on next use).
    pub(super) fn reset(&mut self) {
        self.conn = None;
    }
}
