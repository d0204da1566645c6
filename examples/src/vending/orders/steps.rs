//! The steps after creation: paid, vend-out, the machine's answer or silence, refunds, and the
//! buyer's messages.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use aggregate_pay::{Fen, PayMethod, PaymentId, RefundStatus};

use super::super::db::{BuyerApp, Order, OrderStatus, Stamp};
use super::super::delays::{DueJob, DueKind, Wait};
use super::super::machines::signing::{Rejected, sign_command, verify_result};
use super::super::machines::{Received, VendCommand};
use super::{OrderError, OrderService, internal, now};

impl OrderService {
    /// The order's payment window ended.
    pub async fn on_order_timeout(&self, order_no: &str) -> Result<(), OrderError> {
        let order = self.get(order_no).await?;
        if order.status == OrderStatus::Created {
            self.close_unpaid(&order, OrderStatus::Invalid, "not paid in time")
                .await?;
        }
        Ok(())
    }

    /// The payment arrived (payment event): vend, or refund an order that can no longer vend.
    pub async fn on_paid(&self, order_no: &str) -> Result<(), OrderError> {
        let order = self.get(order_no).await?;
        match order.status {
            OrderStatus::Created => {
                let moved = self
                    .step(
                        order_no,
                        OrderStatus::Created,
                        OrderStatus::Paid,
                        Stamp {
                            paid: true,
                            ..Stamp::default()
                        },
                    )
                    .await?;
                if moved {
                    self.publish(order_no).await;
                    self.notify_buyer(&order, Message::Paid).await;
                }
                self.vend(order_no).await
            }
            OrderStatus::Paid => self.vend(order_no).await,
            OrderStatus::Invalid | OrderStatus::Cancelled => {
                // Paid at the last second: the machine is gone, the money goes back.
                tracing::warn!(order = order_no, "payment for an ended order; refunding");
                self.refund(&order, "paid after the order ended").await
            }
            // Already handled (a duplicate event).
            _ => Ok(()),
        }
    }

    /// PAID → VENDING and the vend-out command (once, whoever gets here first).
    pub(super) async fn vend(&self, order_no: &str) -> Result<(), OrderError> {
        let moved = self
            .step(
                order_no,
                OrderStatus::Paid,
                OrderStatus::Vending,
                Stamp {
                    vend: true,
                    ..Stamp::default()
                },
            )
            .await?;
        if !moved {
            return Ok(());
        }
        let order = self.get(order_no).await?;
        self.publish(order_no).await;
        self.delays
            .schedule(
                DueJob {
                    kind: DueKind::VendTimeout,
                    order_no: order_no.to_owned(),
                },
                Wait::Vend,
            )
            .await
            .unwrap_or_else(|e| tracing::warn!(error = %e, "vend timeout not scheduled; the sweep will check it"));
        let mut command = VendCommand {
            order_no: order.order_no.clone(),
            inner_code: order.inner_code.clone(),
            sku_id: order.sku_id,
            slot_no: order.slot_no.clone(),
            timeout_secs: self.settings.vend_timeout.as_secs(),
            requested_at_ms: i64::try_from(
                time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000,
            )
            .unwrap_or(0),
            ts: None,
            sig: None,
        };
        match self.db.machine_secret(&order.inner_code).await {
            Ok(Some(secret)) => sign_command(&secret, &mut command, now()),
            Ok(None) => {}
            Err(e) => {
                // Unsigned, a machine with a secret would ignore it: fail and refund now.
                tracing::error!(order = order_no, error = %e, "machine secret unavailable");
                return self
                    .vend_failed(&order, "the vend-out command could not be signed")
                    .await;
            }
        }
        self.in_flight().insert(order_no.to_owned(), Instant::now());
        self.metrics.vend_command();
        if let Err(e) = self.machines.vend_out(&command).await {
            tracing::error!(order = order_no, error = %e, "vend-out not sent");
            return self
                .vend_failed(&order, "the vend-out command could not be sent")
                .await;
        }
        Ok(())
    }

