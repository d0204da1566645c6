//! The API key never reaches `Debug` output or logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use wechat_pay::{ApiKey, Client, ClientCertificate, CloseOrder, Fen};
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

#[test]
fn debug_output_never_shows_the_key() {
    let builder = Client::builder(APP_ID, MCH_ID, key());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    let cert = ClientCertificate::from_pem(
        ck.cert.pem().as_bytes(),
        ck.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let key_pem = ck.signing_key.serialize_pem();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_owned();
    for text in [
        builder_debug,
        format!("{client:?}"),
        format!("{client:#?}"),
        format!("{:?}", ApiKey::new(KEY)),
        format!("{}", ApiKey::new(KEY)),
        format!("{cert:?}"),
        format!("{:?}", signer()),
        format!("{:?}", wechat_pay::notify::NotifySignType::FromBody),
    ] {
        assert!(!text.contains(KEY), "the API key leaked: {text}");
        assert!(!text.contains(&key_body), "the private key leaked: {text}");
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
