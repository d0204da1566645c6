//! Batched point reads of payments.
//!
//! Lookups of payments by one unique column that arrive together are answered by one
//! `SELECT … WHERE column IN (…)` instead of one statement each. Under a burst of notifications,
//! each of which starts by finding its payment, that is one trip to the database (on SQLite, one
//! hand-off to its worker thread) per batch instead of per lookup.
//!
//! A batch is read after every lookup in it was asked for, so a lookup sees every change
//! committed before it was made, as a single read would. Each reader has a connection of its
//! own; lookups queue while it reads, so batches grow with the load and a lone lookup is not
//! delayed.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Dedicated, Dialect, PAYMENT_COLUMNS, SqlStore, json, payment_from};
use crate::{Payment, StoreError};

/// A unique column payments are looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// Our id.
    Id,
    /// The number the channel knows.
    OutTradeNo,
}

impl Key {
    pub(super) fn column(self) -> &'static str {
        match self {
            Key::Id => "id",
            Key::OutTradeNo => "out_trade_no",
        }
    }

    fn of(self, p: &Payment) -> &str {
        match self {
            Key::Id => &p.id.0,
            Key::OutTradeNo => &p.out_trade_no,
        }
    }
}

type LookupRequest = (String, oneshot::Sender<Result<Option<Payment>, StoreError>>);

/// Lookups per batch at most.
const LOOKUP_MAX: usize = 64;
/// Readers (batches read at once) per key. One: measured with the notify benchmark on two
/// cores, a second reader cost more CPU than its overlap saved (30% vs 33% of `/healthz`).
const READERS: usize = 1;

/// The batcher of lookups by one key.
#[derive(Debug, Clone)]
pub(super) struct PaymentLookups {
    queue: mpsc::Sender<LookupRequest>,
}

impl PaymentLookups {
    /// Starts the readers of lookups by `key` over `store` (which must not itself batch), on
    /// the current Tokio runtime. They stop when the last handle is dropped.
    pub(super) fn start(store: &SqlStore, key: Key) -> Self {
        let (queue, requests) = mpsc::channel::<LookupRequest>(1024);
        let requests = Arc::new(Mutex::new(requests));
        for _ in 0..READERS {
            let (store, requests) = (store.clone(), requests.clone());
            tokio::spawn(async move {
                let mut conn = Dedicated::new(store.pool.clone());
                loop {
                    // One reader at a time takes what has queued; any other is reading.
                    let batch = {
                        let mut requests = requests.lock().await;
                        let Some(first) = requests.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < LOOKUP_MAX {
                            match requests.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    let keys: Vec<&str> = batch.iter().map(|(k, _)| k.as_str()).collect();
                    match store.fetch_payments(&mut conn, key, &keys).await {
                        Ok(found) => {
                            // The same key may be asked for more than once.
                            for (k, reply) in batch {
                                let _ = reply.send(Ok(found.get(&k).cloned()));
                            }
                        }
                        Err(e) => {
                            for (_, reply) in batch {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                }
            });
        }
        PaymentLookups { queue }
    }

    /// The payment whose key is `key`.
    pub(super) async fn get(&self, key: &str) -> Result<Option<Payment>, StoreError> {
        let stopped = || StoreError::Unavailable("the payment readers stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((key.to_owned(), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl SqlStore {
    /// The payments whose `key` is one of `keys`, by that key. On SQLite the keys travel as
    /// one JSON array (`json_each`), elsewhere as a list of placeholders padded (with the last
    /// key) to a power of two; either way few distinct statements reach the statement cache.
    async fn fetch_payments(
        &self,
        conn: &mut Dedicated,
        key: Key,
        keys: &[&str],
    ) -> Result<HashMap<String, Payment>, StoreError> {
        let Some(last) = keys.last() else {
            return Ok(HashMap::new());
        };
        let column = key.column();
        let query = if self.dialect == Dialect::Sqlite {
            let list = json(&keys)?;
            sqlx::query(self.sql(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments \
                 WHERE {column} IN (SELECT value FROM json_each(?))"
            )))
            .bind(list)
        } else {
            let size = keys.len().next_power_of_two();
            let marks = vec!["?"; size].join(", ");
            let mut query = sqlx::query(self.sql(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {column} IN ({marks})"
            )));
            for k in keys
                .iter()
                .chain(std::iter::repeat_n(last, size - keys.len()))
            {
                query = query.bind((*k).to_owned());
            }
            query
        };
        let fetched = query.fetch_all(conn.get().await?).await;
        let rows = conn.checked(fetched)?;
        rows.iter()
            .map(|row| {
                let p = payment_from(row)?;
                Ok((key.of(&p).to_owned(), p))
            })
            .collect()
    }
}