    /// A machine answered. Applied only when it came from the order's machine and, for a machine
    /// with a secret, is signed, fresh and untampered; anything else is dropped and counted.
    pub async fn on_vend_result(&self, received: &Received) -> Result<(), OrderError> {
        let result = &received.result;
        let order = self.get(&result.order_no).await?;
        if let Err(why) = self.accept(&order, received).await? {
            tracing::warn!(
                order = %order.order_no,
                topic_machine = %received.machine,
                reason = why.as_str(),
                "machine result dropped"
            );
            self.metrics.result_rejected(why.as_str());
            return Ok(());
        }
        if order.status != OrderStatus::Vending {
            if result.success && order.status == OrderStatus::VendFailed {
                tracing::error!(order = %order.order_no, "the machine vended after the order failed; it was refunded");
            }
            return Ok(());
        }
        let sent = self.in_flight().remove(&order.order_no);
        match (sent, order.vend_at) {
            (Some(at), _) => self.metrics.vend_latency(at.elapsed()),
            // Sent before a restart: only the database's second is known.
            (None, Some(at)) => self
                .metrics
                .vend_latency(Duration::from_secs(u64::try_from(now() - at).unwrap_or(0))),
            (None, None) => {}
        }
        if result.success {
            if self.db.complete(&order, now()).await.map_err(internal)? {
                self.metrics.order_ended(OrderStatus::Completed);
                self.release(&order).await;
                self.publish(&order.order_no).await;
            }
            Ok(())
        } else {
            let reason = result
                .error
                .clone()
                .unwrap_or_else(|| "the machine failed".into());
            self.vend_failed(&order, &reason).await
        }
    }

    /// Whether a result may be applied to `order`.
    async fn accept(
        &self,
        order: &Order,
        received: &Received,
    ) -> Result<Result<(), Rejected>, OrderError> {
        if received.machine != order.inner_code {
            return Ok(Err(Rejected::WrongMachine));
        }
        let secret = self
            .db
            .machine_secret(&order.inner_code)
            .await
            .map_err(internal)?;
        Ok(match secret {
            Some(secret) => verify_result(&secret, &received.result, &received.machine, now()),
            None => Ok(()),
        })
    }

    /// The machine's vend window ended without an answer.
    pub async fn on_vend_timeout(&self, order_no: &str) -> Result<(), OrderError> {
        let order = self.get(order_no).await?;
        if order.status == OrderStatus::Vending {
            self.vend_failed(&order, "the machine did not answer in time")
                .await?;
        }
        Ok(())
    }

