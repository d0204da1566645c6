//! The Official Account callback `/mp/callback`: the URL check (GET) and inbound messages
//! (POST), handed to the `wechat_mp` callback wired with binding, keywords and the chatbot.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use wechat_mp::message::{CallbackQuery, UrlCheck};

use crate::platform::PlatformState;

/// The callback routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new().route("/mp/callback", get(check).post(inbound))
}

fn refuse(e: &wechat_mp::Error) -> Response {
    let status = match e {
        wechat_mp::Error::Signature | wechat_mp::Error::StaleTimestamp { .. } => {
            StatusCode::FORBIDDEN
        }
        wechat_mp::Error::Store(_) | wechat_mp::Error::Config(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    tracing::warn!(error = %e, "MP callback refused");
    (status, "refused").into_response()
}

async fn check(State(state): State<Arc<PlatformState>>, Query(q): Query<UrlCheck>) -> Response {
    let Some(callback) = &state.mp_callback else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match callback.verify_url(&q) {
        Ok(echo) => echo.into_response(),
        Err(e) => refuse(&e),
    }
}

async fn inbound(
    State(state): State<Arc<PlatformState>>,
    Query(q): Query<CallbackQuery>,
    body: Bytes,
) -> Response {
    let Some(callback) = &state.mp_callback else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match callback.handle(&q, &body).await {
        Ok(reply) => (
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            reply,
        )
            .into_response(),
        Err(e) => refuse(&e),
    }
}
