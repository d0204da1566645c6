//! Take payments through WeChat Pay, Alipay or the sandbox behind one strategy trait, and be
//! told exactly once when a payment succeeds — even when the channel's notification is retried,
//! arrives twice at once on two instances, or never arrives.
//!
//! # Module map
//!
//! - [`channels`] — [`PaymentChannel`] (the strategy: create, query, close, refund, query a
//!   refund, verify a notification, acknowledge) and [`Channels`] (pick by id or pay method);
//!   one folder per channel: `wechat`, `alipay` (feature `alipay`), `sandbox` (the reference).
//! - [`payment`] — [`Payment`], [`Refund`], their states and the transitions allowed.
//! - [`service`] — [`Payments`]: create / get / close / refund / sync, idempotent by number.
//! - [`notify`] — [`NotifyProcessor`]: the fixed verify → decode → load → check amount →
//!   compare-and-set → outbox → ack sequence.
//! - [`store`] — [`PaymentStore`] (payments, refunds, outbox; every change a compare-and-set with
//!   its events in the same transaction): [`MemoryStore`], `SqlStore` (`sqlite`, `postgres`,
//!   `mysql`).
//! - [`outbox`] — [`Dispatcher`]: at-least-once delivery with retries and a dead state;
//!   `rabbitmq` (feature) to fan it out over RabbitMQ.
//! - [`reconcile`] — [`Reconciler`]: asks the channel about payments whose notification did not
//!   come, closes expired ones; safe on every instance at once.
//! - [`lock`], [`nonce`] — owner-token locks and replay protection (memory; Redis with `redis`).
//!
//! # Taking a payment, exactly once
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use aggregate_pay::{Channels, Fen, MemoryStore, NewPayment, NotifyProcessor, PayMethod, Payments};
//! use aggregate_pay::channels::sandbox::SandboxChannel;
//!
//! // WeChat and Alipay are registered the same way: WechatChannel::new(wechat_pay_client), …
//! let sandbox = Arc::new(SandboxChannel::new("demo-account", "sandbox-secret"));
//! let channels = Channels::new().with_shared(sandbox.clone());
//! let store = Arc::new(MemoryStore::new());
//! let payments = Payments::new(channels.clone(), store.clone());
//! let processor = NotifyProcessor::new(channels, store.clone());
//!
//! // 1. Create: what the front end needs comes back.
//! let (payment, action) = payments
//!     .create(NewPayment::new("ORDER-1", Fen::new(350), "Cola", PayMethod::Sandbox,
//!                             "https://shop.example/notify/sandbox"))
//!     .await?;
//!
//! // 2. Mount the processor behind your own route (POST /notify/{channel}) and return `ack`:
//! let notification = sandbox.pay("ORDER-1")?;           // the channel POSTs this
//! let handled = processor.handle("sandbox", &notification).await;
//! assert_eq!(handled.ack.body, "SUCCESS");
//! // …a retried copy changes nothing and records no second event:
//! processor.handle("sandbox", &notification).await;
//!
//! // 3. React to `payment.succeeded` once: run a Dispatcher with your EventHandler.
//! assert_eq!(payments.get(&payment.id).await?.status, aggregate_pay::PaymentStatus::Paid);
//! # let _ = action; Ok(()) }
//! ```

pub mod channels;
mod error;
pub mod events;
pub mod lock;
pub mod nonce;
pub mod notify;
pub mod outbox;
pub mod payment;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod reconcile;
pub mod service;
pub mod store;
mod transitions;

pub use channels::{Channels, PayAction, PaymentChannel};
pub use error::{ChannelError, Error, StoreError};
pub use events::{EventKind, OutboxEvent};
pub use notify::{Handled, NotifyOutcome, NotifyProcessor};
pub use outbox::{Dispatcher, EventHandler, RetryPolicy};
pub use payment::{PayMethod, Payment, PaymentId, PaymentStatus, Refund, RefundStatus};
pub use reconcile::{ReconcileReport, Reconciler};
pub use service::{NewPayment, Payments};
pub use store::{MemoryStore, PaymentStore};
pub use transitions::Applied;
/// Money: an integer count of fen (shared with `wechat-pay`).
pub use wechat_pay::Fen;

/// `2n` random hex characters.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source does not fail on supported platforms; ids would still be unique per
    // process through the time component below if it did.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
