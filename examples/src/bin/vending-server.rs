//! `vending-server`: the vending-machine order server.
//!
//! `cargo run -p examples --bin vending-server` — with no configuration: SQLite (`vending.db`,
//! demo machines seeded), the WeChat / Alipay emulator in process, in-process lock, queue and
//! simulated machines, on `127.0.0.1:8080`. `--help` lists every setting (each also an
//! environment variable) that switches to real engines, machines and providers.

use clap::Parser;
use examples::shutdown_signal;
use examples::vending::config::VendingConfig;
use examples::vending::{app, wiring};

/// The servers' allocator (see the `mimalloc` line of the workspace manifest).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fail(msg: impl std::fmt::Display) -> ! {
    examples::exit_with("vending-server", msg)
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let config = VendingConfig::parse();
    let (listener, public_url) = examples::listen_or_exit(
        "vending-server",
        &config.listen,
        config.public_url.as_deref(),
    )
    .await;
    let mut wired = wiring::wire(&config, &public_url)
        .await
        .unwrap_or_else(|e| fail(e));
    let workers = wired.spawn_workers().await.unwrap_or_else(|e| fail(e));

    println!("vending-server listening on {public_url}");
    println!("  buyer page:        {public_url}/");
    println!("  seller dashboard:  {public_url}/seller");
    if let Some(emulator) = &wired.emulator {
        println!(
            "  sandbox page:      {}/sandbox (the embedded WeChat / Alipay emulator)",
            emulator.url
        );
    }
    println!("  metrics:           {public_url}/metrics");

    let server =
        axum::serve(listener, app(wired.state.clone())).with_graceful_shutdown(shutdown_signal());
    if let Err(e) = server.await {
        eprintln!("vending-server: {e}");
    }
    println!("vending-server: shutting down");
    wired.shutdown.cancel();
    for w in workers {
        let _ = w.await;
    }
    if let Some(emulator) = wired.emulator.take() {
        emulator.shutdown().await;
    }
}
