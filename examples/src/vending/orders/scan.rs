//! A machine scanned a buyer's payment code: charge it, and vend once paid.
//!
//! The scan arrives on the machine's topic (the topic names the machine; a machine with a secret
//! must have signed it). Its order number is derived from the machine and the scan's id, so a
//! scan delivered twice — on this instance or another — finds the order the first made and
//! changes nothing. The machine's lock is taken as for any order; the code is charged through
//! `Payments::pay_by_code` (the buyer confirming on the phone is waited for, then reversed), and
//! the payment's `payment.succeeded` event vends it as it vends any paid order. A declined or
//! reversed code ends the order at once and frees the machine. The machine hears the outcome on
//! its scan-result topic.

use std::time::Duration;

use aggregate_pay::service::CodeOutcome;
use aggregate_pay::{Fen, NewPayment, PaymentCode};
use sha2::{Digest, Sha256};

use super::super::db::{MachineStatus, Order, OrderStatus};
use super::super::machines::signing::verify_scan;
use super::super::machines::{ReceivedScan, ScanAnswer};
use super::{OrderError, OrderService, internal, lock_key, now};

/// The order number of `machine`'s scan `scan_id` (`S` and 31 hex digits).
pub fn scan_order_no(machine: &str, scan_id: &str) -> String {
    let digest = Sha256::digest(format!("{machine}\n{scan_id}").as_bytes());
    format!("S{}", &hex::encode(digest)[..31])
}

impl OrderService {
    /// Handles a scan, tells the machine the outcome, counts it.
    pub async fn on_scan(&self, received: &ReceivedScan) {
        let answer = match self.scan(received).await {
            Ok(Some(answer)) => answer,
            // A duplicate, or a scan that was not the machine's: nothing to say.
            Ok(None) => return,
            Err(e) => {
                tracing::error!(machine = %received.machine, scan = %received.scan.scan_id, error = %e, "scan not handled");
                ScanAnswer {
                    scan_id: received.scan.scan_id.clone(),
                    order_no: None,
                    status: "refused".into(),
                    reason: Some("the server could not take the payment".into()),
                }
            }
        };
        self.metrics.scan(&answer.status);
        if let Err(e) = self.machines.scan_answer(&received.machine, &answer).await {
            tracing::warn!(machine = %received.machine, error = %e, "scan answer not sent");
        }
    }

