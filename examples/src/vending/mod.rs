//! `vending-server`: the vending-machine order server.
//!
//! - [`config`] — flags / environment; [`wiring`] — the one place that picks SQLite /
//!   PostgreSQL / MySQL, memory / Redis, in-process / RabbitMQ, simulated machines / MQTT, real
//!   channels / the embedded emulator; [`run`] — what the binary runs (wire, workers, serve, shut
//!   down); [`commands`] — the operator's `seller` / `machine` / `sku` commands.
//! - [`auth`] — who is asking: buyer and seller sessions (signed tokens, cookies), the
//!   extractors, rate limits; [`accounts`] — seller accounts and the demo seller.
//! - [`orders`] — the order service: create (one open order per buyer, machine lock first), pay,
//!   vend, complete, fail, refund (the seller's too), time out, cancel, sweep. [`events`] turns
//!   payment events into order steps; [`feed`] carries order changes to every instance's
//!   dashboards.
//! - [`machines`] — vend-out over MQTT or simulated, results checked against their topic and
//!   signature; [`delays`] — order and vend timeouts (RabbitMQ TTL + dead-letter, or in-process
//!   timers).
//! - [`complaints`] — payers' complaints (WeChat Pay API v3) beside their orders, for their
//!   sellers.
//! - [`db`] — machines, SKUs, slots, orders, sellers, the audit, shared settings (migrations and
//!   demo data embedded); [`metrics`] — `/metrics`.
//! - [`routes`] — `api` (the buyer's), `session` (buyer logins), `seller` (login, feed, actions,
//!   audit), `pages`, ops; notifications are the shared `crate::notify` routes.
//!
//! `app(state)` is the whole HTTP service; tests call it directly.

pub mod accounts;
pub mod auth;
pub mod commands;
pub mod complaints;
pub mod config;
pub mod db;
pub mod delays;
pub mod events;
pub mod feed;
pub mod machines;
pub mod metrics;
pub mod orders;
pub mod routes;
pub mod run;
pub mod wiring;

use std::sync::Arc;

use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::rate_limit::RateLimiter;
use aggregate_pay::{NotifyOutcome, NotifyProcessor};
use axum::Router;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

use config::FeedLimits;
use metrics::Metrics;
use orders::OrderService;

use crate::providers::Mode;
use http_serve::HttpLimits;

/// The largest request body by default (`MAX_BODY_BYTES`).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct VendingSettings {
    /// Demo (test money, the embedded emulator) or live.
    pub mode: Mode,
    /// The public base URL.
    pub public_url: String,
    /// The embedded emulator's URL, when it runs.
    pub emulator_url: Option<String>,
    /// Request limits.
    pub http: HttpLimits,
    /// Seller feed limits.
    pub feed: FeedLimits,
    /// Whether `/metrics` is served on the main listener (no `METRICS_LISTEN`).
    pub metrics_on_main: bool,
    /// Orders (and logins) per minute, per buyer and per client address.
    pub rate_per_min: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
    /// How much of a client's address names its network for the limits.
    pub rate_prefixes: crate::client_addr::NetworkPrefixes,
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
    /// The in-process test-money channel (demo mode only; its "pay now" button pays through it).
    pub sandbox: Option<Arc<SandboxChannel>>,
    /// The WeChat apps buyers log in and pay with.
    pub buyers: orders::BuyerApps,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Buyer and seller sessions.
    pub sessions: auth::Sessions,
    /// Order and login rates, per buyer and per client address.
    pub limiter: Arc<dyn RateLimiter>,
    /// Seller dashboards connected now (at most `WS_MAX_CONNECTIONS`).
    pub feed_connections: Arc<tokio::sync::Semaphore>,
    /// Reconciliation against the providers' daily bills.
    pub bills: aggregate_pay::BillReconciler,
    /// The short loop while a buyer's page waits for a payment.
    pub short_poll: aggregate_pay::ShortPoll,
    /// Payers' complaints, when the merchant speaks WeChat Pay API v3.
    pub complaints: Option<Arc<complaints::Complaints>>,
}

impl crate::notify::HasNotifyProcessor for VendingState {
    fn notify_processor(&self) -> &NotifyProcessor {
        &self.processor
    }

    fn observe_notify(&self, channel: &str, outcome: &NotifyOutcome) {
        self.metrics.notification(channel, outcome);
    }
}

/// The HTTP service. The test-money routes exist in demo mode only; `/metrics` only when it has
/// no listener of its own.
pub fn app(state: Arc<VendingState>) -> Router {
    let mut router = Router::new()
        .merge(routes::api::routes())
        .merge(routes::session::routes())
        .merge(routes::seller::routes())
        .merge(routes::pages::routes())
        .merge(routes::ops())
        .merge(crate::notify::routes())
        .merge(crate::complaints::routes());
    if state.sandbox.is_some() {
        router = router
            .merge(routes::api::test_money_routes())
            .merge(routes::session::demo_routes());
    }
    if state.settings.metrics_on_main {
        router = router.merge(routes::metrics_routes());
    }
    state
        .settings
        .http
        .apply(router, DEFAULT_MAX_BODY)
        // Images a seller answers a complaint with: up to WeChat's 2 MiB, on this route only.
        .merge(state.settings.http.apply(
            routes::seller::upload_routes(),
            routes::seller::MAX_IMAGE_BYTES,
        ))
        .layer(CorsLayer::permissive())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/metrics` alone, for `METRICS_LISTEN`.
pub fn metrics_app(state: Arc<VendingState>) -> Router {
    let limits = state.settings.http.clone();
    limits
        .apply(routes::metrics_routes(), DEFAULT_MAX_BODY)
        .with_state(state)
}
