//! Buyer sessions: the Mini Program login (`POST /api/login {js_code}` → a bearer token), the
//! Alipay Mini Program's (`POST /api/login/alipay {auth_code}` → a bearer token), the Alipay
//! browser's web login (`/api/oauth/alipay/start` → Alipay → `/api/oauth/alipay/callback` → a
//! session cookie), the
//! Official Account's web login (`/api/oauth/start` → WeChat → `/api/oauth/callback` → a session
//! cookie, no openid in any URL), the session itself (`GET /api/session`, `POST /api/logout`)
//! and, in demo mode only, `POST /api/demo-login` (a fresh demo buyer).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppJson};
use crate::url_guard::same_origin_path;
use crate::vending::VendingState;
use crate::vending::auth::limits::{ClientAddr, within_rate};
use crate::vending::auth::{BUYER_COOKIE, Buyer, OAUTH_COOKIE, OAUTH_TTL, cookie};
use crate::vending::db::BuyerApp;

/// The session routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/login/alipay", post(alipay_login))
        .route("/api/oauth/start", get(oauth_start))
        .route("/api/oauth/callback", get(oauth_callback))
        .route("/api/oauth/alipay/start", get(alipay_oauth_start))
        .route("/api/oauth/alipay/callback", get(alipay_oauth_callback))
        .route("/api/session", get(session))
        .route("/api/logout", post(logout))
}

/// Demo mode only: a demo buyer, no WeChat needed.
pub fn demo_routes() -> Router<Arc<VendingState>> {
    Router::new().route("/api/demo-login", post(demo_login))
}

