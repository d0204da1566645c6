//! The write paths: a change (payment, refund, events) in one transaction — alone, in steps
//! with savepoints, or on PostgreSQL as one statement — and outbox claims by token.

use sqlx::{AssertSqlSafe, Executor as _};
use time::OffsetDateTime;

use super::SqlStore;
use super::rows::*;
use super::writer::Claim;
use crate::StoreError;
use crate::events::EventStatus;
use crate::store::hand_off::leased_until;
use crate::store::{Change, Commit, RefundChange};

impl SqlStore {
    /// Writes `change`'s payment and refund on `conn` (inside the caller's transaction; the
    /// caller writes the events). `Conflict` means the payment or refund moved on; the caller
    /// rolls back what this wrote.
    pub(super) async fn write_change(
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
                    "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                );
                let inserted = sqlx::query(self.sql(&q))
                    .bind(r.id.clone())
                    .bind(r.payment_id.0.clone())
                    .bind(r.out_refund_no.clone())
                    .bind(amount(r.amount)?)
                    .bind(r.status.as_str().to_owned())
                    .bind(r.channel_refund_id.clone())
                    .bind(r.reason.clone())
                    .bind(r.notify_url.clone())
                    .bind(r.last_error.clone())
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
                    "UPDATE refunds SET status = ?, channel_refund_id = ?, last_error = ?, \
                     updated_at = ? WHERE out_refund_no = ? AND status = ?",
                ))
                .bind(r.status.as_str().to_owned())
                .bind(r.channel_refund_id.clone())
                .bind(r.last_error.clone())
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
    pub(super) async fn insert_events(
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
                    .bind(e.stored_data())
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

    /// One change in its own transaction on `conn` (the caller has its write turn).
    pub(super) async fn commit_alone(
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
    pub(super) async fn commit_in_steps(
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
    pub(super) async fn commit_with_events(
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
    pub(super) async fn commit_in_one_statement(
        &self,
        change: &Change,
    ) -> Result<Commit, StoreError> {
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
    pub(super) async fn claim_by_token(&self, claim: &Claim) -> Result<Vec<String>, StoreError> {
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
}
