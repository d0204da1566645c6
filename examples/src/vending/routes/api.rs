//! The buyer API: machines nearby, a machine's SKUs, the channels this server takes money
//! through, and the buyer's own orders (a session is required: see `session`; another buyer's
//! order is 404, as if it did not exist); in demo mode also the test-money "pay now" button.

use std::collections::HashMap;
use std::sync::Arc;

use aggregate_pay::channels::PaymentChannel;
use aggregate_pay::{Fen, PayMethod};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppJson};
use crate::vending::VendingState;
use crate::vending::auth::Buyer;
use crate::vending::auth::limits::{ClientAddr, within_rate};
use crate::vending::db::{Machine, Order, OrderStatus, SlotSku};
use crate::vending::orders::{NewOrder, OrderBuyer, OrderError, OrderService};

/// The API routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/api/machines/nearby", get(nearby))
        .route("/api/machines/{inner_code}/skus", get(skus))
        .route("/api/machines/{inner_code}/skus/{sku_id}", get(sku))
        .route("/api/orders", post(create_order).get(my_orders))
        .route("/api/orders/{order_no}", get(get_order))
        .route("/api/orders/{order_no}/cancel", post(cancel_order))
        .route("/api/channels", get(channels))
}

/// Demo mode only: paying with test money.
pub fn test_money_routes() -> Router<Arc<VendingState>> {
    Router::new().route("/api/orders/{order_no}/sandbox-pay", post(sandbox_pay))
}

/// `GET /api/channels`: the mode and the channels the pages may offer (only those configured).
async fn channels(State(state): State<Arc<VendingState>>) -> Json<Value> {
    let channels: Vec<Value> = state
        .orders
        .payments()
        .channels()
        .iter()
        .map(|c| {
            let methods = &c.capabilities().methods;
            json!({
                "id": c.id(),
                "label": c.label(),
                "methods": methods.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                // Whether a web page can pay with it (a code to scan, or test money).
                "scan_to_pay": methods.iter().any(|m| m.is_scan_to_pay()),
            })
        })
        .collect();
    Json(json!({
        "mode": state.settings.mode.as_str(),
        "channels": channels,
        // Whether a browser can log in with the Official Account (`/api/oauth/start`).
        "web_login": state.buyers.official.is_some(),
    }))
}

/// Metres between two points (haversine on a 6,371 km sphere).
pub fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lng2 - lng1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * a.sqrt().atan2((1.0 - a).sqrt())
}

#[derive(Debug, Deserialize)]
struct Near {
    lat: f64,
    lng: f64,
    radius_m: Option<f64>,
}

async fn nearby(
    State(state): State<Arc<VendingState>>,
    Query(q): Query<Near>,
) -> Result<Json<Value>, AppError> {
    if !(-90.0..=90.0).contains(&q.lat) || !(-180.0..=180.0).contains(&q.lng) {
        return Err(AppError::bad_request(
            "INVALID_REQUEST",
            "lat must be -90..90 and lng -180..180",
        ));
    }
    let radius = q.radius_m.unwrap_or(5_000.0).clamp(1.0, 100_000.0);
    let mut found: Vec<(f64, Machine)> = state
        .orders
        .db()
        .machines_for_sale()
        .await
        .map_err(AppError::internal)?
        .into_iter()
        .map(|m| (distance_m(q.lat, q.lng, m.lat, m.lng), m))
        .filter(|(d, _)| *d <= radius)
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(Json(Value::Array(
        found
            .into_iter()
            .map(|(d, m)| {
                json!({
                    "inner_code": m.inner_code, "name": m.name, "address": m.address,
                    "lat": m.lat, "lng": m.lng, "status": m.status, "distance_m": d.round(),
                })
            })
            .collect(),
    )))
}

