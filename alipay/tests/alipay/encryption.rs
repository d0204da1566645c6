//! Content encryption (`encrypt_type=AES`): the request's content is encrypted, then signed; the
//! answer's ciphertext is verified as it stands, then decrypted. A forged encrypted answer, or an
//! encrypted answer to a client without the key, is refused.

use alipay::{AesKey, Client, Error, TradeQuery, TradeRef, sign};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{APP_ID, app_key, app_public_key, gateway, gateway_key};

fn key() -> AesKey {
    AesKey::from_base64("AAECAwQFBgcICQoLDA0ODw==").unwrap()
}

fn client(server: &MockServer, aes: Option<AesKey>) -> Client {
    let builder =
        Client::builder(APP_ID, app_key(), gateway_key().public_key()).base_url(server.uri());
    match aes {
        Some(k) => builder.aes_key(k),
        None => builder,
    }
    .build()
    .unwrap()
}

fn query() -> TradeQuery {
    TradeQuery::new(TradeRef::OutTradeNo("E1".into()))
}

#[tokio::test]
async fn the_content_is_encrypted_then_signed_and_the_answer_verified_then_decrypted() {
    let server = MockServer::start().await;
    let answer = json!({"code": "10000", "msg": "Success", "out_trade_no": "E1",
                        "trade_no": "2024E1", "trade_status": "TRADE_SUCCESS", "total_amount": "1.00"});
    let body = gateway()
        .encrypted_response("alipay.trade.query", &answer, &key())
        .unwrap();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let got = client(&server, Some(key()))
        .execute(&query())
        .await
        .unwrap();
    assert_eq!(got.trade_no, "2024E1");

    let sent = &server.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&sent.body).unwrap();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("encrypt_type").as_deref(), Some("AES"));
    let biz = get("biz_content").unwrap();
    assert!(!biz.contains("E1"), "sent in the clear: {biz}");
    assert!(
        key()
            .decrypt(&biz)
            .unwrap()
            .contains(r#""out_trade_no":"E1""#)
    );
    // The signature covers the ciphertext and encrypt_type.
    let content = sign::canonical(
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::REQUEST_EXCLUDES,
    );
    assert!(content.contains("encrypt_type=AES"));
    app_public_key()
        .verify(&content, &get("sign").unwrap())
        .unwrap();
}

#[tokio::test]
async fn a_forged_or_unreadable_encrypted_answer_is_refused() {
    let answer = json!({"code": "10000", "msg": "Success", "out_trade_no": "E1", "trade_no": "T",
                        "trade_status": "TRADE_SUCCESS", "total_amount": "1.00"});
    let good = gateway()
        .encrypted_response("alipay.trade.query", &answer, &key())
        .unwrap();
    // Signed by someone else; the ciphertext changed after signing; no key to read it.
    let forged = alipay::test_util::TestGateway::new(app_key())
        .encrypted_response("alipay.trade.query", &answer, &key())
        .unwrap();
    let tampered = {
        let at = good.find(r#"_response":""#).unwrap() + r#"_response":""#.len();
        let first = if &good[at..=at] == "A" { "B" } else { "A" };
        format!("{}{first}{}", &good[..at], &good[at + 1..])
    };
    for (what, body, aes) in [
        ("forged", forged, Some(key())),
        ("tampered", tampered, Some(key())),
        ("no key", good, None),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        match client(&server, aes).execute(&query()).await {
            Err(Error::Signature(_)) if what != "no key" => {}
            Err(Error::Decode { .. }) if what == "no key" => {}
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[test]
fn the_key_never_prints() {
    let server_free = Client::builder(APP_ID, app_key(), gateway_key().public_key())
        .aes_key(key())
        .build()
        .unwrap();
    let shown = format!("{server_free:?}");
    assert!(!shown.contains("AAECAwQFBgcICQoLDA0ODw=="), "{shown}");
    assert!(shown.contains("AesKey(***)"), "{shown}");
}
