//! Talking to the machines: a vend-out command goes out, a result comes back later.
//!
//! - `mqtt` — [`MqttMachines`]: commands on `{root}/{inner_code}/vendout` (QoS 1, JSON
//!   [`VendCommand`]); results on `{root}/{inner_code}/vendout/result` (QoS 1, JSON
//!   [`VendResult`]). Both may arrive twice: the server applies a result once (a compare-and-set
//!   on the order), a machine vends an order once ([`Handled`]: a repeated command gets the first
//!   answer again). [`serve_simulator`] is what the `machine-sim` binary runs: machines answering
//!   like real ones.
//! - `simulated` — [`SimulatedMachines`]: the same behaviour in process, no broker.
//! - Scans: a machine with a scanner publishes the buyer's payment code for a slot on
//!   `{root}/{inner_code}/scan` ([`Scan`], signed like its results when it has a secret); the
//!   server charges it (`orders/scan.rs`) and answers on `{root}/{inner_code}/scan/result`
//!   ([`ScanAnswer`]); a paid scan's item comes out through the usual vend-out command.
//! - [`signing`] — a machine with a secret signs its results and scans (and the server its
//!   commands).
//!
//! Results reach the order service as [`Received`]: the result and the machine whose topic it
//! came on. The service applies it only when that machine is the order's and, for a machine with
//! a secret, when it is signed, fresh and untampered.

mod mqtt;
pub mod signing;
mod simulated;

pub use mqtt::{Inbox, MqttMachines, mqtt_options, publish_scan, serve_simulator};
pub use simulated::SimulatedMachines;

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
    /// When it was signed (Unix seconds), for a machine with a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Its signature (see [`signing`]), for a machine with a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
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
    /// The machine that says so (informative: the topic is what counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_code: Option<String>,
    /// When it was signed (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Its signature (see [`signing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// A payment code the machine's scanner read, for an item of one of its slots: the server
/// charges it and, once paid, sends the usual vend-out command. `scan_id` is unique per machine
/// and scan, so that a scan delivered twice is charged once. `Debug` shows only the code's first
/// digits.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The scan's id (unique per machine).
    pub scan_id: String,
    /// The slot the buyer chose.
    pub slot_no: String,
    /// The buyer's payment code, as read.
    pub code: String,
    /// When it was signed (Unix seconds), for a machine with a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Its signature (see [`signing`]), for a machine with a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("scan_id", &self.scan_id)
            .field("slot_no", &self.slot_no)
            .field("code", &format!("{}…", self.code.get(..4).unwrap_or("")))
            .finish_non_exhaustive()
    }
}

/// A scan as it arrived: on which machine's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedScan {
    /// The machine of the topic.
    pub machine: String,
    /// What it read.
    pub scan: Scan,
}

/// What became of a scan, told to the machine's display (`{root}/{inner_code}/scan/result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanAnswer {
    /// The scan.
    pub scan_id: String,
    /// The order it made, when it made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_no: Option<String>,
    /// `paid` (the vend-out command follows), `declined`, `reversed` (the buyer did not confirm
    /// in time), `pending` (no answer yet: the order ends on its own), or `refused` (not sold:
    /// busy, sold out, not a payment code this machine takes).
    pub status: String,
    /// Why, for the display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A result as it arrived: on which machine's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The machine of the topic (MQTT), or the machine that was told (in process).
    pub machine: String,
    /// What it said.
    pub result: VendResult,
}

