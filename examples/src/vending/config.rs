//! `vending-server`'s configuration: flags, each also an environment variable. With none set it
//! runs on SQLite with the emulator, simulated machines and in-process timers.

use clap::Parser;

use crate::client_addr::TrustedProxies;
use crate::providers::ProviderArgs;
use crate::settings::{ConnectionUrl, SecretSetting};
use crate::workers::{BillSchedule, Reconciliation};
use http_serve::HttpLimits;

/// The vending-machine order server.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "vending-server",
    version,
    about = "The vending-machine order server: buyer page, seller dashboard, orders paid through WeChat Pay, Alipay or the sandbox, vend-out to the machines."
)]
pub struct VendingConfig {
    /// An operator's command instead of serving (sellers, machines, SKUs).
    #[command(subcommand)]
    pub command: Option<super::commands::Command>,
    /// Address to listen on.
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Public base URL (notify URLs, OAuth redirects); default `http://LISTEN`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Database: `sqlite://…`, `postgres://…`, `mysql://…`. Migrations are embedded; demo
    /// machines, SKUs and slots are seeded on first start.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://vending.db?mode=rwc"
    )]
    pub database_url: ConnectionUrl,
    /// Redis for machine locks and the MP access token, shared by every instance; in process
    /// when absent.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<ConnectionUrl>,
    /// Prefix of every Redis key this server writes (locks, the MP access token).
    #[arg(long, env = "REDIS_PREFIX", default_value = "vending:")]
    pub redis_prefix: String,
    /// RabbitMQ for order events and delayed order timeouts; in process when absent.
    #[arg(long, env = "AMQP_URL")]
    pub amqp_url: Option<ConnectionUrl>,
    /// RabbitMQ exchange / queue name prefix.
    #[arg(long, env = "AMQP_PREFIX", default_value = "vending")]
    pub amqp_prefix: String,
    /// MQTT broker of the real machines (vend-out commands); simulated machines when absent.
    #[arg(long, env = "MQTT_URL")]
    pub mqtt_url: Option<ConnectionUrl>,
    /// MQTT topic root: commands on `{root}/{inner_code}/vendout`, results on
    /// `{root}/{inner_code}/vendout/result`.
    #[arg(long, env = "MQTT_TOPIC_ROOT", default_value = "vm")]
    pub mqtt_topic_root: String,
    /// Seconds an unpaid order holds its machine before it is closed (INVALID).
    #[arg(long, env = "ORDER_TIMEOUT_SECS", default_value_t = 600)]
    pub order_timeout_secs: u64,
    /// Seconds a machine has to report a vend before the order fails and is refunded.
    #[arg(long, env = "VEND_TIMEOUT_SECS", default_value_t = 60)]
    pub vend_timeout_secs: u64,
    /// Simulate the machines instead of talking to them over MQTT: the default without
    /// `MQTT_URL` in demo mode. Live mode without `MQTT_URL` needs it said explicitly (staging):
    /// a simulated machine "vends" nothing while real money is taken.
    #[arg(long, env = "SIMULATE_MACHINES")]
    pub simulate_machines: Option<bool>,
    /// Simulated machines: milliseconds a vend takes.
    #[arg(long, env = "SIM_LATENCY_MS", default_value_t = 800)]
    pub sim_latency_ms: u64,
    /// Simulated machines: share of vends that fail (0 to 1).
    #[arg(long, env = "SIM_FAIL_RATE", default_value_t = 0.0)]
    pub sim_fail_rate: f64,
    /// Seconds a scanned payment code waits for its buyer to confirm on the phone before it
    /// is reversed (WeChat suggests 30 to 45).
    #[arg(long, env = "PAYMENT_CODE_WAIT_SECS", default_value_t = 30)]
    pub payment_code_wait_secs: u64,
    /// Seconds between reads of the merchant's WeChat Pay complaints (API v3 only), besides
    /// the complaint notifications.
    #[arg(long, env = "COMPLAINT_SYNC_SECS", default_value_t = 300)]
    pub complaint_sync_secs: u64,
    /// Template id of "payment received" (sent to the buyer).
    #[arg(long, env = "TEMPLATE_PAID", default_value = "TPL_VENDING_PAID")]
    pub template_paid: String,
    /// Template id of "refunded" (sent to the buyer).
    #[arg(
        long,
        env = "TEMPLATE_REFUNDED",
        default_value = "TPL_VENDING_REFUNDED"
    )]
    pub template_refunded: String,
    /// Serve `/metrics` on this address instead of the main one (keep it off the internet).
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Buyers, sellers and who may do what.
    #[command(flatten)]
    pub access: AccessSettings,
    /// WeChat Pay, WeChat MP and Alipay. None set: demo mode (the embedded emulator, test
    /// money). Any set: live mode, with only the configured providers.
    #[command(flatten)]
    pub providers: ProviderArgs,
    /// Timeouts and size limits of HTTP requests.
    #[command(flatten)]
    pub http: HttpLimits,
    /// Limits of the seller dashboard's live feed.
    #[command(flatten)]
    pub feed: FeedLimits,
    /// When pending payments and refunds are looked up at their channel.
    #[command(flatten)]
    pub reconcile: Reconciliation,
    /// When the providers' daily bills are reconciled.
    #[command(flatten)]
    pub bills: BillSchedule,
}

