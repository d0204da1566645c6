//! Talking to the machines: a vend-out command goes out, a result comes back later.
//!
//! - [`MqttMachines`]: topic `vm/{inner_code}/vendout` (QoS 2, JSON [`VendCommand`]); results on
//!   `vm/{inner_code}/vendout/result` (JSON [`VendResult`]). The `machine-sim` binary answers
//!   them like a machine would.
//! - [`SimulatedMachines`]: the same behaviour in process (latency, failure rate), no broker.
//!
//! Results are handed to a channel the order service reads.

use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A vend-out command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendCommand {
    /// The order.
    pub order_no: String,
    /// The machine.
    pub inner_code: String,
    /// The SKU.
    pub sku_id: i64,
    /// The slot to vend from.
    pub slot_no: String,
    /// Seconds the machine has.
    pub timeout_secs: u64,
    /// When it was sent (Unix milliseconds).
    pub requested_at_ms: i64,
}

/// A machine's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendResult {
    /// The order.
    pub order_no: String,
    /// Whether the item came out.
    pub success: bool,
    /// Why not.
    #[serde(default)]
    pub error: Option<String>,
}

/// Where vend-out commands go.
#[async_trait]
pub trait MachineLink: Send + Sync + std::fmt::Debug {
    /// Sends the command; the result arrives on the results channel.
    async fn vend_out(&self, command: &VendCommand) -> Result<(), String>;
}

/// The MQTT topics under a root (`vm` by default; a shared broker can give each deployment its
/// own): commands on `{root}/{inner_code}/vendout`, results on `{root}/{inner_code}/vendout/result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    root: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new("vm")
    }
}

impl Topics {
    /// Topics under `root`.
    pub fn new(root: &str) -> Self {
        Topics {
            root: root.trim_matches('/').to_owned(),
        }
    }

    /// The command topic of a machine.
    pub fn command(&self, inner_code: &str) -> String {
        format!("{}/{inner_code}/vendout", self.root)
    }

    /// The result topic of a machine.
    pub fn result(&self, inner_code: &str) -> String {
        format!("{}/{inner_code}/vendout/result", self.root)
    }

    /// Every machine's commands.
    pub fn all_commands(&self) -> String {
        self.command("+")
    }

    /// Every machine's results.
    pub fn all_results(&self) -> String {
        self.result("+")
    }
}

/// How a simulated machine behaves.
#[derive(Debug, Clone, Copy)]
pub struct SimBehaviour {
    /// How long a vend takes.
    pub latency: Duration,
    /// Share of vends that fail (0 to 1).
    pub fail_rate: f64,
}

impl SimBehaviour {
    /// What the machine answers to `command`, after `latency`.
    pub async fn answer(&self, command: &VendCommand) -> VendResult {
        tokio::time::sleep(self.latency).await;
        let mut byte = [0u8; 2];
        if let Err(e) = crate::random::fill(&mut byte) {
            // A simulated machine: without randomness it does not fail on purpose.
            tracing::error!(error = %e, "simulated machine: no failure roll");
            byte = [0xff, 0xff];
        }
        let roll = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
        let success = roll >= self.fail_rate;
        VendResult {
            order_no: command.order_no.clone(),
            success,
            error: (!success).then(|| "motor jammed (simulated)".to_owned()),
        }
    }
}

/// Machines simulated in process.
#[derive(Debug, Clone)]
pub struct SimulatedMachines {
    behaviour: SimBehaviour,
    results: mpsc::Sender<VendResult>,
}

impl SimulatedMachines {
    /// Machines that answer on `results`.
    pub fn new(behaviour: SimBehaviour, results: mpsc::Sender<VendResult>) -> Self {
        SimulatedMachines { behaviour, results }
    }
}

#[async_trait]
impl MachineLink for SimulatedMachines {
    async fn vend_out(&self, command: &VendCommand) -> Result<(), String> {
        let (behaviour, results, command) = (self.behaviour, self.results.clone(), command.clone());
        tokio::spawn(async move {
            let result = behaviour.answer(&command).await;
            let _ = results.send(result).await;
        });
        Ok(())
    }
}

