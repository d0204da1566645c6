//! The seller's live feed: `GET /ws/seller` (WebSocket: a snapshot of the recent orders on the
//! seller's machines, then each change to one of them as it happens, whichever instance made
//! it) and `GET /api/seller/orders`. A seller session is required; another seller's machines
//! are never shown.
//!
//! The feed is bounded: at most `WS_MAX_CONNECTIONS` dashboards at once (503 above), a message
//! from a dashboard larger than `WS_MAX_MESSAGE_BYTES` closes that socket, and a dashboard that
//! answers nothing (not even the pings sent every `WS_PING_SECS`) for `WS_IDLE_TIMEOUT_SECS` is
//! dropped.
//!
//! A dashboard lives no longer than its session: every `WS_SESSION_CHECK_SECS` it is checked
//! again against the database (the seller enabled, the password unchanged, no logout since),
//! so disabling a seller, changing the password or logging out closes that seller's feeds on
//! every instance within seconds — with a close frame saying why.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::AppError;
use crate::vending::VendingState;
use crate::vending::auth::{SellerSession, seller_session_stands};
use crate::vending::config::FeedLimits;
use crate::vending::orders::OrderService;

/// The feed routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/ws/seller", get(feed))
        .route("/api/seller/orders", get(recent))
}

async fn recent_orders(state: &VendingState, seller: &str) -> Result<Vec<Value>, AppError> {
    Ok(state
        .orders
        .db()
        .recent_orders_of_seller(seller, 50)
        .await
        .map_err(AppError::internal)?
        .iter()
        .map(OrderService::view)
        .collect())
}

async fn recent(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
) -> Result<Json<Value>, AppError> {
    Ok(Json(Value::Array(
        recent_orders(&state, &seller.login).await?,
    )))
}

async fn feed(
    State(state): State<Arc<VendingState>>,
    seller: SellerSession,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(slot) = state.feed_connections.clone().try_acquire_owned() else {
        return AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "TOO_MANY_CONNECTIONS",
            "too many dashboards are connected; try again later",
        )
        .into_response();
    };
    let limits = state.settings.feed.clone();
    ws.max_message_size(limits.ws_max_message_bytes)
        .max_frame_size(limits.ws_max_message_bytes)
        .on_upgrade(move |socket| async move {
            stream(state, socket, &limits, &seller).await;
            drop(slot);
        })
}

/// Whether the dashboard's session still stands (a database error counts as no: revocation
/// must not wait for the database to answer).
async fn still_stands(state: &VendingState, session: &SellerSession) -> bool {
    match state.orders.db().seller(&session.login).await {
        Ok(Some(seller)) => seller_session_stands(&seller, &session.claims),
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "seller session not checked; the dashboard is closed");
            false
        }
    }
}

async fn stream(
    state: Arc<VendingState>,
    mut socket: WebSocket,
    limits: &FeedLimits,
    session: &SellerSession,
) {
    let seller = session.login.as_str();
    // Subscribe first so nothing between the snapshot and the stream is missed.
    let mut changes = state.orders.subscribe();
    let snapshot = match recent_orders(&state, seller).await {
        Ok(orders) => json!({"type": "snapshot", "orders": orders}).to_string(),
        Err(_) => return,
    };
    if socket.send(Message::Text(snapshot.into())).await.is_err() {
        return;
    }
    let idle = Duration::from_secs(limits.ws_idle_timeout_secs.max(1));
    let mut ping = tokio::time::interval(Duration::from_secs(limits.ws_ping_secs.max(1)));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut check = tokio::time::interval(Duration::from_secs(limits.ws_session_check_secs.max(1)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            _ = check.tick() => {
                if !still_stands(&state, session).await {
                    let close = CloseFrame {
                        code: close_code::POLICY,
                        reason: "session revoked".into(),
                    };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    tracing::info!(seller, "seller session revoked; dashboard closed");
                    return;
                }
            }
            change = changes.recv() => match change {
                Ok(event) if event.seller.as_deref() == Some(seller) => {
                    if socket.send(Message::Text(event.message.into())).await.is_err() {
                        return;
                    }
                }
                // Another seller's order.
                Ok(_) => {}
                // Too slow to keep up: tell the page to reload its snapshot.
                Err(RecvError::Lagged(_)) => {
                    if socket.send(Message::Text(json!({"type": "resync"}).to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() >= idle {
                    tracing::debug!("seller dashboard silent; dropped");
                    return;
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
            // A close, an error (an oversized message among them) or the end: this socket is
            // done; the server and the other dashboards are not affected.
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
        }
    }
}
