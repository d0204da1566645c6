//! Fixtures: a sandbox with known merchants and apps, a server that receives notifications
//! (and can refuse the first few), and an Official Account callback built with `wechat-mp`;
//! unique names, fresh databases on the real engines, and waiting for something to happen.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alipay::{PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::post;
use wechat_mp::Secret;
use wechat_mp::message::{
    Callback, CallbackQuery, Event, EventKind, IncomingMessage, MessageBody, Reply,
    Router as MpRouter, UrlCheck,
};
use wechat_pay::ApiKey;
use wechat_sandbox::{MpApp, Sandbox, SandboxBuilder};

pub const APP_ID: &str = "wx2421b1c4370ec43b";
pub const MINI_APP_ID: &str = "wxminiprogram0001";
pub const MCH_ID: &str = "10000100";
pub const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

pub const MP_PLAIN: &str = "wxmpplain00000001";
pub const MP_SAFE: &str = "wxmpsafe000000001";
pub const MP_SECRET: &str = "mp-secret-0123456789";
pub const MP_TOKEN: &str = "mp-callback-token";
pub const MP_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

pub const ALIPAY_APP_ID: &str = "2021000000000042";
/// An Alipay app with content encryption under [`ALIPAY_AES_KEY`].
pub const ALIPAY_AES_APP_ID: &str = "2021000000000043";
pub const ALIPAY_AES_KEY: &str = "AAECAwQFBgcICQoLDA0ODw==";

/// The sandbox's WeChat Pay API v3 merchant (its app is [`APP_ID`]).
pub const V3_MCH_ID: &str = "1900009191";
/// Sub-merchants of [`V3_MCH_ID`] as a service provider.
pub const V3_SUB_MCH_ID: &str = "1900000109";
pub const V3_OTHER_SUB_MCH_ID: &str = "1900000110";
pub const V3_SERIAL: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
pub const V3_API_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";
pub const V3_MERCHANT_KEY: &str =
    include_str!("../../wechat-pay/testdata/v3/merchant_private_key.pem");
pub const V3_MERCHANT_PUBLIC: &str =
    include_str!("../../wechat-pay/testdata/v3/merchant_public_key.pem");
/// A v3 merchant in platform-certificate mode (the sandbox signs to it with certificates).
pub const V3_CERT_MCH_ID: &str = "1900009192";

/// The v3 merchant's client, verifying with the sandbox's WeChat Pay public key.
pub fn v3_client(sandbox: &Sandbox) -> wechat_pay::v3::Client {
    let (id, pem) = sandbox.wechatpay_public_key();
    wechat_pay::v3::Client::builder(
        V3_MCH_ID,
        V3_SERIAL,
        wechat_pay::v3::MerchantKey::from_pem(V3_MERCHANT_KEY).unwrap(),
        wechat_pay::v3::ApiV3Key::new(V3_API_KEY).unwrap(),
    )
    .wechat_pay_key(wechat_pay::v3::WechatPayKey::from_pem(id, &pem).unwrap())
    .base_url(sandbox.base_url())
    .build()
    .unwrap()
}

pub fn alipay_app_key() -> AlipayPrivateKey {
    AlipayPrivateKey::from_pem(include_str!("../../alipay/testdata/app_private_key.pem")).unwrap()
}

pub fn alipay_gateway_public_key() -> AlipayPublicKey {
    AlipayPublicKey::from_pem(include_str!("../../alipay/testdata/gateway_public_key.pem")).unwrap()
}

/// One received request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

type ReceiverState = (Arc<Mutex<Vec<Received>>>, Arc<AtomicUsize>);

