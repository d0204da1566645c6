//! The signed open API's complaints: a merchant reads the payers' WeChat Pay complaints about
//! its payments and answers them (the platform answers WeChat for it, naming the merchant's
//! sub-merchant number in partner mode):
//!
//! - `GET /v1/complaints` — the merchant's, newest first;
//! - `GET /v1/complaints/{id}` — as WeChat has it now, with the whole negotiation;
//! - `POST /v1/complaints/{id}/response {text}` — the answer the payer reads;
//! - `POST /v1/complaints/{id}/refund-progress {action: "approve", launch_refund_day}` or
//!   `{action: "reject", reason}` — the refund decision (the refund itself is `/v1/refunds`);
//! - `POST /v1/complaints/{id}/complete` — handled.
//!
//! Another merchant's complaint is 404; a platform not on API v3 answers `409 COMPLAINTS_OFF`;
//! what WeChat refuses is `502 CHANNEL_REJECTED` with its message.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_pay::v3::{
    CompleteComplaint, QueryComplaint, RefundDecision, RespondComplaint, UpdateRefundProgress,
};

use super::open_api::parse;
use crate::complaints::{ComplaintKeeper, provider_error};
use crate::error::AppError;
use crate::platform::PlatformState;
use crate::platform::auth::SignedMerchant;
use crate::platform::complaints::{PlatformComplaints, view};
use crate::platform::db::MerchantComplaint;

/// The complaint routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/v1/complaints", get(list))
        .route("/v1/complaints/{id}", get(detail))
        .route("/v1/complaints/{id}/response", post(respond))
        .route("/v1/complaints/{id}/refund-progress", post(refund_progress))
        .route("/v1/complaints/{id}/complete", post(complete))
}

fn complaints(state: &PlatformState) -> Result<&PlatformComplaints, AppError> {
    state.complaints.as_deref().ok_or_else(|| {
        AppError::conflict(
            "COMPLAINTS_OFF",
            "this platform takes WeChat Pay through API v2: complaints need API v3",
        )
    })
}

/// The merchant's complaint `id`; anyone else's is "not found".
async fn own(
    state: &PlatformState,
    signed: &SignedMerchant,
    id: &str,
) -> Result<MerchantComplaint, AppError> {
    state
        .db
        .complaint(id)
        .await
        .map_err(AppError::internal)?
        .filter(|c| c.merchant_id == signed.merchant.app_id)
        .ok_or_else(|| AppError::not_found("COMPLAINT_NOT_FOUND", "no such complaint"))
}

async fn list(
    State(state): State<Arc<PlatformState>>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    complaints(&state)?;
    let mine = state
        .db
        .complaints_of(&signed.merchant.app_id, 100)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(
        json!({"complaints": mine.iter().map(view).collect::<Vec<_>>()}),
    ))
}

async fn detail(
    State(state): State<Arc<PlatformState>>,
    Path(id): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    own(&state, &signed, &id).await?;
    let (complaint, history) = desk
        .desk()
        .case(&id)
        .await
        .map_err(|e| provider_error(&e))?;
    let kept = desk
        .store(&complaint)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("COMPLAINT_NOT_FOUND", "no such complaint"))?;
    let mut answer = view(&kept);
    answer["history"] = crate::complaints::history_view(&history);
    Ok(Json(answer))
}

/// After an action: the complaint as WeChat has it now, kept.
async fn after(desk: &PlatformComplaints, id: &str) -> Result<Json<Value>, AppError> {
    let complaint = desk
        .desk()
        .client()
        .execute(&QueryComplaint(id.to_owned()))
        .await
        .map_err(|e| provider_error(&e))?;
    let kept = desk
        .store(&complaint)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("COMPLAINT_NOT_FOUND", "no such complaint"))?;
    Ok(Json(view(&kept)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    text: String,
}

async fn respond(
    State(state): State<Arc<PlatformState>>,
    Path(id): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let req: Response = parse(&signed.body)?;
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(AppError::unprocessable(
            "TEXT_INVALID",
            "answer in 1 to 200 characters",
        ));
    }
    let c = own(&state, &signed, &id).await?;
    desk.desk()
        .client()
        .execute(&RespondComplaint::new(&id, &c.complainted_mchid, text))
        .await
        .map_err(|e| provider_error(&e))?;
    after(desk, &id).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Progress {
    action: String,
    #[serde(default)]
    launch_refund_day: Option<u32>,
    #[serde(default)]
    reason: Option<String>,
}

async fn refund_progress(
    State(state): State<Arc<PlatformState>>,
    Path(id): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let req: Progress = parse(&signed.body)?;
    let decision = match (req.action.as_str(), req.launch_refund_day, req.reason) {
        ("approve", Some(days), None) if days <= 5 => RefundDecision::Approve {
            launch_refund_day: days,
        },
        ("reject", None, Some(reason)) if (1..=200).contains(&reason.trim().chars().count()) => {
            RefundDecision::Reject {
                reason: reason.trim().to_owned(),
            }
        }
        _ => {
            return Err(AppError::unprocessable(
                "PROGRESS_INVALID",
                "say {action: \"approve\", launch_refund_day: 0 to 5} or {action: \"reject\", reason}",
            ));
        }
    };
    own(&state, &signed, &id).await?;
    desk.desk()
        .client()
        .execute(&UpdateRefundProgress {
            complaint_id: id.clone(),
            decision,
            remark: None,
        })
        .await
        .map_err(|e| provider_error(&e))?;
    after(desk, &id).await
}

async fn complete(
    State(state): State<Arc<PlatformState>>,
    Path(id): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let c = own(&state, &signed, &id).await?;
    desk.desk()
        .client()
        .execute(&CompleteComplaint::new(&id, &c.complainted_mchid))
        .await
        .map_err(|e| provider_error(&e))?;
    after(desk, &id).await
}
