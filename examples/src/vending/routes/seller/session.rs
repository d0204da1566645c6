//! Seller login (by WeChat QR code: `wechat`): `GET /seller/login` (the page), `POST /api/seller/login {login, password}` (a
//! session cookie: HttpOnly, SameSite=Strict), `POST /api/seller/logout` (ends every session of
//! the seller, open dashboards included), `GET /api/seller/me`,
//! and `GET /seller` — the dashboard with a session, the login page without.
//!
//! Logins are rate-limited per client address and per login; a wrong password, an unknown login
//! and a disabled seller get the same answer, after the same work.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::limits::{ClientAddr, within_rate};
use crate::vending::auth::{SELLER_COOKIE, SellerSession, password};

/// The session routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/seller", get(dashboard))
        .route("/seller/login", get(login_page))
        .route("/api/seller/login", post(login))
        .route("/api/seller/logout", post(logout))
        .route("/api/seller/me", get(me))
}

async fn dashboard(seller: Result<SellerSession, AppError>) -> Response {
    match seller {
        Ok(_) => Html(include_str!("../../pages/seller.html")).into_response(),
        Err(_) => Redirect::to("/seller/login").into_response(),
    }
}

async fn login_page() -> Html<&'static str> {
    Html(include_str!("../../pages/seller_login.html"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    login: String,
    password: String,
}

async fn login(
    State(state): State<Arc<VendingState>>,
    addr: ClientAddr,
    AppJson(req): AppJson<Login>,
) -> Result<Response, AppError> {
    let login = req.login.trim().to_ascii_lowercase();
    within_rate(
        &state,
        &[
            addr.key("seller-login"),
            format!("seller-login:login:{login}"),
        ],
    )
    .await?;
    let seller = state
        .orders
        .db()
        .seller(&login)
        .await
        .map_err(AppError::internal)?;
    let hash = seller
        .as_ref()
        .filter(|s| s.enabled)
        .map(|s| s.password_hash.clone());
    let seller = match seller {
        Some(s) if password::verify(req.password, hash).await => s,
        _ => {
            return Err(AppError::unauthorized(
                "LOGIN_FAILED",
                "wrong login or password",
            ));
        }
    };
    let (token, expires_at) = state.sessions.seller_token(&seller);
    let cookie = state.sessions.cookie(
        SELLER_COOKIE,
        &token,
        expires_at - crate::clock::unix_now(),
        true,
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"login": seller.login, "expires_at": expires_at})),
    )
        .into_response())
}

/// Logs the seller out everywhere: every session of theirs ends (their epoch moves on), and
/// their open dashboards close within seconds, on every instance.
async fn logout(
    State(state): State<Arc<VendingState>>,
    seller: Result<SellerSession, AppError>,
) -> Result<Response, AppError> {
    if let Ok(seller) = seller {
        state
            .orders
            .db()
            .end_seller_sessions(&seller.login)
            .await
            .map_err(AppError::internal)?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            state.sessions.clear_cookie(SELLER_COOKIE, true),
        )],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

async fn me(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    let wechat_bound = state
        .orders
        .db()
        .has_wechat(&seller.login)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(
        json!({"login": seller.login, "wechat_bound": wechat_bound}),
    ))
}
