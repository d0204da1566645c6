//! Certificate mode against a wiremock gateway and a certificate authority of the test's own: the
//! SNs go out on every request; an answer naming the configured certificate verifies; an answer
//! naming a certificate the client does not hold makes it download that certificate once, check
//! it chains to the root, and verify with it (and with nothing else); a certificate from another
//! authority is refused and not asked for again at once; a forged answer is refused; a
//! notification signed with a rotated certificate's key is accepted.

use alipay::test_util::{TestGateway, TestPki};
use alipay::{Certificates, Client, Error, PrivateKey, SignatureError, TradeQuery, TradeRef, cert};
use base64::Engine;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{APP_ID, app_key, app_public_key, gateway_key};

struct Fixture {
    pki: TestPki,
    certs: Certificates,
    alipay_sn: String,
}

fn fixture() -> Fixture {
    let pki = TestPki::new("Test").unwrap();
    let app_cert = pki
        .issue("2088000000000042-app", &app_public_key())
        .unwrap();
    let alipay_cert = pki.issue("Alipay", &gateway_key().public_key()).unwrap();
    let certs = Certificates::from_pem(&app_cert, &alipay_cert, pki.root_pem()).unwrap();
    let alipay_sn = certs.alipay_cert_sn().to_owned();
    assert_eq!(certs.app_cert_sn(), cert::cert_sn(&app_cert).unwrap());
    Fixture {
        pki,
        certs,
        alipay_sn,
    }
}

fn client(server: &MockServer, certs: &Certificates) -> Client {
    Client::builder(APP_ID, app_key(), certs.clone())
        .base_url(server.uri())
        .build()
        .unwrap()
}

/// Matches a gateway call of `method`.
struct Method(&'static str);

impl wiremock::Match for Method {
    fn matches(&self, request: &wiremock::Request) -> bool {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
            .is_ok_and(|form| form.iter().any(|(k, v)| k == "method" && v == self.0))
    }
}

fn answer(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_string(body)
}

fn paid() -> Value {
    json!({"code": "10000", "msg": "Success", "out_trade_no": "C1", "trade_no": "2024C1",
           "trade_status": "TRADE_SUCCESS", "total_amount": "1.00"})
}

fn query() -> TradeQuery {
    TradeQuery::new(TradeRef::OutTradeNo("C1".into()))
}

/// The download's answer: `pem` in base64, signed by `signer` naming `sn`.
fn download_answer(signer: &TestGateway, pem: &str) -> String {
    let content = base64::engine::general_purpose::STANDARD.encode(pem);
    signer
        .response(
            "alipay.open.app.alipaycert.download",
            &json!({"code": "10000", "msg": "Success", "alipay_cert_content": content}),
        )
        .unwrap()
}

#[tokio::test]
async fn requests_carry_both_sns_and_an_answer_of_the_configured_certificate_verifies() {
    let f = fixture();
    let server = MockServer::start().await;
    let gateway = TestGateway::new(gateway_key()).with_cert_sn(&f.alipay_sn);
    Mock::given(Method("alipay.trade.query"))
        .respond_with(answer(
            gateway.response("alipay.trade.query", &paid()).unwrap(),
        ))
        .mount(&server)
        .await;
    let got = client(&server, &f.certs).execute(&query()).await.unwrap();
    assert_eq!(got.trade_no, "2024C1");

    let sent = &server.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&sent.body).unwrap();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("app_cert_sn").as_deref(), Some(f.certs.app_cert_sn()));
    assert_eq!(
        get("alipay_root_cert_sn").as_deref(),
        Some(f.certs.root_cert_sn())
    );
    // The root file holds an ECDSA root too: only the RSA one counts.
    assert!(!f.certs.root_cert_sn().contains('_'));
    // The SNs are signed: the app's signature covers them.
    let content = alipay::sign::canonical(
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        alipay::sign::REQUEST_EXCLUDES,
    );
    assert!(content.contains("app_cert_sn="));
    app_public_key()
        .verify(&content, &get("sign").unwrap())
        .unwrap();
}

#[tokio::test]
async fn an_answer_under_a_new_certificate_downloads_it_once_and_verifies_with_it() {
    let f = fixture();
    let rotated_key = PrivateKey::generate().unwrap();
    let rotated_cert = f.pki.issue("Alipay 2", &rotated_key.public_key()).unwrap();
    let rotated_sn = cert::cert_sn(&rotated_cert).unwrap();
    assert_ne!(rotated_sn, f.alipay_sn);
    let rotated = TestGateway::new(rotated_key.clone()).with_cert_sn(&rotated_sn);

    let server = MockServer::start().await;
    Mock::given(Method("alipay.trade.query"))
        .respond_with(answer(
            rotated.response("alipay.trade.query", &paid()).unwrap(),
        ))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(Method("alipay.open.app.alipaycert.download"))
        .respond_with(answer(download_answer(&rotated, &rotated_cert)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, &f.certs);
    assert_eq!(client.execute(&query()).await.unwrap().trade_no, "2024C1");
    // Held now: no second download.
    assert_eq!(client.execute(&query()).await.unwrap().trade_no, "2024C1");
    let asked = server.received_requests().await.unwrap();
    let download = asked
        .iter()
        .find(|r| String::from_utf8_lossy(&r.body).contains("alipaycert.download"))
        .unwrap();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&download.body).unwrap();
    let biz = &form.iter().find(|(k, _)| k == "biz_content").unwrap().1;
    assert_eq!(
        serde_json::from_str::<Value>(biz).unwrap(),
        json!({"alipay_cert_sn": rotated_sn})
    );

    // Notifications signed with the new key verify; so do those of the old one (in flight).
    let fields = [
        ("app_id", APP_ID),
        ("out_trade_no", "C1"),
        ("trade_no", "2024C1"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "1.00"),
        ("notify_id", "n1"),
        ("notify_time", "2024-01-01 00:00:00"),
    ];
    for signer in [&rotated, &TestGateway::new(gateway_key())] {
        let body = signer.notification(&fields).unwrap();
        client.verify_notification(body.as_bytes()).unwrap();
    }
    let stranger = TestGateway::new(PrivateKey::generate().unwrap());
    assert_eq!(
        client
            .verify_notification(stranger.notification(&fields).unwrap().as_bytes())
            .err(),
        Some(Error::Signature(SignatureError::Mismatch))
    );
}

