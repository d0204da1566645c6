//! [`BillStore`] on SQL: the lookups of bill rows (one `IN` list per chunk), the day's pages
//! (keyset on the `payments_paid` / `refunds_changed` indexes, two seeks a page), and the runs
//! and items (replaced by key, in one transaction per call).

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::any::AnyRow;
use time::{Date, OffsetDateTime};

use super::rows::{amount, db, fen, from_millis, millis, refund_from};
use super::{Dialect, REFUND_COLUMNS, SqlStore, json};
use crate::bills::{BillClass, BillItem, BillRun, BillRunStatus};
use crate::channels::BillEntryKind;
use crate::store::{BillStore, DayCursor, PaymentBrief, RefundOfChannel};
use crate::{PaymentId, PaymentStatus, Refund, StoreError};

const DAY: &[time::format_description::BorrowedFormatItem<'_>] =
    time::macros::format_description!("[year]-[month]-[day]");

fn day_text(d: Date) -> String {
    d.format(DAY).unwrap_or_default()
}

fn day_from(s: &str) -> Result<Date, StoreError> {
    Date::parse(s, DAY).map_err(|e| StoreError::Corrupt(format!("bill day {s:?}: {e}")))
}

impl SqlStore {
    /// `select` (ending in `IN`) with `keys` as its list: one JSON array on SQLite, padded
    /// placeholders elsewhere.
    async fn rows_in(&self, select: &str, keys: &[String]) -> Result<Vec<AnyRow>, StoreError> {
        let Some(last) = keys.last() else {
            return Ok(Vec::new());
        };
        if self.dialect == Dialect::Sqlite {
            return sqlx::query(self.sql(&format!("{select} (SELECT value FROM json_each(?))")))
                .bind(json(&keys)?)
                .fetch_all(&self.pool)
                .await
                .map_err(db);
        }
        let size = keys.len().next_power_of_two();
        let marks = vec!["?"; size].join(", ");
        let mut query = sqlx::query(self.sql(&format!("{select} ({marks})")));
        for k in keys
            .iter()
            .chain(std::iter::repeat_n(last, size - keys.len()))
        {
            query = query.bind(k.clone());
        }
        query.fetch_all(&self.pool).await.map_err(db)
    }
}

/// A page of a day in (`time`, `number`) order: `select` ends in a condition with one
/// placeholder, bound to `filter`.
struct DayPage<'a> {
    select: String,
    time: &'static str,
    number: &'static str,
    filter: &'a str,
}

impl SqlStore {
    /// Up to `limit` rows of `page` in `[from, to)` after `after`: the rest of the cursor's
    /// instant (`time = ? AND number > ?`), then the later instants (`time > ?`) — each an index
    /// seek on every engine, so a page costs its own rows however far into the day (a row-value
    /// comparison is not a seek on SQLite when many rows share an instant).
    async fn day_page(
        &self,
        page: &DayPage<'_>,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let (select, time, number) = (&page.select, page.time, page.number);
        let mut rows = Vec::new();
        if let Some((at, no)) = after {
            let q =
                format!("{select} AND {time} = ? AND {number} > ? ORDER BY {number} LIMIT {limit}");
            rows = sqlx::query(self.sql(&q))
                .bind(page.filter.to_owned())
                .bind(millis(*at))
                .bind(no.clone())
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        }
        let rest = limit - rows.len().min(limit);
        if rest == 0 {
            return Ok(rows);
        }
        let (lower, op) = match after {
            Some((at, _)) => (millis(*at), ">"),
            None => (millis(from), ">="),
        };
        let q = format!(
            "{select} AND {time} {op} ? AND {time} < ? ORDER BY {time}, {number} LIMIT {rest}"
        );
        rows.extend(
            sqlx::query(self.sql(&q))
                .bind(page.filter.to_owned())
                .bind(lower)
                .bind(millis(to))
                .fetch_all(&self.pool)
                .await
                .map_err(db)?,
        );
        Ok(rows)
    }
}

const BRIEF_COLUMNS: &str = "id, out_trade_no, channel, amount, currency, status, paid_at";

