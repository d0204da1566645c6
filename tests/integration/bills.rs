//! Reconciliation against the daily bill through the real channels — WeChat Pay API v2, API v3
//! and Alipay — against the emulator, which makes each discrepancy on demand: a payment whose
//! notification is lost and whose query says "not paid" until the bill, a refund made at the
//! provider whose answer was an error, a bill row with another amount, a payment the provider
//! never had, one the store never had, a refund the provider never made, a bill not ready at the
//! first attempt, a day without a bill.

use std::sync::Arc;

use aggregate_pay::bills::{BillClass, BillRunStatus, china_day};
use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use aggregate_pay::lock::MemoryLockManager;
use aggregate_pay::store::{BillStore, Change, Commit, PaymentStore, RefundChange};
use aggregate_pay::{
    BillOutcome, BillReconciler, Channels, EventKind, Fen, MemoryStore, NewPayment, PayMethod,
    Payment, PaymentStatus, Payments, RefundStatus,
};
use time::OffsetDateTime;
use wechat_sandbox::{ApiFault, FaultRequest, Sandbox};

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, alipay_app_key, alipay_gateway_public_key,
    start_mp_callbacks, start_sandbox, unique, v3_client,
};

/// A channel of the emulator: how it is registered, paid, and refunded.
#[derive(Clone, Copy, Debug)]
enum Api {
    V2,
    V3,
    Alipay,
}

impl Api {
    fn channel_id(self) -> &'static str {
        match self {
            Api::V2 | Api::V3 => "wechat",
            Api::Alipay => "alipay",
        }
    }

    fn method(self) -> PayMethod {
        match self {
            Api::V2 | Api::V3 => PayMethod::WechatNative,
            Api::Alipay => PayMethod::AlipayQr,
        }
    }

    /// The API whose answer a refund loses.
    fn refund_api(self) -> &'static str {
        match self {
            Api::V2 => "refund",
            Api::V3 => "POST /v3/refund/domestic/refunds",
            Api::Alipay => "alipay.trade.refund",
        }
    }
}

struct Setup {
    api: Api,
    sandbox: Sandbox,
    store: Arc<MemoryStore>,
    payments: Payments,
    /// Another system's store on the same merchant account: what it takes is unknown here.
    elsewhere: Payments,
    bills: BillReconciler,
}

fn channels(api: Api, sandbox: &Sandbox) -> Channels {
    match api {
        Api::V2 => Channels::new().with(WechatChannel::official_account(
            wechat_pay::Client::builder(APP_ID, MCH_ID, wechat_pay::ApiKey::new(KEY))
                .base_url(sandbox.base_url())
                .build()
                .unwrap(),
        )),
        Api::V3 => Channels::new().with(WechatChannel::official_account(WechatApi::v3(
            v3_client(sandbox),
            APP_ID,
        ))),
        Api::Alipay => Channels::new().with(AlipayChannel::new(
            AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
                .base_url(sandbox.base_url().to_owned())
                .build()
                .unwrap(),
        )),
    }
}

async fn setup(api: Api) -> Setup {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let channels = channels(api, &sandbox);
    let store = Arc::new(MemoryStore::new());
    let payments = Payments::new(channels.clone(), store.clone());
    let elsewhere = Payments::new(channels.clone(), Arc::new(MemoryStore::new()));
    let bills = BillReconciler::new(
        channels,
        store.clone(),
        store.clone(),
        Arc::new(MemoryLockManager::new()),
    );
    Setup {
        api,
        sandbox,
        store,
        payments,
        elsewhere,
        bills,
    }
}

impl Setup {
    /// A payment created here (its notifications go nowhere).
    async fn created(&self, payments: &Payments, fen: u64) -> Payment {
        let (p, _) = payments
            .create(NewPayment::new(
                unique("BL"),
                Fen::new(fen),
                "Cola",
                self.api.method(),
                "http://127.0.0.1:9/notify",
            ))
            .await
            .unwrap();
        p
    }

    /// A payment paid at the emulator and recorded here (through the query).
    async fn paid(&self, fen: u64) -> Payment {
        let p = self.created(&self.payments, fen).await;
        self.sandbox.pay(&p.out_trade_no).await.unwrap();
        let p = self.payments.sync(&p.id).await.unwrap();
        assert_eq!(p.status, PaymentStatus::Paid, "{:?}", self.api);
        p
    }