/// Why the machines' link failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// `MQTT_URL` is not a broker URL.
    #[error("MQTT_URL: {0}")]
    Url(#[from] rumqttc::OptionError),
    /// The client id could not be made.
    #[error("MQTT client id: {0}")]
    ClientId(#[from] crate::random::RandomError),
    /// The client could not queue a request.
    #[error("mqtt: {0}")]
    Client(#[source] Box<rumqttc::ClientError>),
    /// The connection failed.
    #[error("mqtt: {0}")]
    Connection(#[source] Box<rumqttc::ConnectionError>),
    /// A command could not be encoded.
    #[error("cannot encode the command: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<rumqttc::ClientError> for LinkError {
    fn from(e: rumqttc::ClientError) -> Self {
        LinkError::Client(Box::new(e))
    }
}

impl From<rumqttc::ConnectionError> for LinkError {
    fn from(e: rumqttc::ConnectionError) -> Self {
        LinkError::Connection(Box::new(e))
    }
}

/// Where vend-out commands go.
#[async_trait]
pub trait MachineLink: Send + Sync + std::fmt::Debug {
    /// Sends the command; the result arrives on the results channel.
    async fn vend_out(&self, command: &VendCommand) -> Result<(), LinkError>;

    /// Tells `machine` what became of its scan (machines without a display link ignore it).
    async fn scan_answer(&self, machine: &str, answer: &ScanAnswer) -> Result<(), LinkError> {
        let _ = (machine, answer);
        Ok(())
    }
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

    /// The machine of a result topic (`None` for any other topic).
    pub fn machine_of_result(&self, topic: &str) -> Option<String> {
        let code = topic
            .strip_prefix(&self.root)?
            .strip_prefix('/')?
            .strip_suffix("/vendout/result")?;
        (!code.is_empty() && !code.contains('/')).then(|| code.to_owned())
    }

    /// The topic a machine publishes its scans on.
    pub fn scan(&self, inner_code: &str) -> String {
        format!("{}/{inner_code}/scan", self.root)
    }

    /// The topic a machine hears what became of its scans on.
    pub fn scan_answer(&self, inner_code: &str) -> String {
        format!("{}/{inner_code}/scan/result", self.root)
    }

    /// The machine of a scan topic (`None` for any other topic).
    pub fn machine_of_scan(&self, topic: &str) -> Option<String> {
        let code = topic
            .strip_prefix(&self.root)?
            .strip_prefix('/')?
            .strip_suffix("/scan")?;
        (!code.is_empty() && !code.contains('/')).then(|| code.to_owned())
    }

    /// Every machine's scans.
    pub fn all_scans(&self) -> String {
        self.scan("+")
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
            inner_code: Some(command.inner_code.clone()),
            ts: None,
            sig: None,
        }
    }
}

/// What a machine remembers of the orders it was told to vend, so that a command delivered twice
/// (MQTT's at-least-once) vends once: the last `capacity` orders, oldest forgotten first.
#[derive(Debug)]
pub struct Handled {
    capacity: usize,
    answers: HashMap<String, Option<VendResult>>,
    order: VecDeque<String>,
}

/// What to do with a command, given what the machine remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A new order: vend it.
    New,
    /// Being vended now: the answer is on its way.
    InProgress,
    /// Vended already: send this answer again (the first may have been lost).
    Answered(VendResult),
}

impl Handled {
    /// Remembers up to `capacity` orders.
    pub fn new(capacity: usize) -> Self {
        Handled {
            capacity: capacity.max(1),
            answers: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The command for `order_no` arrived: whether to vend, wait or answer again.
    pub fn begin(&mut self, order_no: &str) -> Seen {
        match self.answers.get(order_no) {
            Some(Some(answer)) => return Seen::Answered(answer.clone()),
            Some(None) => return Seen::InProgress,
            None => {}
        }
        if self.order.len() >= self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.answers.remove(&oldest);
            }
        }
        self.answers.insert(order_no.to_owned(), None);
        self.order.push_back(order_no.to_owned());
        Seen::New
    }

    /// The vend of `result.order_no` ended with `result`.
    pub fn finish(&mut self, result: &VendResult) {
        if let Some(slot) = self.answers.get_mut(&result.order_no) {
            *slot = Some(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(order_no: &str, success: bool) -> VendResult {
        VendResult {
            order_no: order_no.into(),
            success,
            error: None,
            inner_code: Some("VM0001".into()),
            ts: None,
            sig: None,
        }
    }

    #[test]
    fn a_command_delivered_twice_vends_once_and_is_answered_again() {
        let mut handled = Handled::new(2);
        assert_eq!(handled.begin("V1"), Seen::New);
        // The duplicate arrives while the motor turns: nothing more to do.
        assert_eq!(handled.begin("V1"), Seen::InProgress);
        let first = result("V1", false);
        handled.finish(&first);
        // After it: the same answer again, not a second vend (nor a new failure roll).
        assert_eq!(handled.begin("V1"), Seen::Answered(first.clone()));
        assert_eq!(handled.begin("V2"), Seen::New);
        handled.finish(&result("V2", true));
        // Bounded: a third order forgets the oldest.
        assert_eq!(handled.begin("V3"), Seen::New);
        assert_eq!(handled.begin("V2"), Seen::Answered(result("V2", true)));
        assert_eq!(handled.begin("V1"), Seen::New);
    }

    #[test]
    fn a_result_topic_names_its_machine() {
        let t = Topics::new("vm");
        assert_eq!(
            t.machine_of_result("vm/VM0001/vendout/result").as_deref(),
            Some("VM0001")
        );
        for other in [
            "vm/VM0001/vendout",
            "vm//vendout/result",
            "vm/a/b/vendout/result",
            "vmx/VM0001/vendout/result",
            "other/VM0001/vendout/result",
        ] {
            assert_eq!(t.machine_of_result(other), None, "{other}");
        }
    }
}
