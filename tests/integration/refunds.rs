//! Refunds through the real channels against the emulator, when the provider does not give a
//! definitive answer: a temporary error before or after the refund was made, a balance to top
//! up, a rate limit, an answer whose signature does not verify, Alipay's `fund_change = N`. The
//! refund stays PENDING, the reconciler sends it again with the same number or finds it made,
//! and the provider ends up with exactly one refund. And an abnormal refund (the money could not
//! reach the payer) stays counted until the channel's SUCCESS settles it.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use aggregate_pay::channels::{AbnormalRefundResolution, RawNotify};
use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    Channels, Error, Fen, MemoryStore, NewPayment, NotifyOutcome, NotifyProcessor, PayMethod,
    Payment, PaymentStatus, Payments, Reconciler, RefundStatus,
};
use serde_json::Value;
use time::OffsetDateTime;
use wechat_sandbox::faults::{BAD_SIGNATURE, FUND_CHANGE_N};
use wechat_sandbox::settlement::RefundOutcome;
use wechat_sandbox::{ApiFault, Sandbox};

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, Receiver, alipay_app_key, alipay_gateway_public_key,
    inspect, start_mp_callbacks, start_sandbox, unique, v3_client,
};

struct Setup {
    sandbox: Sandbox,
    store: Arc<dyn PaymentStore>,
    payments: Payments,
    reconciler: Reconciler,
    processor: NotifyProcessor,
}

async fn setup() -> Setup {
    setup_with(false).await
}

/// The `wechat` channel over API v3 (else v2) and the `alipay` channel, against the emulator.
async fn setup_with(v3: bool) -> Setup {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let wechat = WechatChannel::official_account(if v3 {
        WechatApi::v3(v3_client(&sandbox), APP_ID)
    } else {
        wechat_pay::Client::builder(APP_ID, MCH_ID, wechat_pay::ApiKey::new(KEY))
            .base_url(sandbox.base_url())
            .build()
            .unwrap()
            .into()
    });
    let alipay = AlipayChannel::new(
        AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap(),
    );
    let channels = Channels::new().with(wechat).with(alipay);
    let store: Arc<dyn PaymentStore> = Arc::new(MemoryStore::new());
    let payments = Payments::new(channels.clone(), store.clone());
    let processor = NotifyProcessor::new(channels.clone(), store.clone());
    let reconciler = Reconciler::new(channels, store.clone(), Duration::ZERO)
        .lease(Duration::from_millis(1))
        .refund_backoff(Duration::ZERO, Duration::ZERO);
    Setup {
        sandbox,
        store,
        payments,
        reconciler,
        processor,
    }
}

/// The whole of `p` refunded again under a new number: refused while a refund of it is open.
async fn second_number_refused(s: &Setup, p: &Payment, what: &str) {
    let second = s
        .payments
        .refund(&p.id, &unique("R"), p.amount, None, None)
        .await;
    assert!(
        matches!(second, Err(Error::Invalid(_))),
        "{what}: {second:?}"
    );
}

/// The wait a refund was given (a rate limit, a balance) is over.
async fn wait_over(s: &Setup, out_refund_no: &str) {
    s.store
        .defer_refund(
            out_refund_no,
            Some(OffsetDateTime::now_utc() - Duration::from_secs(1)),
            None,
        )
        .await
        .unwrap();
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
        .defer_refund(
            &no,
            Some(OffsetDateTime::now_utc() - Duration::from_secs(1)),
            None,
        )
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

/// Issue 27, finding 1: WeChat's `INVALID_REQ_TOO_MUCH` ("retry after a minute") was taken as a
/// refusal: the refund FAILED and was never sent again — the buyer paid and was never refunded.
#[tokio::test]
async fn invalid_req_too_much_is_sent_again_a_minute_later_and_refunded_once() {
    let s = setup().await;
    let p = paid(&s, PayMethod::WechatNative).await;
    s.sandbox
        .fault(ApiFault::new("refund", "INVALID_REQ_TOO_MUCH"));
    let no = unique("R");
    let r = s
        .payments
        .refund(&p.id, &no, Fen::new(500), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, RefundStatus::Pending, "not a refusal");
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("INVALID_REQ_TOO_MUCH")),
        "{r:?}"
    );
    // WeChat asked for a minute: the reconciler leaves it alone until then.
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_checked, 0, "{report:?}");
    wait_over(&s, &no).await;
    s.reconciler.run_once().await.unwrap();
    s.sandbox.complete_refund(&no).await.unwrap();
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_succeeded, 1, "{report:?}");
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
}