    fn today(&self) -> time::Date {
        china_day(OffsetDateTime::now_utc())
    }

    async fn reconcile(&self, day: time::Date) -> BillOutcome {
        self.bills
            .reconcile(day, self.api.channel_id())
            .await
            .unwrap()
    }
}

fn done(api: Api, outcome: BillOutcome) -> aggregate_pay::bills::BillRun {
    match outcome {
        BillOutcome::Done(run) => run,
        other => panic!("{api:?}: not done: {other:?}"),
    }
}

#[tokio::test]
async fn every_class_is_made_by_the_emulator_and_found_on_every_channel() {
    for api in [Api::V2, Api::V3, Api::Alipay] {
        let s = setup(api).await;
        let matched = s.paid(300).await;

        // The notification is lost and the query says "not paid" until the bill.
        let unpaid = s.created(&s.payments, 450).await;
        s.sandbox
            .fault(FaultRequest::withhold_query(unpaid.out_trade_no.clone()));
        s.sandbox.pay(&unpaid.out_trade_no).await.unwrap();
        let still = s.payments.sync(&unpaid.id).await.unwrap();
        assert_eq!(still.status, PaymentStatus::Pending, "{api:?}: withheld");

        // Paid at the provider through another system: unknown here.
        let orphan = s.created(&s.elsewhere, 990).await;
        s.sandbox.pay(&orphan.out_trade_no).await.unwrap();

        // Recorded paid here (a bug), never paid at the provider.
        let ghost = s.created(&s.payments, 120).await;
        let mut forced = ghost.clone();
        forced.status = PaymentStatus::Paid;
        forced.paid_at = Some(OffsetDateTime::now_utc());
        forced.channel_transaction_id = Some("forged".into());
        let change = Change {
            payment: forced,
            refund: None,
            events: vec![],
        };
        assert_eq!(s.store.commit(change).await.unwrap(), Commit::Committed);

        // The bill says another amount.
        let differs = s.paid(500).await;
        s.sandbox.fault(FaultRequest::bill_amount(
            differs.out_trade_no.clone(),
            5000,
        ));

        // A refund made at the provider whose answer was an error: PENDING here.
        let refunded = s.paid(800).await;
        s.sandbox
            .fault(ApiFault::new(api.refund_api(), "SYSTEMERROR").after_processing());
        let refund_no = unique("BR");
        let pending = s
            .payments
            .refund(&refunded.id, &refund_no, Fen::new(300), None, None)
            .await
            .unwrap();
        assert_eq!(pending.status, RefundStatus::Pending, "{api:?}");
        if !matches!(api, Api::Alipay) {
            // WeChat ends the refund later; its notification goes nowhere.
            s.sandbox.complete_refund(&refund_no).await.unwrap();
        }

        // A refund recorded made here (a bug) that the provider never made.
        let ghost_refund_no = unique("BG");
        let mut made = aggregate_pay::Refund::new(
            matched.id.clone(),
            ghost_refund_no.clone(),
            Fen::new(100),
            OffsetDateTime::now_utc(),
        );
        made.status = RefundStatus::Succeeded;
        let mut refunded_here = s.payments.get(&matched.id).await.unwrap();
        refunded_here.refunded_amount = Fen::new(100);
        refunded_here.status = PaymentStatus::PartiallyRefunded;
        let change = Change {
            payment: refunded_here,
            refund: Some(RefundChange::Insert(made)),
            events: vec![],
        };
        assert_eq!(s.store.commit(change).await.unwrap(), Commit::Committed);

        let run = done(api, s.reconcile(s.today()).await);
        assert_eq!(run.status, BillRunStatus::Done, "{api:?}");
        assert_eq!(run.totals.payments, 5, "{api:?}: {run:?}");
        assert_eq!(run.totals.refunds, 1, "{api:?}");
        assert_eq!(
            run.count(BillClass::Matched),
            2,
            "{api:?}: {:?}",
            run.counts
        );
        assert_eq!(run.count(BillClass::UnpaidHere), 1, "{api:?}");
        assert_eq!(run.count(BillClass::Orphan), 1, "{api:?}");
        assert_eq!(run.count(BillClass::MissingAtProvider), 1, "{api:?}");
        assert_eq!(run.count(BillClass::AmountDiffers), 1, "{api:?}");
        assert_eq!(run.count(BillClass::RefundDiffers), 2, "{api:?}");
        assert!(
            run.totals.fees > 0,
            "{api:?}: the provider's fees are recorded"
        );

        // Settled through the query and the transitions, with their events.
        let now = s.payments.get(&unpaid.id).await.unwrap();
        assert_eq!(now.status, PaymentStatus::Paid, "{api:?}");
        let events: Vec<EventKind> = s
            .store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.payment_id == unpaid.id)
            .map(|e| e.kind)
            .collect();
        assert_eq!(events, [EventKind::PaymentSucceeded], "{api:?}");
        let refund = s.payments.get_refund(&refund_no).await.unwrap();
        assert_eq!(refund.status, RefundStatus::Succeeded, "{api:?}");
        // Flagged, never fixed.
        assert_eq!(
            s.payments.get(&ghost.id).await.unwrap().status,
            PaymentStatus::Paid,
            "{api:?}"
        );
        let items = s
            .store
            .bill_items(s.today(), api.channel_id())
            .await
            .unwrap();
        let found = |no: &str| {
            items
                .iter()
                .find(|i| i.number() == no)
                .map(|i| (i.class, i.settled))
        };
        assert_eq!(
            found(&unpaid.out_trade_no),
            Some((BillClass::UnpaidHere, true)),
            "{api:?}"
        );
        assert_eq!(
            found(&orphan.out_trade_no),
            Some((BillClass::Orphan, false)),
            "{api:?}"
        );
        assert_eq!(
            found(&ghost.out_trade_no),
            Some((BillClass::MissingAtProvider, false)),
            "{api:?}"
        );
        assert_eq!(
            found(&differs.out_trade_no),
            Some((BillClass::AmountDiffers, false)),
            "{api:?}"
        );
        assert_eq!(
            found(&refund_no),
            Some((BillClass::RefundDiffers, true)),
            "{api:?}"
        );
        assert_eq!(found(&matched.out_trade_no), None, "{api:?}");
        assert_eq!(
            found(&ghost_refund_no),
            Some((BillClass::RefundDiffers, false)),
            "{api:?}: succeeded here, never at the provider"
        );

        // The same day again: the same report, no change, no event.
        let events_before = s.store.events(None, 1000).await.unwrap().len();
        let again = done(api, s.reconcile(s.today()).await);
        assert_eq!(again.counts, run.counts, "{api:?}");
        assert_eq!(again.totals, run.totals, "{api:?}");
        assert_eq!(
            s.store.events(None, 1000).await.unwrap().len(),
            events_before,
            "{api:?}"
        );
        s.sandbox.shutdown().await;
    }
}

