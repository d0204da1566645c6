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
pub mod notify;
pub mod pay_params;
pub mod signing;

pub use api::*;
pub use client::{Client, ClientBuilder, Request};
pub use error::V3ErrorCode;
pub use keys::{ApiV3Key, KeyError, MerchantKey, WechatPayKey};
pub use notify::{Envelope, Notification, RefundNotification, TransactionNotification};
pub use pay_params::{AppParams, JsapiParams};
pub use signing::{RequestSignature, SignatureError, WechatPaySignature};
