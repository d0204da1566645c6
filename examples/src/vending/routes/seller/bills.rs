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

use aggregate_pay::BillOutcome;
use aggregate_pay::bills::{BillError, items_csv};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::record;
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

/// The session's seller, if an operator (asked of the database each time: a role taken away
/// ends at once).
async fn operator(state: &VendingState, seller: &SellerSession) -> Result<(), AppError> {
    let found = state
        .orders
        .db()
        .seller(&seller.login)
        .await
        .map_err(AppError::internal)?;
    match found {
        Some(s) if s.operator && s.enabled => Ok(()),
        _ => Err(AppError::forbidden(
            "OPERATOR_ONLY",
            "the bills cover the whole merchant account: operators only",
        )),
    }
}

fn day(text: &str) -> Result<time::Date, AppError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map_err(|_| AppError::bad_request("INVALID_DATE", "a day is YYYY-MM-DD"))
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

async fn run_and_items(
    state: &VendingState,
    day_text: &str,
    channel: &str,
) -> Result<
    (
        aggregate_pay::bills::BillRun,
        Vec<aggregate_pay::bills::BillItem>,
    ),
    AppError,
> {
    let day = day(day_text)?;
    let run = state
        .bills
        .run_of(day, channel)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("RUN_NOT_FOUND", "no run of that day and channel"))?;
    let items = state
        .bills
        .items(day, channel)
        .await
        .map_err(AppError::internal)?;
    Ok((run, items))
}

async fn items(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((day_text, channel)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    operator(&state, &seller).await?;
    let (run, items) = run_and_items(&state, &day_text, &channel).await?;
    Ok(Json(json!({ "run": run, "items": items })))
}

async fn csv(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((day_text, channel)): Path<(String, String)>,
) -> Result<Response, AppError> {
    operator(&state, &seller).await?;
    let (_, items) = run_and_items(&state, &day_text, &channel).await?;
    let name = format!("attachment; filename=\"bill-{channel}-{day_text}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        items_csv(&items),
    )
        .into_response())
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
    let day = day(&req.date)?;
    let ids = match &req.channel {
        Some(c) if state.bills.channel_ids().contains(c) => vec![c.clone()],
        Some(_) => return Err(AppError::not_found("CHANNEL_NOT_FOUND", "no such channel")),
        None => state.bills.channel_ids(),
    };
    let mut outcomes = Vec::new();
    for id in ids {
        let outcome = match state.bills.reconcile(day, &id).await {
            Ok(BillOutcome::Done(run)) => {
                state.metrics.bill_run(&run);
                json!({"channel": id, "status": "done", "run": run})
            }
            Ok(BillOutcome::NotReady(run)) => {
                json!({"channel": id, "status": "not_ready", "run": run})
            }
            Ok(BillOutcome::Busy) => json!({"channel": id, "status": "busy"}),
            Ok(other) => json!({"channel": id, "status": format!("{other:?}")}),
            Err(BillError::Channel {
                source: aggregate_pay::ChannelError::Unsupported(_),
                ..
            }) => continue,
            Err(e) => json!({"channel": id, "status": "failed", "error": e.to_string()}),
        };
        outcomes.push(outcome);
    }
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
