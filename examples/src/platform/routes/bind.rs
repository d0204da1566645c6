//! The binding page `/bind/{scene}`: the merchant's binding QR code; the page polls every 2 s and
//! moves on to `/bind/{scene}/done` by itself once the scan has bound the merchant's WeChat.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::html::{escape, qr_svg};
use crate::platform::PlatformState;
use crate::platform::db::Merchant;

/// The binding routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/bind/{scene}", get(page))
        .route("/bind/{scene}/status", get(status))
        .route("/bind/{scene}/done", get(done))
}

async fn merchant(state: &PlatformState, scene: &str) -> Result<Merchant, AppError> {
    if !scene.starts_with("bind_") {
        return Err(AppError::not_found(
            "BINDING_NOT_FOUND",
            "no such binding code",
        ));
    }
    state
        .db
        .merchant_by_scene(scene)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("BINDING_NOT_FOUND", "no such binding code"))
}

async fn status(
    State(state): State<Arc<PlatformState>>,
    Path(scene): Path<String>,
) -> Result<Json<Value>, AppError> {
    let m = merchant(&state, &scene).await?;
    Ok(Json(
        json!({"bound": m.open_id.is_some(), "merchant": m.name}),
    ))
}

async fn page(
    State(state): State<Arc<PlatformState>>,
    Path(scene): Path<String>,
) -> Result<Html<String>, AppError> {
    let m = merchant(&state, &scene).await?;
    let qr = m.bind_qr_url.as_deref().map(qr_svg).unwrap_or_default();
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bind WeChat — {name}</title>
<style>body{{font-family:sans-serif;max-width:26rem;margin:2rem auto;text-align:center}} .qr svg{{width:240px;height:240px}}</style>
</head><body>
<h1>{name}</h1>
<p>Scan with WeChat to receive payment notices on your phone.</p>
<div class="qr">{qr}</div>
<p id="state" data-bound="{bound}">{state_text}</p>
<script>
const scene = "{scene}";
async function poll() {{
  const r = await fetch("/bind/" + scene + "/status");
  if (!r.ok) return;
  const s = await r.json();
  if (s.bound) {{
    clearInterval(timer);
    const el = document.getElementById("state");
    el.dataset.bound = "true"; el.textContent = "Bound ✓";
    location.href = "/bind/" + scene + "/done";
  }}
}}
const timer = setInterval(poll, 2000);
</script>
</body></html>"#,
        name = escape(&m.name),
        qr = qr,
        bound = m.open_id.is_some(),
        state_text = if m.open_id.is_some() {
            "Bound ✓"
        } else {
            "Waiting for the scan…"
        },
        scene = escape(&scene),
    )))
}

async fn done(
    State(state): State<Arc<PlatformState>>,
    Path(scene): Path<String>,
) -> Result<Html<String>, AppError> {
    let m = merchant(&state, &scene).await?;
    let text = if m.open_id.is_some() {
        "Your WeChat is bound: payment notices will arrive there."
    } else {
        "Not bound yet: scan the code first."
    };
    Ok(Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}</title></head>
<body style="font-family:sans-serif;text-align:center;margin-top:3rem"><h1>{name}</h1><p id="done">{text}</p></body></html>"#,
        name = escape(&m.name),
    )))
}