/// Machines over MQTT.
#[derive(Clone)]
pub struct MqttMachines {
    client: AsyncClient,
    topics: Topics,
}

impl std::fmt::Debug for MqttMachines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttMachines").finish_non_exhaustive()
    }
}

/// MQTT options from `mqtt://host:port`, with a fresh client id.
pub fn mqtt_options(url: &str, client_prefix: &str) -> Result<MqttOptions, String> {
    let id = crate::random::token(6).map_err(|e| format!("MQTT client id: {e}"))?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut options = MqttOptions::parse_url(format!("{url}{sep}client_id={client_prefix}-{id}"))
        .map_err(|e| format!("MQTT_URL: {e}"))?;
    options.set_keep_alive(Duration::from_secs(20));
    Ok(options)
}

impl MqttMachines {
    /// Connects to the broker at `url` (`mqtt://host:port`), subscribes to every machine's
    /// results and forwards them to `results` until `shutdown`.
    pub async fn connect(
        url: &str,
        topics: Topics,
        results: mpsc::Sender<VendResult>,
        shutdown: CancellationToken,
    ) -> Result<Self, String> {
        let (client, eventloop) = AsyncClient::new(mqtt_options(url, "vending-server")?, 256);
        client
            .subscribe(topics.all_results(), QoS::ExactlyOnce)
            .await
            .map_err(|e| format!("mqtt: {e}"))?;
        tokio::spawn(pump(
            eventloop,
            client.clone(),
            topics.all_results(),
            results,
            shutdown,
        ));
        Ok(MqttMachines { client, topics })
    }
}

/// Drives the MQTT connection (reconnecting and re-subscribing) and forwards results.
async fn pump(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filter: String,
    results: mpsc::Sender<VendResult>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/vendout/result") => {
                match serde_json::from_slice::<VendResult>(&p.payload) {
                    Ok(r) => {
                        let _ = results.send(r).await;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, error = %e, "undecodable vend result")
                    }
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // A fresh session after a reconnect: subscribe again.
                let _ = client.try_subscribe(filter.clone(), QoS::ExactlyOnce);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "MQTT connection lost; reconnecting");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    let _ = client.disconnect().await;
}

#[async_trait]
impl MachineLink for MqttMachines {
    async fn vend_out(&self, command: &VendCommand) -> Result<(), String> {
        let payload = serde_json::to_vec(command).map_err(|e| e.to_string())?;
        self.client
            .publish(
                self.topics.command(&command.inner_code),
                QoS::ExactlyOnce,
                false,
                payload,
            )
            .await
            .map_err(|e| format!("mqtt: {e}"))
    }
}

/// Simulated machines on an MQTT broker (what `machine-sim` runs): answers every vend-out command
/// under `topics` after the behaviour's latency, until `shutdown`. Returns once connected and
/// subscribed, or with the reason it could not.
pub async fn serve_simulator(
    url: &str,
    topics: Topics,
    behaviour: SimBehaviour,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let (client, mut eventloop) = AsyncClient::new(mqtt_options(url, "machine-sim")?, 256);
    // Wait for the broker's SUBACK so no command sent after this returns is missed.
    client
        .subscribe(topics.all_commands(), QoS::ExactlyOnce)
        .await
        .map_err(|e| format!("mqtt: {e}"))?;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("mqtt: {e}")),
        }
    }
    Ok(tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(topics.all_commands(), QoS::ExactlyOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/vendout") => {
                    let Ok(command) = serde_json::from_slice::<VendCommand>(&p.payload) else {
                        tracing::warn!(topic = %p.topic, "undecodable vend-out command");
                        continue;
                    };
                    let (client, topic) = (client.clone(), topics.result(&command.inner_code));
                    tokio::spawn(async move {
                        let result = behaviour.answer(&command).await;
                        tracing::info!(order = %command.order_no, machine = %command.inner_code, success = result.success, "vend");
                        let payload = serde_json::to_vec(&result).unwrap_or_default();
                        if let Err(e) = client
                            .publish(topic, QoS::ExactlyOnce, false, payload)
                            .await
                        {
                            tracing::error!(error = %e, "vend result not published");
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
        let _ = client.disconnect().await;
    }))
}
