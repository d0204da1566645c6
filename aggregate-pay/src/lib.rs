//! Payment channels (WeChat, Alipay, sandbox) behind one strategy trait, a notification template
//! that never double-processes or loses a payment, and the outbox, reconciliation and lock
//! machinery around them.
//!
//! # Module map
//!
//! Status: only `channels::alipay::rsa2` (Alipay's RSA2 signatures, feature `alipay`) exists so
//! far; issue #5 builds the rest. The layout it will take:
//!
//! - `channels/` — `PaymentChannel` and one folder per channel (`wechat`, `alipay`, `sandbox`);
//!   adding a channel is one folder, one line in `channels/mod.rs` and one line in the shared
//!   contract test.
//! - `payment` — `Payment` and its state machine; `store` — `PaymentStore` (memory, SQLite,
//!   PostgreSQL, MySQL) with compare-and-set transitions and the outbox in one transaction.
//! - `notify` — `NotifyProcessor`, the fixed verify → decode → load → amount check → transition →
//!   outbox → ack sequence.
//! - `outbox`, `reconcile`, `lock`, `nonce` — delivery, active queries for missing
//!   notifications, distributed locks and replay protection.

pub mod channels;
