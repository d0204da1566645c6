#![doc = include_str!("../README.md")]
//! The pay platform's open API, for merchants: the signing scheme (documented in [`signing`]
//! precisely enough for any language), an async [`Client`] with typed calls, and the helpers to
//! verify the platform's callbacks and drop their duplicates.
//!
//! # Module map
//!
//! - [`signing`] — canonical strings, request and callback signatures, verification (the
//!   platform uses the same code to check requests).
//! - [`client`] — [`Client::builder`]`(app_id, secret, salt)`: create / get / close payments,
//!   create / get refunds, with `Idempotency-Key`; read and answer payers' WeChat Pay
//!   complaints ([`Client::complaints`], [`Client::respond_to_complaint`],
//!   [`Client::complaint_refund_progress`], [`Client::complete_complaint`]; each change also
//!   arrives as a `complaint.updated` callback).
//! - [`callbacks`] — [`Callbacks::handle`]: verify a callback (several secrets during a
//!   rotation), run your handler once per event, record it handled only when it succeeded.
//! - [`handled`] — which callback events were handled, shared by a merchant's instances:
//!   `RedisHandledEvents` (feature `redis`), `SqlHandledEvents` (features `postgres`, `mysql`,
//!   `sqlite`; it can record an event inside the transaction that handles it).
//! - [`replay`] — [`NonceStore`] (the platform's replayed-nonce check) with an in-memory store.
//! - [`Secret`], [`Error`] — credentials that never print (`secret`); the errors (`error`:
//!   [`Error`] for calls, [`StoreError`] for the stores you plug in).
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), merchant_client::Error> {
//! use merchant_client::{Client, CreatePayment, Fen, Secret};
//! let client = Client::builder("app_123", Secret::new("secret"), Secret::new("salt"))
//!     .base_url("http://127.0.0.1:8090")
//!     .build()?;
//! let created = client
//!     .create_payment(&CreatePayment::new("ORDER-1", Fen::new(350), "Cola").method("wechat_native"))
//!     .await?;
//! println!("send the buyer to {}", created.cashier_url);
//! # Ok(()) }
//! ```
//!
//! Receiving a callback (any web framework): the handler runs once per event, and an event is
//! recorded as handled only when the handler succeeded, so a failure is retried, never lost.
//!
//! ```
//! # async fn ship(order: &str) -> Result<(), std::io::Error> { Ok(()) }
//! # async fn run(header: &str, body: &[u8]) -> u16 {
//! use std::sync::Arc;
//! use merchant_client::{Callbacks, Error, Handled, MemoryHandledEvents, Secret};
//!
//! let callbacks = Callbacks::new(Secret::new("secret"), Arc::new(MemoryHandledEvents::new()));
//! // During a secret rotation: .also_accept(Secret::new("old-secret")) until the grace ends.
//! let outcome = callbacks
//!     .handle(header, body, |event| async move {
//!         if event["type"] == "payment.succeeded" {
//!             ship(event["data"]["out_trade_no"].as_str().unwrap_or_default()).await?;
//!         }
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .await;
//! match outcome {
//!     Ok(Handled::Done | Handled::Duplicate) => 200,
//!     Err(Error::Signature(_) | Error::Decode(_) | Error::NoEventId) => 400, // not from the platform
//!     Err(_) => 503,                                      // handler failed or busy: sent again
//! }
//! # }
//! ```

pub mod callbacks;
pub mod client;
mod error;
pub mod handled;
pub mod replay;
mod secret;
pub mod signing;

pub use callbacks::{Callbacks, Claim, Handled, HandledEvents, MemoryHandledEvents};
pub use client::{
    Client, ClientBuilder, ComplaintView, CreatePayment, CreateRefund, PaymentView, RefundProgress,
    RefundView,
};
pub use error::{BoxError, Error, StoreError};
#[cfg(feature = "redis")]
pub use handled::RedisHandledEvents;
#[cfg(feature = "sql")]
pub use handled::SqlHandledEvents;
/// Money: an integer count of fen (`pay-money`'s, the type every crate of the family uses).
pub use pay_money::Fen;
pub use replay::{MemoryNonceStore, NonceStore};
pub use secret::Secret;

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
