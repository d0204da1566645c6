//! `machine-sim`: vending machines on MQTT. Answers every vend-out command
//! (`vm/{inner_code}/vendout`) on `vm/{inner_code}/vendout/result` after `--latency-ms`,
//! failing `--fail-rate` of them; with `--secret`, only signed commands, and signed results.
//!
//! `cargo run -p examples --bin machine-sim -- --mqtt-url mqtt://127.0.0.1:1883`
//!
//! `machine-sim scan --machine VM0001 --slot A1 --code 134567890123456789` plays a machine's
//! scanner instead: the buyer's payment code for a slot, and the server's answer printed.

use std::time::Duration;

use clap::Parser;
use examples::shutdown_signal;
use examples::vending::machines::{Scan, SimBehaviour, Topics, publish_scan, serve_simulator};
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
    /// Instead of answering commands: one machine scans a buyer's payment code.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Machine `--machine` scans the buyer's payment `--code` for `--slot` (signed with
    /// `--secret` when given), and prints what the server answered: `paid` (the vend-out
    /// command follows), `declined`, `reversed`, `pending` or `refused`.
    Scan {
        /// The machine.
        #[arg(long, default_value = "VM0001")]
        machine: String,
        /// The slot the buyer chose.
        #[arg(long, default_value = "A1")]
        slot: String,
        /// The buyer's payment code (the demo's emulator mints them: `POST
        /// /sandbox/payment-code`; 18 digits from `10`–`12`, `14`, `15` pay at once there, from
        /// `13` wait for the buyer).
        #[arg(long)]
        code: String,
        /// Seconds to wait for the answer (the server waits for a buyer confirming on the
        /// phone up to its `PAYMENT_CODE_WAIT_SECS`).
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
}

/// `machine-sim scan`: publishes the scan, prints the answer.
async fn scan(args: &Args, machine: &str, slot: &str, code: &str, wait_secs: u64) -> i32 {
    let id = match examples::random::token(8) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("machine-sim: {e}");
            return 2;
        }
    };
    let scan = Scan {
        scan_id: format!("sim-{id}"),
        slot_no: slot.to_owned(),
        code: code.to_owned(),
        ts: None,
        sig: None,
    };
    match publish_scan(
        &args.mqtt_url,
        &Topics::new(&args.topic_root),
        machine,
        scan,
        args.secret.as_ref().map(|s| s.expose()),
        Duration::from_secs(wait_secs),
    )
    .await
    {
        Ok(Some(answer)) => {
            println!("{}", serde_json::to_string(&answer).unwrap_or_default());
            i32::from(answer.status != "paid")
        }
        Ok(None) => {
            eprintln!(
                "machine-sim: no answer in {wait_secs} s (is vending-server on this broker?)"
            );
            1
        }
        Err(e) => {
            eprintln!("machine-sim: {e}");
            2
        }
    }
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let args = Args::parse();
    if let Some(Command::Scan {
        machine,
        slot,
        code,
        wait_secs,
    }) = &args.command
    {
        std::process::exit(scan(&args, machine, slot, code, *wait_secs).await);
    }
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