    pub(super) fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) async fn vend_failed(&self, order: &Order, reason: &str) -> Result<(), OrderError> {
        self.in_flight().remove(&order.order_no);
        if self
            .end(
                order,
                OrderStatus::Vending,
                OrderStatus::VendFailed,
                Some(reason),
            )
            .await?
        {
            let order = self.get(&order.order_no).await?;
            self.refund(&order, reason).await?;
        }
        Ok(())
    }

    /// Refunds the whole order (idempotent by the order's refund number).
    pub(super) async fn refund(&self, order: &Order, reason: &str) -> Result<(), OrderError> {
        let Some(payment_id) = &order.payment_id else {
            return Ok(());
        };
        let refund_no = self
            .db
            .mark_refund_due(
                &order.order_no,
                &format!("R{}", &order.order_no),
                reason,
                now(),
            )
            .await
            .map_err(internal)?;
        // Made already (a repeat, the sweep): the reconciler sends an open one again, at the
        // pace the channel asked for — never the sweep every 30 s.
        match self.payments.get_refund(&refund_no).await {
            Ok(existing) => {
                match existing.status {
                    RefundStatus::Succeeded => self.on_refunded(&order.order_no).await?,
                    RefundStatus::Failed => tracing::error!(
                        order = %order.order_no, refund = %refund_no,
                        reason = existing.last_error.as_deref().unwrap_or_default(),
                        "the refund of this order was refused; it needs a person"
                    ),
                    _ => {}
                }
                return Ok(());
            }
            Err(aggregate_pay::Error::RefundNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let notify_url = self.refund_notify_url(order);
        let refund = self
            .payments
            .refund(
                &PaymentId(payment_id.clone()),
                &refund_no,
                order.amount,
                Some(reason.to_owned()),
                notify_url,
            )
            .await?;
        if refund.status == RefundStatus::Succeeded {
            // The refund event says so too; whichever comes first marks the order.
            self.on_refunded(&order.order_no).await?;
        }
        Ok(())
    }

    /// Shows on the order the refunds that need its seller (ABNORMAL: the money could not reach
    /// the buyer), with what to do; clears it once none does. Publishes a change.
    pub async fn refresh_refund_issue(&self, order_no: &str) -> Result<(), OrderError> {
        let order = self.get(order_no).await?;
        let Some(payment_id) = &order.payment_id else {
            return Ok(());
        };
        let abnormal: Vec<serde_json::Value> = self
            .payments
            .refunds(&PaymentId(payment_id.clone()))
            .await?
            .iter()
            .filter(|r| r.status == RefundStatus::Abnormal)
            .map(|r| {
                serde_json::json!({
                    "out_refund_no": r.out_refund_no,
                    "amount": r.amount.as_u64(),
                    "status": r.status,
                    "what_to_do": r.last_error,
                })
            })
            .collect();
        let issue = (!abnormal.is_empty()).then(|| serde_json::Value::from(abnormal).to_string());
        if issue != order.refund_issue {
            self.db
                .set_refund_issue(order_no, issue.as_deref(), now())
                .await
                .map_err(internal)?;
            self.publish(order_no).await;
        }
        Ok(())
    }

    /// Money went back (a refund event, or a refund the channel answered at once): the order
    /// records how much; all of it ends the order REFUNDED. The buyer hears of each refund once.
    pub async fn on_refunded(&self, order_no: &str) -> Result<(), OrderError> {
        self.refresh_refund_issue(order_no).await?;
        let order = self.get(order_no).await?;
        let Some(payment_id) = &order.payment_id else {
            return Ok(());
        };
        let refunded = self
            .payments
            .get(&PaymentId(payment_id.clone()))
            .await?
            .refunded_amount;
        if refunded == Fen::ZERO {
            return Ok(());
        }
        let more = self
            .db
            .set_refunded(order_no, refunded, now())
            .await
            .map_err(internal)?;
        // Each change is a compare-and-set: of two callers racing, one tells the buyer.
        let tell = if refunded >= order.amount {
            let ended = self.db.refunded(order_no, now()).await.map_err(internal)?;
            if ended {
                self.metrics.order_ended(OrderStatus::Refunded);
            }
            ended
        } else {
            more
        };
        if tell {
            self.publish(order_no).await;
            self.notify_buyer(&order, Message::Refunded(refunded)).await;
        }
        Ok(())
    }

    /// A message to the buyer, paid or refunded, from the app the buyer logged in with: a
    /// subscribe message in the Mini Program, a template message from the Official Account (a
    /// demo buyer gets the demo Official Account's); an Alipay buyer's id means nothing to
    /// WeChat, so they get none. Best effort.
    pub(super) async fn notify_buyer(&self, order: &Order, message: Message) {
        let Some(open_id) = &order.open_id else {
            return;
        };
        let in_mini_program = match order.buyer_app {
            Some(BuyerApp::AlipayMiniProgram | BuyerApp::AlipayWeb) => return,
            Some(app) => app == BuyerApp::MiniProgram,
            // Orders from before sessions: the app they paid in.
            None if order.method == PayMethod::AlipayMiniProgram => return,
            None => order.method == PayMethod::WechatMiniProgram,
        };
        let (template, first, amount) = match message {
            Message::Paid => (
                &self.settings.template_paid,
                "Payment received, your item is on its way",
                order.amount,
            ),
            Message::Refunded(amount) => (
                &self.settings.template_refunded,
                "Your money was refunded",
                amount,
            ),
        };
        let item = format!("{} ¥{}", order.sku_name, amount.to_yuan_string());
        let sent = match (in_mini_program, &self.buyers.mini, &self.buyers.official) {
            (true, Some(mini), _) => {
                let message = wechat_mp::SubscribeMessage::new(open_id.clone(), template.clone())
                    .field("keyword1", order.order_no.clone())
                    .field("keyword2", item)
                    .field("remark", first);
                mini.send_subscribe(&message).await
            }
            (false, _, Some(official)) => {
                let message = wechat_mp::TemplateMessage::new(open_id.clone(), template.clone())
                    .field("first", first)
                    .field("keyword1", order.order_no.clone())
                    .field("keyword2", item)
                    .field("remark", order.inner_code.clone());
                official.send_template(&message).await.map(|_| ())
            }
            // The app the buyer paid in is not configured: nobody to send it.
            _ => return,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "buyer message not sent");
        }
    }
}

/// What the buyer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Message {
    /// The payment arrived.
    Paid,
    /// This much was refunded so far.
    Refunded(Fen),
}