/// Sessions and limits on who may do what.
#[derive(Clone, Debug, clap::Args)]
pub struct AccessSettings {
    /// The key buyer and seller sessions are signed with (at least 32 characters). Unset: one is
    /// generated once and kept in the database, so every instance shares it.
    #[arg(long, env = "SESSION_SECRET")]
    pub session_secret: Option<SecretSetting>,
    /// How long a buyer's session lasts, in seconds.
    #[arg(long, env = "SESSION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub session_ttl_secs: u64,
    /// How long a seller's session lasts, in seconds.
    #[arg(long, env = "SELLER_SESSION_TTL_SECS", default_value_t = 12 * 3600)]
    pub seller_session_ttl_secs: u64,
    /// Orders a buyer, and a client address, may create per minute (429 `RATE_LIMITED` above).
    /// Logins (buyer, demo and seller) are limited per address to the same number.
    #[arg(long, env = "ORDER_RATE_PER_MIN", default_value_t = 10)]
    pub order_rate_per_min: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client (comma-separated IP addresses);
    /// nobody else's is believed.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    /// Per-address limits count IPv4 clients by this many leading bits (one address by default).
    #[arg(long, env = "RATE_LIMIT_IPV4_PREFIX", default_value_t = 32,
          value_parser = clap::value_parser!(u8).range(8..=32))]
    pub rate_limit_ipv4_prefix: u8,
    /// Per-address limits count IPv6 clients by this many leading bits (a /64 by default: one
    /// subscriber's network, every address of which they can use).
    #[arg(long, env = "RATE_LIMIT_IPV6_PREFIX", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(16..=128))]
    pub rate_limit_ipv6_prefix: u8,
}

/// Limits of the seller dashboard's WebSocket feed.
#[derive(Debug, Clone, clap::Args)]
pub struct FeedLimits {
    /// The largest WebSocket message a dashboard may send, in bytes; a larger one closes that
    /// socket.
    #[arg(long, env = "WS_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub ws_max_message_bytes: usize,
    /// Dashboards connected at once (503 above).
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 256)]
    pub ws_max_connections: usize,
    /// Seconds between pings to each dashboard.
    #[arg(long, env = "WS_PING_SECS", default_value_t = 20)]
    pub ws_ping_secs: u64,
    /// Seconds without any message (pongs included) after which a dashboard is dropped.
    #[arg(long, env = "WS_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub ws_idle_timeout_secs: u64,
    /// Seconds between checks that an open dashboard's session still stands (the seller not
    /// disabled, the password unchanged, no logout): a revoked seller's feeds close within this,
    /// on every instance.
    #[arg(long, env = "WS_SESSION_CHECK_SECS", default_value_t = 2)]
    pub ws_session_check_secs: u64,
}

impl VendingConfig {
    /// The defaults, as if started with no flags and no environment.
    pub fn embedded() -> Self {
        VendingConfig::parse_from(["vending-server"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let config = VendingConfig::parse_from([
            "vending-server",
            "--database-url=postgres://shop:db-pass-123@db/vending",
            "--amqp-url=amqp://guest:amqp-pass-456@mq:5672/%2f",
            "--redis-url=redis://:redis-pass-789@cache:6379",
            "--wechat-api-key=wx-key-0123456789abcdef0123456789",
            "--wechat-api-v3-key=v3-key-0123456789abcdefghijABCD",
            "--wechat-app-secret=app-secret-42",
            "--wechat-mp-aes-key=aes-key-42",
            "--wechat-mp-token=mp-token-42",
            "--alipay-private-key=alipay-private-42",
            "--wechat-mch-id=10000100",
            "--session-secret=session-secret-0123456789abcdefghijkl",
        ]);
        let shown = format!("{config:?}");
        for secret in [
            "db-pass-123",
            "amqp-pass-456",
            "redis-pass-789",
            "wx-key-0123456789abcdef0123456789",
            "v3-key-0123456789abcdefghijABCD",
            "app-secret-42",
            "aes-key-42",
            "mp-token-42",
            "alipay-private-42",
            "session-secret-0123456789abcdefghijkl",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        // What is not secret still shows, and a secret shows as set.
        assert!(shown.contains("10000100"), "{shown}");
        assert!(shown.contains("postgres://shop:***@db/vending"), "{shown}");
        assert!(shown.contains("wechat_api_key: Some(\"***\")"), "{shown}");
        assert!(
            shown.contains("wechat_api_v3_key: Some(\"***\")"),
            "{shown}"
        );
    }
}
