//! The one place that decides which adapters run: demo or live mode (the embedded emulator and
//! test money, or the configured providers only), the database by URL scheme, Redis or memory
//! for nonces, RabbitMQ or in-process for callbacks. Everything else receives trait objects.

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::channels::alipay::AlipayChannel;
use aggregate_pay::channels::wechat::WechatApi;
use aggregate_pay::fees::FeeRate;
use aggregate_pay::lock::{LockManager, MemoryLockManager, RedisLockManager};
use aggregate_pay::sharing::{ProfitSharing, ShareStore};
use aggregate_pay::store::{BillStore, SqlStore};
use aggregate_pay::{
    BillReconciler, Channels, NotifyProcessor, PaymentStore, Payments, RetryPolicy, ShortPoll,
};
use async_trait::async_trait;
use merchant_client::Secret;
use tokio_util::sync::CancellationToken;

use super::callbacks::MerchantCallbacks;
use super::config::{PlatformConfig, PlatformMode};
use super::db::{KeyTimes, PlatformDb};
use super::fee_sharing::ShareThen;
use super::messages::MerchantMessages;
use super::{Partner, PlatformState, Settings};
use crate::clock::unix_now;
use crate::providers::Mode;
use crate::running::StartError;
use crate::settings::SecretSetting;
use crate::url_guard::OutboundPolicy;
use crate::workers::{Delivery, spawn_bill_reconciler, spawn_event_delivery, spawn_reconciler};
use wechat_sandbox::Sandbox;

/// A wired platform: its state, and what runs in the background.
#[derive(Debug)]
pub struct Wired {
    /// The shared state for `app`.
    pub state: Arc<PlatformState>,
    /// Demo or live.
    pub mode: Mode,
    /// The embedded emulator (demo mode).
    pub emulator: Option<Sandbox>,
    /// The generated admin token, when none was configured (print it).
    pub generated_admin_token: Option<String>,
    delivery: Delivery,
    callbacks: Arc<MerchantCallbacks>,
    messages: Option<MerchantMessages>,
    channels: Channels,
    config: PlatformConfig,
    /// When the daily bill run starts, and how long it waits for a bill not ready (`None`: on
    /// demand only).
    pub daily_bills: Option<(time::Time, Duration)>,
}

/// The platform's nonce store, as merchant-client's (a protocol crate with its own trait).
#[derive(Debug)]
struct Nonces(Arc<dyn aggregate_pay::nonce::NonceStore>);