/// A new session's answer (and, for browsers, its cookie).
fn started(state: &VendingState, open_id: &str, app: BuyerApp, set_cookie: bool) -> Response {
    let (token, expires_at) = state.sessions.buyer_token(open_id, app);
    let body = Json(json!({"token": token, "open_id": open_id, "expires_at": expires_at}));
    if set_cookie {
        let cookie = state.sessions.cookie(
            BUYER_COOKIE,
            &token,
            expires_at - crate::clock::unix_now(),
            false,
        );
        ([(header::SET_COOKIE, cookie)], body).into_response()
    } else {
        body.into_response()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    js_code: String,
}

/// The Mini Program's login: `wx.login()`'s code for a session token.
async fn login(
    State(state): State<Arc<VendingState>>,
    addr: ClientAddr,
    AppJson(req): AppJson<Login>,
) -> Result<Response, AppError> {
    within_rate(&state, &[addr.key("login")]).await?;
    let session = state
        .buyers
        .mini
        .as_ref()
        .ok_or_else(|| {
            AppError::unprocessable(
                "LOGIN_UNAVAILABLE",
                "no Mini Program is configured on this server",
            )
        })?
        .code_to_session(&req.js_code)
        .await
        .map_err(|e| AppError::unauthorized("JS_CODE_INVALID", e.to_string()))?;
    Ok(started(
        &state,
        &session.openid,
        BuyerApp::MiniProgram,
        false,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlipayLogin {
    auth_code: String,
}

/// The Alipay app, when configured.
fn alipay_app(state: &VendingState) -> Result<&alipay::Client, AppError> {
    state.buyers.alipay.as_ref().ok_or_else(|| {
        AppError::unprocessable(
            "LOGIN_UNAVAILABLE",
            "Alipay login is not configured on this server",
        )
    })
}

/// Who an Alipay auth code belongs to (their user id, or open id for apps on open ids).
async fn alipay_buyer(state: &VendingState, auth_code: &str) -> Result<String, AppError> {
    let token = alipay_app(state)?
        .execute(&alipay::OauthToken::code(auth_code))
        .await
        .map_err(|e| match e {
            // Alipay said no: the code is spent, expired or another app's.
            alipay::Error::Gateway { .. } => {
                AppError::unauthorized("AUTH_CODE_INVALID", e.to_string())
            }
            other => AppError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                "ALIPAY_UNAVAILABLE",
                other.to_string(),
            ),
        })?;
    token
        .buyer()
        .map(str::to_owned)
        .ok_or_else(|| AppError::unauthorized("AUTH_CODE_INVALID", "Alipay named no buyer"))
}

/// The Alipay Mini Program's login: `my.getAuthCode()`'s code for a session token.
async fn alipay_login(
    State(state): State<Arc<VendingState>>,
    addr: ClientAddr,
    AppJson(req): AppJson<AlipayLogin>,
) -> Result<Response, AppError> {
    within_rate(&state, &[addr.key("login")]).await?;
    let buyer = alipay_buyer(&state, &req.auth_code).await?;
    Ok(started(&state, &buyer, BuyerApp::AlipayMiniProgram, false))
}

/// Demo mode: a made-up buyer, as a cookie (the buyer page) and a token.
async fn demo_login(
    State(state): State<Arc<VendingState>>,
    addr: ClientAddr,
) -> Result<Response, AppError> {
    within_rate(&state, &[addr.key("login")]).await?;
    let open_id = format!("demo_{}", crate::random::token(12)?);
    Ok(started(&state, &open_id, BuyerApp::Demo, true))
}

/// The Official Account (web login).
fn official(state: &VendingState) -> Result<&wechat_mp::Client, AppError> {
    state.buyers.official.as_ref().ok_or_else(|| {
        AppError::unprocessable(
            "LOGIN_UNAVAILABLE",
            "WeChat login is not configured on this server",
        )
    })
}

#[derive(Debug, Deserialize)]
struct OAuthStart {
    return_url: Option<String>,
}

/// Starts a web login at `authorize` (given the nonce and the callback URL): a random nonce is
/// the provider's `state`; this browser's cookie holds the nonce and the return path, signed. No
/// server keeps anything, so any instance finishes it.
fn begin_web_login(
    state: &VendingState,
    return_url: Option<&str>,
    callback_path: &str,
    authorize: impl FnOnce(&str, &str) -> Result<String, AppError>,
) -> Result<Response, AppError> {
    let nonce = crate::random::token(16)?;
    let url = authorize(
        &nonce,
        &format!("{}{callback_path}", state.settings.public_url),
    )?;
    let binding = state
        .sessions
        .oauth_cookie_value(&nonce, &same_origin_path(return_url));
    let cookie = state.sessions.cookie(
        OAUTH_COOKIE,
        &binding,
        i64::try_from(OAUTH_TTL.as_secs()).unwrap_or(600),
        false,
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

/// The return path of a web login coming back: the state must be ours, recent, and started in
/// this browser.
fn returning_web_login(
    state: &VendingState,
    headers: &HeaderMap,
    nonce: &str,
) -> Result<String, AppError> {
    state
        .sessions
        .oauth_return_path(nonce, cookie(headers, OAUTH_COOKIE).as_deref())
        .ok_or_else(|| {
            AppError::bad_request(
                "OAUTH_STATE_INVALID",
                "unknown, expired or foreign login; start again",
            )
        })
}

/// A finished web login: the session cookie (the buyer's id only there) and back to the page.
fn web_session(state: &VendingState, return_path: &str, open_id: &str, app: BuyerApp) -> Response {
    let (session, expires_at) = state.sessions.buyer_token(open_id, app);
    let ttl = expires_at - crate::clock::unix_now();
    let mut response = Redirect::to(return_path).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state.sessions.cookie(BUYER_COOKIE, &session, ttl, false),
    );
    headers.append(
        header::SET_COOKIE,
        state.sessions.clear_cookie(OAUTH_COOKIE, false),
    );
    response
}

/// Starts the Official Account's web login.
async fn oauth_start(
    State(state): State<Arc<VendingState>>,
    Query(q): Query<OAuthStart>,
) -> Result<Response, AppError> {
    let mp = official(&state)?;
    begin_web_login(
        &state,
        q.return_url.as_deref(),
        "/api/oauth/callback",
        |nonce, callback| {
            mp.oauth_authorize_url(callback, wechat_mp::OAuthScope::Base, nonce)
                .map_err(AppError::internal)
        },
    )
}

#[derive(Debug, Deserialize)]
struct OAuthCallback {
    code: String,
    state: String,
}

/// WeChat sends the buyer back: the code becomes the buyer's openid, kept only in the session
/// cookie.
async fn oauth_callback(
    State(state): State<Arc<VendingState>>,
    headers: HeaderMap,
    Query(q): Query<OAuthCallback>,
) -> Result<Response, AppError> {
    let return_path = returning_web_login(&state, &headers, &q.state)?;
    let token = official(&state)?
        .oauth_exchange_code(&q.code)
        .await
        .map_err(|e| AppError::unauthorized("OAUTH_CODE_INVALID", e.to_string()))?;
    Ok(web_session(
        &state,
        &return_path,
        &token.openid,
        BuyerApp::OfficialAccount,
    ))
}

/// Starts a web login in the Alipay app's browser.
async fn alipay_oauth_start(
    State(state): State<Arc<VendingState>>,
    Query(q): Query<OAuthStart>,
) -> Result<Response, AppError> {
    let alipay = alipay_app(&state)?;
    begin_web_login(
        &state,
        q.return_url.as_deref(),
        "/api/oauth/alipay/callback",
        |nonce, callback| {
            alipay
                .oauth_authorize_url(callback, alipay::AuthScope::Base, nonce)
                .map_err(AppError::internal)
        },
    )
}

#[derive(Debug, Deserialize)]
struct AlipayOAuthCallback {
    auth_code: String,
    state: String,
}

/// Alipay sends the buyer back: the code becomes the buyer's Alipay id, kept only in the
/// session cookie.
async fn alipay_oauth_callback(
    State(state): State<Arc<VendingState>>,
    headers: HeaderMap,
    Query(q): Query<AlipayOAuthCallback>,
) -> Result<Response, AppError> {
    let return_path = returning_web_login(&state, &headers, &q.state)?;
    let buyer = alipay_buyer(&state, &q.auth_code).await?;
    Ok(web_session(
        &state,
        &return_path,
        &buyer,
        BuyerApp::AlipayWeb,
    ))
}

/// Who the session says the buyer is.
async fn session(buyer: Buyer) -> Json<Value> {
    Json(json!({
        "open_id": buyer.open_id,
        "app": buyer.app.as_str(),
        "expires_at": buyer.expires_at,
    }))
}

/// Ends the browser's session (a Mini Program simply forgets its token).
async fn logout(State(state): State<Arc<VendingState>>) -> Response {
    (
        [(
            header::SET_COOKIE,
            state.sessions.clear_cookie(BUYER_COOKIE, false),
        )],
        axum::http::StatusCode::NO_CONTENT,
    )
        .into_response()
}
