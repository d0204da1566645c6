#![doc = include_str!("../README.md")]
//! A local emulator of WeChat Pay (API v2 and v3), WeChat MP (Official Account / Mini Program) and
//! Alipay, with real signatures, real state and real asynchronous notifications (retried on the
//! providers' schedules), so payment code can be developed and tested without a merchant account.
//! A binary (`cargo run -p wechat-sandbox`) and a library: any Rust service can start one inside
//! its own tests as a dev-dependency.
//!
//! # In a service's tests
//!
//! ```no_run
//! # async fn checkout_test() -> Result<(), Box<dyn std::error::Error>> {
//! use wechat_pay::{ApiKey, Fen, Trade, UnifiedOrder};
//! use wechat_sandbox::Sandbox;
//!
//! // The merchant your service is configured with; the sandbox knows it too.
//! let sandbox = Sandbox::builder()
//!     .merchant("wx2421b1c4370ec43b", "10000100", ApiKey::new("192006250b4c09247ec02edce69f6a2d"))
//!     .time_scale(1000.0) // WeChat's 15 s retry becomes 15 ms
//!     .start()
//!     .await?;
//!
//! // Your service talks to the sandbox instead of WeChat: only the base URL changes.
//! let client = wechat_pay::Client::builder(
//!     "wx2421b1c4370ec43b", "10000100", ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
//! )
//! .base_url(sandbox.base_url())
//! .build()?;
//! client
//!     .execute(&UnifiedOrder::new(
//!         Trade::native("sku-1"), "Cola", "ORDER-1", Fen::new(350), "127.0.0.1",
//!         "http://127.0.0.1:8080/notify/wechat", // your service's notify route
//!     ))
//!     .await?;
//!
//! // Play the buyer: the signed notification goes to the notify URL, as WeChat would send it.
//! sandbox.pay("ORDER-1").await?;
//! // … assert that your service marked ORDER-1 paid; then look at what was sent:
//! assert_eq!(sandbox.notifications()[0].reference, "ORDER-1");
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Without any `merchant`, `mp_app` or `alipay_app`, the builder makes one demo identity of each
//! (read them back with [`Sandbox::config`]; the demo Alipay app's private key with
//! [`Sandbox::demo_alipay_app_key`]).
//!
//! # Module map
//!
//! - [`sandbox`] — [`Sandbox`] (a running emulator: its URL and typed control methods) and
//!   [`SandboxBuilder`].
//! - [`config`] — merchants, MP apps and Alipay apps (and the binary's `A,B,C` specs).
//! - `wxpay` — the WeChat Pay v2 gateway at its real paths and under `/sandboxnew`,
//!   `/xdc/apiv2sandbox`; [`wxpay_v3`] — the WeChat Pay v3 gateway (transactions, refunds,
//!   bills, transfers, certificates; a file per group); `mp` — the MP API and user events
//!   POSTed to the app's callback;
//!   `alipay` — `/gateway.do`.
//! - [`settlement`] — what WeChat Pay's v2 and v3 share (an order paid, a refund ended, the
//!   changes to persist, the bills): both version folders use it and never each other.
//! - [`control`] — act as the paying user / WeChat user, and look inside (`/sandbox/*` over
//!   HTTP, the same operations as functions).
//! - [`payment_codes`] — buyers' payment codes minted to pay, hold or decline when a merchant
//!   scans them (v2 `micropay`, v3 `codepay`, Alipay `trade.pay`).
//! - [`notifier`] — notifications with the providers' retry schedules.
//! - [`faults`] — faults on demand: an API's error, a lost answer, a broken signature, a lost
//!   notification.
//! - `page` — the `/sandbox` page listing open orders with pay buttons, and a buyer's payment
//!   code to scan.
//! - [`state`] — what the sandbox remembers; `store` keeps orders in SQLite (`--db`).
//! - [`tls`] — HTTPS with client certificates, as WeChat's gateway: a CA made on the spot and a
//!   merchant certificate (`--tls-dir`, [`SandboxBuilder::tls`]).
//! - [`server`] — the accept loop it serves with (header-read and request timeouts, body limit,
//!   connection cap, TLS): the `http-serve` crate, which the servers use directly.

pub mod alipay;
pub mod config;
pub mod control;
pub mod faults;
pub mod mp;
pub mod notifier;
mod page;
pub mod payment_codes;
pub mod sandbox;
pub mod settlement;
/// Serving with limits and graceful shutdown (the `http-serve` crate, shared with the servers).
pub use http_serve as server;
pub mod state;
mod store;
pub mod tls;
pub mod wxpay;
pub mod wxpay_v3;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use wechat_pay::ApiKey;

pub use config::{AlipayApp, ConfigError, Merchant, MerchantV3, MpApp, SandboxConfig};
pub use control::ControlError;
pub use faults::{ApiFault, FaultRequest, Faults};
pub use sandbox::{Sandbox, SandboxBuilder};
pub use wxpay_v3::profit_sharing::Ledger;

use crate::server::HttpLimits;
use notifier::Notifier;
use state::{AlipayState, MpState, WechatPayState, WxOrder, WxRefund};
use store::Store;

/// Locks a mutex, ignoring poisoning (a panicked handler must not take the sandbox down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The database could not be opened or read.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A key could not be generated or read.
    #[error("key: {0}")]
    Key(String),
    /// The listener failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The sandbox's shared state.
