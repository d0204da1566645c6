//! Inbound messages and events, decoded into enums that keep what they do not know.

use std::collections::BTreeMap;

use crate::Error;

/// A message or event a user sent to the Official Account.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IncomingMessage {
    /// `ToUserName`: the Official Account's id.
    pub to_user: String,
    /// `FromUserName`: the sender's openid.
    pub from_user: String,
    /// `CreateTime` (Unix seconds).
    pub create_time: i64,
    /// What was sent.
    pub body: MessageBody,
    /// Every field received.
    pub raw: BTreeMap<String, String>,
}

/// The content of an inbound message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageBody {
    /// `text`.
    Text {
        /// `Content`.
        content: String,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `image`.
    Image {
        /// `PicUrl`.
        pic_url: String,
        /// `MediaId`.
        media_id: String,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `voice`.
    Voice {
        /// `MediaId`.
        media_id: String,
        /// `Format` (`amr`, `speex`).
        format: String,
        /// `Recognition`, when speech recognition is on.
        recognition: Option<String>,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `video` or `shortvideo`.
    Video {
        /// `MediaId`.
        media_id: String,
        /// `ThumbMediaId`.
        thumb_media_id: String,
        /// Whether it is a short video.
        short: bool,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `location`.
    Location {
        /// `Location_X`: latitude.
        latitude: f64,
        /// `Location_Y`: longitude.
        longitude: f64,
        /// `Scale`: map zoom.
        scale: Option<u32>,
        /// `Label`: the place's description.
        label: Option<String>,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `link`.
    Link {
        /// `Title`.
        title: String,
        /// `Description`.
        description: String,
        /// `Url`.
        url: String,
        /// `MsgId`.
        msg_id: Option<String>,
    },
    /// `event`.
    Event(Event),
    /// A message type this crate does not know.
    Unknown {
        /// `MsgType`.
        msg_type: String,
    },
}

/// An inbound event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `subscribe`: a new follower; `scene` is set when they followed through a QR code
    /// (`EventKey=qrscene_…`, prefix removed).
    Subscribe {
        /// The QR scene, without the `qrscene_` prefix.
        scene: Option<String>,
        /// The QR ticket.
        ticket: Option<String>,
    },
    /// `unsubscribe`.
    Unsubscribe,
    /// `SCAN`: an existing follower scanned a QR code.
    Scan {
        /// The QR scene.
        scene: String,
        /// The QR ticket.
        ticket: Option<String>,
    },
    /// `CLICK`: a menu button.
    Click {
        /// The button's key.
        key: String,
    },
    /// `VIEW`: a menu link.
    View {
        /// The URL opened.
        url: String,
        /// `MenuId`.
        menu_id: Option<String>,
    },
    /// `LOCATION`: a reported position.
    Location {
        /// `Latitude`.
        latitude: f64,
        /// `Longitude`.
        longitude: f64,
        /// `Precision`.
        precision: Option<f64>,
    },
    /// `TEMPLATESENDJOBFINISH`: the result of a template message.
    TemplateSendJobFinish {
        /// `MsgID` of the template message.
        msg_id: String,
        /// `Status` (`success`, `failed:user block`, `failed: system failed`).
        status: String,
    },
    /// An event this crate does not know.
    Unknown {
        /// `Event`.
        event: String,
        /// `EventKey`.
        key: Option<String>,
    },
}

/// The kind of an inbound message, for routing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MsgType {
    /// `text`.
    Text,
    /// `image`.
    Image,
    /// `voice`.
    Voice,
    /// `video` or `shortvideo`.
    Video,
    /// `location`.
    Location,
    /// `link`.
    Link,
    /// `event`.
    Event,
    /// Anything else.
    Other(String),
}

/// The kind of an event, for routing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// `subscribe` (with or without a QR scene).
    Subscribe,
    /// `unsubscribe`.
    Unsubscribe,
    /// `SCAN`.
    Scan,
    /// `CLICK`.
    Click,
    /// `VIEW`.
    View,
    /// `LOCATION`.
    Location,
    /// `TEMPLATESENDJOBFINISH`.
    TemplateSendJobFinish,
    /// Any other event, by its `Event` value (compared case-insensitively).
    Other(String),
}

fn field<'a>(raw: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Error> {
    raw.get(name)
        .map(String::as_str)
        .ok_or_else(|| Error::decode(name, "missing"))
}

