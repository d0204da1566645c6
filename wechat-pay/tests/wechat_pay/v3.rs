//! API v3 against wiremock playing WeChat Pay (its signatures made by `test_util::V3Wechat`):
//! a JSAPI payment end to end, each failure of a response's signature, error bodies, 204s,
//! refunds, notifications.

use serde_json::{Value, json};
use wechat_pay::test_util::V3Wechat;
use wechat_pay::v3::{
    self, ApiV3Key, Client, CloseTransaction, CreateRefund, JsapiOrder, MerchantKey, Notification,
    OrderRequest, QueryRefund, QueryTransaction, RefundStatus, SignatureError, TradeState,
    TransactionRef, V3ErrorCode, WechatPayKey,
};
use wechat_pay::{Error, Fen};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MERCHANT: &str = include_str!("../../testdata/v3/merchant_private_key.pem");
const MERCHANT_PUBLIC: &str = include_str!("../../testdata/v3/merchant_public_key.pem");
const WECHATPAY_PRIVATE: &str = include_str!("../../testdata/v3/wechatpay_private_key.pem");
const WECHATPAY_PUBLIC: &str = include_str!("../../testdata/v3/wechatpay_public_key.pem");
const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const MCH: &str = "1900009191";
const APP: &str = "wxd678efh567hg6787";
const SERIAL: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";

fn api_key() -> ApiV3Key {
    ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").unwrap()
}

fn wechat() -> V3Wechat {
    V3Wechat::new(WECHATPAY_PRIVATE, KEY_ID, api_key()).unwrap()
}

fn client(server: &MockServer) -> Client {
    Client::builder(
        MCH,
        SERIAL,
        MerchantKey::from_pem(MERCHANT).unwrap(),
        api_key(),
    )
    .wechat_pay_key(WechatPayKey::from_pem(KEY_ID, WECHATPAY_PUBLIC).unwrap())
    .base_url(server.uri())
    .build()
    .unwrap()
}

