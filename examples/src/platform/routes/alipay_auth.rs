//! Partner mode on Alipay: a merchant authorizes the platform's third-party app.
//!
//! 1. The admin asks for the merchant's authorization link
//!    (`POST /admin/merchants/{app_id}/alipay-authorization`). The link carries a random,
//!    single-use `state` that expires after 30 minutes.
//! 2. The merchant approves on Alipay's page. Alipay sends them back to
//!    `GET /alipay/app-auth?app_auth_code=…&state=…`.
//! 3. The platform exchanges the code (`alipay.open.auth.token.app`) for the merchant's user id
//!    and `app_auth_token`, and binds itself as the merchant's royalty receiver (its fee is
//!    settled to it). Then it records the authorization: one merchant per Alipay account.
//!
//! From then on the merchant's Alipay payments are made with its token, into its own account.
//! The token never leaves the database.

use std::sync::Arc;

use aggregate_pay::PayMethod;
use aggregate_pay::channels::alipay::AppAuthTokens;
use aggregate_pay::{ChannelError, PaymentChannel};
use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use merchant_client::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::unix_now;
use crate::error::AppError;
use crate::platform::PlatformState;
use crate::platform::auth::Admin;
use crate::platform::db::PlatformDb;
use crate::random::token;

/// How long an authorization link works.
const AUTHORIZATION_SECS: i64 = 30 * 60;

/// The routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route(
            "/admin/merchants/{app_id}/alipay-authorization",
            post(begin),
        )
        .route("/alipay/app-auth", get(callback))
}

/// The merchants' tokens, from the platform's database, for the Alipay channel.
#[derive(Debug, Clone)]
pub struct MerchantTokens(pub PlatformDb);

#[async_trait]
impl AppAuthTokens for MerchantTokens {
    async fn app_auth_token(&self, merchant: &str) -> Result<Option<String>, ChannelError> {
        self.0
            .alipay_app_auth_token(merchant)
            .await
            .map(|t| t.map(|t| t.expose().to_owned()))
            .map_err(|e| ChannelError::Transport(format!("the merchants' tokens: {e}")))
    }
}

/// The Alipay channel, when partner mode has one.
fn alipay(state: &PlatformState) -> Result<Arc<dyn PaymentChannel>, AppError> {
    if state.partner.is_none() {
        return Err(AppError::conflict(
            "NOT_PARTNER_MODE",
            "the platform collects in direct mode: authorizations need PLATFORM_MODE=partner",
        ));
    }
    state
        .payments
        .channels()
        .for_method(PayMethod::AlipayQr)
        .cloned()
        .ok_or_else(|| AppError::conflict("CHANNEL_UNAVAILABLE", "Alipay is not configured"))
}

/// `POST /admin/merchants/{app_id}/alipay-authorization` → `{"url": …}`: where the merchant
/// authorizes the platform's app.
async fn begin(
    _: Admin,
    State(state): State<Arc<PlatformState>>,
    Path(app_id): Path<String>,
) -> Result<Json<Value>, AppError> {
    alipay(&state)?;
    let Some(link) = &state.alipay_auth else {
        return Err(AppError::conflict(
            "CHANNEL_UNAVAILABLE",
            "Alipay is not configured",
        ));
    };
    state
        .db
        .merchant(&app_id)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("MERCHANT_NOT_FOUND", "no such merchant"))?;
    let nonce = token(16)?;
    let expires_at = unix_now() + AUTHORIZATION_SECS;
    state
        .db
        .begin_alipay_authorization(&app_id, &nonce, expires_at)
        .await
        .map_err(AppError::internal)?;
    let redirect = format!("{}/alipay/app-auth", state.settings.public_url);
    let url = link
        .client
        .app_auth_url(&link.page, &redirect, &nonce)
        .map_err(AppError::internal)?;
    Ok(Json(json!({"url": url, "expires_at": expires_at})))
}

#[derive(Debug, Deserialize)]
struct Approved {
    app_auth_code: String,
    state: String,
}

/// `GET /alipay/app-auth?app_auth_code=…&state=…`: the merchant is back from Alipay.
async fn callback(
    State(state): State<Arc<PlatformState>>,
    Query(q): Query<Approved>,
) -> Result<Html<String>, AppError> {
    let channel = alipay(&state)?;
    let Some(link) = &state.alipay_auth else {
        return Err(AppError::conflict(
            "CHANNEL_UNAVAILABLE",
            "Alipay is not configured",
        ));
    };
    let merchant = state
        .db
        .take_alipay_state(&q.state, unix_now())
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            AppError::forbidden(
                "STATE_INVALID",
                "this authorization link is unknown, used or expired: ask for a new one",
            )
        })?;
    let granted = link
        .client
        .execute(&alipay::OpenAuthToken::code(&q.app_auth_code))
        .await
        .map_err(|e| {
            AppError::unprocessable("AUTHORIZATION_REFUSED", format!("Alipay said: {e}"))
        })?;
    let user_id = granted.user_id.clone().ok_or_else(|| {
        AppError::unprocessable("AUTHORIZATION_REFUSED", "Alipay named no merchant")
    })?;
    let app_auth_token = Secret::new(granted.app_auth_token.clone());
    if !state
        .db
        .set_alipay_authorization(&merchant.app_id, &user_id, &app_auth_token)
        .await
        .map_err(AppError::internal)?
    {
        return Err(AppError::conflict(
            "ALIPAY_ACCOUNT_TAKEN",
            "this Alipay account is another merchant's",
        ));
    }
    // The platform receives its fee from the merchant's trades: bound as its receiver.
    channel
        .for_sub_merchant(&user_id)
        .map_err(|e| AppError::unprocessable("AUTHORIZATION_REFUSED", e.to_string()))?
        .add_fee_receiver(&state.settings.platform_merchant_name)
        .await
        .map_err(|e| {
            AppError::unprocessable(
                "AUTHORIZATION_REFUSED",
                format!("the platform could not be bound as the fee's receiver: {e}"),
            )
        })?;
    Ok(Html(format!(
        "<!doctype html><meta charset=utf-8><title>Authorized</title>\
         <p>{} has authorized the platform on Alipay.</p>",
        crate::html::escape(&merchant.name)
    )))
}
