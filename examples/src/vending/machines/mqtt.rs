//! Machines over MQTT, and the simulator `machine-sim` runs on a broker.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::signing::{sign_result, sign_scan, verify_command};
use super::{
    Handled, LinkError, MachineLink, Received, ReceivedScan, Scan, ScanAnswer, Seen, SimBehaviour,
    Topics, VendCommand, VendResult,
};

/// Commands and results travel at least once (QoS 1); both ends are idempotent by order number
/// (the server's compare-and-set on the order, the machine's [`Handled`]). Not QoS 2: under load,
/// rumqttc 0.25's QoS 2 publishes went missing — with `notify_throughput --instances 2`, 15–20 %
/// of vend-out commands at about 4,000 a second never reached the broker (a subscriber of its own,
/// `mosquitto_sub`, saw the same count as ours), and those orders failed and were refunded. The
/// suspect is its packet ids: one is reused as soon as PUBREC frees it, before the flow ends. At
/// QoS 1 every command and every answer arrived. `a_burst_of_vend_commands_over_mqtt_loses_none`
/// keeps it so.
const QOS: QoS = QoS::AtLeastOnce;

/// Orders a simulated machine remembers (to vend a command that arrives twice once).
const REMEMBERED_ORDERS: usize = 100_000;

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
pub fn mqtt_options(url: &str, client_prefix: &str) -> Result<MqttOptions, LinkError> {
    let id = crate::random::token(6)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut options = MqttOptions::parse_url(format!("{url}{sep}client_id={client_prefix}-{id}"))?;
    options.set_keep_alive(Duration::from_secs(20));
    Ok(options)
}

impl MqttMachines {
    /// Connects to the broker at `url` (`mqtt://host:port`), subscribes to every machine's
    /// results and scans and forwards them to `inbox` until `shutdown`.
    pub async fn connect(
        url: &str,
        topics: Topics,
        inbox: Inbox,
        shutdown: CancellationToken,
    ) -> Result<Self, LinkError> {
        let (client, eventloop) = AsyncClient::new(mqtt_options(url, "vending-server")?, 256);
        client.subscribe(topics.all_results(), QOS).await?;
        client.subscribe(topics.all_scans(), QOS).await?;
        tokio::spawn(pump(
            eventloop,
            client.clone(),
            topics.clone(),
            inbox,
            shutdown,
        ));
        Ok(MqttMachines { client, topics })
    }
}

