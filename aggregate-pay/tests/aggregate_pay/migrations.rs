//! The store's migrations on data an older version wrote.

#![cfg(feature = "sql")]

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::store::{PaymentStore, SqlStore};
use aggregate_pay::{
    ChannelError, Fen, NotifyProcessor, PaymentStatus, Reconciler, RefundStatus, service,
};
use sqlx::{AssertSqlSafe, Executor};

use crate::support::{paid_payment, sandbox, unique};

/// A fresh database of every SQL engine here.
async fn databases() -> Vec<(&'static str, String)> {
    let mut list = Vec::new();
    #[cfg(feature = "sqlite")]
    {
        let path = std::env::temp_dir().join(format!("{}.db", unique("aggpay-mig-")));
        list.push(("sqlite", format!("sqlite://{}?mode=rwc", path.display())));
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = crate::support::engine_url("TEST_POSTGRES_URL") {
        list.push(("postgres", crate::support::fresh_database(&url).await));
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = crate::support::engine_url("TEST_MYSQL_URL") {
        list.push(("mysql", crate::support::fresh_database(&url).await));
    }
    list
}

/// Issue 27, finding 1, for refunds already lost: an older version recorded a refund FAILED on
/// what was only a temporary error ("retry after a minute"). Schema version 4 re-opens it and
/// the reconciler sends it again with the same number: the buyer is refunded, once.
#[tokio::test]
async fn version_4_reopens_refunds_an_older_version_failed() {
    let databases = databases().await;
    assert!(!databases.is_empty(), "no SQL engine compiled in");
    for (engine, url) in databases {
        eprintln!("{engine}");
        let store: Arc<dyn PaymentStore> = Arc::new(SqlStore::connect(&url).await.unwrap());
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels.clone(), store.clone());
        let p = paid_payment(&payments, &channel, &processor, "MG", 350).await;
        // What the older version did with INVALID_REQ_TOO_MUCH: a refusal, the refund FAILED.
        channel.fail_next_refund(
            ChannelError::Rejected {
                code: "INVALID_REQ_TOO_MUCH".into(),
                message: "无效请求过多".into(),
            },
            false,
        );
        let no = unique("R");
        payments
            .refund(&p.id, &no, Fen::new(350), None, None)
            .await
            .unwrap_err();
        assert_eq!(
            payments.get(&p.id).await.unwrap().status,
            PaymentStatus::Paid
        );
        // Back to the older version's schema: no `last_error`, version 4 not applied.
        {
            let sql = SqlStore::connect(&url).await.unwrap();
            for q in [
                "UPDATE refunds SET last_error = NULL",
                "ALTER TABLE refunds DROP COLUMN last_error",
                "DELETE FROM aggregate_pay_migrations WHERE version = 4",
            ] {
                sql.pool().execute(AssertSqlSafe(q)).await.unwrap();
            }
        }
        // The new version starts on that database.
        let store: Arc<dyn PaymentStore> = Arc::new(SqlStore::connect(&url).await.unwrap());
        let r = store.refund(&no).await.unwrap().unwrap();
        assert_eq!(r.status, RefundStatus::Pending, "{engine}: re-opened");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with(service::UNVERIFIED_FAILURE)),
            "{engine}: {r:?}"
        );
        let payment = store.payment(&p.id).await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunding, "{engine}");
        let payments = aggregate_pay::Payments::new(channels.clone(), store.clone());
        let second = payments
            .refund(&p.id, &unique("R"), Fen::new(350), None, None)
            .await;
        assert!(
            second.is_err(),
            "{engine}: the money is held by the re-opened refund"
        );

        tokio::time::sleep(Duration::from_millis(2)).await;
        let report = Reconciler::new(channels.clone(), store.clone(), Duration::ZERO)
            .refund_backoff(Duration::ZERO, Duration::ZERO)
            .run_once()
            .await
            .unwrap();
        assert_eq!(report.refunds_succeeded, 1, "{engine}: {report:?}");
        assert_eq!(
            channel.refunded(&p.out_trade_no),
            Some(Fen::new(350)),
            "{engine}: refunded, once"
        );
        let payment = store.payment(&p.id).await.unwrap().unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunded, "{engine}");
        assert_eq!(payment.refunded_amount, Fen::new(350));
    }
}
