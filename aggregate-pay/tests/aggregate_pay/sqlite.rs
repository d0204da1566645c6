//! What only the SQLite store does: the write-ahead log copied into the database by the
//! store's own checkpointer (no commit checkpoints inline).

#![cfg(feature = "sqlite")]

use std::time::Duration;

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, NewPayment, PayMethod};

use crate::support::{sandbox, unique};

#[tokio::test]
async fn the_log_is_copied_into_the_database_in_the_background() {
    let path = std::env::temp_dir().join(format!("{}.db", unique("aggpay-ckpt-")));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store: std::sync::Arc<dyn aggregate_pay::PaymentStore> =
        std::sync::Arc::new(SqlStore::connect(&url).await.unwrap());
    let (_, _, payments) = sandbox(&store);
    // Let the schema reach the file, then note its size.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = std::fs::metadata(&path).unwrap().len();
    for _ in 0..300 {
        payments
            .create(NewPayment::new(
                unique("K"),
                Fen::new(1),
                "a subject long enough to fill pages quickly",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
    }
    // The commits went to the log; within a few checkpoint periods they are in the file.
    let mut after = before;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = std::fs::metadata(&path).unwrap().len();
        if after > before {
            break;
        }
    }
    assert!(
        after > before,
        "the database file did not grow ({before} bytes): the log is never checkpointed"
    );
    drop(payments);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