/// A server that stands in for a merchant's notify URLs.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let refuse = Arc::new(AtomicUsize::new(0));
        let state = (received.clone(), refuse.clone());
        async fn wechat(
            State((log, refuse)): State<ReceiverState>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
            body: Bytes,
        ) -> String {
            log.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
                headers: headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect(),
            });
            let refused = refuse
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            match (uri.path().starts_with("/alipay"), refused) {
                (true, false) => "success".into(),
                (true, true) => "fail".into(),
                (false, false) => wechat_pay::NotifyReply::success().to_xml(),
                (false, true) => wechat_pay::NotifyReply::fail("busy").to_xml(),
            }
        }
        let app = Router::new()
            .route("/wechat/notify", post(wechat))
            .route("/wechat/refund-notify", post(wechat))
            .route("/alipay/notify", post(wechat))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url,
            received,
            refuse,
        }
    }

    /// Refuse the next `n` notifications.
    pub fn refuse_next(&self, n: usize) {
        self.refuse.store(n, Ordering::SeqCst);
    }

    /// Waits until `n` requests arrived at `path`.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        for _ in 0..500 {
            let got: Vec<Received> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.path == path)
                .cloned()
                .collect();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {n} requests at {path}");
    }

    pub fn count(&self, path: &str) -> usize {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }
}