/// A 200 JSON answer signed by "WeChat Pay" with `headers` (default: now, the right key).
fn signed(body: &Value, headers: Vec<(&'static str, String)>) -> ResponseTemplate {
    let mut r = ResponseTemplate::new(200).set_body_raw(body.to_string(), "application/json");
    for (k, v) in headers {
        r = r.insert_header(k, v.as_str());
    }
    r
}

/// Signed headers, as `V3Wechat` makes them.
type Headers = Vec<(&'static str, String)>;

/// A header lookup over signed headers.
fn lookup<'h>(headers: &'h [(&'static str, String)]) -> impl Fn(&str) -> Option<&'h str> {
    move |name| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Checks the request's `Authorization` against the merchant's public key.
fn assert_signed_by_merchant(request: &wiremock::Request) {
    let auth = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    let fields: std::collections::HashMap<&str, &str> = auth
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .unwrap()
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.trim_matches('"'))
        })
        .collect();
    assert_eq!(fields["mchid"], MCH);
    assert_eq!(fields["serial_no"], SERIAL);
    let path = match request.url.query() {
        Some(q) => format!("{}?{q}", request.url.path()),
        None => request.url.path().to_owned(),
    };
    let message = format!(
        "{}\n{path}\n{}\n{}\n{}\n",
        request.method,
        fields["timestamp"],
        fields["nonce_str"],
        String::from_utf8_lossy(&request.body)
    );
    let merchant = WechatPayKey::from_pem("merchant", MERCHANT_PUBLIC).unwrap();
    assert!(
        merchant.verifies(message.as_bytes(), fields["signature"]),
        "{auth}"
    );
}

#[tokio::test]
async fn a_jsapi_payment_end_to_end() {
    let server = MockServer::start().await;
    let prepay = json!({"prepay_id": "wx201410272009395522657a690389285100"});
    Mock::given(method("POST"))
        .and(path("/v3/pay/transactions/jsapi"))
        .respond_with(signed(&prepay, wechat().sign(&prepay.to_string())))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let order = JsapiOrder {
        order: OrderRequest::new(
            APP,
            "Cola",
            "V3ORDER0001",
            Fen::new(350),
            "https://shop.example/notify",
        ),
        openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
    };
    let created = c.execute(&order).await.unwrap();
    assert_eq!(created.prepay_id, "wx201410272009395522657a690389285100");
    let requests = server.received_requests().await.unwrap();
    assert_signed_by_merchant(&requests[0]);
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["mchid"], MCH);
    assert_eq!(sent["amount"]["total"], 350, "fen, an integer");
    assert_eq!(sent["payer"]["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");

    // What wx.requestPayment gets: RSA over appId\ntimeStamp\nnonceStr\npackage\n.
    let params = c.jsapi_params(APP, &created.prepay_id).unwrap();
    assert_eq!(params.sign_type, "RSA");
    let message = format!(
        "{}\n{}\n{}\n{}\n",
        params.app_id, params.time_stamp, params.nonce_str, params.package
    );
    let merchant = WechatPayKey::from_pem("merchant", MERCHANT_PUBLIC).unwrap();
    assert!(merchant.verifies(message.as_bytes(), &params.pay_sign));

    // WeChat's notification: verified, decrypted, typed; answered 204.
    let resource = json!({
        "appid": APP, "mchid": MCH, "out_trade_no": "V3ORDER0001",
        "transaction_id": "4200000000000000000000000001", "trade_type": "JSAPI",
        "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
        "success_time": "2026-12-03T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 350, "payer_total": 350, "currency": "CNY", "payer_currency": "CNY"},
    });
    let (body, headers) = wechat().notification("TRANSACTION.SUCCESS", "transaction", &resource);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (envelope, event) = c.notification(header, body.as_bytes()).await.unwrap();
    assert_eq!(envelope.event_type, "TRANSACTION.SUCCESS");
    let Notification::Transaction(t) = event else {
        panic!("{event:?}")
    };
    assert_eq!(t.trade_state, TradeState::Success);
    assert_eq!(t.amount.unwrap().total, Fen::new(350));
    assert_eq!(v3::notify::reply_success(), (204, String::new()));
}

#[tokio::test]
async fn each_bad_response_signature_is_its_own_error() {
    let server = MockServer::start().await;
    let body = json!({"prepay_id": "wx1"});
    let text = body.to_string();
    let now = v3::client::unix_now();
    let cases: Vec<(&str, Headers, Value)> = vec![
        (
            "tampered",
            wechat().sign(&text),
            json!({"prepay_id": "wx2"}),
        ),
        ("stale", wechat().sign_at(&text, now - 400), body.clone()),
        (
            "serial",
            wechat()
                .sign(&text)
                .into_iter()
                .map(|(k, v)| {
                    if k == "Wechatpay-Serial" {
                        (k, "PUB_KEY_ID_OTHER".into())
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            body.clone(),
        ),
        (
            "probe",
            wechat()
                .sign(&text)
                .into_iter()
                .map(|(k, v)| {
                    if k == "Wechatpay-Signature" {
                        (k, format!("WECHATPAY/SIGNTEST/{v}"))
                    } else {
                        (k, v)
                    }
                })
                .collect(),
            body.clone(),
        ),
        (
            "missing",
            wechat()
                .sign(&text)
                .into_iter()
                .filter(|(k, _)| *k != "Wechatpay-Nonce")
                .collect(),
            body.clone(),
        ),
    ];
    let c = client(&server);
    for (case, headers, served) in cases {
        server.reset().await;
        Mock::given(method("GET"))
            .respond_with(signed(&served, headers))
            .mount(&server)
            .await;
        let e = c.execute(&QueryRefund::new("R1")).await.unwrap_err();
        let expected = match case {
            "tampered" => matches!(e, Error::V3Signature(SignatureError::Mismatch)),
            "stale" => matches!(e, Error::V3Signature(SignatureError::Stale { .. })),
            "serial" => matches!(e, Error::V3Signature(SignatureError::UnknownSerial(_))),
            "probe" => matches!(e, Error::V3Signature(SignatureError::Probe)),
            _ => matches!(
                e,
                Error::V3Signature(SignatureError::MissingHeader("Wechatpay-Nonce"))
            ),
        };
        assert!(expected, "{case}: {e:?}");
        assert!(!e.is_retryable(), "{case}");
    }
}

#[tokio::test]
async fn error_bodies_204s_queries_and_refunds() {
    let server = MockServer::start().await;
    let c = client(&server);
    // An error answer: typed code, status, retryable or not.
    let err = json!({"code": "SYSTEM_ERROR", "message": "系统错误", "detail": {"field": "x"}});
    Mock::given(method("POST"))
        .and(path("/v3/refund/domestic/refunds"))
        .respond_with(ResponseTemplate::new(500).set_body_raw(err.to_string(), "application/json"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let refund = CreateRefund::new(
        TransactionRef::OutTradeNo("V3ORDER0001".into()),
        "V3REFUND01",
        Fen::new(100),
        Fen::new(350),
    )
    .reason("sold out");
    let e = c.execute(&refund).await.unwrap_err();
    match &e {
        Error::V3Api {
            status,
            code,
            detail,
            ..
        } => {
            assert_eq!((*status, code), (500, &V3ErrorCode::SystemError));
            assert_eq!(detail.as_ref().unwrap()["field"], "x");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_retryable());
    // The same refund again: accepted, processing.
    let record = json!({
        "refund_id": "50000000382019052709732678859", "out_refund_no": "V3REFUND01",
        "transaction_id": "4200000000000000000000000001", "out_trade_no": "V3ORDER0001",
        "status": "PROCESSING",
        "amount": {"total": 350, "refund": 100, "payer_total": 350, "payer_refund": 100, "currency": "CNY"},
    });
    Mock::given(method("POST"))
        .and(path("/v3/refund/domestic/refunds"))
        .respond_with(signed(&record, wechat().sign(&record.to_string())))
        .mount(&server)
        .await;
    let r = c.execute(&refund).await.unwrap();
    assert_eq!(r.status, RefundStatus::Processing);
    assert_eq!(r.amount.refund, Fen::new(100));
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[1].body).unwrap();
    assert_eq!(sent["out_trade_no"], "V3ORDER0001");
    assert_eq!(
        sent["amount"],
        json!({"refund": 100, "total": 350, "currency": "CNY"})
    );

    // A 204 without a body.
    Mock::given(method("POST"))
        .and(path("/v3/pay/transactions/out-trade-no/V3ORDER0002/close"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    c.execute(&CloseTransaction {
        out_trade_no: "V3ORDER0002".into(),
    })
    .await
    .unwrap();
    // A query, with mchid in the query string (signed with it).
    let unpaid = json!({"appid": APP, "mchid": MCH, "out_trade_no": "V3ORDER0002", "trade_state": "NOTPAY", "trade_state_desc": "未支付"});
    Mock::given(method("GET"))
        .and(path("/v3/pay/transactions/out-trade-no/V3ORDER0002"))
        .respond_with(signed(&unpaid, wechat().sign(&unpaid.to_string())))
        .mount(&server)
        .await;
    let q = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(
            "V3ORDER0002".into(),
        )))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::NotPay);
    let last = server.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(last.url.query(), Some("mchid=1900009191"));
    assert_signed_by_merchant(&last);
    // Every request names the WeChat Pay public key the client holds: during WeChat's switch
    // from platform certificates, answers are signed with the key a request names.
    for request in server.received_requests().await.unwrap() {
        let named = request
            .headers
            .get("wechatpay-serial")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(named.as_deref(), Some(KEY_ID), "{}", request.url);
    }
}

#[tokio::test]
async fn notifications_refuse_the_wrong_key_and_tampering_and_keep_unknown_events() {
    let server = MockServer::start().await;
    let c = client(&server);
    // A refund notification.
    let refund = json!({
        "mchid": MCH, "out_trade_no": "V3ORDER0001", "transaction_id": "42000",
        "out_refund_no": "V3REFUND01", "refund_id": "50000", "refund_status": "SUCCESS",
        "success_time": "2026-12-03T10:00:00+08:00",
        "amount": {"total": 350, "refund": 100, "payer_total": 350, "payer_refund": 100},
    });
    let (body, headers) = wechat().notification("REFUND.SUCCESS", "refund", &refund);
    let (_, event) = c
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap();
    assert!(
        matches!(event, Notification::Refund(r) if r.refund_status == RefundStatus::Success && r.amount.refund == Fen::new(100))
    );
    // An event this crate does not model: kept as JSON.
    let (body, headers) = wechat().notification(
        "TRANSFER.BILL_FINISHED",
        "mch_payment",
        &json!({"out_bill_no": "B1"}),
    );
    let (_, event) = c
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap();
    assert!(
        matches!(event, Notification::Other { ref resource, .. } if resource["out_bill_no"] == "B1"),
        "{event:?}"
    );
    // Encrypted with another API v3 key: authentic signature, but it does not decrypt.
    let other = V3Wechat::new(
        WECHATPAY_PRIVATE,
        KEY_ID,
        ApiV3Key::new("ABCDEFGHIJ0123456789abcdefghij01").unwrap(),
    )
    .unwrap();
    let (body, headers) = other.notification("REFUND.SUCCESS", "refund", &refund);
    let e = c
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::V3Decrypt(v3::aead::DecryptError::Authentication)),
        "{e:?}"
    );
    // A tampered body: refused before anything is decrypted.
    let (body, headers) = wechat().notification("REFUND.SUCCESS", "refund", &refund);
    let tampered = body.replace("REFUND.SUCCESS", "REFUND.ABNORMAL");
    let e = c
        .notification(lookup(&headers), tampered.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::V3Signature(SignatureError::Mismatch)),
        "{e:?}"
    );
    let (status, fail) = v3::notify::reply_fail("busy");
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&fail).unwrap()["code"],
        "FAIL"
    );
}

#[test]
fn secrets_never_reach_debug_output() {
    let c = Client::builder(
        MCH,
        SERIAL,
        MerchantKey::from_pem(MERCHANT).unwrap(),
        api_key(),
    )
    .wechat_pay_key(WechatPayKey::from_pem(KEY_ID, WECHATPAY_PUBLIC).unwrap())
    .build()
    .unwrap();
    let shown = format!("{c:?}");
    assert!(
        shown.contains("MerchantKey(***)") && shown.contains("ApiV3Key(***)"),
        "{shown}"
    );
    assert!(!shown.contains("0123456789abcdefghij"), "{shown}");
    assert!(!shown.contains("BEGIN"), "{shown}");
}

const CERT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

/// WeChat Pay signing as its platform certificate (serial `CERT_SERIAL`).
fn wechat_as_certificate() -> V3Wechat {
    V3Wechat::new(WECHATPAY_PRIVATE, CERT_SERIAL, api_key()).unwrap()
}

/// The `/v3/certificates` answer: the certificate encrypted with the API v3 key, signed by it.
fn certificates_answer() -> ResponseTemplate {
    let pem = include_str!("../../testdata/v3/wechatpay_certificate.pem");
    let ciphertext = v3::aead::encrypt(&api_key(), pem, "a1b2c3d4e5f6", "certificate").unwrap();
    let body = json!({"data": [{
        "serial_no": CERT_SERIAL,
        "effective_time": "2026-01-01T00:00:00+08:00",
        "expire_time": "2031-01-01T00:00:00+08:00",
        "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": "a1b2c3d4e5f6",
            "associated_data": "certificate", "ciphertext": ciphertext},
    }]});
    signed(&body, wechat_as_certificate().sign(&body.to_string()))
}