#[async_trait]
impl merchant_client::NonceStore for Nonces {
    async fn first_seen(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<bool, merchant_client::StoreError> {
        self.0
            .first_seen(key, ttl)
            .await
            .map_err(merchant_client::StoreError::new)
    }
}

/// The shortest admin token accepted.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The admin token to use: the configured one if long enough; in demo mode a generated one
/// (returned second, to print) when none is set.
fn admin_token(
    configured: Option<&str>,
    mode: Mode,
) -> Result<(String, Option<String>), StartError> {
    match configured {
        Some(t) if t.chars().count() >= MIN_ADMIN_TOKEN_LEN => Ok((t.to_owned(), None)),
        Some(t) => Err(StartError::AdminTokenTooShort {
            min: MIN_ADMIN_TOKEN_LEN,
            has: t.chars().count(),
        }),
        None if mode == Mode::Live => Err(StartError::Refused(
            "live mode needs ADMIN_TOKEN (at least 32 characters; `openssl rand -hex 32`)",
        )),
        None => {
            let generated = crate::random::token(MIN_ADMIN_TOKEN_LEN / 2)
                .map_err(StartError::backend("random source"))?;
            Ok((generated.clone(), Some(generated)))
        }
    }
}

/// The service provider's name in demo mode.
const DEMO_PLATFORM_NAME: &str = "示例支付平台（演示）";

/// Partner mode's default fee; a fee without partner mode, or above 100 %, is refused, and so is
/// live partner mode without the provider's registered name.
fn partner_settings(
    config: &PlatformConfig,
    mode: PlatformMode,
    live: bool,
) -> Result<FeeRate, StartError> {
    let named = config
        .platform_merchant_name
        .as_deref()
        .is_some_and(|n| !n.trim().is_empty());
    if live && mode == PlatformMode::Partner && !named {
        return Err(StartError::Refused(
            "PLATFORM_MODE=partner needs PLATFORM_MERCHANT_NAME, the service provider's \
             registered name: WeChat Pay checks it when the platform becomes a receiver of a \
             sub-merchant's profit sharing",
        ));
    }
    match (mode, config.platform_fee_bps) {
        (PlatformMode::Direct, Some(_)) => Err(StartError::Refused(
            "PLATFORM_FEE_BPS is the fee a service provider takes by profit sharing: it needs \
             PLATFORM_MODE=partner (in direct mode the platform's own accounts hold the money)",
        )),
        (_, bps) => FeeRate::bps(bps.unwrap_or(0))
            .map_err(|_| StartError::Refused("PLATFORM_FEE_BPS is at most 10000 (100 %)")),
    }
}

/// Builds the platform from `config`, serving at `public_url`.
pub async fn wire(config: &PlatformConfig, public_url: &str) -> Result<Wired, StartError> {
    let public_url = public_url.trim_end_matches('/').to_owned();
    // Decided first, before anything is opened: a half-configured live platform never starts.
    let mut plan = config.providers.plan()?;
    let mode = plan.mode();
    let platform_mode = config.platform_mode(mode == Mode::Live);
    let fee_rate = partner_settings(config, platform_mode, mode == Mode::Live)?;
    if platform_mode == PlatformMode::Partner {
        // Partner mode is WeChat Pay API v3's: the demo merchant speaks it.
        if let crate::providers::Plan::Demo { api, .. } = &mut plan {
            *api = crate::providers::WechatPayApi::V3;
        }
    }
    let bill_at = config.bills.at()?;
    let (admin_token, generated_admin_token) =
        admin_token(config.admin_token.as_ref().map(SecretSetting::expose), mode)?;
    let outbound = match config.callback_allow_private.unwrap_or(mode.is_demo()) {
        true => OutboundPolicy::AllowPrivate,
        false => OutboundPolicy::PublicOnly,
    };

    // Database: payments + outbox (aggregate-pay) and the platform's tables, one pool.
    let sql = SqlStore::connect(&config.database_url)
        .await
        .map_err(StartError::backend("database"))?;
    let db = PlatformDb::new(sql.clone())
        .await
        .map_err(StartError::backend("database"))?;
    if mode == Mode::Live
        && platform_mode == PlatformMode::Direct
        && !config.direct_multi_merchant
        && db
            .active_merchants(None)
            .await
            .map_err(StartError::backend("database"))?
            > 1
    {
        return Err(StartError::Refused(
            "live direct mode holds every merchant's money in the platform's own WeChat Pay and \
             Alipay accounts: with more than one active merchant that is secondary clearing \
             (二清), which needs a payment licence. Disable all but one merchant, or set \
             PLATFORM_DIRECT_MULTI_MERCHANT=true if this platform may hold their money",
        ));
    }
    let bill_store: Arc<dyn BillStore> = Arc::new(sql.clone());
    let shares: Arc<dyn ShareStore> = Arc::new(sql.clone());
    let store: Arc<dyn PaymentStore> = Arc::new(sql);

    // Providers: real credentials, or the embedded emulator speaking the same protocols.
    let token_store: Option<Arc<dyn wechat_mp::TokenStore>> = match &config.redis_url {
        Some(url) => Some(Arc::new(
            wechat_mp::token::RedisTokenStore::connect_with_prefix(url, "pay-platform:")
                .await
                .map_err(StartError::backend("redis"))?,
        )),
        None => None,
    };
    let providers = crate::providers::connect(
        &plan,
        Some(&format!("{public_url}/mp/callback")),
        token_store,
    )
    .await?;
    if platform_mode == PlatformMode::Partner
        && matches!(providers.wechat_pay, Some(WechatApi::V2(_)))
    {
        return Err(StartError::Refused(
            "PLATFORM_MODE=partner takes payments for sub-merchants through WeChat Pay API v3 \
             partner mode: set WECHAT_PAY_API=v3 with the service provider's v3 credentials, or \
             PLATFORM_MODE=direct",
        ));
    }
    let (mut channels, sandbox) = providers.channels("pay-platform");
    let mut alipay_auth = None;
    if let (PlatformMode::Partner, Some(client)) = (platform_mode, &providers.alipay) {
        // The platform's app acts for each merchant who authorized it, with its token.
        let tokens = Arc::new(super::routes::alipay_auth::MerchantTokens(db.clone()));
        channels = channels.with(AlipayChannel::new(client.clone()).service_provider(tokens));
        alipay_auth = Some(super::AlipayLink {
            client: client.clone(),
            page: match &providers.emulator {
                Some(e) => format!("{}/sandbox/alipay/authorize", e.base_url()),
                None => alipay::DEFAULT_APP_AUTH_URL.to_owned(),
            },
        });
    }
    let providers_v3 = providers.v3_clients().into_iter().next();
    let (mp, mp_token, mp_aes, emulator) = (
        providers.mp,
        providers.mp_token,
        providers.mp_aes_key,
        providers.emulator,
    );
    let sharing = (platform_mode == PlatformMode::Partner)
        .then(|| ProfitSharing::new(channels.clone(), store.clone(), shares.clone()));
    let mut payments = Payments::new(channels.clone(), store.clone());
    if let Some(sharing) = &sharing {
        payments = payments.profit_sharing(sharing.clone());
    }
    let processor = NotifyProcessor::new(channels.clone(), store.clone());
    let locks = locks(config).await?;
    let bills = BillReconciler::new(channels.clone(), store.clone(), bill_store, locks.clone());
    let short_poll = ShortPoll::new(payments.clone(), locks);

    let nonces = nonces(config).await?;

    let mp_callback = match (&mp, mp_token) {
        (Some(mp), Some(token)) => Some(mp_callback(config, &db, mp, token, mp_aes).await?),
        _ => None,
    };

    let delivery = Delivery::connect(
        config.amqp_url.as_deref(),
        &config.callback_queue,
        &callback_policy(config),
    )
    .await
    .map_err(StartError::backend("rabbitmq"))?;

    let callbacks = Arc::new(
        MerchantCallbacks::new(
            db.clone(),
            mp.is_some(),
            outbound,
            Duration::from_secs(config.callback_timeout_secs.max(1)),
        )
        .per_merchant(config.callback_merchant_concurrency.max(1)),
    );
    // Messages are retried on the callbacks' schedule.
    let retries = callback_policy(config);
    let messages = mp.clone().map(|mp| {
        MerchantMessages::new(db.clone(), mp, config.template_payment_received.clone()).retries(
            retries.base_delay,
            retries.max_delay,
            retries.max_attempts,
        )
    });
    let complaints = providers_v3.map(|client| {
        Arc::new(super::complaints::PlatformComplaints::new(
            crate::complaints::ComplaintDesk::new(client),
            db.clone(),
            callbacks.clone(),
            callback_policy(config),
        ))
    });
    let emulator_url = emulator.as_ref().map(|e| e.base_url().to_owned());
    let state = Arc::new(PlatformState {
        settings: settings(
            config,
            mode,
            outbound,
            public_url,
            admin_token,
            emulator_url,
        ),
        partner: (platform_mode == PlatformMode::Partner).then_some(Partner { fee_rate }),
        alipay_auth,
        sharing,
        shares,
        db,
        store,
        payments,
        processor,
        sandbox,
        mp,
        mp_callback,
        nonces,
        dead_letters: delivery.clone(),
        bills,
        short_poll,
        complaints,
    });
    Ok(Wired {
        daily_bills: config.bills.daily(mode).then_some((
            bill_at,
            Duration::from_secs(config.bills.bill_retry_minutes.max(1) * 60),
        )),
        mode,
        state,
        emulator,
        generated_admin_token,
        delivery,
        callbacks,
        messages,
        channels,
        config: config.clone(),
    })
}

/// The Official Account's callback, deduping WeChat's re-deliveries in Redis when every
/// instance shares it.
async fn mp_callback(
    config: &PlatformConfig,
    db: &PlatformDb,
    mp: &wechat_mp::Client,
    token: SecretSetting,
    aes_key: Option<SecretSetting>,
) -> Result<Arc<wechat_mp::message::Callback>, StartError> {
    let deduper: Option<Arc<dyn wechat_mp::message::Deduper>> = match &config.redis_url {
        Some(url) => Some(Arc::new(
            wechat_mp::message::RedisDeduper::connect(url, "pay-platform:mp:")
                .await
                .map_err(StartError::backend("redis"))?,
        )),
        None => None,
    };
    Ok(Arc::new(super::mp_callback::build(
        config, db, mp, token, aes_key, deduper,
    )?))
}

/// Locks (one bill run per day and channel): Redis shared by every instance, or this process's
/// memory.
async fn locks(config: &PlatformConfig) -> Result<Arc<dyn LockManager>, StartError> {
    Ok(match &config.redis_url {
        Some(url) => Arc::new(
            RedisLockManager::connect(url, "pay-platform:lock:")
                .await
                .map_err(StartError::backend("redis"))?,
        ),
        None => Arc::new(MemoryLockManager::new()),
    })
}

/// Nonces of signed requests: Redis shared by every instance, or this process's memory.
async fn nonces(
    config: &PlatformConfig,
) -> Result<Arc<dyn merchant_client::NonceStore>, StartError> {
    let nonces: Arc<dyn aggregate_pay::nonce::NonceStore> = match &config.redis_url {
        Some(url) => Arc::new(
            aggregate_pay::nonce::RedisNonceStore::connect(url, "pay-platform:nonce:")
                .await
                .map_err(StartError::backend("redis"))?,
        ),
        None => Arc::new(aggregate_pay::nonce::MemoryNonceStore::new()),
    };
    Ok(Arc::new(Nonces(nonces)))
}

/// What the handlers read.
fn settings(
    config: &PlatformConfig,
    mode: crate::providers::Mode,
    outbound: OutboundPolicy,
    public_url: String,
    admin_token: String,
    emulator_url: Option<String>,
) -> Settings {
    Settings {
        mode,
        outbound,
        http: config.http.clone(),
        public_url,
        admin_token: Secret::new(admin_token),
        signature_window: Duration::from_secs(config.signature_window_secs),
        secret_grace: Duration::from_secs(config.secret_grace_secs),
        idempotency: KeyTimes {
            lease: Duration::from_secs(config.idempotency_lease_secs.max(1)),
            ttl: Duration::from_secs(config.idempotency_ttl_secs.max(1)),
        },
        onboarding_template: Some(config.template_onboarding_approved.clone()),
        cors_origins: config.cors_origins.clone(),
        emulator_url,
        bind_code_ttl_secs: config.bind_code_ttl_secs,
        platform_merchant_name: config
            .platform_merchant_name
            .clone()
            .unwrap_or_else(|| DEMO_PLATFORM_NAME.to_owned()),
        single_business: mode == crate::providers::Mode::Live
            && config.platform_mode(true) == PlatformMode::Direct
            && !config.direct_multi_merchant,
    }
}

/// When merchant callbacks are retried (the same in process and over RabbitMQ).
fn callback_policy(config: &PlatformConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: config.callback_max_attempts.max(1),
        base_delay: Duration::from_secs(config.callback_retry_secs.max(1)),
        max_delay: Duration::from_secs(
            config
                .callback_retry_max_secs
                .max(config.callback_retry_secs)
                .max(1),
        ),
    }
}

