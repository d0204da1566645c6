#![doc = include_str!("../README.md")]
//! The Alipay open platform (RSA2): signed requests, verified answers and notifications, money
//! as integers of fen, keys that never print. A protocol crate: it depends on no sibling.
//!
//! # Module map
//!
//! - [`client`] — [`Client`] and its builder: the one funnel ([`Client::execute`]) that signs,
//!   posts, verifies the answer's signature over the exact text Alipay signed, and decodes it or
//!   returns the refusal; signed page URLs and app order strings.
//! - [`api`] — one file per method: QR (precreate), desktop / mobile-web / app checkouts, barcode
//!   payments, Mini Program trades (`create`), query, close, cancel, refund, refund query, where
//!   a day's bill is, transfers, buyer login, Alipay's certificate by SN.
//! - [`bill`] — the daily bills read row by row from the downloaded zip (GBK CSV): the trade
//!   bill (payments and refunds) and the account bill (balance movements), amounts in fen.
//! - [`cert`] — certificate mode ([`Certificates`]: the app, Alipay and root certificates,
//!   their SNs, the chain a downloaded Alipay certificate must have).
//! - [`notify`] — payment notifications: signature, app and seller checked, then decoded.
//! - [`sign`] — the canonical string, RSA2 (SHA256withRSA, PKCS#1 v1.5) and the keys (PEM or
//!   the bare base64 Alipay's key tool writes). RSA comes from aws-lc-rs (constant time).
//! - [`encrypt`] — content encryption ([`AesKey`]: `biz_content` and answers as AES-128-CBC,
//!   what the open platform calls 接口内容加密).
//! - [`Fen`] — money (`money`); [`Error`] — the one error type (`error`; [`SubCode`] for
//!   Alipay's `sub_code`).
//! - `test_util` (feature `test-util`) — a signer that plays Alipay, for other crates' tests.
//!
//! # A QR payment, end to end
//!
//! 1. Create the QR code:
//!
//! ```no_run
//! # async fn create() -> Result<(), alipay::Error> {
//! use alipay::{Client, Fen, PrivateKey, PublicKey, TradePrecreate};
//!
//! let client = Client::builder(
//!     "2021000000000001",
//!     PrivateKey::from_pem(&std::fs::read_to_string("app_private_key.pem").unwrap())?,
//!     PublicKey::from_pem(&std::fs::read_to_string("alipay_public_key.pem").unwrap())?,
//! )
//! .seller_id("2088000000000001") // notifications for another seller are refused
//! .build()?;
//! let created = client
//!     .execute(
//!         &TradePrecreate::new("ORDER-1", Fen::new(350), "Cola")
//!             .notify_url("https://shop.example/notify/alipay"),
//!     )
//!     .await?;
//! // Show created.qr_code as a QR code.
//! # Ok(()) }
//! ```
//!
//! 2. When Alipay POSTs the result, verify it, compare the amount as integers, record the payment
//!    idempotently, and answer `success`:
//!
//! ```no_run
//! # fn notify(client: alipay::Client, body: &[u8]) -> &'static str {
//! use alipay::{Fen, NotifyReply};
//!
//! let reply = match client.verify_notification(body) {
//!     Ok(n) if n.trade_status.is_paid() && n.total_amount == Fen::new(350) => {
//!         // mark ORDER n.out_trade_no paid if it is not already (compare-and-set), then:
//!         NotifyReply::Success
//!     }
//!     Ok(_) => NotifyReply::Success, // not paid (closed…), or an amount to investigate
//!     Err(_) => NotifyReply::Fail,   // forged, or for another app: never trusted
//! };
//! reply.as_str() // the response body
//! # }
//! ```
//!
//! 3. A refund (synchronous; idempotent by its number) and the other calls:
//!
//! ```no_run
//! # async fn refund(client: alipay::Client) -> Result<(), alipay::Error> {
//! use alipay::{Fen, TradeQuery, TradeRef, TradeRefund};
//!
//! let trade = client.execute(&TradeQuery::new(TradeRef::OutTradeNo("ORDER-1".into()))).await?;
//! if trade.trade_status.is_paid() {
//!     client
//!         .execute(&TradeRefund::new(TradeRef::OutTradeNo("ORDER-1".into()), "REFUND-1", Fen::new(350)))
//!         .await?;
//! }
//! # Ok(()) }
//! ```
//!
//! `cargo run -p alipay --example qr_payment --features test-util` runs this against a local
//! stand-in for Alipay, then shows a forged notification refused.
//!
//! Errors: a refusal is [`Error::Gateway`] with Alipay's `code`, a typed [`SubCode`] and the
//! message; [`Error::is_retryable`] says whether the same request may succeed later (transport
//! trouble, `20000`, `ACQ.SYSTEM_ERROR`). Payment states (waiting, closed, paid) are values.

pub mod api;
pub mod bill;
pub mod cert;
pub mod client;
pub mod encrypt;
mod error;
mod money;
pub mod notify;
pub mod sign;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use api::bill::{BillDownloadUrl, BillDownloadUrlQuery, BillType};
pub use api::cancel::{CancelResponse, TradeCancel};
pub use api::cert_download::{CertDownload, CertDownloadResponse};
pub use api::close::{CloseResponse, TradeClose};
pub use api::create::{Buyer, CreateResponse, TradeCreate};
pub use api::oauth::{AuthScope, OauthToken, OauthTokenResponse, UserInfo, UserInfoShare};
pub use api::open_auth::{
    OpenAuthToken, OpenAuthTokenInfo, OpenAuthTokenQuery, OpenAuthTokenResponse,
};
pub use api::page_pay::{Product, TradePagePay};
pub use api::pay::{PayResponse, TradePay};
pub use api::precreate::{PrecreateResponse, TradePrecreate};
pub use api::query::{TradeQuery, TradeQueryResponse};
pub use api::refund::{RefundResponse, TradeRefund};
pub use api::refund_query::{RefundQuery, RefundQueryResponse};
pub use api::settle::{
    AccountType, RoyaltyBindResponse, RoyaltyReceiver, RoyaltyRelationBind, RoyaltyShare,
    SettleResponse, TradeOrderSettle,
};
pub use api::transfer::{
    FundTransfer, FundTransferQuery, Payee, PayeeIdentity, TransferQueryResponse, TransferResponse,
    TransferStatus,
};
pub use api::{PageRequest, Request, TradeRef, TradeStatus};
pub use cert::Certificates;
pub use client::{
    AlipayKeys, Client, ClientBuilder, DEFAULT_APP_AUTH_URL, DEFAULT_AUTHORIZE_URL,
    DEFAULT_CERT_DOWNLOAD_INTERVAL, DEFAULT_GATEWAY,
};
pub use encrypt::AesKey;
pub use error::{Error, SignatureError, SubCode};
pub use money::{Fen, ParseFenError};
pub use notify::{NotifyReply, TradeNotification};
pub use sign::{PrivateKey, PublicKey};