fn certificate_client(server: &MockServer) -> Client {
    certificate_client_every(server, v3::DEFAULT_DOWNLOAD_INTERVAL)
}

fn certificate_client_every(server: &MockServer, interval: std::time::Duration) -> Client {
    Client::builder(
        MCH,
        SERIAL,
        MerchantKey::from_pem(MERCHANT).unwrap(),
        api_key(),
    )
    .platform_certificates()
    .certificate_download_interval(interval)
    .base_url(server.uri())
    .build()
    .unwrap()
}

/// Issue 27, finding 4: any unauthenticated POST with an unknown `Wechatpay-Serial` made the
/// client download certificates with the merchant's credentials (20 forged requests, 20
/// downloads). Now what needs no key is checked first, and downloads on demand are at most one
/// a minute.
#[tokio::test]
async fn forged_notifications_cannot_make_the_client_download_certificates() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/certificates"))
        .respond_with(certificates_answer())
        .mount(&server)
        .await;
    let c = certificate_client(&server);
    c.ensure_certificates(None).await.unwrap();
    assert_eq!(c.certificate_downloads(), 1);
    let now = v3::client::unix_now();
    let body = br#"{"id":"forged","event_type":"TRANSACTION.SUCCESS"}"#;
    let forged = |serial: String, timestamp: i64, signature: String| {
        vec![
            ("Wechatpay-Serial".to_owned(), serial),
            ("Wechatpay-Timestamp".to_owned(), timestamp.to_string()),
            ("Wechatpay-Nonce".to_owned(), "n".to_owned()),
            ("Wechatpay-Signature".to_owned(), signature),
        ]
    };
    fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    let right_shape = base64::engine::general_purpose::STANDARD.encode([9u8; 256]);
    // Refused before any key is needed: stale, probes, junk signatures.
    for (serial, ts, sig) in [
        (format!("{:040}", 1), now - 3600, right_shape.clone()),
        (
            format!("{:040}", 2),
            now,
            format!("WECHATPAY/SIGNTEST/{right_shape}"),
        ),
        (format!("{:040}", 3), now, "forged".to_owned()),
        (
            format!("{:040}", 4),
            now,
            base64::engine::general_purpose::STANDARD.encode([9u8; 16]),
        ),
    ] {
        let headers = forged(serial, ts, sig);
        let e = c.verify(|n| find(&headers, n), body).await.unwrap_err();
        assert!(matches!(e, Error::V3Signature(_)), "{e:?}");
    }
    assert_eq!(c.certificate_downloads(), 1, "no download for those");
    // 100 of the right shape, fresh, each with a new unknown serial, one after another (as an
    // attacker sends them), then 100 at once.
    for i in 0..100 {
        let headers = forged(format!("{i:040X}"), now, right_shape.clone());
        let r = c.verify(|n| find(&headers, n), body).await;
        assert!(
            matches!(r, Err(Error::V3Signature(SignatureError::UnknownSerial(_)))),
            "{r:?}"
        );
    }
    let attempts = (100..200).map(|i| {
        let c = c.clone();
        let headers = forged(format!("{i:040X}"), now, right_shape.clone());
        async move { c.verify(|n| find(&headers, n), body).await }
    });
    for r in futures_util::future::join_all(attempts).await {
        assert!(
            matches!(r, Err(Error::V3Signature(SignatureError::UnknownSerial(_)))),
            "{r:?}"
        );
    }
    assert!(
        c.certificate_downloads() <= 2,
        "at most one download more: {}",
        c.certificate_downloads()
    );
    let made = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v3/certificates")
        .count();
    assert!(made <= 2, "{made} downloads");
}

