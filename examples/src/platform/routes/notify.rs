//! Channel notifications: each is handed, unread, to `aggregate-pay`'s `NotifyProcessor`, which
//! verifies, records and answers in the channel's own format.

use std::sync::Arc;

use aggregate_pay::NotifyOutcome;
use aggregate_pay::channels::RawNotify;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::platform::PlatformState;

/// The notification routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/notify/wechat", post(wechat))
        .route("/notify/wechat/refund", post(wechat_refund))
        .route("/notify/alipay", post(alipay))
}

async fn process(state: &PlatformState, channel: &str, raw: RawNotify) -> Response {
    let handled = state.processor.handle(channel, &raw).await;
    match &handled.outcome {
        NotifyOutcome::Applied | NotifyOutcome::Duplicate | NotifyOutcome::Ignored => {
            tracing::info!(channel, outcome = ?handled.outcome, "notification")
        }
        other => tracing::warn!(channel, outcome = ?other, "notification not accepted"),
    }
    let status =
        StatusCode::from_u16(handled.ack.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, handled.ack.content_type)],
        handled.ack.body,
    )
        .into_response()
}

async fn wechat(State(state): State<Arc<PlatformState>>, body: Bytes) -> Response {
    process(&state, "wechat", RawNotify::payment(body.to_vec())).await
}

async fn wechat_refund(State(state): State<Arc<PlatformState>>, body: Bytes) -> Response {
    process(&state, "wechat", RawNotify::refund(body.to_vec())).await
}

async fn alipay(State(state): State<Arc<PlatformState>>, body: Bytes) -> Response {
    process(&state, "alipay", RawNotify::payment(body.to_vec())).await
}
