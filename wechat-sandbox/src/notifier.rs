//! Asynchronous notifications the way WeChat and Alipay send them: POST, and on anything but the
//! expected acknowledgement, try again on the provider's schedule (divided by the time scale)
//! until it is acknowledged or the schedule runs out. Every attempt is logged for the control API.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::faults::Faults;

/// WeChat Pay: immediately, then after 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 60m, 3h, 3h,
/// 3h, 6h, 6h.
pub const WECHAT_SCHEDULE: &[u64] = &[
    0, 15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// Alipay: immediately, then after 4m, 10m, 10m, 1h, 2h, 6h, 15h.
pub const ALIPAY_SCHEDULE: &[u64] = &[0, 240, 600, 600, 3600, 7200, 21600, 54000];

/// What counts as "received" for the notified server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// An XML body with `return_code` SUCCESS (WeChat Pay).
    WechatXml,
    /// The text `success` (Alipay).
    AlipayText,
    /// Any 2xx status (WeChat Pay API v3: 200 or 204).
    Status2xx,
}

/// Header names and values.
pub type Headers = Vec<(&'static str, String)>;

/// Headers made for each attempt (WeChat Pay v3 signs every delivery with its own timestamp).
#[derive(Clone)]
pub struct AttemptHeaders(pub Arc<dyn Fn(&str) -> Headers + Send + Sync>);

impl std::fmt::Debug for AttemptHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AttemptHeaders(..)")
    }
}

/// One notification and its delivery history.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryLog {
    /// Sequence number.
    pub id: u64,
    /// `wechat.payment`, `wechat.refund`, `alipay.payment`.
    pub kind: String,
    /// The order it is about.
    pub reference: String,
    /// Where it is sent.
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Whether it was acknowledged.
    pub delivered: bool,
    /// Whether the schedule ran out without an acknowledgement.
    pub abandoned: bool,
    /// What the last attempt got (status and the start of the body, or the error).
    pub last_result: Option<String>,
}

/// Sends notifications in the background.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    time_scale: f64,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    log: Arc<Mutex<Vec<DeliveryLog>>>,
    faults: Arc<Faults>,
}

/// A notification to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Log kind.
    pub kind: &'static str,
    /// The order it is about.
    pub reference: String,
    /// Target URL.
    pub url: String,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
    /// What acknowledges it.
    pub ack: Ack,
    /// Seconds to wait before each attempt.
    pub schedule: &'static [u64],
    /// Headers signed for each attempt, if the provider signs them (v3).
    pub headers: Option<AttemptHeaders>,
}

impl Notifier {
    /// A notifier whose waits are divided by `time_scale`.
    pub fn new(time_scale: f64, shutdown: CancellationToken, faults: Arc<Faults>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Notifier {
            http,
            time_scale: if time_scale > 0.0 { time_scale } else { 1.0 },
            shutdown,
            tasks: TaskTracker::new(),
            log: Arc::new(Mutex::new(Vec::new())),
            faults,
        }
    }

    /// Every notification sent or being sent.
    pub fn log(&self) -> Vec<DeliveryLog> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts delivering `d` in the background.
    pub fn send(&self, d: Delivery) {
        let id = {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            let id = log.len() as u64 + 1;
            log.push(DeliveryLog {
                id,
                kind: d.kind.to_owned(),
                reference: d.reference.clone(),
                url: d.url.clone(),
                attempts: 0,
                delivered: false,
                abandoned: false,
                last_result: None,
            });
            id
        };
        if self.faults.take_drop(d.kind) {
            self.update(id, |e| {
                e.abandoned = true;
                e.last_result = Some("dropped (a fault set through the control API)".into());
            });
            return;
        }
        let this = self.clone();
        self.tasks.spawn(async move { this.deliver(id, d).await });
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut DeliveryLog)) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = log.iter_mut().find(|e| e.id == id) {
            f(entry);
        }
    }

    async fn deliver(&self, id: u64, d: Delivery) {
        for wait in d.schedule {
            let wait = Duration::from_secs_f64(*wait as f64 / self.time_scale);
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let mut request = self
                .http
                .post(&d.url)
                .header(reqwest::header::CONTENT_TYPE, d.content_type);
            if let Some(AttemptHeaders(sign)) = &d.headers {
                for (name, value) in sign(&d.body) {
                    request = request.header(name, value);
                }
            }
            let result = request.body(d.body.clone()).send().await;
            let (acked, summary) = match result {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let acked = status.is_success() && acknowledged(d.ack, &text);
                    let head: String = text.chars().take(120).collect();
                    (acked, format!("{} {head}", status.as_u16()))
                }
                Err(e) => (false, e.without_url().to_string()),
            };
            self.update(id, |e| {
                e.attempts += 1;
                e.delivered = acked;
                e.last_result = Some(summary);
            });
            if acked {
                tracing::debug!(kind = d.kind, reference = %d.reference, "notification acknowledged");
                return;
            }
        }
        self.update(id, |e| e.abandoned = true);
        tracing::warn!(kind = d.kind, reference = %d.reference, "notification never acknowledged");
    }

    /// Waits for in-flight deliveries after the shutdown token fired.
    pub async fn close(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

fn acknowledged(ack: Ack, body: &str) -> bool {
    match ack {
        Ack::AlipayText => body.trim() == "success",
        Ack::Status2xx => true,
        Ack::WechatXml => wechat_pay::Params::from_xml(body.as_bytes())
            .is_ok_and(|p| p.get("return_code") == Some("SUCCESS")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements() {
        assert!(acknowledged(
            Ack::WechatXml,
            "<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"
        ));
        assert!(!acknowledged(Ack::WechatXml, "SUCCESS"));
        assert!(!acknowledged(
            Ack::WechatXml,
            "<xml><return_code>FAIL</return_code></xml>"
        ));
        assert!(acknowledged(Ack::AlipayText, "success\n"));
        assert!(!acknowledged(Ack::AlipayText, "fail"));
    }

    #[test]
    fn schedules_match_the_providers() {
        assert_eq!(WECHAT_SCHEDULE.len(), 16);
        assert_eq!(WECHAT_SCHEDULE[1..].iter().sum::<u64>(), 86_640);
        assert_eq!(ALIPAY_SCHEDULE.len(), 8);
    }
}
