//! Buyer sessions: the Mini Program login (`POST /api/login {js_code}` → a bearer token), the
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
        .route("/api/oauth/start", get(oauth_start))
        .route("/api/oauth/callback", get(oauth_callback))
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

/// Starts a web login: a random nonce is WeChat's `state`; this browser's cookie holds the
/// nonce and the return path, signed. No server keeps anything, so any instance finishes it.
async fn oauth_start(
    State(state): State<Arc<VendingState>>,
    Query(q): Query<OAuthStart>,
) -> Result<Response, AppError> {
    let mp = official(&state)?;
    let nonce = crate::random::token(16)?;
    let url = mp
        .oauth_authorize_url(
            &format!("{}/api/oauth/callback", state.settings.public_url),
            wechat_mp::OAuthScope::Base,
            &nonce,
        )
        .map_err(AppError::internal)?;
    let binding = state
        .sessions
        .oauth_cookie_value(&nonce, &same_origin_path(q.return_url.as_deref()));
    let cookie = state.sessions.cookie(
        OAUTH_COOKIE,
        &binding,
        i64::try_from(OAUTH_TTL.as_secs()).unwrap_or(600),
        false,
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response())
}

#[derive(Debug, Deserialize)]
struct OAuthCallback {
    code: String,
    state: String,
}

/// WeChat sends the buyer back: the state must be ours, recent, and started in this browser;
/// the code becomes the buyer's openid, kept only in the session cookie.
async fn oauth_callback(
    State(state): State<Arc<VendingState>>,
    headers: HeaderMap,
    Query(q): Query<OAuthCallback>,
) -> Result<Response, AppError> {
    let return_path = state
        .sessions
        .oauth_return_path(&q.state, cookie(&headers, OAUTH_COOKIE).as_deref())
        .ok_or_else(|| {
            AppError::bad_request(
                "OAUTH_STATE_INVALID",
                "unknown, expired or foreign login; start again",
            )
        })?;
    let token = official(&state)?
        .oauth_exchange_code(&q.code)
        .await
        .map_err(|e| AppError::unauthorized("OAUTH_CODE_INVALID", e.to_string()))?;
    let (session, expires_at) = state
        .sessions
        .buyer_token(&token.openid, BuyerApp::OfficialAccount);
    let ttl = expires_at - crate::clock::unix_now();
    let mut response = Redirect::to(&return_path).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state.sessions.cookie(BUYER_COOKIE, &session, ttl, false),
    );
    headers.append(
        header::SET_COOKIE,
        state.sessions.clear_cookie(OAUTH_COOKIE, false),
    );
    Ok(response)
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
