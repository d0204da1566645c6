//! `vending-server`: the vending-machine order server.
//!
//! - [`config`] — flags / environment; [`wiring`] — the one place that picks SQLite /
//!   PostgreSQL / MySQL, memory / Redis, in-process / RabbitMQ, simulated machines / MQTT, real
//!   channels / the embedded emulator.
//! - [`orders`] — the order service: create (machine lock first), pay, vend, complete, fail,
//!   refund, time out, cancel, sweep. [`events`] turns payment events into order steps.
//! - [`machines`] — vend-out over MQTT or simulated; [`delays`] — order and vend timeouts
//!   (RabbitMQ TTL + dead-letter, or in-process timers).
//! - [`db`] — machines, SKUs, slots, orders (migrations and demo data embedded);
//!   [`metrics`] — `/metrics`.
//! - [`routes`] — `api`, `seller` (WebSocket feed), `pages`, ops; notifications are the shared
//!   `crate::notify` routes.
//!
//! `app(state)` is the whole HTTP service; tests call it directly.

pub mod config;
pub mod db;
pub mod delays;
pub mod events;
pub mod machines;
pub mod metrics;
pub mod orders;
pub mod routes;
pub mod wiring;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::{NotifyOutcome, NotifyProcessor};
use axum::Router;
use axum::http::StatusCode;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use metrics::Metrics;
use orders::OrderService;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct VendingSettings {
    /// The public base URL.
    pub public_url: String,
    /// The embedded emulator's URL, when it runs.
    pub emulator_url: Option<String>,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct VendingState {
    /// Settings.
    pub settings: VendingSettings,
    /// The order service.
    pub orders: Arc<OrderService>,
    /// The notification template.
    pub processor: NotifyProcessor,
    /// The in-process sandbox channel (the "pay now" button pays through it).
    pub sandbox: Arc<SandboxChannel>,
    /// WeChat MP (login).
    pub mp: wechat_mp::Client,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// OAuth logins in progress: state → (started, return path).
    pub oauth_states: Mutex<HashMap<String, (Instant, String)>>,
}

impl crate::notify::HasNotifyProcessor for VendingState {
    fn notify_processor(&self) -> &NotifyProcessor {
        &self.processor
    }

    fn observe_notify(&self, channel: &str, outcome: &NotifyOutcome) {
        self.metrics.notification(channel, outcome);
    }
}

/// The HTTP service.
pub fn app(state: Arc<VendingState>) -> Router {
    Router::new()
        .merge(routes::api::routes())
        .merge(routes::seller::routes())
        .merge(routes::pages::routes())
        .merge(routes::ops())
        .merge(crate::notify::routes())
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
