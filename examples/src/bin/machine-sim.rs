//! `machine-sim`: vending machines on MQTT. Answers every vend-out command
//! (`vm/{inner_code}/vendout`) on `vm/{inner_code}/vendout/result` after `--latency-ms`,
//! failing `--fail-rate` of them.
//!
//! `cargo run -p examples --bin machine-sim -- --mqtt-url mqtt://127.0.0.1:1883`

use std::time::Duration;

use clap::Parser;
use examples::shutdown_signal;
use examples::vending::machines::{SimBehaviour, VendCommand, mqtt_options, result_topic};
use rumqttc::{AsyncClient, Event, Packet, QoS};

/// Simulated vending machines answering vend-out commands over MQTT.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The broker.
    #[arg(long, env = "MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// Share of vends that fail (0 to 1).
    #[arg(long, env = "SIM_FAIL_RATE", default_value_t = 0.0)]
    fail_rate: f64,
    /// Milliseconds a vend takes.
    #[arg(long, env = "SIM_LATENCY_MS", default_value_t = 800)]
    latency_ms: u64,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("machine-sim: {msg}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let args = Args::parse();
    let behaviour = SimBehaviour {
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate.clamp(0.0, 1.0),
    };
    let (client, mut eventloop) = AsyncClient::new(
        mqtt_options(&args.mqtt_url, "machine-sim").unwrap_or_else(|e| fail(e)),
        256,
    );
    println!(
        "machine-sim: answering vend-out commands on {} (latency {} ms, fail rate {})",
        args.mqtt_url, args.latency_ms, behaviour.fail_rate
    );
    let run = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe("vm/+/vendout", QoS::ExactlyOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/vendout") => {
                    let Ok(command) = serde_json::from_slice::<VendCommand>(&p.payload) else {
                        tracing::warn!(topic = %p.topic, "undecodable vend-out command");
                        continue;
                    };
                    let client = client.clone();
                    tokio::spawn(async move {
                        let result = behaviour.answer(&command).await;
                        tracing::info!(order = %command.order_no, machine = %command.inner_code, success = result.success, "vend");
                        let payload = serde_json::to_vec(&result).unwrap_or_default();
                        if let Err(e) = client
                            .publish(
                                result_topic(&command.inner_code),
                                QoS::ExactlyOnce,
                                false,
                                payload,
                            )
                            .await
                        {
                            tracing::error!(error = %e, "result not published");
                        }
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    tokio::select! {
        () = run => {}
        () = shutdown_signal() => println!("machine-sim: shutting down"),
    }
}
