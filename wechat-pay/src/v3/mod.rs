//! WeChat Pay API v3: JSON over HTTPS, requests signed with the merchant's RSA key, responses
//! and notifications signed with WeChat Pay's, notification payloads encrypted with the API v3
//! key (AES-256-GCM). API v2 ([`crate::Client`]) is unchanged beside it.
//!
//! # Module map
//!
//! - [`keys`] — the merchant's private key ([`MerchantKey`], PKCS#8 or PKCS#1 PEM), WeChat Pay's
//!   public key ([`WechatPayKey`], with its id: `PUB_KEY_ID_…` or a platform certificate's
//!   serial), the API v3 key ([`ApiV3Key`], 32 bytes; never printed), RSA-OAEP encryption of
//!   sensitive fields.
//! - [`signing`] — the `Authorization: WECHATPAY2-SHA256-RSA2048 …` header over
//!   `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`, and the verification of WeChat's
//!   signature over `TIMESTAMP\nNONCE\nBODY\n` with its typed failures ([`SignatureError`]:
//!   missing headers, stale timestamp, unknown serial, mismatch, WeChat's signature probes).
//! - [`client`] — [`Client`]: sign, send, verify, decode; WeChat Pay's keys from a public key or
//!   from platform certificates ([`certificates`], downloaded and refreshed single-flight).
//! - [`api`] — the endpoints, one file per resource (table there); [`pay_params`] — front-end
//!   parameters (JSAPI / Mini Program, APP); [`notify`] — notifications, verified then
//!   decrypted into typed events.
//! - [`aead`] — `AEAD_AES_256_GCM` resources of notifications (and certificates): decrypt, and
//!   encrypt for test stand-ins.
//!
//! # A JSAPI payment, end to end
//!
//! ```no_run
//! # async fn run(notify_headers: &reqwest::header::HeaderMap, notify_body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use wechat_pay::Fen;
//! use wechat_pay::v3::{ApiV3Key, Client, JsapiOrder, MerchantKey, Notification, OrderRequest,
//!     WechatPayKey, notify};
//!
//! // Once: the merchant's API certificate key and serial, the API v3 key, and WeChat Pay's
//! // public key with its id (or `.platform_certificates()` to download certificates instead).
//! let client = Client::builder(
//!     "1900009191",
//!     "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
//!     MerchantKey::from_pem(&std::fs::read_to_string("apiclient_key.pem")?)?,
//!     ApiV3Key::new("your-32-character-api-v3-key-000")?,
//! )
//! .wechat_pay_key(WechatPayKey::from_pem(
//!     "PUB_KEY_ID_0114232134912410000000000000",
//!     &std::fs::read_to_string("pub_key.pem")?,
//! )?)
//! .build()?;
//!
//! // 1. Create the order (the answer's signature is verified before it is read).
//! let order = OrderRequest::new("wxd678efh567hg6787", "Cola", "ORDER-42", Fen::new(350),
//!     "https://shop.example/notify/wechat");
//! let created = client
//!     .execute(&JsapiOrder { order, openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into() })
//!     .await?;
//!
//! // 2. What the page passes to wx.requestPayment (signType "RSA").
//! let params = client.jsapi_params("wxd678efh567hg6787", &created.prepay_id)?;
//! let _json = serde_json::to_string(&params)?;
//!
//! // 3. WeChat POSTs the result: verify the headers' signature over the raw body, decrypt.
//! let header = |name: &str| notify_headers.get(name).and_then(|v| v.to_str().ok());
//! let (status, body) = match client.notification(header, notify_body).await {
//!     Ok((_, Notification::Transaction(t))) => {
//!         // check t.out_trade_no and t.amount (integers of fen) against the order, record
//!         // the payment once (compare-and-set), then:
//!         notify::reply_success() // 4. 204
//!     }
//!     Ok(_) => notify::reply_success(),
//!     Err(e) => notify::reply_fail(&e.to_string()), // forged, stale, probe: not accepted
//! };
//! # let _ = (status, body); Ok(()) }
//! ```
//!
//! The runnable version, against a local stand-in for WeChat Pay:
//! `cargo run -p wechat-pay --example v3_jsapi_payment`.
//!
//! # From platform certificates to the WeChat Pay public key
//!
//! WeChat Pay moves merchants from platform certificates to its public key gradually. Over
//! seven days a growing share of notifications is signed with the public key: 0.1 %, 1 %, 5 %,
//! 10 %, 20 %, 50 %, then all of them. After that, `/v3/certificates` is refused. Through the
//! switch, configure both: certificate mode and the public key. Answers come signed with the key
//! the request names in `Wechatpay-Serial`; the client always names the public key when it holds
//! one, so it can verify every answer. Notifications are verified with whichever key signed them.
//! A message signed with the public key never triggers a certificate download, so nothing fails
//! once certificates are gone. [`Client::verified_by_key`] counts which key signed what was
//! verified. When the platform-certificate count stays at zero, drop certificate mode.
//!
//! ```no_run
//! # fn build(merchant_key: wechat_pay::v3::MerchantKey, api_v3_key: wechat_pay::v3::ApiV3Key, public_pem: &str) -> Result<(), wechat_pay::Error> {
//! use wechat_pay::v3::{Client, WechatPayKey};
//!
//! let client = Client::builder("1900009191", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C", merchant_key, api_v3_key)
//!     .platform_certificates() // still signed with certificates, in part
//!     .wechat_pay_key(WechatPayKey::from_pem("PUB_KEY_ID_0114232134912410000000000000", public_pem)?)
//!     .build()?;
//! let (by_public_key, by_certificate) = client.verified_by_key();
//! # let _ = (by_public_key, by_certificate); Ok(()) }
//! ```
//!
//! The emulator runs the same switch (`wechat_sandbox::wxpay_v3::key_switch`), compressed by its
//! time scale.
//!
//! # Cryptography backend
//!
//! RSA (PKCS#1 v1.5 with SHA-256, OAEP with SHA-1) and AES-256-GCM come from
//! [`aws-lc-rs`](https://docs.rs/aws-lc-rs): AWS-LC's constant-time implementations (the same
//! library rustls uses here), several times faster at RSA signing than the pure-Rust `rsa`
//! crate. The `benches/v3_crypto.rs` benchmark measures signing and verification next to
//! `openssl speed rsa2048`.

pub mod aead;
pub mod api;
pub mod certificates;
pub mod client;
mod error;
pub mod keys;
pub mod media;
pub mod notify;
pub mod pay_params;
pub mod signing;

pub use api::*;
pub use client::{Client, ClientBuilder, DEFAULT_DOWNLOAD_INTERVAL, Request};
pub use error::V3ErrorCode;
pub use keys::{ApiV3Key, KeyError, MerchantKey, WechatPayKey};
pub use notify::{Envelope, Notification, RefundNotification, TransactionNotification};
pub use pay_params::{AppParams, JsapiParams};
pub use signing::{RequestSignature, SignRequest, SignatureError, WechatPaySignature};
