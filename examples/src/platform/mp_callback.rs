//! The Official Account callback of pay-platform: merchants bind their WeChat by scanning a QR
//! scene (and get an "onboarding approved" template message), unbind by unfollowing; keyword
//! replies from `KEYWORDS_FILE`, and other text to an optional chatbot (`CHATBOT_URL`) with a
//! deadline after which the answer is sent later as a customer-service message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use wechat_mp::message::{Callback, Event, EventKind, IncomingMessage, MessageBody, Reply, Router};

use super::config::PlatformConfig;
use super::db::PlatformDb;
use crate::running::StartError;
use crate::settings::SecretSetting;

/// The Official Account callback: binding by QR scene, keyword replies, an optional chatbot.
pub fn build(
    config: &PlatformConfig,
    db: &PlatformDb,
    mp: &wechat_mp::Client,
    token: SecretSetting,
    aes_key: Option<SecretSetting>,
    deduper: Option<Arc<dyn wechat_mp::message::Deduper>>,
) -> Result<Callback, StartError> {
    let bind = |db: PlatformDb, mp: wechat_mp::Client, template: String| {
        move |m: IncomingMessage| {
            let (db, mp, template) = (db.clone(), mp.clone(), template.clone());
            async move { on_scan(&db, &mp, template, m).await }
        }
    };
    let template = config.template_onboarding_approved.clone();
    let unbind_db = db.clone();
    let mut router = Router::new()
        .event(
            EventKind::Subscribe,
            bind(db.clone(), mp.clone(), template.clone()),
        )
        .event(EventKind::Scan, bind(db.clone(), mp.clone(), template))
        .event(EventKind::Unsubscribe, move |m: IncomingMessage| {
            let db = unbind_db.clone();
            async move {
                if let Err(e) = db.unbind(&m.from_user).await {
                    tracing::error!(error = %e, "unbinding failed");
                }
                Reply::Empty
            }
        });
    for (keyword, reply) in keywords(config)? {
        router = router.keyword(keyword, move |_| {
            let reply = reply.clone();
            async move { Reply::text(reply) }
        });
    }
    if let Some(url) = &config.chatbot_url {
        let http = reqwest::Client::new();
        let url = url.clone();
        router = router.fallback_with_deadline(
            move |m: IncomingMessage| {
                let (http, url) = (http.clone(), url.clone());
                async move { ask_chatbot(&http, &url, m).await }
            },
            Duration::from_millis(config.chatbot_timeout_ms),
            Arc::new(mp.clone()),
        );
    }
    let mut builder =
        Callback::builder(mp.app_id(), wechat_mp::Secret::new(token.expose())).router(router);
    if let Some(key) = aes_key {
        // Safe mode: encrypted messages only, unless the operator asked for compatible mode.
        builder = builder.encoding_aes_key(wechat_mp::Secret::new(key.expose()));
        if config.wechat_mp_compatible_mode {
            builder = builder.compatible_mode();
        }
    }
    // WeChat re-sends a message it got no answer to; with several instances, the copy may reach
    // another one: a shared (Redis) deduper drops it there too.
    if let Some(deduper) = deduper {
        builder = builder.deduper(deduper);
    }
    builder
        .build()
        .map_err(StartError::backend("the Official Account callback"))
}

/// The keyword replies: `KEYWORDS_FILE` (a JSON object), or a help text in two languages.
fn keywords(config: &PlatformConfig) -> Result<HashMap<String, String>, StartError> {
    Ok(match &config.keywords_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(StartError::backend("keywords file"))?;
            serde_json::from_str(&text).map_err(StartError::backend("keywords file"))?
        }
        None => HashMap::from([
            (
                "help".to_owned(),
                "Scan your binding QR code to receive payment notices here.".to_owned(),
            ),
            (
                "帮助".to_owned(),
                "扫描商户绑定二维码即可在此接收收款通知。".to_owned(),
            ),
        ]),
    })
}

/// A subscription or scan: with a binding scene (`bind_…`), binds the user to its merchant
/// (the code is single-use) and tells the merchant by template message.
async fn on_scan(
    db: &PlatformDb,
    mp: &wechat_mp::Client,
    template: String,
    m: IncomingMessage,
) -> Reply {
    let Some(scene) = m
        .event_key()
        .filter(|s| s.starts_with("bind_"))
        .map(str::to_owned)
    else {
        return match m.body {
            MessageBody::Event(Event::Subscribe { .. }) => Reply::text("Welcome!"),
            _ => Reply::Empty,
        };
    };
    match db
        .bind(&scene, &m.from_user, crate::clock::unix_now())
        .await
    {
        Ok(Ok(merchant)) => {
            let message = wechat_mp::TemplateMessage::new(m.from_user.clone(), template)
                .field("first", "Onboarding approved")
                .field("keyword1", merchant.name.clone())
                .field("keyword2", merchant.app_id.clone());
            if let Err(e) = mp.send_template(&message).await {
                tracing::warn!(error = %e, "onboarding template message not sent");
            }
            Reply::text(format!(
                "Bound to merchant {}. Payment notices will arrive here.",
                merchant.name
            ))
        }
        Ok(Err(why)) => {
            // A second scan of a used code is someone else holding the QR.
            tracing::warn!(
                scene = %scene, open_id = %m.from_user, refused = ?why,
                "binding scan refused"
            );
            Reply::text(
                "This binding code is no longer valid: ask for a new one to bind this WeChat.",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "binding failed");
            Reply::text("Binding failed, please scan again.")
        }
    }
}

/// Asks the chatbot at `url` for a text message's reply (`{"reply": …}`); nothing if it does
/// not answer in time or sensibly.
async fn ask_chatbot(http: &reqwest::Client, url: &str, m: IncomingMessage) -> Reply {
    let Some(text) = m.text() else {
        return Reply::Empty;
    };
    let asked = http
        .post(url)
        .json_body(&serde_json::json!({"open_id": m.from_user, "text": text}))
        .send()
        .await;
    match asked {
        Ok(r) => match r
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        {
            Some(v) => v["reply"].as_str().map(Reply::text).unwrap_or_default(),
            None => Reply::Empty,
        },
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "chatbot unreachable");
            Reply::Empty
        }
    }
}

/// `reqwest` has its `json` feature off here; send JSON by hand.
trait JsonBody {
    fn json_body(self, value: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, value: &serde_json::Value) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(value.to_string())
    }
}
