//! The merchant's "payment received" message on WeChat: its own outbox consumer.
//!
//! [`super::callbacks::MerchantCallbacks`] queues the message (one per payment event, keyed by
//! the event id) *before* it makes the HTTP callback, so the message goes out whether the
//! merchant's endpoint is up or not, and an event handled again queues nothing new. This sender
//! claims due messages (a lease, so several instances share the work), sends each as a template
//! message with `client_msg_id` = the event id (WeChat drops a second send with the same id),
//! and retries failures with a doubling backoff until `max_attempts`, after which the message is
//! dead (kept, with its last error).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::db::{PlatformDb, QueuedMessage};
use crate::clock::unix_now;

/// WeChat errors no retry can fix: an invalid openid, a user who unfollowed, an unknown
/// template.
const PERMANENT: &[i64] = &[40003, 43004, 40037];

/// Sends queued merchant messages.
#[derive(Debug, Clone)]
pub struct MerchantMessages {
    db: PlatformDb,
    mp: wechat_mp::Client,
    template: String,
    /// The wait after the first failure (doubling), and the longest.
    backoff: (Duration, Duration),
    max_attempts: u32,
}

impl MerchantMessages {
    /// Messages from `db`, sent through `mp` with `template`.
    pub fn new(db: PlatformDb, mp: wechat_mp::Client, template: String) -> Self {
        MerchantMessages {
            db,
            mp,
            template,
            backoff: (Duration::from_secs(5), Duration::from_secs(600)),
            max_attempts: 20,
        }
    }

    /// The retry schedule: `first` after the first failure, doubling up to `max`, dead after
    /// `max_attempts`.
    pub fn retries(mut self, first: Duration, max: Duration, max_attempts: u32) -> Self {
        self.backoff = (first, max.max(first));
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sends what is due; returns how many were sent.
    pub async fn run_once(&self) -> Result<usize, aggregate_pay::StoreError> {
        let now = unix_now();
        let due = self.db.claim_messages(now, 60, 50).await?;
        let mut sent = 0;
        for m in &due {
            match self.send(m).await {
                Ok(()) => {
                    self.db.message_sent(&m.event_id).await?;
                    sent += 1;
                }
                Err((error, permanent)) => {
                    let retry_at = (!permanent && m.attempts < self.max_attempts)
                        .then(|| now.saturating_add(self.wait(m.attempts)));
                    if retry_at.is_none() {
                        tracing::error!(event = %m.event_id, error = %error, "merchant message dead");
                    }
                    self.db
                        .message_failed(&m.event_id, &error, retry_at)
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    fn wait(&self, attempts: u32) -> i64 {
        let (first, max) = self.backoff;
        let wait = first
            .saturating_mul(1 << attempts.saturating_sub(1).min(20))
            .min(max);
        i64::try_from(wait.as_secs()).unwrap_or(i64::MAX).max(1)
    }

    async fn send(&self, m: &QueuedMessage) -> Result<(), (String, bool)> {
        let data = &m.payload;
        let amount = data.amount.to_yuan_string();
        let message = wechat_mp::TemplateMessage::new(m.open_id.clone(), self.template.clone())
            .client_msg_id(m.event_id.clone())
            .field("first", "Payment received")
            .field("keyword1", data.out_trade_no.as_str())
            .field_colored("keyword2", format!("¥{amount}"), "#173177")
            .field("remark", data.channel.as_str());
        match self.mp.send_template(&message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let permanent = matches!(&e, wechat_mp::Error::Api { errcode, .. } if PERMANENT.contains(errcode));
                Err((e.to_string(), permanent))
            }
        }
    }

    /// Rounds every `every` until `shutdown`.
    pub async fn run(self, every: Duration, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "merchant messages round failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
