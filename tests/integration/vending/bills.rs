//! The Bills page: the day's reconciliation against the providers' bills, for operators only.
//! Demo mode reconciles only on demand (its emulator forgets its trades at each start); live
//! mode has the daily schedule on.

use axum::http::StatusCode;
use examples::vending::accounts;
use serde_json::json;

use super::live::live;
use super::{Options, Vending};
use crate::support::start_gateway;

fn today() -> String {
    aggregate_pay::bills::china_day(time::OffsetDateTime::now_utc()).to_string()
}

#[tokio::test]
async fn the_operator_reconciles_the_day_and_a_lost_payment_is_found_and_sold() {
    let v = Vending::start(Options::default()).await;
    assert!(v.wired.daily_bills.is_none(), "demo mode: on demand only");
    let operator = v.demo_seller().await;

    // Paid with test money, its notification lost on the way: the order still waits.
    let order = v.order("VM0001", 1).await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    let sandbox = v.state.sandbox.clone().unwrap();
    let _lost = sandbox.pay(&no).unwrap();
    assert_eq!(v.order_view(&no).await["status"], "CREATED");

    // Anyone but an operator is refused, whatever they ask.
    let (_, seller) = v.new_seller(&[]).await;
    let day = today();
    for (method, path, body) in [
        ("GET", "/api/seller/bills".to_owned(), None),
        ("GET", format!("/api/seller/bills/{day}/sandbox"), None),
        ("GET", format!("/api/seller/bills/{day}/sandbox/csv"), None),
        (
            "POST",
            "/api/seller/bills/reconcile".to_owned(),
            Some(json!({"date": day})),
        ),
    ] {
        let (status, body_seen) = v
            .seller_call(Some(&seller), method, &path, body.clone())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body_seen}");
        assert_eq!(body_seen["code"], "OPERATOR_ONLY");
        let (status, _) = v.seller_call(None, method, &path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }

    let (status, answer) = v
        .seller_call(
            Some(&operator),
            "POST",
            "/api/seller/bills/reconcile",
            Some(json!({"date": day})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outcome = answer["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["channel"] == "sandbox")
        .unwrap();
    assert_eq!(outcome["status"], "done", "{answer}");
    assert_eq!(outcome["run"]["counts"]["unpaid_here"], 1, "{answer}");
    // Settled through the query: the order is paid, and vends.
    v.wait_for(&no, "COMPLETED", 20).await;

    let (status, runs) = v
        .seller_call(Some(&operator), "GET", "/api/seller/bills", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let run = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["channel"] == "sandbox")
        .unwrap();
    assert_eq!(run["day"], day, "{runs}");
    assert_eq!(run["status"], "done");
    assert_eq!(run["settled"], 1, "what the run fixed: {runs}");
    let (status, items) = v
        .seller_call(
            Some(&operator),
            "GET",
            &format!("/api/seller/bills/{day}/sandbox"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = items["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["out_trade_no"], no);
    assert_eq!(items[0]["class"], "unpaid_here");
    assert_eq!(items[0]["settled"], true);

    // The CSV is the same items.
    let csv = v
        .http
        .get(format!("{}/api/seller/bills/{day}/sandbox/csv", v.url))
        .header("cookie", format!("vending_seller={operator}"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[1].contains(&no) && lines[1].contains("unpaid_here,true"),
        "{text}"
    );

    // Counted in the metrics, recorded in the audit.
    let metrics = v.text("/metrics").await;
    assert!(
        metrics.contains(r#"vending_bill_items{channel="sandbox",class="unpaid_here"} 1"#),
        "{metrics}"
    );
    let (_, audit) = v
        .seller_call(Some(&operator), "GET", "/api/seller/audit", None)
        .await;
    assert_eq!(audit["entries"][0]["action"], "reconcile_bills", "{audit}");

    // A malformed day is refused.
    let (status, _) = v
        .seller_call(
            Some(&operator),
            "POST",
            "/api/seller/bills/reconcile",
            Some(json!({"date": "yesterday"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    v.stop().await;
}

#[tokio::test]
async fn live_mode_reconciles_daily_and_only_an_operator_sees_the_bills() {
    let gateway = start_gateway().await;
    let v = live(&gateway).await;
    let (at, retry) = v.wired.daily_bills.expect("live mode: the daily run is on");
    assert_eq!((at.hour(), at.minute()), (10, 30));
    assert_eq!(retry.as_secs(), 15 * 60);

    let cookie = v.seller_login("operator", "operator-password-1").await;
    let (status, _) = v
        .seller_call(Some(&cookie), "GET", "/api/seller/bills", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a seller is not an operator");
    accounts::set_operator(v.state.orders.db(), "operator", true)
        .await
        .unwrap();

    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let (status, answer) = v
        .seller_call(
            Some(&cookie),
            "POST",
            "/api/seller/bills/reconcile",
            Some(json!({"date": today()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outcomes"][0]["channel"], "wechat", "{answer}");
    assert_eq!(answer["outcomes"][0]["status"], "done", "{answer}");
    assert_eq!(
        answer["outcomes"][0]["run"]["counts"]["matched"], 1,
        "{answer}"
    );

    // Taken away, refused at once.
    accounts::set_operator(v.state.orders.db(), "operator", false)
        .await
        .unwrap();
    let (status, _) = v
        .seller_call(Some(&cookie), "GET", "/api/seller/bills", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    v.stop().await;
    gateway.shutdown().await;
}
