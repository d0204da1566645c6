//! What the `vending-server` binary runs: wire, start the workers, say where everything is (the
//! mode first), serve until Ctrl-C or SIGTERM, then stop the workers and the emulator.

use http_serve::serve;

use super::config::VendingConfig;
use super::{app, metrics_app, wiring};
use crate::running::{Running, StartError, bind};

/// Runs the server until a shutdown signal; an error is why it could not start.
pub async fn run(config: VendingConfig) -> Result<(), StartError> {
    let listener = bind(&config.listen).await?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let mut wired = wiring::wire(&config, &public_url).await?;
    let metrics_listener = match &config.metrics_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let workers = wired.spawn_workers().await?;

    println!("{}", wired.mode.banner());
    println!("vending-server listening on {public_url}");
    println!("  buyer page:        {public_url}/");
    println!("  seller dashboard:  {public_url}/seller");
    if let Some(seller) = &wired.demo_seller {
        // Demo mode only: a password made for this run, so a fresh machine can log in.
        println!(
            "  seller login:      {} / {} (demo seller; a new password each start)",
            seller.login, seller.password
        );
    }
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
    let app = app(wired.state.clone());
    let running = Running {
        program: "vending-server",
        stop,
        workers,
        emulator: wired.emulator.take(),
    };
    running.serve(listener, app, &config.http).await;
    Ok(())
}
