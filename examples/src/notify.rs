//! Channel notifications, for both servers: `/notify/wechat`, `/notify/wechat/refund` and
//! `/notify/alipay`, each handed unread to `aggregate-pay`'s `NotifyProcessor`, which verifies,
//! records and answers in the channel's own format. A server's state provides the processor
//! through [`HasNotifyProcessor`].

use std::sync::Arc;

use aggregate_pay::channels::RawNotify;
use aggregate_pay::{NotifyOutcome, NotifyProcessor};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

/// A server state that holds the notification template.
pub trait HasNotifyProcessor: Send + Sync + 'static {
    /// The processor.
    fn notify_processor(&self) -> &NotifyProcessor;

    /// Sees every outcome (metrics); nothing by default.
    fn observe_notify(&self, _channel: &str, _outcome: &NotifyOutcome) {}
}

/// The notification routes.
pub fn routes<T: HasNotifyProcessor>() -> Router<Arc<T>> {
    Router::new()
        .route("/notify/wechat", post(wechat::<T>))
        .route("/notify/wechat/refund", post(wechat_refund::<T>))
        .route("/notify/alipay", post(alipay::<T>))
}

async fn process<T: HasNotifyProcessor>(state: &T, channel: &str, raw: RawNotify) -> Response {
    let handled = state.notify_processor().handle(channel, &raw).await;
    state.observe_notify(channel, &handled.outcome);
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

async fn wechat<T: HasNotifyProcessor>(State(state): State<Arc<T>>, body: Bytes) -> Response {
    process(state.as_ref(), "wechat", RawNotify::payment(body.to_vec())).await
}

async fn wechat_refund<T: HasNotifyProcessor>(
    State(state): State<Arc<T>>,
    body: Bytes,
) -> Response {
    process(state.as_ref(), "wechat", RawNotify::refund(body.to_vec())).await
}

async fn alipay<T: HasNotifyProcessor>(State(state): State<Arc<T>>, body: Bytes) -> Response {
    process(state.as_ref(), "alipay", RawNotify::payment(body.to_vec())).await
}
