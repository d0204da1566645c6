//! What only the SQLite store does: the write-ahead log copied into the database by the
//! store's own checkpointer (no commit checkpoints inline), and cut back once copied.

#![cfg(feature = "sqlite")]

use std::time::Duration;

use aggregate_pay::store::SqlStore;
use aggregate_pay::{Fen, NewPayment, PayMethod, Payments};

use crate::support::{sandbox, unique};

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn create(payments: &Payments, subject: &str) {
    payments
        .create(NewPayment::new(
            unique("K"),
            Fen::new(1),
            subject,
            PayMethod::Sandbox,
            "http://n",
        ))
        .await
        .unwrap();
}

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
        create(&payments, "a subject long enough to fill pages quickly").await;
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

#[tokio::test]
async fn the_log_starts_over_small_once_copied() {
    let path = std::env::temp_dir().join(format!("{}.db", unique("aggpay-wal-")));
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store: std::sync::Arc<dyn aggregate_pay::PaymentStore> =
        std::sync::Arc::new(SqlStore::connect(&url).await.unwrap());
    let (_, _, payments) = sandbox(&store);
    // A burst between two checkpoints grows the log to many pages.
    let subject = "x".repeat(2000);
    let mut peak = 0;
    for _ in 0..200 {
        create(&payments, &subject).await;
        peak = peak.max(file_len(&wal));
    }
    assert!(
        peak > 256 * 1024,
        "the burst did not grow the log ({peak} bytes)"
    );
    // Once the checkpointer has copied it, the next commit starts the log over, at its start:
    // the file is cut back to that commit's frames, not left at the burst's size.
    let mut now = peak;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        create(&payments, "one more").await;
        now = file_len(&wal);
        if now < 64 * 1024 {
            break;
        }
    }
    assert!(
        now < 64 * 1024,
        "the log kept its size after being copied ({now} bytes, {peak} at the burst)"
    );
    drop(payments);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
