//! Reconciliation against the providers' daily bills, two ways:
//!
//! - the admin API (bearer token) sees the platform's whole account: `GET /admin/bills` (the
//!   runs), `GET /admin/bills/{day}/{channel}` (a run and its items), `…/csv`, and
//!   `POST /admin/bills/reconcile {date, channel?}` (a day now);
//! - a merchant (signed open API) sees only what concerns their own orders and refunds, in
//!   their own numbers: `GET /v1/bills/{day}` — each channel's run status, and the differences
//!   found for them (what was settled, what is being looked at). Orphans (paid at a provider,
//!   unknown here) belong to nobody yet: the admin's.

use std::sync::Arc;

use aggregate_pay::bills::{BillItem, BillRunStatus};
use aggregate_pay::channels::BillEntryKind;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bills_api::{bill_day, csv_download, reconcile_now, run_and_items};
use crate::error::{AppError, AppJson};
use crate::platform::PlatformState;
use crate::platform::auth::{Admin, SignedMerchant};

/// The bill routes (admin and open API).
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/admin/bills", get(runs))
        .route("/admin/bills/reconcile", post(reconcile))
        .route("/admin/bills/{day}/{channel}", get(items))
        .route("/admin/bills/{day}/{channel}/csv", get(csv))
        .route("/v1/bills/{day}", get(merchant_day))
}

async fn runs(State(state): State<Arc<PlatformState>>, _: Admin) -> Result<Json<Value>, AppError> {
    let runs = state
        .bills
        .runs(None, 90)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(
        json!({ "runs": runs, "channels": state.bills.channel_ids() }),
    ))
}

async fn items(
    State(state): State<Arc<PlatformState>>,
    _: Admin,
    Path((day, channel)): Path<(String, String)>,
) -> Result<Json<Value>, AppError> {
    let (run, items) = run_and_items(&state.bills, &day, &channel).await?;
    Ok(Json(json!({ "run": run, "items": items })))
}

async fn csv(
    State(state): State<Arc<PlatformState>>,
    _: Admin,
    Path((day, channel)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let (_, items) = run_and_items(&state.bills, &day, &channel).await?;
    Ok(csv_download(&channel, &day, &items))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    date: String,
    channel: Option<String>,
}

async fn reconcile(
    State(state): State<Arc<PlatformState>>,
    _: Admin,
    AppJson(req): AppJson<ReconcileRequest>,
) -> Result<Json<Value>, AppError> {
    let day = bill_day(&req.date)?;
    let outcomes = reconcile_now(&state.bills, day, req.channel.as_deref(), &|_| {})
        .await
        .ok_or_else(|| AppError::not_found("CHANNEL_NOT_FOUND", "no such channel"))?;
    Ok(Json(json!({ "outcomes": outcomes })))
}

/// The calling merchant's view of a day: each channel's run, and the items about their orders.
async fn merchant_day(
    State(state): State<Arc<PlatformState>>,
    Path(day_text): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let day = bill_day(&day_text)?;
    let merchant = &signed.merchant.app_id;
    let mut channels = Vec::new();
    for id in state.bills.channel_ids() {
        let Some(run) = state
            .bills
            .run_of(day, &id)
            .await
            .map_err(AppError::internal)?
        else {
            continue;
        };
        let mut mine = Vec::new();
        for item in state
            .bills
            .items(day, &id)
            .await
            .map_err(AppError::internal)?
        {
            if let Some(view) = merchant_item(&state, merchant, &item).await? {
                mine.push(view);
            }
        }
        channels.push(json!({
            "channel": id,
            "status": run.status,
            "done": run.status == BillRunStatus::Done,
            "items": mine,
        }));
    }
    Ok(Json(json!({ "day": day_text, "channels": channels })))
}

/// An item in the merchant's numbers, if it is about one of their orders or refunds.
async fn merchant_item(
    state: &PlatformState,
    merchant: &str,
    item: &BillItem,
) -> Result<Option<Value>, AppError> {
    let (out_trade_no, out_refund_no) = match item.kind {
        BillEntryKind::Refund => {
            let Some(no) = &item.out_refund_no else {
                return Ok(None);
            };
            match state
                .db
                .refund_by_platform_no(no)
                .await
                .map_err(AppError::internal)?
            {
                Some(r) if r.merchant_id == merchant => (r.out_trade_no, Some(r.out_refund_no)),
                _ => return Ok(None),
            }
        }
        BillEntryKind::Payment => match state
            .db
            .order_by_platform_no(&item.out_trade_no)
            .await
            .map_err(AppError::internal)?
        {
            Some(o) if o.merchant_id == merchant => (o.out_trade_no, None),
            _ => return Ok(None),
        },
    };
    Ok(Some(json!({
        "kind": item.kind,
        "out_trade_no": out_trade_no,
        "out_refund_no": out_refund_no,
        "class": item.class,
        "settled": item.settled,
        "bill_amount": item.bill_amount,
        "amount": item.store_amount,
        "detail": item.detail,
    })))
}
