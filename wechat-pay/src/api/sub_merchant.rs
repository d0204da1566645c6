//! Service-provider mode (服务商) on v2: any call made for a sub-merchant, wrapped in
//! [`ForSubMerchant`], carries `sub_mch_id` (and `sub_appid` when the sub-merchant's own app is
//! used; a payer's `openid` is then sent as `sub_openid`, the id under that app). The client's
//! merchant is the service provider (`mch_id`, `appid`); its key signs.
//!
//! ```no_run
//! # async fn run(client: wechat_pay::Client) -> Result<(), wechat_pay::Error> {
//! use wechat_pay::{ForSubMerchant, OrderId, OrderQuery, SubMerchant};
//!
//! let merchant = SubMerchant::new("1900000109");
//! let query = OrderQuery::new(OrderId::OutTradeNo("A1".into()));
//! let order = client
//!     .execute(&ForSubMerchant::new(&merchant, query))
//!     .await?;
//! # Ok(()) }
//! ```

use super::{Download, Endpoint, Request};
use crate::{Error, Params, SignType};

/// A sub-merchant of the service provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMerchant {
    /// `sub_mch_id`.
    pub sub_mch_id: String,
    /// `sub_appid`: the sub-merchant's own app, when the payer's openid is under it.
    pub sub_appid: Option<String>,
}

impl SubMerchant {
    /// The sub-merchant `sub_mch_id`.
    pub fn new(sub_mch_id: impl Into<String>) -> Self {
        SubMerchant {
            sub_mch_id: sub_mch_id.into(),
            sub_appid: None,
        }
    }

    /// The sub-merchant's own app (payers' openids are then under it: `sub_openid`).
    pub fn sub_appid(mut self, app_id: impl Into<String>) -> Self {
        self.sub_appid = Some(app_id.into());
        self
    }
}

/// `request` made for `merchant`: the same endpoint, answer and security, with the
/// sub-merchant's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForSubMerchant<'a, R> {
    merchant: &'a SubMerchant,
    request: R,
}

impl<'a, R> ForSubMerchant<'a, R> {
    /// `request` for `merchant`.
    pub fn new(merchant: &'a SubMerchant, request: R) -> Self {
        ForSubMerchant { merchant, request }
    }
}

impl<R: Endpoint> Endpoint for ForSubMerchant<'_, R> {
    const PATH: &'static str = R::PATH;
    const NEEDS_CERTIFICATE: bool = R::NEEDS_CERTIFICATE;
    const SIGN_TYPE: Option<SignType> = R::SIGN_TYPE;
    const ENVELOPE: super::Envelope = R::ENVELOPE;

    fn write_params(&self, p: &mut Params) {
        self.request.write_params(p);
        p.insert("sub_mch_id", self.merchant.sub_mch_id.as_str());
        if let Some(app) = &self.merchant.sub_appid {
            p.insert("sub_appid", app.as_str());
            if let Some(openid) = p.remove("openid") {
                p.insert("sub_openid", openid);
            }
        }
    }
}

impl<R: Request> Request for ForSubMerchant<'_, R> {
    type Response = R::Response;
}

impl<R: Download> Download for ForSubMerchant<'_, R> {
    type Output = R::Output;

    fn parse(text: &str) -> Result<Self::Output, Error> {
        R::parse(text)
    }
}