/// One entry per SKU: capacity summed over its slots, the lowest slot price; most stock first.
pub fn sku_list(slots: &[SlotSku]) -> Vec<Value> {
    let mut by_sku: HashMap<i64, (i64, Fen, &SlotSku)> = HashMap::new();
    for s in slots {
        let e = by_sku.entry(s.sku_id).or_insert((0, s.price, s));
        e.0 += s.capacity;
        e.1 = e.1.min(s.price);
    }
    let mut list: Vec<_> = by_sku
        .into_values()
        .filter(|(capacity, _, _)| *capacity > 0)
        .collect();
    list.sort_by(|a, b| b.0.cmp(&a.0).then(a.2.sku_id.cmp(&b.2.sku_id)));
    list.into_iter()
        .map(|(capacity, price, s)| {
            json!({
                "sku_id": s.sku_id, "name": s.name, "image": s.image, "unit": s.unit,
                "capacity": capacity, "price": price,
            })
        })
        .collect()
}

async fn machine(state: &VendingState, inner_code: &str) -> Result<Machine, AppError> {
    state
        .orders
        .db()
        .machine(inner_code)
        .await
        .map_err(AppError::internal)?
        // A machine that belongs to nobody is not for sale.
        .filter(|m| m.owner.is_some())
        .ok_or_else(|| AppError::not_found("MACHINE_NOT_FOUND", "no such machine"))
}

async fn skus(
    State(state): State<Arc<VendingState>>,
    Path(inner_code): Path<String>,
) -> Result<Json<Value>, AppError> {
    machine(&state, &inner_code).await?;
    let slots = state
        .orders
        .db()
        .stocked_slots(&inner_code)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(Value::Array(sku_list(&slots))))
}

async fn sku(
    State(state): State<Arc<VendingState>>,
    Path((inner_code, sku_id)): Path<(String, i64)>,
) -> Result<Json<Value>, AppError> {
    let m = machine(&state, &inner_code).await?;
    let slots = state
        .orders
        .db()
        .stocked_slots(&inner_code)
        .await
        .map_err(AppError::internal)?;
    let mut found = sku_list(&slots)
        .into_iter()
        .find(|s| s["sku_id"] == sku_id)
        .ok_or_else(|| {
            AppError::not_found(
                "SKU_NOT_AVAILABLE",
                "this item is not available in this machine",
            )
        })?;
    found["inner_code"] = m.inner_code.into();
    found["address"] = m.address.into();
    Ok(Json(found))
}

/// An order to create. Who buys comes from the session: an `open_id` here is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateOrder {
    inner_code: String,
    sku_id: i64,
    channel: Option<String>,
    method: Option<String>,
}

async fn create_order(
    State(state): State<Arc<VendingState>>,
    buyer: Buyer,
    addr: ClientAddr,
    AppJson(req): AppJson<CreateOrder>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    within_rate(
        &state,
        &[format!("order:buyer:{}", buyer.open_id), addr.key("order")],
    )
    .await?;
    let order = state
        .orders
        .create(NewOrder {
            inner_code: req.inner_code,
            sku_id: req.sku_id,
            channel: req.channel,
            method: req.method,
            buyer: OrderBuyer {
                open_id: buyer.open_id,
                app: buyer.app,
            },
        })
        .await?;
    Ok((StatusCode::CREATED, Json(OrderService::view(&order))))
}

/// The buyer's own order; anyone else's is "not found".
async fn own_order(state: &VendingState, buyer: &Buyer, order_no: &str) -> Result<Order, AppError> {
    let order = state.orders.get(order_no).await?;
    if order.open_id.as_deref() != Some(buyer.open_id.as_str()) {
        return Err(OrderError::OrderNotFound.into());
    }
    Ok(order)
}

async fn get_order(
    State(state): State<Arc<VendingState>>,
    buyer: Buyer,
    Path(order_no): Path<String>,
) -> Result<Json<Value>, AppError> {
    let order = own_order(&state, &buyer, &order_no).await?;
    if order.status == OrderStatus::Created {
        // The buyer's page waits on it: the short loop asks the channel when it is due.
        state.short_poll.nudge_in_background(&order.order_no);
    }
    Ok(Json(OrderService::view(&order)))
}

