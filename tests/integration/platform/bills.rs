//! The platform's reconciliation against the daily bills: the admin sees the whole account, a
//! merchant only their own orders, in their own numbers. Demo mode reconciles on demand only.

use axum::http::StatusCode;
use merchant_client::{CreatePayment, Fen};
use serde_json::{Value, json};

use super::{MerchantEndpoint, Options, Platform};

fn today() -> String {
    aggregate_pay::bills::china_day(time::OffsetDateTime::now_utc()).to_string()
}

fn sandbox_run(day: &Value) -> Value {
    day["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sandbox")
        .cloned()
        .unwrap_or_else(|| panic!("no sandbox run in {day}"))
}

#[tokio::test]
async fn the_admin_reconciles_and_each_merchant_sees_only_their_own() {
    let p = Platform::start(Options::default()).await;
    assert!(
        p.wired.as_ref().unwrap().daily_bills.is_none(),
        "demo mode: on demand only"
    );
    let endpoint = MerchantEndpoint::start().await;
    let (a, b) = (
        p.register(&endpoint.url).await,
        p.register(&endpoint.url).await,
    );
    let (client_a, client_b) = (p.client(&a), p.client(&b));

    // A's payment is made with test money, its notification lost: PENDING here.
    client_a
        .create_payment(&CreatePayment::new("a-1", Fen::new(700), "Cola").method("sandbox"))
        .await
        .unwrap();
    let platform_no = p.platform_no(&a.app_id, "a-1").await;
    let _lost = p.state.sandbox.as_ref().unwrap().pay(&platform_no).unwrap();
    // B's is paid and notified.
    let paid = client_b
        .create_payment(&CreatePayment::new("b-1", Fen::new(300), "Chips").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&paid.payment_token).await;

    let day = today();
    // Nobody but the admin reconciles or reads the account's bills.
    let anonymous = p
        .http
        .get(format!("{}/admin/bills", p.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (status, answer) = p
        .admin(
            "POST",
            "/admin/bills/reconcile",
            Some(json!({"date": day, "channel": "sandbox"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let run = &answer["outcomes"][0]["run"];
    assert_eq!(answer["outcomes"][0]["status"], "done", "{answer}");
    assert_eq!(run["counts"]["matched"], 1, "{answer}");
    assert_eq!(run["counts"]["unpaid_here"], 1, "{answer}");
    // Settled: A's payment is paid now.
    assert_eq!(client_a.get_payment("a-1").await.unwrap().status, "PAID");

    let (status, runs) = p.admin("GET", "/admin/bills", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["channel"] == "sandbox" && r["day"] == day),
        "{runs}"
    );
    let (status, items) = p
        .admin("GET", &format!("/admin/bills/{day}/sandbox"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(items["items"][0]["out_trade_no"], platform_no, "{items}");
    let csv = p
        .http
        .get(format!("{}/admin/bills/{day}/sandbox/csv", p.url))
        .bearer_auth(super::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&platform_no), "{csv}");

    // Each merchant: their own items, in their own numbers.
    let path = format!("/v1/bills/{day}");
    let mine: Value = client_a.request("GET", &path, None, None).await.unwrap();
    let run_a = sandbox_run(&mine);
    assert_eq!(run_a["done"], true, "{mine}");
    assert_eq!(run_a["items"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(run_a["items"][0]["out_trade_no"], "a-1", "{mine}");
    assert_eq!(run_a["items"][0]["class"], "unpaid_here");
    assert_eq!(run_a["items"][0]["settled"], true);
    assert!(!mine.to_string().contains(&platform_no), "{mine}");
    let theirs: Value = client_b.request("GET", &path, None, None).await.unwrap();
    assert_eq!(sandbox_run(&theirs)["items"], json!([]), "{theirs}");
    // A merchant's signature opens no admin route.
    let refused = client_a
        .request::<Value>("GET", "/admin/bills", None, None)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    p.stop().await;
}
