//! The runnable programs that assemble the libraries: `pay-platform` (the aggregate payment
//! platform for merchants), `vending-server` (the vending-machine order server) and
//! `machine-sim` (machines on MQTT). In demo mode both servers embed the `wechat-sandbox`
//! emulator.
//!
//! # Module map
//!
//! - [`platform`] — the merchant platform: onboarding, the signed open API, cashier, channel
//!   notifications, merchant callbacks (outbox or RabbitMQ), the Official Account callback.
//! - [`providers`] — demo or live mode, decided once: WeChat Pay / MP / Alipay clients from
//!   credentials (live: only those configured, half a configuration refused), or the embedded
//!   emulator and test money (demo).
//! - [`url_guard`] — same-origin return paths and the outbound-URL policy (no loopback / private
//!   / metadata addresses in live mode). The servers serve with `wechat_sandbox::server` (the
//!   accept loop and HTTP limits the emulator uses too).
//! - [`complaints`] — WeChat Pay consumer complaints: the notification route, the
//!   registration and the reads a server does.
//! - [`notify`] — the channel notification routes both servers mount; [`workers`] — outbox
//!   event delivery (in process or RabbitMQ), the reconciler and the daily bill run, for both
//!   servers; [`bills_api`] — what their bill APIs share.
//! - [`abnormal_refund`] — the request both servers take to resolve an abnormal refund (the
//!   money could not reach the buyer).
//! - [`html`] — what the pages share (escaping, QR codes as SVG); [`mac`] — HMAC-SHA256 for what
//!   the servers sign themselves; [`random`] — every token and secret (a failing random source is
//!   an error, never a predictable value); [`client_addr`] — the client's network (trusted
//!   proxies only); [`clock`] — Unix seconds, read in one place.
//! - [`vending`] — the vending-machine order server: buyer and seller sessions, machines,
//!   orders, vend-out over MQTT, timeouts, refunds, the buyer page and the seller dashboard.
//!
//! - [`error`] — `AppError`, the one `{code, message}` answer both servers give; [`settings`] —
//!   connection URLs and secrets that never print.
//!
//! Each binary has a thin main (`src/bin/`: parse config, call `vending::run` /
//! `platform::run`; both end through [`running`]); everything testable lives here.

pub mod abnormal_refund;
pub mod bills_api;
pub mod client_addr;
pub mod clock;
pub mod complaints;
pub mod error;
pub mod html;
pub mod mac;
pub mod notify;
pub mod platform;
pub mod providers;
pub mod random;
pub mod running;
pub mod settings;
pub mod url_guard;
pub mod vending;
pub mod workers;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, quiet HTTP access lines).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
}

/// Prints `program: message` and exits with status 2 (a server that cannot start).
pub fn exit_with(program: &str, message: impl std::fmt::Display) -> ! {
    eprintln!("{program}: {message}");
    std::process::exit(2)
}

/// Resolves on Ctrl-C or SIGTERM: the programs shut down gracefully on either.
pub use http_serve::shutdown_signal;
