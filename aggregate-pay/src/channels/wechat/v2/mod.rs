//! The `wechat` channel over API v2 (XML, MD5 / HMAC-SHA256): unified order, order query, close,
//! refund and refund query; notifications verified with the API key, acknowledged in XML. Wire
//! values and the refund codes that are final: `transformers.rs`.

mod transformers;

use async_trait::async_trait;

use wechat_pay::{
    BillType, Client, CloseOrder, DownloadBill, ErrCode, Error as WxError, Micropay,
    MicropayOutcome, NotifyReply, OrderId, OrderQuery, Recall, Refund, RefundQuery, RefundQueryBy,
    Reverse,
};

use super::{Identity, bill};
use crate::channels::{
    AckBody, AckOutcome, BillAvailability, BillSink, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, CodeCharge, NewPayment, NotifiedStatus,
    NotifyKind, PayAction, PaymentChannel, RawNotify, RefundRequest, Reversal,
};
use crate::{ChannelError, PaymentCode, RefundStatus};

async fn create(client: &Client, request: &NewPayment) -> Result<PayAction, ChannelError> {
    let order = transformers::unified_order(request)?;
    let created = client.execute(&order).await.map_err(transformers::error)?;
    transformers::pay_action(client, request.method, created)
}

async fn query(client: &Client, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
    match client
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

async fn close(client: &Client, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
    match client.execute(&CloseOrder::new(out_trade_no)).await {
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

async fn charge_code(
    client: &Client,
    request: &NewPayment,
    code: &PaymentCode,
) -> Result<CodeCharge, ChannelError> {
    let micropay = Micropay::new(
        request.subject.clone(),
        request.out_trade_no.clone(),
        request.amount,
        request.client_ip.clone(),
        code.expose(),
    );
    match client.execute(&micropay).await {
        Ok(MicropayOutcome::Paid(paid)) => Ok(CodeCharge::Paid {
            transaction_id: paid.transaction_id,
            amount: paid.total_fee,
        }),
        Ok(_) => Ok(CodeCharge::Waiting),
        Err(WxError::Business {
            err_code,
            err_code_des,
        }) if transformers::declines_code(&err_code) => Ok(CodeCharge::Declined {
            code: err_code.to_string(),
            message: err_code_des,
        }),
        Err(e) => Err(transformers::error(e)),
    }
}

async fn reverse(client: &Client, out_trade_no: &str) -> Result<Reversal, ChannelError> {
    match client
        .execute(&Reverse::new(OrderId::OutTradeNo(out_trade_no.to_owned())))
        .await
    {
        Ok(r) if r.recall == Recall::Again => Ok(Reversal::Again),
        Ok(_) => Ok(Reversal::Done),
        Err(WxError::Business {
            err_code: ErrCode::OrderNotExist,
            ..
        }) => Ok(Reversal::Done),
        Err(e) => Err(transformers::error(e)),
    }
}

async fn refund(client: &Client, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
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
    let r = client
        .execute(&refund)
        .await
        .map_err(transformers::refund_error)?;
    Ok(ChannelRefund {
        status: RefundStatus::Pending,
        channel_refund_id: Some(r.refund_id),
    })
}

async fn query_refund(
    client: &Client,
    out_refund_no: &str,
) -> Result<Option<ChannelRefund>, ChannelError> {
    let q = match client
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

async fn verify_notify(
    client: &Client,
    raw: &RawNotify,
) -> Result<ChannelNotification, ChannelError> {
    match raw.kind {
        NotifyKind::Payment => match client.verify_payment_notification(&raw.body).await {
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
            let n = client
                .decrypt_refund_notification(&raw.body)
                .await
                .map_err(transformers::notify_error)?;
            Ok(ChannelNotification::Refund {
                account: format!("{}/{}", n.app_id, n.mch_id),
                out_trade_no: n.out_trade_no,
                out_refund_no: n.out_refund_no,
                channel_refund_id: n.refund_id,
                amount: n.refund_fee,
                status: transformers::refund_status(&n.refund_status),
            })
        }
    }
}

fn ack(outcome: &AckOutcome) -> AckBody {
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

/// WeChat Pay API v2 as a channel (register it through [`super::WechatChannel`]).
#[derive(Debug, Clone)]
pub struct WechatV2Channel {
    client: Client,
    identity: Identity,
}

impl WechatV2Channel {
    pub(super) fn new(client: Client, identity: Identity) -> Self {
        WechatV2Channel { client, identity }
    }
}

#[async_trait]
impl PaymentChannel for WechatV2Channel {
    fn id(&self) -> &str {
        &self.identity.id
    }

    fn label(&self) -> &str {
        "WeChat Pay"
    }

    fn account(&self) -> &str {
        &self.identity.account
    }

    fn capabilities(&self) -> &Capabilities {
        &self.identity.capabilities
    }

    async fn create(&self, request: &NewPayment) -> Result<PayAction, ChannelError> {
        create(&self.client, request).await
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        query(&self.client, out_trade_no).await
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        close(&self.client, out_trade_no).await
    }

    async fn charge_code(
        &self,
        request: &NewPayment,
        code: &PaymentCode,
    ) -> Result<CodeCharge, ChannelError> {
        charge_code(&self.client, request, code).await
    }

    async fn reverse(&self, out_trade_no: &str) -> Result<Reversal, ChannelError> {
        reverse(&self.client, out_trade_no).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        refund(&self.client, request).await
    }

    async fn query_refund(
        &self,
        _out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        query_refund(&self.client, out_refund_no).await
    }

    /// API v2 has no such call: WeChat's answer is the merchant platform's page.
    async fn resolve_abnormal_refund(
        &self,
        _out_refund_no: &str,
        _channel_refund_id: &str,
        _to: &crate::channels::AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        Err(ChannelError::Unsupported(
            "WeChat Pay API v2 has no abnormal-refund call: resolve it on the merchant platform \
             (pay.weixin.qq.com, 交易中心 → 退款管理 → 异常退款)"
                .into(),
        ))
    }

    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        let request = DownloadBill::new(day, BillType::All).gzip();
        match self.client.download_to(&request, to).await {
            Ok(_) => Ok(BillAvailability::Ready),
            Err(WxError::Protocol { return_msg }) => bill::v2_availability(&return_msg)
                .ok_or_else(|| transformers::error(WxError::Protocol { return_msg })),
            Err(e) => Err(transformers::error(e)),
        }
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        bill::read(file, self.client.app_id(), each)
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        verify_notify(&self.client, raw).await
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        ack(outcome)
    }
}
