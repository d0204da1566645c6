//! `wechat-sandbox` used the way its crate docs tell a third-party service to: a sandbox started
//! in the test with the service's own merchant, the service's client pointed at `base_url()`,
//! the buyer played with `pay`, and the service's notify route receiving WeChat's signed
//! notification — nothing from this workspace's servers involved.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use wechat_pay::{ApiKey, Fen, NotifyReply, Trade, UnifiedOrder};
use wechat_sandbox::Sandbox;

use crate::support::eventually;

const APP_ID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";
const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// The "service": a notify route that verifies with its own client and records what was paid.
async fn service(client: wechat_pay::Client) -> (String, Arc<Mutex<Vec<(String, Fen)>>>) {
    type Paid = Arc<Mutex<Vec<(String, Fen)>>>;
    async fn notify(
        State((client, paid)): State<(wechat_pay::Client, Paid)>,
        body: Bytes,
    ) -> String {
        match client.verify_payment_notification(&body).await {
            Ok(n) => {
                paid.lock().unwrap().push((n.out_trade_no, n.total_fee));
                NotifyReply::success().to_xml()
            }
            Err(e) => NotifyReply::fail(e.to_string()).to_xml(),
        }
    }
    let paid: Paid = Arc::default();
    let app = Router::new()
        .route("/notify/wechat", post(notify))
        .with_state((client, paid.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify/wechat", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, paid)
}

#[tokio::test]
async fn a_service_takes_a_payment_against_the_sandbox_as_the_docs_say() {
    // As in the crate docs: the service's merchant, WeChat's retries 1000× faster.
    let sandbox = Sandbox::builder()
        .merchant(APP_ID, MCH_ID, ApiKey::new(KEY))
        .time_scale(1000.0)
        .start()
        .await
        .unwrap();
    // Only the base URL changes.
    let client = wechat_pay::Client::builder(APP_ID, MCH_ID, ApiKey::new(KEY))
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    let (notify_url, paid) = service(client.clone()).await;
    client
        .execute(&UnifiedOrder::new(
            Trade::native("sku-1"),
            "Cola",
            "ORDER-1",
            Fen::new(350),
            "127.0.0.1",
            notify_url,
        ))
        .await
        .unwrap();

    let done = sandbox.pay("ORDER-1").await.unwrap();
    assert_eq!(done.out_trade_no, "ORDER-1");
    eventually(10, "the service's notification", async || {
        !paid.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        paid.lock().unwrap().as_slice(),
        [("ORDER-1".to_owned(), Fen::new(350))]
    );
    let sent = sandbox.notifications();
    assert_eq!(sent[0].reference, "ORDER-1");
    assert!(sent[0].delivered, "{sent:?}");

    // The typed control methods say what is wrong, as the HTTP control API does.
    let missing = sandbox.pay("NO-SUCH-ORDER").await.unwrap_err();
    assert_eq!((missing.status(), missing.code()), (404, "ORDER_NOT_FOUND"));
    sandbox.shutdown().await;
}
