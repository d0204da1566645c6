//! An operator with Alipay only, live (staging: real credentials in certificate mode, pointed at
//! a standalone emulator). Buyers log in with the Alipay Mini Program's auth code, pay through
//! `alipay.trade.create` (the Mini Program's `my.tradePay`), and are refunded; in the Alipay
//! browser they log in through Alipay's web authorization and pay at its mobile-web checkout; a
//! spent or foreign code, or a login this browser did not start, is no login; half of
//! certificate mode does not start.

use axum::http::StatusCode;
use examples::providers::ProviderArgs;
use serde_json::json;
use wechat_sandbox::{AlipayApp, Sandbox};

use super::live::live_with;
use super::{Options, Session, Vending, set_cookie};
use crate::support::{alipay_app_key, sandbox_builder, start_mp_callbacks, unique};

const APP_ID: &str = "2021000000000046";

/// The emulator with an app in certificate mode.
async fn gateway() -> Sandbox {
    sandbox_builder(&start_mp_callbacks().await)
        .alipay_app_with_certificates(APP_ID, alipay_app_key().public_key())
        .start()
        .await
        .unwrap()
}

/// Alipay in certificate mode only: the app's key and the three certificate files the
/// emulator issued, as an operator downloads them from Alipay's console.
fn alipay_credentials(gateway: &Sandbox) -> ProviderArgs {
    let issued = gateway.alipay_certificates(APP_ID).unwrap();
    let dir = std::env::temp_dir().join(unique("alipay-certs-"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let mut p = examples::vending::config::VendingConfig::embedded().providers;
    let a = &mut p.alipay;
    a.alipay_app_id = Some(APP_ID.into());
    a.alipay_private_key = Some(alipay_app_key().to_pem().unwrap().into());
    a.alipay_seller_id = Some(AlipayApp::default_seller_id(APP_ID));
    a.alipay_app_cert = Some(file("appCertPublicKey.crt", &issued.app_cert));
    a.alipay_public_cert = Some(file("alipayCertPublicKey_RSA2.crt", &issued.alipay_cert));
    a.alipay_root_cert = Some(file("alipayRootCert.crt", &issued.root_cert));
    a.alipay_gateway_url = Some(gateway.base_url().to_owned());
    p
}

/// A buyer of the Alipay Mini Program: a code from the emulator, `POST /api/login/alipay`.
async fn alipay_buyer(v: &Vending) -> Session {
    let code = v
        .emulator("/sandbox/alipay/auth-code", json!({"app_id": APP_ID}))
        .await;
    let (status, s) = v
        .post_as(
            None,
            "/api/login/alipay",
            json!({"auth_code": code["auth_code"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["open_id"], code["user_id"]);
    // A code works once.
    let (status, again) = v
        .post_as(
            None,
            "/api/login/alipay",
            json!({"auth_code": code["auth_code"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{again}");
    assert_eq!(again["code"], "AUTH_CODE_INVALID");
    Session {
        open_id: s["open_id"].as_str().unwrap().to_owned(),
        token: s["token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn an_alipay_only_live_server_logs_buyers_in_sells_in_the_mini_program_and_refunds() {
    let gateway = gateway().await;
    let v = live_with(&gateway, alipay_credentials(&gateway)).await;
    let (_, channels) = v.get_as(None, "/api/channels").await;
    assert_eq!(channels["mode"], "live");
    assert_eq!(channels["channels"][0]["id"], "alipay", "{channels}");
    assert_eq!(channels["channels"].as_array().unwrap().len(), 1);
    // No WeChat here: its login is not offered.
    let (status, _) = v.post_as(None, "/api/login", json!({"js_code": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let buyer = alipay_buyer(&v).await;
    // A code minted for another app is nobody here.
    let theirs = v
        .emulator(
            "/sandbox/alipay/auth-code",
            json!({"app_id": crate::support::ALIPAY_APP_ID}),
        )
        .await;
    let (status, _) = v
        .post_as(
            None,
            "/api/login/alipay",
            json!({"auth_code": theirs["auth_code"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The buyer's order is a Mini Program trade for them; the Mini Program pays its tradeNO.
    let (status, order) = v
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": "VM0001", "sku_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["pay"]["type"], "alipay_trade_pay", "{order}");
    assert!(!order["pay"]["trade_no"].as_str().unwrap().is_empty());
    let no = order["order_no"].as_str().unwrap().to_owned();
    let trades: serde_json::Value = reqwest::get(format!("{}/sandbox/orders", gateway.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trade = trades["alipay"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["out_trade_no"] == no.as_str())
        .unwrap()
        .clone();
    assert_eq!(trade["method"], "alipay.trade.create");
    assert_eq!(trade["buyer_id"], buyer.open_id.as_str());
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    let bought = v.wait_for_as(&buyer, &no, "COMPLETED", 20).await;
    assert_eq!(bought["status"], "COMPLETED");

    // The operator refunds it; Alipay answers at once.
    let cookie = v.seller_login("operator", "operator-password-1").await;
    let (status, refunded) = v
        .seller_call(
            Some(&cookie),
            "POST",
            &format!("/api/seller/orders/{no}/refund"),
            Some(json!({"amount": bought["amount"], "reason": "changed mind"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    v.wait_for_as(&buyer, &no, "REFUNDED", 20).await;
    v.stop().await;
    gateway.shutdown().await;
}

/// A buyer in the Alipay browser, as a browser goes: `/api/oauth/alipay/start` (Alipay's page,
/// this browser's cookie), Alipay's code (from the emulator), `/api/oauth/alipay/callback`.
async fn alipay_web_buyer(v: &Vending) -> Session {
    let start = v
        .http
        .get(format!("{}/api/oauth/alipay/start?return_url=/done", v.url))
        .send()
        .await
        .unwrap();
    assert!(start.status().is_redirection(), "{}", start.status());
    let nonce_cookie = set_cookie(&start, "vending_oauth").unwrap();
    let location = url::Url::parse(start.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next(),
        Some(alipay::DEFAULT_AUTHORIZE_URL)
    );
    let query: std::collections::BTreeMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["app_id"], APP_ID);
    assert_eq!(
        query["redirect_uri"],
        format!("{}/api/oauth/alipay/callback", v.state.settings.public_url)
    );
    let code = v
        .emulator("/sandbox/alipay/auth-code", json!({"app_id": APP_ID}))
        .await;
    let callback = |cookie: Option<&str>| {
        let mut req = v.http.get(format!(
            "{}/api/oauth/alipay/callback?{}",
            v.url,
            serde_urlencoded::to_string([
                ("auth_code", code["auth_code"].as_str().unwrap()),
                ("state", &query["state"]),
            ])
            .unwrap()
        ));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("vending_oauth={c}"));
        }
        req.send()
    };
    // Another browser (no cookie of this login) cannot finish it.
    let stolen = callback(None).await.unwrap();
    assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
    let back = callback(Some(&nonce_cookie)).await.unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
    assert_eq!(back.headers()["location"], "/done");
    Session {
        open_id: code["user_id"].as_str().unwrap().to_owned(),
        token: set_cookie(&back, "vending_buyer").unwrap(),
    }
}

#[tokio::test]
async fn in_the_alipay_browser_a_buyer_logs_in_on_the_web_and_pays_at_the_mobile_checkout() {
    let gateway = gateway().await;
    let v = live_with(&gateway, alipay_credentials(&gateway)).await;
    let buyer = alipay_web_buyer(&v).await;
    let (status, session) = v.get_as(Some(&buyer), "/api/session").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["app"], "alipay_web");
    assert_eq!(session["open_id"], buyer.open_id.as_str());
    let (status, order) = v
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": "VM0002", "sku_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["pay"]["type"], "redirect", "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    // The browser opens Alipay's signed mobile checkout, and the buyer pays there.
    let checkout = order["pay"]["url"].as_str().unwrap();
    assert!(checkout.contains("alipay.trade.wap.pay"), "{checkout}");
    let page = v.http.get(checkout).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Alipay sandbox"), "{page}");
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for_as(&buyer, &no, "COMPLETED", 20).await;
    v.stop().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn half_of_certificate_mode_or_both_modes_do_not_start() {
    let gateway = gateway().await;
    let full = alipay_credentials(&gateway);
    let refused = async |providers: ProviderArgs| match Vending::try_start(Options {
        providers: Some(providers),
        simulate_machines: Some(true),
        gateway_url: Some("unused".into()),
        ..Options::default()
    })
    .await
    {
        Ok(v) => {
            v.stop().await;
            panic!("a half-configured live server started")
        }
        Err(e) => e.to_string(),
    };
    let mut half = full.clone();
    half.alipay.alipay_root_cert = None;
    let e = refused(half).await;
    assert!(e.contains("ALIPAY_ROOT_CERT"), "{e}");
    let mut both = full.clone();
    both.alipay.alipay_public_key = Some(gateway.alipay_public_key().to_pem().unwrap());
    let e = refused(both).await;
    assert!(e.contains("not both"), "{e}");
    // Alipay's certificate from another authority does not chain to the root given.
    let stranger = alipay::test_util::TestPki::new("Elsewhere").unwrap();
    let mut foreign = full.clone();
    let path = std::env::temp_dir().join(unique("foreign-root-"));
    std::fs::write(&path, stranger.root_pem()).unwrap();
    foreign.alipay.alipay_root_cert = Some(path.to_string_lossy().into_owned());
    let e = refused(foreign).await;
    assert!(
        e.contains("ALIPAY_PUBLIC_CERT") && e.contains("not trusted"),
        "{e}"
    );
    let mut bad_aes = full;
    bad_aes.alipay.alipay_aes_key = Some("not base64".to_owned().into());
    let e = refused(bad_aes).await;
    assert!(e.contains("ALIPAY_AES_KEY"), "{e}");
    gateway.shutdown().await;
}
