//! Cross-crate behaviour: the project's own clients (`wechat-pay`, `wechat-mp`, the Alipay RSA2
//! primitives of `aggregate-pay`) against the sandbox emulator of `examples`, over real HTTP on
//! 127.0.0.1. Nothing here touches the internet.

// Test helpers outside `#[test]` functions panic on purpose: that is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bills;
mod channel_contract;
mod complaints;
mod key_switch;
mod layout;
mod merchant_events;
mod mutual_tls;
mod notifications;
mod payment_codes;
mod platform;
mod refunds;
mod sandbox_alipay;
mod sandbox_as_a_dependency;
mod sandbox_mp;
mod sandbox_wechat_pay;
mod sandbox_wechat_pay_v3;
mod service_provider;
mod support;
mod vending;
