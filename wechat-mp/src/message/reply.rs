//! Passive replies: the body of the HTTP response to an inbound message.

use super::xml::{push_cdata, push_field};

/// An article of a news reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Picture URL.
    pub pic_url: String,
    /// Where tapping leads.
    pub url: String,
}

/// What to answer an inbound message with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Reply {
    /// Nothing (WeChat gets `success` and shows nothing).
    #[default]
    Empty,
    /// A text message.
    Text(String),
    /// An image, by media id.
    Image {
        /// The media id.
        media_id: String,
    },
    /// Articles (WeChat shows the first one).
    News(Vec<Article>),
}

impl Reply {
    /// A text reply.
    pub fn text(content: impl Into<String>) -> Self {
        Reply::Text(content.into())
    }

    /// An image reply.
    pub fn image(media_id: impl Into<String>) -> Self {
        Reply::Image {
            media_id: media_id.into(),
        }
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        matches!(self, Reply::Empty)
    }

    /// The reply XML from the account (`from`) to the user (`to`), or `None` for [`Reply::Empty`].
    pub fn to_xml(&self, to: &str, from: &str, create_time: i64) -> Option<String> {
        let mut out = String::from("<xml>");
        push_field(&mut out, "ToUserName", to);
        push_field(&mut out, "FromUserName", from);
        out.push_str(&format!("<CreateTime>{create_time}</CreateTime>"));
        match self {
            Reply::Empty => return None,
            Reply::Text(content) => {
                push_field(&mut out, "MsgType", "text");
                push_field(&mut out, "Content", content);
            }
            Reply::Image { media_id } => {
                push_field(&mut out, "MsgType", "image");
                out.push_str("<Image>");
                push_field(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            Reply::News(articles) => {
                push_field(&mut out, "MsgType", "news");
                out.push_str(&format!(
                    "<ArticleCount>{}</ArticleCount><Articles>",
                    articles.len()
                ));
                for a in articles {
                    out.push_str("<item>");
                    push_field(&mut out, "Title", &a.title);
                    push_field(&mut out, "Description", &a.description);
                    push_field(&mut out, "PicUrl", &a.pic_url);
                    push_field(&mut out, "Url", &a.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
        }
        out.push_str("</xml>");
        Some(out)
    }
}

/// `<Encrypt>…</Encrypt>` reply envelope of safe mode.
pub(crate) fn encrypted_envelope(
    encrypt: &str,
    signature: &str,
    timestamp: i64,
    nonce: &str,
) -> String {
    let mut out = String::from("<xml><Encrypt>");
    push_cdata(&mut out, encrypt);
    out.push_str("</Encrypt><MsgSignature>");
    push_cdata(&mut out, signature);
    out.push_str(&format!(
        "</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce>"
    ));
    push_cdata(&mut out, nonce);
    out.push_str("</Nonce></xml>");
    out
}
