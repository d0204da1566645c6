//! Who is asking. Buyers hold a session from a Mini Program login (`POST /api/login`), the
//! Official Account's web login (the OAuth callback's cookie) or, in demo mode only, a demo
//! login; sellers log in with a password and hold a session cookie. Both are signed tokens
//! ([`token`]) checked by the [`Buyer`] and [`SellerSession`] extractors.
//!
//! Never: an identifier in a body or a query taken as proof of anything; a token for one purpose
//! accepted for another; a cookie-authenticated change accepted from another site's page (the
//! cookies are `SameSite`, and such a request's `Origin` must be this server's).
//!
//! - [`token`] — the signed tokens; [`password`] — argon2id for seller passwords.

pub mod limits;
pub mod password;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};

pub use token::{Audience, Claims, SessionKeys, TokenError};

use super::VendingState;
use super::db::{BuyerApp, Seller};
use crate::error::AppError;

/// The buyer's session cookie (the Official Account's web login, the demo login).
pub const BUYER_COOKIE: &str = "vending_buyer";
/// The seller's session cookie.
pub const SELLER_COOKIE: &str = "vending_seller";
/// Binds an OAuth login in progress to the browser that started it.
pub const OAUTH_COOKIE: &str = "vending_oauth";
/// How long an OAuth login may take.
pub const OAUTH_TTL: Duration = Duration::from_secs(600);

/// A buyer with a valid session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    /// The buyer's openid (a demo buyer's made-up one).
    pub open_id: String,
    /// Which app vouched for it.
    pub app: BuyerApp,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

/// A seller with a valid session, enabled, whose password did not change and who did not log
/// out since logging in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerSession {
    /// The seller's login.
    pub login: String,
    /// The session's claims (checked again while a dashboard stays open).
    pub claims: Claims,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No session at all.
    #[error("log in first")]
    Missing,
    /// A token, refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The seller was disabled or changed password since logging in.
    #[error("this session was revoked; log in again")]
    Revoked,
    /// A cookie-authenticated change from another site's page.
    #[error("this request did not come from this site")]
    CrossSite,
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Missing => AppError::unauthorized("UNAUTHENTICATED", message),
            AuthError::Token(TokenError::Expired) => {
                AppError::unauthorized("SESSION_EXPIRED", message)
            }
            AuthError::Token(_) | AuthError::Revoked => {
                AppError::unauthorized("SESSION_INVALID", message)
            }
            AuthError::CrossSite => AppError::forbidden("CROSS_SITE_REQUEST", message),
        }
    }
}

/// Session settings and keys.
#[derive(Debug, Clone)]
pub struct Sessions {
    keys: SessionKeys,
    buyer_ttl: Duration,
    seller_ttl: Duration,
    /// Cookies only over HTTPS (the public URL is `https://`).
    secure: bool,
}

