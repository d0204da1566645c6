//! Follower information.

use serde::Deserialize;

use crate::client::Auth;
use crate::{Client, Error};

/// A follower of the Official Account.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// `1` if the user follows the account; when `0`, only `openid` is set.
    pub subscribe: u8,
    /// openid.
    pub openid: String,
    /// Language.
    #[serde(default)]
    pub language: String,
    /// When the user last followed (Unix seconds).
    #[serde(default)]
    pub subscribe_time: i64,
    /// unionid.
    pub unionid: Option<String>,
    /// The account's remark for the user.
    #[serde(default)]
    pub remark: String,
    /// Tags.
    #[serde(default)]
    pub tagid_list: Vec<i64>,
    /// How the user followed (`ADD_SCENE_QR_CODE`…).
    #[serde(default)]
    pub subscribe_scene: String,
    /// The integer QR scene the user followed through.
    #[serde(default)]
    pub qr_scene: i64,
    /// The string QR scene the user followed through.
    #[serde(default)]
    pub qr_scene_str: String,
}

impl UserInfo {
    /// Whether the user follows the account.
    pub fn is_subscribed(&self) -> bool {
        self.subscribe == 1
    }
}

impl Client {
    /// Information about the follower `openid`.
    pub async fn user_info(&self, openid: &str) -> Result<UserInfo, Error> {
        self.get(
            "/cgi-bin/user/info",
            &[("openid", openid), ("lang", "zh_CN")],
            Auth::AccessToken,
        )
        .await
    }
}
