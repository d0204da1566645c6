//! The cashier page `/cashier/{token}`: the payment's subject and amount, a choice among the
//! methods this platform is configured for (WeChat Native QR, Alipay QR, and in demo mode only
//! the test-money sandbox), the QR code to scan, and the status polled every 2 s until a result.

use std::sync::Arc;

use aggregate_pay::PayMethod;
use aggregate_pay::channels::PaymentChannel;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{payment_of, payment_view, start_payment};
use crate::error::{AppError, AppJson};
use crate::html::{escape, qr_svg};
use crate::platform::PlatformState;
use crate::platform::db::Order;

/// The cashier routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/cashier/{token}", get(page))
        .route("/cashier/{token}/status", get(status))
        .route("/cashier/{token}/method", post(choose))
}

/// Demo mode only: paying with test money.
pub fn test_money_routes() -> Router<Arc<PlatformState>> {
    Router::new().route("/cashier/{token}/sandbox-pay", post(sandbox_pay))
}

/// The methods this platform offers at the cashier (a page, so the scan-to-pay ones: no JSAPI or
/// app methods), in registration order, with the label of the channel serving each.
fn offered(state: &PlatformState) -> Vec<(PayMethod, String)> {
    let channels = state.payments.channels();
    channels
        .iter()
        .flat_map(|c| c.capabilities().methods.clone())
        .filter(|m| m.is_scan_to_pay())
        .filter_map(|m| {
            // The first channel registered for a method serves it.
            channels.for_method(m).map(|c| (m, c.label().to_owned()))
        })
        .fold(Vec::new(), |mut out, (m, label)| {
            if !out.iter().any(|(seen, _)| *seen == m) {
                out.push((m, label));
            }
            out
        })
}

async fn order(state: &PlatformState, token: &str) -> Result<Order, AppError> {
    state
        .db
        .order_by_token(token)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| AppError::not_found("PAYMENT_NOT_FOUND", "no payment with this token"))
}

/// What the page polls: the merchant's view without the merchant's metadata.
async fn view(state: &PlatformState, order: &Order) -> Result<Value, AppError> {
    let payment = payment_of(state, order).await?;
    let full = payment_view(state, order, payment.as_ref());
    Ok(json!({
        "status": full["status"],
        "amount": full["amount"],
        "subject": full["subject"],
        "method": full["method"],
        "pay": full["pay"],
    }))
}