/// An Official Account's callback server: `/mp/plain` and `/mp/safe`.
pub async fn start_mp_callbacks() -> String {
    fn router() -> MpRouter {
        MpRouter::new()
            .keyword("hi", |_| async { Reply::text("hello from the app") })
            .event(EventKind::Subscribe, |m: IncomingMessage| async move {
                match m.body {
                    MessageBody::Event(Event::Subscribe { scene: Some(s), .. }) => {
                        Reply::text(format!("welcome via {s}"))
                    }
                    _ => Reply::text("welcome"),
                }
            })
            .event(EventKind::Scan, |m: IncomingMessage| async move {
                Reply::text(format!("scanned {}", m.event_key().unwrap_or_default()))
            })
    }
    let plain = Arc::new(
        Callback::builder(MP_PLAIN, Secret::new(MP_TOKEN))
            .router(router())
            .build()
            .unwrap(),
    );
    let safe = Arc::new(
        Callback::builder(MP_SAFE, Secret::new(MP_TOKEN))
            .encoding_aes_key(Secret::new(MP_AES_KEY))
            .router(router())
            .build()
            .unwrap(),
    );
    async fn handle(
        State(cb): State<Arc<Callback>>,
        Query(q): Query<CallbackQuery>,
        body: Bytes,
    ) -> (axum::http::StatusCode, String) {
        match cb.handle(&q, &body).await {
            Ok(reply) => (axum::http::StatusCode::OK, reply),
            Err(e) => (axum::http::StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    async fn verify(State(cb): State<Arc<Callback>>, Query(q): Query<UrlCheck>) -> String {
        cb.verify_url(&q).unwrap_or_default()
    }
    let app = Router::new()
        .route("/mp/plain", post(handle).get(verify))
        .with_state(plain)
        .merge(
            Router::new()
                .route("/mp/safe", post(handle).get(verify))
                .with_state(safe),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A sandbox with the documented test merchant (also bound to a Mini Program), two Official
/// Accounts (plain and safe mode) calling back `mp_callbacks`, and an Alipay app with the
/// fixture keys. Retries run 1000× faster than WeChat's; refunds complete only on request.
pub async fn start_sandbox(mp_callbacks: &str) -> Sandbox {
    sandbox_builder(mp_callbacks).start().await.unwrap()
}

pub async fn start_sandbox_with_db(mp_callbacks: &str, db: Option<&str>) -> Sandbox {
    let builder = sandbox_builder(mp_callbacks);
    match db {
        Some(path) => builder.db(path),
        None => builder,
    }
    .start()
    .await
    .unwrap()
}

/// The builder [`start_sandbox`] starts.
pub fn sandbox_builder(mp_callbacks: &str) -> SandboxBuilder {
    Sandbox::builder()
        .merchant(APP_ID, MCH_ID, ApiKey::new(KEY))
        .merchant(MINI_APP_ID, MCH_ID, ApiKey::new(KEY))
        .merchant_v3(
            wechat_sandbox::MerchantV3::new(
                V3_MCH_ID,
                APP_ID,
                V3_SERIAL,
                V3_MERCHANT_PUBLIC,
                V3_API_KEY,
            )
            .unwrap()
            // A service provider too: these are its sub-merchants.
            .with_sub_merchant(V3_SUB_MCH_ID)
            .with_sub_merchant(V3_OTHER_SUB_MCH_ID),
        )
        .merchant_v3(
            wechat_sandbox::MerchantV3::new(
                V3_CERT_MCH_ID,
                APP_ID,
                V3_SERIAL,
                V3_MERCHANT_PUBLIC,
                V3_API_KEY,
            )
            .unwrap()
            .with_certificates(),
        )
        // The test merchant's app is an Official Account too (web login, template messages).
        .mp_app(MpApp::new(
            APP_ID,
            Secret::new(MP_SECRET),
            Secret::new(MP_TOKEN),
        ))
        .mp_app(
            MpApp::new(MP_PLAIN, Secret::new(MP_SECRET), Secret::new(MP_TOKEN))
                .callback_url(format!("{mp_callbacks}/mp/plain")),
        )
        .mp_app(
            MpApp::new(MP_SAFE, Secret::new(MP_SECRET), Secret::new(MP_TOKEN))
                .encoding_aes_key(Secret::new(MP_AES_KEY))
                .callback_url(format!("{mp_callbacks}/mp/safe")),
        )
        .alipay_app(ALIPAY_APP_ID, alipay_app_key().public_key())
        .alipay_app_with_aes(
            ALIPAY_AES_APP_ID,
            alipay_app_key().public_key(),
            alipay::AesKey::from_base64(ALIPAY_AES_KEY).unwrap(),
        )
        .alipay_key(
            AlipayPrivateKey::from_pem(include_str!(
                "../../alipay/testdata/gateway_private_key.pem"
            ))
            .unwrap(),
        )
        .time_scale(1000.0)
}

/// WeChat Pay credentials of the sandbox's test merchant (and nothing else), pointed at the
/// sandbox at `gateway_url`: a server configured with them runs in live mode (staging).
pub fn wechat_credentials(gateway_url: &str) -> examples::providers::ProviderArgs {
    let mut p = examples::providers::ProviderArgs::default();
    p.wechat_mp.wechat_app_id = Some(APP_ID.into());
    p.wechat_pay.wechat_mch_id = Some(MCH_ID.into());
    p.wechat_pay.wechat_api_key = Some(KEY.into());
    p.wechat_pay.wechat_pay_base_url = Some(gateway_url.to_owned());
    p.wechat_pay.wechat_sign_type = "MD5".into();
    p.wechat_pay.wechat_pay_api = "v2".into();
    p.wechat_pay.demo_wechat_api = "v2".into();
    p
}

/// WeChat Pay API v3 credentials of the sandbox's v3 merchant (key files written to a temporary
/// directory), with the Official Account login, pointed at `gateway`: with the sandbox's WeChat
/// Pay public key, or (`certificates`) the certificate-mode merchant, whose client downloads the
/// platform certificates.
pub fn wechat_v3_credentials_with_login(
    gateway: &Sandbox,
    certificates: bool,
) -> examples::providers::ProviderArgs {
    let dir = std::env::temp_dir().join(unique("v3-keys-"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("apiclient_key.pem");
    std::fs::write(&key, V3_MERCHANT_KEY).unwrap();
    let (id, pem) = gateway.wechatpay_public_key();
    let public = dir.join("pub_key.pem");
    std::fs::write(&public, pem).unwrap();
    let mut p = wechat_credentials_with_login(gateway.base_url());
    let pay = &mut p.wechat_pay;
    pay.wechat_api_key = None;
    pay.wechat_pay_api = "v3".into();
    pay.wechat_mch_id = Some(
        if certificates {
            V3_CERT_MCH_ID
        } else {
            V3_MCH_ID
        }
        .into(),
    );
    pay.wechat_api_v3_key = Some(V3_API_KEY.into());
    pay.wechat_private_key = Some(key.display().to_string());
    pay.wechat_cert_serial = Some(V3_SERIAL.into());
    pay.wechat_pay_public_key = (!certificates).then(|| public.display().to_string());
    pay.wechat_pay_public_key_id = (!certificates).then_some(id);
    p
}

/// [`wechat_credentials`] and the Official Account's secret: buyers can log in on the web.
pub fn wechat_credentials_with_login(gateway_url: &str) -> examples::providers::ProviderArgs {
    let mut p = wechat_credentials(gateway_url);
    p.wechat_mp.wechat_app_secret = Some(MP_SECRET.into());
    p.wechat_mp.wechat_mp_base_url = Some(gateway_url.to_owned());
    p
}

/// A standalone sandbox for a live server to talk to (its staging gateway).
pub async fn start_gateway() -> Sandbox {
    start_sandbox(&start_mp_callbacks().await).await
}

/// Serves `app` as the binaries do (their accept loop and limits) until `stop`.
pub fn serve_in_background(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: http_serve::HttpLimits,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        http_serve::serve(listener, app, &limits, None, stop.cancelled_owned()).await;
    });
}

/// The emulator a test server's control calls go to: the one it embeds (demo mode) or the
/// gateway the test started for it (live mode).
pub fn emulator_url(embedded: Option<&Sandbox>, gateway: Option<&String>) -> String {
    embedded
        .map(|e| e.base_url().to_owned())
        .or(gateway.cloned())
        .expect("demo mode embeds an emulator; live tests name their gateway")
}

/// The body of `GET url`, whatever the status.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// `POST` JSON to the sandbox's control API.
pub async fn control(
    sandbox: &Sandbox,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    control_at(sandbox.base_url(), path, &body).await
}

/// `POST` JSON to the control API of the emulator at `base_url` (one a server embeds).
pub async fn control_at(
    base_url: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base_url}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// `GET` JSON from the sandbox's control API.
pub async fn inspect(sandbox: &Sandbox, path: &str) -> serde_json::Value {
    inspect_at(sandbox.base_url(), path).await
}

/// `GET` JSON from the control API of the emulator at `base_url`.
pub async fn inspect_at(base_url: &str, path: &str) -> serde_json::Value {
    reqwest::get(format!("{base_url}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Complaint `id` as the emulator at `base_url` holds it (its negotiation, the refund decision).
pub async fn held_complaint(base_url: &str, id: &str) -> serde_json::Value {
    inspect_at(base_url, "/sandbox/complaints")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["complaint_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("the emulator holds no complaint {id}"))
}

/// The messages the emulator at `base_url` recorded for `open_id`.
pub async fn messages_to(base_url: &str, open_id: &str) -> Vec<serde_json::Value> {
    serde_json::from_value(
        inspect_at(base_url, &format!("/sandbox/messages?touser={open_id}")).await,
    )
    .unwrap()
}

/// `prefix` and 16 random hex digits.
pub fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// Waits up to `secs` for `check` to hold (polling every 50 ms); fails the test otherwise.
pub async fn eventually(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new, empty database (named `aggpay_test_…`, which `.ci/run` drops) on the server at `url`;
/// returns its URL.
pub async fn fresh_database(url: &str, name_prefix: &str) -> String {
    use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url).await.unwrap();
    let name = unique(&format!("aggpay_test_{name_prefix}"));
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    format!("{prefix}/{name}{query}")
}

/// The values of the `TEST_*_URL` variables `vars`, or `None` (saying which are missing) when a
/// developer runs the tests without the engines. `.ci/run` sets them all, and CI fails if one
/// is missing there (`REQUIRE_ENGINES=1`).
pub fn engine_urls<const N: usize>(vars: [&str; N]) -> Option<[String; N]> {
    let values = vars.map(|v| std::env::var(v).ok());
    if values.iter().all(Option::is_some) {
        return Some(values.map(Option::unwrap_or_default));
    }
    let missing: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    assert!(
        std::env::var_os("REQUIRE_ENGINES").is_none(),
        "REQUIRE_ENGINES is set but {missing:?} are not"
    );
    eprintln!("skipped: {missing:?} not set");
    None
}

/// What a [`recording_endpoint`] received: each request's headers and body.
pub type Recorded =
    std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, axum::body::Bytes)>>>;

/// A URL that answers POSTs with 204 and keeps each request's headers and body (a merchant's
/// notify URL in tests).
pub async fn recording_endpoint() -> (String, Recorded) {
    let received: Recorded = std::sync::Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    if let Ok(mut k) = kept.lock() {
                        k.push((headers, body));
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}