/// Deletes expired `Idempotency-Key`s every ten minutes (and once at start).
fn spawn_idempotency_pruning(
    state: Arc<PlatformState>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let ttl = i64::try_from(state.settings.idempotency.ttl.as_secs()).unwrap_or(i64::MAX);
        loop {
            match state
                .db
                .prune_idempotency(unix_now().saturating_sub(ttl))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::debug!(keys = n, "expired idempotency keys pruned"),
                Err(e) => tracing::warn!(error = %e, "idempotency keys not pruned"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            }
        }
    })
}

impl Wired {
    /// Starts the background work — callback delivery (in process, or relay + consumer over
    /// RabbitMQ) and the reconciler — until `shutdown`.
    pub async fn spawn_workers(
        &self,
        shutdown: CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, StartError> {
        let mut tasks = Vec::new();
        let policy = callback_policy(&self.config);
        let handler: Arc<dyn aggregate_pay::EventHandler> = match &self.state.sharing {
            Some(sharing) => Arc::new(ShareThen::new(sharing.clone(), self.callbacks.clone())),
            None => self.callbacks.clone(),
        };
        tasks.extend(
            spawn_event_delivery(
                self.state.store.clone(),
                handler,
                &self.delivery,
                policy,
                self.config.callback_prefetch,
                // Callbacks stand alone (the merchant dedupes by event id): batches in parallel,
                // so one slow merchant's batch does not hold up the next.
                64,
                &shutdown,
            )
            .await
            .map_err(StartError::backend("rabbitmq"))?,
        );
        tasks.push(spawn_reconciler(
            self.channels.clone(),
            self.state.store.clone(),
            &self.config.reconcile,
            self.state.sharing.clone(),
            &shutdown,
        ));
        if let Some((at, retry)) = self.daily_bills {
            tasks.push(spawn_bill_reconciler(
                self.state.bills.clone(),
                at,
                retry,
                Arc::new(|_| {}),
                &shutdown,
            ));
        }
        if let Some(messages) = self.messages.clone() {
            tasks.push(tokio::spawn(
                messages.run(Duration::from_secs(1), shutdown.clone()),
            ));
        }
        if let Some(complaints) = self.state.complaints.clone() {
            tasks.push(tokio::spawn(crate::complaints::follow(
                complaints.clone(),
                self.state.settings.public_url.clone(),
                self.mode,
                Duration::from_secs(self.config.complaint_sync_secs.max(10)),
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(
                complaints.run_callbacks(Duration::from_secs(1), shutdown.clone()),
            ));
        }
        tasks.push(spawn_idempotency_pruning(
            self.state.clone(),
            shutdown.clone(),
        ));
        Ok(tasks)
    }
}