#[derive(Debug)]
pub struct SandboxState {
    /// The configuration.
    pub config: SandboxConfig,
    pub(crate) wechat: Mutex<WechatPayState>,
    pub(crate) mp: Mutex<MpState>,
    pub(crate) alipay: Mutex<AlipayState>,
    pub(crate) v3: Mutex<wxpay_v3::V3State>,
    /// Certificate mode's authority, when an Alipay app is in that mode.
    pub(crate) alipay_pki: Option<alipay::certs::AlipayPki>,
    /// Outgoing notifications.
    pub notifier: Notifier,
    /// Faults on demand (API errors, lost notifications).
    pub faults: Arc<Faults>,
    /// Buyers' payment codes minted for tests.
    pub(crate) payment_codes: payment_codes::PaymentCodes,
    pub(crate) http: reqwest::Client,
    pub(crate) shutdown: CancellationToken,
    store: Option<Store>,
}

impl SandboxState {
    /// Builds the state, loading orders from `db` when given.
    pub async fn new(
        config: SandboxConfig,
        db: Option<&str>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, SandboxError> {
        let store = match db {
            Some(path) => Some(Store::open(path).await?),
            None => None,
        };
        let mut wechat = WechatPayState::default();
        let mut alipay = AlipayState::default();
        if let Some(store) = &store {
            wechat.orders = store
                .load::<WxOrder>("wx_order")
                .await?
                .into_iter()
                .collect();
            wechat.refunds = store
                .load::<WxRefund>("wx_refund")
                .await?
                .into_iter()
                .collect();
            alipay.trades = store.load("ali_trade").await?.into_iter().collect();
            alipay.refunds = store.load("ali_refund").await?.into_iter().collect();
        }
        let faults = Arc::new(Faults::default());
        let alipay_pki = alipay::certs::AlipayPki::for_config(&config)
            .map_err(|e| SandboxError::Key(e.to_string()))?;
        Ok(Arc::new(SandboxState {
            alipay_pki,
            notifier: Notifier::new(config.time_scale, shutdown.clone(), Arc::clone(&faults)),
            faults,
            payment_codes: payment_codes::PaymentCodes::default(),
            config,
            wechat: Mutex::new(wechat),
            mp: Mutex::new(MpState::default()),
            alipay: Mutex::new(alipay),
            v3: Mutex::new(wxpay_v3::V3State::default()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            shutdown,
            store,
        }))
    }

    /// The key an Alipay app's answers and notifications are signed with, and in certificate
    /// mode the SN of its certificate (`alipay_cert_sn`).
    pub(crate) fn alipay_signer(&self, app_id: &str) -> (::alipay::PrivateKey, Option<String>) {
        if let Some(current) = self
            .alipay_pki
            .as_ref()
            .filter(|p| p.has_app(app_id))
            .and_then(|p| p.current())
        {
            return (current.key, Some(current.sn));
        }
        (self.config.alipay_key.clone(), None)
    }

    fn merchant(&self, mch_id: &str, app_id: &str) -> Option<&Merchant> {
        self.config
            .merchants
            .iter()
            .find(|m| m.mch_id == mch_id && m.app_id == app_id)
    }

    /// The key an order's messages are signed with.
    pub(crate) fn order_key(&self, o: &WxOrder) -> Option<ApiKey> {
        let m = self.merchant(&o.mch_id, &o.app_id)?;
        Some(if o.sandbox_key {
            wxpay::sandbox_key(m)
        } else {
            m.api_key.clone()
        })
    }

    /// The key a refund notification is encrypted with.
    pub(crate) fn refund_key(&self, r: &WxRefund) -> Option<ApiKey> {
        let m = self.merchant(&r.mch_id, &r.app_id)?;
        Some(if r.sandbox_key {
            wxpay::sandbox_key(m)
        } else {
            m.api_key.clone()
        })
    }

    pub(crate) async fn persist_wechat(&self, changes: &settlement::Changes) {
        let Some(store) = &self.store else { return };
        for o in &changes.orders {
            store
                .save("wx_order", &state::key(&o.mch_id, &o.out_trade_no), o)
                .await;
        }
        for r in &changes.refunds {
            store
                .save("wx_refund", &state::key(&r.mch_id, &r.out_refund_no), r)
                .await;
        }
    }

    pub(crate) async fn persist_alipay(&self) {
        let Some(store) = &self.store else { return };
        let (trades, refunds) = {
            let ali = lock(&self.alipay);
            (ali.trades.clone(), ali.refunds.clone())
        };
        for (k, t) in &trades {
            store.save("ali_trade", k, t).await;
        }
        for (k, r) in &refunds {
            store.save("ali_refund", k, r).await;
        }
    }
}

/// The largest request body by default (`MAX_BODY_BYTES`).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The sandbox's HTTP service, with the default limits.
pub fn app(state: Arc<SandboxState>) -> Router {
    app_with_limits(state, &HttpLimits::default())
}

/// The sandbox's HTTP service with `limits` (body size, request timeout) on every route.
pub fn app_with_limits(state: Arc<SandboxState>, limits: &HttpLimits) -> Router {
    let router = Router::new()
        .merge(wxpay::routes(&state))
        .merge(wxpay_v3::routes(&state))
        .merge(mp::routes(&state))
        .merge(alipay::routes())
        .merge(control::routes());
    limits
        .apply(router, DEFAULT_MAX_BODY)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
