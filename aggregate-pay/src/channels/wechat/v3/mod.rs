//! The `wechat` channel over API v3 (JSON, RSA signatures): transactions (JSAPI / Mini Program,
//! Native, H5, APP), query, close, refunds and abnormal refunds; notifications verified from
//! their headers before the resource is decrypted, acknowledged with 204 (or a 5xx with
//! `{code, message}` to have them sent again). Wire values and the refund codes that are final:
//! `transformers.rs`.

mod transformers;

use async_trait::async_trait;

use wechat_pay::v3::{
    AbnormalRefund, AppOrder, Client, CloseTransaction, CreateRefund, H5Order, JsapiOrder,
    NativeOrder, Notification, OrderRequest, QueryRefund, QueryTransaction, TradeBill,
    TransactionRef, V3ErrorCode,
};

use crate::channels::{
    AbnormalRefundResolution, AckBody, AckOutcome, BillAvailability, BillSink, Capabilities,
    ChannelNotification, ChannelPaymentState, ChannelRefund, CloseOutcome, NewPayment, NotifyKind,
    PayAction, PaymentChannel, RawNotify, RefundRequest,
};
use crate::{ChannelError, PayMethod};
use transformers::{error, refund_error, refund_status, v3_code};

use super::{Identity, bill, open_id};

async fn create(client: &Client, app_id: &str, r: &NewPayment) -> Result<PayAction, ChannelError> {
    let mut order = OrderRequest::new(
        app_id,
        r.subject.chars().take(127).collect::<String>(),
        r.out_trade_no.clone(),
        r.amount,
        r.notify_url.clone(),
    );
    if let Some(at) = r.expires_at {
        order = order.time_expire(at);
    }
    Ok(match r.method {
        PayMethod::WechatJsapi | PayMethod::WechatMiniProgram => {
            let openid = open_id(r)?;
            let prepay = client
                .execute(&JsapiOrder { order, openid })
                .await
                .map_err(error)?;
            PayAction::WechatJsapi {
                params: client
                    .jsapi_params(app_id, &prepay.prepay_id)
                    .map_err(error)?,
            }
        }
        PayMethod::WechatApp => {
            let prepay = client.execute(&AppOrder(order)).await.map_err(error)?;
            PayAction::WechatApp {
                params: client
                    .app_params(app_id, &prepay.prepay_id)
                    .map_err(error)?,
            }
        }
        PayMethod::WechatNative => PayAction::QrCode {
            content: client
                .execute(&NativeOrder(order))
                .await
                .map_err(error)?
                .code_url,
        },
        PayMethod::WechatH5 => PayAction::Redirect {
            url: client
                .execute(&H5Order {
                    order,
                    payer_client_ip: r.client_ip.clone(),
                    h5_type: "Wap".into(),
                })
                .await
                .map_err(error)?
                .h5_url,
        },
        other => return Err(ChannelError::Unsupported(format!("method {other}"))),
    })
}

async fn query(client: &Client, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
    let t = match client
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(
            out_trade_no.to_owned(),
        )))
        .await
    {
        Ok(t) => t,
        Err(e) if v3_code(&e) == Some(&V3ErrorCode::OrderNotExist) => {
            return Ok(ChannelPaymentState::NotFound);
        }
        Err(e) => return Err(error(e)),
    };
    Ok(transformers::payment_state(t))
}

async fn close(client: &Client, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
    match client
        .execute(&CloseTransaction {
            out_trade_no: out_trade_no.to_owned(),
        })
        .await
    {
        Ok(_) => Ok(CloseOutcome::Closed),
        Err(e) => match v3_code(&e) {
            Some(V3ErrorCode::OrderPaid) => Ok(CloseOutcome::AlreadyPaid),
            Some(V3ErrorCode::OrderClosed | V3ErrorCode::OrderNotExist) => Ok(CloseOutcome::Closed),
            _ => Err(error(e)),
        },
    }
}

