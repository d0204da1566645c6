//! Sellers log in by scanning a QR code with WeChat (the Official Account's web login, which
//! proves who scanned), once they bound their WeChat from the dashboard.
//!
//! - **Bind** (a seller session): `POST /api/seller/wechat/bind` → a QR code; the seller scans it;
//!   the dashboard polls `GET /api/seller/wechat/bind/{id}` and, once scanned, the seller confirms
//!   on the dashboard (`POST …/bind/{id}/confirm`) — so a QR code seen over a shoulder binds
//!   nobody else's WeChat. A WeChat bound to another seller is refused. `DELETE
//!   /api/seller/wechat` unbinds.
//! - **Login**: the login page asks `POST /api/seller/wechat/login` → a QR code, and an HttpOnly
//!   cookie holding this browser's secret; the seller scans; the phone, after WeChat's login,
//!   shows whose dashboard it opens and where, and the seller confirms there; the page's poll
//!   (`GET /api/seller/wechat/login/{id}`, with that cookie: nobody who only saw the QR code)
//!   takes the session once — same session rules, logout and audit as a password login. A WeChat
//!   bound to no seller, or a disabled seller, is refused.
//! - The phone's side: `GET /seller/wechat/scan/{id}` (the QR code's URL) → WeChat's login →
//!   `GET /seller/wechat/callback` → `POST /seller/wechat/confirm/{id}` (with the cookie the
//!   callback set on that phone).
//!
//! Scans expire after two minutes and move forward only (`db::seller_wechat`). Without the
//! Official Account's login (`WECHAT_APP_SECRET`) there is no WeChat login: `409
//! WECHAT_LOGIN_OFF`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{record, record_as};
use crate::error::AppError;
use crate::html::{escape, qr_svg};
use crate::vending::VendingState;
use crate::vending::auth::limits::{ClientAddr, within_rate};
use crate::vending::auth::{SELLER_COOKIE, SellerSession, cookie};
use crate::vending::db::{ScanPurpose, ScanStatus, SellerScan};

/// How long a QR code works.
const SCAN_TTL_SECS: i64 = 120;
/// The showing browser's secret (login).
const BROWSER_COOKIE: &str = "vending_scan";
/// The scanning phone's secret.
const PHONE_COOKIE: &str = "vending_scan_phone";

/// The routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/seller/wechat/login", post(start_login))
        .route("/api/seller/wechat/login/{id}", get(poll_login))
        .route("/api/seller/wechat/bind", post(start_bind))
        .route("/api/seller/wechat/bind/{id}", get(poll_bind))
        .route("/api/seller/wechat/bind/{id}/confirm", post(confirm_bind))
        .route("/api/seller/wechat", delete(unbind))
        .route("/seller/wechat/scan/{id}", get(scan))
        .route("/seller/wechat/callback", get(callback))
        .route("/seller/wechat/confirm/{id}", post(confirm_login))
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn official(state: &VendingState) -> Result<&wechat_mp::Client, AppError> {
    state.buyers.official.as_ref().ok_or_else(|| {
        AppError::conflict(
            "WECHAT_LOGIN_OFF",
            "WeChat login needs the Official Account's web login (WECHAT_APP_SECRET)",
        )
    })
}

fn not_found() -> AppError {
    AppError::not_found("SCAN_NOT_FOUND", "no such QR code, or it expired")
}

