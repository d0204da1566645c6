//! The merchant quick start (docs/pay-platform.md): register with a running `pay-platform`, take a payment
//! through the open API with `merchant-client`, pay it in the sandbox, and receive and verify the
//! signed callback.
//!
//! ```text
//! ADMIN_TOKEN=dev-admin-token-change-me-0123456789 cargo run -p examples --bin pay-platform          # terminal 1
//! ADMIN_TOKEN=dev-admin-token-change-me-0123456789 cargo run -p examples --example merchant_quickstart  # terminal 2
//! ```
//!
//! `PLATFORM_URL` (default `http://127.0.0.1:8090`) points at another platform.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use merchant_client::{
    Callbacks, Client, CreatePayment, CreateRefund, Error, Fen, MemoryHandledEvents, Secret,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("merchant_quickstart: {msg}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let platform = std::env::var("PLATFORM_URL").unwrap_or_else(|_| "http://127.0.0.1:8090".into());
    let admin_token = std::env::var("ADMIN_TOKEN")
        .unwrap_or_else(|_| fail("set ADMIN_TOKEN to the platform's admin token"));
    let http = reqwest::Client::new();

    // 1. Register, naming your callback URL (the platform operator does this once; the secret
    //    and salt are shown once).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| fail(e));
    let notify_url = format!(
        "http://{}/pay-callback",
        listener.local_addr().unwrap_or_else(|e| fail(e))
    );
    let registered: Value = http
        .post(format!("{platform}/admin/merchants"))
        .bearer_auth(&admin_token)
        .header("content-type", "application/json")
        .body(json!({"name": "Quick Start Shop", "credit_code": credit_code(), "notify_url": notify_url}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| fail(format!("is pay-platform running at {platform}? {e}")))
        .text()
        .await
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let (Some(app_id), Some(secret), Some(salt)) = (
        registered["app_id"].as_str(),
        registered["secret"].as_str(),
        registered["salt"].as_str(),
    ) else {
        fail(format!("registration failed: {registered}"))
    };
    println!("registered {app_id}");

    // 2. Your callback endpoint: verify the signature, handle each event once (recorded as
    //    handled only when your handler succeeded), answer 2xx — or 5xx to get it again.
    async fn receive(
        State((verifier, events)): State<(Arc<Callbacks>, mpsc::Sender<Value>)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let signature = headers
            .get("x-pay-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let handled = verifier
            .handle(signature, &body, |event| async move {
                events.send(event).await.map_err(|e| e.to_string())
            })
            .await;
        match handled {
            Ok(_) => StatusCode::OK, // handled now, or a duplicate of a handled event
            Err(e @ (Error::Signature(_) | Error::Decode(_))) => {
                eprintln!("refused a callback: {e}");
                StatusCode::UNAUTHORIZED
            }
            Err(_) => StatusCode::SERVICE_UNAVAILABLE, // the platform sends it again
        }
    }
    let verifier = Arc::new(Callbacks::new(
        Secret::new(secret),
        Arc::new(MemoryHandledEvents::new()),
    ));
    let (events_tx, mut events_rx) = mpsc::channel::<Value>(16);
    let app = axum::Router::new()
        .route("/pay-callback", post(receive))
        .with_state((verifier, events_tx));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // 3. The open API, signed by merchant-client.
    let client = Client::builder(app_id, Secret::new(secret), Secret::new(salt))
        .base_url(&platform)
        .build()
        .unwrap_or_else(|e| fail(e));
    let payment = client
        .create_payment(
            &CreatePayment::new("qs-order-1", Fen::new(1250), "Quick start cola").method("sandbox"),
        )
        .await
        .unwrap_or_else(|e| fail(e));
    println!(
        "payment {} {} fen: {} (cashier: {})",
        payment.out_trade_no, payment.amount, payment.status, payment.cashier_url
    );

    // 4. The buyer pays (the sandbox cashier's button).
    http.post(format!(
        "{platform}/cashier/{}/sandbox-pay",
        payment.payment_token
    ))
    .send()
    .await
    .unwrap_or_else(|e| fail(e));
    let paid = client
        .get_payment("qs-order-1")
        .await
        .unwrap_or_else(|e| fail(e));
    println!("payment status: {}", paid.status);

    // 5. The callback arrives, verified.
    let event = tokio::time::timeout(Duration::from_secs(30), events_rx.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| fail("no callback within 30 s"));
    println!(
        "callback {} for {}: verified",
        event["type"], event["data"]["out_trade_no"]
    );
    if event["type"] != "payment.succeeded" || event["data"]["amount"] != 1250 {
        fail(format!("unexpected callback: {event}"));
    }

    // 6. A partial refund.
    let refund = client
        .create_refund(&CreateRefund::new(
            "qs-order-1",
            "qs-refund-1",
            Fen::new(250),
        ))
        .await
        .unwrap_or_else(|e| fail(e));
    println!(
        "refund {} of {} fen: {}",
        refund.out_refund_no, refund.amount, refund.status
    );
    println!("quick start OK");
}

/// A fresh unified social credit code (the platform refuses a code registered twice).
fn credit_code() -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut bytes = [0u8; 17];
    if let Err(e) = examples::random::fill(&mut bytes) {
        fail(e);
    }
    let first: String = bytes
        .iter()
        .map(|b| char::from(CHARS[usize::from(*b) % CHARS.len()]))
        .collect();
    let check = examples::platform::routes::admin::credit_code_check_char(&first).unwrap_or('0');
    format!("{first}{check}")
}
