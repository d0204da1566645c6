//! `vending-server` end to end: the real HTTP service (`examples::vending::app`) with its
//! embedded emulator, driven over HTTP. `flows` holds each scenario once; `in_process` runs them
//! on SQLite with simulated machines and in-process timers, `engines` on PostgreSQL / MariaDB +
//! Redis + RabbitMQ + Mosquitto (with the `machine-sim` logic answering over MQTT).

mod access;
mod alipay;
mod attacks;
mod bills;
mod complaints;
mod engines;
mod flows;
mod in_process;
mod limits;
mod live;
mod scans;
mod seller_wechat;
mod short_poll;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use examples::providers::ProviderArgs;
use examples::running::StartError;
use examples::vending::config::{FeedLimits, VendingConfig};
use examples::vending::machines::{SimBehaviour, Topics, serve_simulator};
use examples::vending::wiring::{Wired, wire};
use examples::vending::{VendingState, app};
use examples::workers::Delivery;
use http_serve::HttpLimits;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{
    control_at, emulator_url, eventually, get_text, messages_to, serve_in_background, unique,
};

/// How a test server runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub amqp_url: Option<String>,
    pub mqtt_url: Option<String>,
    pub order_timeout_secs: u64,
    pub vend_timeout_secs: u64,
    pub fail_rate: f64,
    pub latency_ms: u64,
    /// Provider settings (live mode when any is set); demo mode when `None`.
    pub providers: Option<ProviderArgs>,
    /// The gateway a live server talks to (a standalone emulator), for the control calls.
    pub gateway_url: Option<String>,
    pub simulate_machines: Option<bool>,
    pub http: Option<HttpLimits>,
    pub feed: Option<FeedLimits>,
    pub metrics_listen: Option<String>,
    /// `ORDER_RATE_PER_MIN`: high by default, every test runs from one address.
    pub order_rate_per_min: u32,
    pub session_secret: Option<String>,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: Option<String>,
    /// Every demo machine's secret (and the MQTT simulator's).
    pub machine_secret: Option<String>,
    /// Redis, RabbitMQ and MQTT names shared with another instance (one deployment).
    pub shared_prefix: Option<String>,
    /// `RECONCILE_AFTER_SECS` and `RECONCILE_INTERVAL_SECS` (the server's defaults if `None`).
    pub reconcile: Option<(u64, u64)>,
    /// `PAYMENT_CODE_WAIT_SECS` (the server's default if `None`).
    pub payment_code_wait_secs: Option<u64>,
    /// `COMPLAINT_SYNC_SECS` (the server's default if `None`).
    pub complaint_sync_secs: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            database_url: None,
            redis_url: None,
            amqp_url: None,
            mqtt_url: None,
            order_timeout_secs: 600,
            vend_timeout_secs: 60,
            fail_rate: 0.0,
            latency_ms: 50,
            providers: None,
            gateway_url: None,
            simulate_machines: None,
            http: None,
            feed: None,
            metrics_listen: None,
            order_rate_per_min: 10_000,
            session_secret: None,
            trusted_proxies: None,
            machine_secret: None,
            shared_prefix: None,
            reconcile: None,
            payment_code_wait_secs: None,
            complaint_sync_secs: None,
        }
    }
}

/// A buyer's session, as a test holds it.
#[derive(Debug, Clone)]
pub struct Session {
    pub open_id: String,
    pub token: String,
}

/// A running vending server.
pub struct Vending {
    pub url: String,
    pub state: Arc<VendingState>,
    pub emulator_url: String,
    pub http: reqwest::Client,
    /// The buyer `get` / `post` act as (demo mode: a demo buyer; live: an Official Account
    /// buyer when the server has one).
    pub buyer: Option<Session>,
    /// This run's MQTT topic root.
    pub topic_root: String,
    wired: Wired,
    simulator: Option<CancellationToken>,
}

impl Vending {
    pub async fn start(options: Options) -> Vending {
        match Vending::try_start(options).await {
            Ok(v) => v,
            Err(e) => panic!("the server did not start: {e}"),
        }
    }

