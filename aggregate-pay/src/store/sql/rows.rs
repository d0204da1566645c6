//! Rows ↔ values: the column lists, times as milliseconds, amounts as fen, the row readers
//! (a value that does not read back is `StoreError::Corrupt`), query arguments, and the JSON
//! batches the grouped statements unpack.

use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::events::{EventKind, EventStatus, OutboxEvent};
use crate::{Fen, PayMethod, Payment, PaymentId, PaymentStatus, Refund, RefundStatus, StoreError};

/// Milliseconds since the epoch (how times are stored).
pub(super) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Now, as stored (whole milliseconds), and as that time.
pub(super) fn now_millis() -> (i64, OffsetDateTime) {
    let now = millis(OffsetDateTime::now_utc());
    (now, from_millis(now))
}

/// The inverse of [`millis`].
pub(super) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// An outbox event as a row of a JSON batch, with the version its payment must have.
#[derive(serde::Serialize)]
pub(super) struct EventRow<'a> {
    id: &'a str,
    kind: &'a str,
    payment_id: &'a str,
    payload: String,
    version: i64,
}

impl<'a> EventRow<'a> {
    pub(super) fn new(e: &'a crate::events::NewEvent, version: i64) -> Self {
        EventRow {
            id: &e.id,
            kind: e.kind.as_str(),
            payment_id: &e.payment_id.0,
            payload: e.stored_data(),
            version,
        }
    }
}

/// A change's payment as a row of a JSON batch: what it must be (id, version) and what it
/// becomes.
#[derive(serde::Serialize)]
pub(super) struct PaymentRow<'a> {
    id: &'a str,
    version: i64,
    status: &'a str,
    channel_transaction_id: Option<&'a str>,
    refunded_amount: i64,
    needs_review: i64,
    open_id: Option<&'a str>,
    metadata: String,
    paid_at: Option<i64>,
    expires_at: Option<i64>,
}

/// The payments and the events of `changes` as rows of JSON batches (the SQLite writer's trip,
/// PostgreSQL's group commit).
pub(super) fn batch_rows(
    changes: &[crate::store::Change],
) -> Result<(Vec<PaymentRow<'_>>, Vec<EventRow<'_>>), StoreError> {
    let mut payments = Vec::with_capacity(changes.len());
    let mut events = Vec::with_capacity(changes.len());
    for c in changes {
        let p = &c.payment;
        payments.push(PaymentRow {
            id: &p.id.0,
            version: p.version,
            status: p.status.as_str(),
            channel_transaction_id: p.channel_transaction_id.as_deref(),
            refunded_amount: amount(p.refunded_amount)?,
            needs_review: i64::from(p.needs_review),
            open_id: p.open_id.as_deref(),
            metadata: p.metadata.to_string(),
            paid_at: p.paid_at.map(millis),
            expires_at: p.expires_at.map(millis),
        });
        events.extend(c.events.iter().map(|e| EventRow::new(e, p.version)));
    }
    Ok((payments, events))
}

/// Rows for a statement that unpacks them from one JSON array (SQLite's `json_each`,
/// PostgreSQL's `json_to_recordset`).
pub(super) fn json(rows: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(rows)
        .map_err(|e| StoreError::Other(format!("cannot encode a batch: {e}")))
}

/// A sqlx error, by kind (for tables of the application's own beside the store's).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        db(e)
    }
}

/// A sqlx error, by kind.
pub(super) fn db(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}

/// A stored value that does not read back.
pub(super) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(super) const PAYMENT_COLUMNS: &str = "id, out_trade_no, channel, channel_account, method, amount, currency, subject, status, \
     channel_transaction_id, refunded_amount, needs_review, open_id, metadata, created_at, updated_at, paid_at, \
     expires_at, version, sub_merchant, platform_fee";
pub(super) const REFUND_COLUMNS: &str = "id, payment_id, out_refund_no, amount, status, channel_refund_id, reason, notify_url, last_error, created_at, updated_at";
pub(super) const EVENT_COLUMNS: &str =
    "id, kind, payment_id, payload, created_at, status, attempts, last_error, next_attempt_at";

