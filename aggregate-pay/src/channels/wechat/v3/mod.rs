//! The `wechat` channel over API v3 (JSON, RSA signatures): transactions (JSAPI / Mini Program,
//! Native, H5, APP), query, close, refunds and abnormal refunds; notifications verified from
//! their headers before the resource is decrypted, acknowledged with 204 (or a 5xx with
//! `{code, message}` to have them sent again). Wire values and the refund codes that are final:
//! `transformers.rs`.

mod transformers;

use async_trait::async_trait;

use wechat_pay::v3::{
    AbnormalRefund, AddReceiver, AppOrder, Client, CloseTransaction, CodePayOrder, CreateRefund,
    CreateReturn, CreateSharing, H5Order, JsapiOrder, NativeOrder, Notification, OrderRequest,
    Partner, PartnerCloseTransaction, PartnerQueryTransaction, QueryRefund, QueryTransaction,
    ReceiverType, RelationType, ReturnResult, ReverseTransaction, Share, ShareResult, SharingRef,
    SharingState, TradeBill, TransactionRef, UnfreezeSharing, V3ErrorCode,
};

use crate::channels::{
    AbnormalRefundResolution, AckBody, AckOutcome, BillAvailability, BillSink, Capabilities,
    ChannelNotification, ChannelPaymentState, ChannelRefund, CloseOutcome, CodeCharge, NewPayment,
    NotifyKind, PayAction, PaymentChannel, RawNotify, RefundRequest, Reversal, ShareAnswer,
    ShareRequest, ShareReturn,
};
use crate::{ChannelError, PayMethod, PaymentCode};
use transformers::{error, refund_error, refund_status, v3_code};

use super::{Identity, bill, open_id};

/// Who a request is for: the merchant itself, or (service-provider mode) its sub-merchant.
type Sub<'a> = Option<&'a str>;

/// The order of payment `r`: for a sub-merchant in partner mode, its money held back for the
/// platform's fee when there is one.
fn order_of(app_id: &str, sub: Sub<'_>, r: &NewPayment) -> OrderRequest {
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
    if let Some(sub) = sub {
        order = order.for_sub_merchant(Partner::new(sub));
        if r.platform_fee > crate::Fen::ZERO {
            // Held back until the fee is shared (`sharing`), then released to the sub-merchant.
            order = order.profit_sharing();
        }
    }
    order
}

