//! `wechat-sandbox`: a local emulator of WeChat Pay v2, WeChat MP and the Alipay gateway, with
//! real signatures, real state and real asynchronous notifications, so payment code can be
//! developed and tested without a merchant account.
//!
//! - [`config`] — merchants, MP apps and Alipay apps (`A,B,C` command-line specs).
//! - `wxpay` — the WeChat Pay v2 gateway at its real paths and under `/sandboxnew`, `/xdc/apiv2sandbox`.
//! - `mp` — the MP API and user events POSTed to the app's callback.
//! - `alipay` — `/gateway.do`.
//! - [`control`] — act as the paying user / WeChat user, and look inside (`/sandbox/*`).
//! - [`notifier`] — notifications with the providers' retry schedules.
//! - [`state`] — what the sandbox remembers; `store` keeps orders in SQLite with `--db`.
//! - [`tls`] — HTTPS with client certificates, as WeChat's gateway: a CA made on the spot and
//!   a merchant certificate (`--tls-dir`, [`spawn_serving`]).
//!
//! Use it as a binary (`cargo run -p examples --bin wechat-sandbox`) or in-process with
//! [`spawn`], as the other servers and the tests do; [`spawn_serving`] serves it over TLS with
//! client certificates, as WeChat's gateway does.

pub mod alipay;
pub mod config;
pub mod control;
pub mod mp;
pub mod notifier;
mod page;
pub mod state;
mod store;
pub mod tls;
pub mod wxpay;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ::alipay::{PrivateKey as AlipayPrivateKey, PublicKey as AlipayPublicKey};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use wechat_mp::Secret;
use wechat_pay::ApiKey;

pub use config::SandboxConfig;

use crate::serve::HttpLimits;
use config::{AlipayApp, Merchant, MpApp, random_token};
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

/// The demo identities created when none are configured.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The demo Alipay app's private key (its public key is registered with the sandbox).
    pub alipay_app_key: Option<AlipayPrivateKey>,
}

impl SandboxConfig {
    /// A configuration with one demo merchant, MP app and Alipay app, random keys, and a fresh
    /// gateway key (2048-bit RSA: a fraction of a second in release builds).
    pub fn demo(public_url: &str) -> Result<(Self, Demo), SandboxError> {
        let alipay_key =
            AlipayPrivateKey::generate().map_err(|e| SandboxError::Key(e.to_string()))?;
        let app_key = AlipayPrivateKey::generate().map_err(|e| SandboxError::Key(e.to_string()))?;
        Ok((
            SandboxConfig {
                merchants: vec![Merchant {
                    app_id: "wxsandbox00000001".into(),
                    mch_id: "1900000109".into(),
                    api_key: ApiKey::new(random_token(32)),
                }],
                mp_apps: vec![MpApp {
                    app_id: "wxsandbox00000001".into(),
                    app_secret: Secret::new(random_token(32)),
                    token: Secret::new(random_token(16)),
                    encoding_aes_key: None,
                    callback_url: None,
                }],
                alipay_apps: vec![AlipayApp {
                    app_id: "2021000000000001".into(),
                    public_key: app_key.public_key(),
                }],
                alipay_key,
                time_scale: 1.0,
                refund_delay: Some(std::time::Duration::from_secs(5)),
                public_url: public_url.trim_end_matches('/').to_owned(),
            },
            Demo {
                alipay_app_key: Some(app_key),
            },
        ))
    }

    /// The gateway's public key, for Alipay clients.
    pub fn alipay_public_key(&self) -> AlipayPublicKey {
        self.alipay_key.public_key()
    }
}

/// The sandbox's shared state.
#[derive(Debug)]
pub struct SandboxState {
    /// The configuration.
    pub config: SandboxConfig,
    pub(crate) wechat: Mutex<WechatPayState>,
    pub(crate) mp: Mutex<MpState>,
    pub(crate) alipay: Mutex<AlipayState>,
    /// Outgoing notifications.
    pub notifier: Notifier,
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
        Ok(Arc::new(SandboxState {
            notifier: Notifier::new(config.time_scale, shutdown.clone()),
            config,
            wechat: Mutex::new(wechat),
            mp: Mutex::new(MpState::default()),
            alipay: Mutex::new(alipay),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            shutdown,
            store,
        }))
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

    pub(crate) async fn persist_wechat(&self, changes: &wxpay::Changes) {
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
        .merge(wxpay::routes())
        .merge(mp::routes())
        .merge(alipay::routes())
        .merge(control::routes());
    limits
        .apply(router, DEFAULT_MAX_BODY)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How a sandbox serves: its HTTP limits and, to stand in for WeChat's mutual-TLS gateway,
/// TLS. With TLS, `/secapi/*` (refund, reverse) answers only connections that presented a
/// client certificate the acceptor's verifier accepted, as WeChat does; give the acceptor a
/// client-certificate verifier that allows unauthenticated clients for the other paths.
#[derive(Clone, Default)]
pub struct Serving {
    /// Timeouts and size limits.
    pub limits: HttpLimits,
    /// TLS, when set.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("limits", &self.limits)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A sandbox serving in the background.
#[derive(Debug)]
pub struct RunningSandbox {
    /// Its base URL (`http://127.0.0.1:port`).
    pub url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its state (for in-process inspection).
    pub state: Arc<SandboxState>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
}

impl RunningSandbox {
    /// Stops serving and sending notifications.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        self.state.notifier.close().await;
    }
}

/// Serves a sandbox on `listener` in the background (plain HTTP, default limits).
/// `config.public_url` is replaced by the listener's address when empty.
pub async fn spawn(
    config: SandboxConfig,
    db: Option<&str>,
    listener: TcpListener,
) -> Result<RunningSandbox, SandboxError> {
    spawn_serving(config, db, listener, Serving::default()).await
}

/// Serves a sandbox on `listener` in the background, as `serving` says (limits, TLS).
pub async fn spawn_serving(
    mut config: SandboxConfig,
    db: Option<&str>,
    listener: TcpListener,
    serving: Serving,
) -> Result<RunningSandbox, SandboxError> {
    let addr = listener.local_addr()?;
    let scheme = if serving.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    if config.public_url.is_empty() {
        config.public_url = url.clone();
    }
    let shutdown = CancellationToken::new();
    let state = SandboxState::new(config, db, shutdown.clone()).await?;
    let service = app_with_limits(state.clone(), &serving.limits);
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        crate::serve::serve(
            listener,
            service,
            &serving.limits,
            serving.tls,
            stop.cancelled_owned(),
        )
        .await;
    });
    Ok(RunningSandbox {
        url,
        addr,
        state,
        shutdown,
        server,
    })
}
