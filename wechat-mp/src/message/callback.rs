//! [`Callback`]: the server-URL endpoint, start to finish.
//!
//! For each POST: check the timestamp window (replays), verify the signature (`signature`, or in
//! safe mode `msg_signature` over the ciphertext), decrypt (safe mode; the app id inside must be
//! ours), decode, drop repeated deliveries, route, and encode the reply (encrypted in safe mode).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::crypto::AesKey;
use super::dedupe::{Deduper, MemoryDeduper};
use super::reply::encrypted_envelope;
use super::{IncomingMessage, Router, signature, xml};
use crate::{Error, Secret};

/// The query of the server-URL check (`GET`).
#[derive(Debug, Clone, Deserialize)]
pub struct UrlCheck {
    /// `signature`.
    pub signature: String,
    /// `timestamp`.
    pub timestamp: String,
    /// `nonce`.
    pub nonce: String,
    /// `echostr`: returned as the body when the signature is right.
    pub echostr: String,
}

/// The query of an inbound message (`POST`).
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    /// `signature`.
    pub signature: String,
    /// `timestamp`.
    pub timestamp: String,
    /// `nonce`.
    pub nonce: String,
    /// `openid` of the sender.
    pub openid: Option<String>,
    /// `aes` in safe mode.
    pub encrypt_type: Option<String>,
    /// `msg_signature` in safe mode.
    pub msg_signature: Option<String>,
}

/// The body answered when there is nothing to say (WeChat shows nothing and does not retry).
pub const EMPTY_REPLY: &str = "success";

/// The inbound endpoint of one Official Account.
///
/// ```
/// # async fn run() -> Result<(), wechat_mp::Error> {
/// use wechat_mp::Secret;
/// use wechat_mp::message::{Callback, CallbackQuery, EventKind, Reply, Router};
/// let router = Router::new()
///     .keyword("hi", |_| async { Reply::text("hello!") })
///     .event(EventKind::Scan, |m: wechat_mp::message::IncomingMessage| async move {
///         Reply::text(format!("scanned {}", m.event_key().unwrap_or_default()))
///     });
/// let callback = Callback::builder("wx1234567890abcdef", Secret::new("callback-token"))
///     .router(router)
///     .build()?;
/// // In the HTTP handler for POST /wechat/callback:
/// # let (query, body): (CallbackQuery, Vec<u8>) = todo!();
/// let response_body: String = callback.handle(&query, &body).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Callback {
    app_id: String,
    token: Secret,
    aes_key: Option<AesKey>,
    mode: MessageMode,
    window: Duration,
    dedupe_ttl: Duration,
    deduper: Arc<dyn Deduper>,
    router: Router,
}

/// Which messages the endpoint accepts, as the Official Account's "message encryption mode" is
/// set in its server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    /// 明文模式: plaintext only (no EncodingAESKey configured). The signature covers the token,
    /// timestamp and nonce — not the body.
    Plain,
    /// 兼容模式: plaintext and encrypted both — only while switching to safe mode, and only when
    /// asked for ([`CallbackBuilder::compatible_mode`]): a plaintext message's signature covers
    /// no body, so one `(timestamp, nonce, signature)` seen anywhere forges any message for the
    /// replay window.
    Compatible,
    /// 安全模式: encrypted only, each with a `msg_signature` over its ciphertext (the default
    /// with an EncodingAESKey). A plaintext message is refused ([`Error::Unencrypted`]).
    Safe,
}

/// Configures a [`Callback`].
#[derive(Debug)]
pub struct CallbackBuilder {
    app_id: String,
    token: Secret,
    aes_key: Option<Secret>,
    compatible: bool,
    window: Duration,
    deduper: Option<Arc<dyn Deduper>>,
    router: Router,
}

impl CallbackBuilder {
    /// The EncodingAESKey: safe mode, where only encrypted messages are accepted (see
    /// [`MessageMode`]).
    pub fn encoding_aes_key(mut self, key: Secret) -> Self {
        self.aes_key = Some(key);
        self
    }

    /// Compatible mode: plaintext messages accepted beside encrypted ones (needs the
    /// EncodingAESKey). Only for the switch from plaintext to safe mode: plaintext signatures
    /// cover no body.
    pub fn compatible_mode(mut self) -> Self {
        self.compatible = true;
        self
    }

    /// How far a message's timestamp may be from now (default 5 minutes).
    pub fn replay_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Where deliveries are remembered (default: in this process).
    pub fn deduper(mut self, deduper: Arc<dyn Deduper>) -> Self {
        self.deduper = Some(deduper);
        self
    }