    /// Starts a server, or says why it refused to.
    pub async fn try_start(options: Options) -> Result<Vending, StartError> {
        let mut config = VendingConfig::embedded();
        config.database_url = options
            .database_url
            .clone()
            .unwrap_or_else(|| {
                let path = std::env::temp_dir().join(format!("{}.db", unique("vending-")));
                format!("sqlite://{}?mode=rwc", path.display())
            })
            .into();
        config.redis_url = options.redis_url.clone().map(Into::into);
        let prefix = options
            .shared_prefix
            .clone()
            .unwrap_or_else(|| unique("vending-test-"));
        config.redis_prefix = format!("{prefix}:");
        config.amqp_url = options.amqp_url.clone().map(Into::into);
        config.amqp_prefix = prefix.clone();
        config.mqtt_url = options.mqtt_url.clone().map(Into::into);
        config.mqtt_topic_root = prefix.clone();
        config.order_timeout_secs = options.order_timeout_secs;
        config.vend_timeout_secs = options.vend_timeout_secs;
        config.sim_latency_ms = options.latency_ms;
        config.sim_fail_rate = options.fail_rate;
        if let Some(providers) = &options.providers {
            config.providers = providers.clone();
        }
        config.simulate_machines = options.simulate_machines;
        if let Some(http) = &options.http {
            config.http = http.clone();
        }
        if let Some(feed) = &options.feed {
            config.feed = feed.clone();
        }
        config.metrics_listen = options.metrics_listen.clone();
        if let Some((after, every)) = options.reconcile {
            config.reconcile.reconcile_after_secs = after;
            config.reconcile.reconcile_interval_secs = every;
        }
        if let Some(wait) = options.payment_code_wait_secs {
            config.payment_code_wait_secs = wait;
        }
        if let Some(every) = options.complaint_sync_secs {
            config.complaint_sync_secs = every;
        }
        config.access.order_rate_per_min = options.order_rate_per_min;
        config.access.session_secret = options.session_secret.clone().map(Into::into);
        if let Some(proxies) = &options.trusted_proxies {
            config.access.trusted_proxies = proxies.parse().unwrap();
        }

        // Real machines: the `machine-sim` logic on the broker, under this run's topic root.
        let simulator = match &options.mqtt_url {
            Some(url) => {
                let stop = CancellationToken::new();
                serve_simulator(
                    url,
                    Topics::new(&config.mqtt_topic_root),
                    SimBehaviour {
                        latency: Duration::from_millis(config.sim_latency_ms),
                        fail_rate: options.fail_rate,
                    },
                    options.machine_secret.clone(),
                    stop.clone(),
                )
                .await
                .unwrap();
                Some(stop)
            }
            None => None,
        };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut wired = wire(&config, &url).await?;
        if let Some(secret) = &options.machine_secret {
            for machine in ["VM0001", "VM0002", "VM0003"] {
                let db = wired.state.orders.db();
                assert!(db.set_machine_secret(machine, Some(secret)).await.unwrap());
            }
        }
        wired.spawn_workers().await.unwrap();
        serve_in_background(
            listener,
            app(wired.state.clone()),
            config.http.clone(),
            wired.shutdown.clone(),
        );
        let emulator_url = emulator_url(wired.emulator.as_ref(), options.gateway_url.as_ref());
        let mut v = Vending {
            url,
            state: wired.state.clone(),
            emulator_url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            buyer: None,
            topic_root: config.mqtt_topic_root.clone(),
            wired,
            simulator,
        };
        v.buyer = match v.mode() {
            examples::providers::Mode::Demo => Some(v.demo_buyer().await),
            examples::providers::Mode::Live if v.state.buyers.official.is_some() => {
                Some(v.official_buyer(&unique("oLive")).await)
            }
            examples::providers::Mode::Live => None,
        };
        Ok(v)
    }

