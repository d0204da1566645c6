//! The `wechat` channel: JSAPI, Mini Program, Native, H5 and APP payments; refunds complete
//! asynchronously with an encrypted notification. Two implementations of [`PaymentChannel`], one
//! per API, each with its wire conversions in its own `transformers.rs`:
//!
//! - [`WechatV2Channel`] (`v2/`) — API v2: XML, MD5 / HMAC-SHA256, the API key;
//! - [`WechatV3Channel`] (`v3/`) — API v3: JSON, RSA signatures, the API v3 key.
//!
//! Both behave the same to the service. What they truly share lives here: the identity a channel
//! is registered with (id, account, methods), how long to wait after a rate limit or a balance to
//! top up, and what a client error that is not WeChat's answer means. [`WechatChannel`] is the
//! one to register: it picks the implementation from the merchant's [`WechatApi`], once.

mod bill;
mod v2;
mod v3;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use v2::WechatV2Channel;
pub use v3::WechatV3Channel;

use super::{
    AbnormalRefundResolution, AckBody, AckOutcome, BillAvailability, BillSink, Capabilities,
    ChannelNotification, ChannelPaymentState, ChannelRefund, CloseOutcome, CodeCharge, NewPayment,
    PayAction, PaymentChannel, RawNotify, RefundRequest, Reversal, ShareAnswer, ShareRequest,
    ShareReturn,
};
use crate::{ChannelError, PayMethod, PaymentCode};

/// The WeChat Pay API a channel speaks.
#[derive(Debug, Clone)]
pub enum WechatApi {
    /// API v2: the client holds the app id, merchant id and API key.
    V2(wechat_pay::Client),
    /// API v3: the merchant's client and the app id payments are made under.
    V3 {
        /// The client.
        client: wechat_pay::v3::Client,
        /// The app id (Official Account, Mini Program or mobile app).
        app_id: String,
    },
}

impl WechatApi {
    /// API v3 for app `app_id` under `client`'s merchant.
    pub fn v3(client: wechat_pay::v3::Client, app_id: impl Into<String>) -> Self {
        WechatApi::V3 {
            client,
            app_id: app_id.into(),
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        match self {
            WechatApi::V2(c) => c.app_id(),
            WechatApi::V3 { app_id, .. } => app_id,
        }
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &str {
        match self {
            WechatApi::V2(c) => c.mch_id(),
            WechatApi::V3 { client, .. } => client.mch_id(),
        }
    }

    /// `v2` or `v3`.
    pub fn version(&self) -> &'static str {
        match self {
            WechatApi::V2(_) => "v2",
            WechatApi::V3 { .. } => "v3",
        }
    }
}

impl From<wechat_pay::Client> for WechatApi {
    fn from(client: wechat_pay::Client) -> Self {
        WechatApi::V2(client)
    }
}

/// Who a WeChat channel is: its id, its account (`{app_id}/{mch_id}`) and what it can do.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    id: String,
    account: String,
    capabilities: Capabilities,
}

/// How long to wait after `NOTENOUGH` / `NOT_ENOUGH` (the merchant's balance must be topped up
/// first).
pub(crate) const BALANCE_WAIT: Duration = Duration::from_secs(30 * 60);

/// How long to wait after a rate limit (`INVALID_REQ_TOO_MUCH`: "retry after a minute";
/// `FREQUENCY_LIMITED`, 429; refunds of one order must also be a minute apart).
pub(crate) const RATE_WAIT: Duration = Duration::from_secs(60);

/// A client error that is not WeChat's answer to the request: the transport, an HTTP status
/// without WeChat's body, the configuration, an answer that does not decode. Only the transport
/// is retryable here; each API maps WeChat's own answers first.
pub(crate) fn client_error(e: wechat_pay::Error) -> ChannelError {
    use wechat_pay::Error as WxError;
    match e {
        WxError::Transport(_) | WxError::HttpStatus { .. } => {
            ChannelError::Transport(e.to_string())
        }
        WxError::Config(m) => ChannelError::Config(m),
        other => ChannelError::Decode(other.to_string()),
    }
}

/// A required openid, or the refusal that says it is missing.
pub(crate) fn open_id(r: &NewPayment) -> Result<String, ChannelError> {
    r.open_id
        .clone()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| ChannelError::Rejected {
            code: "OPENID_REQUIRED".into(),
            message: format!("{} needs the payer's openid", r.method),
        })
}

/// A sub-merchant id as WeChat Pay issues them: digits (a caller's text never reaches a path).
pub(crate) fn check_sub_mchid(sub_mchid: &str) -> Result<(), ChannelError> {
    if (1..=32).contains(&sub_mchid.len()) && sub_mchid.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ChannelError::Config(format!(
            "{sub_mchid:?} is not a WeChat Pay sub-merchant id (digits)"
        )))
    }
}

