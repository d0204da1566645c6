//! Signed requests that must be refused, each with its own clear code; onboarding errors;
//! secret rotation with its grace period.

use std::time::Duration;

use merchant_client::signing::{self, RequestParts, headers};
use merchant_client::{CreatePayment, Error, Fen, Secret};
use serde_json::{Value, json};

use super::{Creds, MerchantEndpoint, Options, Platform, credit_code};

/// A hand-built signed request, with each part overridable.
struct Raw<'a> {
    creds: &'a Creds,
    secret: String,
    body: String,
    signed_body: Option<String>,
    timestamp: i64,
    nonce: String,
}

impl<'a> Raw<'a> {
    fn new(creds: &'a Creds, body: Value) -> Self {
        Raw {
            creds,
            secret: creds.secret.clone(),
            body: body.to_string(),
            signed_body: None,
            timestamp: time::OffsetDateTime::now_utc().unix_timestamp(),
            nonce: signing::nonce(),
        }
    }

    async fn send(&self, p: &Platform) -> (u16, Value) {
        let signed = self.signed_body.as_deref().unwrap_or(&self.body);
        let parts = RequestParts {
            method: "POST",
            path: "/v1/payments",
            query: None,
            timestamp: self.timestamp,
            nonce: &self.nonce,
            body: signed.as_bytes(),
        };
        let signature = signing::sign_request(
            &parts,
            &Secret::new(self.secret.clone()),
            &Secret::new(self.creds.salt.clone()),
        );
        let resp = p
            .http
            .post(format!("{}/v1/payments", p.url))
            .header(headers::APP_ID, &self.creds.app_id)
            .header(headers::TIMESTAMP, self.timestamp.to_string())
            .header(headers::NONCE, &self.nonce)
            .header(headers::SIGNATURE, signature)
            .header("content-type", "application/json")
            .body(self.body.clone())
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }
}

fn order(no: &str) -> Value {
    json!({"out_trade_no": no, "amount": 100, "subject": "Gum", "method": "sandbox"})
}

#[tokio::test]
async fn bad_signatures_are_refused_with_a_clear_code() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;

    // The reference request works.
    let (status, body) = Raw::new(&creds, order("sig-ok")).send(&p).await;
    assert_eq!(status, 201, "{body}");

    // Tampered body: signed for 100 fen, sent with 1 fen.
    let mut tampered = Raw::new(
        &creds,
        json!({"out_trade_no": "sig-1", "amount": 1, "subject": "Gum", "method": "sandbox"}),
    );
    tampered.signed_body = Some(order("sig-1").to_string());
    assert_eq!(
        code(tampered.send(&p).await),
        (401, "SIGNATURE_INVALID".into())
    );

    let mut wrong_secret = Raw::new(&creds, order("sig-2"));
    wrong_secret.secret = "0".repeat(64);
    assert_eq!(
        code(wrong_secret.send(&p).await),
        (401, "SIGNATURE_INVALID".into())
    );

    let mut stale = Raw::new(&creds, order("sig-3"));
    stale.timestamp -= 301;
    assert_eq!(code(stale.send(&p).await), (401, "TIMESTAMP_STALE".into()));

    let replayed = Raw::new(&creds, order("sig-4"));
    assert_eq!(replayed.send(&p).await.0, 201);
    assert_eq!(
        code(replayed.send(&p).await),
        (401, "NONCE_REPLAYED".into())
    );

    let mut short_nonce = Raw::new(&creds, order("sig-5"));
    short_nonce.nonce = "abc".into();
    assert_eq!(
        code(short_nonce.send(&p).await),
        (401, "NONCE_INVALID".into())
    );

    let unknown = Creds {
        app_id: "mch_unknown".into(),
        ..creds.clone()
    };
    assert_eq!(
        code(Raw::new(&unknown, order("sig-6")).send(&p).await),
        (401, "APP_UNKNOWN".into())
    );

    let missing = p
        .http
        .post(format!("{}/v1/payments", p.url))
        .body(order("sig-7").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 401);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["code"],
        "SIGNATURE_MISSING"
    );

    // None of the refused requests created anything.
    for no in ["sig-1", "sig-2", "sig-3", "sig-5", "sig-6", "sig-7"] {
        assert!(
            p.state.db.order(&creds.app_id, no).await.unwrap().is_none(),
            "{no}"
        );
    }

    // A disabled merchant is refused whatever it signs.
    let (status, _) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/disable", creds.app_id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        code(Raw::new(&creds, order("sig-8")).send(&p).await),
        (403, "MERCHANT_DISABLED".into())
    );
    p.stop().await;
}