#[tokio::test]
async fn a_bill_not_ready_at_first_is_fetched_again_and_a_day_without_one_is_empty() {
    for api in [Api::V2, Api::V3, Api::Alipay] {
        let s = setup(api).await;
        s.paid(300).await;
        s.sandbox.fault(FaultRequest::bill_not_ready(1));
        let first = s.reconcile(s.today()).await;
        assert!(
            matches!(first, BillOutcome::NotReady(_)),
            "{api:?}: {first:?}"
        );
        let run = done(
            api,
            s.bills
                .reconcile_until_ready(
                    s.today(),
                    api.channel_id(),
                    std::time::Duration::from_millis(10),
                    3,
                )
                .await
                .unwrap(),
        );
        assert_eq!(run.attempts, 2, "{api:?}");
        assert_eq!(run.count(BillClass::Matched), 1, "{api:?}");
        assert_eq!(run.differences(), 0, "{api:?}");

        // Two days ago nothing moved: the provider has no bill (Alipay: past the time its bill is
        // surely made), and the run is empty and done.
        let day = s.today() - time::Duration::days(2);
        let empty = done(api, s.reconcile(day).await);
        assert_eq!(empty.totals.rows(), 0, "{api:?}");
        assert_eq!(empty.bill_sha256, None, "{api:?}");
        assert_eq!(empty.differences(), 0, "{api:?}");
        s.sandbox.shutdown().await;
    }
}