/// WeChat Pay as a channel: one app id (Official Account, Mini Program or mobile app) under a
/// merchant, over the merchant's API. A merchant with several apps registers one channel per
/// app, each under its own id.
#[derive(Debug, Clone)]
pub struct WechatChannel {
    api: WechatApi,
    identity: Identity,
    inner: Arc<dyn PaymentChannel>,
}

impl WechatChannel {
    /// The channel `wechat` over `api` (a v2 client, or [`WechatApi::v3`]), with every WeChat
    /// method (whose app id and merchant id are the channel's account).
    pub fn new(api: impl Into<WechatApi>) -> Self {
        Self::with_methods(
            api.into(),
            "wechat",
            vec![
                PayMethod::WechatJsapi,
                PayMethod::WechatMiniProgram,
                PayMethod::WechatNative,
                PayMethod::WechatH5,
                PayMethod::WechatApp,
                PayMethod::WechatPaymentCode,
            ],
        )
    }

    /// The channel `wechat` for an Official Account app: JSAPI (in WeChat's browser), Native
    /// (QR), H5, APP, and the buyer's payment code.
    pub fn official_account(api: impl Into<WechatApi>) -> Self {
        Self::with_methods(
            api.into(),
            "wechat",
            vec![
                PayMethod::WechatJsapi,
                PayMethod::WechatNative,
                PayMethod::WechatH5,
                PayMethod::WechatApp,
                PayMethod::WechatPaymentCode,
            ],
        )
    }

    /// The channel `wechat_mini` for a Mini Program app: Mini Program payments.
    pub fn mini_program(api: impl Into<WechatApi>) -> Self {
        Self::with_methods(
            api.into(),
            "wechat_mini",
            vec![PayMethod::WechatMiniProgram],
        )
    }

    fn with_methods(api: WechatApi, id: &str, methods: Vec<PayMethod>) -> Self {
        let identity = Identity {
            id: id.to_owned(),
            account: format!("{}/{}", api.app_id(), api.mch_id()),
            capabilities: Capabilities {
                methods,
                partial_refunds: true,
                refund_notifications: true,
            },
        };
        Self::over(api, identity)
    }

    /// The implementation for `api`, chosen here once.
    fn over(api: WechatApi, identity: Identity) -> Self {
        let inner: Arc<dyn PaymentChannel> = match &api {
            WechatApi::V2(client) => {
                Arc::new(WechatV2Channel::new(client.clone(), identity.clone()))
            }
            WechatApi::V3 { client, app_id } => Arc::new(WechatV3Channel::new(
                client.clone(),
                app_id.clone(),
                identity.clone(),
            )),
        };
        WechatChannel {
            api,
            identity,
            inner,
        }
    }

    /// The same channel registered under `id` (its notifications arrive at `/notify/{id}`).
    pub fn with_id(self, id: impl Into<String>) -> Self {
        let mut identity = self.identity;
        identity.id = id.into();
        Self::over(self.api, identity)
    }

    /// The API it speaks, and its client.
    pub fn api(&self) -> &WechatApi {
        &self.api
    }
}

#[async_trait]
impl PaymentChannel for WechatChannel {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn label(&self) -> &str {
        self.inner.label()
    }

    fn account(&self) -> &str {
        self.inner.account()
    }

    fn capabilities(&self) -> &Capabilities {
        self.inner.capabilities()
    }

    async fn create(&self, request: &NewPayment) -> Result<PayAction, ChannelError> {
        self.inner.create(request).await
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        self.inner.query(out_trade_no).await
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        self.inner.close(out_trade_no).await
    }

    async fn charge_code(
        &self,
        request: &NewPayment,
        code: &PaymentCode,
    ) -> Result<CodeCharge, ChannelError> {
        self.inner.charge_code(request, code).await
    }

    async fn reverse(&self, out_trade_no: &str) -> Result<Reversal, ChannelError> {
        self.inner.reverse(out_trade_no).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        self.inner.refund(request).await
    }

    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        self.inner.query_refund(out_trade_no, out_refund_no).await
    }

    async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        channel_refund_id: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        self.inner
            .resolve_abnormal_refund(out_refund_no, channel_refund_id, to)
            .await
    }

    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        self.inner.download_bill(day, to).await
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        self.inner.read_bill(file, each)
    }

    fn for_sub_merchant(
        &self,
        sub_merchant: &str,
    ) -> Result<Arc<dyn PaymentChannel>, ChannelError> {
        self.inner.for_sub_merchant(sub_merchant)
    }

    async fn add_fee_receiver(&self, receiver_name: &str) -> Result<(), ChannelError> {
        self.inner.add_fee_receiver(receiver_name).await
    }

    async fn share(&self, request: &ShareRequest) -> Result<ShareAnswer, ChannelError> {
        self.inner.share(request).await
    }

    async fn return_share(&self, request: &ShareReturn) -> Result<(), ChannelError> {
        self.inner.return_share(request).await
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        self.inner.verify_notify(raw).await
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        self.inner.ack(outcome)
    }
}
