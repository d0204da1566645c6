//! [`Router`]: which handler answers an inbound message.
//!
//! Precedence, first match wins, independent of registration order between tiers:
//!
//! 1. event kind + event key (`CLICK` on `MENU_HELP`, `SCAN` of scene `bind-42`);
//! 2. event kind (`subscribe`, `SCAN`, `unsubscribe`…);
//! 3. exact keyword (the text, trimmed, equals the keyword);
//! 4. regular expressions, in registration order;
//! 5. message type (`image`, `voice`…);
//! 6. the fallback — which may be slow (a chatbot): with a deadline, WeChat gets an empty answer
//!    in time and the reply follows through the customer-service API.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use regex::Regex;

use super::{EventKind, IncomingMessage, MsgType, Reply};
use crate::{Client, Error};

/// Answers a message.
#[async_trait]
pub trait Handler: Send + Sync {
    /// The reply to `message` ([`Reply::Empty`] for none).
    async fn handle(&self, message: &IncomingMessage) -> Reply;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(IncomingMessage) -> Fut + Send + Sync,
    Fut: Future<Output = Reply> + Send,
{
    async fn handle(&self, message: &IncomingMessage) -> Reply {
        (self)(message.clone()).await
    }
}

/// Delivers a reply after the callback has answered (the customer-service message API).
#[async_trait]
pub trait LateReply: Send + Sync {
    /// Sends `reply` to the user `open_id`.
    async fn deliver(&self, open_id: &str, reply: Reply) -> Result<(), Error>;
}

#[async_trait]
impl LateReply for Client {
    async fn deliver(&self, open_id: &str, reply: Reply) -> Result<(), Error> {
        match reply {
            Reply::Empty => Ok(()),
            Reply::Text(text) => self.send_custom_text(open_id, &text).await,
            Reply::Image { media_id } => self.send_custom_image(open_id, &media_id).await,
            Reply::News(articles) => {
                // Customer-service news needs a different payload; send the first article as a
                // link so the user gets something.
                let text = articles
                    .first()
                    .map(|a| format!("{}\n{}", a.title, a.url))
                    .unwrap_or_default();
                self.send_custom_text(open_id, &text).await
            }
        }
    }
}

enum Matcher {
    EventKey(EventKind, String),
    Event(EventKind),
    Keyword(String),
    Regex(Regex),
    MsgType(MsgType),
}

impl Matcher {
    fn tier(&self) -> u8 {
        match self {
            Matcher::EventKey(..) => 0,
            Matcher::Event(_) => 1,
            Matcher::Keyword(_) => 2,
            Matcher::Regex(_) => 3,
            Matcher::MsgType(_) => 4,
        }
    }

