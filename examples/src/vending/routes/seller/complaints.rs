//! The payers' complaints about a seller's orders (WeChat Pay API v3), and the seller's answers:
//!
//! - `GET /api/seller/complaints` — the seller's, newest first, each with its order (an
//!   operator also sees those about orders this server does not know); `enabled: false` when
//!   the merchant is not on API v3;
//! - `GET /api/seller/complaints/{id}` — the complaint as WeChat has it now, with the whole
//!   negotiation and the order;
//! - `POST /api/seller/complaints/{id}/images` — an image to answer with (the raw JPEG, PNG or
//!   BMP body, at most 2 MiB), uploaded to WeChat: `{media_id}`;
//! - `POST /api/seller/complaints/{id}/response {text, images?}` — the answer the payer reads;
//! - `POST /api/seller/complaints/{id}/refund {amount, reason}` — refunds the order (once per
//!   complaint, however often asked) and tells WeChat the refund is made;
//!   `…/refund-refused {reason}` tells WeChat it will not be;
//! - `POST /api/seller/complaints/{id}/complete` — marks it handled.
//!
//! Each action is recorded in the audit. Another seller's complaint is 404; without API v3
//! the actions are `409 COMPLAINTS_OFF`; what WeChat refuses is `502 CHANNEL_REJECTED` with
//! its message, and `503 CHANNEL_UNAVAILABLE` when it cannot be reached.

use std::sync::Arc;

use aggregate_pay::Fen;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use wechat_pay::v3::{CompleteComplaint, RefundDecision, RespondComplaint, UpdateRefundProgress};

use super::orders::RefundRequest;
use super::{is_operator, record};
use crate::complaints::ComplaintKeeper;
use crate::complaints::provider_error;
use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;
use crate::vending::complaints::Complaints;
use crate::vending::db::StoredComplaint;
use crate::vending::orders::OrderService;

/// The largest image WeChat takes for an answer.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

/// The most images one answer carries.
const MAX_IMAGES: usize = 4;

/// The complaint routes (the upload has its own body limit: [`upload_routes`]).
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/seller/complaints", get(list))
        .route("/api/seller/complaints/{id}", get(detail))
        .route("/api/seller/complaints/{id}/response", post(respond))
        .route("/api/seller/complaints/{id}/refund", post(refund))
        .route("/api/seller/complaints/{id}/refund-refused", post(refuse))
        .route("/api/seller/complaints/{id}/complete", post(complete))
}

/// The image upload, served under [`MAX_IMAGE_BYTES`] instead of the server's body limit.
pub fn upload_routes() -> Router<Arc<VendingState>> {
    Router::new().route("/api/seller/complaints/{id}/images", post(upload))
}

fn complaints(state: &VendingState) -> Result<&Complaints, AppError> {
    state.complaints.as_deref().ok_or_else(|| {
        AppError::conflict(
            "COMPLAINTS_OFF",
            "complaints need WeChat Pay API v3 (WECHAT_PAY_API=v3; in demo mode DEMO_WECHAT_API=v3)",
        )
    })
}

/// The seller's complaint `id` (an operator's too when it is about no known order); anyone
/// else's is "not found".
async fn own_complaint(
    state: &VendingState,
    seller: &SellerSession,
    id: &str,
) -> Result<StoredComplaint, AppError> {
    let found = state
        .orders
        .db()
        .complaint(id)
        .await
        .map_err(AppError::internal)?;
    match found {
        Some(c) if c.seller.as_deref() == Some(seller.login.as_str()) => Ok(c),
        Some(c) if c.seller.is_none() && is_operator(state, seller).await? => Ok(c),
        _ => Err(AppError::not_found(
            "COMPLAINT_NOT_FOUND",
            "no such complaint",
        )),
    }
}

/// The complaint with its order beside it.
async fn with_order(state: &VendingState, c: &StoredComplaint) -> Result<Value, AppError> {
    let order = match &c.order_no {
        Some(no) => state
            .orders
            .db()
            .order(no)
            .await
            .map_err(AppError::internal)?
            .map(|o| OrderService::view(&o)),
        None => None,
    };
    let mut view = json!(c);
    view["order"] = json!(order);
    Ok(view)
}

async fn list(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    if state.complaints.is_none() {
        return Ok(Json(json!({"enabled": false, "complaints": []})));
    }
    let operator = is_operator(&state, &seller).await?;
    let stored = state
        .orders
        .db()
        .complaints_of(&seller.login, operator, 100)
        .await
        .map_err(AppError::internal)?;
    let mut views = Vec::with_capacity(stored.len());
    for c in &stored {
        views.push(with_order(&state, c).await?);
    }
    Ok(Json(json!({"enabled": true, "complaints": views})))
}

