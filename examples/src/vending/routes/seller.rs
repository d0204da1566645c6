//! The seller's live feed: `GET /ws/seller` (WebSocket: a snapshot of recent orders, then every
//! change as it happens) and `GET /api/seller/orders`.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::AppError;
use crate::vending::VendingState;
use crate::vending::orders::OrderService;

/// The seller routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/ws/seller", get(feed))
        .route("/api/seller/orders", get(recent))
}

async fn recent_orders(state: &VendingState) -> Result<Vec<Value>, AppError> {
    Ok(state
        .orders
        .db()
        .recent_orders(50)
        .await
        .map_err(AppError::internal)?
        .iter()
        .map(OrderService::view)
        .collect())
}

async fn recent(State(state): State<Arc<VendingState>>) -> Result<Json<Value>, AppError> {
    Ok(Json(Value::Array(recent_orders(&state).await?)))
}

async fn feed(State(state): State<Arc<VendingState>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| stream(state, socket))
}

async fn stream(state: Arc<VendingState>, mut socket: WebSocket) {
    // Subscribe first so nothing between the snapshot and the stream is missed.
    let mut changes = state.orders.subscribe();
    let snapshot = match recent_orders(&state).await {
        Ok(orders) => json!({"type": "snapshot", "orders": orders}).to_string(),
        Err(_) => return,
    };
    if socket.send(Message::Text(snapshot.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(text) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                // Too slow to keep up: tell the page to reload its snapshot.
                Err(RecvError::Lagged(_)) => {
                    if socket.send(Message::Text(json!({"type": "resync"}).to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
