//! The API key never reaches the logs.
//!
//! A test binary of its own: a `tracing` subscriber set for one thread can miss events while
//! tests on other threads register the same call sites (their interest is cached globally), so
//! no other test runs in this process.

// Test helpers outside `#[test]` functions panic on purpose: that is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "wechat_pay/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use wechat_pay::{Client, CloseOrder, Fen};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::support::{APP_ID, KEY, MCH_ID, key, signer, xml};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_never_show_the_key() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(xml(signer().reply(Default::default())))
        .mount(&server)
        .await;
    let client = Client::builder(APP_ID, MCH_ID, key())
        .base_url(server.uri())
        .build()
        .unwrap();
    client.execute(&CloseOrder::new("o1")).await.unwrap();
    client
        .verify_payment_notification(signer().payment_notification("o1", Fen::new(1)).as_bytes())
        .await
        .unwrap();
    // A failing call logs too.
    let _ = Client::builder(APP_ID, MCH_ID, key())
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap()
        .execute(&CloseOrder::new("o1"))
        .await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("wechat pay request"),
        "the capture must see our logs: {logs}"
    );
    assert!(!logs.contains(KEY), "the API key leaked into the logs");

    // API v3: neither the API v3 key nor the merchant's private key, whatever happens.
    let v3_logs = v3_calls(&capture).await;
    assert!(
        v3_logs.contains("wechat pay v3 request"),
        "the capture must see the v3 logs: {v3_logs}"
    );
    assert!(
        !v3_logs.contains(V3_KEY),
        "the API v3 key leaked into the logs"
    );
    let private = include_str!("../testdata/v3/merchant_private_key.pem");
    for line in private.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !v3_logs.contains(line),
            "the private key leaked into the logs"
        );
    }
    assert!(
        !v3_logs.contains("token=secret-download-token"),
        "a download token leaked"
    );
}

const V3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";

async fn v3_calls(capture: &Capture) -> String {
    use wechat_pay::test_util::V3Wechat;
    use wechat_pay::v3::{self, ApiV3Key, MerchantKey, QueryRefund, WechatPayKey};
    capture.0.lock().unwrap().clear();
    let wechat = V3Wechat::new(
        include_str!("../testdata/v3/wechatpay_private_key.pem"),
        "PUB_KEY_ID_1",
        ApiV3Key::new(V3_KEY).unwrap(),
    )
    .unwrap();
    let server = MockServer::start().await;
    let body = serde_json::json!({"refund_id": "1", "out_refund_no": "R1", "status": "SUCCESS",
        "amount": {"total": 1, "refund": 1}})
    .to_string();
    let mut answer =
        wiremock::ResponseTemplate::new(200).set_body_raw(body.clone(), "application/json");
    for (k, v) in wechat.sign(&body) {
        answer = answer.insert_header(k, v.as_str());
    }
    Mock::given(method("GET"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let client = v3::Client::builder(
        "1900009191",
        "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        MerchantKey::from_pem(include_str!("../testdata/v3/merchant_private_key.pem")).unwrap(),
        ApiV3Key::new(V3_KEY).unwrap(),
    )
    .wechat_pay_key(
        WechatPayKey::from_pem(
            "PUB_KEY_ID_1",
            include_str!("../testdata/v3/wechatpay_public_key.pem"),
        )
        .unwrap(),
    )
    .base_url(server.uri())
    .build()
    .unwrap();
    client.execute(&QueryRefund::new("R1")).await.unwrap();
    let link: v3::BillLink = serde_json::from_value(serde_json::json!({
        "hash_type": "SHA1", "hash_value": "00",
        "download_url": "http://x/v3/billdownload/file?token=secret-download-token",
    }))
    .unwrap();
    let _ = client.download(&link, false).await;
    tracing::debug!(?client, "the client as Debug");
    String::from_utf8(capture.0.lock().unwrap().clone()).unwrap()
}
