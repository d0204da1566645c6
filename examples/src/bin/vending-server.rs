//! `vending-server`: the vending-machine order server.
//!
//! `cargo run -p examples --bin vending-server` — with no configuration, demo mode: SQLite
//! (`vending.db`, demo machines seeded), the WeChat / Alipay emulator in process and test money,
//! in-process lock, queue and simulated machines, on `127.0.0.1:8080`. Any provider credential
//! makes it live (the configured providers only). `--help` lists every setting (each also an
//! environment variable).

use clap::Parser;
use examples::shutdown_signal;
use examples::vending::config::VendingConfig;
use examples::vending::{app, metrics_app, wiring};
use wechat_sandbox::server::serve;

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
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}"))),
        ),
        None => None,
    };
    let workers = wired.spawn_workers().await.unwrap_or_else(|e| fail(e));

    println!("{}", wired.mode.banner());
    println!("vending-server listening on {public_url}");
    println!("  buyer page:        {public_url}/");
    println!("  seller dashboard:  {public_url}/seller");
    if let Some(emulator) = &wired.emulator {
        println!(
            "  sandbox page:      {}/sandbox (the embedded WeChat / Alipay emulator)",
            emulator.base_url()
        );
    }
    match &config.metrics_listen {
        Some(addr) => println!("  metrics:           http://{addr}/metrics"),
        None => println!("  metrics:           {public_url}/metrics"),
    }

    let stop = wired.shutdown.clone();
    if let Some(listener) = metrics_listener {
        let (app, limits, stop) = (
            metrics_app(wired.state.clone()),
            config.http.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            serve(listener, app, &limits, None, stop.cancelled_owned()).await;
        });
    }
    serve(
        listener,
        app(wired.state.clone()),
        &config.http,
        None,
        shutdown_signal(),
    )
    .await;
    println!("vending-server: shutting down");
    stop.cancel();
    for w in workers {
        let _ = w.await;
    }
    if let Some(emulator) = wired.emulator.take() {
        emulator.shutdown().await;
    }
}
