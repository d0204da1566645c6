//! pay-platform in live mode (staging: real credentials pointed at a standalone emulator): no
//! test money at the cashier or in the open API, only the configured providers, merchant notify
//! URLs that cannot reach into the platform's network, and an admin door that needs a real key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use examples::providers::Mode;
use merchant_client::{CreatePayment, Error, Fen};
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Executor};
use wechat_sandbox::Sandbox;

use super::{ADMIN_TOKEN, MerchantEndpoint, Options, Platform, credit_code, eventually, get_text};
use crate::support::{start_gateway, unique, wechat_credentials};

fn sqlite_file() -> String {
    let path = std::env::temp_dir().join(format!("{}.db", unique("pay-platform-live-")));
    format!("sqlite://{}?mode=rwc", path.display())
}

async fn live(gateway: &Sandbox, allow_private: Option<bool>, db: &str) -> Platform {
    Platform::start(Options {
        providers: Some(wechat_credentials(gateway.base_url())),
        gateway_url: Some(gateway.base_url().to_owned()),
        callback_allow_private: allow_private,
        database_url: Some(db.to_owned()),
        max_attempts: 2,
        ..Options::default()
    })
    .await
}

fn api_code(e: Error) -> (u16, String) {
    match e {
        Error::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn post_json(p: &Platform, path: &str, body: Value) -> (u16, Value) {
    let resp = p
        .http
        .post(format!("{}{path}", p.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn live_platform_takes_no_test_money_and_offers_only_what_is_configured() {
    let gateway = start_gateway().await;
    // The merchant stand-in runs on this machine: staging says so explicitly.
    let p = live(&gateway, Some(true), &sqlite_file()).await;
    assert_eq!(p.mode(), Mode::Live);
    assert!(p.state.sandbox.is_none());
    // The providers' bills are reconciled every day at 10:30 China time.
    let (at, _) = p.wired.as_ref().unwrap().daily_bills.unwrap();
    assert_eq!((at.hour(), at.minute()), (10, 30));
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);

    // The open API refuses test money and providers that are off, before any order exists.
    let (status, code) = api_code(
        client
            .create_payment(&CreatePayment::new("live-1", Fen::new(100), "Cola").method("sandbox"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (422, "METHOD_INVALID"));
    let (status, code) = api_code(
        client
            .create_payment(&CreatePayment::new("live-1", Fen::new(100), "Cola").channel("alipay"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (422, "CHANNEL_UNAVAILABLE"));

    // The cashier offers WeChat only, and no test-money button or banner.
    let created = client
        .create_payment(&CreatePayment::new("live-1", Fen::new(100), "Cola"))
        .await
        .unwrap();
    let token = created.payment_token.clone();
    let page = get_text(&p.http, &created.cashier_url).await;
    assert!(page.contains("choose('wechat_native')"), "{page}");
    for absent in ["sandbox", "Sandbox", "alipay_qr", "DEMO MODE"] {
        assert!(!page.contains(absent), "{absent} on the live cashier");
    }
    for (method, code) in [
        ("sandbox", "METHOD_INVALID"),
        ("alipay_qr", "CHANNEL_UNAVAILABLE"),
    ] {
        let (status, body) = post_json(
            &p,
            &format!("/cashier/{token}/method"),
            json!({"method": method}),
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{body}");
    }
    let (status, _) = post_json(&p, &format!("/cashier/{token}/sandbox-pay"), json!({})).await;
    assert_eq!(status, 404);

    // WeChat works: chosen at the cashier, paid at the gateway, the merchant is told.
    let (status, chosen) = post_json(
        &p,
        &format!("/cashier/{token}/method"),
        json!({"method": "wechat_native"}),
    )
    .await;
    assert_eq!(status, 200, "{chosen}");
    assert_eq!(chosen["pay"]["type"], "qr_code");
    let platform_no = p.platform_no(&creds.app_id, "live-1").await;
    let (status, paid) = crate::support::control(
        &gateway,
        "/sandbox/pay",
        json!({"out_trade_no": platform_no}),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    eventually(20, "the merchant's callback", async || {
        endpoint.accepted("payment.succeeded").len() == 1
    })
    .await;
    p.stop().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn live_notify_urls_cannot_reach_into_the_platforms_network() {
    let gateway = start_gateway().await;
    let db = sqlite_file();
    let p = live(&gateway, None, &db).await;
    let endpoint = MerchantEndpoint::start().await;
    let port = endpoint
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let register = async |url: &str| {
        p.admin(
            "POST",
            "/admin/merchants",
            Some(json!({"name": "Shop", "credit_code": credit_code(), "notify_url": url})),
        )
        .await
    };
    for url in [
        endpoint.url.clone(),
        format!("http://localhost:{port}/callback"),
        "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
        "http://[::1]/callback".to_owned(),
        "http://10.0.0.8/callback".to_owned(),
        // Issue 27, finding 8: translated and special-purpose addresses (each was 201).
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/".to_owned(),
        "http://[2002:a9fe:a9fe::1]/callback".to_owned(),
        "http://[::169.254.169.254]/callback".to_owned(),
        "http://[::ffff:0:169.254.169.254]/callback".to_owned(),
        "http://[fec0::1]/callback".to_owned(),
        "http://[100::1]/callback".to_owned(),
        "http://198.18.0.1/callback".to_owned(),
    ] {
        let (status, body) = register(&url).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["code"], "NOTIFY_URL_FORBIDDEN", "{url}: {body}");
    }
    for url in ["ftp://example.com/cb", "file:///etc/passwd", "not a url"] {
        let (status, body) = register(url).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["code"], "NOTIFY_URL_INVALID", "{url}: {body}");
    }

    // A public URL is accepted; when it later points into the network (an edit, a DNS change),
    // delivery refuses it without connecting, and the callback ends in the dead letters.
    let (status, merchant) = register("https://203.0.114.7/callback").await;
    assert_eq!(status, 201, "{merchant}");
    let app_id = merchant["app_id"].as_str().unwrap().to_owned();
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&db).await.unwrap();
    conn.execute(
        sqlx::query("UPDATE merchants SET notify_url = ? WHERE app_id = ?")
            .bind(endpoint.url.clone())
            .bind(app_id.clone()),
    )
    .await
    .unwrap();
    let creds = super::Creds {
        app_id: app_id.clone(),
        secret: merchant["secret"].as_str().unwrap().to_owned(),
        salt: merchant["salt"].as_str().unwrap().to_owned(),
    };
    let created = p
        .client(&creds)
        .create_payment(
            &CreatePayment::new("ssrf-1", Fen::new(100), "Cola").method("wechat_native"),
        )
        .await
        .unwrap();
    assert_eq!(created.status, "PENDING");
    let platform_no = p.platform_no(&app_id, "ssrf-1").await;
    crate::support::control(
        &gateway,
        "/sandbox/pay",
        json!({"out_trade_no": platform_no}),
    )
    .await;
    let dead = p.dead_letter(None).await;
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("not a public address"),
        "{dead}"
    );
    assert!(
        endpoint.deliveries().is_empty(),
        "the platform called into its own network"
    );
    p.stop().await;
    gateway.shutdown().await;
}

/// A notify URL that answers with a redirect (say to the metadata service or loopback) is a
/// failed delivery, never followed.
#[tokio::test]
async fn callback_redirects_are_never_followed() {
    let target = MerchantEndpoint::start().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let (to, counter) = (target.url.clone(), hits.clone());
    let app = Router::new().route(
        "/callback",
        post(move || {
            let (to, counter) = (to.clone(), counter.clone());
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Demo mode allows local notify URLs (the redirector); following a redirect is still refused.
    let p = Platform::start(Options::default()).await;
    let creds = p.register(&redirector).await;
    let created = p
        .client(&creds)
        .create_payment(&CreatePayment::new("redirect-1", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&created.payment_token).await;
    eventually(20, "two delivery attempts", async || {
        hits.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        target.deliveries().is_empty(),
        "a redirect was followed to {}",
        target.url
    );
    p.stop().await;
}

#[tokio::test]
async fn the_admin_token_is_long_and_never_empty() {
    for (token, expected) in [
        (Some(String::new()), "at least 32 characters (it has 0)"),
        (
            Some("dev-admin-token".to_owned()),
            "at least 32 characters (it has 15)",
        ),
    ] {
        let refused = Platform::try_start(Options {
            admin_token: Some(token),
            ..Options::default()
        })
        .await;
        match refused {
            Ok(p) => {
                p.stop().await;
                panic!("a platform with a weak admin token started");
            }
            Err(e) => assert!(e.to_string().contains(expected), "{e}"),
        }
    }
    // Live mode needs one configured: a generated token printed to a log is no admin key.
    let gateway = start_gateway().await;
    match Platform::try_start(Options {
        admin_token: Some(None),
        providers: Some(wechat_credentials(gateway.base_url())),
        gateway_url: Some(gateway.base_url().to_owned()),
        ..Options::default()
    })
    .await
    {
        Ok(p) => {
            p.stop().await;
            panic!("a live platform started without ADMIN_TOKEN");
        }
        Err(e) => assert!(e.to_string().contains("live mode needs ADMIN_TOKEN"), "{e}"),
    }
    gateway.shutdown().await;

    // Whatever the configuration, an absent or empty bearer is 401.
    let p = Platform::start(Options::default()).await;
    let url = format!("{}/admin/merchants", p.url);
    let body =
        json!({"name": "X", "credit_code": credit_code(), "notify_url": "http://127.0.0.1:9/x"});
    for authorization in [
        None,
        Some(""),
        Some("Bearer "),
        Some("Bearer"),
        Some("Basic x"),
    ] {
        let mut req = p.http.post(&url).json(&body);
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{authorization:?}");
    }
    let ok = p
        .http
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 201);
    p.stop().await;
}

/// Live direct mode holds merchants' money in the platform's own accounts: one business only,
/// unless the operator acknowledges the platform may hold several (a licence, one group). A
/// second active merchant is refused by the admin API, and a database with two does not start.
#[tokio::test]
async fn live_direct_mode_serves_one_business_unless_acknowledged() {
    let gateway = start_gateway().await;
    let db = sqlite_file();
    let p = live(&gateway, Some(true), &db).await;
    let first = p.register("http://127.0.0.1:9/notify").await;
    let second = json!({"name": "Another Shop", "credit_code": credit_code(),
                        "notify_url": "http://127.0.0.1:9/notify"});
    let (status, body) = p
        .admin("POST", "/admin/merchants", Some(second.clone()))
        .await;
    assert_eq!(status.as_u16(), 422, "{body}");
    assert_eq!(body["code"], "SINGLE_BUSINESS");
    // Disabled, the first no longer counts; enabled again while another is active: refused.
    let (status, _) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/disable", first.app_id),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 200);
    let (status, other) = p.admin("POST", "/admin/merchants", Some(second)).await;
    assert_eq!(status.as_u16(), 201, "{other}");
    let enable = format!("/admin/merchants/{}/enable", first.app_id);
    let (status, body) = p.admin("POST", &enable, None).await;
    assert_eq!(status.as_u16(), 422, "{body}");
    p.stop().await;

    // Acknowledged: both active; then a start without the acknowledgement is refused.
    let options = |ack: bool| Options {
        providers: Some(wechat_credentials(gateway.base_url())),
        gateway_url: Some(gateway.base_url().to_owned()),
        callback_allow_private: Some(true),
        database_url: Some(db.clone()),
        direct_multi_merchant: ack,
        ..Options::default()
    };
    let p = Platform::start(options(true)).await;
    let (status, body) = p.admin("POST", &enable, None).await;
    assert_eq!(status.as_u16(), 200, "{body}");
    p.stop().await;
    match Platform::try_start(options(false)).await {
        Ok(p) => {
            p.stop().await;
            panic!("live direct mode started with two active merchants")
        }
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains("PLATFORM_DIRECT_MULTI_MERCHANT") && e.contains("二清"),
                "{e}"
            );
        }
    }
    gateway.shutdown().await;
}