/// Moves the scan on from `from` to `to`'s state: "not found" when another request moved it
/// first (or it never was `from`).
async fn advance(state: &VendingState, from: ScanStatus, to: &SellerScan) -> Result<(), AppError> {
    if state
        .orders
        .db()
        .move_scan(from, to)
        .await
        .map_err(AppError::internal)?
    {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// A live scan (not expired).
async fn live_scan(state: &VendingState, id: &str) -> Result<SellerScan, AppError> {
    state
        .orders
        .db()
        .scan(id)
        .await
        .map_err(AppError::internal)?
        .filter(|s| s.expires_at > crate::clock::unix_now())
        .ok_or_else(not_found)
}

/// A new scan for `purpose` (and `seller`, binding): its id and this browser's secret.
async fn new_scan(
    state: &VendingState,
    purpose: ScanPurpose,
    seller: Option<String>,
) -> Result<(SellerScan, String), AppError> {
    official(state)?;
    let secret = crate::random::token(32)?;
    let scan = SellerScan {
        scan_id: crate::random::token(16)?,
        purpose,
        browser_hash: hash(&secret),
        phone_hash: None,
        seller,
        open_id: None,
        status: ScanStatus::Waiting,
        reason: None,
        expires_at: crate::clock::unix_now() + SCAN_TTL_SECS,
    };
    state
        .orders
        .db()
        .new_scan(&scan)
        .await
        .map_err(AppError::internal)?;
    Ok((scan, secret))
}

/// What the page shows: the QR code and its URL.
fn shown(state: &VendingState, scan: &SellerScan) -> Value {
    let url = format!(
        "{}/seller/wechat/scan/{}",
        state.settings.public_url, scan.scan_id
    );
    json!({"scan_id": scan.scan_id, "scan_url": url, "qr_svg": qr_svg(&url),
           "expires_at": scan.expires_at})
}

async fn start_login(
    State(state): State<Arc<VendingState>>,
    addr: ClientAddr,
) -> Result<Response, AppError> {
    within_rate(&state, &[addr.key("seller-login")]).await?;
    let (scan, secret) = new_scan(&state, ScanPurpose::Login, None).await?;
    let cookie = state
        .sessions
        .cookie(BROWSER_COOKIE, &secret, SCAN_TTL_SECS, true);
    Ok(([(header::SET_COOKIE, cookie)], Json(shown(&state, &scan))).into_response())
}

async fn poll_login(
    State(state): State<Arc<VendingState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let scan = live_scan(&state, &id).await?;
    // Only the browser that showed it: a QR code seen elsewhere takes no session.
    let ours = cookie(&headers, BROWSER_COOKIE).is_some_and(|s| hash(&s) == scan.browser_hash);
    if scan.purpose != ScanPurpose::Login || !ours {
        return Err(not_found());
    }
    if scan.status != ScanStatus::Confirmed {
        return Ok(Json(json!({"status": scan.status, "reason": scan.reason})).into_response());
    }
    let db = state.orders.db();
    let seller = match &scan.seller {
        Some(login) => db.seller(login).await.map_err(AppError::internal)?,
        None => None,
    }
    .filter(|s| s.enabled)
    .ok_or_else(|| AppError::unauthorized("LOGIN_FAILED", "this seller cannot log in"))?;
    let used = SellerScan {
        status: ScanStatus::Used,
        ..scan.clone()
    };
    advance(&state, ScanStatus::Confirmed, &used).await?;
    record_as(
        &state,
        &seller.login,
        "login_wechat",
        &seller.login,
        None,
        Some(json!({"scan_id": scan.scan_id})),
    )
    .await?;
    let (token, expires_at) = state.sessions.seller_token(&seller);
    let mut response =
        Json(json!({"status": ScanStatus::Used, "login": seller.login, "expires_at": expires_at}))
            .into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        state.sessions.cookie(
            SELLER_COOKIE,
            &token,
            expires_at - crate::clock::unix_now(),
            true,
        ),
    );
    headers.append(
        header::SET_COOKIE,
        state.sessions.clear_cookie(BROWSER_COOKIE, true),
    );
    Ok(response)
}

async fn start_bind(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    let (scan, _) = new_scan(&state, ScanPurpose::Bind, Some(seller.login.clone())).await?;
    Ok(Json(shown(&state, &scan)))
}

/// The seller's own bind scan.
async fn own_bind(
    state: &VendingState,
    seller: &SellerSession,
    id: &str,
) -> Result<SellerScan, AppError> {
    let scan = live_scan(state, id).await?;
    if scan.purpose != ScanPurpose::Bind || scan.seller.as_deref() != Some(seller.login.as_str()) {
        return Err(not_found());
    }
    Ok(scan)
}

/// The last characters of an openid, to tell WeChat users apart on the dashboard.
fn tail(open_id: &str) -> String {
    let chars: Vec<char> = open_id.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

async fn poll_bind(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let scan = own_bind(&state, &seller, &id).await?;
    Ok(Json(json!({
        "status": scan.status,
        "reason": scan.reason,
        "wechat": scan.open_id.as_deref().map(|o| format!("…{}", tail(o))),
    })))
}

async fn confirm_bind(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let scan = own_bind(&state, &seller, &id).await?;
    let (ScanStatus::Scanned, Some(open_id)) = (scan.status, scan.open_id.clone()) else {
        return Err(AppError::conflict(
            "NOT_SCANNED",
            "scan the QR code with WeChat first",
        ));
    };
    let db = state.orders.db();
    let now = crate::clock::unix_now();
    if !db
        .bind_wechat(&seller.login, &open_id, now)
        .await
        .map_err(AppError::internal)?
    {
        let refused = SellerScan {
            status: ScanStatus::Refused,
            reason: Some("this WeChat is bound to another seller".into()),
            ..scan
        };
        db.move_scan(ScanStatus::Scanned, &refused)
            .await
            .map_err(AppError::internal)?;
        return Err(AppError::conflict(
            "WECHAT_TAKEN",
            "this WeChat is bound to another seller",
        ));
    }
    let done = SellerScan {
        status: ScanStatus::Used,
        ..scan
    };
    db.move_scan(ScanStatus::Scanned, &done)
        .await
        .map_err(AppError::internal)?;
    let wechat = format!("…{}", tail(&open_id));
    record(
        &state,
        &seller,
        "bind_wechat",
        &seller.login,
        None,
        Some(json!({ "wechat": wechat })),
    )
    .await?;
    Ok(Json(json!({"bound": true, "wechat": wechat})))
}

async fn unbind(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<StatusCode, AppError> {
    let was = state
        .orders
        .db()
        .unbind_wechat(&seller.login)
        .await
        .map_err(AppError::internal)?;
    if was {
        record(&state, &seller, "unbind_wechat", &seller.login, None, None).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The phone opens the QR code's URL: on to WeChat's login, the scan's id as the state.
async fn scan(
    State(state): State<Arc<VendingState>>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let mp = official(&state)?;
    let scan = live_scan(&state, &id).await?;
    if scan.status != ScanStatus::Waiting {
        return Err(not_found());
    }
    let callback = format!("{}/seller/wechat/callback", state.settings.public_url);
    let url = mp
        .oauth_authorize_url(&callback, wechat_mp::OAuthScope::Base, &scan.scan_id)
        .map_err(AppError::internal)?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: String,
    state: String,
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title></head><body style=\"font-family:sans-serif;margin:2rem\">\
         <h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

/// WeChat sends the phone back: who scanned is now known.
async fn callback(
    State(state): State<Arc<VendingState>>,
    Query(q): Query<Callback>,
) -> Result<Response, AppError> {
    let scan = live_scan(&state, &q.state).await?;
    if scan.status != ScanStatus::Waiting {
        return Err(not_found());
    }
    let open_id = official(&state)?
        .oauth_exchange_code(&q.code)
        .await
        .map_err(|e| AppError::unauthorized("OAUTH_CODE_INVALID", e.to_string()))?
        .openid;
    let db = state.orders.db();
    match scan.purpose {
        ScanPurpose::Bind => {
            let scanned = SellerScan {
                status: ScanStatus::Scanned,
                open_id: Some(open_id),
                ..scan
            };
            advance(&state, ScanStatus::Waiting, &scanned).await?;
            Ok(page(
                "Scanned",
                "<p>Now confirm the binding on your dashboard.</p>",
            )
            .into_response())
        }
        ScanPurpose::Login => {
            let seller = match db
                .seller_of_wechat(&open_id)
                .await
                .map_err(AppError::internal)?
            {
                Some(login) => db.seller(&login).await.map_err(AppError::internal)?,
                None => None,
            }
            .filter(|s| s.enabled);
            let Some(seller) = seller else {
                let refused = SellerScan {
                    status: ScanStatus::Refused,
                    open_id: Some(open_id),
                    reason: Some("this WeChat is not bound to a seller".into()),
                    ..scan
                };
                db.move_scan(ScanStatus::Waiting, &refused)
                    .await
                    .map_err(AppError::internal)?;
                return Ok((
                    StatusCode::FORBIDDEN,
                    page(
                        "Not bound",
                        "<p>This WeChat is not bound to a seller. Log in with your password \
                         and bind it from the dashboard first.</p>",
                    ),
                )
                    .into_response());
            };
            let phone = crate::random::token(32)?;
            let scanned = SellerScan {
                status: ScanStatus::Scanned,
                open_id: Some(open_id),
                seller: Some(seller.login.clone()),
                phone_hash: Some(hash(&phone)),
                ..scan
            };
            advance(&state, ScanStatus::Waiting, &scanned).await?;
            let cookie = state
                .sessions
                .cookie(PHONE_COOKIE, &phone, SCAN_TTL_SECS, true);
            let body = format!(
                "<p>Log in as <b>{}</b> on the computer that shows this QR code?</p>\
                 <form method=\"post\" action=\"/seller/wechat/confirm/{}\">\
                 <button id=\"confirm\" type=\"submit\">Log in</button></form>\
                 <p>If you did not ask for it, close this page.</p>",
                escape(&seller.login),
                escape(&scanned.scan_id)
            );
            Ok((
                [(header::SET_COOKIE, cookie)],
                page("Log in to the dashboard", &body),
            )
                .into_response())
        }
    }
}

/// The seller confirms on the phone that scanned.
async fn confirm_login(
    State(state): State<Arc<VendingState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let scan = live_scan(&state, &id).await?;
    let phone = cookie(&headers, PHONE_COOKIE).map(|p| hash(&p));
    if scan.purpose != ScanPurpose::Login
        || scan.status != ScanStatus::Scanned
        || phone.is_none()
        || phone != scan.phone_hash
    {
        return Err(not_found());
    }
    let confirmed = SellerScan {
        status: ScanStatus::Confirmed,
        ..scan
    };
    advance(&state, ScanStatus::Scanned, &confirmed).await?;
    Ok((
        [(
            header::SET_COOKIE,
            state.sessions.clear_cookie(PHONE_COOKIE, true),
        )],
        page("Logged in", "<p>The dashboard opens on the computer.</p>"),
    )
        .into_response())
}
