//! Third-party apps (service providers): a merchant authorizes the provider's app on Alipay's
//! page ([`Client::app_auth_url`](crate::Client::app_auth_url)), which sends back an
//! `app_auth_code`; `alipay.open.auth.token.app` exchanges it (or a refresh token) for the
//! merchant's `app_auth_token`, which every call the provider makes for that merchant carries
//! ([`Client::execute_for`](crate::Client::execute_for)); `alipay.open.auth.token.app.query`
//! says whether it is still valid. Tokens never print.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Request;

/// `alipay.open.auth.token.app`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct OpenAuthToken {
    grant_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

impl fmt::Debug for OpenAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAuthToken")
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

impl OpenAuthToken {
    /// Exchanges the `app_auth_code` Alipay sent back.
    pub fn code(app_auth_code: impl Into<String>) -> Self {
        OpenAuthToken {
            grant_type: "authorization_code",
            code: Some(app_auth_code.into()),
            refresh_token: None,
        }
    }

    /// Renews a merchant's token with its `app_refresh_token`.
    pub fn refresh(app_refresh_token: impl Into<String>) -> Self {
        OpenAuthToken {
            grant_type: "refresh_token",
            code: None,
            refresh_token: Some(app_refresh_token.into()),
        }
    }
}

/// The merchant's token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OpenAuthTokenResponse {
    /// The merchant's Alipay user id (`2088…`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// The merchant's app the authorization covers.
    #[serde(default)]
    pub auth_app_id: Option<String>,
    /// What the provider calls with for this merchant.
    pub app_auth_token: String,
    /// Renews it.
    #[serde(default)]
    pub app_refresh_token: Option<String>,
    /// Seconds it lasts.
    #[serde(default, deserialize_with = "super::oauth::number_or_text")]
    pub expires_in: u64,
}

impl fmt::Debug for OpenAuthTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAuthTokenResponse")
            .field("user_id", &self.user_id)
            .field("auth_app_id", &self.auth_app_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl Request for OpenAuthToken {
    const METHOD: &'static str = "alipay.open.auth.token.app";
    type Response = OpenAuthTokenResponse;
}

/// `alipay.open.auth.token.app.query`: whether a merchant's token is still valid.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct OpenAuthTokenQuery {
    app_auth_token: String,
}

impl fmt::Debug for OpenAuthTokenQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAuthTokenQuery").finish_non_exhaustive()
    }
}

impl OpenAuthTokenQuery {
    /// The token `app_auth_token`.
    pub fn new(app_auth_token: impl Into<String>) -> Self {
        OpenAuthTokenQuery {
            app_auth_token: app_auth_token.into(),
        }
    }
}

/// What a token allows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct OpenAuthTokenInfo {
    /// The merchant's Alipay user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The merchant's app.
    #[serde(default)]
    pub auth_app_id: Option<String>,
    /// `valid` or `invalid`.
    pub status: String,
    /// The methods the merchant authorized.
    #[serde(default)]
    pub auth_methods: Vec<String>,
    /// Until when (China time).
    #[serde(default)]
    pub auth_end: Option<String>,
}

impl OpenAuthTokenInfo {
    /// Whether the token still works.
    pub fn is_valid(&self) -> bool {
        self.status == "valid"
    }
}

impl Request for OpenAuthTokenQuery {
    const METHOD: &'static str = "alipay.open.auth.token.app.query";
    type Response = OpenAuthTokenInfo;
}
