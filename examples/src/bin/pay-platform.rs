//! `pay-platform`: the aggregate payment platform for merchants.
//!
//! `cargo run -p examples --bin pay-platform` — with no configuration it runs in demo mode: SQLite
//! and an embedded WeChat / Alipay emulator with test money. `DATABASE_URL`, `REDIS_URL`,
//! `AMQP_URL` switch to real engines; any provider credential makes it live (`--help` lists every
//! setting).

use clap::Parser;
use examples::platform::config::PlatformConfig;
use examples::platform::{app, wiring};
use examples::shutdown_signal;
use tokio_util::sync::CancellationToken;
use wechat_sandbox::server::serve;

/// The servers' allocator (see the `mimalloc` line of the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fail(msg: impl std::fmt::Display) -> ! {
    examples::exit_with("pay-platform", msg)
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let config = PlatformConfig::parse();
    let (listener, public_url) =
        examples::listen_or_exit("pay-platform", &config.listen, config.public_url.as_deref())
            .await;
    let wired = wiring::wire(&config, &public_url)
        .await
        .unwrap_or_else(|e| fail(e));
    let shutdown = CancellationToken::new();
    let workers = wired
        .spawn_workers(shutdown.clone())
        .await
        .unwrap_or_else(|e| fail(e));

    println!("{}", wired.mode.banner());
    println!("pay-platform listening on {public_url}");
    println!("  open API:     {public_url}/v1/payments (signed; see merchant-client)");
    println!("  admin API:    {public_url}/admin/merchants");
    if let Some(token) = &wired.generated_admin_token {
        // Generated for this run only, so that a fresh machine can try the admin API.
        println!("  admin token:  {token} (generated; set ADMIN_TOKEN to choose one)");
    }
    if let Some(emulator) = &wired.emulator {
        println!(
            "  channels:     embedded WeChat / Alipay emulator at {} (control page {}/sandbox)",
            emulator.base_url(),
            emulator.base_url()
        );
    }

    serve(
        listener,
        app(wired.state.clone()),
        &config.http,
        None,
        shutdown_signal(),
    )
    .await;
    println!("pay-platform: shutting down");
    shutdown.cancel();
    for w in workers {
        let _ = w.await;
    }
    if let Some(emulator) = wired.emulator {
        emulator.shutdown().await;
    }
}