#[tokio::test]
async fn platform_certificates_are_downloaded_once_for_a_hundred_first_calls() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/certificates"))
        .respond_with(certificates_answer())
        .expect(1)
        .mount(&server)
        .await;
    let record = json!({
        "refund_id": "50000", "out_refund_no": "R1", "status": "SUCCESS",
        "amount": {"total": 350, "refund": 350},
    });
    Mock::given(method("GET"))
        .and(path("/v3/refund/domestic/refunds/R1"))
        .respond_with(signed(
            &record,
            wechat_as_certificate().sign(&record.to_string()),
        ))
        .mount(&server)
        .await;
    let c = certificate_client(&server);
    let calls = (0..100).map(|_| {
        let c = c.clone();
        async move { c.execute(&QueryRefund::new("R1")).await }
    });
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.unwrap().status, RefundStatus::Success);
    }
    assert!(c.wechat_pay_key(CERT_SERIAL).is_some());
    // A client with platform certificates only names no key (WeChat signs with a certificate).
    for request in server.received_requests().await.unwrap() {
        assert!(
            request.headers.get("wechatpay-serial").is_none(),
            "{}",
            request.url
        );
    }
    server.verify().await;
}

#[tokio::test]
async fn an_unknown_serial_refreshes_the_certificates_then_fails_by_name() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/certificates"))
        .respond_with(certificates_answer())
        .expect(2)
        .mount(&server)
        .await;
    let c = certificate_client_every(&server, std::time::Duration::ZERO);
    c.ensure_certificates(None).await.unwrap();
    // Signed by a key no certificate carries: one more download, then a named failure.
    let stranger = V3Wechat::new(
        MERCHANT,
        "7777777777777777777777777777777777777777",
        api_key(),
    )
    .unwrap();
    let record = json!({"refund_id": "1", "out_refund_no": "R2", "status": "SUCCESS", "amount": {"total": 1, "refund": 1}});
    Mock::given(method("GET"))
        .and(path("/v3/refund/domestic/refunds/R2"))
        .respond_with(signed(&record, stranger.sign(&record.to_string())))
        .mount(&server)
        .await;
    let e = c.execute(&QueryRefund::new("R2")).await.unwrap_err();
    assert!(
        matches!(e, Error::V3Signature(SignatureError::UnknownSerial(ref s)) if s.starts_with("7777")),
        "{e:?}"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_tampered_certificate_list_is_refused() {
    let server = MockServer::start().await;
    let pem = include_str!("../../testdata/v3/wechatpay_certificate.pem");
    // Encrypted with another API v3 key: it does not decrypt.
    let other = ApiV3Key::new("ABCDEFGHIJ0123456789abcdefghij01").unwrap();
    let ciphertext = v3::aead::encrypt(&other, pem, "a1b2c3d4e5f6", "certificate").unwrap();
    let body = json!({"data": [{"serial_no": CERT_SERIAL, "encrypt_certificate": {
        "algorithm": "AEAD_AES_256_GCM", "nonce": "a1b2c3d4e5f6", "associated_data": "certificate",
        "ciphertext": ciphertext}}]});
    Mock::given(method("GET"))
        .and(path("/v3/certificates"))
        .respond_with(signed(
            &body,
            wechat_as_certificate().sign(&body.to_string()),
        ))
        .mount(&server)
        .await;
    let e = certificate_client(&server)
        .ensure_certificates(None)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::V3Decrypt(_)), "{e:?}");
}

type Call =
    Box<dyn Fn(Client) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>>>>>;

