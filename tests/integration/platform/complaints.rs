//! Payers' WeChat Pay complaints forwarded to the merchant whose payment they are about: as a
//! service provider, the platform hears a sub-merchant's complaint, sends its merchant a signed
//! `complaint.updated` callback for each change, and takes the merchant's answer, refund
//! decision and completion to WeChat naming the sub-merchant. Another merchant neither sees nor
//! touches it.

use examples::platform::config::PlatformMode;
use merchant_client::{
    Callbacks, CreatePayment, CreateRefund, Error, Fen, MemoryHandledEvents, RefundProgress, Secret,
};
use serde_json::{Value, json};

use super::{MerchantEndpoint, Options, Platform, eventually};

fn partner() -> Options {
    Options {
        platform_mode: Some(PlatformMode::Partner),
        platform_fee_bps: Some(60),
        ..Options::default()
    }
}

/// The complaint callbacks `endpoint` accepted about complaint `id`, verified with `secret`.
fn callbacks_about(endpoint: &MerchantEndpoint, secret: &str, id: &str) -> Vec<Value> {
    let verifier = Callbacks::new(
        Secret::new(secret),
        std::sync::Arc::new(MemoryHandledEvents::new()),
    );
    endpoint
        .deliveries()
        .into_iter()
        .filter(|d| d.accepted)
        .filter_map(|d| verifier.verify(&d.signature, d.body.as_bytes()).ok())
        .filter(|v| v["type"] == "complaint.updated" && v["data"]["complaint_id"] == id)
        .collect()
}

#[tokio::test]
async fn a_sub_merchants_complaint_reaches_its_merchant_who_answers_it_through_the_open_api() {
    let p = Platform::start(partner()).await;
    let endpoint = MerchantEndpoint::start().await;
    let (a, b) = (
        p.register(&endpoint.url).await,
        p.register(&endpoint.url).await,
    );
    let sub = examples::providers::demo_sub_merchants().next().unwrap();
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", a.app_id),
            Some(json!({"wechat_sub_mchid": sub})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (shop, other) = (p.client(&a), p.client(&b));
    shop.create_payment(
        &CreatePayment::new("cola-1", Fen::new(1000), "Cola").method("wechat_native"),
    )
    .await
    .unwrap();
    p.pay_at_emulator(&a.app_id, "cola-1").await;
    eventually(20, "paid", async || {
        shop.get_payment("cola-1").await.unwrap().status == "PAID"
    })
    .await;

    // The payer complains to WeChat about the sub-merchant.
    let no = p.platform_no(&a.app_id, "cola-1").await;
    let (status, filed) = crate::support::control_at(
        &p.emulator_url,
        "/sandbox/complaints",
        &json!({"out_trade_no": no, "detail": "paid, nothing came out", "refund_amount": 1000}),
    )
    .await;
    assert_eq!(status, 200, "{filed}");
    let id = filed["complaint_id"].as_str().unwrap().to_owned();

    // The merchant is told (signed, with its own order number) and lists it; the other is not.
    eventually(15, "the complaint callback", async || {
        !callbacks_about(&endpoint, &a.secret, &id).is_empty()
    })
    .await;
    let told = &callbacks_about(&endpoint, &a.secret, &id)[0];
    assert_eq!(told["data"]["out_trade_no"], "cola-1", "{told}");
    assert_eq!(told["data"]["state"], "PENDING", "{told}");
    assert!(
        told["data"].get("merchant_id").is_none() && !told.to_string().contains(&no),
        "neither the platform's number nor its bookkeeping: {told}"
    );
    assert!(callbacks_about(&endpoint, &b.secret, &id).is_empty());
    let mine = shop.complaints().await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].complaint_id.as_str(), mine[0].needs_action),
        (id.as_str(), true)
    );
    assert!(other.complaints().await.unwrap().is_empty());
    for attempt in [
        other.complaint(&id).await.map(drop),
        other.respond_to_complaint(&id, "not mine").await.map(drop),
        other.complete_complaint(&id).await.map(drop),
    ] {
        assert!(
            matches!(attempt, Err(Error::Api { status: 404, .. })),
            "{attempt:?}"
        );
    }

    // The periodic read finds it too: a service provider's list holds its sub-merchants'.
    let keeper = p.state.complaints.as_deref().unwrap();
    assert_eq!(examples::complaints::sync(keeper).await.unwrap(), 1);

    // Answered, refunded, decided, completed.
    let detail = shop.complaint(&id).await.unwrap();
    assert_eq!(detail.history[0]["type"], "USER_CREATE_COMPLAINT");
    let answered = shop
        .respond_to_complaint(&id, "Sorry! Refunding now.")
        .await
        .unwrap();
    assert_eq!(answered.state, "PROCESSING");
    shop.create_refund(&CreateRefund::new("cola-1", "cola-1-r", Fen::new(1000)))
        .await
        .unwrap();
    shop.complaint_refund_progress(
        &id,
        &RefundProgress::Approve {
            launch_refund_day: 0,
        },
    )
    .await
    .unwrap();
    let done = shop.complete_complaint(&id).await.unwrap();
    assert_eq!(
        (done.state.as_str(), done.needs_action),
        ("PROCESSED", false)
    );

    // WeChat holds the answers, made for the sub-merchant; the merchant was told of the end.
    let held = &crate::support::held_complaint(&p.emulator_url, &id).await;
    assert_eq!(held["mch_id"], sub.as_str(), "{held}");
    assert_eq!(held["state"], "PROCESSED", "{held}");
    assert_eq!(held["refund_decision"]["action"], "APPROVE", "{held}");
    eventually(15, "the callback of the end", async || {
        callbacks_about(&endpoint, &a.secret, &id)
            .iter()
            .any(|c| c["data"]["state"] == "PROCESSED")
    })
    .await;
    p.stop().await;
}

#[tokio::test]
async fn a_platform_on_api_v2_has_no_complaints() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let e = p.client(&creds).complaints().await.unwrap_err();
    assert!(
        matches!(&e, Error::Api { status: 409, code, .. } if code == "COMPLAINTS_OFF"),
        "{e:?}"
    );
    p.stop().await;
}
