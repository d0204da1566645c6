//! The runnable programs that assemble the libraries: `wechat-sandbox` (a local emulator of
//! WeChat Pay, WeChat MP and Alipay), `pay-platform` (the aggregate payment platform for
//! merchants) and `vending-server` (the vending-machine order server).
//!
//! # Module map
//!
//! Status: no binaries yet (issues #4, #6 and #7 build them). Each binary will have a thin
//! `main.rs` (parse config, build state in one `wiring` function, serve `app(state)`), with its
//! routes, workers and wiring in a module of this library so that tests can call them directly.
//! Until then, the runnable demonstration is `cargo run -p wechat-pay --example jsapi_payment`.