/// Every endpoint: (name, method, path, a call, a valid answer).
fn endpoints() -> Vec<(&'static str, &'static str, &'static str, Call, Value)> {
    use wechat_pay::v3::{
        AbnormalRefund, AbnormalRefundTo, AppOrder, CancelTransfer, CreateTransfer, H5Order,
        NativeOrder, Partner, PartnerCloseTransaction, PartnerQueryTransaction, QueryTransfer,
        TradeBill,
    };
    fn call<R: v3::Request + Clone + 'static>(r: R) -> Call {
        Box::new(move |c: Client| {
            let r = r.clone();
            Box::pin(async move { c.execute(&r).await.map(|_| ()) })
        })
    }
    let order = || {
        OrderRequest::new(
            APP,
            "Cola",
            "V3ORDER0003",
            Fen::new(350),
            "https://n.example/",
        )
    };
    let prepay = json!({"prepay_id": "wx1"});
    let transaction =
        json!({"appid": APP, "mchid": MCH, "out_trade_no": "V3ORDER0003", "trade_state": "NOTPAY"});
    let refund = json!({"refund_id": "5", "out_refund_no": "R3", "status": "PROCESSING", "amount": {"total": 350, "refund": 350}});
    let transfer = json!({"out_bill_no": "T1", "transfer_bill_no": "1330000", "state": "ACCEPTED"});
    let by_no = || TransactionRef::OutTradeNo("V3ORDER0003".into());
    let mut v = vec![
        (
            "jsapi",
            "POST",
            "/v3/pay/transactions/jsapi",
            call(JsapiOrder {
                order: order(),
                openid: "o1".into(),
            }),
            prepay.clone(),
        ),
        (
            "native",
            "POST",
            "/v3/pay/transactions/native",
            call(NativeOrder(order())),
            json!({"code_url": "weixin://wxpay/bizpayurl?pr=1"}),
        ),
        (
            "app",
            "POST",
            "/v3/pay/transactions/app",
            call(AppOrder(order())),
            prepay.clone(),
        ),
        (
            "h5",
            "POST",
            "/v3/pay/transactions/h5",
            call(H5Order {
                order: order(),
                payer_client_ip: "203.0.113.7".into(),
                h5_type: "Wap".into(),
            }),
            json!({"h5_url": "https://wx.tenpay.com/x"}),
        ),
        (
            "query",
            "GET",
            "/v3/pay/transactions/out-trade-no/V3ORDER0003",
            call(QueryTransaction(by_no())),
            transaction.clone(),
        ),
        (
            "query by id",
            "GET",
            "/v3/pay/transactions/id/42000",
            call(QueryTransaction(TransactionRef::TransactionId(
                "42000".into(),
            ))),
            transaction.clone(),
        ),
        (
            "refund",
            "POST",
            "/v3/refund/domestic/refunds",
            call(CreateRefund::new(
                by_no(),
                "R3",
                Fen::new(350),
                Fen::new(350),
            )),
            refund.clone(),
        ),
        (
            "refund query",
            "GET",
            "/v3/refund/domestic/refunds/R3",
            call(QueryRefund::new("R3")),
            refund.clone(),
        ),
        (
            "abnormal refund",
            "POST",
            "/v3/refund/domestic/refunds/5/apply-abnormal-refund",
            call(AbnormalRefund {
                refund_id: "5".into(),
                out_refund_no: "R3".into(),
                to: AbnormalRefundTo::MerchantBankCard,
                sub_mchid: None,
            }),
            refund.clone(),
        ),
        (
            "transfer",
            "POST",
            "/v3/fund-app/mch-transfer/transfer-bills",
            call(
                CreateTransfer::new(APP, "T1", "1000", "o1", Fen::new(100), "prize")
                    .user_name("张三"),
            ),
            transfer.clone(),
        ),
        (
            "transfer query",
            "GET",
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/T1",
            call(QueryTransfer {
                out_bill_no: "T1".into(),
            }),
            transfer.clone(),
        ),
        (
            "transfer cancel",
            "POST",
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/T1/cancel",
            call(CancelTransfer {
                out_bill_no: "T1".into(),
            }),
            transfer.clone(),
        ),
        (
            "trade bill",
            "GET",
            "/v3/bill/tradebill",
            call(TradeBill {
                bill_date: time::macros::date!(2026 - 12 - 01),
                bill_type: wechat_pay::BillType::All,
                gzip: false,
                sub_mchid: None,
            }),
            json!({"hash_type": "SHA1", "hash_value": "0", "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x"}),
        ),
        (
            "partner jsapi",
            "POST",
            "/v3/pay/partner/transactions/jsapi",
            call(JsapiOrder {
                order: order().for_sub_merchant(Partner::new("1900000109").sub_appid("wxsub")),
                openid: "o1".into(),
            }),
            prepay.clone(),
        ),
        (
            "partner query",
            "GET",
            "/v3/pay/partner/transactions/out-trade-no/V3ORDER0003",
            call(PartnerQueryTransaction {
                by: by_no(),
                sub_mchid: "1900000109".into(),
            }),
            json!({"sp_appid": APP, "sp_mchid": MCH, "sub_mchid": "1900000109", "out_trade_no": "V3ORDER0003", "trade_state": "NOTPAY"}),
        ),
        (
            "partner close",
            "POST",
            "/v3/pay/partner/transactions/out-trade-no/V3ORDER0003/close",
            call(PartnerCloseTransaction {
                out_trade_no: "V3ORDER0003".into(),
                sub_mchid: "1900000109".into(),
            }),
            json!({}),
        ),
    ];
    v.extend(profit_sharing_endpoints());
    v
}

/// The profit-sharing endpoints, each with a valid answer.
fn profit_sharing_endpoints() -> Vec<(&'static str, &'static str, &'static str, Call, Value)> {
    use wechat_pay::v3::{
        AddReceiver, CreateReturn, CreateSharing, QueryReturn, QuerySharing, ReceiverType,
        RelationType, Share, SharingRef, UnsplitAmount,
    };
    fn call<R: v3::Request + Clone + 'static>(r: R) -> Call {
        Box::new(move |c: Client| {
            let r = r.clone();
            Box::pin(async move { c.execute(&r).await.map(|_| ()) })
        })
    }
    let order = json!({"sub_mchid": "1900000109", "transaction_id": "4200000001", "out_order_no": "P1",
                       "order_id": "3008450740201411110007820472", "state": "FINISHED",
                       "receivers": [{"type": "MERCHANT_ID", "account": "1900000110", "amount": 35,
                                      "description": "fee", "result": "SUCCESS", "detail_id": "36011111"}]});
    let returned = json!({"sub_mchid": "1900000109", "out_order_no": "P1", "out_return_no": "PR1",
                          "return_mchid": "1900000110", "amount": 35, "result": "SUCCESS"});
    vec![
        (
            "add receiver",
            "POST",
            "/v3/profitsharing/receivers/add",
            call(
                AddReceiver::new(
                    APP,
                    ReceiverType::MerchantId,
                    "1900000110",
                    RelationType::ServiceProvider,
                )
                .sub_mchid("1900000109")
                .name("平台"),
            ),
            json!({"sub_mchid": "1900000109", "type": "MERCHANT_ID", "account": "1900000110", "relation_type": "SERVICE_PROVIDER"}),
        ),
        (
            "share",
            "POST",
            "/v3/profitsharing/orders",
            call(
                CreateSharing::new(
                    APP,
                    "4200000001",
                    "P1",
                    vec![Share::new(
                        ReceiverType::MerchantId,
                        "1900000110",
                        Fen::new(35),
                        "fee",
                    )],
                    true,
                )
                .sub_mchid("1900000109"),
            ),
            order.clone(),
        ),
        (
            "query sharing",
            "GET",
            "/v3/profitsharing/orders/P1",
            call(QuerySharing::new("4200000001", "P1").sub_mchid("1900000109")),
            order,
        ),
        (
            "return",
            "POST",
            "/v3/profitsharing/return-orders",
            call(
                CreateReturn::new(
                    SharingRef::OutOrderNo("P1".into()),
                    "PR1",
                    "1900000110",
                    Fen::new(35),
                    "refund",
                )
                .sub_mchid("1900000109"),
            ),
            returned.clone(),
        ),
        (
            "query return",
            "GET",
            "/v3/profitsharing/return-orders/PR1",
            call(QueryReturn::new("P1", "PR1").sub_mchid("1900000109")),
            returned,
        ),
        (
            "unsplit amount",
            "GET",
            "/v3/profitsharing/transactions/4200000001/amounts",
            call(UnsplitAmount {
                transaction_id: "4200000001".into(),
            }),
            json!({"transaction_id": "4200000001", "unsplit_amount": 315}),
        ),
    ]
}

