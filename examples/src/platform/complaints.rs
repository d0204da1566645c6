//! Payers' complaints (WeChat Pay API v3) forwarded to the merchants whose payments they are
//! about. Heard and read as `crate::complaints` does (in partner mode WeChat sends the service
//! provider every sub-merchant's complaints), each is matched to its payment by the platform's
//! number, kept with its merchant, and every change — a new complaint, a new state, the payer
//! writing again — is sent to the merchant's notify URL as a signed callback
//! (`complaint.updated`, id `complaint_{id}_{version}`: a merchant dedupes by it), retried with
//! backoff until it gets through. The merchant reads and answers through the open API
//! (`routes::complaints`).

use std::sync::Arc;
use std::time::Duration;

use aggregate_pay::{RetryPolicy, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wechat_pay::v3::Complaint;

use super::callbacks::MerchantCallbacks;
use super::db::{MerchantComplaint, PlatformDb};
use crate::complaints::{ComplaintDesk, ComplaintKeeper, HearsComplaints, summary};

/// How long a claimed callback is this instance's before another may send it.
const LEASE_SECS: i64 = 60;

/// The platform's complaints, forwarded to merchants.
#[derive(Debug)]
pub struct PlatformComplaints {
    desk: ComplaintDesk,
    db: PlatformDb,
    callbacks: Arc<MerchantCallbacks>,
    retries: RetryPolicy,
}

/// A complaint as its merchant sees it (in callbacks and the open API).
pub fn view(c: &MerchantComplaint) -> serde_json::Value {
    json!(c)
}

impl PlatformComplaints {
    /// Complaints read through `desk`, kept in `db`, sent by `callbacks` (retried by `retries`).
    pub fn new(
        desk: ComplaintDesk,
        db: PlatformDb,
        callbacks: Arc<MerchantCallbacks>,
        retries: RetryPolicy,
    ) -> Self {
        PlatformComplaints {
            desk,
            db,
            callbacks,
            retries,
        }
    }

    /// Keeps what WeChat says of `c` now: `None` when it is about no payment of the platform's.
    pub async fn store(&self, c: &Complaint) -> Result<Option<MerchantComplaint>, StoreError> {
        let Some(paid) = c.complaint_order_info.first() else {
            return Ok(None);
        };
        let Some(order) = self.db.order_by_platform_no(&paid.out_trade_no).await? else {
            tracing::warn!(complaint = %c.complaint_id, out_trade_no = %paid.out_trade_no, "a complaint about a payment that is not the platform's");
            return Ok(None);
        };
        let complaint = MerchantComplaint {
            complaint_id: c.complaint_id.clone(),
            merchant_id: order.merchant_id,
            out_trade_no: order.out_trade_no,
            complainted_mchid: c
                .complainted_mchid
                .clone()
                .unwrap_or_else(|| self.desk.client().mch_id().to_owned()),
            state: c.complaint_state.as_str().to_owned(),
            needs_action: c.is_open(),
            summary: summary(c),
            received_at: 0,
            updated_at: 0,
            version: 0,
        };
        self.db
            .save_complaint(&complaint, crate::clock::unix_now())
            .await
            .map(Some)
    }

    /// Sends the due callbacks once: how many got through.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let now = crate::clock::unix_now();
        let due = self
            .db
            .claim_complaint_callbacks(now, LEASE_SECS, 50)
            .await?;
        let mut sent = 0;
        for (c, attempts) in due {
            let body = serde_json::to_vec(&json!({
                "id": format!("complaint_{}_{}", c.complaint_id, c.version),
                "type": "complaint.updated",
                "created_at": c.updated_at,
                "data": view(&c),
            }))
            .map_err(|e| StoreError::Other(e.to_string()))?;
            match self.callbacks.deliver(&c.merchant_id, body).await {
                Ok(()) => {
                    self.db
                        .complaint_callback_sent(&c.complaint_id, c.version)
                        .await?;
                    sent += 1;
                }
                Err(why) => {
                    let wait = self.retries.delay(attempts);
                    tracing::warn!(complaint = %c.complaint_id, merchant = %c.merchant_id, attempts, error = %why, "complaint callback not delivered; retried");
                    let at = now.saturating_add(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
                    self.db
                        .complaint_callback_failed(&c.complaint_id, &why, at)
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// Sends due callbacks every `every` until `stop`.
    pub async fn run_callbacks(self: Arc<Self>, every: Duration, stop: CancellationToken) {
        loop {
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "complaint callbacks not sent; trying again");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

impl ComplaintKeeper for PlatformComplaints {
    fn desk(&self) -> &ComplaintDesk {
        &self.desk
    }

    async fn keep(&self, c: &Complaint) -> Result<(), StoreError> {
        self.store(c).await.map(drop)
    }
}

impl HearsComplaints for super::PlatformState {
    type Keeper = PlatformComplaints;

    fn complaint_keeper(&self) -> Option<&PlatformComplaints> {
        self.complaints.as_deref()
    }
}
