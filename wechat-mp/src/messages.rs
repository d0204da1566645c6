//! Messages sent to users: template messages (Official Account), subscribe messages (Mini
//! Program) and customer-service messages (within 48 hours of the user's last message).
//!
//! ```no_run
//! # async fn run(client: wechat_mp::Client) -> Result<(), wechat_mp::Error> {
//! use wechat_mp::TemplateMessage;
//! let msg = TemplateMessage::new("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "TEMPLATE_ID_PAYMENT_OK")
//!     .url("https://shop.example/orders/20240101000001")
//!     .field("first", "Payment received")
//!     .field_colored("amount", "3.50 yuan", "#173177")
//!     .field("remark", "Thank you!");
//! let msgid = client.send_template(&msg).await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::Auth;
use crate::{Client, Error};

/// One value of a template's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateValue {
    /// The text.
    pub value: String,
    /// A `#RRGGBB` color (template messages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// A Mini Program page to open from a template message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MiniProgramPage {
    /// The Mini Program's app id.
    pub appid: String,
    /// The page path, with query.
    pub pagepath: String,
}

/// An Official Account template message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateMessage {
    touser: String,
    template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miniprogram: Option<MiniProgramPage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<String>,
    data: BTreeMap<String, TemplateValue>,
}

impl TemplateMessage {
    /// A message of template `template_id` to the user `to_openid`.
    pub fn new(to_openid: impl Into<String>, template_id: impl Into<String>) -> Self {
        TemplateMessage {
            touser: to_openid.into(),
            template_id: template_id.into(),
            url: None,
            miniprogram: None,
            client_msg_id: None,
            data: BTreeMap::new(),
        }
    }

    /// Opens this web page when tapped.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Opens this Mini Program page when tapped (preferred over `url` when both are set).
    pub fn mini_program(mut self, appid: impl Into<String>, pagepath: impl Into<String>) -> Self {
        self.miniprogram = Some(MiniProgramPage {
            appid: appid.into(),
            pagepath: pagepath.into(),
        });
        self
    }

    /// `client_msg_id`: WeChat drops a second message with the same id (idempotent sending).
    pub fn client_msg_id(mut self, id: impl Into<String>) -> Self {
        self.client_msg_id = Some(id.into());
        self
    }

    /// Sets the template keyword `key` to `value`.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(
            key.into(),
            TemplateValue {
                value: value.into(),
                color: None,
            },
        );
        self
    }

    /// Sets `key` to `value` in `color` (`#RRGGBB`).
    pub fn field_colored(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        color: impl Into<String>,
    ) -> Self {
        self.data.insert(
            key.into(),
            TemplateValue {
                value: value.into(),
                color: Some(color.into()),
            },
        );
        self
    }
}

/// Which version of a Mini Program a subscribe message opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MiniProgramState {
    /// The released version.
    Formal,
    /// The trial version.
    Trial,
    /// The development version.
    Developer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct SubscribeValue {
    value: String,
}

/// A Mini Program subscribe message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeMessage {
    touser: String,
    template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    miniprogram_state: Option<MiniProgramState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
    data: BTreeMap<String, SubscribeValue>,
}

impl SubscribeMessage {
    /// A message of template `template_id` to the user `to_openid` (who must have subscribed).
    pub fn new(to_openid: impl Into<String>, template_id: impl Into<String>) -> Self {
        SubscribeMessage {
            touser: to_openid.into(),
            template_id: template_id.into(),
            page: None,
            miniprogram_state: None,
            lang: None,
            data: BTreeMap::new(),
        }
    }

    /// The page opened when tapped.
    pub fn page(mut self, page: impl Into<String>) -> Self {
        self.page = Some(page.into());
        self
    }

    /// Which version of the Mini Program opens.
    pub fn state(mut self, state: MiniProgramState) -> Self {
        self.miniprogram_state = Some(state);
        self
    }

    /// The language (`zh_CN`, `en_US`, `zh_HK`, `zh_TW`).
    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    /// Sets the template keyword `key` (e.g. `thing1`, `amount2`) to `value`.
    pub fn field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(
            key.into(),
            SubscribeValue {
                value: value.into(),
            },
        );
        self
    }
}

#[derive(Deserialize)]
struct MsgIdReply {
    #[serde(default)]
    msgid: i64,
}

#[derive(Deserialize)]
struct Empty {}

impl Client {
    /// Sends a template message; returns WeChat's message id.
    pub async fn send_template(&self, message: &TemplateMessage) -> Result<i64, Error> {
        let reply: MsgIdReply = self
            .post(
                "/cgi-bin/message/template/send",
                &[],
                message,
                Auth::AccessToken,
            )
            .await?;
        Ok(reply.msgid)
    }

    /// Sends a Mini Program subscribe message.
    pub async fn send_subscribe(&self, message: &SubscribeMessage) -> Result<(), Error> {
        self.post::<Empty, _>(
            "/cgi-bin/message/subscribe/send",
            &[],
            message,
            Auth::AccessToken,
        )
        .await
        .map(|_| ())
    }

    /// Sends a customer-service text message (the user must have written within 48 hours).
    pub async fn send_custom_text(&self, to_openid: &str, content: &str) -> Result<(), Error> {
        let body = serde_json::json!({
            "touser": to_openid,
            "msgtype": "text",
            "text": { "content": content },
        });
        self.post::<Empty, _>(
            "/cgi-bin/message/custom/send",
            &[],
            &body,
            Auth::AccessToken,
        )
        .await
        .map(|_| ())
    }

    /// Sends a customer-service image message (a media id from the media upload API).
    pub async fn send_custom_image(&self, to_openid: &str, media_id: &str) -> Result<(), Error> {
        let body = serde_json::json!({
            "touser": to_openid,
            "msgtype": "image",
            "image": { "media_id": media_id },
        });
        self.post::<Empty, _>(
            "/cgi-bin/message/custom/send",
            &[],
            &body,
            Auth::AccessToken,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_message_json() {
        let m = TemplateMessage::new("o1", "t1")
            .mini_program("wxmini", "pages/order?id=1")
            .field("first", "paid")
            .field_colored("amount", "3.50", "#173177");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["touser"], "o1");
        assert_eq!(v["miniprogram"]["pagepath"], "pages/order?id=1");
        assert_eq!(v["data"]["first"]["value"], "paid");
        assert!(v["data"]["first"].get("color").is_none());
        assert_eq!(v["data"]["amount"]["color"], "#173177");
        assert!(v.get("url").is_none());
    }

    #[test]
    fn subscribe_message_json() {
        let m = SubscribeMessage::new("o1", "t1")
            .page("pages/index")
            .state(MiniProgramState::Trial)
            .field("thing1", "Cola");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["miniprogram_state"], "trial");
        assert_eq!(v["data"]["thing1"]["value"], "Cola");
    }
}
