//! HTTP routes: `api` (machines, SKUs, channels, the buyer's orders), `session` (buyer logins),
//! `seller` (the seller's login, live feed, actions and audit), `pages` (the buyer page and the
//! SKU images), and `/healthz`, `/metrics`.
//! Channel notifications are the shared `crate::notify` routes.

pub mod api;
pub mod pages;
pub mod seller;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::VendingState;
use super::orders::OrderError;
use crate::error::AppError;

/// An order step's failure as an HTTP answer.
impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        let message = e.to_string();
        match e {
            OrderError::MachineNotFound => AppError::not_found("MACHINE_NOT_FOUND", message),
            OrderError::MachineOffline => AppError::conflict("MACHINE_OFFLINE", message),
            OrderError::SoldOut => AppError::conflict("SOLD_OUT", message),
            OrderError::MachineBusy => AppError::conflict("MACHINE_BUSY", message),
            OrderError::ChannelRequired => AppError::bad_request("CHANNEL_REQUIRED", message),
            OrderError::Choice(c) => c.into(),
            OrderError::LoginUnavailable => AppError::unprocessable("LOGIN_UNAVAILABLE", message),
            OrderError::JsCodeInvalid(_) => AppError::bad_request("JS_CODE_INVALID", message),
            OrderError::OpenIdRequired => AppError::bad_request("OPEN_ID_REQUIRED", message),
            OrderError::OrderOpen(order_no) => {
                let e = AppError::conflict("ORDER_OPEN", message);
                match order_no {
                    Some(no) => e.with_field("order_no", no),
                    None => e,
                }
            }
            OrderError::NotRefundable(_) => AppError::conflict("ORDER_NOT_REFUNDABLE", message),
            OrderError::RefundInProgress => AppError::conflict("REFUND_IN_PROGRESS", message),
            OrderError::RefundAmount { .. } => {
                AppError::unprocessable("REFUND_AMOUNT_INVALID", message)
            }
            OrderError::OrderNotFound => AppError::not_found("ORDER_NOT_FOUND", message),
            OrderError::Ended => AppError::conflict("ORDER_NOT_CANCELLABLE", message),
            OrderError::Paid(_) => AppError::conflict("ORDER_PAID", message),
            OrderError::Payment(p) => p.into(),
            OrderError::Storage(detail) => AppError::internal(detail),
            OrderError::Random(e) => AppError::internal(e),
        }
    }
}

/// `/healthz`.
pub fn ops() -> Router<Arc<VendingState>> {
    Router::new().route("/healthz", get(healthz))
}

/// `/metrics` (on the main listener, or on `METRICS_LISTEN`'s). Its labels are statuses,
/// outcomes and channel ids: never an order number, an open_id or a secret.
pub fn metrics_routes() -> Router<Arc<VendingState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<Arc<VendingState>>) -> impl IntoResponse {
    let counts = state
        .orders
        .db()
        .count_open_by_status()
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "order counts unavailable");
            Vec::new()
        });
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&counts),
    )
}
