//! WeChat Pay moves a merchant from platform certificates to the public key, as WeChat runs it
//! (a growing share of notifications signed with the public key over seven days, answers signed
//! with the key the request names, `/v3/certificates` refused at the end): a merchant whose
//! client holds both walks through the whole week without a single failed notification.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use wechat_pay::Fen;
use wechat_pay::v3::{
    ApiV3Key, Client, MerchantKey, NativeOrder, Notification, OrderRequest, QueryTransaction,
    TransactionRef, WechatPayKey,
};
use wechat_sandbox::Sandbox;
use wechat_sandbox::control::PayRequest;

use crate::support::{
    APP_ID, V3_API_KEY, V3_CERT_MCH_ID, V3_MERCHANT_KEY, V3_SERIAL, eventually, sandbox_builder,
    start_mp_callbacks, unique,
};

/// The certificate-mode merchant's client, with the public key beside its certificates when
/// given.
fn certificate_client(sandbox: &Sandbox, public_key: Option<WechatPayKey>) -> Client {
    let builder = Client::builder(
        V3_CERT_MCH_ID,
        V3_SERIAL,
        MerchantKey::from_pem(V3_MERCHANT_KEY).unwrap(),
        ApiV3Key::new(V3_API_KEY).unwrap(),
    )
    .platform_certificates()
    .base_url(sandbox.base_url());
    match public_key {
        Some(key) => builder.wechat_pay_key(key),
        None => builder,
    }
    .build()
    .unwrap()
}

/// A Native order, made and paid: its number.
async fn order_and_pay(client: &Client, sandbox: &Sandbox, notify_url: &str) -> String {
    let no = unique("KS");
    client
        .execute(&NativeOrder(OrderRequest::new(
            APP_ID,
            "Cola",
            &no,
            Fen::new(100),
            notify_url,
        )))
        .await
        .unwrap();
    sandbox.pay_with(&PayRequest::new(&no)).await.unwrap();
    no
}

#[tokio::test]
async fn a_merchant_walks_through_the_switch_without_a_failed_notification() {
    // A week of WeChat's time in about four seconds.
    let sandbox = sandbox_builder(&start_mp_callbacks().await)
        .time_scale(150_000.0)
        .start()
        .await
        .unwrap();
    let (key_id, pem) = sandbox.wechatpay_public_key();
    // The merchant configures the public key beside its certificates as WeChat starts.
    let client = certificate_client(
        &sandbox,
        Some(WechatPayKey::from_pem(key_id.clone(), &pem).unwrap()),
    );

    // The merchant's notify URL verifies each notification as a server would.
    let (verified, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let app = {
        let (client, verified, failed) = (client.clone(), verified.clone(), failed.clone());
        axum::Router::new().route(
            "/notify",
            post(move |headers: HeaderMap, body: Bytes| {
                let (client, verified, failed) = (client.clone(), verified.clone(), failed.clone());
                async move {
                    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                    match client.notification(header, &body).await {
                        Ok((_, Notification::Transaction(_))) => {
                            verified.fetch_add(1, Ordering::SeqCst);
                            axum::http::StatusCode::NO_CONTENT
                        }
                        other => {
                            eprintln!("notification refused: {other:?}");
                            failed.fetch_add(1, Ordering::SeqCst);
                            axum::http::StatusCode::INTERNAL_SERVER_ERROR
                        }
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    assert!(sandbox.start_key_switch(V3_CERT_MCH_ID));
    assert!(!sandbox.start_key_switch(V3_CERT_MCH_ID), "once");
    let mut paid = 0u64;
    loop {
        let view = sandbox
            .key_switches()
            .into_iter()
            .find(|s| s.switch.mch_id == V3_CERT_MCH_ID)
            .unwrap();
        // Answers are signed with the key the request names (the public key's id): the client
        // verifies every one of them.
        let no = order_and_pay(&client, &sandbox, &notify_url).await;
        client
            .execute(&QueryTransaction(TransactionRef::OutTradeNo(no)))
            .await
            .unwrap();
        paid += 1;
        if view.done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    eventually(20, "every notification verified", async || {
        verified.load(Ordering::SeqCst) == paid
    })
    .await;
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no notification failed");

    let view = sandbox
        .key_switches()
        .into_iter()
        .find(|s| s.switch.mch_id == V3_CERT_MCH_ID)
        .unwrap();
    assert!(view.done && view.public_key_share == 1.0);
    // Both keys signed notifications along the way, and the client counted both.
    assert!(view.switch.signed_by_certificate > 0, "{view:?}");
    assert!(view.switch.signed_by_public_key > 0, "{view:?}");
    let (by_public_key, by_certificate) = client.verified_by_key();
    assert!(
        by_public_key > 0 && by_certificate > 0,
        "{by_public_key} {by_certificate}"
    );

    // Public-key-only now: no certificates to download, and nothing fails for lack of them.
    let certificates_only = certificate_client(&sandbox, None);
    let refused = certificates_only
        .ensure_certificates(None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, wechat_pay::Error::V3Api { status: 404, .. }),
        "{refused:?}"
    );
    order_and_pay(&client, &sandbox, &notify_url).await;
    eventually(20, "the last notification verified", async || {
        verified.load(Ordering::SeqCst) == paid + 1
    })
    .await;
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    sandbox.shutdown().await;
}
