//! A seller's actions on their orders: refund a completed order, all or part, with a reason
//! (`POST /api/seller/orders/{no}/refund {amount, reason}`), cancel one still waiting for
//! payment (`POST /api/seller/orders/{no}/cancel {reason?}`), and resolve a refund that could
//! not reach the buyer (`POST /api/seller/orders/{no}/refunds/{refund_no}/resolve {to, …}`,
//! see `crate::abnormal_refund`). Each is recorded (never the buyer's card details).

use std::sync::Arc;

use aggregate_pay::Fen;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{own_order, record};
use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;
use crate::vending::db::Order;
use crate::vending::orders::OrderService;

/// The order routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/seller/orders/{order_no}/refund", post(refund))
        .route("/api/seller/orders/{order_no}/cancel", post(cancel))
        .route(
            "/api/seller/orders/{order_no}/refunds/{refund_no}/resolve",
            post(resolve_refund),
        )
}

async fn resolve_refund(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((order_no, refund_no)): Path<(String, String)>,
    AppJson(req): AppJson<crate::abnormal_refund::ResolveAbnormalRefund>,
) -> Result<Json<Value>, AppError> {
    let order = own_order(&state, &seller, &order_no).await?;
    let kind = req.kind();
    let to = req.checked()?;
    let refund = state
        .orders
        .resolve_abnormal_refund(&order, &refund_no, &to)
        .await?;
    record(
        &state,
        &seller,
        "resolve_refund",
        &order_no,
        None,
        Some(json!({"out_refund_no": refund_no, "to": kind, "status": refund.status})),
    )
    .await?;
    Ok(Json(json!({
        "out_refund_no": refund.out_refund_no,
        "status": refund.status,
        "what_to_do": refund.last_error,
        "order": OrderService::view(&state.orders.get(&order_no).await?),
    })))
}

/// What the audit keeps of an order.
fn state_of(order: &Order) -> Value {
    json!({"status": order.status, "refunded": order.refunded})
}

/// A reason the channels accept (WeChat: at most 80 characters).
pub(super) fn reason(text: &str) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 80 {
        return Err(AppError::unprocessable(
            "REASON_INVALID",
            "say why, in 1 to 80 characters",
        ));
    }
    Ok(text.to_owned())
}

/// A refund the seller asks for (of an order, or for a complaint).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundRequest {
    /// Fen.
    pub(super) amount: u64,
    pub(super) reason: String,
}

async fn refund(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(order_no): Path<String>,
    AppJson(req): AppJson<RefundRequest>,
) -> Result<Json<Value>, AppError> {
    let why = reason(&req.reason)?;
    let order = own_order(&state, &seller, &order_no).await?;
    let refund = state
        .orders
        .seller_refund(&order, Fen::new(req.amount), &why)
        .await?;
    let after = state.orders.get(&order_no).await?;
    record(
        &state,
        &seller,
        "refund",
        &order_no,
        Some(state_of(&order)),
        Some(json!({
            "status": after.status,
            "refunded": after.refunded,
            "refund": {"out_refund_no": refund.out_refund_no, "amount": refund.amount,
                       "status": refund.status, "reason": why},
        })),
    )
    .await?;
    Ok(Json(json!({
        "order": OrderService::view(&after),
        "refund": {"out_refund_no": refund.out_refund_no, "amount": refund.amount,
                   "status": refund.status},
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelRequest {
    reason: Option<String>,
}

async fn cancel(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(order_no): Path<String>,
    AppJson(req): AppJson<CancelRequest>,
) -> Result<Json<Value>, AppError> {
    let why = match req.reason.as_deref() {
        Some(r) => format!("cancelled by the seller: {}", reason(r)?),
        None => "cancelled by the seller".to_owned(),
    };
    let order = own_order(&state, &seller, &order_no).await?;
    let after = state.orders.cancel(&order_no, &why).await?;
    record(
        &state,
        &seller,
        "cancel",
        &order_no,
        Some(state_of(&order)),
        Some(state_of(&after)),
    )
    .await?;
    Ok(Json(OrderService::view(&after)))
}