async fn status(
    State(state): State<Arc<PlatformState>>,
    Path(token): Path<String>,
) -> Result<Json<Value>, AppError> {
    let order = order(&state, &token).await?;
    let view = view(&state, &order).await?;
    if order.payment_id.is_some() && view["status"] == "PENDING" {
        // The buyer's page waits on it: the short loop asks the channel when it is due.
        state.short_poll.nudge_in_background(&order.platform_no);
    }
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
struct Choice {
    method: String,
}

/// The buyer picks a method: the payment is created at its channel.
async fn choose(
    State(state): State<Arc<PlatformState>>,
    Path(token): Path<String>,
    AppJson(choice): AppJson<Choice>,
) -> Result<Json<Value>, AppError> {
    let method = PayMethod::parse(&choice.method)
        .filter(|m| m.is_scan_to_pay())
        .ok_or_else(|| {
            AppError::unprocessable(
                "METHOD_INVALID",
                "choose one of the methods the cashier offers",
            )
        })?;
    crate::providers::channel_for(state.payments.channels(), method)?;
    let order = order(&state, &token).await?;
    let (order, _) = start_payment(&state, &order, method).await?;
    Ok(Json(view(&state, &order).await?))
}

/// The sandbox's "pay" button: the sandbox channel pays and its notification goes through the
/// same notify template as WeChat's and Alipay's.
async fn sandbox_pay(
    State(state): State<Arc<PlatformState>>,
    Path(token): Path<String>,
) -> Result<Json<Value>, AppError> {
    let sandbox = state
        .sandbox
        .as_ref()
        .ok_or_else(|| AppError::not_found("NOT_FOUND", "no test money here"))?;
    let order = order(&state, &token).await?;
    if order.method != Some(PayMethod::Sandbox) {
        return Err(AppError::conflict(
            "METHOD_INVALID",
            "this payment is not a sandbox payment",
        ));
    }
    let raw = sandbox
        .pay(&order.platform_no)
        .map_err(aggregate_pay::Error::Channel)?;
    let handled = state.processor.handle(sandbox.id(), &raw).await;
    tracing::info!(outcome = ?handled.outcome, "sandbox payment");
    Ok(Json(view(&state, &order).await?))
}

async fn page(
    State(state): State<Arc<PlatformState>>,
    Path(token): Path<String>,
) -> Result<Html<String>, AppError> {
    let order = order(&state, &token).await?;
    let current = view(&state, &order).await?;
    let amount = order.amount.to_yuan_string();
    let mut body = String::new();
    match (&order.method, current["pay"].as_object()) {
        (None, _) => {
            body.push_str(r#"<div id="choices"><p>Choose how to pay:</p>"#);
            let merchant = match state.partner {
                Some(_) => state
                    .db
                    .merchant(&order.merchant_id)
                    .await
                    .map_err(AppError::internal)?,
                None => None,
            };
            // Partner mode: only what the merchant is onboarded for (and demo test money).
            let takes = |m: PayMethod| {
                merchant.as_ref().is_none_or(|merchant| {
                    m == PayMethod::Sandbox || super::sub_merchant_for(merchant, m).is_ok()
                })
            };
            for (method, label) in offered(&state).into_iter().filter(|(m, _)| takes(*m)) {
                body.push_str(&format!(
                    r#"<button class="choice" onclick="choose('{}')">{}</button>"#,
                    method.as_str(),
                    escape(&label)
                ));
            }
            body.push_str("</div>");
        }
        (Some(m), Some(pay)) => {
            match pay.get("type").and_then(Value::as_str) {
                Some("qr_code") => {
                    let content = pay
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    body.push_str(&format!(
                        r#"<div class="qr">{}</div><p>Scan with {}</p>"#,
                        qr_svg(content),
                        escape(&scanner(&state, *m))
                    ));
                }
                Some("redirect") => {
                    let url = pay.get("url").and_then(Value::as_str).unwrap_or_default();
                    body.push_str(&format!(
                        r#"<p><a href="{}">Continue to pay</a></p>"#,
                        escape(url)
                    ));
                }
                _ => {}
            }
            if *m == PayMethod::Sandbox {
                body.push_str(
                    r#"<button id="sandbox-pay" onclick="sandboxPay()">Pay (sandbox)</button>"#,
                );
            } else if let Some(emulator) = &state.settings.emulator_url {
                body.push_str(&format!(
                    r#"<p class="hint">No real money here: pay in the <a href="{}/sandbox" target="_blank">emulator</a>.</p>"#,
                    escape(emulator)
                ));
            }
        }
        (Some(_), None) => {}
    }
    Ok(Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {subject}</title>
<style>body{{font-family:sans-serif;max-width:26rem;margin:2rem auto;text-align:center}}
.amount{{font-size:2rem;margin:.5rem}} button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1rem}}
.qr svg{{width:220px;height:220px}} #result{{font-size:1.4rem;margin-top:1rem}}
.demo{{background:#fff3cd;border:1px solid #e0c36b;padding:.4rem;border-radius:6px}}</style></head>
<body>
{banner}<h1>{subject}</h1>
<div class="amount">¥{amount}</div>
<div id="status" data-status="{status}">{status}</div>
<div id="pay">{body}</div>
<div id="result"></div>
<script>
const token = "{token}";
const done = {{PAID: "Paid ✓", REFUNDING: "Paid ✓", PARTIALLY_REFUNDED: "Paid ✓", REFUNDED: "Refunded", CLOSED: "Closed", FAILED: "Failed"}};
function show(s) {{
  const el = document.getElementById("status");
  el.textContent = s.status; el.dataset.status = s.status;
  if (done[s.status]) {{
    document.getElementById("pay").innerHTML = "";
    document.getElementById("result").textContent = done[s.status];
    clearInterval(timer);
  }}
}}
async function poll() {{
  const r = await fetch("/cashier/" + token + "/status");
  if (r.ok) show(await r.json());
}}
async function choose(method) {{
  const r = await fetch("/cashier/" + token + "/method", {{method: "POST", headers: {{"content-type": "application/json"}}, body: JSON.stringify({{method}})}});
  if (r.ok) location.reload(); else document.getElementById("result").textContent = (await r.json()).message;
}}
{test_money_js}const timer = setInterval(poll, 2000);
show({{status: "{status}"}});
</script>
</body></html>"#,
        test_money_js = if state.sandbox.is_some() {
            TEST_MONEY_JS
        } else {
            ""
        },
        banner = if state.settings.mode.is_demo() {
            r#"<p class="demo" id="mode-banner">DEMO MODE: test money only</p>"#
        } else {
            ""
        },
        subject = escape(&order.subject),
        amount = amount,
        status = current["status"].as_str().unwrap_or_default(),
        body = body,
        token = order.token,
    )))
}

/// The test-money button's script (demo mode only).
const TEST_MONEY_JS: &str = r#"async function sandboxPay() {
  const r = await fetch("/cashier/" + token + "/sandbox-pay", {method: "POST"});
  if (r.ok) show(await r.json());
}
"#;

/// What the payer scans with: the label of the channel serving `method`.
fn scanner(state: &PlatformState, method: PayMethod) -> String {
    state
        .payments
        .channels()
        .for_method(method)
        .map_or_else(|| "your phone".to_owned(), |c| c.label().to_owned())
}
