#![doc = include_str!("../README.md")]
//! WeChat Official Account and Mini Program APIs: a shared, single-flight access token, web
//! OAuth, Mini Program login, template / subscribe / customer-service messages, QR codes with
//! scenes, menus, follower info, and the inbound message endpoint with its router.
//!
//! # Module map
//!
//! - [`client`] — [`Client`]: the funnel that adds the access token, maps `errcode` to
//!   [`Error::Api`], and on `40001` / `40014` / `42001` refreshes the token and retries once.
//! - [`token`] — [`TokenStore`] (in memory by default, [`token::RedisTokenStore`] with the `redis`
//!   feature) and the single-flight refresh shared by every caller and instance.
//! - [`oauth`] — web OAuth: authorize URL, code exchange, refresh, profile.
//! - [`mini_program`] — `jscode2session` and user-data decryption with its watermark check.
//! - [`messages`] — template, subscribe and customer-service messages.
//! - [`qrcode`], [`menu`], [`user`] — QR codes with scenes, the custom menu, follower info.
//! - [`message`] — the inbound endpoint: [`message::Callback`], [`message::Router`], decoding,
//!   safe mode, dedupe, replies.
//! - [`Secret`], [`Error`] — secrets that never print (`secret`); the one error type (`error`).
//!
//! # Examples
//!
//! Web OAuth in the Official Account (see [`oauth`]), a Mini Program login (see
//! [`mini_program`]), a template message (see [`messages`]), and an inbound handler with a
//! keyword rule and subscribe / scan handlers:
//!
//! ```
//! # async fn run() -> Result<(), wechat_mp::Error> {
//! use wechat_mp::message::{Callback, Event, EventKind, IncomingMessage, MessageBody, Reply, Router};
//! use wechat_mp::Secret;
//!
//! let router = Router::new()
//!     .keyword("help", |_| async { Reply::text("Scan a machine's QR code to buy.") })
//!     .event(EventKind::Subscribe, |m: IncomingMessage| async move {
//!         match m.body {
//!             MessageBody::Event(Event::Subscribe { scene: Some(scene), .. }) => {
//!                 Reply::text(format!("Welcome! Merchant {scene} is now bound."))
//!             }
//!             _ => Reply::text("Welcome!"),
//!         }
//!     })
//!     .event(EventKind::Scan, |m: IncomingMessage| async move {
//!         Reply::text(format!("Merchant {} is now bound.", m.event_key().unwrap_or_default()))
//!     });
//! let callback = Callback::builder("wx1234567890abcdef", Secret::new("callback-token"))
//!     .router(router)
//!     .build()?;
//! // GET  /wechat/callback  → callback.verify_url(&query)?        (the echostr body)
//! // POST /wechat/callback  → callback.handle(&query, &body).await? (the reply body)
//! # let _ = callback; Ok(()) }
//! ```
//!
//! # Choices this crate makes
//!
//! - Errors from the HTTP stack have their URL removed: query strings carry the app secret or
//!   the access token.
//! - A token rejected by WeChat is removed from the store only if it is still the current one,
//!   so an instance never deletes a token another instance just refreshed.
//! - A repeated inbound delivery gets `success` without running the handlers again; if the
//!   dedupe store is down, the message is handled anyway (a repeated answer beats a lost one).

pub mod client;
mod error;
pub mod menu;
pub mod message;
pub mod messages;
pub mod mini_program;
pub mod oauth;
pub mod qrcode;
mod secret;
pub mod token;
pub mod user;

pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use menu::{Button, Menu};
pub use messages::{MiniProgramState, SubscribeMessage, TemplateMessage};
pub use mini_program::{Session, Watermark};
pub use oauth::{OAuthScope, OAuthToken, OAuthUserInfo};
pub use qrcode::{QrLifetime, QrScene, QrTicket};
pub use secret::Secret;
pub use token::{MemoryTokenStore, StoredToken, TokenSource, TokenStore};
pub use user::UserInfo;

/// 32 random hex characters (lock owners, nonces).
pub(crate) fn random_hex() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| Error::Crypto("no randomness available"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
