//! `pay-platform` end to end: the real HTTP service (`examples::platform::app`) with its embedded
//! emulator, driven through `merchant-client` and plain HTTP, with a stand-in merchant server
//! receiving callbacks. `engines` repeats the flows on PostgreSQL / MySQL, Redis and RabbitMQ.

mod bills;
mod binding;
mod callbacks;
mod complaints;
mod engines;
mod live;
mod open_api;
mod partner;
mod short_poll;
mod signing;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use examples::platform::config::PlatformConfig;
use examples::platform::routes::admin::credit_code_check_char;
use examples::platform::wiring::{Wired, wire};
use examples::platform::{PlatformState, app};
use examples::providers::ProviderArgs;
use examples::running::StartError;
use examples::workers::Delivery as EventDelivery;
use merchant_client::{Client, Secret};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub use crate::support::{emulator_url, eventually, get_text, serve_in_background, unique};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";

/// A fresh, valid unified social credit code.
pub fn credit_code() -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut bytes = [0u8; 17];
    getrandom::fill(&mut bytes).unwrap();
    let first: String = bytes
        .iter()
        .map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()]))
        .collect();
    let check = credit_code_check_char(&first).unwrap();
    format!("{first}{check}")
}

/// How a test platform runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub database_url: Option<String>,
    pub amqp_url: Option<String>,
    pub redis_url: Option<String>,
    pub max_attempts: u32,
    pub grace_secs: u64,
    pub chatbot: Option<(String, u64)>,
    /// The RabbitMQ queue prefix (instances sharing it share the work); fresh when `None`.
    pub queue: Option<String>,
    /// Provider settings (live mode when any is set); demo mode when `None`.
    pub providers: Option<ProviderArgs>,
    /// The gateway a live platform talks to (a standalone emulator), for the control calls.
    pub gateway_url: Option<String>,
    pub callback_allow_private: Option<bool>,
    /// `ADMIN_TOKEN` (default: the tests' [`ADMIN_TOKEN`]).
    pub admin_token: Option<Option<String>>,
    /// `IDEMPOTENCY_LEASE_SECS`.
    pub idempotency_lease_secs: u64,
    /// `CALLBACK_TIMEOUT_SECS`.
    pub callback_timeout_secs: u64,
    /// `PLATFORM_DIRECT_MULTI_MERCHANT`.
    pub direct_multi_merchant: bool,
    /// `PLATFORM_MODE`.
    pub platform_mode: Option<examples::platform::config::PlatformMode>,
    /// `PLATFORM_FEE_BPS`.
    pub platform_fee_bps: Option<u32>,
    /// `PLATFORM_MERCHANT_NAME`.
    pub platform_merchant_name: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            database_url: None,
            amqp_url: None,
            redis_url: None,
            max_attempts: 8,
            grace_secs: 3600,
            chatbot: None,
            queue: None,
            providers: None,
            gateway_url: None,
            callback_allow_private: None,
            admin_token: None,
            idempotency_lease_secs: 60,
            callback_timeout_secs: 5,
            direct_multi_merchant: false,
            platform_mode: None,
            platform_fee_bps: None,
            platform_merchant_name: None,
        }
    }
}

/// A running platform.
pub struct Platform {
    pub url: String,
    pub state: Arc<PlatformState>,
    pub emulator_url: String,
    pub http: reqwest::Client,
    /// The emulator's WeChat Pay merchant: app id, mch id, API key.
    pub wechat_merchant: (String, String, wechat_pay::ApiKey),
    shutdown: CancellationToken,
    wired: Option<Wired>,
}

/// A registered merchant.
#[derive(Debug, Clone)]
pub struct Creds {
    pub app_id: String,
    pub secret: String,
    pub salt: String,
}

impl Platform {
    pub async fn start(options: Options) -> Platform {
        match Platform::try_start(options).await {
            Ok(p) => p,
            Err(e) => panic!("the platform did not start: {e}"),
        }
    }

