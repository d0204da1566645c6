//! `vending-server`: the vending-machine order server.
//!
//! `cargo run -p examples --bin vending-server` — with no configuration, demo mode: SQLite
//! (`vending.db`, demo machines seeded), the WeChat / Alipay emulator in process and test money,
//! in-process lock, queue and simulated machines, on `127.0.0.1:8080`. Any provider credential
//! makes it live (the configured providers only). `--help` lists every setting (each also an
//! environment variable) and the operator's commands (`seller`, `machine`, `sku`).

use clap::Parser;
use examples::vending::config::VendingConfig;

/// The servers' allocator (see the `mimalloc` line of the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let mut config = VendingConfig::parse();
    let done = match config.command.take() {
        Some(command) => examples::vending::commands::run(command, &config)
            .await
            .map_err(examples::running::BoxError::from),
        None => examples::vending::run::run(config)
            .await
            .map_err(examples::running::BoxError::from),
    };
    if let Err(e) = done {
        examples::exit_with("vending-server", e);
    }
}
