//! The seller's side: the login page and session (`session`), the live feed (`feed`), actions on
//! the seller's own orders (`orders`) and machines (`machines`), the record of what the seller
//! did (`audit`), logging in by scanning a QR code with WeChat (`wechat`), the payers'
//! complaints about the seller's orders (`complaints`), and the
//! operators' Bills page (`bills`: the reconciliation against the providers' daily bills).
//! Every route here but the login needs a seller session (401 without; `/seller` itself
//! redirects to the login page); another seller's order, machine or complaint is 404.

mod audit;
mod bills;
mod complaints;
mod feed;
mod machines;
mod orders;
mod session;
mod wechat;

use std::sync::Arc;

use axum::Router;
use serde_json::Value;

use crate::error::AppError;
use crate::vending::VendingState;
use crate::vending::auth::SellerSession;
use crate::vending::db::{AuditEntry, Machine, Order};

/// The seller routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .merge(session::routes())
        .merge(feed::routes())
        .merge(orders::routes())
        .merge(machines::routes())
        .merge(audit::routes())
        .merge(bills::routes())
        .merge(complaints::routes())
        .merge(wechat::routes())
}

pub use complaints::{MAX_IMAGE_BYTES, upload_routes};

/// The seller's machine; anyone else's is "not found".
async fn own_machine(
    state: &VendingState,
    seller: &SellerSession,
    inner_code: &str,
) -> Result<Machine, AppError> {
    state
        .orders
        .db()
        .machine(inner_code)
        .await
        .map_err(AppError::internal)?
        .filter(|m| m.owner.as_deref() == Some(seller.login.as_str()))
        .ok_or_else(|| AppError::not_found("MACHINE_NOT_FOUND", "no such machine"))
}

/// An order sold for the seller (recorded when it was made: the machine's owner then, whoever
/// owns the machine now); anyone else's is "not found".
async fn own_order(
    state: &VendingState,
    seller: &SellerSession,
    order_no: &str,
) -> Result<Order, AppError> {
    match state.orders.get(order_no).await {
        Ok(order) if order.seller.as_deref() == Some(seller.login.as_str()) => Ok(order),
        Ok(_) | Err(crate::vending::orders::OrderError::OrderNotFound) => {
            Err(AppError::not_found("ORDER_NOT_FOUND", "no such order"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the session's seller is an operator (asked of the database each time: a role taken
/// away ends at once).
async fn is_operator(state: &VendingState, seller: &SellerSession) -> Result<bool, AppError> {
    let found = state
        .orders
        .db()
        .seller(&seller.login)
        .await
        .map_err(AppError::internal)?;
    Ok(found.is_some_and(|s| s.operator && s.enabled))
}

/// Records what the seller did.
async fn record(
    state: &VendingState,
    seller: &SellerSession,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), AppError> {
    record_as(state, &seller.login, action, target, before, after).await
}

/// Records what seller `login` did (before a session exists: a login).
async fn record_as(
    state: &VendingState,
    login: &str,
    action: &str,
    target: &str,
    before: Option<Value>,
    after: Option<Value>,
) -> Result<(), AppError> {
    let at = crate::clock::unix_now();
    // Sortable by time to the nanosecond, unique by the random tail.
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let entry = AuditEntry {
        id: format!("{nanos:020}{}", crate::random::token(6)?),
        seller: login.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        before,
        after,
        at,
    };
    state
        .orders
        .db()
        .audit(&entry)
        .await
        .map_err(AppError::internal)
}
