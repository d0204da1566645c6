//! The user's side of an Official Account: follow, unfollow, scan a QR ticket, send text, tap a
//! menu. Each action is POSTed to the app's callback URL exactly as WeChat would (signed; in safe
//! mode when the app has an EncodingAESKey), and the passive reply is decoded and returned.

use serde::{Deserialize, Serialize};
use wechat_mp::message::{AesKey, IncomingMessage, MessageBody, signature};

use crate::state::{MpUser, hex32, key, now};
use crate::{SandboxState, lock};

/// What the user does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UserAction {
    /// Follows the account (without a QR code).
    Subscribe,
    /// Unfollows.
    Unsubscribe,
    /// Scans a QR ticket (follows through it when not yet a follower).
    Scan {
        /// The ticket from `/cgi-bin/qrcode/create`.
        ticket: String,
    },
    /// Sends a text message.
    Text {
        /// The text.
        content: String,
    },
    /// Taps a `click` menu button.
    Click {
        /// The button key.
        key: String,
    },
}

/// A user action for an app.
#[derive(Debug, Clone, Deserialize)]
pub struct EventRequest {
    /// The Official Account.
    pub app_id: String,
    /// The user.
    pub open_id: String,
    /// The action.
    #[serde(flatten)]
    pub action: UserAction,
}

/// What the app answered.
#[derive(Debug, Clone, Serialize)]
pub struct EventOutcome {
    /// The callback's HTTP status.
    pub status: u16,
    /// The passive reply, decrypted, if any.
    pub reply_xml: Option<String>,
    /// The reply's `MsgType`.
    pub reply_type: Option<String>,
    /// The reply's text, for text replies.
    pub reply_content: Option<String>,
}

/// Why an action could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Unknown app, ticket, or missing callback.
    #[error("{0}")]
    Invalid(String),
    /// The callback could not be reached or answered nonsense.
    #[error("callback failed: {0}")]
    Callback(String),
}

fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(&format!(
        "<{name}><![CDATA[{}]]></{name}>",
        value.replace("]]>", "]]]]><![CDATA[>")
    ));
}