#[tokio::test]
async fn every_endpoint_verifies_its_answer_and_names_each_failure() {
    let server = MockServer::start().await;
    let c = client(&server);
    let now = v3::client::unix_now();
    for (name, verb, route, call, answer) in endpoints() {
        let text = answer.to_string();
        let replace = |key: &'static str, f: &dyn Fn(String) -> String| -> Headers {
            wechat()
                .sign(&text)
                .into_iter()
                .map(|(k, v)| if k == key { (k, f(v)) } else { (k, v) })
                .collect()
        };
        let cases: Vec<(&str, ResponseTemplate)> = vec![
            ("ok", signed(&answer, wechat().sign(&text))),
            (
                "tampered",
                signed(&json!({"tampered": true}), wechat().sign(&text)),
            ),
            (
                "serial",
                signed(
                    &answer,
                    replace("Wechatpay-Serial", &|_| "PUB_KEY_ID_OTHER".into()),
                ),
            ),
            (
                "stale",
                signed(&answer, wechat().sign_at(&text, now - 3600)),
            ),
            (
                "probe",
                signed(
                    &answer,
                    replace("Wechatpay-Signature", &|v| {
                        format!("WECHATPAY/SIGNTEST/{v}")
                    }),
                ),
            ),
            (
                "error",
                ResponseTemplate::new(400).set_body_raw(
                    json!({"code": "PARAM_ERROR", "message": "参数错误"}).to_string(),
                    "application/json",
                ),
            ),
        ];
        for (case, response) in cases {
            server.reset().await;
            Mock::given(method(verb))
                .and(path(route))
                .respond_with(response)
                .mount(&server)
                .await;
            let result = call(c.clone()).await;
            let ok = match case {
                "ok" => result.is_ok(),
                "tampered" => matches!(result, Err(Error::V3Signature(SignatureError::Mismatch))),
                "serial" => matches!(
                    result,
                    Err(Error::V3Signature(SignatureError::UnknownSerial(_)))
                ),
                "stale" => matches!(
                    result,
                    Err(Error::V3Signature(SignatureError::Stale { .. }))
                ),
                "probe" => matches!(result, Err(Error::V3Signature(SignatureError::Probe))),
                _ => matches!(
                    result,
                    Err(Error::V3Api {
                        status: 400,
                        code: V3ErrorCode::ParamError,
                        ..
                    })
                ),
            };
            assert!(ok, "{name} / {case}: {result:?}");
            let requests = server.received_requests().await.unwrap();
            assert_eq!(requests.len(), 1, "{name} / {case}");
            assert_signed_by_merchant(&requests[0]);
        }
    }
}

#[tokio::test]
async fn sensitive_fields_are_encrypted_to_wechat_and_partner_bodies_name_the_sub_merchant() {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use base64::Engine as _;
    use wechat_pay::v3::{CreateTransfer, Partner};
    let server = MockServer::start().await;
    let c = client(&server);
    let transfer = json!({"out_bill_no": "T1", "transfer_bill_no": "1330000", "state": "WAIT_USER_CONFIRM", "package_info": "affffddafdfafddffda=="});
    Mock::given(method("POST"))
        .and(path("/v3/fund-app/mch-transfer/transfer-bills"))
        .respond_with(signed(&transfer, wechat().sign(&transfer.to_string())))
        .mount(&server)
        .await;
    let created = c
        .execute(
            &CreateTransfer::new(APP, "T1", "1000", "o1", Fen::new(200_000), "prize")
                .user_name("张三")
                .report("活动名称", "新会员有礼"),
        )
        .await
        .unwrap();
    assert_eq!(created.state, v3::TransferState::WaitUserConfirm);
    let request = server.received_requests().await.unwrap().remove(0);
    assert_eq!(
        request
            .headers
            .get("wechatpay-serial")
            .unwrap()
            .to_str()
            .unwrap(),
        KEY_ID,
        "the key the name was encrypted to"
    );
    let sent: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent["transfer_amount"], 200_000);
    let cipher = sent["user_name"].as_str().unwrap();
    assert_ne!(cipher, "张三");
    let block = pem::parse(WECHATPAY_PRIVATE).unwrap();
    let private =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(block.contents()).unwrap())
            .unwrap();
    let ct = base64::engine::general_purpose::STANDARD
        .decode(cipher)
        .unwrap();
    let mut out = vec![0u8; private.min_output_size()];
    let plain = private
        .decrypt(&OAEP_SHA1_MGF1SHA1, &ct, &mut out, None)
        .unwrap();
    assert_eq!(std::str::from_utf8(plain).unwrap(), "张三");

    // Partner mode: sp_ and sub_ fields, the payer under the sub-merchant's app.
    server.reset().await;
    let prepay = json!({"prepay_id": "wx2"});
    Mock::given(method("POST"))
        .and(path("/v3/pay/partner/transactions/jsapi"))
        .respond_with(signed(&prepay, wechat().sign(&prepay.to_string())))
        .mount(&server)
        .await;
    c.execute(&JsapiOrder {
        order: OrderRequest::new(
            APP,
            "Cola",
            "V3ORDER0004",
            Fen::new(350),
            "https://n.example/",
        )
        .for_sub_merchant(Partner::new("1900000109").sub_appid("wxsubapp")),
        openid: "o_sub".into(),
    })
    .await
    .unwrap();
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["sp_mchid"], MCH);
    assert_eq!(sent["sp_appid"], APP);
    assert_eq!(sent["sub_mchid"], "1900000109");
    assert_eq!(sent["sub_appid"], "wxsubapp");
    assert_eq!(sent["payer"], json!({"sub_openid": "o_sub"}));
    assert!(sent.get("mchid").is_none());
}

