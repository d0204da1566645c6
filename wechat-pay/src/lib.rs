#![doc = include_str!("../README.md")]
//! WeChat Pay API v2 (this module tree) and API v3 ([`v3`]): signed requests, verified replies
//! and notifications, refund notification decryption and the front-end payment parameters —
//! correct to the byte, with money as integers and secrets that never print.
//!
//! # Module map
//!
//! - [`client`] — [`Client`] and its builder: the one funnel (`execute`) that signs, sends,
//!   checks `return_code`, verifies the reply's signature and checks `result_code`; sandbox mode;
//!   the client certificate for refund / reverse / fund flow (`cert`: the `.p12` or PEM pair).
//! - [`api`] — one file per merchant endpoint: each request type knows its path and parameters,
//!   each response type how to decode a verified reply.
//! - [`notify`] — payment notifications (verified over every field received), refund
//!   notifications (`req_info` decryption, in `refund_crypto`), and the replies WeChat expects.
//! - [`pay_params`] — what the front end needs: `wx.requestPayment` (JSAPI / Mini Program) and
//!   APP `PayReq` parameters.
//! - [`sign`] — the canonical string, `MD5` and `HMAC-SHA256`, constant-time verification.
//! - [`xml`] — the flat `<xml>` format with hard limits (size, no DTD/entities, no nesting,
//!   no duplicates).
//! - [`Params`] (`params`) — the sorted key/value message all of the above share; `types` — the
//!   wire values they share ([`TradeState`], [`RefundStatus`], [`OrderId`]…), each enum keeping
//!   unknown values (`wire_enum`: the one macro that makes them).
//! - [`Fen`], [`ApiKey`], [`Error`] — money (`money`), the secret key (`secret`), the one error
//!   type (`error`).
//! - [`v3`] — API v3 (RSA signatures, AES-256-GCM resources): its own client, endpoints,
//!   front-end parameters and notifications (see its module map).
//! - `test_util` (feature `test-util`) — a signer that produces valid replies and notifications
//!   for other crates' tests.
//!
//! # A JSAPI payment, end to end
//!
//! 1. Create the order and hand the front end its parameters:
//!
//! ```no_run
//! # async fn create() -> Result<(), wechat_pay::Error> {
//! use wechat_pay::{ApiKey, Client, Fen, Trade, UnifiedOrder};
//!
//! let client = Client::builder("wx2421b1c4370ec43b", "10000100", ApiKey::new("192006250b4c09247ec02edce69f6a2d"))
//!     .build()?;
//! let order = UnifiedOrder::new(
//!     Trade::jsapi("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), // the payer's openid
//!     "Cola 330ml",
//!     "20240101000001",                              // your order number
//!     Fen::new(350),                                 // 3.50 yuan
//!     "203.0.113.7",                                 // the payer's IP
//!     "https://shop.example/notify/wechat",
//! );
//! let created = client.execute(&order).await?;
//! let params = client.jsapi_params(&created.prepay_id)?;
//! // Send `params` as JSON to the page, which calls wx.requestPayment(params).
//! let json = serde_json::to_string(&params).unwrap();
//! # Ok(()) }
//! ```
//!
//! 2. When WeChat POSTs the result to the notify URL, verify it, check the amount against your
//!    order as integers, record the payment idempotently, and answer:
//!
//! ```no_run
//! # async fn notify(client: wechat_pay::Client, body: &[u8]) -> String {
//! use wechat_pay::{Error, Fen, NotifyReply};
//!
//! let reply = match client.verify_payment_notification(body).await {
//!     Ok(n) => {
//!         let expected = Fen::new(350); // load your order by n.out_trade_no
//!         if n.total_fee == expected {
//!             // mark the order paid if it is not already (compare-and-set), then:
//!             NotifyReply::success()
//!         } else {
//!             NotifyReply::fail("amount mismatch")
//!         }
//!     }
//!     // Authentic, and the payment failed: record it (f.out_trade_no) and acknowledge.
//!     Err(Error::PaymentFailed(f)) => NotifyReply::success(),
//!     // Forged, tampered, for another merchant or malformed: do not acknowledge.
//!     Err(e) => NotifyReply::fail(e.to_string()),
//! };
//! reply.to_xml() // the HTTP response body
//! # }
//! ```
//!
//! The runnable version, against a local stub of WeChat Pay, is
//! `cargo run -p wechat-pay --example jsapi_payment --features test-util`.
//!
//! # Choices this crate makes
//!
//! - Every reply of every endpoint except the sandbox key must carry a valid `sign`; a reply
//!   without one is rejected rather than trusted.
//! - Payment notifications are checked against the client's `appid` and `mch_id`; use the free
//!   functions in [`notify`] to verify without that check.
//! - Nothing retries on its own; [`Error::is_retryable`] says when retrying is safe.

pub mod api;
mod cert;
pub mod client;
mod error;
mod money;
pub mod notify;
mod params;
pub mod pay_params;
mod refund_crypto;
mod secret;
pub mod sign;
#[cfg(feature = "test-util")]
pub mod test_util;
mod types;
pub mod v3;
mod wire_enum;
pub mod xml;

pub use api::{
    AccountType, Bill, BillRow, BillRows, BillSummary, BillType, CloseOrder, CloseOrderResponse,
    DownloadBill, DownloadFundFlow, ForSubMerchant, FundFlow, FundFlowRow, FundFlowSummary, H5Info,
    Micropay, MicropayOutcome, MicropayPaid, OrderQuery, OrderQueryResponse, Recall, Refund,
    RefundAccount, RefundCoupon, RefundQuery, RefundQueryBy, RefundQueryResponse, RefundRecord,
    RefundResponse, Reverse, ReverseResponse, SubMerchant, Trade, UnifiedOrder,
    UnifiedOrderResponse,
};
pub use cert::ClientCertificate;
pub use client::{Client, ClientBuilder, SandboxPrefix};
pub use error::{ErrCode, Error};
pub use money::{Fen, ParseFenError};
pub use notify::{
    FailedPayment, NotifyReply, NotifySignType, PaymentNotification, RefundNotification,
};
pub use params::Params;
pub use pay_params::{AppParams, JsapiParams};
pub use secret::ApiKey;
pub use sign::{SignType, SignatureError};
pub use types::{Coupon, OrderId, RefundStatus, TradeState, TradeType};
pub use xml::XmlError;
