#![doc = include_str!("../README.md")]
//! Take payments through WeChat Pay, Alipay or the sandbox behind one strategy trait, and be
//! told exactly once when a payment succeeds — even when the channel's notification is retried,
//! arrives twice at once on two instances, or never arrives.
//!
//! # Module map
//!
//! - [`channels`] — [`PaymentChannel`] (the strategy: create, query, close, refund, query a
//!   refund, verify a notification, acknowledge) and [`Channels`] (pick by id or pay method);
//!   one folder per channel: `wechat`, `alipay` (feature `alipay`), `sandbox` (the reference).
//! - [`payment`] — [`NewPayment`] (what creating one takes), [`Payment`], [`Refund`], their
//!   states; `transitions` — the only state changes
//!   they allow, decided in one place for notifications, the reconciler and the service.
//! - [`events`] — the outbox events a change records ([`EventKind`]: `payment.succeeded`,
//!   `refund.abnormal`…), each with its typed [`EventData`] (the payment, the refund).
//! - [`service`] — [`Payments`]: create / get / close / refund / sync, idempotent by number;
//!   `service/refunds.rs` — the refund life cycle (below); `service/codes.rs` — the buyer's
//!   payment code scanned by the merchant ([`Payments::pay_by_code`]: charged once across
//!   instances, the buyer's confirmation waited for, then reversed).
//! - [`payment_code`] — [`PaymentCode`]: a scanned code and, from its prefix, its provider.
//! - [`notify`] — [`NotifyProcessor`]: the fixed verify → decode → load → check amount →
//!   compare-and-set → outbox → ack sequence.
//! - [`store`] — [`PaymentStore`] (payments, refunds, outbox; every change a compare-and-set with
//!   its events in the same transaction): [`MemoryStore`], `SqlStore` (`sqlite`, `postgres`,
//!   `mysql`).
//! - [`outbox`] — [`Dispatcher`]: at-least-once delivery with retries and a dead state;
//!   `rabbitmq` (feature) to fan it out over RabbitMQ.
//! - [`reconcile`] — [`Reconciler`]: asks the channel about payments and refunds whose
//!   notification did not come (or that got no definitive answer), closes expired payments,
//!   sends unsettled refunds again; safe on every instance at once.
//! - [`bills`] — [`BillReconciler`]: the providers' daily bills compared with the store,
//!   row by row (matched, settled through the usual transitions, or flagged for a human), runs
//!   and their items stored, once per day and channel across instances.
//! - [`short_poll`] — [`ShortPoll`]: while a buyer's page waits, an unpaid payment's channel is
//!   asked every few seconds, one query at a time across every viewer and instance.
//! - [`fees`] — [`fees::FeeRate`]: a platform's fee in basis points, rounded down to the fen;
//!   what a refund gives back of it.
//! - [`sharing`] — service-provider mode: [`sharing::ProfitSharing`] shares the platform's fee
//!   from each sub-merchant's payment once it succeeds (outbox-driven, exactly once, retried
//!   while pending), and takes it back before a refund.
//! - [`lock`], [`nonce`], [`rate_limit`] — owner-token locks, replay protection and fixed-window
//!   rate limits (memory; Redis with `redis`).
//! - [`ChannelError`], [`StoreError`], [`Error`] (`error`) — what channels, stores and the
//!   service fail with.
//!
//! # What is final
//!
//! Only a definitive answer from the channel ends a payment or a refund: a refusal from the
//! channel's own table of final codes ([`ChannelError::is_refusal`]), or an answer whose
//! signature verified. A timeout, a transport error, a temporary provider error (`SYSTEMERROR`,
//! `FREQUENCY_LIMITED`, `INVALID_REQ_TOO_MUCH`, `ACQ.SYSTEM_ERROR`…), a code this crate does not
//! know, and an answer that fails verification or decoding are *unknown*: the money stays
//! PENDING (the refund's `last_error` says why) and the [`Reconciler`] finishes it.
//!
//! A refund's life: PENDING (recorded before the channel is asked, the payment REFUNDING) →
//! SUCCEEDED when the channel says it is done (at once, by its notification, or by a query),
//! ABNORMAL when the channel took it but could not deliver the money (WeChat v3 `ABNORMAL`, v2
//! `CHANGE`: still counted as being refunded, the payment never PAID again, until the merchant
//! resolves it with [`Payments::resolve_abnormal_refund`] and the channel says SUCCESS or
//! CLOSED), or FAILED when the channel refused it for good (nothing moved; the amount can be
//! refunded again). Without a definitive answer it stays PENDING and is sent again **with the
//! same `out_refund_no`** — idempotent at the channel, so never twice — after the channel's wait
//! (a balance to top up: 30 minutes; a rate limit: a minute) or a backoff of 30 s doubling to an
//! hour. While a refund is open its money cannot be refunded under another number. A caller
//! that gets a PENDING refund waits for its `refund.succeeded` / `refund.failed` /
//! `refund.abnormal` event; it never retries with a new number. Payments created without an
//! expiry get one per method ([`service::DEFAULT_EXPIRY`], [`Payments::expire_after`]), so every
//! pending payment ends in the end.
//!
//! # Configuring WeChat and Alipay, and mounting the notify processor
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
//! use aggregate_pay::channels::wechat::WechatChannel;
//! use aggregate_pay::channels::RawNotify;
//! use aggregate_pay::store::SqlStore;
//! use aggregate_pay::{Channels, Fen, NewPayment, NotifyProcessor, PayMethod, Payments};
//!
//! let wechat = wechat_pay::Client::builder("wx2421b1c4370ec43b", "10000100",
//!         wechat_pay::ApiKey::new("your-api-key"))
//!     .build()?;
//! let alipay = AlipayClient::builder(
//!     "2021000000000001",
//!     alipay::PrivateKey::from_pem(&std::fs::read_to_string("app_private_key.pem")?)?,
//!     alipay::PublicKey::from_pem(&std::fs::read_to_string("alipay_public_key.pem")?)?,
//! )
//! .seller_id("2088000000000001")
//! .build()?;
//! let channels = Channels::new().with(WechatChannel::new(wechat)).with(AlipayChannel::new(alipay));
//! let store = Arc::new(SqlStore::connect("postgres://localhost/shop").await?);
//! let payments = Payments::new(channels.clone(), store.clone());
//! let processor = NotifyProcessor::new(channels, store);
//!
//! // Checkout: the method picks the channel; the action is what the page needs.
//! let (payment, action) = payments
//!     .create(NewPayment::new("ORDER-42", Fen::new(350), "Cola", PayMethod::WechatNative,
//!                             "https://shop.example/notify/wechat"))
//!     .await?;
//! println!("{}", serde_json::to_string(&action)?); // {"type":"qr_code","content":"weixin://…"}
//!
//! // In your HTTP framework, POST /notify/{channel} is just:
//! async fn notify(processor: &NotifyProcessor, channel: &str, body: Vec<u8>) -> (u16, String) {
//!     let handled = processor.handle(channel, &RawNotify::payment(body)).await;
//!     (handled.ack.status, handled.ack.body) // with handled.ack.content_type
//! }
//! # Ok(()) }
//! ```
//!
//! Exactly-once handling: run a [`Dispatcher`] with your [`EventHandler`]. Events are delivered
//! at least once (a crash between your side effect and the acknowledgement re-delivers), so make
//! the side effect idempotent by [`OutboxEvent::id`] — e.g. insert it into a table with a unique
//! key in the same transaction as your own change.
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn aggregate_pay::PaymentStore>) {
//! use std::sync::Arc;
//! use aggregate_pay::{Dispatcher, EventHandler, EventKind, OutboxEvent};
//!
//! struct ShipTheOrder;
//!
//! #[async_trait::async_trait]
//! impl EventHandler for ShipTheOrder {
//!     async fn handle(&self, event: &OutboxEvent) -> Result<(), aggregate_pay::HandlerError> {
//!         if event.kind == EventKind::PaymentSucceeded {
//!             let order_no = &event.data.payment.out_trade_no;
//!             // ship `order_no`, once per event.id
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! Dispatcher::new(store, Arc::new(ShipTheOrder))
//!     .run(std::time::Duration::from_millis(500), shutdown)
//!     .await;
//! # }
//! ```
//!
//! # Taking a payment, exactly once (runnable, with the in-process sandbox channel)
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

pub mod bills;
pub mod channels;
mod error;
pub mod events;
pub mod fees;
pub mod lock;
pub mod nonce;
pub mod notify;
pub mod outbox;
pub mod payment;
pub mod payment_code;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;
pub mod rate_limit;
pub mod reconcile;
#[cfg(feature = "redis")]
mod redis;
pub mod service;
pub mod sharing;
pub mod short_poll;
pub mod store;
mod transitions;

pub use bills::{BillOutcome, BillReconciler};
pub use channels::{Channels, PayAction, PaymentChannel};
pub use error::{ChannelError, Error, StoreError};
pub use events::{EventData, EventKind, OutboxEvent};
pub use notify::{Handled, NotifyOutcome, NotifyProcessor};
pub use outbox::{Dispatcher, EventHandler, HandlerError, RetryPolicy};
/// Money: an integer count of fen, `pay-money`'s (the same type as `wechat_pay::Fen` and
/// `alipay::Fen`).
pub use pay_money::Fen;
pub use payment::{NewPayment, PayMethod, Payment, PaymentId, PaymentStatus, Refund, RefundStatus};
pub use payment_code::PaymentCode;
pub use reconcile::{ReconcileReport, Reconciler};
pub use service::Payments;
pub use short_poll::ShortPoll;
pub use store::{BillStore, MemoryStore, PaymentStore};
pub use transitions::Applied;

/// A unique id that sorts by creation time: `prefix`, the milliseconds since the epoch (12 hex
/// digits), 64 random bits (16 hex digits). Rows keyed by such ids are appended at the end of
/// their B-tree index, and rows made at about the same time sit on the same pages, so that a
/// burst of inserts, or of updates to recent payments, touches few pages instead of one page
/// each (random keys would).
pub(crate) fn sortable_id(prefix: &str) -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or(0) & 0xffff_ffff_ffff;
    format!("{prefix}{millis:012x}{}", random_hex(8))
}

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
