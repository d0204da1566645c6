//! Optional persistence (`--db PATH`): orders and refunds are written to a SQLite table as JSON
//! on every change and loaded at start, so a restarted sandbox still knows them.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// The SQLite file behind the sandbox.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sandbox_records (
                kind TEXT NOT NULL,
                id   TEXT NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (kind, id)
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Store { pool })
    }

    /// Writes `record` as the current version of `kind`/`id`.
    pub async fn save(&self, kind: &str, id: &str, record: &impl Serialize) {
        let body = match serde_json::to_string(record) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(kind, id, error = %e, "cannot serialize a sandbox record");
                return;
            }
        };
        let result = sqlx::query(
            "INSERT INTO sandbox_records (kind, id, body) VALUES (?, ?, ?)
             ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body",
        )
        .bind(kind)
        .bind(id)
        .bind(body)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::error!(kind, id, error = %e, "cannot persist a sandbox record");
        }
    }

    /// Every record of `kind`, with its id.
    pub async fn load<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<Vec<(String, T)>, sqlx::Error> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, body FROM sandbox_records WHERE kind = ? ORDER BY id")
                .bind(kind)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, body)| match serde_json::from_str(&body) {
                Ok(v) => Some((id, v)),
                Err(e) => {
                    tracing::warn!(kind, id, error = %e, "skipping an unreadable sandbox record");
                    None
                }
            })
            .collect())
    }
}
