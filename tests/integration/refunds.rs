//! Refunds through the real channels against the emulator, when the provider does not give a
//! definitive answer: a temporary error before or after the refund was made, a balance to top
//! up. The refund stays PENDING, the reconciler sends it again with the same number or finds it
//! made, and the provider ends up with exactly one refund.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::wechat::WechatChannel;
use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    Channels, Fen, MemoryStore, NewPayment, PayMethod, Payment, PaymentStatus, Payments,
    Reconciler, RefundStatus,
};
use serde_json::Value;
use time::OffsetDateTime;
use wechat_sandbox::{ApiFault, Sandbox};

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, alipay_app_key, alipay_gateway_public_key, inspect,
    start_mp_callbacks, start_sandbox, unique,
};

struct Setup {
    sandbox: Sandbox,
    store: Arc<dyn PaymentStore>,
    payments: Payments,
    reconciler: Reconciler,
}

async fn setup() -> Setup {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let wechat = WechatChannel::official_account(
        wechat_pay::Client::builder(APP_ID, MCH_ID, wechat_pay::ApiKey::new(KEY))
            .base_url(sandbox.base_url())
            .build()
            .unwrap(),
    );
    let alipay = AlipayChannel::new(
        AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap(),
    );
    let channels = Channels::new().with(wechat).with(alipay);
    let store: Arc<dyn PaymentStore> = Arc::new(MemoryStore::new());
    let payments = Payments::new(channels.clone(), store.clone());
    let reconciler = Reconciler::new(channels, store.clone(), Duration::ZERO)
        .lease(Duration::from_millis(1))
        .refund_backoff(Duration::ZERO, Duration::ZERO);
    Setup {
        sandbox,
        store,
        payments,
        reconciler,
    }
}

/// A payment of `method` paid at the emulator and recorded (its notification goes nowhere; the
/// sync reads it).
async fn paid(s: &Setup, method: PayMethod) -> Payment {
    let no = unique("RF");
    let (p, _) = s
        .payments
        .create(NewPayment::new(
            no.clone(),
            Fen::new(500),
            "Cola",
            method,
            "http://127.0.0.1:9/notify",
        ))
        .await
        .unwrap();
    s.sandbox.pay(&no).await.unwrap();
    let p = s.payments.sync(&p.id).await.unwrap();
    assert_eq!(p.status, PaymentStatus::Paid);
    p
}

/// The emulator's refunds with this number (`wechat_refunds` or `alipay_refunds`).
async fn refunds_at_provider(s: &Setup, list: &str, out_refund_no: &str) -> Vec<Value> {
    let field = if list == "wechat_refunds" {
        "out_refund_no"
    } else {
        "out_request_no"
    };
    inspect(&s.sandbox, "/sandbox/orders").await[list]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[field] == out_refund_no)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_wechat_systemerror_leaves_the_refund_pending_and_it_is_made_once() {
    let s = setup().await;
    let p = paid(&s, PayMethod::WechatNative).await;
    s.sandbox.fault(ApiFault::new("refund", "SYSTEMERROR"));
    let no = unique("R");
    let r = s
        .payments
        .refund(&p.id, &no, Fen::new(500), None, None)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        RefundStatus::Pending,
        "not FAILED: nothing is decided"
    );
    assert!(
        refunds_at_provider(&s, "wechat_refunds", &no)
            .await
            .is_empty()
    );

    // The reconciler finds no refund at WeChat and sends the same one again: accepted.
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_unsettled, 1, "{report:?}");
    assert_eq!(
        refunds_at_provider(&s, "wechat_refunds", &no).await.len(),
        1
    );
    // WeChat completes it; its notification is lost; the next round reads it.
    s.sandbox.complete_refund(&no).await.unwrap();
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_succeeded, 1, "{report:?}");
    assert_eq!(
        s.payments.get_refund(&no).await.unwrap().status,
        RefundStatus::Succeeded
    );
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Refunded
    );
    let at_provider = refunds_at_provider(&s, "wechat_refunds", &no).await;
    assert_eq!(
        at_provider.len(),
        1,
        "one refund at WeChat: {at_provider:?}"
    );
    assert_eq!(at_provider[0]["refund_fee"], 500);
}

#[tokio::test]
async fn a_wechat_notenough_waits_then_succeeds() {
    let s = setup().await;
    let p = paid(&s, PayMethod::WechatNative).await;
    s.sandbox.fault(ApiFault::new("refund", "NOTENOUGH"));
    let no = unique("R");
    let r = s
        .payments
        .refund(&p.id, &no, Fen::new(200), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, RefundStatus::Pending);
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(
        report.refunds_checked, 0,
        "it waits for the balance: {report:?}"
    );
    assert_eq!(
        s.payments.get_refund(&no).await.unwrap().status,
        RefundStatus::Pending
    );
    // Half an hour later:
    s.store
        .defer_refund(&no, OffsetDateTime::now_utc() - Duration::from_secs(1))
        .await
        .unwrap();
    s.reconciler.run_once().await.unwrap();
    s.sandbox.complete_refund(&no).await.unwrap();
    s.reconciler.run_once().await.unwrap();
    assert_eq!(
        s.payments.get_refund(&no).await.unwrap().status,
        RefundStatus::Succeeded
    );
    assert_eq!(
        refunds_at_provider(&s, "wechat_refunds", &no).await.len(),
        1
    );
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().refunded_amount,
        Fen::new(200)
    );
}

#[tokio::test]
async fn an_alipay_system_error_after_the_refund_was_made_is_found_made() {
    let s = setup().await;
    let p = paid(&s, PayMethod::AlipayQr).await;
    s.sandbox
        .fault(ApiFault::new("alipay.trade.refund", "ACQ.SYSTEM_ERROR").after_processing());
    let no = unique("R");
    let r = s
        .payments
        .refund(&p.id, &no, Fen::new(500), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, RefundStatus::Pending);
    assert_eq!(
        refunds_at_provider(&s, "alipay_refunds", &no).await.len(),
        1
    );
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_succeeded, 1, "{report:?}");
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(
        refunds_at_provider(&s, "alipay_refunds", &no).await.len(),
        1
    );
}

#[tokio::test]
async fn a_definitive_wechat_refusal_fails_the_refund() {
    let s = setup().await;
    let p = paid(&s, PayMethod::WechatNative).await;
    s.sandbox.fault(ApiFault::new("refund", "TRADE_OVERDUE"));
    let no = unique("R");
    let e = s
        .payments
        .refund(&p.id, &no, Fen::new(500), None, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TRADE_OVERDUE"), "{e}");
    assert_eq!(
        s.payments.get_refund(&no).await.unwrap().status,
        RefundStatus::Failed
    );
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Paid
    );
}
