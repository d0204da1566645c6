//! The WeChat Pay v2 merchant endpoints: one file per endpoint, each with its request type (which
//! knows its path and how to become parameters) and its response type (which knows how to come
//! from a verified reply).
//!
//! | endpoint | path | request | certificate |
//! |---|---|---|---|
//! | unified order | `/pay/unifiedorder` | [`UnifiedOrder`] | no |
//! | order query | `/pay/orderquery` | [`OrderQuery`] | no |
//! | close order | `/pay/closeorder` | [`CloseOrder`] | no |
//! | refund | `/secapi/pay/refund` | [`Refund`] | yes |
//! | refund query | `/pay/refundquery` | [`RefundQuery`] | no |
//! | download bill | `/pay/downloadbill` | [`DownloadBill`] | no |
//! | download fund flow | `/pay/downloadfundflow` | [`DownloadFundFlow`] | yes |
//! | micropay (payment code) | `/pay/micropay` | [`Micropay`] | no |
//! | reverse | `/secapi/pay/reverse` | [`Reverse`] | yes |
//! | sandbox sign key | `{prefix}/pay/getsignkey` | [`SandboxSignKey`] | no |
//! | any of the above for a sub-merchant (service provider) | the same, with `sub_mch_id` / `sub_appid` | [`ForSubMerchant`] over the request | as the request |
//!
//! Adding an endpoint: a new file with a type implementing [`Endpoint`] and either [`Request`]
//! (signed XML reply, sent with [`Client::execute`](crate::Client::execute)) or [`Download`]
//! (a file, sent with [`Client::download`](crate::Client::download)), and a line in the table above.

use std::fmt;

use crate::{ErrCode, Error, Params, SignType};

mod bill_table;
mod close_order;
mod download_bill;
mod download_fund_flow;
mod micropay;
mod order_query;
mod refund;
mod refund_query;
mod reverse;
mod sandbox_sign_key;
mod sub_merchant;
mod unified_order;

pub use close_order::{CloseOrder, CloseOrderResponse};
pub use download_bill::{Bill, BillRow, BillRows, BillSummary, BillType, DownloadBill};
pub use download_fund_flow::{
    AccountType, DownloadFundFlow, FundFlow, FundFlowRow, FundFlowSummary,
};
pub use micropay::{Micropay, MicropayOutcome, MicropayPaid};
pub use order_query::{OrderQuery, OrderQueryResponse};
pub use refund::{Refund, RefundAccount, RefundCoupon, RefundResponse};
pub use refund_query::{RefundQuery, RefundQueryBy, RefundQueryResponse, RefundRecord};
pub use reverse::{Recall, Reverse, ReverseResponse};
pub use sandbox_sign_key::{SandboxSignKey, SandboxSignKeyResponse};
pub use sub_merchant::{ForSubMerchant, SubMerchant};
pub use unified_order::{H5Info, Trade, UnifiedOrder, UnifiedOrderResponse};

/// Which common fields the client adds to a request before signing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Envelope {
    /// `appid`, `mch_id`, `nonce_str`, `sign_type`, `sign`: every merchant endpoint.
    Merchant,
    /// `mch_id`, `nonce_str`, `sign` (MD5, real key): the sandbox key request only.
    SignKey,
}

/// How to send a call: its path, its security needs and its own parameters.
pub trait Endpoint: fmt::Debug + Send + Sync {
    /// The path below the base URL (and below the sandbox prefix in sandbox mode).
    const PATH: &'static str;
    /// Whether the call needs the merchant's client certificate (mutual TLS).
    const NEEDS_CERTIFICATE: bool = false;
    /// A signature type the endpoint requires whatever the client is configured with.
    const SIGN_TYPE: Option<SignType> = None;
    /// The common fields the client adds.
    const ENVELOPE: Envelope = Envelope::Merchant;

    /// Writes the endpoint's own parameters (the client adds the envelope).
    fn write_params(&self, params: &mut Params);
}

/// A call whose reply is a signed XML message, sent with [`Client::execute`](crate::Client::execute).
pub trait Request: Endpoint {
    /// What a successful call returns.
    type Response: FromReply;
}

/// A call whose reply is a file (a bill), sent with [`Client::download`](crate::Client::download).
/// An XML body in its place is WeChat's error and becomes an [`Error`].
pub trait Download: Endpoint {
    /// The parsed file.
    type Output;

    /// Parses the (decompressed) file.
    fn parse(text: &str) -> Result<Self::Output, Error>;
}

/// A response type: built from a reply whose `return_code`, signature and `result_code` the
/// client has already checked.
pub trait FromReply: Sized {
    /// Whether WeChat signs this reply. Only the sandbox key reply is unsigned; for every other
    /// endpoint a reply without `sign` is rejected.
    const SIGNED: bool = true;

    /// Decodes a successful (`result_code=SUCCESS`) reply.
    fn from_params(params: Params) -> Result<Self, Error>;

    /// Decodes a `result_code=FAIL` reply. By default it is [`Error::Business`]; endpoints for
    /// which some failures are states (micropay's `USERPAYING`) override this.
    fn from_business_failure(
        err_code: ErrCode,
        err_code_des: String,
        _params: Params,
    ) -> Result<Self, Error> {
        Err(Error::Business {
            err_code,
            err_code_des,
        })
    }
}
