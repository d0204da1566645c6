//! The runnable programs that assemble the libraries: `wechat-sandbox` (a local emulator of
//! WeChat Pay, WeChat MP and Alipay), `pay-platform` (the aggregate payment platform for
//! merchants) and `vending-server` (the vending-machine order server).
//!
//! # Module map
//!
//! - [`sandbox`] — the emulator: WeChat Pay v2 gateway, WeChat MP API, Alipay gateway, control
//!   API, notifications with retries; `app(state)` for tests, `spawn` for in-process use.
//!
//! Status: `pay-platform` (#6) and `vending-server` (#7) are not built yet. Each binary has a thin
//! `main.rs` (parse config, build state, serve `app(state)`); everything testable lives here.

pub mod sandbox;