    /// Starts a platform, or says why it refused to.
    pub async fn try_start(options: Options) -> Result<Platform, StartError> {
        let mut config = PlatformConfig::embedded();
        config.database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| {
                let path = std::env::temp_dir().join(format!("{}.db", unique("pay-platform-")));
                format!("sqlite://{}?mode=rwc", path.display())
            })
            .into();
        config.amqp_url = options.amqp_url.clone().map(Into::into);
        config.redis_url = options.redis_url.clone().map(Into::into);
        config.callback_queue = options.queue.clone().unwrap_or_else(|| unique("pp-test."));
        config.admin_token = options
            .admin_token
            .clone()
            .unwrap_or_else(|| Some(ADMIN_TOKEN.to_owned()))
            .map(Into::into);
        if let Some(providers) = &options.providers {
            config.providers = providers.clone();
        }
        config.callback_allow_private = options.callback_allow_private;
        config.callback_retry_secs = 1;
        config.callback_retry_max_secs = 1;
        config.callback_max_attempts = options.max_attempts;
        config.secret_grace_secs = options.grace_secs;
        config.reconcile.reconcile_after_secs = 3600;
        config.idempotency_lease_secs = options.idempotency_lease_secs;
        config.callback_timeout_secs = options.callback_timeout_secs;
        config.direct_multi_merchant = options.direct_multi_merchant;
        config.platform_mode = options.platform_mode;
        config.platform_fee_bps = options.platform_fee_bps;
        config.platform_merchant_name = options.platform_merchant_name.clone();
        if let Some((url, timeout_ms)) = &options.chatbot {
            config.chatbot_url = Some(url.clone());
            config.chatbot_timeout_ms = *timeout_ms;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let wired = wire(&config, &url).await?;
        let shutdown = CancellationToken::new();
        wired.spawn_workers(shutdown.clone()).await.unwrap();
        serve_in_background(
            listener,
            app(wired.state.clone()),
            config.http.clone(),
            shutdown.clone(),
        );
        let wechat_merchant = match &wired.emulator {
            Some(e) => {
                let m = &e.config().merchants[0];
                (m.app_id.clone(), m.mch_id.clone(), m.api_key.clone())
            }
            None => {
                let p = &config.providers;
                (
                    p.wechat_mp.wechat_app_id.clone().unwrap_or_default(),
                    p.wechat_pay.wechat_mch_id.clone().unwrap_or_default(),
                    wechat_pay::ApiKey::new(
                        p.wechat_pay
                            .wechat_api_key
                            .as_ref()
                            .map(|k| k.expose().to_owned())
                            .unwrap_or_default(),
                    ),
                )
            }
        };
        let emulator_url = emulator_url(wired.emulator.as_ref(), options.gateway_url.as_ref());
        Ok(Platform {
            url,
            state: wired.state.clone(),
            emulator_url,
            wechat_merchant,
            http: reqwest::Client::new(),
            shutdown,
            wired: Some(wired),
        })
    }

    /// POSTs a text message from `from` with id `msg_id` to `/mp/callback`, signed with the
    /// embedded emulator's Official Account token; the reply body.
    pub async fn mp_text(&self, from: &str, content: &str, msg_id: u64) -> String {
        let token = self
            .wired
            .as_ref()
            .and_then(|w| w.emulator.as_ref())
            .map(|e| e.config().mp_apps[0].token.expose().to_owned())
            .expect("an embedded emulator");
        let timestamp = examples::clock::unix_now().to_string();
        let nonce = "n0nce";
        let signature = wechat_mp::message::signature::sign(&[&token, &timestamp, nonce]);
        let body = format!(
            "<xml><ToUserName><![CDATA[gh_platform]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
             <CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        );
        let resp = self
            .http
            .post(format!(
                "{}/mp/callback?signature={signature}&timestamp={timestamp}&nonce={nonce}",
                self.url
            ))
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.text().await.unwrap()
    }

    pub fn mode(&self) -> examples::providers::Mode {
        self.state.settings.mode
    }