/// Drives the MQTT connection (reconnecting and re-subscribing) and forwards results, each with
/// the machine of the topic it came on.
async fn pump(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: Topics,
    inbox: Inbox,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let Some(machine) = topics.machine_of_result(&p.topic) {
                    match serde_json::from_slice::<VendResult>(&p.payload) {
                        Ok(result) => {
                            let _ = inbox.results.send(Received { machine, result }).await;
                        }
                        Err(e) => {
                            tracing::warn!(topic = %p.topic, error = %e, "undecodable vend result")
                        }
                    }
                } else if let Some(machine) = topics.machine_of_scan(&p.topic) {
                    match serde_json::from_slice::<Scan>(&p.payload) {
                        Ok(scan) => {
                            let _ = inbox.scans.send(ReceivedScan { machine, scan }).await;
                        }
                        Err(e) => tracing::warn!(topic = %p.topic, error = %e, "undecodable scan"),
                    }
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // A fresh session after a reconnect: subscribe again.
                let _ = client.try_subscribe(topics.all_results(), QOS);
                let _ = client.try_subscribe(topics.all_scans(), QOS);
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
    async fn vend_out(&self, command: &VendCommand) -> Result<(), LinkError> {
        let payload = serde_json::to_vec(command)?;
        self.client
            .publish(
                self.topics.command(&command.inner_code),
                QOS,
                false,
                payload,
            )
            .await?;
        Ok(())
    }

    async fn scan_answer(&self, machine: &str, answer: &ScanAnswer) -> Result<(), LinkError> {
        let payload = serde_json::to_vec(answer)?;
        self.client
            .publish(self.topics.scan_answer(machine), QOS, false, payload)
            .await?;
        Ok(())
    }
}

/// What the server hears from machines: vend results and scans.
#[derive(Debug, Clone)]
pub struct Inbox {
    /// Vend results.
    pub results: mpsc::Sender<Received>,
    /// Scanned payment codes.
    pub scans: mpsc::Sender<ReceivedScan>,
}

/// Publishes `scan` as machine `machine` would (signed with `secret` when given) and waits up
/// to `wait` for the server's answer — what `machine-sim scan` does.
pub async fn publish_scan(
    url: &str,
    topics: &Topics,
    machine: &str,
    mut scan: Scan,
    secret: Option<&str>,
    wait: Duration,
) -> Result<Option<ScanAnswer>, LinkError> {
    let (client, mut eventloop) = AsyncClient::new(mqtt_options(url, "machine-scan")?, 16);
    client.subscribe(topics.scan_answer(machine), QOS).await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await? {
            break;
        }
    }
    if let Some(secret) = secret {
        sign_scan(secret, &mut scan, machine, crate::clock::unix_now());
    }
    client
        .publish(topics.scan(machine), QOS, false, serde_json::to_vec(&scan)?)
        .await?;
    let answer = tokio::time::timeout(wait, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(a) = serde_json::from_slice::<ScanAnswer>(&p.payload) {
                        if a.scan_id == scan.scan_id {
                            return Ok(a);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(LinkError::from(e)),
            }
        }
    })
    .await;
    let _ = client.disconnect().await;
    match answer {
        Ok(a) => a.map(Some),
        Err(_) => Ok(None),
    }
}

/// Simulated machines on an MQTT broker (what `machine-sim` runs): answers every vend-out command
/// under `topics` after the behaviour's latency, until `shutdown`. With a `secret` (every
/// simulated machine's), commands must be signed with it — others are ignored, as a real machine
/// would — and results are signed. Returns once connected and subscribed, or with the reason it
/// could not.
pub async fn serve_simulator(
    url: &str,
    topics: Topics,
    behaviour: SimBehaviour,
    secret: Option<String>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, LinkError> {
    let (client, mut eventloop) = AsyncClient::new(mqtt_options(url, "machine-sim")?, 256);
    // Wait for the broker's SUBACK so no command sent after this returns is missed.
    client.subscribe(topics.all_commands(), QOS).await?;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::SubAck(_))) => break,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let handled = Arc::new(Mutex::new(Handled::new(REMEMBERED_ORDERS)));
    Ok(tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe(topics.all_commands(), QOS);
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.ends_with("/vendout") => {
                    let Ok(command) = serde_json::from_slice::<VendCommand>(&p.payload) else {
                        tracing::warn!(topic = %p.topic, "undecodable vend-out command");
                        continue;
                    };
                    if let Some(secret) = &secret {
                        if let Err(why) = verify_command(secret, &command, crate::clock::unix_now())
                        {
                            tracing::warn!(order = %command.order_no, %why, "vend-out command ignored");
                            continue;
                        }
                    }
                    let (client, topic) = (client.clone(), topics.result(&command.inner_code));
                    let secret = secret.clone();
                    let seen = handled
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .begin(&command.order_no);
                    let handled = handled.clone();
                    tokio::spawn(async move {
                        let mut result = match seen {
                            Seen::New => {
                                let result = behaviour.answer(&command).await;
                                handled
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .finish(&result);
                                result
                            }
                            Seen::InProgress => return,
                            Seen::Answered(result) => result,
                        };
                        if let Some(secret) = &secret {
                            sign_result(
                                secret,
                                &mut result,
                                &command.inner_code,
                                crate::clock::unix_now(),
                            );
                        }
                        tracing::info!(order = %command.order_no, machine = %command.inner_code, success = result.success, "vend");
                        let payload = serde_json::to_vec(&result).unwrap_or_default();
                        if let Err(e) = client.publish(topic, QOS, false, payload).await {
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
