//! Payment codes end to end: `Payments::pay_by_code` against the emulator's WeChat Pay (API v2
//! and v3) and Alipay, with buyers who pay at once, confirm later, never confirm, or cannot pay.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::channels::Channels;
use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use aggregate_pay::service::{CodeOutcome, CodeWait};
use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    EventKind, Fen, MemoryStore, NewPayment, PayMethod, PaymentCode, PaymentStatus, Payments,
};
use wechat_sandbox::Sandbox;
use wechat_sandbox::control::Channel;
use wechat_sandbox::faults::ApiFault;
use wechat_sandbox::payment_codes::Behaviour;

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, alipay_app_key, alipay_gateway_public_key, eventually,
    inspect, start_mp_callbacks, start_sandbox, unique, v3_client,
};

/// A short wait, so that a buyer who never confirms is reversed within a test.
const WAIT: CodeWait = CodeWait {
    poll_every: Duration::from_millis(100),
    give_up_after: Duration::from_millis(1200),
};

fn alipay(sandbox: &Sandbox) -> AlipayChannel {
    AlipayChannel::new(
        AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap(),
    )
}

/// The payments service over WeChat Pay (API `v2` or `v3`) and Alipay, in memory.
fn payments(sandbox: &Sandbox, api: &str) -> (Payments, Arc<MemoryStore>) {
    let wechat = match api {
        "v2" => WechatChannel::new(
            wechat_pay::Client::builder(APP_ID, MCH_ID, wechat_pay::ApiKey::new(KEY))
                .base_url(sandbox.base_url())
                .build()
                .unwrap(),
        ),
        _ => WechatChannel::new(WechatApi::v3(v3_client(sandbox), APP_ID)),
    };
    let store = Arc::new(MemoryStore::new());
    let channels = Channels::new().with(wechat).with(alipay(sandbox));
    let service = Payments::new(channels, store.clone()).code_wait(WAIT);
    (service, store)
}

fn scan(no: &str) -> NewPayment {
    let mut p = NewPayment::new(
        no,
        Fen::new(350),
        "Cola",
        PayMethod::Sandbox,
        "http://127.0.0.1:9/notify",
    );
    p.client_ip = "10.0.0.7".into();
    p
}

async fn succeeded_events(store: &MemoryStore, no: &str) -> usize {
    store
        .events(None, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::PaymentSucceeded && e.data.payment.out_trade_no == no)
        .count()
}

fn provider(method: PayMethod) -> Channel {
    match method {
        PayMethod::AlipayPaymentCode => Channel::Alipay,
        _ => Channel::Wechat,
    }
}

/// The emulator's state of an order (WeChat `trade_state`, Alipay `trade_status`).
async fn emulator_state(sandbox: &Sandbox, no: &str) -> Option<String> {
    let orders = inspect(sandbox, "/sandbox/orders").await;
    let all = ["wechat", "alipay"]
        .iter()
        .flat_map(|k| orders[*k].as_array().cloned().unwrap_or_default())
        .collect::<Vec<_>>();
    all.iter().find(|o| o["out_trade_no"] == no).map(|o| {
        o["state"]
            .as_str()
            .or(o["status"].as_str())
            .unwrap_or("")
            .to_owned()
    })
}