fn opt(raw: &BTreeMap<String, String>, name: &str) -> Option<String> {
    raw.get(name).filter(|v| !v.is_empty()).cloned()
}

fn number<T: std::str::FromStr>(raw: &BTreeMap<String, String>, name: &str) -> Result<T, Error> {
    field(raw, name)?
        .trim()
        .parse()
        .map_err(|_| Error::decode(name, "not a number"))
}

fn opt_number<T: std::str::FromStr>(
    raw: &BTreeMap<String, String>,
    name: &str,
) -> Result<Option<T>, Error> {
    match opt(raw, name) {
        None => Ok(None),
        Some(_) => number(raw, name).map(Some),
    }
}

impl IncomingMessage {
    /// Decodes a plaintext inbound message body (see `message::xml` limits). Signatures and
    /// decryption are [`super::Callback`]'s job; this only decodes.
    pub fn from_xml(body: &[u8]) -> Result<Self, Error> {
        Self::from_fields(super::xml::decode(body)?)
    }

    /// Decodes the fields of an inbound message.
    pub fn from_fields(raw: BTreeMap<String, String>) -> Result<Self, Error> {
        let msg_type = field(&raw, "MsgType")?.to_owned();
        let msg_id = opt(&raw, "MsgId");
        let body = match msg_type.as_str() {
            "text" => MessageBody::Text {
                content: field(&raw, "Content")?.to_owned(),
                msg_id,
            },
            "image" => MessageBody::Image {
                pic_url: field(&raw, "PicUrl")?.to_owned(),
                media_id: field(&raw, "MediaId")?.to_owned(),
                msg_id,
            },
            "voice" => MessageBody::Voice {
                media_id: field(&raw, "MediaId")?.to_owned(),
                format: opt(&raw, "Format").unwrap_or_default(),
                recognition: opt(&raw, "Recognition"),
                msg_id,
            },
            "video" | "shortvideo" => MessageBody::Video {
                media_id: field(&raw, "MediaId")?.to_owned(),
                thumb_media_id: opt(&raw, "ThumbMediaId").unwrap_or_default(),
                short: msg_type == "shortvideo",
                msg_id,
            },
            "location" => MessageBody::Location {
                latitude: number(&raw, "Location_X")?,
                longitude: number(&raw, "Location_Y")?,
                scale: opt_number(&raw, "Scale")?,
                label: opt(&raw, "Label"),
                msg_id,
            },
            "link" => MessageBody::Link {
                title: opt(&raw, "Title").unwrap_or_default(),
                description: opt(&raw, "Description").unwrap_or_default(),
                url: field(&raw, "Url")?.to_owned(),
                msg_id,
            },
            "event" => MessageBody::Event(decode_event(&raw)?),
            _ => MessageBody::Unknown { msg_type },
        };
        Ok(IncomingMessage {
            to_user: field(&raw, "ToUserName")?.to_owned(),
            from_user: field(&raw, "FromUserName")?.to_owned(),
            create_time: number(&raw, "CreateTime")?,
            body,
            raw,
        })
    }

    /// The message's kind.
    pub fn msg_type(&self) -> MsgType {
        match &self.body {
            MessageBody::Text { .. } => MsgType::Text,
            MessageBody::Image { .. } => MsgType::Image,
            MessageBody::Voice { .. } => MsgType::Voice,
            MessageBody::Video { .. } => MsgType::Video,
            MessageBody::Location { .. } => MsgType::Location,
            MessageBody::Link { .. } => MsgType::Link,
            MessageBody::Event(_) => MsgType::Event,
            MessageBody::Unknown { msg_type } => MsgType::Other(msg_type.clone()),
        }
    }

