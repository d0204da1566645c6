//! The cashier page waiting on a payment whose notification is lost: found by the short loop,
//! one query at a time however many pages watch it.

use std::time::{Duration, Instant};

use merchant_client::{CreatePayment, Fen};
use serde_json::Value;

use super::{MerchantEndpoint, Options, Platform};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_notification_reaches_the_waiting_cashier_within_ten_seconds() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);
    let created = client
        .create_payment(&CreatePayment::new("wait-1", Fen::new(500), "Cola").method("sandbox"))
        .await
        .unwrap();
    let sandbox = p.state.sandbox.clone().unwrap();
    let platform_no = p.platform_no(&creds.app_id, "wait-1").await;
    let paid_at = Instant::now();
    let _lost = sandbox.pay(&platform_no).unwrap();
    let before = sandbox.queries();
    let status_url = format!("{}/cashier/{}/status", p.url, created.payment_token);

    let mut seen = None;
    while paid_at.elapsed() < Duration::from_secs(10) {
        let views = futures_util::future::join_all((0..8).map(|_| async {
            let r = p.http.get(&status_url).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }))
        .await;
        if views.iter().any(|v| v["status"] == "PAID") {
            seen = Some(paid_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after = seen.expect("the cashier never saw the payment within 10 s");
    let queries = sandbox.queries() - before;
    assert!(
        queries <= after.as_secs() / 3 + 1,
        "{queries} queries in {after:?}"
    );
    assert_eq!(client.get_payment("wait-1").await.unwrap().status, "PAID");
    p.stop().await;
}
