//! The merchant open-API signing scheme of the pay platform, and the async client merchants use
//! to take payments through it.
//!
//! # Module map
//!
//! Status: the crate is a workspace member with no modules yet (issue #6 builds it). The layout
//! it will take:
//!
//! - `signing` — the canonical string, HMAC-SHA256 signatures, verification helpers for both the
//!   platform (timestamp window, nonce replay) and the merchant (callbacks, event dedupe).
//! - `client` — `Client::builder(app_id, secret, salt)` with typed payment and refund calls.