pub(super) fn fen(v: i64, what: &str) -> Result<Fen, StoreError> {
    u64::try_from(v)
        .map(Fen::new)
        .map_err(|_| StoreError::Corrupt(format!("negative {what} in the database")))
}

pub(super) fn amount(f: Fen) -> Result<i64, StoreError> {
    i64::try_from(f.as_u64()).map_err(|_| StoreError::Other("amount too large to store".into()))
}

pub(super) fn payment_from(row: &AnyRow) -> Result<Payment, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let method: String = row.try_get("method").map_err(db)?;
    let metadata: String = row.try_get("metadata").map_err(db)?;
    Ok(Payment {
        id: PaymentId(row.try_get("id").map_err(db)?),
        out_trade_no: row.try_get("out_trade_no").map_err(db)?,
        channel: row.try_get("channel").map_err(db)?,
        channel_account: row.try_get("channel_account").map_err(db)?,
        method: PayMethod::parse(&method)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown method {method}")))?,
        amount: fen(row.try_get("amount").map_err(db)?, "amount")?,
        currency: row.try_get("currency").map_err(db)?,
        subject: row.try_get("subject").map_err(db)?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status}")))?,
        channel_transaction_id: row.try_get("channel_transaction_id").map_err(db)?,
        refunded_amount: fen(
            row.try_get("refunded_amount").map_err(db)?,
            "refunded_amount",
        )?,
        needs_review: row.try_get::<i64, _>("needs_review").map_err(db)? != 0,
        open_id: row.try_get("open_id").map_err(db)?,
        metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
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
        sub_merchant: row.try_get("sub_merchant").map_err(db)?,
        platform_fee: fen(row.try_get("platform_fee").map_err(db)?, "platform_fee")?,
        version: row.try_get("version").map_err(db)?,
    })
}

pub(super) fn refund_from(row: &AnyRow) -> Result<Refund, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    Ok(Refund {
        id: row.try_get("id").map_err(db)?,
        payment_id: PaymentId(row.try_get("payment_id").map_err(db)?),
        out_refund_no: row.try_get("out_refund_no").map_err(db)?,
        amount: fen(row.try_get("amount").map_err(db)?, "amount")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown refund status {status}")))?,
        channel_refund_id: row.try_get("channel_refund_id").map_err(db)?,
        reason: row.try_get("reason").map_err(db)?,
        notify_url: row.try_get("notify_url").map_err(db)?,
        last_error: row.try_get("last_error").map_err(db)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        updated_at: from_millis(row.try_get("updated_at").map_err(db)?),
    })
}

pub(super) fn event_from(row: &AnyRow) -> Result<OutboxEvent, StoreError> {
    let status: String = row.try_get("status").map_err(db)?;
    let payload: String = row.try_get("payload").map_err(db)?;
    let kind: String = row.try_get("kind").map_err(db)?;
    Ok(OutboxEvent {
        id: row.try_get("id").map_err(db)?,
        kind: EventKind::parse(&kind),
        payment_id: PaymentId(row.try_get("payment_id").map_err(db)?),
        data: serde_json::from_str(&payload).map_err(corrupt)?,
        created_at: from_millis(row.try_get("created_at").map_err(db)?),
        status: EventStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown event status {status}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?).unwrap_or(u32::MAX),
        last_error: row.try_get("last_error").map_err(db)?,
        next_attempt_at: from_millis(row.try_get("next_attempt_at").map_err(db)?),
    })
}

/// Query arguments, added one after another (an encoding error is kept and reported by
/// [`Args::finish`]).
#[derive(Default)]
pub(super) struct Args {
    args: sqlx::any::AnyArguments,
    error: Option<String>,
}

impl Args {
    pub(super) fn add<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: sqlx::Encode<'t, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        use sqlx::Arguments as _;
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    pub(super) fn finish(self) -> Result<sqlx::any::AnyArguments, StoreError> {
        match self.error {
            Some(e) => Err(StoreError::Other(format!(
                "cannot encode a query argument: {e}"
            ))),
            None => Ok(self.args),
        }
    }
}

/// Adds what a change may alter of a payment, in this order: status, channel transaction id,
/// refunded amount, review flag, openid, metadata, paid at, expires at.
pub(super) fn add_payment_state(args: &mut Args, p: &Payment) -> Result<(), StoreError> {
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

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
