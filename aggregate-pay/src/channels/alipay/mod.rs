//! The `alipay` channel (feature `alipay`): QR (precreate), web page, mobile web and APP
//! payments through a small RSA2 client. Amounts cross this edge as Alipay's `"0.01"` yuan
//! strings, converted exactly to and from [`Fen`] here and nowhere else.

mod client;
pub mod rsa2;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Value, json};

pub use client::{AlipayClient, DEFAULT_GATEWAY};

use super::{
    AckBody, AckOutcome, Capabilities, ChannelNotification, ChannelPaymentState, ChannelRefund,
    CloseOutcome, CreatePayment, NotifiedStatus, NotifyKind, PayAction, PaymentChannel, RawNotify,
    RefundRequest,
};
use crate::{ChannelError, Fen, PayMethod, RefundStatus};

/// Alipay as a channel.
#[derive(Debug, Clone)]
pub struct AlipayChannel {
    client: AlipayClient,
    capabilities: Capabilities,
}

impl AlipayChannel {
    /// The channel over `client`.
    pub fn new(client: AlipayClient) -> Self {
        AlipayChannel {
            client,
            capabilities: Capabilities {
                methods: vec![
                    PayMethod::AlipayQr,
                    PayMethod::AlipayPage,
                    PayMethod::AlipayWap,
                    PayMethod::AlipayApp,
                ],
                partial_refunds: true,
                refund_notifications: false,
            },
        }
    }
}

fn yuan(v: &Value, field: &str) -> Result<Fen, ChannelError> {
    let s = v[field]
        .as_str()
        .ok_or_else(|| ChannelError::Decode(format!("missing {field}")))?;
    Fen::from_yuan_str(s).map_err(|e| ChannelError::Decode(format!("{field}: {e}")))
}

fn is(e: &ChannelError, sub_code: &str) -> bool {
    matches!(e, ChannelError::Rejected { code, .. } if code == sub_code)
}

#[async_trait]
impl PaymentChannel for AlipayChannel {
    fn id(&self) -> &str {
        "alipay"
    }

    fn label(&self) -> &str {
        "Alipay"
    }