    /// Stops the workers and server; removes the RabbitMQ queues of this run.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let EventDelivery::Rabbit {
            connection,
            topology,
        } = &self.state.dead_letters
        {
            let channel = connection.create_channel().await.unwrap();
            topology.delete(&channel).await.unwrap();
        }
        if let Some(wired) = self.wired.take() {
            if let Some(emulator) = wired.emulator {
                emulator.shutdown().await;
            }
        }
    }

    /// A page's HTML.
    pub async fn page(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The buyer pays the order `out_trade_no` of merchant `app_id` at the emulator.
    pub async fn pay_at_emulator(&self, app_id: &str, out_trade_no: &str) {
        let platform_no = self.platform_no(app_id, out_trade_no).await;
        let paid = self
            .http
            .post(format!("{}/sandbox/pay", self.emulator_url))
            .json(&json!({"out_trade_no": platform_no}))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_success());
    }

    /// The embedded emulator's ledgers (demo mode).
    pub fn ledgers(&self) -> std::collections::BTreeMap<String, wechat_sandbox::Ledger> {
        self.wired
            .as_ref()
            .and_then(|w| w.emulator.as_ref())
            .map(wechat_sandbox::Sandbox::ledgers)
            .unwrap_or_default()
    }

    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn register(&self, notify_url: &str) -> Creds {
        let (status, body) = self
            .admin(
                "POST",
                "/admin/merchants",
                Some(json!({"name": "Test Shop", "credit_code": credit_code(), "notify_url": notify_url})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Creds {
            app_id: body["app_id"].as_str().unwrap().to_owned(),
            secret: body["secret"].as_str().unwrap().to_owned(),
            salt: body["salt"].as_str().unwrap().to_owned(),
        }
    }

    pub fn client(&self, creds: &Creds) -> Client {
        Client::builder(
            creds.app_id.clone(),
            Secret::new(creds.secret.clone()),
            Secret::new(creds.salt.clone()),
        )
        .base_url(self.url.clone())
        .build()
        .unwrap()
    }

    /// The number the channel knows an order by.
    pub async fn platform_no(&self, app_id: &str, out_trade_no: &str) -> String {
        self.state
            .db
            .order(app_id, out_trade_no)
            .await
            .unwrap()
            .unwrap()
            .platform_no
    }

    /// Waits for the first dead letter (of `kind`, when given) and returns it.
    pub async fn dead_letter(&self, kind: Option<&str>) -> Value {
        let mut dead = Value::Null;
        eventually(30, "a dead letter", async || {
            let (_, list) = self.admin("GET", "/admin/dead-letters", None).await;
            match list
                .as_array()
                .and_then(|l| l.iter().find(|e| kind.is_none_or(|k| e["type"] == k)))
            {
                Some(e) => {
                    dead = e.clone();
                    true
                }
                None => false,
            }
        })
        .await;
        dead
    }

    /// Pays a sandbox payment through the cashier page's button.
    pub async fn cashier_sandbox_pay(&self, token: &str) -> Value {
        let resp = self
            .http
            .post(format!("{}/cashier/{token}/sandbox-pay", self.url))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        resp.json().await.unwrap()
    }
}

/// One callback as the merchant received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub body: String,
    pub accepted: bool,
}

#[derive(Clone, Default)]
struct EndpointState {
    log: Arc<Mutex<Vec<Delivery>>>,
    refuse_first: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

/// The merchant's notify URL: records every callback; can refuse the first few, or all while
/// "down".
#[derive(Clone)]
pub struct MerchantEndpoint {
    pub url: String,
    state: EndpointState,
}

impl MerchantEndpoint {
    pub async fn start() -> MerchantEndpoint {
        async fn receive(
            State(s): State<EndpointState>,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            let refuse = s.down.load(Ordering::SeqCst)
                || s.refuse_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
            s.log.lock().unwrap().push(Delivery {
                signature: headers
                    .get("x-pay-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                body: String::from_utf8_lossy(&body).into_owned(),
                accepted: !refuse,
            });
            if refuse {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
        let state = EndpointState::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/callback", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MerchantEndpoint { url, state }
    }

    pub fn refuse_first(&self, n: usize) {
        self.state.refuse_first.store(n, Ordering::SeqCst);
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.log.lock().unwrap().clone()
    }

    /// Accepted deliveries of events of `kind` (e.g. `payment.succeeded`).
    pub fn accepted(&self, kind: &str) -> Vec<Value> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.accepted)
            .map(|d| serde_json::from_str::<Value>(&d.body).unwrap())
            .filter(|v| v["type"] == kind)
            .collect()
    }
}
