//! Payers' complaints (WeChat Pay API v3, 消费者投诉 2.0) for the sellers whose orders they are
//! about: heard and read as `crate::complaints` does (the notification, the periodic read every
//! `COMPLAINT_SYNC_SECS`), each kept beside its order (the complaint's `out_trade_no` is the
//! order's number) and that order's seller, who answers it, refunds and completes it from the
//! dashboard (`routes::seller::complaints`). Only a merchant on API v3 has complaints here
//! (`WECHAT_PAY_API=v3`; demo: `DEMO_WECHAT_API=v3`).

use aggregate_pay::StoreError;
use wechat_pay::v3::Complaint;

use super::db::{StoredComplaint, VendingDb};
use crate::complaints::{ComplaintDesk, ComplaintError, ComplaintKeeper, HearsComplaints, summary};

/// The merchant's complaints, as the sellers see them.
#[derive(Debug)]
pub struct Complaints {
    desk: ComplaintDesk,
    db: VendingDb,
}

impl Complaints {
    /// Complaints read through `desk`, kept in `db`.
    pub fn new(desk: ComplaintDesk, db: VendingDb) -> Self {
        Complaints { desk, db }
    }

    /// Keeps what WeChat says of `c` now, beside its order and seller.
    pub async fn store(&self, c: &Complaint) -> Result<StoredComplaint, StoreError> {
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
        let mut about = summary(c);
        about["out_trade_no"] = c
            .complaint_order_info
            .first()
            .map(|o| o.out_trade_no.clone())
            .into();
        let stored = StoredComplaint {
            complaint_id: c.complaint_id.clone(),
            order_no: order.as_ref().map(|o| o.order_no.clone()),
            seller: order.and_then(|o| o.seller),
            state: c.complaint_state.as_str().to_owned(),
            needs_action: c.is_open(),
            summary: about,
            received_at,
            updated_at: now,
        };
        self.db.save_complaint(&stored).await?;
        Ok(stored)
    }

    /// Reads complaint `id` from WeChat and keeps it (after the seller acted on it).
    pub async fn refresh(&self, id: &str) -> Result<StoredComplaint, ComplaintError> {
        let complaint = self
            .desk
            .client()
            .execute(&wechat_pay::v3::QueryComplaint(id.to_owned()))
            .await?;
        Ok(self.store(&complaint).await?)
    }
}

impl ComplaintKeeper for Complaints {
    fn desk(&self) -> &ComplaintDesk {
        &self.desk
    }

    async fn keep(&self, c: &Complaint) -> Result<(), StoreError> {
        let stored = self.store(c).await?;
        if stored.state == "PENDING" {
            tracing::warn!(complaint = %stored.complaint_id, order = ?stored.order_no, "a payer complained: answer in time");
        }
        Ok(())
    }
}

impl HearsComplaints for super::VendingState {
    type Keeper = Complaints;

    fn complaint_keeper(&self) -> Option<&Complaints> {
        self.complaints.as_deref()
    }
}