fn now() -> i64 {
    crate::clock::unix_now()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// A short fingerprint of a seller's password hash and session epoch: a session signed under an
/// older password, or before a logout, stops working.
pub fn session_generation(seller: &Seller) -> String {
    let mut h = Sha256::new();
    h.update(seller.password_hash.as_bytes());
    h.update(seller.session_epoch.to_be_bytes());
    hex::encode(&h.finalize()[..8])
}

/// Whether `claims` (a seller session's) still stand for `seller`: enabled, the same password,
/// no logout since. Checked on every request and, for an open dashboard, every few seconds.
pub fn seller_session_stands(seller: &Seller, claims: &Claims) -> bool {
    seller.enabled && claims.ctx.as_deref() == Some(session_generation(seller).as_str())
}

impl Sessions {
    /// Sessions signed with `keys`.
    pub fn new(keys: SessionKeys, buyer_ttl: Duration, seller_ttl: Duration, secure: bool) -> Self {
        Sessions {
            keys,
            buyer_ttl,
            seller_ttl,
            secure,
        }
    }

    /// A buyer session: the token and when it ends.
    pub fn buyer_token(&self, open_id: &str, app: BuyerApp) -> (String, i64) {
        let exp = now().saturating_add(secs(self.buyer_ttl));
        let token = self.keys.sign(&Claims {
            aud: Audience::Buyer,
            sub: open_id.to_owned(),
            exp,
            ctx: Some(app.as_str().to_owned()),
        });
        (token, exp)
    }

    /// A seller session: the token and when it ends.
    pub fn seller_token(&self, seller: &Seller) -> (String, i64) {
        let exp = now().saturating_add(secs(self.seller_ttl));
        let token = self.keys.sign(&Claims {
            aud: Audience::Seller,
            sub: seller.login.clone(),
            exp,
            ctx: Some(session_generation(seller)),
        });
        (token, exp)
    }

    /// The OAuth cookie of a login whose `state` (WeChat allows 128 letters and digits) is
    /// `nonce`, returning to `path`: the browser carries the signed binding, no server keeps it.
    pub fn oauth_cookie_value(&self, nonce: &str, path: &str) -> String {
        self.keys.sign(&Claims {
            aud: Audience::OAuth,
            sub: nonce.to_owned(),
            exp: now().saturating_add(secs(OAUTH_TTL)),
            ctx: Some(path.to_owned()),
        })
    }

    /// The return path of an OAuth login, if the browser's cookie is ours, recent, and names
    /// the `state` WeChat sent back.
    pub fn oauth_return_path(&self, state: &str, cookie: Option<&str>) -> Option<String> {
        let claims = self.keys.verify(cookie?, Audience::OAuth, now()).ok()?;
        let same = subtle::ConstantTimeEq::ct_eq(claims.sub.as_bytes(), state.as_bytes());
        bool::from(same).then_some(claims.ctx.unwrap_or_else(|| "/".into()))
    }

    /// A `Set-Cookie` value: HttpOnly, path `/`, `SameSite` as given, `Secure` over HTTPS.
    pub fn cookie(&self, name: &str, value: &str, max_age_secs: i64, strict: bool) -> HeaderValue {
        let cookie = Cookie::build((name.to_owned(), value.to_owned()))
            .http_only(true)
            .path("/")
            .same_site(if strict {
                SameSite::Strict
            } else {
                SameSite::Lax
            })
            .secure(self.secure)
            .max_age(cookie::time::Duration::seconds(max_age_secs.max(0)))
            .build();
        HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
    }

    /// A `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self, name: &str, strict: bool) -> HeaderValue {
        self.cookie(name, "", 0, strict)
    }

    /// The buyer of a request: `Authorization: Bearer` (the Mini Program), else the cookie.
    pub fn buyer(&self, parts: &Parts) -> Result<Buyer, AuthError> {
        let (token, from_cookie) = match bearer(parts) {
            Some(t) => (t, false),
            None => (
                cookie(&parts.headers, BUYER_COOKIE).ok_or(AuthError::Missing)?,
                true,
            ),
        };
        let claims = self.keys.verify(&token, Audience::Buyer, now())?;
        if from_cookie {
            same_site(parts)?;
        }
        let app = claims
            .ctx
            .as_deref()
            .and_then(BuyerApp::parse)
            .ok_or(AuthError::Token(TokenError::Malformed))?;
        Ok(Buyer {
            open_id: claims.sub,
            app,
            expires_at: claims.exp,
        })
    }

    /// The seller claims of a request (its cookie); the account is checked by the extractor.
    pub fn seller_claims(&self, parts: &Parts) -> Result<Claims, AuthError> {
        let token = cookie(&parts.headers, SELLER_COOKIE).ok_or(AuthError::Missing)?;
        let claims = self.keys.verify(&token, Audience::Seller, now())?;
        same_site(parts)?;
        Ok(claims)
    }
}

/// The bearer token of a request.
fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// A cookie of the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A change authenticated by a cookie must come from this site: a browser says where a request
/// came from in `Origin`, which must then name the host the request was sent to.
fn same_site(parts: &Parts) -> Result<(), AuthError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        // Not a browser's cross-site request (browsers send Origin on every cross-site POST).
        return Ok(());
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or_default();
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(AuthError::CrossSite)
    }
}

impl FromRequestParts<Arc<VendingState>> for Buyer {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<VendingState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(state.sessions.buyer(parts)?)
    }
}

impl FromRequestParts<Arc<VendingState>> for SellerSession {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<VendingState>,
    ) -> Result<Self, Self::Rejection> {
        let claims = state.sessions.seller_claims(parts)?;
        let seller = state
            .orders
            .db()
            .seller(&claims.sub)
            .await
            .map_err(AppError::internal)?
            .ok_or(AuthError::Revoked)?;
        if !seller_session_stands(&seller, &claims) {
            return Err(AuthError::Revoked.into());
        }
        Ok(SellerSession {
            login: seller.login,
            claims,
        })
    }
}
