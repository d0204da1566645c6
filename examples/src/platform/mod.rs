//! `pay-platform`: the aggregate payment platform for merchants.
//!
//! - [`config`] — flags / environment; [`wiring`] — the one place that picks SQLite / PostgreSQL /
//!   MySQL, memory / Redis, in-process / RabbitMQ, real channels / the embedded emulator.
//! - [`routes`] — one module per resource: `admin` (onboarding, dead letters), `open_api`
//!   (signed payments and refunds), `complaints` (the merchant's WeChat Pay complaints), `cashier`, `mp` (the
//!   Official Account callback), `bind` (the binding page).
//! - [`auth`] — `SignedMerchant` and `Admin` extractors (errors are `crate::error::AppError`).
//! - [`db`] — merchants, orders, refunds, idempotency keys, queued merchant messages;
//!   [`callbacks`] — merchant callbacks, as the outbox's event handler ([`callback_data`]: what
//!   they say, and the platform's tag on a payment); [`messages`] — the
//!   merchant's "payment received" WeChat messages, their own outbox consumer;
//!   [`complaints`] — payers' WeChat Pay complaints, forwarded to their merchants.
//! - [`mp_callback`] — the Official Account callback (binding by QR scene, keyword replies, the
//!   chatbot).
//!
//! `app(state)` is the whole HTTP service; tests call it directly. [`run`] is what the binary
//! runs (wire, workers, serve, shut down).

pub mod auth;
pub mod callback_data;
pub mod callbacks;
pub mod complaints;
pub mod config;
pub mod db;
pub mod fee_sharing;
pub mod messages;
pub mod mp_callback;
pub mod routes;
pub mod run;
pub mod wiring;

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::{NotifyProcessor, PaymentStore, Payments};
use axum::Router;
use axum::http::{HeaderValue, Method, header};
use merchant_client::Secret;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use wechat_mp::message::Callback;

use db::{KeyTimes, PlatformDb};

use crate::providers::Mode;
use crate::url_guard::OutboundPolicy;
use http_serve::HttpLimits;

/// The largest request body by default (`MAX_BODY_BYTES`).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Demo (test money, the embedded emulator) or live.
    pub mode: Mode,
    /// Where merchant notify URLs may point.
    pub outbound: OutboundPolicy,
    /// Request limits.
    pub http: HttpLimits,
    /// The public base URL.
    pub public_url: String,
    /// The admin bearer token (at least 32 characters, checked at start-up).
    pub admin_token: Secret,
    /// Accepted clock difference of signed requests.
    pub signature_window: Duration,
    /// How long a rotated-out secret keeps working.
    pub secret_grace: Duration,
    /// `Idempotency-Key` leases and lifetime.
    pub idempotency: KeyTimes,
    /// "Onboarding approved" template id.
    pub onboarding_template: Option<String>,
    /// Allowed CORS origins.
    pub cors_origins: Vec<String>,
    /// The embedded emulator's URL (the cashier links to it), when it runs.
    pub emulator_url: Option<String>,
    /// How long a merchant's binding code works (single-use).
    pub bind_code_ttl_secs: u32,
    /// Live direct mode without `PLATFORM_DIRECT_MULTI_MERCHANT`: one active merchant at most
    /// (the platform's own account must not hold several merchants' money).
    pub single_business: bool,
    /// Partner mode: the service provider's registered name (its receiver name at WeChat Pay).
    pub platform_merchant_name: String,
}

/// Partner mode: the platform is a service provider, each merchant a sub-merchant paid into its
/// own account ([`config::PlatformMode::Partner`]).
#[derive(Debug, Clone, Copy)]
pub struct Partner {
    /// The fee of merchants without their own.
    pub fee_rate: aggregate_pay::fees::FeeRate,
}

/// Partner mode with Alipay: the platform's third-party app and Alipay's authorization page.
#[derive(Debug, Clone)]
pub struct AlipayLink {
    /// The platform's app.
    pub client: aggregate_pay::channels::alipay::AlipayClient,
    /// Alipay's authorization page (the emulator's in demo mode).
    pub page: String,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct PlatformState {
    /// Settings.
    pub settings: Settings,
    /// Partner mode (a service provider), or `None`: direct mode.
    pub partner: Option<Partner>,
    /// Partner mode: shares the platform's fee of each payment.
    pub sharing: Option<aggregate_pay::sharing::ProfitSharing>,
    /// Partner mode with Alipay: where merchants authorize the platform's app.
    pub alipay_auth: Option<AlipayLink>,
    /// The fee shares (the admin's fee income).
    pub shares: Arc<dyn aggregate_pay::sharing::ShareStore>,
    /// The platform tables.
    pub db: PlatformDb,
    /// Payments and the outbox.
    pub store: Arc<dyn PaymentStore>,
    /// The payment service.
    pub payments: Payments,
    /// The notification template.
    pub processor: NotifyProcessor,
    /// The in-process test-money channel (demo mode only; the cashier's sandbox option pays
    /// through it).
    pub sandbox: Option<Arc<SandboxChannel>>,
    /// The Official Account client.
    pub mp: Option<wechat_mp::Client>,
    /// The Official Account callback.
    pub mp_callback: Option<Arc<Callback>>,
    /// Nonces of signed requests.
    pub nonces: Arc<dyn merchant_client::NonceStore>,
    /// Dead callbacks.
    pub dead_letters: crate::workers::Delivery,
    /// Reconciliation against the providers' daily bills.
    pub bills: aggregate_pay::BillReconciler,
    /// The short loop while a buyer's cashier page waits for a payment.
    pub short_poll: aggregate_pay::ShortPoll,
    /// Payers' complaints, forwarded to merchants (a WeChat Pay API v3 platform).
    pub complaints: Option<Arc<complaints::PlatformComplaints>>,
}

impl crate::notify::HasNotifyProcessor for PlatformState {
    fn notify_processor(&self) -> &NotifyProcessor {
        &self.processor
    }
}

/// Unix seconds now.
/// The HTTP service.
pub fn app(state: Arc<PlatformState>) -> Router {
    let cors = if state.settings.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::new().allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = state
            .settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::POST])
    .allow_headers([
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        header::HeaderName::from_static("x-app-id"),
        header::HeaderName::from_static("x-timestamp"),
        header::HeaderName::from_static("x-nonce"),
        header::HeaderName::from_static("x-signature"),
        header::HeaderName::from_static("idempotency-key"),
    ]);
    let mut router = Router::new()
        .merge(routes::admin::routes())
        .merge(routes::alipay_auth::routes())
        .merge(routes::bills::routes())
        .merge(routes::open_api::routes())
        .merge(routes::cashier::routes())
        .merge(crate::notify::routes())
        .merge(crate::complaints::routes())
        .merge(routes::complaints::routes())
        .merge(routes::mp::routes())
        .merge(routes::bind::routes());
    if state.sandbox.is_some() {
        router = router.merge(routes::cashier::test_money_routes());
    }
    state
        .settings
        .http
        .apply(router, DEFAULT_MAX_BODY)
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
