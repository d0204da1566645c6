//! Demo and live are different worlds. Live here is staging: real credentials pointed at a
//! standalone emulator (`WECHAT_PAY_BASE_URL`), which is live mode as far as the server knows —
//! no test money, no emulator of its own, only the providers it was given.

use axum::http::StatusCode;
use examples::providers::{Mode, ProviderArgs};
use examples::vending::accounts;
use examples::vending::config::VendingConfig;
use serde_json::{Value, json};
use wechat_sandbox::Sandbox;

use super::{Options, Vending};
use crate::support::{
    start_gateway, wechat_credentials, wechat_credentials_with_login,
    wechat_v3_credentials_with_login,
};

/// A live server whose operator added a seller and gave it the machines (what
/// `vending-server seller add` and `machine assign` do).
pub(super) async fn live(gateway: &Sandbox) -> Vending {
    live_with(gateway, wechat_credentials_with_login(gateway.base_url())).await
}

/// The same with `providers`.
pub(super) async fn live_with(gateway: &Sandbox, providers: ProviderArgs) -> Vending {
    live_with_options(gateway, providers, Options::default()).await
}

/// The same with `providers` and other `options`.
pub(super) async fn live_with_options(
    gateway: &Sandbox,
    providers: ProviderArgs,
    options: Options,
) -> Vending {
    let v = Vending::start(Options {
        providers: Some(providers),
        gateway_url: Some(gateway.base_url().to_owned()),
        simulate_machines: Some(true),
        ..options
    })
    .await;
    let db = v.state.orders.db();
    accounts::add_seller(db, "operator", "operator-password-1")
        .await
        .unwrap();
    for machine in ["VM0001", "VM0002", "VM0003"] {
        assert!(db.assign_machine(machine, "operator").await.unwrap());
    }
    v
}

