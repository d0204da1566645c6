//! Machines over MQTT, and the simulator `machine-sim` runs on a broker.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::signing::{sign_result, verify_command};
use super::{
    Handled, LinkError, MachineLink, Received, Seen, SimBehaviour, Topics, VendCommand, VendResult,
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
    /// results and forwards them to `results` until `shutdown`.
    pub async fn connect(
        url: &str,
        topics: Topics,
        results: mpsc::Sender<Received>,
        shutdown: CancellationToken,
    ) -> Result<Self, LinkError> {
        let (client, eventloop) = AsyncClient::new(mqtt_options(url, "vending-server")?, 256);
        client.subscribe(topics.all_results(), QOS).await?;
        tokio::spawn(pump(
            eventloop,
            client.clone(),
            topics.clone(),
            results,
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
    results: mpsc::Sender<Received>,
    shutdown: CancellationToken,
) {
    let filter = topics.all_results();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(machine) = topics.machine_of_result(&p.topic) else {
                    continue;
                };
                match serde_json::from_slice::<VendResult>(&p.payload) {
                    Ok(result) => {
                        let _ = results.send(Received { machine, result }).await;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, error = %e, "undecodable vend result")
                    }
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                // A fresh session after a reconnect: subscribe again.
                let _ = client.try_subscribe(filter.clone(), QOS);
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