/// Performs the action and delivers it to the app's callback.
pub async fn deliver(state: &SandboxState, req: &EventRequest) -> Result<EventOutcome, EventError> {
    let app = state
        .mp_app(&req.app_id)
        .ok_or_else(|| EventError::Invalid(format!("unknown app {}", req.app_id)))?
        .clone();
    let url = app
        .callback_url
        .clone()
        .ok_or_else(|| EventError::Invalid(format!("app {} has no callback url", req.app_id)))?;
    let created = now();
    let fields = perform(state, req, created)?;
    let mut message = String::from("<xml>");
    field(&mut message, "ToUserName", &format!("gh_{}", req.app_id));
    field(&mut message, "FromUserName", &req.open_id);
    message.push_str(&format!("<CreateTime>{created}</CreateTime>"));
    message.push_str(&fields);
    message.push_str("</xml>");

    let aes = app
        .encoding_aes_key
        .as_ref()
        .map(AesKey::from_encoding_aes_key)
        .transpose()
        .map_err(|e| EventError::Invalid(e.to_string()))?;
    let token = app.token.expose();
    let (query, body) = sealed(req, token, aes.as_ref(), message, created)?;
    let mut target = reqwest::Url::parse(&url)
        .map_err(|e| EventError::Invalid(format!("bad callback url {url:?}: {e}")))?;
    target.query_pairs_mut().extend_pairs(&query);
    let response = state
        .http
        .post(target)
        .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .map_err(|e| EventError::Callback(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| EventError::Callback(e.without_url().to_string()))?;
    outcome(status, text.trim(), aes.as_ref(), token, &req.app_id)
}

/// Applies the action to the user's state; the message's fields that say what happened.
fn perform(state: &SandboxState, req: &EventRequest, created: i64) -> Result<String, EventError> {
    let mut fields = String::new();
    let mut mp = lock(&state.mp);
    let user_key = key(&req.app_id, &req.open_id);
    let user = mp.users.entry(user_key.clone()).or_default().clone();
    match &req.action {
        UserAction::Subscribe => {
            field(&mut fields, "MsgType", "event");
            field(&mut fields, "Event", "subscribe");
            mp.users.insert(
                user_key,
                MpUser {
                    subscribed: true,
                    subscribe_time: created,
                    qr_scene_str: String::new(),
                },
            );
        }
        UserAction::Unsubscribe => {
            field(&mut fields, "MsgType", "event");
            field(&mut fields, "Event", "unsubscribe");
            mp.users.insert(
                user_key,
                MpUser {
                    subscribed: false,
                    ..user
                },
            );
        }
        UserAction::Scan { ticket } => {
            let t = mp
                .tickets
                .get(ticket)
                .filter(|t| t.app_id == req.app_id)
                .cloned()
                .ok_or_else(|| EventError::Invalid(format!("unknown ticket {ticket}")))?;
            if t.expires_at.is_some_and(|e| e <= created) {
                return Err(EventError::Invalid(format!("ticket {ticket} has expired")));
            }
            field(&mut fields, "MsgType", "event");
            if user.subscribed {
                field(&mut fields, "Event", "SCAN");
                field(&mut fields, "EventKey", &t.scene);
            } else {
                field(&mut fields, "Event", "subscribe");
                field(&mut fields, "EventKey", &format!("qrscene_{}", t.scene));
                mp.users.insert(
                    user_key,
                    MpUser {
                        subscribed: true,
                        subscribe_time: created,
                        qr_scene_str: t.scene.clone(),
                    },
                );
            }
            field(&mut fields, "Ticket", ticket);
        }
        UserAction::Text { content } => {
            mp.msg_seq += 1;
            let msg_id = 7_000_000_000_000_000 + mp.msg_seq;
            field(&mut fields, "MsgType", "text");
            field(&mut fields, "Content", content);
            fields.push_str(&format!("<MsgId>{msg_id}</MsgId>"));
        }
        UserAction::Click { key } => {
            field(&mut fields, "MsgType", "event");
            field(&mut fields, "Event", "CLICK");
            field(&mut fields, "EventKey", key);
        }
    }
    Ok(fields)
}

/// A callback's query parameters.
type Query = Vec<(&'static str, String)>;

/// The callback's query (signed) and body: `message` as it is, or encrypted in safe mode.
fn sealed(
    req: &EventRequest,
    token: &str,
    aes: Option<&AesKey>,
    message: String,
    created: i64,
) -> Result<(Query, String), EventError> {
    let timestamp = created.to_string();
    let nonce = hex32()[..10].to_owned();
    let signature = signature::sign(&[token, &timestamp, &nonce]);
    let mut query = vec![
        ("signature", signature),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.clone()),
        ("openid", req.open_id.clone()),
    ];
    let body = match aes {
        None => message,
        Some(key) => {
            let encrypt = key
                .encrypt(&message, &req.app_id)
                .map_err(|e| EventError::Invalid(e.to_string()))?;
            query.push(("encrypt_type", "aes".to_owned()));
            query.push((
                "msg_signature",
                signature::sign(&[token, &timestamp, &nonce, &encrypt]),
            ));
            format!(
                "<xml><ToUserName><![CDATA[gh_{}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
                req.app_id
            )
        }
    };
    Ok((query, body))
}

/// What the app answered (`reply`, trimmed): nothing, or a passive reply (decrypted in safe
/// mode), checked as the WeChat server would.
fn outcome(
    status: u16,
    reply: &str,
    aes: Option<&AesKey>,
    token: &str,
    app_id: &str,
) -> Result<EventOutcome, EventError> {
    if reply.is_empty() || reply == "success" || status >= 400 {
        return Ok(EventOutcome {
            status,
            reply_xml: None,
            reply_type: None,
            reply_content: None,
        });
    }
    let reply_xml = match aes {
        Some(key) if reply.contains("<Encrypt>") => decrypt_reply(key, token, app_id, reply)?,
        _ => reply.to_owned(),
    };
    let decoded = IncomingMessage::from_xml(reply_xml.as_bytes())
        .map_err(|e| EventError::Callback(format!("the reply is not a valid message: {e}")))?;
    let reply_type = decoded.raw.get("MsgType").cloned();
    let reply_content = match &decoded.body {
        MessageBody::Text { content, .. } => Some(content.clone()),
        _ => None,
    };
    Ok(EventOutcome {
        status,
        reply_xml: Some(reply_xml),
        reply_type,
        reply_content,
    })
}

/// Checks and decrypts a safe-mode reply, as the WeChat server does.
fn decrypt_reply(
    key: &AesKey,
    token: &str,
    app_id: &str,
    body: &str,
) -> Result<String, EventError> {
    let between = |open: &str, close: &str| -> Option<String> {
        let start = body.find(open)? + open.len();
        let end = body[start..].find(close)? + start;
        Some(body[start..end].replace("<![CDATA[", "").replace("]]>", ""))
    };
    let bad = |what: &str| EventError::Callback(format!("encrypted reply without {what}"));
    let encrypt = between("<Encrypt>", "</Encrypt>").ok_or_else(|| bad("Encrypt"))?;
    let msg_signature =
        between("<MsgSignature>", "</MsgSignature>").ok_or_else(|| bad("MsgSignature"))?;
    let timestamp = between("<TimeStamp>", "</TimeStamp>").ok_or_else(|| bad("TimeStamp"))?;
    let nonce = between("<Nonce>", "</Nonce>").ok_or_else(|| bad("Nonce"))?;
    signature::verify(&[token, &timestamp, &nonce, &encrypt], &msg_signature)
        .map_err(|_| EventError::Callback("the reply's msg_signature is wrong".into()))?;
    key.decrypt(&encrypt, app_id)
        .map_err(|e| EventError::Callback(format!("cannot decrypt the reply: {e}")))
}
