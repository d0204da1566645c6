//! `vending-server` end to end: the real HTTP service (`examples::vending::app`) with its
//! embedded emulator, driven over HTTP. `flows` holds each scenario once; `in_process` runs them
//! on SQLite with simulated machines and in-process timers, `engines` on PostgreSQL / MariaDB +
//! Redis + RabbitMQ + Mosquitto (with the `machine-sim` logic answering over MQTT).

mod engines;
mod flows;
mod in_process;
mod limits;
mod live;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use examples::providers::ProviderArgs;
use examples::vending::config::{FeedLimits, VendingConfig};
use examples::vending::machines::{SimBehaviour, Topics, serve_simulator};
use examples::vending::wiring::{Wired, WiringError, wire};
use examples::vending::{VendingState, app};
use examples::workers::Delivery;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wechat_sandbox::server::HttpLimits;

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
        }
    }
}

/// A running vending server.
pub struct Vending {
    pub url: String,
    pub state: Arc<VendingState>,
    pub emulator_url: String,
    pub http: reqwest::Client,
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
    pub async fn try_start(options: Options) -> Result<Vending, WiringError> {
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
        config.redis_prefix = format!("{}:", unique("vending-test-"));
        config.amqp_url = options.amqp_url.clone().map(Into::into);
        config.amqp_prefix = unique("vending-test.");
        config.mqtt_url = options.mqtt_url.clone().map(Into::into);
        config.mqtt_topic_root = unique("vending-test-");
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
        wired.spawn_workers().await.unwrap();
        serve_in_background(
            listener,
            app(wired.state.clone()),
            config.http.clone(),
            wired.shutdown.clone(),
        );
        let emulator_url = emulator_url(wired.emulator.as_ref(), options.gateway_url.as_ref());
        Ok(Vending {
            url,
            state: wired.state.clone(),
            emulator_url,
            http: reqwest::Client::new(),
            wired,
            simulator,
        })
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
        if let Some(emulator) = wired.emulator {
            emulator.shutdown().await;
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The body of `GET path` (pages, `/metrics`).
    pub async fn text(&self, path: &str) -> String {
        get_text(&self.http, &format!("{}{path}", self.url)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Creates a sandbox-paid order; asserts 201.
    pub async fn order(&self, machine: &str, sku_id: i64) -> Value {
        let (status, order) = self
            .post(
                "/api/orders",
                json!({"inner_code": machine, "sku_id": sku_id, "channel": "sandbox"}),
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
        let (status, order) = self.get(&format!("/api/orders/{order_no}")).await;
        assert_eq!(status, StatusCode::OK, "{order}");
        order
    }

    /// Waits until the order is `status`; returns it.
    pub async fn wait_for(&self, order_no: &str, status: &str, secs: u64) -> Value {
        let mut last = Value::Null;
        eventually(
            secs,
            &format!("order {order_no} to be {status}"),
            async || {
                last = self.order_view(order_no).await;
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
