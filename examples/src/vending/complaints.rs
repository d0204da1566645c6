//! Payers' complaints (WeChat Pay API v3, 消费者投诉 2.0) for the sellers whose orders they are
//! about. WeChat tells the server of each (the notification, `crate::complaints`); the server
//! also reads the last 30 days' complaints every `COMPLAINT_SYNC_SECS`, so none is missed while
//! it was down or when notifications go elsewhere. Each is kept beside its order (the
//! complaint's `out_trade_no` is the order's number) and that order's seller, who answers it,
//! refunds and completes it from the dashboard (`routes::seller::complaints`).
//!
//! At start the server makes its `/notify/wechat/complaints` the merchant's complaint
//! notification URL. Live, an `http://` public URL is not registered (WeChat takes `https://`
//! only), and a URL the merchant set for another system is never replaced: the periodic read
//! alone brings complaints in, and the log says why. Only a merchant on API v3 has complaints
//! here (`WECHAT_PAY_API=v3`; demo: `DEMO_WECHAT_API=v3`).

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::StoreError;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wechat_pay::v3::{Complaint, ComplaintNotification, ComplaintState};

use super::db::{StoredComplaint, VendingDb};
use crate::complaints::{ComplaintDesk, HearsComplaints, Registration, notify_url};
use crate::providers::Mode;

/// How many days back the periodic read looks.
const SYNC_DAYS: u32 = 30;

/// Why a complaint could not be brought in.
#[derive(Debug, thiserror::Error)]
pub enum ComplaintError {
    /// WeChat Pay could not be asked, or refused.
    #[error("wechat pay: {0}")]
    Provider(#[from] wechat_pay::Error),
    /// The database.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// The merchant's complaints, as the sellers see them.
#[derive(Debug)]
pub struct Complaints {
    desk: ComplaintDesk,
    db: VendingDb,
}

/// What the seller needs to know of a complaint (the payer's phone is left out).
fn summary(c: &Complaint) -> Value {
    let order = c.complaint_order_info.first();
    json!({
        "detail": c.complaint_detail,
        "complained_at": c.complaint_time,
        "problem_type": c.problem_type,
        "problem_description": c.problem_description,
        "apply_refund_amount": c.apply_refund_amount,
        "out_trade_no": order.map(|o| o.out_trade_no.clone()),
        "transaction_id": order.map(|o| o.transaction_id.clone()),
        "amount": order.map(|o| o.amount),
        "full_refunded": c.complaint_full_refunded,
        "payer_wrote_again": c.incoming_user_response,
        "times": c.user_complaint_times,
        "images": c.complaint_media_list.iter().map(|m| m.media_url.len()).sum::<usize>(),
    })
}

impl Complaints {
    /// Complaints read through `desk`, kept in `db`.
    pub fn new(desk: ComplaintDesk, db: VendingDb) -> Self {
        Complaints { desk, db }
    }

    /// The desk (answers, decisions, completion).
    pub fn desk(&self) -> &ComplaintDesk {
        &self.desk
    }

    /// Keeps what WeChat says of `c` now, beside its order and seller.
    pub async fn keep(&self, c: &Complaint) -> Result<StoredComplaint, StoreError> {
        let order = match c.complaint_order_info.first() {
            Some(o) => self.db.order(&o.out_trade_no).await?,
            None => None,
        };
        let now = crate::clock::unix_now();
        let received_at = self
            .db
            .complaint(&c.complaint_id)
            .await?
            .map_or(now, |known| known.received_at);
        let stored = StoredComplaint {
            complaint_id: c.complaint_id.clone(),
            order_no: order.as_ref().map(|o| o.order_no.clone()),
            seller: order.and_then(|o| o.seller),
            state: c.complaint_state.as_str().to_owned(),
            needs_action: c.is_open(),
            summary: summary(c),
            received_at,
            updated_at: now,
        };
        self.db.save_complaint(&stored).await?;
        Ok(stored)
    }

    /// Reads complaint `id` from WeChat and keeps it.
    pub async fn refresh(&self, id: &str) -> Result<StoredComplaint, ComplaintError> {
        let complaint = self
            .desk
            .client()
            .execute(&wechat_pay::v3::QueryComplaint(id.to_owned()))
            .await?;
        Ok(self.keep(&complaint).await?)
    }

    /// Reads the last 30 days' complaints and keeps each: how many.
    pub async fn sync(&self) -> Result<usize, ComplaintError> {
        let all = self.desk.recent(SYNC_DAYS).await?;
        for c in &all {
            self.keep(c).await?;
        }
        Ok(all.len())
    }

    /// Registers the notification URL (see the module), then reads the complaints every
    /// `every` until `stop`.
    pub async fn run(
        self: Arc<Self>,
        public_url: String,
        mode: Mode,
        every: Duration,
        stop: CancellationToken,
    ) {
        let url = notify_url(&public_url);
        if mode.is_demo() || url.starts_with("https://") {
            match self.desk.register(&url, mode.is_demo()).await {
                Ok(Registration::Elsewhere(other)) => tracing::warn!(
                    ours = %url, theirs = %other,
                    "complaint notifications go to another URL the merchant set; complaints are read every {}s instead",
                    every.as_secs()
                ),
                Ok(_) => tracing::info!(url = %url, "complaint notifications registered"),
                Err(e) => {
                    tracing::warn!(error = %e, "complaint notification URL not registered; complaints are read periodically")
                }
            }
        } else {
            tracing::warn!(
                url = %url,
                "complaint notifications need an https:// PUBLIC_URL; complaints are read every {}s instead",
                every.as_secs()
            );
        }
        loop {
            match self.sync().await {
                Ok(n) => tracing::debug!(complaints = n, "complaints read"),
                Err(e) => tracing::warn!(error = %e, "complaints not read; trying again later"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

impl HearsComplaints for super::VendingState {
    fn complaint_desk(&self) -> Option<&ComplaintDesk> {
        self.complaints.as_ref().map(|c| c.desk())
    }

    async fn complaint_heard(&self, n: ComplaintNotification) -> Result<(), String> {
        let Some(complaints) = &self.complaints else {
            return Err("no complaints here".into());
        };
        let stored = complaints
            .refresh(&n.complaint_id)
            .await
            .map_err(|e| e.to_string())?;
        if stored.state == ComplaintState::Pending.as_str() {
            tracing::warn!(complaint = %stored.complaint_id, order = ?stored.order_no, "a payer complained: answer it in time");
        }
        Ok(())
    }
}
