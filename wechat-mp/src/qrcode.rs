//! QR codes with a scene: scanning one sends the scene to the callback (a subscribe event with
//! `qrscene_…` for new followers, a `SCAN` event for existing ones).

use percent_encoding::utf8_percent_encode;
use serde::Deserialize;

use crate::client::Auth;
use crate::oauth::COMPONENT;
use crate::{Client, Error};

/// The longest a temporary QR code lives: 30 days.
pub const MAX_TEMPORARY_SECONDS: u32 = 30 * 24 * 3600;

/// What a QR code carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrScene {
    /// An integer scene (1 to 100,000 for permanent codes; any 32-bit value for temporary ones).
    Id(u32),
    /// A string scene, 1 to 64 characters.
    Str(String),
}

/// How long a QR code lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrLifetime {
    /// Expires after this many seconds (at most [`MAX_TEMPORARY_SECONDS`]).
    Temporary(u32),
    /// Never expires (WeChat limits how many exist).
    Permanent,
}

/// A created QR code.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct QrTicket {
    /// Exchanged for the image at [`Client::qrcode_image_url`].
    pub ticket: String,
    /// Seconds until it expires (temporary codes).
    pub expire_seconds: Option<u32>,
    /// The URL the QR code encodes (to draw it yourself).
    pub url: String,
}

impl Client {
    /// Creates a QR code for `scene`.
    pub async fn create_qrcode(
        &self,
        lifetime: QrLifetime,
        scene: &QrScene,
    ) -> Result<QrTicket, Error> {
        let (action, scene_json) = match (lifetime, scene) {
            (QrLifetime::Temporary(_), QrScene::Id(id)) => {
                ("QR_SCENE", serde_json::json!({ "scene_id": id }))
            }
            (QrLifetime::Temporary(_), QrScene::Str(s)) => {
                ("QR_STR_SCENE", serde_json::json!({ "scene_str": s }))
            }
            (QrLifetime::Permanent, QrScene::Id(id)) => {
                ("QR_LIMIT_SCENE", serde_json::json!({ "scene_id": id }))
            }
            (QrLifetime::Permanent, QrScene::Str(s)) => {
                ("QR_LIMIT_STR_SCENE", serde_json::json!({ "scene_str": s }))
            }
        };
        match scene {
            QrScene::Str(s) if s.is_empty() || s.chars().count() > 64 => {
                return Err(Error::Config(
                    "a QR scene string must be 1 to 64 characters".into(),
                ));
            }
            QrScene::Id(id) if lifetime == QrLifetime::Permanent && !(1..=100_000).contains(id) => {
                return Err(Error::Config(
                    "a permanent QR scene id must be 1 to 100000".into(),
                ));
            }
            _ => {}
        }
        let mut body = serde_json::json!({
            "action_name": action,
            "action_info": { "scene": scene_json },
        });
        if let QrLifetime::Temporary(seconds) = lifetime {
            if seconds == 0 || seconds > MAX_TEMPORARY_SECONDS {
                return Err(Error::Config(format!(
                    "a temporary QR code lives 1 to {MAX_TEMPORARY_SECONDS} seconds"
                )));
            }
            body["expire_seconds"] = seconds.into();
        }
        self.post("/cgi-bin/qrcode/create", &[], &body, Auth::AccessToken)
            .await
    }

    /// The URL of the QR image for `ticket`.
    pub fn qrcode_image_url(&self, ticket: &str) -> String {
        format!(
            "{}/cgi-bin/showqrcode?ticket={}",
            self.inner.mp_base_url,
            utf8_percent_encode(ticket, COMPONENT)
        )
    }
}
