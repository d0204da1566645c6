//! The merchant's "payment received" WeChat messages: an outbox of their own, so a message
//! neither waits for nor depends on the HTTP callback. One row per payment event (its id is the
//! key, so an event handled twice queues one message), claimed with a lease by the sender,
//! retried with backoff, dead after too many failures.

use sqlx::Row;

use super::{DbResult, PlatformDb, corrupt, e, unique_violation};
use crate::platform::callback_data::CallbackData;
use aggregate_pay::StoreError;

pub(super) const SCHEMA_V3: &str = "
CREATE TABLE merchant_messages (
    event_id VARCHAR(64) NOT NULL PRIMARY KEY,
    merchant_id VARCHAR(64) NOT NULL,
    open_id VARCHAR(128) NOT NULL,
    payload TEXT NOT NULL,
    status BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX merchant_messages_due ON merchant_messages (status, next_attempt_at);
";

/// Where a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    /// To send (again).
    Pending,
    /// Sent.
    Sent,
    /// Given up after too many failures.
    Dead,
}

impl MessageStatus {
    fn code(self) -> i64 {
        match self {
            MessageStatus::Pending => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Dead => 2,
        }
    }

    fn from_code(code: i64) -> Self {
        match code {
            0 => MessageStatus::Pending,
            1 => MessageStatus::Sent,
            _ => MessageStatus::Dead,
        }
    }
}

/// A queued message.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedMessage {
    /// The payment event it announces (also WeChat's `client_msg_id`).
    pub event_id: String,
    /// The merchant.
    pub merchant_id: String,
    /// The merchant's bound WeChat user.
    pub open_id: String,
    /// What the message says (the callback's `data`).
    pub payload: CallbackData,
    /// Where it is.
    pub status: MessageStatus,
    /// Attempts so far (this claim included, for a claimed message).
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
}

fn message_from(row: &sqlx::any::AnyRow) -> DbResult<QueuedMessage> {
    let payload: String = row.try_get("payload").map_err(e)?;
    Ok(QueuedMessage {
        event_id: row.try_get("event_id").map_err(e)?,
        merchant_id: row.try_get("merchant_id").map_err(e)?,
        open_id: row.try_get("open_id").map_err(e)?,
        payload: serde_json::from_str(&payload).map_err(corrupt)?,
        status: MessageStatus::from_code(row.try_get("status").map_err(e)?),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(e)?).unwrap_or(0),
        last_error: row.try_get("last_error").map_err(e)?,
    })
}

const COLUMNS: &str = "event_id, merchant_id, open_id, payload, status, attempts, last_error";

impl PlatformDb {
    /// Queues the message of event `event_id`; `false` if it is queued already.
    pub async fn enqueue_message(
        &self,
        event_id: &str,
        merchant_id: &str,
        open_id: &str,
        payload: &CallbackData,
        now: i64,
    ) -> DbResult<bool> {
        let inserted = sqlx::query(self.q(
            "INSERT INTO merchant_messages (event_id, merchant_id, open_id, payload, status, attempts, \
             next_attempt_at, locked_until, last_error, created_at) VALUES (?, ?, ?, ?, 0, 0, ?, 0, NULL, ?)",
        ))
        .bind(event_id.to_owned())
        .bind(merchant_id.to_owned())
        .bind(open_id.to_owned())
        .bind(serde_json::to_string(payload).map_err(|e| StoreError::Other(e.to_string()))?)
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if unique_violation(&err) => Ok(false),
            Err(err) => Err(e(err)),
        }
    }

    /// Claims up to `limit` messages due at `now` for `lease_secs` (each claim is an attempt).
    pub async fn claim_messages(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> DbResult<Vec<QueuedMessage>> {
        let rows = self
            .claim_due(
                "merchant_messages",
                "event_id",
                "status = 0",
                COLUMNS,
                (now, lease_secs, limit),
            )
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut m = message_from(row)?;
            m.attempts += 1;
            claimed.push(m);
        }
        Ok(claimed)
    }

    /// Records a claimed message as sent.
    pub async fn message_sent(&self, event_id: &str) -> DbResult<()> {
        self.message_status(event_id, MessageStatus::Sent, None, 0)
            .await
    }

    /// Records a failed attempt: retried at `retry_at`, or dead when `None`.
    pub async fn message_failed(
        &self,
        event_id: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> DbResult<()> {
        let status = if retry_at.is_some() {
            MessageStatus::Pending
        } else {
            MessageStatus::Dead
        };
        self.message_status(event_id, status, Some(error), retry_at.unwrap_or(0))
            .await
    }

    async fn message_status(
        &self,
        event_id: &str,
        status: MessageStatus,
        error: Option<&str>,
        next_attempt_at: i64,
    ) -> DbResult<()> {
        sqlx::query(self.q(
            "UPDATE merchant_messages SET status = ?, last_error = ?, next_attempt_at = ?, locked_until = 0 \
             WHERE event_id = ?",
        ))
        .bind(status.code())
        .bind(error.map(str::to_owned))
        .bind(next_attempt_at)
        .bind(event_id.to_owned())
        .execute(self.store.pool())
        .await
        .map(|_| ())
        .map_err(e)
    }

    /// The queued message of event `event_id`.
    pub async fn message(&self, event_id: &str) -> DbResult<Option<QueuedMessage>> {
        let row = sqlx::query(self.q(&format!(
            "SELECT {COLUMNS} FROM merchant_messages WHERE event_id = ?"
        )))
        .bind(event_id.to_owned())
        .fetch_optional(self.store.pool())
        .await
        .map_err(e)?;
        row.as_ref().map(message_from).transpose()
    }
}
