//! Request authentication as extractors: [`SignedMerchant`] for the open API (the scheme of
//! `merchant_client::signing`), [`Admin`] for the admin API (a bearer token).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use merchant_client::signing::{self, RequestParts, headers};
use subtle::ConstantTimeEq;

use super::PlatformState;
use super::db::{Merchant, MerchantStatus};
use crate::error::AppError;

/// The largest open-API request body.
pub const MAX_BODY: usize = 64 * 1024;

/// An open-API request whose signature, timestamp and nonce checked out.
#[derive(Debug)]
pub struct SignedMerchant {
    /// The calling merchant.
    pub merchant: Merchant,
    /// The request body.
    pub body: Bytes,
}

fn header<'a>(parts: &'a Parts, name: &str) -> Result<&'a str, AppError> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            AppError::unauthorized(
                "SIGNATURE_MISSING",
                format!("the {name} header is required"),
            )
        })
}

impl FromRequest<Arc<PlatformState>> for SignedMerchant {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &Arc<PlatformState>) -> Result<Self, AppError> {
        let (parts, body) = req.into_parts();
        let app_id = header(&parts, headers::APP_ID)?.to_owned();
        let timestamp = header(&parts, headers::TIMESTAMP)?.to_owned();
        let nonce = header(&parts, headers::NONCE)?.to_owned();
        let signature = header(&parts, headers::SIGNATURE)?.to_owned();
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                "the body exceeds 64 KiB",
            )
        })?;
        let merchant = state
            .db
            .merchant(&app_id)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(|| AppError::unauthorized("APP_UNKNOWN", "no merchant with this app id"))?;
        let now = crate::clock::unix_now();
        let ts: i64 = timestamp.parse().map_err(|_| {
            AppError::unauthorized("TIMESTAMP_INVALID", "X-Timestamp must be Unix seconds")
        })?;
        let window = state.settings.signature_window;
        if ts.abs_diff(now) > window.as_secs() {
            return Err(AppError::unauthorized(
                "TIMESTAMP_STALE",
                "X-Timestamp is outside the accepted window",
            ));
        }
        if !signing::valid_nonce(&nonce) {
            return Err(AppError::unauthorized(
                "NONCE_INVALID",
                "X-Nonce must be 16 to 64 letters or digits",
            ));
        }
        let request = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            timestamp: ts,
            nonce: &nonce,
            body: &body,
        };
        let (secret, salt) = (&merchant.secret, &merchant.salt);
        let previous = merchant.previous_secret.as_ref().filter(|_| {
            merchant
                .previous_valid_until
                .is_some_and(|until| until > now)
        });
        let mut credentials = vec![(secret, salt)];
        if let Some(p) = previous {
            credentials.push((p, salt));
        }
        if !signing::verify_request(&request, &signature, &credentials) {
            return Err(AppError::unauthorized(
                "SIGNATURE_INVALID",
                "the signature does not match",
            ));
        }
        // Said only to a caller who proved to be the merchant.
        if merchant.status != MerchantStatus::Active {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                "MERCHANT_DISABLED",
                "the merchant is disabled",
            ));
        }
        // Only a correctly signed request may use up a nonce.
        let first = state
            .nonces
            .first_seen(
                &format!("{app_id}:{nonce}"),
                window * 2 + Duration::from_secs(60),
            )
            .await
            .map_err(AppError::internal)?;
        if !first {
            return Err(AppError::unauthorized(
                "NONCE_REPLAYED",
                "this nonce was already used",
            ));
        }
        Ok(SignedMerchant { merchant, body })
    }
}

/// The admin API's bearer token checked.
#[derive(Debug)]
pub struct Admin;

impl FromRequestParts<Arc<PlatformState>> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<PlatformState>,
    ) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let expected = state.settings.admin_token.expose().as_bytes();
        // An absent or empty token never matches, whatever the configuration holds (start-up
        // refuses an empty or short one; this is the second lock on the same door).
        if !token.is_empty()
            && !expected.is_empty()
            && token.len() == expected.len()
            && bool::from(token.as_bytes().ct_eq(expected))
        {
            Ok(Admin)
        } else {
            Err(AppError::unauthorized(
                "ADMIN_TOKEN_INVALID",
                "a valid admin bearer token is required",
            ))
        }
    }
}
