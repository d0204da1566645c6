//! The `wechat` channel, over the `wechat-pay` client: JSAPI, Mini Program, Native, H5 and APP
//! payments; refunds complete asynchronously with an encrypted notification.

mod transformers;

use async_trait::async_trait;
use wechat_pay::{
    Client, CloseOrder, ErrCode, Error as WxError, NotifyReply, OrderId, OrderQuery, Refund,
    RefundQuery, RefundQueryBy,
};

use super::{
    AckBody, AckOutcome, Capabilities, ChannelNotification, ChannelPaymentState, ChannelRefund,
    CloseOutcome, CreatePayment, NotifiedStatus, NotifyKind, PayAction, PaymentChannel, RawNotify,
    RefundRequest,
};
use crate::{ChannelError, PayMethod, RefundStatus};

/// WeChat Pay as a channel: one app id (Official Account, Mini Program or mobile app) under a
/// merchant. A merchant with several apps registers one channel per app, each under its own id.
#[derive(Debug, Clone)]
pub struct WechatChannel {
    id: String,
    client: Client,
    account: String,
    capabilities: Capabilities,
}

impl WechatChannel {
    /// The channel `wechat` over `client`, with every WeChat method (whose app id and merchant
    /// id are the channel's account).
    pub fn new(client: Client) -> Self {
        Self::with_methods(
            client,
            "wechat",
            vec![
                PayMethod::WechatJsapi,
                PayMethod::WechatMiniProgram,
                PayMethod::WechatNative,
                PayMethod::WechatH5,
                PayMethod::WechatApp,
            ],
        )
    }

    /// The channel `wechat` for an Official Account app: JSAPI (in WeChat's browser), Native
    /// (QR), H5 and APP.
    pub fn official_account(client: Client) -> Self {
        Self::with_methods(
            client,
            "wechat",
            vec![
                PayMethod::WechatJsapi,
                PayMethod::WechatNative,
                PayMethod::WechatH5,
                PayMethod::WechatApp,
            ],
        )
    }

    /// The channel `wechat_mini` for a Mini Program app: Mini Program payments.
    pub fn mini_program(client: Client) -> Self {
        Self::with_methods(client, "wechat_mini", vec![PayMethod::WechatMiniProgram])
    }

    fn with_methods(client: Client, id: &str, methods: Vec<PayMethod>) -> Self {
        WechatChannel {
            id: id.to_owned(),
            account: format!("{}/{}", client.app_id(), client.mch_id()),
            client,
            capabilities: Capabilities {
                methods,
                partial_refunds: true,
                refund_notifications: true,
            },
        }
    }

    /// The same channel registered under `id` (its notifications arrive at `/notify/{id}`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl PaymentChannel for WechatChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &str {
        "WeChat Pay"
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create(&self, request: &CreatePayment) -> Result<PayAction, ChannelError> {
        let order = transformers::unified_order(request)?;
        let created = self
            .client
            .execute(&order)
            .await
            .map_err(transformers::error)?;
        transformers::pay_action(&self.client, request.method, created)
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        match self
            .client
            .execute(&OrderQuery::new(OrderId::OutTradeNo(
                out_trade_no.to_owned(),
            )))
            .await
        {
            Ok(q) => Ok(transformers::payment_state(&q)),
            Err(WxError::Business {
                err_code: ErrCode::OrderNotExist,
                ..
            }) => Ok(ChannelPaymentState::NotFound),
            Err(e) => Err(transformers::error(e)),
        }
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        match self.client.execute(&CloseOrder::new(out_trade_no)).await {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(WxError::Business {
                err_code: ErrCode::OrderPaid,
                ..
            }) => Ok(CloseOutcome::AlreadyPaid),
            Err(WxError::Business {
                err_code: ErrCode::OrderClosed | ErrCode::OrderNotExist,
                ..
            }) => Ok(CloseOutcome::Closed),
            Err(e) => Err(transformers::error(e)),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let mut refund = Refund::new(
            OrderId::OutTradeNo(request.out_trade_no.clone()),
            request.out_refund_no.clone(),
            request.total,
            request.amount,
        );
        if let Some(reason) = &request.reason {
            refund = refund.refund_desc(reason.clone());
        }
        if let Some(url) = &request.notify_url {
            refund = refund.notify_url(url.clone());
        }
        let r = self
            .client
            .execute(&refund)
            .await
            .map_err(transformers::refund_error)?;
        Ok(ChannelRefund {
            status: RefundStatus::Pending,
            channel_refund_id: Some(r.refund_id),
        })
    }

    async fn query_refund(
        &self,
        _out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        let q = match self
            .client
            .execute(&RefundQuery::new(RefundQueryBy::OutRefundNo(
                out_refund_no.to_owned(),
            )))
            .await
        {
            Ok(q) => q,
            Err(WxError::Business {
                err_code: ErrCode::RefundNotExist,
                ..
            }) => return Ok(None),
            Err(e) => return Err(transformers::error(e)),
        };
        let record = q
            .refunds
            .into_iter()
            .find(|r| r.out_refund_no == out_refund_no)
            .ok_or_else(|| {
                ChannelError::Decode(format!("refund {out_refund_no} missing from the answer"))
            })?;
        Ok(Some(ChannelRefund {
            status: transformers::refund_status(&record.refund_status),
            channel_refund_id: Some(record.refund_id),
        }))
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        match raw.kind {
            NotifyKind::Payment => match self.client.verify_payment_notification(&raw.body).await {
                Ok(n) => Ok(ChannelNotification::Payment {
                    account: format!("{}/{}", n.app_id, n.mch_id),
                    out_trade_no: n.out_trade_no,
                    transaction_id: n.transaction_id,
                    amount: n.total_fee,
                    currency: n.fee_type.unwrap_or_else(|| "CNY".to_owned()),
                    status: NotifiedStatus::Paid,
                }),
                // Authentic, and the payment failed: recorded (and so acknowledged).
                Err(WxError::PaymentFailed(f)) => Ok(ChannelNotification::Payment {
                    account: format!("{}/{}", f.app_id, f.mch_id),
                    out_trade_no: f.out_trade_no,
                    transaction_id: f.transaction_id.unwrap_or_default(),
                    amount: f.total_fee.unwrap_or_default(),
                    currency: f
                        .raw
                        .get("fee_type")
                        .filter(|c| !c.is_empty())
                        .unwrap_or("CNY")
                        .to_owned(),
                    status: NotifiedStatus::Failed,
                }),
                Err(e) => Err(transformers::notify_error(e)),
            },
            NotifyKind::Refund => {
                let n = self
                    .client
                    .decrypt_refund_notification(&raw.body)
                    .await
                    .map_err(transformers::notify_error)?;
                Ok(ChannelNotification::Refund {
                    account: format!("{}/{}", n.app_id, n.mch_id),
                    out_trade_no: n.out_trade_no,
                    out_refund_no: n.out_refund_no,
                    channel_refund_id: n.refund_id,
                    amount: n.refund_fee,
                    succeeded: transformers::refund_status(&n.refund_status)
                        == RefundStatus::Succeeded,
                })
            }
        }
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        let reply = match outcome {
            AckOutcome::Accepted => NotifyReply::success(),
            AckOutcome::Retry(reason) => NotifyReply::fail(reason.clone()),
        };
        AckBody {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body: reply.to_xml(),
        }
    }
}