/// A page of the buyer's orders. Whose orders is the session's to say: an `open_id` here is
/// refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    page: Option<i64>,
    size: Option<i64>,
}

async fn my_orders(
    State(state): State<Arc<VendingState>>,
    buyer: Buyer,
    Query(q): Query<Page>,
) -> Result<Json<Value>, AppError> {
    let size = q.size.unwrap_or(20).clamp(1, 50);
    let page = q.page.unwrap_or(1).clamp(1, 10_000);
    let orders = state
        .orders
        .db()
        .orders_of(&buyer.open_id, size, (page - 1) * size)
        .await
        .map_err(AppError::internal)?;
    Ok(Json(json!({
        "page": page,
        "size": size,
        "orders": orders.iter().map(OrderService::view).collect::<Vec<_>>(),
    })))
}

async fn cancel_order(
    State(state): State<Arc<VendingState>>,
    buyer: Buyer,
    Path(order_no): Path<String>,
) -> Result<Json<Value>, AppError> {
    let order = own_order(&state, &buyer, &order_no).await?;
    Ok(Json(OrderService::view(
        &state
            .orders
            .cancel(&order.order_no, "cancelled by the buyer")
            .await?,
    )))
}

/// The sandbox's "pay" button: the in-process sandbox channel pays, and its notification goes
/// through the same notify template as WeChat's and Alipay's.
async fn sandbox_pay(
    State(state): State<Arc<VendingState>>,
    buyer: Buyer,
    Path(order_no): Path<String>,
) -> Result<Json<Value>, AppError> {
    let sandbox = state
        .sandbox
        .as_ref()
        .ok_or_else(|| AppError::not_found("NOT_FOUND", "no test money here"))?;
    let order = own_order(&state, &buyer, &order_no).await?;
    if order.method != PayMethod::Sandbox {
        return Err(AppError::conflict(
            "METHOD_INVALID",
            "this order is not paid through the sandbox",
        ));
    }
    let raw = sandbox
        .pay(&order.order_no)
        .map_err(aggregate_pay::Error::Channel)?;
    let handled = state.processor.handle(sandbox.id(), &raw).await;
    state.metrics.notification(sandbox.id(), &handled.outcome);
    Ok(Json(OrderService::view(
        &state.orders.get(&order_no).await?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(slot_no: &str, sku_id: i64, price: u64, capacity: i64) -> SlotSku {
        SlotSku {
            slot_no: slot_no.into(),
            sku_id,
            name: format!("sku {sku_id}"),
            image: String::new(),
            unit: String::new(),
            price: Fen::new(price),
            capacity,
        }
    }

    #[test]
    fn skus_sum_capacity_take_the_lowest_price_and_sort_by_stock() {
        let list = sku_list(&[
            slot("A1", 1, 350, 8),
            slot("A2", 1, 300, 2),
            slot("A3", 2, 200, 12),
            slot("B1", 3, 500, 0),
        ]);
        assert_eq!(list.len(), 2, "sold-out SKUs are left out");
        assert_eq!(
            (list[0]["sku_id"].as_i64(), list[0]["capacity"].as_i64()),
            (Some(2), Some(12))
        );
        assert_eq!(
            (
                list[1]["sku_id"].as_i64(),
                list[1]["capacity"].as_i64(),
                list[1]["price"].as_i64()
            ),
            (Some(1), Some(10), Some(300))
        );
    }

    #[test]
    fn distances_are_in_metres() {
        // One degree of latitude is about 111.2 km.
        let d = distance_m(39.0, 116.0, 40.0, 116.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
        assert!(distance_m(39.9, 116.4, 39.9, 116.4) < 0.001);
    }
}