#[tokio::test]
async fn a_certificate_from_another_authority_is_refused_and_not_asked_for_again_at_once() {
    let f = fixture();
    let other_pki = TestPki::new("Elsewhere").unwrap();
    let forged_key = PrivateKey::generate().unwrap();
    let forged_cert = other_pki.issue("Alipay", &forged_key.public_key()).unwrap();
    let forged_sn = cert::cert_sn(&forged_cert).unwrap();
    let forger = TestGateway::new(forged_key).with_cert_sn(&forged_sn);

    let server = MockServer::start().await;
    Mock::given(Method("alipay.trade.query"))
        .respond_with(answer(
            forger.response("alipay.trade.query", &paid()).unwrap(),
        ))
        .mount(&server)
        .await;
    Mock::given(Method("alipay.open.app.alipaycert.download"))
        .respond_with(answer(download_answer(&forger, &forged_cert)))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, &f.certs);
    assert_eq!(
        client.execute(&query()).await.err(),
        Some(Error::Signature(SignatureError::UntrustedCertificate))
    );
    assert_eq!(
        client.execute(&query()).await.err(),
        Some(Error::Signature(SignatureError::UnknownCertificate))
    );
}

#[tokio::test]
async fn a_forged_answer_is_refused_in_certificate_mode() {
    let f = fixture();
    // Names the configured certificate, signed with another key.
    let forger = TestGateway::new(PrivateKey::generate().unwrap()).with_cert_sn(&f.alipay_sn);
    // Names the configured certificate, signed right, then changed.
    let honest = TestGateway::new(gateway_key()).with_cert_sn(&f.alipay_sn);
    let tampered = honest
        .response("alipay.trade.query", &paid())
        .unwrap()
        .replace("2024C1", "2024C2");
    // The right download, but the answer about it signed by a stranger.
    let rotated_key = PrivateKey::generate().unwrap();
    let rotated_cert = f.pki.issue("Alipay 3", &rotated_key.public_key()).unwrap();
    let rotated_sn = cert::cert_sn(&rotated_cert).unwrap();
    let impostor = TestGateway::new(PrivateKey::generate().unwrap()).with_cert_sn(&rotated_sn);
    for (what, query_answer, download) in [
        (
            "another key",
            forger.response("alipay.trade.query", &paid()).unwrap(),
            None,
        ),
        ("tampered", tampered, None),
        (
            "download signed by a stranger",
            TestGateway::new(rotated_key)
                .with_cert_sn(&rotated_sn)
                .response("alipay.trade.query", &paid())
                .unwrap(),
            Some(download_answer(&impostor, &rotated_cert)),
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(Method("alipay.trade.query"))
            .respond_with(answer(query_answer))
            .mount(&server)
            .await;
        if let Some(body) = download {
            Mock::given(Method("alipay.open.app.alipaycert.download"))
                .respond_with(answer(body))
                .mount(&server)
                .await;
        }
        assert_eq!(
            client(&server, &f.certs).execute(&query()).await.err(),
            Some(Error::Signature(SignatureError::Mismatch)),
            "{what}"
        );
    }
}

#[test]
fn half_a_certificate_mode_is_refused_and_nothing_secret_prints() {
    let f = fixture();
    let app_cert = f.pki.issue("app", &app_public_key()).unwrap();
    assert!(matches!(
        Certificates::from_pem(&app_cert, "", f.pki.root_pem()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        Certificates::from_pem(&app_cert, &app_cert, "not a certificate"),
        Err(Error::Config(_))
    ));
    let client = Client::builder(APP_ID, app_key(), f.certs.clone())
        .build()
        .unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains(f.certs.app_cert_sn()), "{shown}");
    assert!(!shown.contains("PRIVATE"), "{shown}");
}

#[tokio::test]
async fn many_answers_under_a_new_certificate_at_once_download_it_once() {
    let f = fixture();
    let rotated_key = PrivateKey::generate().unwrap();
    let rotated_cert = f.pki.issue("Alipay 4", &rotated_key.public_key()).unwrap();
    let rotated_sn = cert::cert_sn(&rotated_cert).unwrap();
    let rotated = TestGateway::new(rotated_key).with_cert_sn(&rotated_sn);
    let server = MockServer::start().await;
    Mock::given(Method("alipay.trade.query"))
        .respond_with(answer(
            rotated.response("alipay.trade.query", &paid()).unwrap(),
        ))
        .mount(&server)
        .await;
    // A slow download: every caller arrives while it is under way.
    Mock::given(Method("alipay.open.app.alipaycert.download"))
        .respond_with(
            answer(download_answer(&rotated, &rotated_cert))
                .set_delay(std::time::Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, &f.certs);
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.execute(&query()).await })
    });
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().trade_no, "2024C1");
    }
}