#[tokio::test]
async fn bills_are_checked_against_their_hash_and_decompressed() {
    use std::io::Write as _;
    use wechat_pay::v3::TradeBill;
    let server = MockServer::start().await;
    let c = client(&server);
    let bill = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n\
`2026-12-01 10:00:00,`wxd678efh567hg6787,`1900009191,`0,`,`4200000000000000000000000001,`V3ORDER0001,`o1,`JSAPI,`SUCCESS,`CMC,`CNY,`3.50,`0.00,`0,`0,`0.00,`0.00,`,`,`Cola,`,`0.02,`0.60%,`3.50,`0.00,`\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\
`1,`3.50,`0.00,`0.00,`0.02,`3.50,`0.00\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bill.as_bytes()).unwrap();
    let file = gz.finish().unwrap();
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &file);
    let hash: String = sha1.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    for (hash_value, good) in [(hash.clone(), true), ("0".repeat(40), false)] {
        server.reset().await;
        let link = json!({"hash_type": "SHA1", "hash_value": hash_value,
            "download_url": "https://api.mch.weixin.qq.com/v3/billdownload/file?token=6XIv5TUPto7pByrTQKhd6kwvyKLG2uY2wMMR8cNXqaA_Cv_isgaUtBzp4QtiozLO"});
        Mock::given(method("GET"))
            .and(path("/v3/bill/tradebill"))
            .respond_with(signed(&link, wechat().sign(&link.to_string())))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v3/billdownload/file"))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(file.clone()))
            .mount(&server)
            .await;
        let result = c
            .trade_bill(&TradeBill {
                bill_date: time::macros::date!(2026 - 12 - 01),
                bill_type: wechat_pay::BillType::All,
                gzip: true,
                sub_mchid: None,
            })
            .await;
        if good {
            let bill = result.unwrap();
            assert_eq!(bill.rows.len(), 1);
            assert_eq!(bill.rows[0].out_trade_no, "V3ORDER0001");
            // The file was fetched from this client's gateway, with a signed request.
            let requests = server.received_requests().await.unwrap();
            assert_eq!(requests[1].url.path(), "/v3/billdownload/file");
            assert_signed_by_merchant(&requests[1]);
        } else {
            let e = result.unwrap_err();
            assert!(e.to_string().contains("SHA-1"), "{e}");
        }
    }
}

#[tokio::test]
async fn certificates_are_refreshed_in_the_background_while_a_client_lives() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/certificates"))
        .respond_with(certificates_answer())
        .mount(&server)
        .await;
    let c = certificate_client(&server);
    let task = c.spawn_certificate_refresh(std::time::Duration::from_millis(50));
    for _ in 0..100 {
        if server.received_requests().await.unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(server.received_requests().await.unwrap().len() >= 2);
    assert!(c.wechat_pay_key(CERT_SERIAL).is_some());
    drop(c);
    // With every clone gone, the task ends by itself.
    tokio::time::timeout(std::time::Duration::from_secs(2), task)
        .await
        .expect("the refresh task ends with the client")
        .unwrap();
}

