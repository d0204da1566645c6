//! WeChat Official Account and Mini Program APIs: a shared, single-flight access token, web
//! OAuth, `jscode2session`, template and subscribe messages, QR codes with scenes, menus, and an
//! inbound message router.
//!
//! # Module map
//!
//! Status: the crate is a workspace member with no modules yet (issue #3 builds it). The layout
//! it will take:
//!
//! - `client` — `Client::builder(app_id, app_secret)`: the one funnel that adds the access token,
//!   retries once on an expired token, and maps `errcode` to typed errors.
//! - `token` — `TokenStore` (in-memory; Redis behind the `redis` feature) and the single-flight
//!   refresh shared by every instance.
//! - `oauth`, `mini_program`, `messages`, `qrcode`, `menu`, `user` — one module per API family.
//! - `message` — the inbound callback: signature check, safe-mode crypto, decoding, dedupe and
//!   the `Router`.
