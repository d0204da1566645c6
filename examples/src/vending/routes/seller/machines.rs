//! A seller's machines: list them with their slots (`GET /api/seller/machines`), put one out of
//! service and back (`POST /api/seller/machines/{code}/status {status}`), restock a slot or
//! change its SKU and price (`POST /api/seller/machines/{code}/slots/{slot} {capacity?, sku_id?,
//! price?}`), and the SKU catalogue to choose from (`GET /api/seller/skus`). Each change is
//! recorded. An order already made keeps its price and slot.

use std::sync::Arc;

use aggregate_pay::Fen;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{own_machine, record};
use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;
use crate::vending::db::MachineStatus;

/// The machine routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/seller/machines", get(list))
        .route("/api/seller/machines/{inner_code}/status", post(set_status))
        .route(
            "/api/seller/machines/{inner_code}/slots/{slot_no}",
            post(set_slot),
        )
        .route("/api/seller/skus", get(skus))
}

/// The most items a slot holds; the highest price (fen) a seller may set.
const MAX_CAPACITY: i64 = 999;
const MAX_PRICE: u64 = 1_000_000;

async fn list(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    let db = state.orders.db();
    let mut machines = Vec::new();
    for m in db
        .machines_of(&seller.login)
        .await
        .map_err(AppError::internal)?
    {
        let slots = db.slots(&m.inner_code).await.map_err(AppError::internal)?;
        machines.push(json!({
            "inner_code": m.inner_code, "name": m.name, "address": m.address,
            "status": m.status, "signed": m.signed, "slots": slots,
        }));
    }
    Ok(Json(json!({ "machines": machines })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    status: String,
}

async fn set_status(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path(inner_code): Path<String>,
    AppJson(req): AppJson<StatusRequest>,
) -> Result<Json<Value>, AppError> {
    let status = MachineStatus::parse(&req.status)
        .ok_or_else(|| AppError::unprocessable("STATUS_INVALID", "status is ONLINE or OFFLINE"))?;
    let machine = own_machine(&state, &seller, &inner_code).await?;
    state
        .orders
        .db()
        .set_machine_status(&inner_code, status)
        .await
        .map_err(AppError::internal)?;
    record(
        &state,
        &seller,
        "machine_status",
        &inner_code,
        Some(json!({"status": machine.status})),
        Some(json!({"status": status})),
    )
    .await?;
    Ok(Json(json!({"inner_code": inner_code, "status": status})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotRequest {
    capacity: Option<i64>,
    sku_id: Option<i64>,
    /// Fen.
    price: Option<u64>,
}

async fn set_slot(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    Path((inner_code, slot_no)): Path<(String, String)>,
    AppJson(req): AppJson<SlotRequest>,
) -> Result<Json<Value>, AppError> {
    own_machine(&state, &seller, &inner_code).await?;
    let db = state.orders.db();
    let before = db
        .slot(&inner_code, &slot_no)
        .await
        .map_err(AppError::internal)?;
    let invalid = |m: &str| AppError::unprocessable("SLOT_INVALID", m.to_owned());
    if before.is_none()
        && (!(1..=16).contains(&slot_no.len())
            || !slot_no.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(invalid("a slot number is 1 to 16 letters or digits"));
    }
    let (capacity, sku_id, price) = match (&before, req.capacity, req.sku_id, req.price) {
        (Some(b), c, s, p) => (
            c.unwrap_or(b.capacity),
            s.unwrap_or(b.sku_id),
            p.map(Fen::new).unwrap_or(b.price),
        ),
        (None, Some(c), Some(s), Some(p)) => (c, s, Fen::new(p)),
        (None, ..) => return Err(invalid("a new slot needs capacity, sku_id and price")),
    };
    if !(0..=MAX_CAPACITY).contains(&capacity) {
        return Err(invalid("capacity is 0 to 999"));
    }
    if price == Fen::ZERO || price.as_u64() > MAX_PRICE {
        return Err(invalid("price is 1 to 1000000 fen"));
    }
    if !db.sku_exists(sku_id).await.map_err(AppError::internal)? {
        return Err(invalid("no such SKU"));
    }
    db.set_slot(&inner_code, &slot_no, sku_id, price, capacity)
        .await
        .map_err(AppError::internal)?;
    let after = db
        .slot(&inner_code, &slot_no)
        .await
        .map_err(AppError::internal)?;
    record(
        &state,
        &seller,
        "slot",
        &format!("{inner_code}/{slot_no}"),
        before.as_ref().map(|b| json!(b)),
        after.as_ref().map(|a| json!(a)),
    )
    .await?;
    Ok(Json(json!(after)))
}

async fn skus(
    State(state): State<Arc<VendingState>>,
    _seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    let skus: Vec<Value> = state
        .orders
        .db()
        .skus()
        .await
        .map_err(AppError::internal)?
        .into_iter()
        .map(|(id, name, unit)| json!({"sku_id": id, "name": name, "unit": unit}))
        .collect();
    Ok(Json(json!({ "skus": skus })))
}
