//! `machine-sim`: vending machines on MQTT. Answers every vend-out command
//! (`vm/{inner_code}/vendout`) on `vm/{inner_code}/vendout/result` after `--latency-ms`,
//! failing `--fail-rate` of them; with `--secret`, only signed commands, and signed results.
//!
//! `cargo run -p examples --bin machine-sim -- --mqtt-url mqtt://127.0.0.1:1883`

use std::time::Duration;

use clap::Parser;
use examples::shutdown_signal;
use examples::vending::machines::{SimBehaviour, Topics, serve_simulator};
use tokio_util::sync::CancellationToken;

/// Simulated vending machines answering vend-out commands over MQTT.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The broker.
    #[arg(long, env = "MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// Topic root (the server's `MQTT_TOPIC_ROOT`).
    #[arg(long, env = "MQTT_TOPIC_ROOT", default_value = "vm")]
    topic_root: String,
    /// Share of vends that fail (0 to 1).
    #[arg(long, env = "SIM_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Milliseconds a vend takes.
    #[arg(long, env = "SIM_LATENCY_MS", default_value_t = 800)]
    latency_ms: u64,
    /// The machines' secret (`vending-server machine secret`): commands must be signed with it
    /// (others are ignored) and results are signed.
    #[arg(long, env = "MACHINE_SECRET")]
    secret: Option<examples::settings::SecretSetting>,
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let args = Args::parse();
    let behaviour = SimBehaviour {
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate.clamp(0.0, 1.0),
    };
    let shutdown = CancellationToken::new();
    let task = match serve_simulator(
        &args.mqtt_url,
        Topics::new(&args.topic_root),
        behaviour,
        args.secret.as_ref().map(|s| s.expose().to_owned()),
        shutdown.clone(),
    )
    .await
    {
        Ok(task) => task,
        Err(e) => {
            eprintln!("machine-sim: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "machine-sim: answering vend-out commands on {} under {}/ (latency {} ms, fail rate {}, {})",
        args.mqtt_url,
        args.topic_root,
        args.latency_ms,
        behaviour.fail_rate,
        if args.secret.is_some() {
            "signed"
        } else {
            "unsigned"
        }
    );
    shutdown_signal().await;
    println!("machine-sim: shutting down");
    shutdown.cancel();
    let _ = task.await;
}