    async fn scan(&self, received: &ReceivedScan) -> Result<Option<ScanAnswer>, OrderError> {
        let scan = &received.scan;
        let refused = |reason: &str| {
            Ok(Some(ScanAnswer {
                scan_id: scan.scan_id.clone(),
                order_no: None,
                status: "refused".into(),
                reason: Some(reason.to_owned()),
            }))
        };
        if scan.scan_id.is_empty() || scan.scan_id.len() > 64 {
            return refused("a scan id of 1 to 64 characters is needed");
        }
        let Some(machine) = self
            .db
            .machine(&received.machine)
            .await
            .map_err(internal)?
            .filter(|m| m.owner.is_some())
        else {
            self.metrics.scan("rejected");
            tracing::warn!(machine = %received.machine, "scan from an unknown machine dropped");
            return Ok(None);
        };
        if let Some(secret) = self
            .db
            .machine_secret(&machine.inner_code)
            .await
            .map_err(internal)?
        {
            if let Err(why) = verify_scan(&secret, scan, &machine.inner_code, now()) {
                self.metrics.scan("rejected");
                tracing::warn!(machine = %machine.inner_code, reason = why.as_str(), "scan dropped");
                return Ok(None);
            }
        }
        let order_no = scan_order_no(&machine.inner_code, &scan.scan_id);
        if self.db.order(&order_no).await.map_err(internal)?.is_some() {
            return Ok(None);
        }
        if machine.status != MachineStatus::Online {
            return refused("the machine is not in service");
        }
        let code = match PaymentCode::parse(&scan.code) {
            Ok(code) => code,
            Err(_) => return refused("not a WeChat Pay or Alipay payment code"),
        };
        let Some(channel) = self.payments.channels().for_method(code.method()) else {
            return refused("this machine does not take this payment code");
        };
        let channel = channel.clone();
        let Some(slot) = self
            .db
            .stocked_slots(&machine.inner_code)
            .await
            .map_err(internal)?
            .into_iter()
            .find(|s| s.slot_no == scan.slot_no)
        else {
            return refused("the slot is empty");
        };
        let ttl =
            self.settings.order_timeout + self.settings.vend_timeout + Duration::from_secs(120);
        let Some(guard) = self
            .locks
            .acquire(&lock_key(&machine.inner_code), ttl)
            .await
            .map_err(internal)?
        else {
            return refused("the machine is busy");
        };
        // Under the lock: a duplicate that raced the check above finds the order now.
        if self.db.order(&order_no).await.map_err(internal)?.is_some() {
            let _ = self.locks.release(&guard).await;
            return Ok(None);
        }
        let created_at = now();
        let order = Order {
            order_no: order_no.clone(),
            inner_code: machine.inner_code.clone(),
            sku_id: slot.sku_id,
            sku_name: slot.name.clone(),
            slot_no: slot.slot_no.clone(),
            amount: slot.price,
            channel: channel.id().to_owned(),
            method: code.method(),
            open_id: None,
            buyer_app: None,
            status: OrderStatus::Created,
            payment_id: None,
            pay_action: None,
            lock_token: Some(guard.token.clone()),
            refund_no: None,
            refunded: Fen::ZERO,
            reason: None,
            created_at,
            updated_at: created_at,
            paid_at: None,
            vend_at: None,
            ended_at: None,
            seller: machine.owner.clone(),
            refund_issue: None,
        };
        if let Err(e) = self.db.insert_order(&order).await {
            let _ = self.locks.release(&guard).await;
            return Err(internal(e));
        }
        self.publish(&order_no).await;
        let payment = NewPayment::new(
            order_no.clone(),
            order.amount,
            format!("{} ({})", order.sku_name, order.inner_code),
            code.method(),
            crate::notify::payment_url(&self.settings.public_url, channel.id()),
        );
        let outcome = match self.payments.pay_by_code(payment, &code).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(order = %order_no, error = %e, "payment code not charged");
                self.end(
                    &order,
                    OrderStatus::Created,
                    OrderStatus::Invalid,
                    Some("the payment could not be made"),
                )
                .await?;
                return Ok(Some(ScanAnswer {
                    scan_id: scan.scan_id.clone(),
                    order_no: Some(order_no),
                    status: "refused".into(),
                    reason: Some(e.to_string()),
                }));
            }
        };
        let payment = outcome.payment();
        self.db
            .set_payment(
                &order_no,
                &payment.id.0,
                r#"{"type":"payment_code"}"#,
                now(),
            )
            .await
            .map_err(internal)?;
        let (status, reason) = match &outcome {
            CodeOutcome::Paid(_) => ("paid", None),
            CodeOutcome::Declined { code, message, .. } => {
                ("declined", Some(format!("{code}: {message}")))
            }
            CodeOutcome::Reversed(_) => (
                "reversed",
                Some("the buyer did not confirm in time".to_owned()),
            ),
            // Another caller charges it; or no answer yet — the order's timeout ends it, the
            // reconciler reverses the payment, and money that arrives after all is refunded.
            _ => ("pending", None),
        };
        if matches!(
            outcome,
            CodeOutcome::Declined { .. } | CodeOutcome::Reversed(_)
        ) {
            let order = self.get(&order_no).await?;
            self.end(
                &order,
                OrderStatus::Created,
                OrderStatus::Invalid,
                reason.as_deref(),
            )
            .await?;
            self.metrics.order_ended(OrderStatus::Invalid);
        } else if matches!(outcome, CodeOutcome::Paid(_)) {
            // The payment event vends it too; whoever comes first, once.
            self.on_paid(&order_no).await?;
        }
        Ok(Some(ScanAnswer {
            scan_id: scan.scan_id.clone(),
            order_no: Some(order_no),
            status: status.into(),
            reason,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scans_order_number_is_its_machines_and_fits_a_payment_number() {
        let a = scan_order_no("VM0001", "s-1");
        assert_eq!(a, scan_order_no("VM0001", "s-1"));
        assert_ne!(a, scan_order_no("VM0002", "s-1"));
        assert_ne!(a, scan_order_no("VM0001", "s-2"));
        assert_eq!(a.len(), 32);
    }
}
