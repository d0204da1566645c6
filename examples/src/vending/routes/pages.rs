//! The buyer page `/` and the SKU images under `/static/` (the seller's pages are behind the
//! seller login: `seller::session`).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::html::escape;
use crate::vending::VendingState;

/// The page routes.
pub fn routes() -> Router<Arc<VendingState>> {
    Router::new()
        .route("/", get(buyer))
        .route("/static/{name}", get(image))
}

async fn buyer() -> Html<&'static str> {
    Html(include_str!("../pages/buyer.html"))
}

/// The demo SKU images: a coloured can with the item's initial.
async fn image(Path(name): Path<String>) -> Response {
    let (color, letter) = match name.as_str() {
        "cola.svg" => ("#c0392b", "C"),
        "water.svg" => ("#2980b9", "W"),
        "chips.svg" => ("#f1c40f", "P"),
        "juice.svg" => ("#e67e22", "J"),
        "coffee.svg" => ("#6f4e37", "K"),
        "chocolate.svg" => ("#4b2e2a", "B"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect x="14" y="4" width="36" height="56" rx="8" fill="{color}"/><text x="32" y="40" font-size="22" text-anchor="middle" fill="#fff" font-family="sans-serif">{}</text></svg>"##,
        escape(letter)
    );
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        svg,
    )
        .into_response()
}
