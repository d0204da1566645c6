//! The Bills page's API, for operators only (a seller flagged `operator`; the demo seller is
//! one): the daily reconciliation against the providers' bills covers the whole merchant
//! account, every seller's orders, so a seller who is not an operator gets 403.
//!
//! - `GET /api/seller/bills` — the runs, newest day first (day, channel, status, counts, totals);
//! - `GET /api/seller/bills/{day}/{channel}` — a run and its items (every difference, and what
//!   was settled);
//! - `GET /api/seller/bills/{day}/{channel}/csv` — the items as CSV;
//! - `POST /api/seller/bills/reconcile {date, channel?}` — reconciles a day now (recorded).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::record;
use crate::bills_api::{bill_day, csv_download, reconcile_now, run_and_items};
use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;

/// The bills routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/seller/bills", get(runs))
        .route("/api/seller/bills/reconcile", post(reconcile))
        .route("/api/seller/bills/{day}/{channel}", get(items))
        .route("/api/seller/bills/{day}/{channel}/csv", get(csv))
}

/// The session's seller, if an operator.
async fn operator(state: &VendingState, seller: &SellerSession) -> Result<(), AppError> {
    if super::is_operator(state, seller).await? {
        return Ok(());
    }
    Err(AppError::forbidden(
        "OPERATOR_ONLY",
        "the bills cover the whole merchant account: operators only",
    ))
}

async fn runs(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    operator(&state, &seller).await?;
    let runs = state
        .bills
        .runs(None, 90)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({
        "runs": runs,
        "channels": state.bills.channel_ids(),
    })))
}

async fn items(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((day_text, channel)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    operator(&state, &seller).await?;
    let (run, items) = run_and_items(&state.bills, &day_text, &channel).await?;
    Ok(Json(json!({ "run": run, "items": items })))
}

async fn csv(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((day_text, channel)): Path<(String, String)>,
) -> Result<Response, AppError> {
    operator(&state, &seller).await?;
    let (_, items) = run_and_items(&state.bills, &day_text, &channel).await?;
    Ok(csv_download(&channel, &day_text, &items))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    date: String,
    channel: Option<String>,
}

async fn reconcile(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    AppJson(req): AppJson<ReconcileRequest>,
) -> Result<Json<Value>, AppError> {
    operator(&state, &seller).await?;
    let day = bill_day(&req.date)?;
    let metrics = state.metrics.clone();
    let outcomes = reconcile_now(&state.bills, day, req.channel.as_deref(), &|run| {
        metrics.bill_run(run)
    })
    .await
    .ok_or_else(|| AppError::not_found("CHANNEL_NOT_FOUND", "no such channel"))?;
    record(
        &state,
        &seller,
        "reconcile_bills",
        &req.date,
        None,
        Some(json!({ "channel": req.channel })),
    )
    .await?;
    Ok(Json(json!({ "outcomes": outcomes })))
}