fn ids(channels: &Value) -> Vec<&str> {
    channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn live_mode_takes_no_test_money_and_offers_only_what_is_configured() {
    let gateway = start_gateway().await;
    let v = live(&gateway).await;
    assert_eq!(v.mode(), Mode::Live);
    assert!(v.state.sandbox.is_none());
    // The demo seller does not exist here (and would be disabled if an earlier demo left one).
    assert!(v.state.orders.db().seller("demo").await.unwrap().is_none());

    // The pages ask the server which channels to offer; only WeChat is configured.
    let (status, channels) = v.get("/api/channels").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(channels["mode"], "live");
    assert_eq!(ids(&channels), ["wechat"]);
    let page = v.text("/").await;
    assert!(
        !page.contains("Sandbox (test money)") && !page.contains("buy('sandbox')"),
        "the buyer page hard-codes a sandbox choice"
    );

    // Test money does not exist here, nor does a provider that is not configured.
    for (asked, code) in [
        (json!({"method": "sandbox"}), "METHOD_INVALID"),
        (
            json!({"channel": "wechat", "method": "sandbox"}),
            "METHOD_INVALID",
        ),
        (json!({"channel": "sandbox"}), "CHANNEL_UNAVAILABLE"),
        (json!({"channel": "alipay"}), "CHANNEL_UNAVAILABLE"),
        (json!({"method": "alipay_qr"}), "CHANNEL_UNAVAILABLE"),
    ] {
        let mut body = json!({"inner_code": "VM0001", "sku_id": 1});
        body.as_object_mut()
            .unwrap()
            .extend(asked.as_object().unwrap().clone());
        let (status, answer) = v.post("/api/orders", body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{asked}: {answer}"
        );
        assert_eq!(answer["code"], code, "{asked}: {answer}");
    }
    let (status, _) = v.post("/api/orders/V1/sandbox-pay", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No WeChat MP configured: no login, rather than an emulated one.
    let (status, body) = v.post("/api/login", json!({"js_code": "x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "LOGIN_UNAVAILABLE");

    // No demo buyers either.
    let (status, _) = v.post_as(None, "/api/demo-login", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The refused orders locked nothing: a WeChat order on the same machine, by a buyer who
    // logged in with the Official Account, is a JSAPI payment through the gateway, paid there,
    // and vends.
    let order = v.order_on("VM0001", 1, "wechat").await;
    assert_eq!(order["pay"]["type"], "wechat_jsapi", "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;

    // /metrics on the main listener: statuses, outcomes and channel ids, no order numbers.
    let metrics = v.text("/metrics").await;
    assert!(!metrics.contains(&no), "{metrics}");
    v.stop().await;
    gateway.shutdown().await;
}

/// Live on WeChat Pay API v3, both ways of knowing WeChat Pay's key: the public key from a
/// file, or platform certificates downloaded by the client. A buyer's WeChat order is a v3
/// JSAPI payment (RSA-signed parameters), paid at the gateway, notified in v3, and vends.
#[tokio::test]
async fn live_mode_on_api_v3_sells_with_the_public_key_or_platform_certificates() {
    let gateway = start_gateway().await;
    for certificates in [false, true] {
        let v = live_with(
            &gateway,
            wechat_v3_credentials_with_login(&gateway, certificates),
        )
        .await;
        assert_eq!(v.mode(), Mode::Live);
        let order = v.order_on("VM0001", 1, "wechat").await;
        assert_eq!(order["pay"]["type"], "wechat_jsapi", "{order}");
        assert_eq!(order["pay"]["params"]["signType"], "RSA", "{order}");
        let no = order["order_no"].as_str().unwrap().to_owned();
        v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
            .await;
        v.wait_for(&no, "COMPLETED", 20).await;
        // The metric says which key signed what the server verified.
        let key = if certificates {
            "platform_certificate"
        } else {
            "public_key"
        };
        let metrics = v.text("/metrics").await;
        let verified = metrics
            .lines()
            .find(|l| l.starts_with("vending_wechatpay_verified{") && l.contains(key))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        assert!(verified > 0, "{metrics}");
        v.stop().await;
    }
    gateway.shutdown().await;
}

/// While WeChat moves the merchant to the public key, the server holds both
/// (`WECHAT_PAY_PLATFORM_CERTIFICATES=true` beside the public key): answers come signed with
/// the public key its requests name, notifications still mostly with the certificate, and
/// both verify; the metric shows both keys at work.
#[tokio::test]
async fn live_mode_accepts_both_keys_while_wechat_switches_the_merchant() {
    let gateway = start_gateway().await;
    let public = wechat_v3_credentials_with_login(&gateway, false);
    let mut providers = wechat_v3_credentials_with_login(&gateway, true);
    providers.wechat_pay.wechat_pay_public_key = public.wechat_pay.wechat_pay_public_key.clone();
    providers.wechat_pay.wechat_pay_public_key_id =
        public.wechat_pay.wechat_pay_public_key_id.clone();
    providers.wechat_pay.wechat_pay_platform_certificates = true;
    assert!(gateway.start_key_switch(crate::support::V3_CERT_MCH_ID));
    let v = live_with(&gateway, providers).await;
    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let metrics = v.text("/metrics").await;
    let verified = |key: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("vending_wechatpay_verified{") && l.contains(key))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(verified("\"public_key\"") > 0, "{metrics}");
    assert!(verified("\"platform_certificate\"") > 0, "{metrics}");
    v.stop().await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn live_mode_refuses_half_configured_providers_at_start_up() {
    let gateway = start_gateway().await;
    let full = wechat_credentials_with_login(gateway.base_url());
    let start = |providers: ProviderArgs, simulate: Option<bool>| {
        Vending::try_start(Options {
            providers: Some(providers),
            simulate_machines: simulate,
            gateway_url: Some("unused".into()),
            ..Options::default()
        })
    };
    let refused =
        async |providers: ProviderArgs, simulate: Option<bool>| match start(providers, simulate)
            .await
        {
            Ok(v) => {
                v.stop().await;
                panic!("a half-configured live server started")
            }
            Err(e) => e.to_string(),
        };

    // A live server no buyer can log in to sells nothing: refused.
    let e = refused(wechat_credentials(gateway.base_url()), Some(true)).await;
    assert!(
        e.contains("WECHAT_APP_SECRET") && e.contains("WECHAT_MINI_APP_SECRET"),
        "{e}"
    );

    let mut no_key = full.clone();
    no_key.wechat_pay.wechat_api_key = None;
    let e = refused(no_key, Some(true)).await;
    assert!(e.contains("WECHAT_API_KEY"), "{e}");

    let mut alipay_id_only = VendingConfig::embedded().providers;
    alipay_id_only.alipay.alipay_app_id = Some("2021000000000042".into());
    let e = refused(alipay_id_only, Some(true)).await;
    assert!(
        e.contains("Alipay") && e.contains("ALIPAY_PRIVATE_KEY"),
        "{e}"
    );

    // WeChat's own gateway is https: refunds need the merchant certificate.
    let mut real_gateway = full.clone();
    real_gateway.wechat_pay.wechat_pay_base_url = None;
    let e = refused(real_gateway, Some(true)).await;
    assert!(
        e.contains("WECHAT_CERT_P12") && e.contains("WECHAT_KEY_PEM"),
        "{e}"
    );

    // Live machines are real machines unless staging says otherwise.
    let e = refused(full.clone(), None).await;
    assert!(e.contains("MQTT_URL"), "{e}");

    let mut empty = full;
    empty.wechat_pay.wechat_api_key = Some("".into());
    let e = refused(empty, Some(true)).await;
    assert!(e.contains("WECHAT_API_KEY is set but empty"), "{e}");

    // API v3: a key file that is not there, a v2 key beside the v3 settings, half the public
    // key — each refused, by name.
    let v3 = wechat_v3_credentials_with_login(&gateway, false);
    let mut missing_file = v3.clone();
    missing_file.wechat_pay.wechat_private_key = Some("/nonexistent/apiclient_key.pem".into());
    let e = refused(missing_file, Some(true)).await;
    assert!(e.contains("WECHAT_PRIVATE_KEY"), "{e}");
    let mut mixed = v3.clone();
    mixed.wechat_pay.wechat_api_key = Some(crate::support::KEY.into());
    let e = refused(mixed, Some(true)).await;
    assert!(
        e.contains("WECHAT_API_KEY") && e.contains("WECHAT_PAY_API"),
        "{e}"
    );
    let mut half = v3;
    half.wechat_pay.wechat_pay_public_key_id = None;
    let e = refused(half, Some(true)).await;
    assert!(e.contains("WECHAT_PAY_PUBLIC_KEY_ID"), "{e}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn demo_mode_offers_test_money_and_says_so() {
    let v = Vending::start(Options::default()).await;
    assert_eq!(v.mode(), Mode::Demo);
    let (_, channels) = v.get("/api/channels").await;
    assert_eq!(channels["mode"], "demo");
    assert_eq!(
        ids(&channels),
        ["wechat", "wechat_mini", "alipay", "sandbox"]
    );
    let order = v.order("VM0001", 1).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.sandbox_pay(&no).await;
    v.wait_for(&no, "COMPLETED", 20).await;
    v.stop().await;
}

/// `/metrics` shows no buyer, order or secret, and moves off the main listener on request.
#[tokio::test]
async fn metrics_show_no_buyer_and_can_move_to_their_own_listener() {
    let v = Vending::start(Options::default()).await;
    let buyer = v.mini_buyer("o-buyer-secret-openid").await;
    let (status, login) = v
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": "VM0002", "sku_id": 1, "channel": "wechat_mini"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let no = login["order_no"].as_str().unwrap().to_owned();
    let metrics = v.text("/metrics").await;
    assert!(metrics.contains("vending_orders"), "{metrics}");
    for private in [no.as_str(), "o-buyer-secret-openid"] {
        assert!(!metrics.contains(private), "{private} in {metrics}");
    }
    // Every label is one of the few the server defines.
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        if let Some((_, labels)) = line.split_once('{') {
            for pair in labels.split('}').next().unwrap().split(',') {
                let name = pair.split('=').next().unwrap();
                assert!(
                    ["status", "channel", "outcome", "le"].contains(&name),
                    "label {name} in {line}"
                );
            }
        }
    }
    v.stop().await;

    let v = Vending::start(Options {
        metrics_listen: Some("127.0.0.1:0".into()),
        ..Options::default()
    })
    .await;
    let status = v
        .http
        .get(format!("{}/metrics", v.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 404, "metrics stayed on the main listener");
    let separate = examples::vending::metrics_app(v.state.clone());
    let response = tower::ServiceExt::oneshot(
        separate,
        axum::http::Request::get("/metrics")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    v.stop().await;
}
