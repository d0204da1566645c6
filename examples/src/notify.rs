//! Channel notifications, for both servers: `/notify/{channel_id}` (payments) and
//! `/notify/{channel_id}/refund` (refunds), for whatever channels are registered — `wechat`,
//! `wechat_mini`, `alipay`… — each handed unread to `aggregate-pay`'s `NotifyProcessor`, which
//! verifies, records and answers in the channel's own format. An id no channel has is a 404 (and
//! never a metrics label). A server's state provides the processor through
//! [`HasNotifyProcessor`].

use std::sync::Arc;

use aggregate_pay::channels::{PaymentChannel, RawNotify};
use aggregate_pay::{NotifyOutcome, NotifyProcessor};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
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
        .route("/notify/{channel}", post(payment::<T>))
        .route("/notify/{channel}/refund", post(refund::<T>))
}

/// The notify URL of `channel`'s payments under `public_url`.
pub fn payment_url(public_url: &str, channel: &str) -> String {
    format!("{}/notify/{channel}", public_url.trim_end_matches('/'))
}

/// The notify URL of `channel`'s refunds, when its refunds notify (its capabilities say).
pub fn refund_url(public_url: &str, channel: &dyn PaymentChannel) -> Option<String> {
    channel
        .capabilities()
        .refund_notifications
        .then(|| format!("{}/refund", payment_url(public_url, channel.id())))
}

async fn process<T: HasNotifyProcessor>(state: &T, channel: &str, raw: RawNotify) -> Response {
    if state.notify_processor().channels().get(channel).is_none() {
        return (StatusCode::NOT_FOUND, "unknown channel").into_response();
    }
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

/// The request's headers, for channels that sign in them (WeChat Pay API v3).
fn headers(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

async fn payment<T: HasNotifyProcessor>(
    State(state): State<Arc<T>>,
    Path(channel): Path<String>,
    map: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = RawNotify::payment(body.to_vec()).with_headers(headers(&map));
    process(state.as_ref(), &channel, raw).await
}

async fn refund<T: HasNotifyProcessor>(
    State(state): State<Arc<T>>,
    Path(channel): Path<String>,
    map: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = RawNotify::refund(body.to_vec()).with_headers(headers(&map));
    process(state.as_ref(), &channel, raw).await
}