fn brief_from(row: &AnyRow) -> Result<PaymentBrief, StoreError> {
    let status: String = row.try_get(5).map_err(db)?;
    Ok(PaymentBrief {
        id: PaymentId(row.try_get(0).map_err(db)?),
        out_trade_no: row.try_get(1).map_err(db)?,
        channel: row.try_get(2).map_err(db)?,
        amount: fen(row.try_get(3).map_err(db)?, "amount")?,
        currency: row.try_get(4).map_err(db)?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status}")))?,
        paid_at: row
            .try_get::<Option<i64>, _>(6)
            .map_err(db)?
            .map(from_millis),
    })
}

fn run_from(row: &AnyRow) -> Result<BillRun, StoreError> {
    let day: String = row.try_get("day").map_err(db)?;
    let status: String = row.try_get("status").map_err(db)?;
    let counts: String = row.try_get("counts").map_err(db)?;
    let totals: String = row.try_get("totals").map_err(db)?;
    let mut run = BillRun::new(
        day_from(&day)?,
        row.try_get::<String, _>("channel").map_err(db)?,
    );
    run.status = BillRunStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown bill run status {status}")))?;
    run.counts = serde_json::from_str(&counts).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    run.totals = serde_json::from_str(&totals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    run.settled = u64::try_from(row.try_get::<i64, _>("settled").map_err(db)?).unwrap_or(0);
    run.rows_done = u64::try_from(row.try_get::<i64, _>("rows_done").map_err(db)?).unwrap_or(0);
    run.bill_sha256 = row.try_get("bill_sha256").map_err(db)?;
    run.attempts = u32::try_from(row.try_get::<i64, _>("attempts").map_err(db)?).unwrap_or(0);
    run.last_error = row.try_get("last_error").map_err(db)?;
    run.started_at = from_millis(row.try_get("started_at").map_err(db)?);
    run.finished_at = row
        .try_get::<Option<i64>, _>("finished_at")
        .map_err(db)?
        .map(from_millis);
    Ok(run)
}

fn item_from(row: &AnyRow) -> Result<BillItem, StoreError> {
    let day: String = row.try_get("day").map_err(db)?;
    let kind: String = row.try_get("kind").map_err(db)?;
    let class: String = row.try_get("class").map_err(db)?;
    let opt_fen = |column: &str| -> Result<Option<crate::Fen>, StoreError> {
        row.try_get::<Option<i64>, _>(column)
            .map_err(db)?
            .map(|v| fen(v, column))
            .transpose()
    };
    Ok(BillItem {
        day: day_from(&day)?,
        channel: row.try_get("channel").map_err(db)?,
        kind: BillEntryKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown bill item kind {kind}")))?,
        out_trade_no: row.try_get("out_trade_no").map_err(db)?,
        out_refund_no: row.try_get("out_refund_no").map_err(db)?,
        class: BillClass::parse(&class)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown bill class {class}")))?,
        settled: row.try_get::<i64, _>("settled").map_err(db)? != 0,
        bill_amount: opt_fen("bill_amount")?,
        store_amount: opt_fen("store_amount")?,
        detail: row.try_get("detail").map_err(db)?,
        found_at: from_millis(row.try_get("found_at").map_err(db)?),
    })
}

const RUN_COLUMNS: &str = "day, channel, status, counts, settled, totals, rows_done, bill_sha256, attempts, last_error, started_at, finished_at";
const ITEM_COLUMNS: &str = "day, channel, kind, number, out_trade_no, out_refund_no, class, settled, bill_amount, store_amount, detail, found_at";

fn opt_amount(a: Option<crate::Fen>) -> Result<Option<i64>, StoreError> {
    a.map(amount).transpose()
}

#[async_trait]
impl BillStore for SqlStore {
    async fn payments_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<PaymentBrief>, StoreError> {
        let select = format!("SELECT {BRIEF_COLUMNS} FROM payments WHERE out_trade_no IN");
        self.rows_in(&select, numbers)
            .await?
            .iter()
            .map(brief_from)
            .collect()
    }

    async fn refunds_by_numbers(
        &self,
        numbers: &[String],
    ) -> Result<Vec<RefundOfChannel>, StoreError> {
        let columns: Vec<String> = REFUND_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c} AS {c}"))
            .collect();
        let select = format!(
            "SELECT {}, p.channel AS payment_channel FROM refunds r \
             JOIN payments p ON p.id = r.payment_id WHERE r.out_refund_no IN",
            columns.join(", ")
        );
        self.rows_in(&select, numbers)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    refund_from(row)?,
                    row.try_get("payment_channel").map_err(db)?,
                ))
            })
            .collect()
    }

    async fn paid_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<PaymentBrief>, StoreError> {
        let page = DayPage {
            select: format!("SELECT {BRIEF_COLUMNS} FROM payments WHERE channel = ?"),
            time: "paid_at",
            number: "out_trade_no",
            filter: channel,
        };
        self.day_page(&page, from, to, after, limit)
            .await?
            .iter()
            .map(brief_from)
            .collect()
    }

    async fn refunds_succeeded_between(
        &self,
        channel: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
        after: Option<&DayCursor>,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError> {
        let columns: Vec<String> = REFUND_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c} AS {c}"))
            .collect();
        let page = DayPage {
            select: format!(
                "SELECT {} FROM refunds r JOIN payments p ON p.id = r.payment_id \
                 WHERE r.status = 'SUCCEEDED' AND p.channel = ?",
                columns.join(", ")
            ),
            time: "r.updated_at",
            number: "r.out_refund_no",
            filter: channel,
        };
        self.day_page(&page, from, to, after, limit)
            .await?
            .iter()
            .map(refund_from)
            .collect()
    }

    async fn bill_run(&self, day: Date, channel: &str) -> Result<Option<BillRun>, StoreError> {
        let q = format!("SELECT {RUN_COLUMNS} FROM bill_runs WHERE day = ? AND channel = ?");
        let row = sqlx::query(self.sql(&q))
            .bind(day_text(day))
            .bind(channel.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        row.as_ref().map(run_from).transpose()
    }

    async fn save_bill_run(&self, run: &BillRun) -> Result<(), StoreError> {
        let counts = json(&run.counts)?;
        let totals = json(&run.totals)?;
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query(self.sql("DELETE FROM bill_runs WHERE day = ? AND channel = ?"))
            .bind(day_text(run.day))
            .bind(run.channel.clone())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let q = format!(
            "INSERT INTO bill_runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(self.sql(&q))
            .bind(day_text(run.day))
            .bind(run.channel.clone())
            .bind(run.status.as_str())
            .bind(counts)
            .bind(i64::try_from(run.settled).unwrap_or(i64::MAX))
            .bind(totals)
            .bind(i64::try_from(run.rows_done).unwrap_or(i64::MAX))
            .bind(run.bill_sha256.clone())
            .bind(i64::from(run.attempts))
            .bind(run.last_error.clone())
            .bind(millis(run.started_at))
            .bind(run.finished_at.map(millis))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn bill_runs(
        &self,
        channel: Option<&str>,
        limit: usize,
    ) -> Result<Vec<BillRun>, StoreError> {
        let filter = if channel.is_some() {
            "WHERE channel = ?"
        } else {
            ""
        };
        let q = format!(
            "SELECT {RUN_COLUMNS} FROM bill_runs {filter} ORDER BY day DESC, channel LIMIT {limit}"
        );
        let mut query = sqlx::query(self.sql(&q));
        if let Some(c) = channel {
            query = query.bind(c.to_owned());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(run_from).collect()
    }

    async fn save_bill_items(&self, items: &[BillItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let insert = format!(
            "INSERT INTO bill_items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        for item in items {
            let (kind, number) = item.key();
            sqlx::query(self.sql(
                "DELETE FROM bill_items WHERE day = ? AND channel = ? AND kind = ? AND number = ?",
            ))
            .bind(day_text(item.day))
            .bind(item.channel.clone())
            .bind(kind.as_str())
            .bind(number.clone())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(self.sql(&insert))
                .bind(day_text(item.day))
                .bind(item.channel.clone())
                .bind(kind.as_str())
                .bind(number)
                .bind(item.out_trade_no.clone())
                .bind(item.out_refund_no.clone())
                .bind(item.class.as_str())
                .bind(i64::from(item.settled))
                .bind(opt_amount(item.bill_amount)?)
                .bind(opt_amount(item.store_amount)?)
                .bind(item.detail.clone())
                .bind(millis(item.found_at))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn bill_items(&self, day: Date, channel: &str) -> Result<Vec<BillItem>, StoreError> {
        let q = format!(
            "SELECT {ITEM_COLUMNS} FROM bill_items WHERE day = ? AND channel = ? ORDER BY kind, number"
        );
        let rows = sqlx::query(self.sql(&q))
            .bind(day_text(day))
            .bind(channel.to_owned())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter().map(item_from).collect()
    }
}
