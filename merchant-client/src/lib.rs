//! The pay platform's open API, for merchants: the signing scheme (documented in [`signing`]
//! precisely enough for any language), an async [`Client`] with typed calls, and the helpers to
//! verify the platform's callbacks and drop their duplicates.
//!
//! # Module map
//!
//! - [`signing`] — canonical strings, request and callback signatures, verification (the
//!   platform uses the same code to check requests).
//! - [`client`] — [`Client::builder`]`(app_id, secret, salt)`: create / get / close payments,
//!   create / get refunds, with `Idempotency-Key`.
//! - [`replay`] — [`NonceStore`] (replayed nonces, duplicate callbacks) with an in-memory store.
//! - [`Secret`], [`Error`] — credentials that never print; the one error type.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), merchant_client::Error> {
//! use merchant_client::{Client, CreatePayment, Secret};
//! let client = Client::builder("app_123", Secret::new("secret"), Secret::new("salt"))
//!     .base_url("http://127.0.0.1:8090")
//!     .build()?;
//! let created = client
//!     .create_payment(&CreatePayment::new("ORDER-1", 350, "Cola").method("wechat_native"))
//!     .await?;
//! println!("send the buyer to {}", created.cashier_url);
//! # Ok(()) }
//! ```
//!
//! Receiving a callback (any web framework):
//!
//! ```
//! # async fn run(header: &str, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! use merchant_client::{Callbacks, MemoryNonceStore, Secret};
//! let callbacks = Callbacks::new(Secret::new("secret"), std::sync::Arc::new(MemoryNonceStore::new()));
//! match callbacks.accept(header, body).await? {
//!     Some(event) => { /* first delivery of event["id"]: act on event["type"] */ }
//!     None => { /* a duplicate: already handled */ }
//! }
//! // Answer 2xx either way.
//! # Ok(()) }
//! ```

pub mod client;
mod error;
pub mod replay;
mod secret;
pub mod signing;

pub use client::{
    Callbacks, Client, ClientBuilder, CreatePayment, CreateRefund, PaymentView, RefundView,
};
pub use error::Error;
pub use replay::{MemoryNonceStore, NonceStore};
pub use secret::Secret;

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