    /// The handlers.
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Callback, Error> {
        if self.token.expose().is_empty() {
            return Err(Error::Config("the callback token is empty".into()));
        }
        let mode = match (&self.aes_key, self.compatible) {
            (None, false) => MessageMode::Plain,
            (None, true) => {
                return Err(Error::Config(
                    "compatible mode needs the EncodingAESKey".into(),
                ));
            }
            (Some(_), true) => MessageMode::Compatible,
            (Some(_), false) => MessageMode::Safe,
        };
        Ok(Callback {
            mode,
            aes_key: self
                .aes_key
                .as_ref()
                .map(AesKey::from_encoding_aes_key)
                .transpose()?,
            app_id: self.app_id,
            token: self.token,
            window: self.window,
            dedupe_ttl: Duration::from_secs(60),
            deduper: self
                .deduper
                .unwrap_or_else(|| Arc::new(MemoryDeduper::new())),
            router: self.router,
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Callback {
    /// Starts configuring the endpoint of `app_id` with the callback `token` set in the
    /// Official Account's server configuration.
    pub fn builder(app_id: impl Into<String>, token: Secret) -> CallbackBuilder {
        CallbackBuilder {
            app_id: app_id.into(),
            token,
            aes_key: None,
            compatible: false,
            window: Duration::from_secs(300),
            deduper: None,
            router: Router::new(),
        }
    }

    /// Which messages it accepts.
    pub fn mode(&self) -> MessageMode {
        self.mode
    }

    /// The server-URL check: returns `echostr` (the response body) if the signature is right.
    pub fn verify_url(&self, query: &UrlCheck) -> Result<String, Error> {
        signature::verify(
            &[self.token.expose(), &query.timestamp, &query.nonce],
            &query.signature,
        )?;
        Ok(query.echostr.clone())
    }

    /// Handles one inbound POST and returns the response body.
    pub async fn handle(&self, query: &CallbackQuery, body: &[u8]) -> Result<String, Error> {
        self.handle_at(query, body, unix_now()).await
    }

    /// [`Callback::handle`] at an explicit time (Unix seconds), for tests and recorded fixtures.
    pub async fn handle_at(
        &self,
        query: &CallbackQuery,
        body: &[u8],
        now: i64,
    ) -> Result<String, Error> {
        let timestamp: i64 = query
            .timestamp
            .parse()
            .map_err(|_| Error::decode("timestamp", "not a number"))?;
        let window = self.window.as_secs();
        if timestamp.abs_diff(now) > window {
            return Err(Error::StaleTimestamp {
                timestamp,
                now,
                window_secs: window,
            });
        }
        let token = self.token.expose();
        let encrypted = query.encrypt_type.as_deref() == Some("aes");
        if !encrypted && self.mode == MessageMode::Safe {
            return Err(Error::Unencrypted);
        }
        let fields = if encrypted {
            let key = self.aes_key.as_ref().ok_or_else(|| {
                Error::Config("an encrypted message arrived but no EncodingAESKey is set".into())
            })?;
            let outer = xml::decode(body)?;
            let encrypt = outer
                .get("Encrypt")
                .ok_or_else(|| Error::decode("Encrypt", "missing"))?;
            let msg_signature = query
                .msg_signature
                .as_deref()
                .ok_or_else(|| Error::decode("msg_signature", "missing"))?;
            signature::verify(
                &[token, &query.timestamp, &query.nonce, encrypt],
                msg_signature,
            )?;
            xml::decode(key.decrypt(encrypt, &self.app_id)?.as_bytes())?
        } else {
            signature::verify(&[token, &query.timestamp, &query.nonce], &query.signature)?;
            xml::decode(body)?
        };
        let message = IncomingMessage::from_fields(fields)?;

        let first = match self
            .deduper
            .first_seen(&message.dedupe_key(), self.dedupe_ttl)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                // Better a repeated answer than a lost message.
                tracing::warn!(error = %e, "dedupe store unavailable; handling the message anyway");
                true
            }
        };
        if !first {
            tracing::debug!(key = %message.dedupe_key(), "repeated delivery ignored");
            return Ok(EMPTY_REPLY.to_owned());
        }

        let reply = self.router.dispatch(&message).await;
        let Some(reply_xml) = reply.to_xml(&message.from_user, &message.to_user, now) else {
            return Ok(EMPTY_REPLY.to_owned());
        };
        match (&self.aes_key, encrypted) {
            (Some(key), true) => {
                let encrypt = key.encrypt(&reply_xml, &self.app_id)?;
                let nonce = crate::random_hex()?;
                let ts = now.to_string();
                let signature = signature::sign(&[token, &ts, &nonce, &encrypt]);
                Ok(encrypted_envelope(&encrypt, &signature, now, &nonce))
            }
            _ => Ok(reply_xml),
        }
    }
}