    /// The event's kind, for events.
    pub fn event_kind(&self) -> Option<EventKind> {
        let MessageBody::Event(e) = &self.body else {
            return None;
        };
        Some(match e {
            Event::Subscribe { .. } => EventKind::Subscribe,
            Event::Unsubscribe => EventKind::Unsubscribe,
            Event::Scan { .. } => EventKind::Scan,
            Event::Click { .. } => EventKind::Click,
            Event::View { .. } => EventKind::View,
            Event::Location { .. } => EventKind::Location,
            Event::TemplateSendJobFinish { .. } => EventKind::TemplateSendJobFinish,
            Event::Unknown { event, .. } => EventKind::Other(event.to_ascii_lowercase()),
        })
    }

    /// The event key (menu key, QR scene, URL), for events that have one.
    pub fn event_key(&self) -> Option<&str> {
        match &self.body {
            MessageBody::Event(Event::Subscribe { scene, .. }) => scene.as_deref(),
            MessageBody::Event(Event::Scan { scene, .. }) => Some(scene),
            MessageBody::Event(Event::Click { key }) => Some(key),
            MessageBody::Event(Event::View { url, .. }) => Some(url),
            MessageBody::Event(Event::Unknown { key, .. }) => key.as_deref(),
            _ => None,
        }
    }

    /// The text, for text messages.
    pub fn text(&self) -> Option<&str> {
        match &self.body {
            MessageBody::Text { content, .. } => Some(content),
            _ => None,
        }
    }

    /// What identifies a delivery: `MsgId`, or sender + time + event for events (WeChat re-sends
    /// a message it got no answer to within 5 seconds, up to three times).
    pub fn dedupe_key(&self) -> String {
        match self.raw.get("MsgId").or_else(|| self.raw.get("MsgID")) {
            Some(id) if !matches!(self.body, MessageBody::Event(_)) => format!("msg:{id}"),
            _ => format!(
                "evt:{}:{}:{}:{}",
                self.from_user,
                self.create_time,
                self.raw
                    .get("Event")
                    .map(String::as_str)
                    .unwrap_or_default(),
                self.raw
                    .get("EventKey")
                    .map(String::as_str)
                    .unwrap_or_default()
            ),
        }
    }
}

fn decode_event(raw: &BTreeMap<String, String>) -> Result<Event, Error> {
    let event = field(raw, "Event")?;
    let key = opt(raw, "EventKey");
    Ok(match event.to_ascii_lowercase().as_str() {
        "subscribe" => Event::Subscribe {
            scene: key.map(|k| k.strip_prefix("qrscene_").map(str::to_owned).unwrap_or(k)),
            ticket: opt(raw, "Ticket"),
        },
        "unsubscribe" => Event::Unsubscribe,
        "scan" => Event::Scan {
            scene: key.ok_or_else(|| Error::decode("EventKey", "missing"))?,
            ticket: opt(raw, "Ticket"),
        },
        "click" => Event::Click {
            key: key.ok_or_else(|| Error::decode("EventKey", "missing"))?,
        },
        "view" => Event::View {
            url: key.ok_or_else(|| Error::decode("EventKey", "missing"))?,
            menu_id: opt(raw, "MenuId"),
        },
        "location" => Event::Location {
            latitude: number(raw, "Latitude")?,
            longitude: number(raw, "Longitude")?,
            precision: opt_number(raw, "Precision")?,
        },
        "templatesendjobfinish" => Event::TemplateSendJobFinish {
            msg_id: opt(raw, "MsgID")
                .or_else(|| opt(raw, "MsgId"))
                .ok_or_else(|| Error::decode("MsgID", "missing"))?,
            status: opt(raw, "Status").unwrap_or_default(),
        },
        _ => Event::Unknown {
            event: event.to_owned(),
            key,
        },
    })
}