    /// A fresh demo buyer (`POST /api/demo-login`).
    pub async fn demo_buyer(&self) -> Session {
        let (status, s) = self.post_as(None, "/api/demo-login", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{s}");
        Session {
            open_id: s["open_id"].as_str().unwrap().to_owned(),
            token: s["token"].as_str().unwrap().to_owned(),
        }
    }

    /// A Mini Program buyer: a `js_code` from the emulator, `POST /api/login`.
    pub async fn mini_buyer(&self, open_id: &str) -> Session {
        let code = self
            .emulator(
                "/sandbox/js-code",
                json!({"app_id": self.mini_app_id(), "open_id": open_id}),
            )
            .await;
        let (status, s) = self
            .post_as(None, "/api/login", json!({"js_code": code["js_code"]}))
            .await;
        assert_eq!(status, StatusCode::OK, "{s}");
        assert_eq!(s["open_id"], open_id);
        Session {
            open_id: open_id.to_owned(),
            token: s["token"].as_str().unwrap().to_owned(),
        }
    }

    /// An Official Account buyer, through the web login as a browser goes: `/api/oauth/start`
    /// (its cookie), WeChat's code (from the emulator), `/api/oauth/callback` (the session
    /// cookie, whose value is the token).
    pub async fn official_buyer(&self, open_id: &str) -> Session {
        let start = self
            .http
            .get(format!("{}/api/oauth/start?return_url=/done", self.url))
            .send()
            .await
            .unwrap();
        assert!(start.status().is_redirection(), "{}", start.status());
        let nonce_cookie = set_cookie(&start, "vending_oauth").unwrap();
        let back = self
            .http
            .get(
                self.wechat_allows(&start, "/api/oauth/callback", open_id)
                    .await,
            )
            .header("cookie", format!("vending_oauth={nonce_cookie}"))
            .send()
            .await
            .unwrap();
        assert!(back.status().is_redirection(), "{}", back.status());
        assert_eq!(back.headers()["location"], "/done");
        Session {
            open_id: open_id.to_owned(),
            token: set_cookie(&back, "vending_buyer").unwrap(),
        }
    }

    /// Where WeChat sends WeChat user `open_id` back after allowing the Official Account's web
    /// login that `start` redirected to: `callback_path` with the code (minted by the
    /// emulator) and the state.
    pub async fn wechat_allows(
        &self,
        start: &reqwest::Response,
        callback_path: &str,
        open_id: &str,
    ) -> String {
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let state = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let app_id = self.state.buyers.official.as_ref().unwrap().app_id();
        let code = self
            .emulator(
                "/sandbox/oauth-code",
                json!({"app_id": app_id, "open_id": open_id}),
            )
            .await;
        format!(
            "{}{callback_path}?{}",
            self.url,
            serde_urlencoded::to_string([
                ("code", code["code"].as_str().unwrap()),
                ("state", &state),
            ])
            .unwrap()
        )
    }

    /// A seller session cookie for `login` / `password` (`POST /api/seller/login`).
    pub async fn seller_login(&self, login: &str, password: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/api/seller/login", self.url))
            .json(&json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "seller login of {login}");
        set_cookie(&resp, "vending_seller").unwrap()
    }

    /// The demo seller's session (demo mode: it owns the demo machines).
    pub async fn demo_seller(&self) -> String {
        let demo = self.wired.demo_seller.clone().unwrap();
        self.seller_login(&demo.login, &demo.password).await
    }

    /// A new seller owning `machines`; its session.
    pub async fn new_seller(&self, machines: &[&str]) -> (String, String) {
        let login = unique("seller-").to_ascii_lowercase();
        let db = self.state.orders.db();
        examples::vending::accounts::add_seller(db, &login, "a-seller-password")
            .await
            .unwrap();
        for m in machines {
            assert!(db.assign_machine(m, &login).await.unwrap());
        }
        let cookie = self.seller_login(&login, "a-seller-password").await;
        (login, cookie)
    }

    /// A request as the seller with `cookie`.
    pub async fn seller_call(
        &self,
        cookie: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("vending_seller={c}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }

    /// The seller dashboard's WebSocket request, with the seller's cookie (if any).
    pub fn dashboard_request(
        &self,
        cookie: Option<&str>,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("{}/ws/seller", self.url.replacen("http://", "ws://", 1))
            .into_client_request()
            .unwrap();
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("cookie", format!("vending_seller={c}").parse().unwrap());
        }
        req
    }

    fn mini_app_id(&self) -> String {
        self.state.buyers.mini.as_ref().unwrap().app_id().to_owned()
    }

    /// Stops the server and its workers; removes this run's RabbitMQ queues.
    pub async fn stop(self) {
        let Vending {
            wired, simulator, ..
        } = self;
        wired.shutdown.cancel();
        if let Some(stop) = simulator {
            stop.cancel();
        }
        if let Delivery::Rabbit {
            connection,
            topology,
        } = &wired.delivery
        {
            let channel = connection.create_channel().await.unwrap();
            topology.delete(&channel).await.unwrap();
        }
        if let Some(delays) = &wired.rabbit_delays {
            delays.delete().await.unwrap();
        }
        wired.state.orders.feed().delete().await.unwrap();
        if let Some(emulator) = wired.emulator {
            emulator.shutdown().await;
        }
    }

    /// `GET path` as the default buyer.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(self.buyer.as_ref(), path).await
    }

    /// `GET path` as `buyer` (or nobody).
    pub async fn get_as(&self, buyer: Option<&Session>, path: &str) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(b) = buyer {
            req = req.bearer_auth(&b.token);
        }
        answer(req.send().await.unwrap()).await
    }

