//! `GET /api/seller/audit`: what this seller did, newest first (who, what, to what, when, the
//! state before and after).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;

/// The audit route.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new().route("/api/seller/audit", get(list))
}

async fn list(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    let entries = state
        .orders
        .db()
        .audit_of(&seller.login, 100)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({ "entries": entries })))
}