fn code((status, body): (u16, Value)) -> (u16, String) {
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_rotated_secret_keeps_working_for_the_grace_period_only() {
    let p = Platform::start(Options {
        grace_secs: 2,
        ..Options::default()
    })
    .await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let (status, rotated) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/rotate-secret", creds.app_id),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new = Creds {
        secret: rotated["secret"].as_str().unwrap().to_owned(),
        ..creds.clone()
    };
    assert_ne!(new.secret, creds.secret);
    assert_eq!(
        rotated["app_id"],
        creds.app_id.as_str(),
        "the app id never changes"
    );

    let old_client = p.client(&creds);
    let new_client = p.client(&new);
    let paid = old_client
        .create_payment(&CreatePayment::new("rot-1", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    // A callback sent during the grace period verifies for a merchant still on the old secret
    // and for one already on the new.
    p.cashier_sandbox_pay(&paid.payment_token).await;
    let during = callback_for(&endpoint, "rot-1").await;
    assert_eq!(
        during.signature.matches(",v1=").count(),
        2,
        "{}",
        during.signature
    );
    let on_old = verifier(&creds.secret);
    let on_new = verifier(&new.secret);
    assert!(
        on_old
            .verify(&during.signature, during.body.as_bytes())
            .is_ok()
    );
    assert!(
        on_new
            .verify(&during.signature, during.body.as_bytes())
            .is_ok()
    );
    new_client
        .create_payment(&CreatePayment::new("rot-2", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(3100)).await;
    match old_client
        .create_payment(&CreatePayment::new("rot-3", Fen::new(100), "Gum").method("sandbox"))
        .await
    {
        Err(Error::Api {
            status: 401, code, ..
        }) => assert_eq!(code, "SIGNATURE_INVALID"),
        other => panic!("the old secret still works after the grace period: {other:?}"),
    }
    let paid = new_client
        .create_payment(&CreatePayment::new("rot-4", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    // After it, callbacks carry the new secret's signature only.
    p.cashier_sandbox_pay(&paid.payment_token).await;
    let after = callback_for(&endpoint, "rot-4").await;
    assert_eq!(after.signature.matches(",v1=").count(), 1);
    assert!(
        on_new
            .verify(&after.signature, after.body.as_bytes())
            .is_ok()
    );
    assert!(
        on_old
            .verify(&after.signature, after.body.as_bytes())
            .is_err()
    );
    p.stop().await;
}

fn verifier(secret: &str) -> merchant_client::Callbacks {
    merchant_client::Callbacks::new(
        Secret::new(secret),
        std::sync::Arc::new(merchant_client::MemoryHandledEvents::new()),
    )
}

async fn callback_for(endpoint: &MerchantEndpoint, out_trade_no: &str) -> super::Delivery {
    let mut found = None;
    crate::support::eventually(10, "the payment callback", async || {
        found = endpoint.deliveries().into_iter().find(|d| {
            serde_json::from_str::<Value>(&d.body).is_ok_and(|v| {
                v["type"] == "payment.succeeded" && v["data"]["out_trade_no"] == out_trade_no
            })
        });
        found.is_some()
    })
    .await;
    found.unwrap()
}

#[tokio::test]
async fn onboarding_refuses_duplicates_bad_codes_and_missing_tokens() {
    let p = Platform::start(Options::default()).await;
    let code_ = credit_code();
    let register =
        json!({"name": "Shop", "credit_code": code_, "notify_url": "http://127.0.0.1:1/cb"});
    let (status, first) = p
        .admin("POST", "/admin/merchants", Some(register.clone()))
        .await;
    assert_eq!(status, 201);
    assert_eq!(first["secret"].as_str().unwrap().len(), 64);
    let (status, body) = p.admin("POST", "/admin/merchants", Some(register)).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (409, Some("CREDIT_CODE_TAKEN"))
    );

    let mut bad = code_.clone().into_bytes();
    bad[17] = if bad[17] == b'0' { b'1' } else { b'0' };
    let bad = String::from_utf8(bad).unwrap();
    let (status, body) = p
        .admin(
            "POST",
            "/admin/merchants",
            Some(
                json!({"name": "Shop", "credit_code": bad, "notify_url": "http://127.0.0.1:1/cb"}),
            ),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("CREDIT_CODE_INVALID"))
    );

    // The merchant view never shows the secret.
    let (status, shown) = p
        .admin(
            "GET",
            &format!("/admin/merchants/{}", first["app_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(shown.get("secret").is_none() && shown.get("salt").is_none());
    assert!(
        !shown
            .to_string()
            .contains(first["secret"].as_str().unwrap())
    );

    let resp = p
        .http
        .get(format!("{}/admin/dead-letters", p.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["code"],
        "ADMIN_TOKEN_INVALID"
    );
    p.stop().await;
}