#[tokio::test]
async fn codes_approved_at_once_held_then_approved_and_declined() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    for api in ["v2", "v3"] {
        let (payments, store) = payments(&sandbox, api);
        for method in [PayMethod::WechatPaymentCode, PayMethod::AlipayPaymentCode] {
            let what = format!("{api} {method}");
            // Paid at once, routed by the code's prefix.
            let code =
                PaymentCode::parse(&sandbox.payment_code(provider(method), Behaviour::Approve))
                    .unwrap();
            assert_eq!(code.method(), method, "{what}");
            let no = unique("PC");
            let outcome = payments.pay_by_code(scan(&no), &code).await.unwrap();
            let CodeOutcome::Paid(paid) = &outcome else {
                panic!("{what}: {outcome:?}")
            };
            assert_eq!(paid.status, PaymentStatus::Paid, "{what}");
            assert_eq!(paid.method, method, "{what}");
            let channel = if method == PayMethod::AlipayPaymentCode {
                "alipay"
            } else {
                "wechat"
            };
            assert_eq!(paid.channel, channel, "{what}");
            assert!(paid.channel_transaction_id.is_some(), "{what}");
            // The same scan delivered again: the same payment, charged once.
            let again = payments.pay_by_code(scan(&no), &code).await.unwrap();
            assert!(
                matches!(&again, CodeOutcome::Paid(p) if p.id == paid.id),
                "{what}: {again:?}"
            );
            assert_eq!(succeeded_events(&store, &no).await, 1, "{what}");

            // Held while the buyer confirms, then approved.
            let held = sandbox.payment_code(provider(method), Behaviour::Hold);
            let no = unique("PH");
            let task = {
                let (payments, no) = (payments.clone(), no.clone());
                let code = PaymentCode::parse(&held).unwrap();
                tokio::spawn(async move { payments.pay_by_code(scan(&no), &code).await })
            };
            eventually(5, "the held payment reaches the provider", async || {
                emulator_state(&sandbox, &no).await.is_some()
            })
            .await;
            sandbox.decide_payment_code(&held, true).await.unwrap();
            let outcome = task.await.unwrap().unwrap();
            assert!(
                matches!(outcome, CodeOutcome::Paid(_)),
                "{what}: {outcome:?}"
            );
            assert_eq!(succeeded_events(&store, &no).await, 1, "{what}");

            // Declined: nothing taken, the payment FAILED with the provider's code.
            let declined =
                PaymentCode::parse(&sandbox.payment_code(provider(method), Behaviour::Decline))
                    .unwrap();
            let no = unique("PD");
            let outcome = payments.pay_by_code(scan(&no), &declined).await.unwrap();
            let CodeOutcome::Declined { payment, code, .. } = &outcome else {
                panic!("{what}: {outcome:?}")
            };
            assert_eq!(payment.status, PaymentStatus::Failed, "{what}");
            assert!(code.contains("ENOUGH"), "{what}: {code}");
            assert_eq!(succeeded_events(&store, &no).await, 0, "{what}");
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_buyer_who_never_confirms_is_reversed_and_never_charged() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    // API v2's reverse needs the merchant's client certificate (tests/mutual_tls); v3 and Alipay
    // need none.
    let (payments, store) = payments(&sandbox, "v3");
    for method in [PayMethod::WechatPaymentCode, PayMethod::AlipayPaymentCode] {
        let held = sandbox.payment_code(provider(method), Behaviour::Hold);
        let no = unique("PT");
        let outcome = payments
            .pay_by_code(scan(&no), &PaymentCode::parse(&held).unwrap())
            .await
            .unwrap();
        let CodeOutcome::Reversed(payment) = &outcome else {
            panic!("{method}: {outcome:?}")
        };
        assert_eq!(payment.status, PaymentStatus::Closed, "{method}");
        let state = emulator_state(&sandbox, &no).await;
        assert!(
            matches!(state.as_deref(), Some("REVOKED" | "TRADE_CLOSED")),
            "{method}: {state:?}"
        );
        // The buyer confirms too late: the provider refuses, nothing is charged.
        assert!(
            sandbox.decide_payment_code(&held, true).await.is_err(),
            "{method}"
        );
        assert_eq!(succeeded_events(&store, &no).await, 0, "{method}");
        let stored = store.payment_by_out_trade_no(&no).await.unwrap().unwrap();
        assert_eq!(stored.status, PaymentStatus::Closed, "{method}");
    }
    sandbox.shutdown().await;
}

/// A temporary error of the provider's is never a decline: charged meanwhile (the answer lost),
/// the query finds it paid; not charged, the code is reversed at the end of the wait — never
/// FAILED, never charged and reversed.
#[tokio::test]
async fn a_temporary_provider_error_is_asked_again_never_taken_for_a_decline() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let (payments, store) = payments(&sandbox, "v3");
    for (method, api, code) in [
        (
            PayMethod::WechatPaymentCode,
            "POST /v3/pay/transactions/codepay",
            "SYSTEM_ERROR",
        ),
        (
            PayMethod::AlipayPaymentCode,
            "alipay.trade.pay",
            "ACQ.SYSTEM_ERROR",
        ),
    ] {
        // The provider charged the buyer, then its answer was an error.
        sandbox.fault(ApiFault::new(api, code).after_processing());
        let approving = sandbox.payment_code(provider(method), Behaviour::Approve);
        let no = unique("PE");
        let outcome = payments
            .pay_by_code(scan(&no), &PaymentCode::parse(&approving).unwrap())
            .await
            .unwrap();
        assert!(
            matches!(&outcome, CodeOutcome::Paid(p) if p.status == PaymentStatus::Paid),
            "{method}: {outcome:?}"
        );
        assert_eq!(succeeded_events(&store, &no).await, 1, "{method}");

        // The provider did nothing and answered an error: asked again until the wait ends, then
        // reversed — closed, not failed.
        sandbox.fault(ApiFault::new(api, code));
        let approving = sandbox.payment_code(provider(method), Behaviour::Approve);
        let no = unique("PE");
        let outcome = payments
            .pay_by_code(scan(&no), &PaymentCode::parse(&approving).unwrap())
            .await
            .unwrap();
        match &outcome {
            CodeOutcome::Reversed(p) => assert_eq!(p.status, PaymentStatus::Closed, "{method}"),
            other => panic!("{method}: {other:?}"),
        }
        let stored = store.payment_by_out_trade_no(&no).await.unwrap().unwrap();
        assert_ne!(stored.status, PaymentStatus::Failed, "{method}");
        assert_eq!(succeeded_events(&store, &no).await, 0, "{method}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_same_scan_delivered_twice_at_once_is_charged_once() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let (payments, store) = payments(&sandbox, "v3");
    let held = sandbox.payment_code(Channel::Wechat, Behaviour::Hold);
    let code = PaymentCode::parse(&held).unwrap();
    let no = unique("P2");
    let first = {
        let (payments, no, code) = (payments.clone(), no.clone(), code.clone());
        tokio::spawn(async move { payments.pay_by_code(scan(&no), &code).await })
    };
    eventually(5, "the first delivery charges the code", async || {
        emulator_state(&sandbox, &no).await.is_some()
    })
    .await;
    // The second delivery, while the first waits for the buyer.
    let second = payments.pay_by_code(scan(&no), &code).await.unwrap();
    assert!(matches!(second, CodeOutcome::Busy(_)), "{second:?}");
    sandbox.decide_payment_code(&held, true).await.unwrap();
    assert!(matches!(
        first.await.unwrap().unwrap(),
        CodeOutcome::Paid(_)
    ));
    // And once more after the end: the end, not a second charge.
    let third = payments.pay_by_code(scan(&no), &code).await.unwrap();
    assert!(matches!(third, CodeOutcome::Paid(_)), "{third:?}");
    assert_eq!(succeeded_events(&store, &no).await, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn unknown_codes_and_plain_creation_of_a_code_method_are_refused() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let (payments, store) = payments(&sandbox, "v3");
    assert!(PaymentCode::parse("313456789012345678").is_err());
    let mut plain = scan(&unique("PX"));
    plain.method = PayMethod::WechatPaymentCode;
    let refused = payments.create(plain.clone()).await;
    assert!(
        matches!(refused, Err(aggregate_pay::Error::Invalid(_))),
        "{refused:?}"
    );
    assert!(
        store
            .payment_by_out_trade_no(&plain.out_trade_no)
            .await
            .unwrap()
            .is_none()
    );
    // A code the provider does not know (well formed, used for another order): declined.
    let code = sandbox.payment_code(Channel::Alipay, Behaviour::Approve);
    let code = PaymentCode::parse(&code).unwrap();
    assert!(matches!(
        payments
            .pay_by_code(scan(&unique("PA")), &code)
            .await
            .unwrap(),
        CodeOutcome::Paid(_)
    ));
    let reused = payments
        .pay_by_code(scan(&unique("PB")), &code)
        .await
        .unwrap();
    assert!(
        matches!(&reused, CodeOutcome::Declined { code, .. } if code.contains("AUTH_CODE")),
        "{reused:?}"
    );
    sandbox.shutdown().await;
}
