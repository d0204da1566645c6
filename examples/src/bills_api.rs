//! What both servers' bill APIs share (vending's Bills page, pay-platform's admin API): a day
//! reconciled now, a run with its items, the items as CSV.

use aggregate_pay::BillOutcome;
use aggregate_pay::BillReconciler;
use aggregate_pay::bills::{BillError, BillItem, BillRun, items_csv};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// A day reconciled now on one channel (or every channel with bills), for an API: each
/// channel's outcome as JSON (`{channel, status: done | not_ready | busy | failed, run?, error?}`),
/// each done run handed to `on_run`. `None` when `channel` is not registered.
pub async fn reconcile_now(
    bills: &BillReconciler,
    day: time::Date,
    channel: Option<&str>,
    on_run: &(dyn Fn(&BillRun) + Sync),
) -> Option<Vec<serde_json::Value>> {
    use serde_json::json;
    let ids = match channel {
        Some(c) if bills.channel_ids().iter().any(|id| id == c) => vec![c.to_owned()],
        Some(_) => return None,
        None => bills.channel_ids(),
    };
    let mut outcomes = Vec::new();
    for id in ids {
        outcomes.push(match bills.reconcile(day, &id).await {
            Ok(BillOutcome::Done(run)) => {
                on_run(&run);
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
        });
    }
    Some(outcomes)
}

/// A bill day from an API (`YYYY-MM-DD`).
pub fn bill_day(text: &str) -> Result<time::Date, crate::error::AppError> {
    crate::workers::parse_day(text)
        .map_err(|_| crate::error::AppError::bad_request("INVALID_DATE", "a day is YYYY-MM-DD"))
}

/// The run of `day_text` on `channel`, and its items (404 without a run).
pub async fn run_and_items(
    bills: &BillReconciler,
    day_text: &str,
    channel: &str,
) -> Result<(BillRun, Vec<BillItem>), AppError> {
    let day = bill_day(day_text)?;
    let run = bills
        .run_of(day, channel)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("RUN_NOT_FOUND", "no run of that day and channel"))?;
    let items = bills
        .items(day, channel)
        .await
        .map_err(AppError::internal)?;
    Ok((run, items))
}

/// The items as a CSV download.
pub fn csv_download(channel: &str, day_text: &str, items: &[BillItem]) -> Response {
    let name = format!("attachment; filename=\"bill-{channel}-{day_text}.csv\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        items_csv(items),
    )
        .into_response()
}