    /// The body of `GET path` (pages, `/metrics`).
    pub async fn text(&self, path: &str) -> String {
        get_text(&self.http, &format!("{}{path}", self.url)).await
    }

    /// `POST path` as the default buyer.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_as(self.buyer.as_ref(), path, body).await
    }

    /// `POST path` as `buyer` (or nobody).
    pub async fn post_as(
        &self,
        buyer: Option<&Session>,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(b) = buyer {
            req = req.bearer_auth(&b.token);
        }
        answer(req.send().await.unwrap()).await
    }

    /// Creates a sandbox-paid order; asserts 201.
    pub async fn order(&self, machine: &str, sku_id: i64) -> Value {
        self.order_on(machine, sku_id, "sandbox").await
    }

    /// An order paid through `channel`, as the default buyer (created, or the test fails).
    pub async fn order_on(&self, machine: &str, sku_id: i64, channel: &str) -> Value {
        let (status, order) = self
            .post(
                "/api/orders",
                json!({"inner_code": machine, "sku_id": sku_id, "channel": channel}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        order
    }

    /// Pays an order through the "pay in the sandbox" button.
    pub async fn sandbox_pay(&self, order_no: &str) -> Value {
        let (status, order) = self
            .post(&format!("/api/orders/{order_no}/sandbox-pay"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    pub async fn order_view(&self, order_no: &str) -> Value {
        self.order_view_as(self.buyer.as_ref(), order_no).await
    }

    /// The order as `buyer` sees it.
    pub async fn order_view_as(&self, buyer: Option<&Session>, order_no: &str) -> Value {
        let (status, order) = self.get_as(buyer, &format!("/api/orders/{order_no}")).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    /// Waits until the order is `status`; returns it.
    pub async fn wait_for(&self, order_no: &str, status: &str, secs: u64) -> Value {
        self.wait_for_seen_by(self.buyer.as_ref(), order_no, status, secs)
            .await
    }

    /// Waits until the order, as `buyer` sees it, is `status`; returns it.
    pub async fn wait_for_as(
        &self,
        buyer: &Session,
        order_no: &str,
        status: &str,
        secs: u64,
    ) -> Value {
        self.wait_for_seen_by(Some(buyer), order_no, status, secs)
            .await
    }

    async fn wait_for_seen_by(
        &self,
        buyer: Option<&Session>,
        order_no: &str,
        status: &str,
        secs: u64,
    ) -> Value {
        let mut last = Value::Null;
        eventually(
            secs,
            &format!("order {order_no} to be {status}"),
            async || {
                last = self.order_view_as(buyer, order_no).await;
                last["status"] == status
            },
        )
        .await;
        last
    }

    /// Remaining items in a slot.
    pub async fn slot_capacity(&self, machine: &str, slot: &str) -> i64 {
        self.state
            .orders
            .db()
            .slot_capacity(machine, slot)
            .await
            .unwrap()
            .unwrap()
    }

    /// The SKU's entry in the machine's list, if it is not sold out.
    pub async fn sku_entry(&self, machine: &str, sku_id: i64) -> Option<Value> {
        let (status, skus) = self.get(&format!("/api/machines/{machine}/skus")).await;
        assert_eq!(status, StatusCode::OK, "{skus}");
        skus.as_array()
            .unwrap()
            .iter()
            .find(|s| s["sku_id"] == sku_id)
            .cloned()
    }

    /// Template messages the emulator received for `open_id`.
    pub async fn messages_to(&self, open_id: &str) -> Vec<Value> {
        messages_to(&self.emulator_url, open_id).await
    }

    /// A control call on the emulator; asserts it succeeded.
    pub async fn emulator(&self, path: &str, body: Value) -> Value {
        let (status, answer) = control_at(&self.emulator_url, path, &body).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    }

    /// A control call on the emulator; whether it succeeded.
    pub async fn try_emulator(&self, path: &str, body: &Value) -> bool {
        (200..300).contains(&control_at(&self.emulator_url, path, body).await.0)
    }

    pub fn mode(&self) -> examples::providers::Mode {
        self.wired.mode
    }

    pub fn vend_commands(&self) -> u64 {
        self.state.metrics.vend_commands()
    }
}

/// A response's status and JSON body (`null` when it has none).
async fn answer(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The value a response sets for cookie `name`.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name && !value.is_empty()).then(|| value.to_owned())
        })
}