    fn matches(&self, m: &IncomingMessage) -> bool {
        match self {
            Matcher::EventKey(kind, key) => {
                m.event_kind().as_ref() == Some(kind) && m.event_key() == Some(key.as_str())
            }
            Matcher::Event(kind) => m.event_kind().as_ref() == Some(kind),
            Matcher::Keyword(k) => m.text().is_some_and(|t| t.trim() == k),
            Matcher::Regex(r) => m.text().is_some_and(|t| r.is_match(t)),
            Matcher::MsgType(t) => &m.msg_type() == t,
        }
    }
}

struct Fallback {
    handler: Arc<dyn Handler>,
    deadline: Option<(Duration, Arc<dyn LateReply>)>,
}

/// Routes inbound messages to handlers.
///
/// ```
/// use wechat_mp::message::{Event, EventKind, MessageBody, Reply, Router};
/// let router = Router::new()
///     .keyword("help", |_| async { Reply::text("Reply 1 for orders, 2 for support") })
///     .regex(r"^order\s+\d+$", |m: wechat_mp::message::IncomingMessage| async move {
///         Reply::text(format!("looking up {}", m.text().unwrap_or_default()))
///     })
///     .unwrap()
///     .event(EventKind::Subscribe, |m: wechat_mp::message::IncomingMessage| async move {
///         match m.body {
///             MessageBody::Event(Event::Subscribe { scene: Some(scene), .. }) => {
///                 Reply::text(format!("welcome, bound to {scene}"))
///             }
///             _ => Reply::text("welcome"),
///         }
///     });
/// ```
#[derive(Default)]
pub struct Router {
    rules: Vec<(Matcher, Arc<dyn Handler>)>,
    fallback: Option<Fallback>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("rules", &self.rules.len())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl Router {
    /// A router with no rules (every message gets [`Reply::Empty`]).
    pub fn new() -> Self {
        Router::default()
    }

    fn rule(mut self, matcher: Matcher, handler: impl Handler + 'static) -> Self {
        self.rules.push((matcher, Arc::new(handler)));
        self
    }

    /// Handles `kind` events whose key is `key` (menu key, QR scene without `qrscene_`, URL).
    pub fn event_key(
        self,
        kind: EventKind,
        key: impl Into<String>,
        handler: impl Handler + 'static,
    ) -> Self {
        self.rule(Matcher::EventKey(kind, key.into()), handler)
    }

    /// Handles `kind` events.
    pub fn event(self, kind: EventKind, handler: impl Handler + 'static) -> Self {
        self.rule(Matcher::Event(kind), handler)
    }

    /// Handles text messages equal to `keyword` (surrounding whitespace ignored).
    pub fn keyword(self, keyword: impl Into<String>, handler: impl Handler + 'static) -> Self {
        self.rule(Matcher::Keyword(keyword.into()), handler)
    }

    /// Handles text messages matching `pattern`.
    pub fn regex(self, pattern: &str, handler: impl Handler + 'static) -> Result<Self, Error> {
        let regex = Regex::new(pattern)
            .map_err(|e| Error::Config(format!("invalid pattern {pattern:?}: {e}")))?;
        Ok(self.rule(Matcher::Regex(regex), handler))
    }

    /// Handles messages of type `msg_type`.
    pub fn msg_type(self, msg_type: MsgType, handler: impl Handler + 'static) -> Self {
        self.rule(Matcher::MsgType(msg_type), handler)
    }

    /// Handles whatever no rule matched.
    pub fn fallback(mut self, handler: impl Handler + 'static) -> Self {
        self.fallback = Some(Fallback {
            handler: Arc::new(handler),
            deadline: None,
        });
        self
    }

    /// Handles whatever no rule matched, with a deadline: if `handler` has not answered within
    /// `timeout` (WeChat waits 5 seconds), the callback answers empty and the reply, when it
    /// comes, is sent through `late` (the customer-service API).
    pub fn fallback_with_deadline(
        mut self,
        handler: impl Handler + 'static,
        timeout: Duration,
        late: Arc<dyn LateReply>,
    ) -> Self {
        self.fallback = Some(Fallback {
            handler: Arc::new(handler),
            deadline: Some((timeout, late)),
        });
        self
    }

    /// The reply to `message`.
    pub async fn dispatch(&self, message: &IncomingMessage) -> Reply {
        for tier in 0..5 {
            if let Some((_, handler)) = self
                .rules
                .iter()
                .find(|(m, _)| m.tier() == tier && m.matches(message))
            {
                return handler.handle(message).await;
            }
        }
        let Some(fallback) = &self.fallback else {
            return Reply::Empty;
        };
        let Some((timeout, late)) = &fallback.deadline else {
            return fallback.handler.handle(message).await;
        };
        let handler = fallback.handler.clone();
        let owned = message.clone();
        let mut task = tokio::spawn(async move { handler.handle(&owned).await });
        match tokio::time::timeout(*timeout, &mut task).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "fallback handler failed");
                Reply::Empty
            }
            Err(_) => {
                let late = late.clone();
                let to = message.from_user.clone();
                tokio::spawn(async move {
                    match task.await {
                        Ok(reply) if !reply.is_empty() => {
                            if let Err(e) = late.deliver(&to, reply).await {
                                tracing::warn!(error = %e, "late reply not delivered");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "fallback handler failed"),
                    }
                });
                Reply::Empty
            }
        }
    }
}
