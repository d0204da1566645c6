//! Every open-API call through `merchant-client`, idempotency keys, and the cashier.

use merchant_client::{CreatePayment, CreateRefund, Error, Fen};
use std::time::Duration;

use serde_json::json;

use super::{MerchantEndpoint, Options, Platform, eventually};

fn api_code(e: Error) -> (u16, String) {
    match e {
        Error::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Create, query, pay (sandbox cashier), refund partly and fully, query refunds, close — the
/// flow `engines` repeats on the real engines.
pub async fn every_call(p: &Platform) {
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);

    let created = client
        .create_payment(
            &CreatePayment::new("order-1", Fen::new(1000), "Cola 330ml")
                .method("sandbox")
                .metadata(json!({"shelf": 3})),
        )
        .await
        .unwrap();
    assert_eq!(created.out_trade_no, "order-1");
    assert_eq!(created.amount, Fen::new(1000));
    assert_eq!(created.status, "PENDING");
    assert_eq!(created.channel.as_deref(), Some("sandbox"));
    assert_eq!(created.method.as_deref(), Some("sandbox"));
    assert!(created.pay.is_some());
    assert_eq!(created.metadata, json!({"shelf": 3}));
    assert_eq!(
        created.cashier_url,
        format!("{}/cashier/{}", p.url, created.payment_token)
    );

    let got = client.get_payment("order-1").await.unwrap();
    assert_eq!(got.payment_token, created.payment_token);
    assert_eq!(got.status, "PENDING");

    let paid = p.cashier_sandbox_pay(&created.payment_token).await;
    assert_eq!(paid["status"], "PAID");
    let got = client.get_payment("order-1").await.unwrap();
    assert_eq!(got.status, "PAID");
    assert!(got.channel_transaction_id.is_some());

    // A partial refund, idempotent by its number.
    let refund = client
        .create_refund(
            &CreateRefund::new("order-1", "refund-1", Fen::new(300)).reason("one can missing"),
        )
        .await
        .unwrap();
    assert_eq!(
        (refund.amount, refund.out_trade_no.as_str()),
        (Fen::new(300), "order-1")
    );
    let again = client
        .create_refund(&CreateRefund::new("order-1", "refund-1", Fen::new(300)))
        .await
        .unwrap();
    assert_eq!(again.out_refund_no, "refund-1");
    let queried = client.get_refund("refund-1").await.unwrap();
    assert_eq!(queried.amount, Fen::new(300));
    assert_eq!(queried.status, "SUCCEEDED");
    let (status, code) = api_code(
        client
            .create_refund(&CreateRefund::new("order-1", "refund-1", Fen::new(301)))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (409, "OUT_REFUND_NO_USED"));
    // More than what is left.
    let (status, code) = api_code(
        client
            .create_refund(&CreateRefund::new("order-1", "refund-2", Fen::new(701)))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (400, "REFUND_INVALID"));
    // The rest.
    client
        .create_refund(&CreateRefund::new("order-1", "refund-3", Fen::new(700)))
        .await
        .unwrap();
    let got = client.get_payment("order-1").await.unwrap();
    assert_eq!(
        (got.status.as_str(), got.refunded_amount),
        ("REFUNDED", Fen::new(1000))
    );

    // An order without a method: the buyer would choose at the cashier; closed first.
    let open = client
        .create_payment(&CreatePayment::new("order-2", Fen::new(500), "Chips"))
        .await
        .unwrap();
    assert_eq!(
        (open.status.as_str(), open.method.as_deref()),
        ("PENDING", None)
    );
    let closed = client.close_payment("order-2").await.unwrap();
    assert_eq!(closed.status, "CLOSED");
    let choose = p
        .http
        .post(format!("{}/cashier/{}/method", p.url, open.payment_token))
        .json(&json!({"method": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(choose.status().as_u16(), 409);

    // A WeChat Native payment at the emulator, closed there too.
    let native = client
        .create_payment(&CreatePayment::new("order-3", Fen::new(250), "Water").channel("wechat"))
        .await
        .unwrap();
    assert_eq!(native.method.as_deref(), Some("wechat_native"));
    assert_eq!(native.pay.as_ref().unwrap()["type"], "qr_code");
    assert_eq!(
        client.close_payment("order-3").await.unwrap().status,
        "CLOSED"
    );

    let (status, code) = api_code(client.get_payment("no-such-order").await.unwrap_err());
    assert_eq!((status, code.as_str()), (404, "PAYMENT_NOT_FOUND"));
    let (status, code) = api_code(client.get_refund("no-such-refund").await.unwrap_err());
    assert_eq!((status, code.as_str()), (404, "REFUND_NOT_FOUND"));

    // The merchant heard of the payment and both refunds, each verified with merchant-client.
    eventually(15, "callbacks", async || {
        endpoint.accepted("payment.succeeded").len() == 1
            && endpoint.accepted("refund.succeeded").len() == 2
    })
    .await;
    let verifier = merchant_client::Callbacks::new(
        merchant_client::Secret::new(creds.secret.clone()),
        std::sync::Arc::new(merchant_client::MemoryHandledEvents::new()),
    );
    for d in endpoint.deliveries().into_iter().filter(|d| d.accepted) {
        let event = verifier.verify(&d.signature, d.body.as_bytes()).unwrap();
        if event["type"] == "payment.succeeded" {
            assert_eq!(event["data"]["out_trade_no"], "order-1");
            assert_eq!(event["data"]["amount"], 1000);
            assert_eq!(event["data"]["metadata"], json!({"shelf": 3}));
        }
    }
}

#[tokio::test]
async fn every_open_api_call_round_trips_through_merchant_client() {
    let p = Platform::start(Options::default()).await;
    every_call(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_answer_and_reject_other_requests() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let client = p.client(&p.register(&endpoint.url).await);
    let request = CreatePayment::new("idem-1", Fen::new(100), "Gum").method("sandbox");
    let first = client
        .create_payment_idempotent(&request, Some("key-1"))
        .await
        .unwrap();
    let replay = client
        .create_payment_idempotent(&request, Some("key-1"))
        .await
        .unwrap();
    assert_eq!(first, replay);

    // The same key with another request.
    let other = CreatePayment::new("idem-1", Fen::new(200), "Gum").method("sandbox");
    let (status, code) = api_code(
        client
            .create_payment_idempotent(&other, Some("key-1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (422, "IDEMPOTENCY_KEY_REUSED"));

    // Errors are replayed too: the order number is taken with other parameters…
    let (status, code) = api_code(
        client
            .create_payment_idempotent(&other, Some("key-2"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (409, "OUT_TRADE_NO_USED"));
    // …and that stored answer is what the key replays.
    let (status, code) = api_code(
        client
            .create_payment_idempotent(&other, Some("key-2"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (409, "OUT_TRADE_NO_USED"));

    // Without a key, the same payment again answers with the payment as it stands.
    let same = client
        .create_payment_idempotent(&request, None)
        .await
        .unwrap();
    assert_eq!(same.payment_token, first.payment_token);
    p.stop().await;
}

/// A request cut off after reserving its key (the platform crashed, the client went away) leaves
/// the key "in progress" only until its lease runs out; then the retry runs.
#[tokio::test]
async fn a_key_left_by_a_killed_request_is_taken_over_after_its_lease() {
    use sha2::{Digest, Sha256};
    let p = Platform::start(Options {
        idempotency_lease_secs: 1,
        ..Options::default()
    })
    .await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);
    let request = CreatePayment::new("idem-killed", Fen::new(100), "Gum").method("sandbox");
    // What the killed request left: its key reserved, no answer (the key binds the route and
    // the exact body, as the platform hashes them).
    let body = serde_json::to_value(&request)
        .unwrap()
        .to_string()
        .into_bytes();
    let hash = hex::encode(Sha256::digest(
        [b"POST /v1/payments\n".as_slice(), &body].concat(),
    ));
    let now = examples::clock::unix_now();
    let reserved = p
        .state
        .db
        .reserve_idempotency(
            &creds.app_id,
            "key-killed",
            &hash,
            now,
            p.state.settings.idempotency,
        )
        .await
        .unwrap();
    assert_eq!(reserved, examples::platform::db::Idempotent::Reserved);
    let (status, code) = api_code(
        client
            .create_payment_idempotent(&request, Some("key-killed"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status, code.as_str()),
        (409, "IDEMPOTENCY_KEY_IN_PROGRESS")
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let created = client
        .create_payment_idempotent(&request, Some("key-killed"))
        .await
        .expect("the retry after the lease runs");
    assert_eq!(created.out_trade_no, "idem-killed");
    let replay = client
        .create_payment_idempotent(&request, Some("key-killed"))
        .await
        .unwrap();
    assert_eq!(replay, created, "and its answer is the key's from now on");
    p.stop().await;
}

#[tokio::test]
async fn the_cashier_page_offers_methods_and_shows_the_qr_code() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let client = p.client(&p.register(&endpoint.url).await);
    let created = client
        .create_payment(&CreatePayment::new(
            "cash-1",
            Fen::new(1234),
            "<b>Snack</b>",
        ))
        .await
        .unwrap();
    let page = p.page(&created.cashier_url).await;
    assert!(page.contains("¥12.34"), "{page}");
    assert!(
        page.contains("&lt;b&gt;Snack&lt;/b&gt;"),
        "the subject is escaped"
    );
    assert!(page.contains("choose('wechat_native')") && page.contains("choose('alipay_qr')"));

    let chosen: serde_json::Value = p
        .http
        .post(format!(
            "{}/cashier/{}/method",
            p.url, created.payment_token
        ))
        .json(&json!({"method": "alipay_qr"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chosen["method"], "alipay_qr");
    assert_eq!(chosen["pay"]["type"], "qr_code");
    let page = p.page(&created.cashier_url).await;
    assert!(page.contains("<svg"), "the QR code is drawn");
    assert!(page.contains("Scan with Alipay"));

    // The buyer pays at the emulator's Alipay; its notification reaches /notify/alipay.
    p.pay_at_emulator(&client_app(&p, &created).await, "cash-1")
        .await;
    eventually(10, "the Alipay notification", async || {
        let s: serde_json::Value = p
            .http
            .get(format!(
                "{}/cashier/{}/status",
                p.url, created.payment_token
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["status"] == "PAID"
    })
    .await;
    assert_eq!(client.get_payment("cash-1").await.unwrap().status, "PAID");
    p.stop().await;
}

/// The platform's JSON routes (admin, cashier) answer malformed JSON with `{code, message}`,
/// and the cashier offers only the registered channels' scan-to-pay methods.
#[tokio::test]
async fn malformed_json_on_the_platform_is_answered_like_every_other_error() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let client = p.client(&p.register(&endpoint.url).await);
    let created = client
        .create_payment(&CreatePayment::new("json-1", Fen::new(100), "Snack"))
        .await
        .unwrap();
    let page = p.page(&created.cashier_url).await;
    assert!(!page.contains("choose('wechat_jsapi')"), "no in-app method");
    assert!(
        !page.contains("choose('alipay_page')"),
        "no redirect method"
    );

    let cashier = format!("{}/cashier/{}/method", p.url, created.payment_token);
    let admin = format!("{}/admin/merchants", p.url);
    for (url, content_type, body, status, code) in [
        (
            &cashier,
            "application/json",
            "{not json",
            400,
            "INVALID_JSON",
        ),
        (
            &cashier,
            "application/json",
            r#"{"method": 7}"#,
            422,
            "INVALID_REQUEST",
        ),
        (
            &cashier,
            "text/plain",
            r#"{"method": "alipay_qr"}"#,
            415,
            "CONTENT_TYPE_INVALID",
        ),
        (
            &cashier,
            "application/json",
            r#"{"method": "wechat_jsapi"}"#,
            422,
            "METHOD_INVALID",
        ),
        (&admin, "application/json", "[", 400, "INVALID_JSON"),
        (
            &admin,
            "application/json",
            r#"{"name": []}"#,
            422,
            "INVALID_REQUEST",
        ),
    ] {
        let resp = p
            .http
            .post(url)
            .bearer_auth(super::ADMIN_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let got = resp.status().as_u16();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(
            (got, answer["code"].as_str().unwrap_or_default()),
            (status, code),
            "{url} {body}: {answer}"
        );
        assert!(answer["message"].is_string(), "{answer}");
    }
    p.stop().await;
}

/// The app id that owns a payment token.
async fn client_app(p: &Platform, view: &merchant_client::PaymentView) -> String {
    p.state
        .db
        .order_by_token(&view.payment_token)
        .await
        .unwrap()
        .unwrap()
        .merchant_id
}

/// The open API over WeChat Pay API v3 (`DEMO_WECHAT_API=v3`): a Native payment paid at the
/// emulator (v3 notification), refunded in part through v3 (the refund notification ends it),
/// the merchant told of both.
#[tokio::test]
async fn the_open_api_takes_wechat_payments_over_api_v3() {
    let mut providers = examples::platform::config::PlatformConfig::embedded().providers;
    providers.wechat_pay.demo_wechat_api = "v3".into();
    let p = Platform::start(Options {
        providers: Some(providers),
        ..Options::default()
    })
    .await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);
    let created = client
        .create_payment(&CreatePayment::new("v3-order-1", Fen::new(880), "Tea").channel("wechat"))
        .await
        .unwrap();
    assert_eq!(created.method.as_deref(), Some("wechat_native"));
    assert_eq!(created.pay.as_ref().unwrap()["type"], "qr_code");
    let no = p.platform_no(&creds.app_id, "v3-order-1").await;
    let (status, body) = crate::support::control_at(
        &p.emulator_url,
        "/sandbox/pay",
        &json!({"out_trade_no": no}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually(
        15,
        "the payment paid through the v3 notification",
        async || client.get_payment("v3-order-1").await.unwrap().status == "PAID",
    )
    .await;
    let refund = client
        .create_refund(&CreateRefund::new(
            "v3-order-1",
            "v3-refund-1",
            Fen::new(300),
        ))
        .await
        .unwrap();
    assert_eq!(refund.amount, Fen::new(300));
    eventually(20, "the v3 refund to succeed", async || {
        client.get_refund("v3-refund-1").await.unwrap().status == "SUCCEEDED"
    })
    .await;
    let log = crate::support::inspect_at(&p.emulator_url, "/sandbox/orders").await;
    let order = log["wechat"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["out_trade_no"] == no.as_str())
        .unwrap()
        .clone();
    assert_eq!(order["sign_type"], "RSA", "made through API v3: {order}");
    assert_eq!(order["refunded"], 300);
    eventually(15, "callbacks", async || {
        endpoint.accepted("payment.succeeded").len() == 1
            && endpoint.accepted("refund.succeeded").len() == 1
    })
    .await;
    p.stop().await;
}
