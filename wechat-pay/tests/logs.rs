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
}