#[tokio::test]
async fn profit_sharing_bodies_name_the_sub_merchant_encrypt_names_and_notify() {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, PrivateDecryptingKey};
    use base64::Engine as _;
    use wechat_pay::v3::{
        AddReceiver, CreateSharing, DeleteReceiver, ReceiverType, RelationType, Share, ShareResult,
        SharingState, UnfreezeSharing,
    };
    let server = MockServer::start().await;
    let c = client(&server);
    let receiver = json!({"type": "MERCHANT_ID", "account": "1900000110"});
    let order = json!({"transaction_id": "4200000001", "out_order_no": "P1", "order_id": "30084",
                       "state": "PROCESSING",
                       "receivers": [{"type": "MERCHANT_ID", "account": "1900000110", "amount": 35,
                                      "description": "fee", "result": "PENDING"}]});
    for (route, answer) in [
        ("/v3/profitsharing/receivers/add", &receiver),
        ("/v3/profitsharing/receivers/delete", &receiver),
        ("/v3/profitsharing/orders", &order),
        ("/v3/profitsharing/orders/unfreeze", &order),
    ] {
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(signed(answer, wechat().sign(&answer.to_string())))
            .mount(&server)
            .await;
    }
    let added = c
        .execute(
            &AddReceiver::new(
                APP,
                ReceiverType::MerchantId,
                "1900000110",
                RelationType::ServiceProvider,
            )
            .sub_mchid("1900000109")
            .name("示例平台有限公司"),
        )
        .await
        .unwrap();
    assert_eq!(added.receiver_type, ReceiverType::MerchantId);
    let shared = c
        .execute(&CreateSharing::new(
            APP,
            "4200000001",
            "P1",
            vec![Share::new(
                ReceiverType::MerchantId,
                "1900000110",
                Fen::new(35),
                "fee",
            )],
            false,
        ))
        .await
        .unwrap();
    assert_eq!(shared.state, SharingState::Processing);
    assert_eq!(shared.receivers[0].result, ShareResult::Pending);
    assert_eq!(shared.receivers[0].amount, Fen::new(35));
    c.execute(&DeleteReceiver::new(
        APP,
        ReceiverType::MerchantId,
        "1900000110",
    ))
    .await
    .unwrap();
    c.execute(&UnfreezeSharing::new("4200000001", "P1-rest", "done").sub_mchid("1900000109"))
        .await
        .unwrap();

    let sent: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    // The receiver: the sub-merchant named, the name encrypted to WeChat Pay's key.
    assert_eq!(sent[0]["sub_mchid"], "1900000109");
    assert_eq!(sent[0]["type"], "MERCHANT_ID");
    assert_eq!(sent[0]["relation_type"], "SERVICE_PROVIDER");
    let block = pem::parse(WECHATPAY_PRIVATE).unwrap();
    let private =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(block.contents()).unwrap())
            .unwrap();
    let ct = base64::engine::general_purpose::STANDARD
        .decode(sent[0]["name"].as_str().unwrap())
        .unwrap();
    let mut out = vec![0u8; private.min_output_size()];
    let plain = private
        .decrypt(&OAEP_SHA1_MGF1SHA1, &ct, &mut out, None)
        .unwrap();
    assert_eq!(std::str::from_utf8(plain).unwrap(), "示例平台有限公司");
    // Directly (no sub-merchant): no sub_mchid; amounts as integers of fen.
    assert!(sent[1].get("sub_mchid").is_none());
    assert_eq!(sent[1]["receivers"][0]["amount"], 35);
    assert_eq!(sent[1]["unfreeze_unsplit"], false);
    assert_eq!(sent[2]["account"], "1900000110");
    assert_eq!(sent[3]["sub_mchid"], "1900000109");
    assert_eq!(sent[3]["out_order_no"], "P1-rest");

    // The order asks for its money to be frozen for sharing.
    let order = OrderRequest::new(
        APP,
        "Cola",
        "V3ORDER0009",
        Fen::new(350),
        "https://n.example/",
    )
    .profit_sharing();
    server.reset().await;
    let prepay = json!({"prepay_id": "wx9"});
    Mock::given(method("POST"))
        .and(path("/v3/pay/transactions/jsapi"))
        .respond_with(signed(&prepay, wechat().sign(&prepay.to_string())))
        .mount(&server)
        .await;
    c.execute(&JsapiOrder {
        order,
        openid: "o1".into(),
    })
    .await
    .unwrap();
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["settle_info"], json!({"profit_sharing": true}));

    // A share's notification.
    let (body, headers) = wechat().notification(
        "PROFITSHARING.SUCCESS",
        "profitsharing",
        &json!({"sp_mchid": MCH, "sub_mchid": "1900000109", "transaction_id": "4200000001",
                "order_id": "30084", "out_order_no": "P1",
                "receiver": {"type": "MERCHANT_ID", "account": "1900000110", "amount": 35, "description": "fee"},
                "success_time": "2026-12-07T10:00:00+08:00"}),
    );
    let (_, event) = c
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap();
    match event {
        Notification::ProfitSharing(n) => {
            assert_eq!(n.out_order_no, "P1");
            assert_eq!(n.receiver.amount, Fen::new(35));
            assert_eq!(n.sub_mchid.as_deref(), Some("1900000109"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn partner_answers_name_both_merchants_and_bills_one_sub_merchant() {
    use wechat_pay::v3::{Request as _, TradeBill, Transaction};
    let t: Transaction = serde_json::from_value(json!({
        "sp_appid": APP, "sp_mchid": MCH, "sub_mchid": "1900000109", "sub_appid": "wxsubapp",
        "out_trade_no": "P1", "trade_state": "SUCCESS", "transaction_id": "4200000001",
        "payer": {"sp_openid": "o_sp", "sub_openid": "o_sub"},
        "amount": {"total": 350, "payer_total": 350, "currency": "CNY"}
    }))
    .unwrap();
    assert_eq!((t.appid.as_str(), t.mchid.as_str()), (APP, MCH));
    assert_eq!(t.sub_mchid.as_deref(), Some("1900000109"));
    assert_eq!(t.sub_appid.as_deref(), Some("wxsubapp"));
    let payer = t.payer.unwrap();
    assert_eq!(payer.openid, "o_sp");
    assert_eq!(payer.sub_openid.as_deref(), Some("o_sub"));
    let bill = TradeBill {
        bill_date: time::macros::date!(2026 - 12 - 06),
        bill_type: wechat_pay::BillType::All,
        gzip: false,
        sub_mchid: Some("1900000109".into()),
    };
    assert_eq!(
        bill.path(MCH),
        "/v3/bill/tradebill?bill_date=2026-12-06&bill_type=ALL&sub_mchid=1900000109"
    );
}

/// A notification "signed" under the merchant's own certificate serial is said to be not
/// WeChat's; a clock offset moves the clock requests are signed and answers checked with.
#[tokio::test]
async fn an_own_serial_and_an_off_clock_are_explained() {
    let server = MockServer::start().await;
    let c = client(&server);
    let resource =
        serde_json::json!({"mchid": MCH, "out_trade_no": "A1", "trade_state": "SUCCESS"});
    let mimic = V3Wechat::new(WECHATPAY_PRIVATE, SERIAL, api_key()).unwrap();
    let (body, headers) = mimic.notification("TRANSACTION.SUCCESS", "transaction", &resource);
    let e = c
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::V3Signature(v3::SignatureError::MerchantSerial(_))),
        "{e:?}"
    );
    assert!(e.to_string().contains("never signs"), "{e}");

    // A client whose clock is set back ten minutes (`clock_offset(-600)`) sees a fresh
    // notification as 600 s ahead of it, and says so; the client on the real clock verifies it.
    let (body, headers) = wechat().notification("TRANSACTION.SUCCESS", "transaction", &resource);
    let behind = Client::builder(
        MCH,
        SERIAL,
        MerchantKey::from_pem(MERCHANT).unwrap(),
        api_key(),
    )
    .wechat_pay_key(WechatPayKey::from_pem(KEY_ID, WECHATPAY_PUBLIC).unwrap())
    .clock_offset(-600)
    .build()
    .unwrap();
    assert_eq!(behind.now(), c.now() - 600);
    let e = behind
        .notification(lookup(&headers), body.as_bytes())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("600 s ahead of"), "{e}");
    assert!(
        c.notification(lookup(&headers), body.as_bytes())
            .await
            .is_ok()
    );
}
