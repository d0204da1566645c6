//! `pay-platform`'s configuration: flags, each also an environment variable.

use clap::Parser;

use crate::providers::ProviderArgs;
use crate::settings::{ConnectionUrl, SecretSetting};
use crate::workers::{BillSchedule, ReconcileArgs, Reconciliation};
use http_serve::HttpLimits;

/// The aggregate payment platform for merchants.
#[derive(Clone, Debug, Parser)]
#[command(name = "pay-platform", version, about)]
pub struct PlatformConfig {
    /// A command instead of serving.
    #[command(subcommand)]
    pub command: Option<PlatformCommand>,
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Public base URL (cashier links, notify URLs); default `http://LISTEN`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Database: `sqlite://…`, `postgres://…`, `mysql://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://pay-platform.db?mode=rwc"
    )]
    pub database_url: ConnectionUrl,
    /// Redis for nonces shared by every instance; in memory when absent.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<ConnectionUrl>,
    /// RabbitMQ for merchant callbacks on any number of instances; in process when absent.
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<ConnectionUrl>,
    /// The admin API's bearer token, at least 32 characters (e.g. `openssl rand -hex 32`).
    /// Required in live mode; in demo mode a random one is generated and printed when absent.
    #[arg(long, env = "ADMIN_TOKEN")]
    pub admin_token: Option<SecretSetting>,
    /// Seconds a rotated-out merchant secret keeps working.
    #[arg(long, env = "SECRET_GRACE_SECS", default_value_t = 3600)]
    pub secret_grace_secs: u64,
    /// Seconds a request holds its `Idempotency-Key`: a repeat after this takes an abandoned key
    /// over (the first request crashed or timed out without an answer).
    #[arg(long, env = "IDEMPOTENCY_LEASE_SECS", default_value_t = 60)]
    pub idempotency_lease_secs: u64,
    /// Seconds an `Idempotency-Key` and its stored answer are kept (then pruned; the key is new
    /// again).
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub idempotency_ttl_secs: u64,
    /// Accepted clock difference of signed requests, in seconds.
    #[arg(long, env = "SIGNATURE_WINDOW_SECS", default_value_t = 300)]
    pub signature_window_secs: u64,
    /// Seconds before the first retry of a merchant callback; each further wait doubles, up to
    /// `CALLBACK_RETRY_MAX_SECS`. The defaults (15 s doubling to 6 h, 15 attempts) span about a
    /// day, close to WeChat's own schedule, before a callback is dead-lettered.
    #[arg(long, env = "CALLBACK_RETRY_SECS", default_value_t = 15)]
    pub callback_retry_secs: u64,
    /// Longest wait between attempts (equal to `CALLBACK_RETRY_SECS` for a fixed schedule).
    #[arg(long, env = "CALLBACK_RETRY_MAX_SECS", default_value_t = 21_600)]
    pub callback_retry_max_secs: u64,
    /// Attempts before a callback is dead-lettered.
    #[arg(long, env = "CALLBACK_MAX_ATTEMPTS", default_value_t = 15)]
    pub callback_max_attempts: u32,
    /// Seconds one callback request may take (connect, send, answer) before it counts as failed.
    #[arg(long, env = "CALLBACK_TIMEOUT_SECS", default_value_t = 5)]
    pub callback_timeout_secs: u64,
    /// Seconds between reads of the platform's WeChat Pay complaints (API v3 only), besides
    /// the complaint notifications.
    #[arg(long, env = "COMPLAINT_SYNC_SECS", default_value_t = 300)]
    pub complaint_sync_secs: u64,
    /// Callbacks in flight to one merchant at a time (per instance): a slow merchant holds only
    /// its own.
    #[arg(long, env = "CALLBACK_MERCHANT_CONCURRENCY", default_value_t = 16)]
    pub callback_merchant_concurrency: usize,
    /// RabbitMQ exchange / queue name prefix of merchant callbacks (instances sharing it share
    /// the work).
    #[arg(long, env = "CALLBACK_QUEUE", default_value = "pay-platform.callbacks")]
    pub callback_queue: String,
    /// RabbitMQ consumer prefetch (callbacks in flight per instance).
    #[arg(long, env = "CALLBACK_PREFETCH", default_value_t = 64)]
    pub callback_prefetch: u16,
    /// Let merchant notify URLs name loopback, private, link-local or metadata addresses. The
    /// default is `true` in demo mode (merchants on this machine) and `false` in live mode, where
    /// the platform must never be made to call into its own network.
    #[arg(long, env = "CALLBACK_ALLOW_PRIVATE")]
    pub callback_allow_private: Option<bool>,
    /// Allowed CORS origins for merchant front ends (comma-separated; `*` for any).
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// WeChat Pay, WeChat MP and Alipay. None set: demo mode (the embedded emulator, test
    /// money). Any set: live mode, with only the configured providers.
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// Timeouts and size limits of HTTP requests.
    #[command(flatten)]
    pub http: HttpLimits,
    /// Template id of "payment received".
    #[arg(
        long,
        env = "TEMPLATE_PAYMENT_RECEIVED",
        default_value = "TPL_PAYMENT_RECEIVED"
    )]
    pub template_payment_received: String,
    /// Template id of "onboarding approved".
    #[arg(
        long,
        env = "TEMPLATE_ONBOARDING_APPROVED",
        default_value = "TPL_ONBOARDING_APPROVED"
    )]
    pub template_onboarding_approved: String,
    /// Keyword auto-replies: a JSON file `{"keyword": "reply", …}`.
    #[arg(long, env = "KEYWORDS_FILE")]
    pub keywords_file: Option<String>,
    /// A chatbot answering other text: POST `{"open_id", "text"}` → `{"reply"}`.
    #[arg(long, env = "CHATBOT_URL")]
    pub chatbot_url: Option<String>,
    /// How long the chatbot may take before the reply is sent later instead.
    #[arg(long, env = "CHATBOT_TIMEOUT_MS", default_value_t = 4000)]
    pub chatbot_timeout_ms: u64,
    /// How long a merchant's WeChat binding code works (seconds, 60 to 30 days); each code binds
    /// once.
    #[arg(long, env = "BIND_CODE_TTL_SECS", default_value_t = 600)]
    pub bind_code_ttl_secs: u32,
    /// With `WECHAT_MP_AES_KEY`, also accept plaintext callbacks (WeChat's compatible mode, for
    /// the switch to safe mode only: a plaintext signature covers no body). Off: safe mode
    /// accepts encrypted messages only.
    #[arg(long, env = "WECHAT_MP_COMPATIBLE_MODE", default_value_t = false)]
    pub wechat_mp_compatible_mode: bool,
    /// How the platform collects: `partner` — as a service provider, each merchant a WeChat Pay
    /// sub-merchant paid straight into its own account, the platform's fee taken by profit
    /// sharing (needs WeChat Pay API v3) — or `direct` — the platform's own WeChat Pay merchant
    /// and Alipay app collect. Default: `partner` in live mode when `PLATFORM_FEE_BPS` is set,
    /// `direct` otherwise ([docs/service-provider.md]).
    #[arg(long, env = "PLATFORM_MODE", value_enum)]
    pub platform_mode: Option<PlatformMode>,
    /// Partner mode: the service provider's registered name, as WeChat Pay checks it when the
    /// platform becomes a receiver of a sub-merchant's profit sharing. Required in live partner
    /// mode.
    #[arg(long, env = "PLATFORM_MERCHANT_NAME")]
    pub platform_merchant_name: Option<String>,
    /// Partner mode: the platform's fee in basis points (60 = 0.6 %), unless set per merchant;
    /// 0 when absent.
    #[arg(long, env = "PLATFORM_FEE_BPS")]
    pub platform_fee_bps: Option<u32>,
    /// In direct mode the platform's own accounts hold the money, so in live mode they may serve
    /// one business only: holding several merchants' money is secondary clearing (二清), which
    /// needs a payment licence. `true` acknowledges that this platform may (it is licensed, or
    /// its merchants are one business): then live direct mode starts, and the admin may
    /// activate, with more than one active merchant.
    #[arg(long, env = "PLATFORM_DIRECT_MULTI_MERCHANT", default_value_t = false)]
    pub direct_multi_merchant: bool,
    /// When pending payments and refunds are looked up at their channel.
    #[command(flatten)]
    pub reconcile: Reconciliation,
    /// When the providers' daily bills are reconciled.
    #[command(flatten)]
    pub bills: BillSchedule,
}

/// How the platform collects (`PLATFORM_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformMode {
    /// A service provider: merchants are sub-merchants, paid into their own accounts.
    Partner,
    /// The platform's own accounts collect.
    Direct,
}

impl PlatformConfig {
    /// The mode this configuration runs in (`live`: whether providers are configured): the
    /// setting, else `partner` in live mode when a platform fee is set, else `direct`.
    pub fn platform_mode(&self, live: bool) -> PlatformMode {
        match (self.platform_mode, live && self.platform_fee_bps.is_some()) {
            (Some(mode), _) => mode,
            (None, true) => PlatformMode::Partner,
            (None, false) => PlatformMode::Direct,
        }
    }
}

/// `pay-platform …` instead of serving.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum PlatformCommand {
    /// Reconciles a day against the providers' bills now (live mode: the configured
    /// providers), and prints each channel's counts.
    Reconcile(ReconcileArgs),
}

impl PlatformConfig {
    /// The defaults, as if started with no flags and no environment.
    pub fn embedded() -> Self {
        PlatformConfig::parse_from(["pay-platform"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let config = PlatformConfig::parse_from([
            "pay-platform",
            "--admin-token=admin-token-0123456789",
            "--amqp-url=amqp://guest:amqp-pass-456@mq:5672/%2f",
            "--alipay-private-key=alipay-private-42",
        ]);
        let shown = format!("{config:?}");
        for secret in [
            "admin-token-0123456789",
            "amqp-pass-456",
            "alipay-private-42",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("amqp://guest:***@mq:5672/%2f"), "{shown}");
    }
}