async fn resolve_abnormal_refund(
    client: &Client,
    out_refund_no: &str,
    refund_id: &str,
    to: &AbnormalRefundResolution,
) -> Result<ChannelRefund, ChannelError> {
    let to = transformers::abnormal_refund_to(to);
    let r = client
        .execute(&AbnormalRefund {
            refund_id: refund_id.to_owned(),
            out_refund_no: out_refund_no.to_owned(),
            to,
            sub_mchid: None,
        })
        .await
        .map_err(error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

async fn refund(client: &Client, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
    let mut refund = CreateRefund::new(
        TransactionRef::OutTradeNo(request.out_trade_no.clone()),
        request.out_refund_no.clone(),
        request.amount,
        request.total,
    );
    if let Some(reason) = &request.reason {
        refund = refund.reason(reason.chars().take(80).collect::<String>());
    }
    if let Some(url) = &request.notify_url {
        refund = refund.notify_url(url.clone());
    }
    let r = client.execute(&refund).await.map_err(refund_error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

async fn query_refund(
    client: &Client,
    out_refund_no: &str,
) -> Result<Option<ChannelRefund>, ChannelError> {
    match client.execute(&QueryRefund::new(out_refund_no)).await {
        Ok(r) => Ok(Some(ChannelRefund {
            status: refund_status(&r.status),
            channel_refund_id: Some(r.refund_id),
        })),
        Err(e) if v3_code(&e) == Some(&V3ErrorCode::ResourceNotExists) => Ok(None),
        Err(e) => Err(error(e)),
    }
}

async fn verify_notify(
    client: &Client,
    account: &str,
    raw: &RawNotify,
) -> Result<ChannelNotification, ChannelError> {
    let (envelope, event) = client
        .notification(|name| raw.header(name), &raw.body)
        .await
        .map_err(error)?;
    match (raw.kind, event) {
        (NotifyKind::Payment, Notification::Transaction(t)) => {
            let amount = t.amount.ok_or_else(|| {
                ChannelError::Decode(format!("{}: no amount", envelope.event_type))
            })?;
            Ok(ChannelNotification::Payment {
                account: format!("{}/{}", t.appid, t.mchid),
                out_trade_no: t.out_trade_no,
                transaction_id: t.transaction_id.unwrap_or_default(),
                amount: amount.total,
                currency: amount.currency,
                status: transformers::notified(&t.trade_state),
            })
        }
        (NotifyKind::Refund, Notification::Refund(r)) => Ok(ChannelNotification::Refund {
            // A refund names only the merchant: it is this channel's when the merchant is.
            account: if r.mchid == client.mch_id() {
                account.to_owned()
            } else {
                format!("?/{}", r.mchid)
            },
            out_trade_no: r.out_trade_no,
            out_refund_no: r.out_refund_no,
            channel_refund_id: r.refund_id,
            amount: r.amount.refund,
            status: refund_status(&r.refund_status),
        }),
        (kind, _) => Err(ChannelError::Decode(format!(
            "{} is not a {kind:?} notification",
            envelope.event_type
        ))),
    }
}

fn ack(outcome: &AckOutcome) -> AckBody {
    let (status, body) = match outcome {
        AckOutcome::Accepted => wechat_pay::v3::notify::reply_success(),
        AckOutcome::Retry(reason) => wechat_pay::v3::notify::reply_fail(reason),
    };
    AckBody {
        status,
        content_type: "application/json",
        body,
    }
}

/// WeChat Pay API v3 as a channel (register it through [`super::WechatChannel`]).
#[derive(Debug, Clone)]
pub struct WechatV3Channel {
    client: Client,
    app_id: String,
    identity: Identity,
}

impl WechatV3Channel {
    pub(super) fn new(client: Client, app_id: String, identity: Identity) -> Self {
        WechatV3Channel {
            client,
            app_id,
            identity,
        }
    }
}

#[async_trait]
impl PaymentChannel for WechatV3Channel {
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
        create(&self.client, &self.app_id, request).await
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        query(&self.client, out_trade_no).await
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        close(&self.client, out_trade_no).await
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

    async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        channel_refund_id: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        resolve_abnormal_refund(&self.client, out_refund_no, channel_refund_id, to).await
    }

    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        let request = TradeBill {
            bill_date: day,
            bill_type: wechat_pay::BillType::All,
            gzip: true,
            sub_mchid: None,
        };
        let link = match self.client.execute(&request).await {
            Ok(link) => link,
            Err(wechat_pay::Error::V3Api {
                code,
                status,
                message,
                detail,
            }) => {
                return bill::v3_availability(code.as_str()).ok_or_else(|| {
                    error(wechat_pay::Error::V3Api {
                        code,
                        status,
                        message,
                        detail,
                    })
                });
            }
            Err(e) => return Err(error(e)),
        };
        self.client.download_to(&link, to).await.map_err(error)?;
        Ok(BillAvailability::Ready)
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        bill::read(file, &self.app_id, each)
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        verify_notify(&self.client, &self.identity.account, raw).await
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        ack(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_v3s() {
        let ok = ack(&AckOutcome::Accepted);
        assert_eq!((ok.status, ok.body.as_str()), (204, ""));
        let retry = ack(&AckOutcome::Retry("busy".into()));
        assert!(retry.status >= 500, "{retry:?}");
        assert!(retry.body.contains("FAIL"), "{retry:?}");
    }
}