async fn create(
    client: &Client,
    app_id: &str,
    sub: Sub<'_>,
    r: &NewPayment,
) -> Result<PayAction, ChannelError> {
    let order = order_of(app_id, sub, r);
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

async fn query(
    client: &Client,
    sub: Sub<'_>,
    out_trade_no: &str,
) -> Result<ChannelPaymentState, ChannelError> {
    let by = TransactionRef::OutTradeNo(out_trade_no.to_owned());
    let answer = match sub {
        Some(sub) => {
            client
                .execute(&PartnerQueryTransaction {
                    by,
                    sub_mchid: sub.to_owned(),
                })
                .await
        }
        None => client.execute(&QueryTransaction(by)).await,
    };
    let t = match answer {
        Ok(t) => t,
        Err(e) if v3_code(&e) == Some(&V3ErrorCode::OrderNotExist) => {
            return Ok(ChannelPaymentState::NotFound);
        }
        Err(e) => return Err(error(e)),
    };
    Ok(transformers::payment_state(t))
}

async fn close(
    client: &Client,
    sub: Sub<'_>,
    out_trade_no: &str,
) -> Result<CloseOutcome, ChannelError> {
    let out_trade_no = out_trade_no.to_owned();
    let answer = match sub {
        Some(sub) => {
            client
                .execute(&PartnerCloseTransaction {
                    out_trade_no,
                    sub_mchid: sub.to_owned(),
                })
                .await
        }
        None => client.execute(&CloseTransaction { out_trade_no }).await,
    };
    match answer {
        Ok(_) => Ok(CloseOutcome::Closed),
        Err(e) => match v3_code(&e) {
            Some(V3ErrorCode::OrderPaid) => Ok(CloseOutcome::AlreadyPaid),
            Some(V3ErrorCode::OrderClosed | V3ErrorCode::OrderNotExist) => Ok(CloseOutcome::Closed),
            _ => Err(error(e)),
        },
    }
}

async fn charge_code(
    client: &Client,
    app_id: &str,
    sub: Sub<'_>,
    r: &NewPayment,
    code: &PaymentCode,
) -> Result<CodeCharge, ChannelError> {
    let order = CodePayOrder {
        order: order_of(app_id, sub, r),
        auth_code: code.expose().to_owned(),
        device_id: None,
        device_ip: Some(r.client_ip.clone()).filter(|ip| !ip.is_empty()),
        store_out_id: None,
    };
    match client.execute(&order).await {
        Ok(t) => Ok(match transformers::payment_state(t) {
            ChannelPaymentState::Paid {
                transaction_id,
                amount,
            } => CodeCharge::Paid {
                transaction_id,
                amount,
            },
            ChannelPaymentState::Failed | ChannelPaymentState::Closed => CodeCharge::Declined {
                code: "PAYERROR".into(),
                message: "the payment failed".into(),
            },
            _ => CodeCharge::Waiting,
        }),
        Err(e) => match v3_code(&e) {
            Some(V3ErrorCode::UserPaying) => Ok(CodeCharge::Waiting),
            Some(code) if transformers::declines_code(code) => {
                let message = match &e {
                    wechat_pay::Error::V3Api { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                Ok(CodeCharge::Declined {
                    code: code.to_string(),
                    message,
                })
            }
            _ => Err(error(e)),
        },
    }
}

async fn reverse(
    client: &Client,
    app_id: &str,
    sub: Sub<'_>,
    out_trade_no: &str,
) -> Result<Reversal, ChannelError> {
    let request = ReverseTransaction {
        app_id: app_id.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        partner: sub.map(Partner::new),
    };
    match client.execute(&request).await {
        Ok(_) => Ok(Reversal::Done),
        Err(e) => match v3_code(&e) {
            Some(V3ErrorCode::OrderNotExist | V3ErrorCode::ResourceNotExists) => Ok(Reversal::Done),
            _ => Err(error(e)),
        },
    }
}

async fn resolve_abnormal_refund(
    client: &Client,
    sub: Sub<'_>,
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
            sub_mchid: sub.map(str::to_owned),
        })
        .await
        .map_err(error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

async fn refund(
    client: &Client,
    sub: Sub<'_>,
    request: &RefundRequest,
) -> Result<ChannelRefund, ChannelError> {
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
    if let Some(sub) = sub {
        refund = refund.sub_mchid(sub);
    }
    let r = client.execute(&refund).await.map_err(refund_error)?;
    Ok(ChannelRefund {
        status: refund_status(&r.status),
        channel_refund_id: Some(r.refund_id),
    })
}

async fn query_refund(
    client: &Client,
    sub: Sub<'_>,
    out_refund_no: &str,
) -> Result<Option<ChannelRefund>, ChannelError> {
    let mut query = QueryRefund::new(out_refund_no);
    if let Some(sub) = sub {
        query.sub_mchid = Some(sub.to_owned());
    }
    match client.execute(&query).await {
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
                account: match &t.sub_mchid {
                    Some(sub) => format!("{}/{}/{sub}", t.appid, t.mchid),
                    None => format!("{}/{}", t.appid, t.mchid),
                },
                out_trade_no: t.out_trade_no,
                transaction_id: t.transaction_id.unwrap_or_default(),
                amount: amount.total,
                currency: amount.currency,
                status: transformers::notified(&t.trade_state),
            })
        }
        (NotifyKind::Refund, Notification::Refund(r)) => Ok(ChannelNotification::Refund {
            // A refund names only the merchant (and the sub-merchant): it is this channel's when
            // the merchant is.
            account: match (r.mchid == client.mch_id(), &r.sub_mchid) {
                (true, None) => account.to_owned(),
                (true, Some(sub)) => format!("{account}/{sub}"),
                (false, _) => format!("?/{}", r.mchid),
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

/// What the service provider's fee sharing says to the sub-merchant.
const FEE_DESCRIPTION: &str = "平台服务费";

/// Shares `r.amount` of a sub-merchant's payment to the service provider itself (a merchant
/// receiver, its own merchant id) and releases the rest; with nothing to share, only releases.
async fn share(
    client: &Client,
    app_id: &str,
    sub: &str,
    r: &ShareRequest,
) -> Result<ShareAnswer, ChannelError> {
    let answer = if r.amount == crate::Fen::ZERO {
        client
            .execute(
                &UnfreezeSharing::new(
                    r.transaction_id.clone(),
                    r.out_order_no.clone(),
                    FEE_DESCRIPTION,
                )
                .sub_mchid(sub),
            )
            .await
    } else {
        let fee = Share::new(
            ReceiverType::MerchantId,
            client.mch_id(),
            r.amount,
            FEE_DESCRIPTION,
        );
        client
            .execute(
                &CreateSharing::new(
                    app_id,
                    r.transaction_id.clone(),
                    r.out_order_no.clone(),
                    vec![fee],
                    true,
                )
                .sub_mchid(sub),
            )
            .await
    };
    let order = answer.map_err(error)?;
    let closed = order
        .receivers
        .iter()
        .find(|x| x.result == ShareResult::Closed);
    Ok(match (&order.state, closed) {
        (_, Some(c)) => {
            return Err(ChannelError::Rejected {
                code: "SHARE_CLOSED".into(),
                message: format!(
                    "sharing {} to {} was closed: {}",
                    order.out_order_no,
                    c.account,
                    c.fail_reason.as_deref().unwrap_or("no reason given")
                ),
            });
        }
        (SharingState::Finished, None)
            if order
                .receivers
                .iter()
                .all(|x| x.result == ShareResult::Success) =>
        {
            ShareAnswer::Shared {
                order_id: order.order_id,
            }
        }
        _ => ShareAnswer::Processing,
    })
}

/// Takes `r.amount` of the service provider's share back to the sub-merchant.
async fn return_share(client: &Client, sub: &str, r: &ShareReturn) -> Result<(), ChannelError> {
    let back = client
        .execute(
            &CreateReturn::new(
                SharingRef::OutOrderNo(r.out_order_no.clone()),
                r.out_return_no.clone(),
                client.mch_id(),
                r.amount,
                "退款前回退平台服务费",
            )
            .sub_mchid(sub),
        )
        .await
        .map_err(error)?;
    match back.result {
        ReturnResult::Success => Ok(()),
        ReturnResult::Failed => Err(ChannelError::Rejected {
            code: "RETURN_FAILED".into(),
            message: back.fail_reason.unwrap_or_else(|| "no reason given".into()),
        }),
        _ => Err(ChannelError::Unavailable {
            code: "RETURN_PROCESSING".into(),
            message: format!("return {} is still processing", r.out_return_no),
            retry_after: None,
        }),
    }
}

/// WeChat Pay API v3 as a channel (register it through [`super::WechatChannel`]).
#[derive(Debug, Clone)]
pub struct WechatV3Channel {
    client: Client,
    app_id: String,
    identity: Identity,
    /// Service-provider mode: the sub-merchant this channel acts for.
    sub_mchid: Option<String>,
}

impl WechatV3Channel {
    pub(super) fn new(client: Client, app_id: String, identity: Identity) -> Self {
        WechatV3Channel {
            client,
            app_id,
            identity,
            sub_mchid: None,
        }
    }

    fn sub(&self) -> Sub<'_> {
        self.sub_mchid.as_deref()
    }

    fn sub_merchant_only(&self) -> Result<&str, ChannelError> {
        self.sub().ok_or_else(|| {
            ChannelError::Unsupported(
                "profit sharing is for a sub-merchant's payments (for_sub_merchant)".into(),
            )
        })
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
        create(&self.client, &self.app_id, self.sub(), request).await
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        query(&self.client, self.sub(), out_trade_no).await
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        close(&self.client, self.sub(), out_trade_no).await
    }

    async fn charge_code(
        &self,
        request: &NewPayment,
        code: &PaymentCode,
    ) -> Result<CodeCharge, ChannelError> {
        charge_code(&self.client, &self.app_id, self.sub(), request, code).await
    }

    async fn reverse(&self, out_trade_no: &str) -> Result<Reversal, ChannelError> {
        reverse(&self.client, &self.app_id, self.sub(), out_trade_no).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        refund(&self.client, self.sub(), request).await
    }

    async fn query_refund(
        &self,
        _out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        query_refund(&self.client, self.sub(), out_refund_no).await
    }

    async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        channel_refund_id: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        resolve_abnormal_refund(
            &self.client,
            self.sub(),
            out_refund_no,
            channel_refund_id,
            to,
        )
        .await
    }

    fn for_sub_merchant(
        &self,
        sub_merchant: &str,
    ) -> Result<std::sync::Arc<dyn PaymentChannel>, ChannelError> {
        if self.sub_mchid.is_some() {
            return Err(ChannelError::Config(
                "this channel already acts for a sub-merchant".into(),
            ));
        }
        super::check_sub_mchid(sub_merchant)?;
        let mut scoped = self.clone();
        scoped.identity.account = format!("{}/{sub_merchant}", self.identity.account);
        scoped.sub_mchid = Some(sub_merchant.to_owned());
        Ok(std::sync::Arc::new(scoped))
    }

    async fn add_fee_receiver(&self, receiver_name: &str) -> Result<(), ChannelError> {
        let receiver = AddReceiver::new(
            self.app_id.clone(),
            ReceiverType::MerchantId,
            self.client.mch_id(),
            RelationType::ServiceProvider,
        )
        .sub_mchid(self.sub_merchant_only()?)
        .name(receiver_name);
        self.client.execute(&receiver).await.map_err(error)?;
        Ok(())
    }

    async fn share(&self, request: &ShareRequest) -> Result<ShareAnswer, ChannelError> {
        share(
            &self.client,
            &self.app_id,
            self.sub_merchant_only()?,
            request,
        )
        .await
    }

    async fn return_share(&self, request: &ShareReturn) -> Result<(), ChannelError> {
        return_share(&self.client, self.sub_merchant_only()?, request).await
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
