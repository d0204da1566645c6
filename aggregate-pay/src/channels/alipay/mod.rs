//! The `alipay` channel (feature `alipay`): QR (precreate), web page, mobile web, APP and Mini
//! Program (`alipay.trade.create` for the logged-in buyer) payments over the `alipay` protocol
//! crate, in public-key or certificate mode (the client's). Wire types and conversions live in
//! `transformers.rs`; amounts stay integers of fen on both sides of this edge.

mod bill;
mod transformers;

use async_trait::async_trait;

use alipay::{
    Buyer, NotifyReply, RefundQuery, SubCode, TradeClose, TradeCreate, TradePrecreate, TradeQuery,
    TradeRef, TradeRefund,
};
pub use alipay::{Client as AlipayClient, DEFAULT_GATEWAY};

use super::{
    AckBody, AckOutcome, BillAvailability, BillSink, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, NewPayment, NotifyKind, PayAction,
    PaymentChannel, RawNotify, RefundRequest,
};
use crate::{ChannelError, PayMethod, RefundStatus};
use transformers::{error, is};

/// Alipay as a channel.
#[derive(Debug, Clone)]
pub struct AlipayChannel {
    id: String,
    client: AlipayClient,
    capabilities: Capabilities,
}

impl AlipayChannel {
    /// The channel `alipay` over `client`.
    pub fn new(client: AlipayClient) -> Self {
        AlipayChannel {
            id: "alipay".to_owned(),
            client,
            capabilities: Capabilities {
                methods: vec![
                    PayMethod::AlipayQr,
                    PayMethod::AlipayPage,
                    PayMethod::AlipayWap,
                    PayMethod::AlipayApp,
                    PayMethod::AlipayMiniProgram,
                ],
                partial_refunds: true,
                refund_notifications: false,
            },
        }
    }
}

impl AlipayChannel {
    /// The same channel registered under `id` (its notifications arrive at `/notify/{id}`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
}

impl AlipayChannel {
    /// A Mini Program payment: the trade created for the buyer, whose id is a user id (`2088`
    /// and 12 digits) or an open id.
    async fn create_for_buyer(&self, r: &NewPayment) -> Result<PayAction, ChannelError> {
        let payer = r.open_id.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
            ChannelError::Unsupported("a Mini Program payment needs its buyer".into())
        })?;
        let user_id = payer.len() == 16
            && payer.starts_with("2088")
            && payer.bytes().all(|b| b.is_ascii_digit());
        let buyer = if user_id {
            Buyer::UserId(payer)
        } else {
            Buyer::OpenId(payer)
        };
        let mut request = TradeCreate::new(&r.out_trade_no, r.amount, &r.subject, buyer)
            .notify_url(&r.notify_url);
        if let Some(at) = r.expires_at {
            request = request.expires_at(at);
        }
        let created = self.client.execute(&request).await.map_err(error)?;
        Ok(PayAction::AlipayTradePay {
            trade_no: created.trade_no,
        })
    }
}

fn by_number(out_trade_no: &str) -> TradeRef {
    TradeRef::OutTradeNo(out_trade_no.to_owned())
}

#[async_trait]
impl PaymentChannel for AlipayChannel {
    fn id(&self) -> &str {
        &self.id
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

    async fn create(&self, r: &NewPayment) -> Result<PayAction, ChannelError> {
        if let Some(page) = transformers::checkout(r) {
            return transformers::checkout_action(&self.client, r, &page);
        }
        if r.method == PayMethod::AlipayMiniProgram {
            return self.create_for_buyer(r).await;
        }
        if r.method != PayMethod::AlipayQr {
            return Err(ChannelError::Unsupported(format!("method {}", r.method)));
        }
        let mut request =
            TradePrecreate::new(&r.out_trade_no, r.amount, &r.subject).notify_url(&r.notify_url);
        if let Some(at) = r.expires_at {
            request = request.expires_at(at);
        }
        let created = self.client.execute(&request).await.map_err(error)?;
        Ok(PayAction::QrCode {
            content: created.qr_code,
        })
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        match self
            .client
            .execute(&TradeQuery::new(by_number(out_trade_no)))
            .await
        {
            Ok(t) => Ok(transformers::payment_state(
                &t.trade_status,
                &t.trade_no,
                t.total_amount,
            )),
            Err(e) if is(&e, &SubCode::TradeNotExist) => Ok(ChannelPaymentState::NotFound),
            Err(e) => Err(error(e)),
        }
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        match self
            .client
            .execute(&TradeClose::new(by_number(out_trade_no)))
            .await
        {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, &SubCode::TradeNotExist) => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, &SubCode::TradeStatusError) => match self.query(out_trade_no).await? {
                ChannelPaymentState::Paid { .. } => Ok(CloseOutcome::AlreadyPaid),
                _ => Ok(CloseOutcome::Closed),
            },
            Err(e) => Err(error(e)),
        }
    }

    async fn refund(&self, r: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let mut request = TradeRefund::new(by_number(&r.out_trade_no), &r.out_refund_no, r.amount);
        if let Some(reason) = &r.reason {
            request = request.reason(reason);
        }
        let done = self
            .client
            .execute(&request)
            .await
            .map_err(transformers::refund_error)?;
        // Alipay refunds are synchronous, but only `fund_change = Y` says money moved for this
        // request. `N` is also what a retry of a refund already made answers — and what a
        // request that moved nothing answers: Alipay's advice is to query the refund before
        // counting it. Until the query confirms it, it is pending (queried again later).
        if done.fund_change.as_deref() == Some("Y") {
            return Ok(ChannelRefund {
                status: RefundStatus::Succeeded,
                channel_refund_id: Some(done.trade_no),
            });
        }
        Ok(self
            .query_refund(&r.out_trade_no, &r.out_refund_no)
            .await?
            .unwrap_or(ChannelRefund {
                status: RefundStatus::Pending,
                channel_refund_id: Some(done.trade_no),
            }))
    }

    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        let found = self
            .client
            .execute(&RefundQuery::new(by_number(out_trade_no), out_refund_no))
            .await
            .map_err(error)?;
        // Alipay: an answer without the refund means it was not made; sending it again with the
        // same out_request_no is how to retry.
        Ok(found.is_refunded().then_some(ChannelRefund {
            status: RefundStatus::Succeeded,
            channel_refund_id: found.trade_no,
        }))
    }

    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        bill::download(&self.client, day, to).await
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        bill::read(file, each)
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        if raw.kind != NotifyKind::Payment {
            return Err(ChannelError::Unsupported(
                "alipay refunds complete synchronously".into(),
            ));
        }
        let n = self.client.verify_notification(&raw.body).map_err(error)?;
        Ok(ChannelNotification::Payment {
            // Alipay's notifications are in yuan (fen here) of CNY.
            currency: "CNY".to_owned(),
            status: transformers::notified(&n.trade_status),
            amount: n.total_amount,
            out_trade_no: n.out_trade_no,
            transaction_id: n.trade_no,
            account: n.app_id,
        })
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        AckBody {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: match outcome {
                AckOutcome::Accepted => NotifyReply::Success,
                AckOutcome::Retry(_) => NotifyReply::Fail,
            }
            .as_str()
            .to_owned(),
        }
    }
}
