//! Web OAuth in the Official Account: send the user to the authorize page, exchange the `code`
//! WeChat returns for the user's openid (and, with `snsapi_userinfo`, their profile).
//!
//! ```no_run
//! # async fn run(client: wechat_mp::Client) -> Result<(), wechat_mp::Error> {
//! use wechat_mp::OAuthScope;
//! // 1. Redirect the browser here (state: letters and digits, checked on return).
//! let url = client.oauth_authorize_url("https://shop.example/oauth/callback", OAuthScope::Base, "x7Tq2")?;
//! // 2. WeChat redirects to the callback with ?code=…&state=x7Tq2; exchange the code:
//! let token = client.oauth_exchange_code("CODE_FROM_QUERY").await?;
//! println!("the buyer is {}", token.openid);
//! # Ok(()) }
//! ```

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::client::Auth;
use crate::{Client, Error, Secret};

/// Everything but the RFC 3986 unreserved characters is percent-encoded.
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What the app asks the user for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthScope {
    /// `snsapi_base`: the openid only, without a consent page.
    Base,
    /// `snsapi_userinfo`: the openid and the profile, after the user consents.
    UserInfo,
}

impl OAuthScope {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthScope::Base => "snsapi_base",
            OAuthScope::UserInfo => "snsapi_userinfo",
        }
    }
}

/// The result of a code exchange or refresh.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The web access token (not the app's access token).
    pub access_token: Secret,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// Refreshes the access token for 30 days.
    pub refresh_token: Secret,
    /// The user's openid under this app.
    pub openid: String,
    /// The granted scope(s).
    pub scope: String,
    /// The user's unionid, when the app is bound to an Open Platform account.
    pub unionid: Option<String>,
    /// `1` when the user is in snapshot (preview) mode and has no real openid.
    pub is_snapshotuser: Option<u8>,
}

/// A user profile (`snsapi_userinfo`).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct OAuthUserInfo {
    /// openid.
    pub openid: String,
    /// Nickname.
    #[serde(default)]
    pub nickname: String,
    /// 1 male, 2 female, 0 unknown (WeChat no longer fills this in).
    #[serde(default)]
    pub sex: u8,
    /// Province.
    #[serde(default)]
    pub province: String,
    /// City.
    #[serde(default)]
    pub city: String,
    /// Country.
    #[serde(default)]
    pub country: String,
    /// Avatar URL.
    #[serde(default)]
    pub headimgurl: String,
    /// Privileges.
    #[serde(default)]
    pub privilege: Vec<String>,
    /// unionid.
    pub unionid: Option<String>,
}

impl Client {
    /// The authorize-page URL to redirect the user's browser to. WeChat requires the parameters
    /// in this order and the `#wechat_redirect` suffix; `redirect_uri` is percent-encoded here.
    /// `state` must be 1 to 128 ASCII letters or digits.
    pub fn oauth_authorize_url(
        &self,
        redirect_uri: &str,
        scope: OAuthScope,
        state: &str,
    ) -> Result<String, Error> {
        if state.is_empty()
            || state.len() > 128
            || !state.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(Error::Config(
                "oauth state must be 1 to 128 ASCII letters or digits".into(),
            ));
        }
        if reqwest::Url::parse(redirect_uri).is_err() {
            return Err(Error::Config(format!(
                "redirect_uri {redirect_uri:?} is not an absolute url"
            )));
        }
        Ok(format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
            self.inner.open_base_url,
            utf8_percent_encode(&self.inner.app_id, COMPONENT),
            utf8_percent_encode(redirect_uri, COMPONENT),
            scope.as_str(),
            state,
        ))
    }

    /// Exchanges the `code` from the authorize redirect (valid once, for 5 minutes).
    pub async fn oauth_exchange_code(&self, code: &str) -> Result<OAuthToken, Error> {
        let i = &self.inner;
        self.get(
            "/sns/oauth2/access_token",
            &[
                ("appid", &i.app_id),
                ("secret", i.app_secret.expose()),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
            Auth::None,
        )
        .await
    }

    /// Refreshes a web access token.
    pub async fn oauth_refresh(&self, refresh_token: &Secret) -> Result<OAuthToken, Error> {
        self.get(
            "/sns/oauth2/refresh_token",
            &[
                ("appid", &self.inner.app_id),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
            Auth::None,
        )
        .await
    }

    /// The user's profile (needs an `snsapi_userinfo` token).
    pub async fn oauth_user_info(&self, token: &OAuthToken) -> Result<OAuthUserInfo, Error> {
        self.get(
            "/sns/userinfo",
            &[
                ("access_token", token.access_token.expose()),
                ("openid", &token.openid),
                ("lang", "zh_CN"),
            ],
            Auth::None,
        )
        .await
    }
}
