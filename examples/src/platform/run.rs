//! What the `pay-platform` binary runs: wire, start the workers, say where everything is (the
//! mode first), serve until Ctrl-C or SIGTERM, then stop the workers and the emulator.

use tokio_util::sync::CancellationToken;

use super::config::PlatformConfig;
use super::{app, wiring};
use crate::running::{Running, StartError, bind};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The platform could not be put together for the command.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A bill could not be reconciled.
    #[error(transparent)]
    Bills(#[from] aggregate_pay::bills::BillError),
    /// Demo mode has nothing to reconcile outside the running platform.
    #[error(
        "demo mode has no provider to ask for bills outside the running platform: use the admin \
         API (POST /admin/bills/reconcile), or configure the providers"
    )]
    Demo,
}

/// `pay-platform reconcile`: wired as it would serve, one day reconciled.
pub async fn command(
    command: &super::config::PlatformCommand,
    config: &PlatformConfig,
) -> Result<(), CommandError> {
    let super::config::PlatformCommand::Reconcile(args) = command;
    if config
        .providers
        .plan()
        .map_err(StartError::from)?
        .mode()
        .is_demo()
    {
        return Err(CommandError::Demo);
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let wired = wiring::wire(config, &public_url).await?;
    Ok(crate::workers::run_reconcile_command(&wired.state.bills, args).await?)
}

/// Runs the platform until a shutdown signal; an error is why it could not start.
pub async fn run(config: PlatformConfig) -> Result<(), StartError> {
    let listener = bind(&config.listen).await?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let wired = wiring::wire(&config, &public_url).await?;
    let shutdown = CancellationToken::new();
    let workers = wired.spawn_workers(shutdown.clone()).await?;

    println!("{}", wired.mode.banner());
    println!("pay-platform listening on {public_url}");
    println!("  open API:     {public_url}/v1/payments (signed; see merchant-client)");
    println!("  admin API:    {public_url}/admin/merchants");
    if let Some(token) = &wired.generated_admin_token {
        // Demo mode only, generated for this run, so that a fresh machine can try the admin API.
        println!("  admin token:  {token} (generated; set ADMIN_TOKEN to choose one)");
    }
    if let Some(emulator) = &wired.emulator {
        println!(
            "  channels:     embedded WeChat / Alipay emulator at {} (control page {}/sandbox)",
            emulator.base_url(),
            emulator.base_url()
        );
    }

    let app = app(wired.state.clone());
    let running = Running {
        program: "pay-platform",
        stop: shutdown,
        workers,
        emulator: wired.emulator,
    };
    running.serve(listener, app, &config.http).await;
    Ok(())
}
