//! `pay-platform`: the aggregate payment platform for merchants.
//!
//! `cargo run -p examples --bin pay-platform` — with no configuration it runs in demo mode: SQLite
//! and an embedded WeChat / Alipay emulator with test money. `DATABASE_URL`, `REDIS_URL`,
//! `AMQP_URL` switch to real engines; any provider credential makes it live (`--help` lists every
//! setting).

use clap::Parser;
use examples::platform::config::PlatformConfig;

/// The servers' allocator (see the `mimalloc` line of the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let mut config = PlatformConfig::parse();
    let done = match config.command.take() {
        Some(command) => examples::platform::run::command(&command, &config)
            .await
            .map_err(examples::running::BoxError::from),
        None => examples::platform::run::run(config)
            .await
            .map_err(examples::running::BoxError::from),
    };
    if let Err(e) = done {
        examples::exit_with("pay-platform", e);
    }
}