/// Issue 27, finding 2: a refund answer that fails verification (the provider made the refund)
/// is not a refusal: the refund stays PENDING, no second refund number is accepted for the same
/// money, and the query finds it — on API v2, v3 and Alipay.
#[tokio::test]
async fn an_unverifiable_refund_answer_is_queried_and_never_refunded_twice() {
    for (v3, method, api, list) in [
        (false, PayMethod::WechatNative, "refund", "wechat_refunds"),
        (
            true,
            PayMethod::WechatNative,
            "POST /v3/refund/domestic/refunds",
            "wechat_refunds",
        ),
        (
            false,
            PayMethod::AlipayQr,
            "alipay.trade.refund",
            "alipay_refunds",
        ),
    ] {
        let s = setup_with(v3).await;
        let p = paid(&s, method).await;
        s.sandbox
            .fault(ApiFault::new(api, BAD_SIGNATURE).after_processing());
        let no = unique("R");
        let r = s
            .payments
            .refund(&p.id, &no, Fen::new(500), None, None)
            .await
            .unwrap_or_else(|e| panic!("{api}: {e}"));
        assert_eq!(r.status, RefundStatus::Pending, "{api}: {r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("UNVERIFIED_ANSWER")),
            "{api}: {r:?}"
        );
        assert_eq!(
            refunds_at_provider(&s, list, &no).await.len(),
            1,
            "{api}: the provider made it"
        );
        // The same money under a second number: refused while the first is open.
        second_number_refused(&s, &p, api).await;
        if list == "wechat_refunds" {
            s.sandbox.complete_refund(&no).await.unwrap();
        }
        let report = s.reconciler.run_once().await.unwrap();
        assert_eq!(report.refunds_succeeded, 1, "{api}: {report:?}");
        let payment = s.payments.get(&p.id).await.unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunded, "{api}");
        assert_eq!(payment.refunded_amount, Fen::new(500), "{api}");
        assert_eq!(
            refunds_at_provider(&s, list, &no).await.len(),
            1,
            "{api}: still one refund at the provider"
        );
    }
}

/// Issue 27, finding 2: Alipay's `10000` with `fund_change = N` was counted as refunded
/// although no money may have moved; it is confirmed by a refund query first.
#[tokio::test]
async fn alipay_fund_change_n_counts_only_once_a_query_confirms_it() {
    let s = setup().await;
    let p = paid(&s, PayMethod::AlipayQr).await;
    s.sandbox
        .fault(ApiFault::new("alipay.trade.refund", FUND_CHANGE_N));
    let no = unique("R");
    let r = s
        .payments
        .refund(&p.id, &no, Fen::new(500), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, RefundStatus::Pending, "not counted: {r:?}");
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().refunded_amount,
        Fen::ZERO
    );
    assert!(
        refunds_at_provider(&s, "alipay_refunds", &no)
            .await
            .is_empty()
    );
    // The query finds nothing: the same refund is sent again, and moves the money.
    let report = s.reconciler.run_once().await.unwrap();
    assert_eq!(report.refunds_succeeded, 1, "{report:?}");
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().refunded_amount,
        Fen::new(500)
    );
    assert_eq!(
        refunds_at_provider(&s, "alipay_refunds", &no).await.len(),
        1
    );
}