async fn detail(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    own_complaint(&state, &seller, &id).await?;
    let (complaint, history) = desk
        .desk()
        .case(&id)
        .await
        .map_err(|e| provider_error(&e))?;
    let stored = desk.store(&complaint).await.map_err(AppError::internal)?;
    let mut view = with_order(&state, &stored).await?;
    view["history"] = crate::complaints::history_view(&history);
    Ok(Json(view))
}

/// The image's name by its first bytes: only what WeChat takes (JPEG, PNG, BMP).
fn image_name(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("answer.jpg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("answer.png")
    } else if bytes.starts_with(b"BM") {
        Some("answer.bmp")
    } else {
        None
    }
}

async fn upload(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    own_complaint(&state, &seller, &id).await?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let name = image_name(&body)
        .filter(|_| declared.starts_with("image/"))
        .ok_or_else(|| {
            AppError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "IMAGE_INVALID",
                "send a JPEG, PNG or BMP image as the body, with its image/* content type",
            )
        })?;
    let media_id = desk
        .desk()
        .client()
        .upload_complaint_image(name, body.to_vec())
        .await
        .map_err(|e| provider_error(&e))?;
    Ok(Json(json!({ "media_id": media_id })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Response {
    text: String,
    #[serde(default)]
    images: Vec<String>,
}

/// Refreshes the complaint after an action and records the action.
async fn done(
    state: &VendingState,
    seller: &SellerSession,
    action: &str,
    before: &StoredComplaint,
    what: Value,
) -> Result<Json<Value>, AppError> {
    let after = complaints(state)?.refresh(&before.complaint_id).await?;
    let mut recorded = what;
    recorded["state"] = json!(after.state);
    record(
        state,
        seller,
        action,
        &before.complaint_id,
        Some(json!({"state": before.state, "order_no": before.order_no})),
        Some(recorded),
    )
    .await?;
    Ok(Json(with_order(state, &after).await?))
}

async fn respond(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
    AppJson(req): AppJson<Response>,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let text = req.text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(AppError::unprocessable(
            "TEXT_INVALID",
            "answer in 1 to 200 characters",
        ));
    }
    if req.images.len() > MAX_IMAGES || req.images.iter().any(|m| m.trim().is_empty()) {
        return Err(AppError::unprocessable(
            "IMAGES_INVALID",
            "at most 4 images, each a media_id from the upload",
        ));
    }
    let before = own_complaint(&state, &seller, &id).await?;
    let client = desk.desk().client();
    let mut answer = RespondComplaint::new(&id, client.mch_id(), text);
    for media_id in &req.images {
        answer = answer.image(media_id);
    }
    client
        .execute(&answer)
        .await
        .map_err(|e| provider_error(&e))?;
    let what = json!({"text": text, "images": req.images.len()});
    done(&state, &seller, "complaint_response", &before, what).await
}

async fn refund(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
    AppJson(req): AppJson<RefundRequest>,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let why = super::orders::reason(&req.reason)?;
    let before = own_complaint(&state, &seller, &id).await?;
    let order_no = before.order_no.clone().ok_or_else(|| {
        AppError::conflict(
            "ORDER_UNKNOWN",
            "the complaint is about an order this server does not know: refund it where it was sold",
        )
    })?;
    let order = state.orders.get(&order_no).await?;
    let refund = state
        .orders
        .complaint_refund(&order, &id, Fen::new(req.amount), &why)
        .await?;
    desk.desk()
        .client()
        .execute(&UpdateRefundProgress {
            complaint_id: id.clone(),
            decision: RefundDecision::Approve {
                launch_refund_day: 0,
            },
            remark: Some(format!(
                "refund {} ({} fen)",
                refund.out_refund_no, refund.amount
            )),
        })
        .await
        .map_err(|e| provider_error(&e))?;
    let what = json!({"refund": {"out_refund_no": refund.out_refund_no,
                      "amount": refund.amount, "status": refund.status}, "reason": why});
    done(&state, &seller, "complaint_refund", &before, what).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

async fn refuse(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
    AppJson(req): AppJson<Refusal>,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let why = super::orders::reason(&req.reason)?;
    let before = own_complaint(&state, &seller, &id).await?;
    desk.desk()
        .client()
        .execute(&UpdateRefundProgress {
            complaint_id: id.clone(),
            decision: RefundDecision::Reject {
                reason: why.clone(),
            },
            remark: None,
        })
        .await
        .map_err(|e| provider_error(&e))?;
    done(
        &state,
        &seller,
        "complaint_refund_refused",
        &before,
        json!({ "reason": why }),
    )
    .await
}

async fn complete(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let desk = complaints(&state)?;
    let before = own_complaint(&state, &seller, &id).await?;
    let client = desk.desk().client();
    client
        .execute(&CompleteComplaint::new(&id, client.mch_id()))
        .await
        .map_err(|e| provider_error(&e))?;
    done(&state, &seller, "complaint_complete", &before, json!({})).await
}
