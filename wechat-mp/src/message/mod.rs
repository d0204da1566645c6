//! The inbound side: WeChat POSTs what users send (messages, menu clicks, follows, QR scans) to
//! the server URL; this module checks, decrypts, decodes, deduplicates and routes it, and
//! encodes the reply.
//!
//! - [`Callback`] — the whole endpoint: URL check, timestamp window, signatures, safe mode,
//!   dedupe, routing, reply encoding.
//! - [`Router`] — handlers by event key, event kind, keyword, regex, message type, fallback.
//! - [`IncomingMessage`], [`MessageBody`], [`Event`] — decoded messages, with `Unknown` variants.
//! - [`Reply`] — passive replies (text, image, news).
//! - [`Deduper`] — repeated-delivery filtering (memory; Redis with the `redis` feature).
//! - [`signature`], [`AesKey`] — the callback signatures and safe-mode crypto.

mod callback;
mod crypto;
mod dedupe;
mod reply;
mod router;
pub mod signature;
mod types;
mod xml;

pub use callback::{Callback, CallbackBuilder, CallbackQuery, EMPTY_REPLY, MessageMode, UrlCheck};
pub use crypto::AesKey;
#[cfg(feature = "redis")]
pub use dedupe::RedisDeduper;
pub use dedupe::{Deduper, MemoryDeduper};
pub use reply::{Article, Reply};
pub use router::{Handler, LateReply, Router};
pub use types::{Event, EventKind, IncomingMessage, MessageBody, MsgType};
pub use xml::MAX_BODY_BYTES;
