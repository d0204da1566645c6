//! Stores to run every test against, a store that fails on demand, and a sandbox setup.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::events::{EventStatus, OutboxEvent};
use aggregate_pay::sharing::ShareStore;
use aggregate_pay::store::{BillStore, Change, Commit, Insert, PaymentStore, RefundClaim};
use aggregate_pay::{Channels, MemoryStore, Payment, PaymentId, Payments, Refund, StoreError};
use async_trait::async_trait;
use time::OffsetDateTime;

pub fn unique(prefix: &str) -> String {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}{}",
        nanos % 1_000_000_000,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A new, empty database next to the one `url` names (PostgreSQL / MySQL).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub async fn fresh_database(url: &str) -> String {
    use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let name = unique("aggpay_test_").to_lowercase();
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    format!("{prefix}/{name}{query}")
}

/// Every store available here, each fresh.
pub async fn stores() -> Vec<(&'static str, Arc<dyn PaymentStore>)> {
    bill_stores()
        .await
        .into_iter()
        .map(|(name, store, _)| (name, store))
        .collect()
}

/// Every store available here, each fresh, also as the store of bill runs.
pub async fn bill_stores() -> Vec<(&'static str, Arc<dyn PaymentStore>, Arc<dyn BillStore>)> {
    all_stores()
        .await
        .into_iter()
        .map(|s| (s.name, s.payments, s.bills))
        .collect()
}

/// One store, by each of its faces.
pub struct Faces {
    pub name: &'static str,
    pub payments: Arc<dyn PaymentStore>,
    pub bills: Arc<dyn BillStore>,
    pub shares: Arc<dyn ShareStore>,
}

/// Every store available here, each fresh, by each of its faces.
pub async fn all_stores() -> Vec<Faces> {
    fn both<S: PaymentStore + BillStore + ShareStore + 'static>(
        name: &'static str,
        store: S,
    ) -> Faces {
        let store = Arc::new(store);
        Faces {
            name,
            payments: store.clone(),
            bills: store.clone(),
            shares: store,
        }
    }
    let mut list = vec![both("memory", MemoryStore::new())];
    #[cfg(feature = "sqlite")]
    {
        let path = std::env::temp_dir().join(format!("{}.db", unique("aggpay-")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        list.push(both(
            "sqlite",
            aggregate_pay::store::SqlStore::connect(&url).await.unwrap(),
        ));
    }
    #[cfg(feature = "postgres")]
    if let Some(url) = engine_url("TEST_POSTGRES_URL") {
        let url = fresh_database(&url).await;
        list.push(both(
            "postgres",
            aggregate_pay::store::SqlStore::connect(&url).await.unwrap(),
        ));
    }
    #[cfg(feature = "mysql")]
    if let Some(url) = engine_url("TEST_MYSQL_URL") {
        let url = fresh_database(&url).await;
        list.push(both(
            "mysql",
            aggregate_pay::store::SqlStore::connect(&url).await.unwrap(),
        ));
    }
    list
}

/// The sandbox channel registered alone, and the service over `store`.
pub fn sandbox(store: &Arc<dyn PaymentStore>) -> (Arc<SandboxChannel>, Channels, Payments) {
    let channel = Arc::new(SandboxChannel::new("sandbox-account", "sandbox-secret"));
    let channels = Channels::new().with_shared(channel.clone());
    let payments = Payments::new(channels.clone(), store.clone());
    (channel, channels, payments)
}

/// The events recorded for one payment.
pub async fn events_of(store: &Arc<dyn PaymentStore>, id: &PaymentId) -> Vec<OutboxEvent> {
    store
        .events(None, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| &e.payment_id == id)
        .collect()
}

/// A store whose next `n` commits fail.
#[derive(Debug)]
pub struct Flaky {
    pub inner: Arc<dyn PaymentStore>,
    pub fail_commits: AtomicUsize,
}

#[async_trait]
impl PaymentStore for Flaky {
    async fn insert_payment(&self, p: &Payment) -> Result<Insert<Payment>, StoreError> {
        self.inner.insert_payment(p).await
    }
    async fn payment(&self, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(id).await
    }
    async fn payment_by_out_trade_no(&self, n: &str) -> Result<Option<Payment>, StoreError> {
        self.inner.payment_by_out_trade_no(n).await
    }
    async fn refund(&self, n: &str) -> Result<Option<Refund>, StoreError> {
        self.inner.refund(n).await
    }
    async fn refunds_of(&self, id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        self.inner.refunds_of(id).await
    }
    async fn commit(&self, change: Change) -> Result<Commit, StoreError> {
        if self
            .fail_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable(
                "injected failure: the database is down".into(),
            ));
        }
        self.inner.commit(change).await
    }
    async fn claim_for_reconciliation(
        &self,
        s: OffsetDateTime,
        n: OffsetDateTime,
        l: Duration,
        lim: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.inner.claim_for_reconciliation(s, n, l, lim).await
    }
    async fn claim_refunds_for_reconciliation(
        &self,
        s: OffsetDateTime,
        n: OffsetDateTime,
        l: Duration,
        lim: usize,
    ) -> Result<Vec<RefundClaim>, StoreError> {
        self.inner
            .claim_refunds_for_reconciliation(s, n, l, lim)
            .await
    }
    async fn defer_refund(
        &self,
        no: &str,
        until: Option<OffsetDateTime>,
        last_error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.inner.defer_refund(no, until, last_error).await
    }
    async fn claim_events(
        &self,
        n: OffsetDateTime,
        l: Duration,
        lim: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.inner.claim_events(n, l, lim).await
    }
    async fn event_delivered(&self, id: &str) -> Result<(), StoreError> {
        self.inner.event_delivered(id).await
    }
    async fn event_failed(
        &self,
        id: &str,
        e: &str,
        r: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        self.inner.event_failed(id, e, r).await
    }
    async fn events(
        &self,
        s: Option<EventStatus>,
        l: usize,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        self.inner.events(s, l).await
    }
    async fn redeliver(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.redeliver(id).await
    }
}

/// A new sandbox payment of `fen` (its number starting with `prefix`), paid: the channel's
/// notification handled by `processor`.
pub async fn paid_payment(
    payments: &Payments,
    channel: &SandboxChannel,
    processor: &aggregate_pay::NotifyProcessor,
    prefix: &str,
    fen: u64,
) -> Payment {
    let (p, _) = payments
        .create(aggregate_pay::NewPayment::new(
            unique(prefix),
            aggregate_pay::Fen::new(fen),
            "x",
            aggregate_pay::PayMethod::Sandbox,
            "http://n",
        ))
        .await
        .unwrap();
    processor
        .handle("sandbox", &channel.pay(&p.out_trade_no).unwrap())
        .await;
    p
}

/// The URL in the environment variable `var` (a real engine), or `None` when a developer runs
/// the tests without it. `.ci/run` sets them all and `REQUIRE_ENGINES`, under which a missing
/// one fails the test instead of skipping it.
pub fn engine_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("REQUIRE_ENGINES").is_none(),
                "REQUIRE_ENGINES is set but {var} is not"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}