    fn account(&self) -> &str {
        self.client.app_id()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create(&self, r: &CreatePayment) -> Result<PayAction, ChannelError> {
        let mut biz = json!({
            "out_trade_no": r.out_trade_no,
            "total_amount": r.amount.to_yuan_string(),
            "subject": r.subject,
        });
        if let Some(at) = r.expires_at {
            let t = at.to_offset(time::macros::offset!(+8));
            biz["time_expire"] = json!(format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ));
        }
        let mut extra = vec![("notify_url", r.notify_url.as_str())];
        if let Some(u) = &r.return_url {
            extra.push(("return_url", u.as_str()));
        }
        match r.method {
            PayMethod::AlipayQr => {
                let v = self
                    .client
                    .execute("alipay.trade.precreate", &biz, &extra)
                    .await?;
                Ok(PayAction::QrCode {
                    content: v["qr_code"]
                        .as_str()
                        .ok_or_else(|| ChannelError::Decode("missing qr_code".into()))?
                        .to_owned(),
                })
            }
            PayMethod::AlipayPage => {
                biz["product_code"] = json!("FAST_INSTANT_TRADE_PAY");
                Ok(PayAction::Redirect {
                    url: self
                        .client
                        .page_url("alipay.trade.page.pay", &biz, &extra)?,
                })
            }
            PayMethod::AlipayWap => {
                biz["product_code"] = json!("QUICK_WAP_WAY");
                Ok(PayAction::Redirect {
                    url: self.client.page_url("alipay.trade.wap.pay", &biz, &extra)?,
                })
            }
            PayMethod::AlipayApp => {
                biz["product_code"] = json!("QUICK_MSECURITY_PAY");
                Ok(PayAction::AlipayApp {
                    order_string: self.client.order_string(&biz, &extra)?,
                })
            }
            other => Err(ChannelError::Unsupported(format!("method {other}"))),
        }
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        let v = match self
            .client
            .execute(
                "alipay.trade.query",
                &json!({"out_trade_no": out_trade_no}),
                &[],
            )
            .await
        {
            Ok(v) => v,
            Err(e) if is(&e, "ACQ.TRADE_NOT_EXIST") => return Ok(ChannelPaymentState::NotFound),
            Err(e) => return Err(e),
        };
        Ok(match v["trade_status"].as_str().unwrap_or_default() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => ChannelPaymentState::Paid {
                transaction_id: v["trade_no"].as_str().unwrap_or_default().to_owned(),
                amount: yuan(&v, "total_amount")?,
            },
            "TRADE_CLOSED" => ChannelPaymentState::Closed,
            _ => ChannelPaymentState::Pending,
        })
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        match self
            .client
            .execute(
                "alipay.trade.close",
                &json!({"out_trade_no": out_trade_no}),
                &[],
            )
            .await
        {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, "ACQ.TRADE_NOT_EXIST") => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, "ACQ.TRADE_STATUS_ERROR") => match self.query(out_trade_no).await? {
                ChannelPaymentState::Paid { .. } => Ok(CloseOutcome::AlreadyPaid),
                _ => Ok(CloseOutcome::Closed),
            },
            Err(e) => Err(e),
        }
    }

    async fn refund(&self, r: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let mut biz = json!({
            "out_trade_no": r.out_trade_no,
            "refund_amount": r.amount.to_yuan_string(),
            "out_request_no": r.out_refund_no,
        });
        if let Some(reason) = &r.reason {
            biz["refund_reason"] = json!(reason);
        }
        let v = self
            .client
            .execute("alipay.trade.refund", &biz, &[])
            .await?;
        // Alipay refunds are synchronous: a `10000` answer (fund_change Y, or N for a retry of
        // a refund already made) means done.
        Ok(ChannelRefund {
            status: RefundStatus::Succeeded,
            channel_refund_id: v["trade_no"].as_str().map(str::to_owned),
        })
    }

    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<ChannelRefund, ChannelError> {
        let v = self
            .client
            .execute(
                "alipay.trade.fastpay.refund.query",
                &json!({"out_trade_no": out_trade_no, "out_request_no": out_refund_no}),
                &[],
            )
            .await?;
        let done = v["refund_status"] == "REFUND_SUCCESS" || v["refund_amount"].is_string();
        Ok(ChannelRefund {
            status: if done {
                RefundStatus::Succeeded
            } else {
                RefundStatus::Pending
            },
            channel_refund_id: v["trade_no"].as_str().map(str::to_owned),
        })
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        if raw.kind != NotifyKind::Payment {
            return Err(ChannelError::Unsupported(
                "alipay refunds complete synchronously".into(),
            ));
        }
        let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&raw.body)
            .map_err(|e| ChannelError::Decode(e.to_string()))?;
        let sign = form
            .get("sign")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ChannelError::Signature("the notification is not signed".into()))?;
        let content = rsa2::canonical(
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            rsa2::NOTIFY_EXCLUDES,
        );
        self.client
            .alipay_public_key()
            .verify(&content, sign)
            .map_err(|e| ChannelError::Signature(e.to_string()))?;
        let get = |k: &str| {
            form.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| ChannelError::Decode(format!("missing {k}")))
        };
        let amount = Fen::from_yuan_str(&get("total_amount")?)
            .map_err(|e| ChannelError::Decode(format!("total_amount: {e}")))?;
        let status = match get("trade_status")?.as_str() {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => NotifiedStatus::Paid,
            "TRADE_CLOSED" => NotifiedStatus::Closed,
            _ => NotifiedStatus::Pending,
        };
        Ok(ChannelNotification::Payment {
            out_trade_no: get("out_trade_no")?,
            transaction_id: get("trade_no")?,
            amount,
            account: get("app_id")?,
            status,
        })
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        AckBody {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: match outcome {
                AckOutcome::Accepted => "success".to_owned(),
                AckOutcome::Retry(_) => "fail".to_owned(),
            },
        }
    }
}
