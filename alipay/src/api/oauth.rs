//! Buyer login: `alipay.system.oauth.token` exchanges the one-time `auth_code` the Alipay Mini
//! Program (`my.getAuthCode`) or the web authorization page
//! ([`Client::oauth_authorize_url`](crate::Client::oauth_authorize_url)) hands over for the
//! buyer's user id and an access token; `alipay.user.info.share` reads the buyer's public profile
//! with that token.
//! Both take their parameters beside `biz_content`, which they do not send. Codes and tokens
//! never print.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Request;

/// What a web login asks the buyer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScope {
    /// `auth_base`: who they are, without a consent page.
    Base,
    /// `auth_user`: who they are and their profile, after they consent.
    User,
}

impl AuthScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScope::Base => "auth_base",
            AuthScope::User => "auth_user",
        }
    }
}

/// What to exchange.
#[derive(Clone, PartialEq, Eq)]
enum Grant {
    AuthorizationCode(String),
    RefreshToken(String),
}

/// `alipay.system.oauth.token`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct OauthToken {
    #[serde(skip)]
    grant: Grant,
}

impl fmt::Debug for OauthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.grant {
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
        };
        f.debug_struct("OauthToken")
            .field("grant_type", &kind)
            .finish_non_exhaustive()
    }
}

impl OauthToken {
    /// Exchanges a one-time `auth_code`.
    pub fn code(auth_code: impl Into<String>) -> Self {
        OauthToken {
            grant: Grant::AuthorizationCode(auth_code.into()),
        }
    }

    /// Renews an access token with its refresh token.
    pub fn refresh(refresh_token: impl Into<String>) -> Self {
        OauthToken {
            grant: Grant::RefreshToken(refresh_token.into()),
        }
    }
}

/// Who logged in, and the token to read their profile with.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OauthTokenResponse {
    /// The buyer's Alipay user id (`2088…`; absent for apps on open ids).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The buyer's open id for this app (apps on open ids).
    #[serde(default)]
    pub open_id: Option<String>,
    /// The access token (`auth_token` of `alipay.user.info.share`).
    pub access_token: String,
    /// Seconds it lasts.
    #[serde(default, deserialize_with = "number_or_text")]
    pub expires_in: u64,
    /// Renews it.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl OauthTokenResponse {
    /// The buyer's stable identifier for this app: the user id, else the open id.
    pub fn buyer(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.open_id.as_deref())
    }
}

impl fmt::Debug for OauthTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OauthTokenResponse")
            .field("user_id", &self.user_id)
            .field("open_id", &self.open_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Request for OauthToken {
    const METHOD: &'static str = "alipay.system.oauth.token";
    const BIZ_CONTENT: bool = false;
    type Response = OauthTokenResponse;

    fn top_level(&self) -> Vec<(&'static str, String)> {
        match &self.grant {
            Grant::AuthorizationCode(code) => vec![
                ("grant_type", "authorization_code".into()),
                ("code", code.clone()),
            ],
            Grant::RefreshToken(token) => vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", token.clone()),
            ],
        }
    }
}

/// `alipay.user.info.share`: the profile of the buyer whose access token this is.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct UserInfoShare {
    #[serde(skip)]
    auth_token: String,
}

impl fmt::Debug for UserInfoShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserInfoShare").finish_non_exhaustive()
    }
}

impl UserInfoShare {
    /// With the buyer's access token ([`OauthTokenResponse::access_token`]).
    pub fn new(auth_token: impl Into<String>) -> Self {
        UserInfoShare {
            auth_token: auth_token.into(),
        }
    }
}

/// The buyer's public profile (what they agreed to share).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// The Alipay user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The open id for this app.
    #[serde(default)]
    pub open_id: Option<String>,
    /// Nickname.
    #[serde(default)]
    pub nick_name: Option<String>,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: Option<String>,
}

impl Request for UserInfoShare {
    const METHOD: &'static str = "alipay.user.info.share";
    const BIZ_CONTENT: bool = false;
    type Response = UserInfo;

    fn top_level(&self) -> Vec<(&'static str, String)> {
        vec![("auth_token", self.auth_token.clone())]
    }
}

/// Alipay writes `expires_in` as a number or as text.
pub(super) fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    match N::deserialize(d)? {
        N::Number(n) => Ok(n),
        N::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}
