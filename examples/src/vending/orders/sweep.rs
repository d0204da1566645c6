//! The sweep: repairs what a restart or a lost message left behind.

use super::super::db::OrderStatus;
use super::{OrderError, OrderService, internal, now};

impl OrderService {
    /// Repairs what a restart or a lost message left behind: unpaid orders past their window,
    /// paid orders never vended, vends nobody answered, refunds not completed; and drops old
    /// QR-code scans of sellers.
    pub async fn sweep(&self) -> Result<(), OrderError> {
        let t = now();
        let order_timeout =
            i64::try_from(self.settings.order_timeout.as_secs()).unwrap_or(i64::MAX);
        let vend_timeout = i64::try_from(self.settings.vend_timeout.as_secs()).unwrap_or(i64::MAX);
        for o in self
            .db
            .orders_in(OrderStatus::Created, t - order_timeout, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.on_order_timeout(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e, "sweep: timeout not applied");
            }
        }
        for o in self
            .db
            .orders_in(OrderStatus::Paid, t - 10, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.vend(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e, "sweep: vend not sent");
            }
        }
        for o in self
            .db
            .orders_in(OrderStatus::Vending, t - vend_timeout, 200)
            .await
            .map_err(internal)?
        {
            if let Err(e) = self.on_vend_timeout(&o.order_no).await {
                tracing::warn!(order = %o.order_no, error = %e, "sweep: vend timeout not applied");
            }
        }
        for o in self.db.refunds_due(t - 30, 200).await.map_err(internal)? {
            let reason = o.reason.clone().unwrap_or_else(|| "refund".into());
            if let Err(e) = self.refund(&o, &reason).await {
                tracing::warn!(order = %o.order_no, error = %e, "sweep: refund not done");
            }
        }
        // Sellers' QR-code scans live two minutes; their rows go an hour after.
        self.db.prune_scans(t - 3600).await.map_err(internal)?;
        Ok(())
    }
}