/// The refund notifications `receiver` got (from `from` on), handled by the processor.
async fn deliver_refund_notifications(
    s: &Setup,
    receiver: &Receiver,
    from: usize,
    n: usize,
) -> Vec<NotifyOutcome> {
    let got = receiver.wait_for("/wechat/refund-notify", from + n).await;
    let mut outcomes = Vec::new();
    for r in &got[from..] {
        let raw = RawNotify::refund(r.body.clone().into_bytes()).with_headers(r.headers.clone());
        outcomes.push(s.processor.handle("wechat", &raw).await.outcome);
    }
    outcomes
}

/// Issue 27, finding 3: `REFUND.ABNORMAL` marked the refund FAILED and the payment PAID again,
/// and WeChat's later `REFUND.SUCCESS` was ignored (WeChat paid out, the books said nothing).
/// Now the abnormal refund stays counted, the merchant resolves it, and SUCCESS settles it —
/// on API v3 (`ABNORMAL`, with the abnormal-refund call) and v2 (`CHANGE`).
#[tokio::test]
async fn an_abnormal_refund_stays_counted_and_a_later_success_settles_it() {
    for v3 in [true, false] {
        let s = setup_with(v3).await;
        let receiver = Receiver::start().await;
        let p = paid(&s, PayMethod::WechatNative).await;
        let no = unique("R");
        let r = s
            .payments
            .refund(
                &p.id,
                &no,
                Fen::new(500),
                None,
                Some(format!("{}/wechat/refund-notify", receiver.url)),
            )
            .await
            .unwrap();
        assert_eq!(r.status, RefundStatus::Pending, "v3 {v3}");

        s.sandbox
            .finish_refund(&no, RefundOutcome::Abnormal)
            .await
            .unwrap();
        let outcomes = deliver_refund_notifications(&s, &receiver, 0, 1).await;
        assert_eq!(outcomes, [NotifyOutcome::Applied], "v3 {v3}");
        let r = s.payments.get_refund(&no).await.unwrap();
        assert_eq!(r.status, RefundStatus::Abnormal, "v3 {v3}: {r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains("resolve"))
        );
        let payment = s.payments.get(&p.id).await.unwrap();
        assert_eq!(
            payment.status,
            PaymentStatus::Refunding,
            "v3 {v3}: never PAID again while the money is out"
        );
        second_number_refused(&s, &p, &format!("v3 {v3}")).await;

        let to = AbnormalRefundResolution::PayerBankCard {
            bank_type: "ICBC_DEBIT".into(),
            bank_account: "6222000011112222".into(),
            real_name: "张三".into(),
        };
        let resolved = s.payments.resolve_abnormal_refund(&no, &to).await;
        if v3 {
            let r = resolved.unwrap();
            assert_eq!(
                r.status,
                RefundStatus::Abnormal,
                "until WeChat says how it ended"
            );
            let at_provider = refunds_at_provider(&s, "wechat_refunds", &no).await;
            assert_eq!(at_provider[0]["status"], "PROCESSING", "{at_provider:?}");
        } else {
            // API v2 has no such call: the error says where to resolve it.
            let e = resolved.unwrap_err();
            assert!(e.to_string().contains("merchant platform"), "{e}");
            // The merchant resolves it there.
            s.sandbox.resolve_refund_on_platform(&no).await.unwrap();
        }
        s.sandbox.complete_refund(&no).await.unwrap();
        let outcomes = deliver_refund_notifications(&s, &receiver, 1, 1).await;
        assert_eq!(outcomes, [NotifyOutcome::Applied], "v3 {v3}");
        let r = s.payments.get_refund(&no).await.unwrap();
        assert_eq!(r.status, RefundStatus::Succeeded, "v3 {v3}");
        let payment = s.payments.get(&p.id).await.unwrap();
        assert_eq!(payment.status, PaymentStatus::Refunded, "v3 {v3}");
        assert_eq!(
            payment.refunded_amount,
            Fen::new(500),
            "v3 {v3}: the money WeChat paid out is counted"
        );
    }
}
