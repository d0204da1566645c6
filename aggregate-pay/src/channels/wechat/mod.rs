//! The `wechat` channel: JSAPI, Mini Program, Native, H5 and APP payments; refunds complete
//! asynchronously with an encrypted notification. It speaks API v2 (`v2`, XML, the API key) or
//! API v3 (`v3`, JSON, RSA signatures, the API v3 key), as the merchant is configured
//! ([`WechatApi`]); both behave the same to the service.

mod transformers;
mod v2;
mod v3;

use async_trait::async_trait;

use super::{
    AbnormalRefundResolution, AckBody, AckOutcome, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, CreatePayment, PayAction, PaymentChannel,
    RawNotify, RefundRequest,
};
use crate::{ChannelError, PayMethod};

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

/// WeChat Pay as a channel: one app id (Official Account, Mini Program or mobile app) under a
/// merchant. A merchant with several apps registers one channel per app, each under its own id.
#[derive(Debug, Clone)]
pub struct WechatChannel {
    id: String,
    api: WechatApi,
    account: String,
    capabilities: Capabilities,
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
            ],
        )
    }

    /// The channel `wechat` for an Official Account app: JSAPI (in WeChat's browser), Native
    /// (QR), H5 and APP.
    pub fn official_account(api: impl Into<WechatApi>) -> Self {
        Self::with_methods(
            api.into(),
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
    pub fn mini_program(api: impl Into<WechatApi>) -> Self {
        Self::with_methods(
            api.into(),
            "wechat_mini",
            vec![PayMethod::WechatMiniProgram],
        )
    }

    fn with_methods(api: WechatApi, id: &str, methods: Vec<PayMethod>) -> Self {
        WechatChannel {
            id: id.to_owned(),
            account: format!("{}/{}", api.app_id(), api.mch_id()),
            api,
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

    /// The API it speaks, and its client.
    pub fn api(&self) -> &WechatApi {
        &self.api
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
        match &self.api {
            WechatApi::V2(c) => v2::create(c, request).await,
            WechatApi::V3 { client, app_id } => v3::create(client, app_id, request).await,
        }
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        match &self.api {
            WechatApi::V2(c) => v2::query(c, out_trade_no).await,
            WechatApi::V3 { client, .. } => v3::query(client, out_trade_no).await,
        }
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        match &self.api {
            WechatApi::V2(c) => v2::close(c, out_trade_no).await,
            WechatApi::V3 { client, .. } => v3::close(client, out_trade_no).await,
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        match &self.api {
            WechatApi::V2(c) => v2::refund(c, request).await,
            WechatApi::V3 { client, .. } => v3::refund(client, request).await,
        }
    }

    async fn query_refund(
        &self,
        _out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        match &self.api {
            WechatApi::V2(c) => v2::query_refund(c, out_refund_no).await,
            WechatApi::V3 { client, .. } => v3::query_refund(client, out_refund_no).await,
        }
    }

    async fn resolve_abnormal_refund(
        &self,
        out_refund_no: &str,
        channel_refund_id: &str,
        to: &AbnormalRefundResolution,
    ) -> Result<ChannelRefund, ChannelError> {
        match &self.api {
            // API v2 has no such call: WeChat's answer is the merchant platform's page.
            WechatApi::V2(_) => Err(ChannelError::Unsupported(
                "WeChat Pay API v2 has no abnormal-refund call: resolve it on the merchant \
                 platform (pay.weixin.qq.com, 交易中心 → 退款管理 → 异常退款)"
                    .into(),
            )),
            WechatApi::V3 { client, .. } => {
                v3::resolve_abnormal_refund(client, out_refund_no, channel_refund_id, to).await
            }
        }
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        match &self.api {
            WechatApi::V2(c) => v2::verify_notify(c, raw).await,
            WechatApi::V3 { client, .. } => v3::verify_notify(client, &self.account, raw).await,
        }
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        match &self.api {
            WechatApi::V2(_) => v2::ack(outcome),
            WechatApi::V3 { .. } => v3::ack(outcome),
        }
    }
}
