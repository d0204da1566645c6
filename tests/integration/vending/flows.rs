//! Each scenario once, on whatever engines the `Vending` under test runs. A flow leaves the
//! machine it used free again, so flows can follow each other on one server.

use aggregate_pay::{NotifyOutcome, PaymentStatus, RefundStatus};
use axum::http::StatusCode;
use futures_util::future::join_all;
use serde_json::{Value, json};

use super::Vending;
use examples::providers::DEMO_MINI_APP_ID;

use crate::support::{eventually, unique};

fn order_no(order: &Value) -> String {
    order["order_no"].as_str().unwrap().to_owned()
}

async fn payment_status(v: &Vending, order_no: &str) -> PaymentStatus {
    v.state
        .orders
        .payments()
        .get_by_out_trade_no(order_no)
        .await
        .unwrap()
        .status
}

/// Orders in the database for `machine`.
async fn orders_on(v: &Vending, machine: &str) -> usize {
    v.state
        .orders
        .db()
        .recent_orders(10_000)
        .await
        .unwrap()
        .iter()
        .filter(|o| o.inner_code == machine)
        .count()
}

/// The machine takes a new order (its lock is free); the order is cancelled again.
async fn assert_machine_free(v: &Vending, machine: &str, sku_id: i64) {
    let someone = v.demo_buyer().await;
    let (status, probe) = v
        .post_as(
            Some(&someone),
            "/api/orders",
            json!({"inner_code": machine, "sku_id": sku_id, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{probe}");
    let (status, cancelled) = v
        .post_as(
            Some(&someone),
            &format!("/api/orders/{}/cancel", order_no(&probe)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
}

/// Buy → PAID → VENDING → COMPLETED: the slot's capacity goes down by one, the SKU list shows
/// it, the payment is PAID and the machine is free again.
pub async fn buy_completes(v: &Vending) {
    let (machine, sku) = ("VM0001", 1);
    // SKU 1 is in A1 (350 fen, 8) and A2 (300 fen, 2): the real price is the lowest slot price.
    let listed = v.sku_entry(machine, sku).await.unwrap();
    assert_eq!(listed["price"], 300);
    let before_slot = v.slot_capacity(machine, "A2").await;
    let before_sku = listed["capacity"].as_i64().unwrap();
    let vends_before = v.vend_commands();

    let order = v.order(machine, sku).await;
    assert_eq!(order["status"], "CREATED");
    assert_eq!(order["amount"], 300);
    assert_eq!(order["slot_no"], "A2");
    assert_eq!(order["pay"]["type"], "sandbox");
    let no = order_no(&order);

    let paid = v.sandbox_pay(&no).await;
    assert_eq!(paid["order_no"], no.as_str());
    let done = v.wait_for(&no, "COMPLETED", 20).await;
    assert!(done["paid_at"].is_i64() && done["vend_at"].is_i64() && done["ended_at"].is_i64());
    assert_eq!(v.slot_capacity(machine, "A2").await, before_slot - 1);
    assert_eq!(
        v.sku_entry(machine, sku).await.unwrap()["capacity"],
        before_sku - 1
    );
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Paid);
    assert_eq!(v.vend_commands(), vends_before + 1);
    assert_machine_free(v, machine, sku).await;

    let metrics = v
        .http
        .get(format!("{}/metrics", v.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("vending_orders_ended_total{status=\"COMPLETED\"}")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
    assert!(metrics.contains("vending_vend_latency_seconds_count"));
    // The gauge is of open orders (an index range); the history is never counted per scrape.
    for open in ["CREATED", "PAID", "VENDING"] {
        assert!(
            metrics.contains(&format!("vending_orders{{status=\"{open}\"}}")),
            "{metrics}"
        );
    }
    assert!(
        !metrics.contains("vending_orders{status=\"COMPLETED\"}"),
        "{metrics}"
    );
}

/// The last item of a slot: bought, then the SKU is gone from the list and a new order is 409
/// `SOLD_OUT` (and creates nothing).
pub async fn last_item_then_sold_out(v: &Vending) {
    let (machine, sku) = ("VM0002", 1); // one item, in A3
    assert_eq!(v.slot_capacity(machine, "A3").await, 1);
    let order = v.order(machine, sku).await;
    v.sandbox_pay(&order_no(&order)).await;
    v.wait_for(&order_no(&order), "COMPLETED", 20).await;
    assert_eq!(v.slot_capacity(machine, "A3").await, 0);
    assert!(v.sku_entry(machine, sku).await.is_none());
    let before = orders_on(v, machine).await;
    let (status, body) = v
        .post(
            "/api/orders",
            json!({"inner_code": machine, "sku_id": sku, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "SOLD_OUT");
    assert_eq!(orders_on(v, machine).await, before);
}

/// Eight buyers at once on one machine: exactly one order, seven 409 `MACHINE_BUSY`, and no
/// order (so no payment) for the seven. Cancelling frees the machine.
pub async fn racing_buyers(v: &Vending) {
    let (machine, sku) = ("VM0002", 2);
    let before = orders_on(v, machine).await;
    let buyers = join_all((0..8).map(|_| v.demo_buyer())).await;
    let attempts = buyers.iter().map(|b| {
        v.post_as(
            Some(b),
            "/api/orders",
            json!({"inner_code": machine, "sku_id": sku, "channel": "sandbox"}),
        )
    });
    let results = join_all(attempts).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    let busy = results
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["code"] == "MACHINE_BUSY")
        .count();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(busy, 7, "{results:?}");
    assert_eq!(orders_on(v, machine).await, before + 1);
    let no = order_no(winners[0]);
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Pending);
    let winner = buyers
        .iter()
        .find(|b| winners[0]["open_id"] == b.open_id.as_str())
        .unwrap();

    // Cancel: the payment is closed at the channel, the order CANCELLED, the machine free.
    let (status, cancelled) = v
        .post_as(Some(winner), &format!("/api/orders/{no}/cancel"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Closed);
    // Cancelling again changes nothing.
    let (status, again) = v
        .post_as(Some(winner), &format!("/api/orders/{no}/cancel"), json!({}))
        .await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("CANCELLED"))
    );
    assert_machine_free(v, machine, sku).await;
}

/// A paid order cannot be cancelled.
pub async fn paid_order_not_cancellable(v: &Vending) {
    let (machine, sku) = ("VM0003", 3);
    let order = v.order(machine, sku).await;
    let no = order_no(&order);
    v.sandbox_pay(&no).await;
    let (status, body) = v.post(&format!("/api/orders/{no}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "ORDER_PAID");
    v.wait_for(&no, "COMPLETED", 20).await;
}

/// Nobody pays: after the order timeout the payment is closed, the order INVALID and the
/// machine free. (The server runs with a short `ORDER_TIMEOUT_SECS`.)
pub async fn unpaid_times_out(v: &Vending, timeout_secs: u64) {
    let (machine, sku) = ("VM0003", 5);
    let order = v.order(machine, sku).await;
    let no = order_no(&order);
    let invalid = v.wait_for(&no, "INVALID", timeout_secs + 15).await;
    assert_eq!(invalid["reason"], "not paid in time");
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Closed);
    assert_machine_free(v, machine, sku).await;
}

/// The buyer paid at the last second: the notification arrives after the order went INVALID.
/// The money is recorded, refunded automatically, and nothing vends.
pub async fn late_payment_refunded(v: &Vending, timeout_secs: u64) {
    let (machine, sku) = ("VM0003", 5);
    let vends_before = v.vend_commands();
    let capacity_before = v.slot_capacity(machine, "A1").await;
    let order = v.order(machine, sku).await;
    let no = order_no(&order);
    v.wait_for(&no, "INVALID", timeout_secs + 15).await;

    // The payer's money reaches the channel anyway, and its notification follows.
    let raw = v
        .state
        .sandbox
        .as_ref()
        .unwrap()
        .pay_after_close(&no)
        .unwrap();
    let handled = v.state.processor.handle("sandbox", &raw).await;
    assert!(
        matches!(handled.outcome, NotifyOutcome::Applied),
        "{:?}",
        handled.outcome
    );
    let refunded = v.wait_for(&no, "REFUNDED", 20).await;
    assert_eq!(refunded["refund_no"], format!("R{no}"));
    // The order keeps why it ended; the refund says why the money went back.
    assert_eq!(refunded["reason"], "not paid in time");
    let refund = v
        .state
        .orders
        .payments()
        .get_refund(&format!("R{no}"))
        .await
        .unwrap();
    assert_eq!(refund.amount.as_u64(), order["amount"].as_u64().unwrap());
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.reason.as_deref(), Some("paid after the order ended"));
    assert!(refunded["vend_at"].is_null(), "it never vended");
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Refunded);
    assert_eq!(v.vend_commands(), vends_before);
    assert_eq!(v.slot_capacity(machine, "A1").await, capacity_before);
}

/// The machine fails (the server runs with fail rate 1): VEND_FAILED, then refunded through the
/// channel → REFUNDED; capacity unchanged; the buyer gets "paid" and "refunded" messages; the
/// machine is free again.
pub async fn vend_failure_refunded(v: &Vending) {
    let (machine, sku) = ("VM0001", 3);
    let open_id = v.buyer.as_ref().unwrap().open_id.clone();
    let capacity_before = v.slot_capacity(machine, "B1").await;
    let order = v.order(machine, sku).await;
    let no = order_no(&order);
    v.sandbox_pay(&no).await;
    let refunded = v.wait_for(&no, "REFUNDED", 20).await;
    assert_eq!(refunded["reason"], "motor jammed (simulated)");
    assert_eq!(refunded["refund_no"], format!("R{no}"));
    assert!(refunded["vend_at"].is_i64(), "it was sent to the machine");
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Refunded);
    assert_eq!(v.slot_capacity(machine, "B1").await, capacity_before);
    let mut templates = Vec::new();
    eventually(10, "both template messages", async || {
        templates = v
            .messages_to(&open_id)
            .await
            .iter()
            .filter_map(|m| m["body"]["template_id"].as_str().map(str::to_owned))
            .collect();
        templates.len() >= 2
    })
    .await;
    assert_eq!(templates, ["TPL_VENDING_PAID", "TPL_VENDING_REFUNDED"]);
    assert_machine_free(v, machine, sku).await;
}

/// The same notification six times at once (a provider retrying, two instances racing): one
/// is applied, five are duplicates, one vend-out command, one item out.
pub async fn duplicate_notifications_vend_once(v: &Vending) {
    let (machine, sku) = ("VM0001", 2);
    let vends_before = v.vend_commands();
    let capacity_before = v.slot_capacity(machine, "A3").await;
    let order = v.order(machine, sku).await;
    let no = order_no(&order);
    let raw = v.state.sandbox.as_ref().unwrap().pay(&no).unwrap();
    let outcomes = join_all((0..6).map(|_| v.state.processor.handle("sandbox", &raw))).await;
    let applied = outcomes
        .iter()
        .filter(|h| matches!(h.outcome, NotifyOutcome::Applied))
        .count();
    let duplicates = outcomes
        .iter()
        .filter(|h| matches!(h.outcome, NotifyOutcome::Duplicate))
        .count();
    assert_eq!((applied, duplicates), (1, 5));
    v.wait_for(&no, "COMPLETED", 20).await;
    // Late duplicates after completion change nothing either.
    for _ in 0..3 {
        let h = v.state.processor.handle("sandbox", &raw).await;
        assert!(matches!(h.outcome, NotifyOutcome::Duplicate));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(v.vend_commands(), vends_before + 1);
    assert_eq!(v.slot_capacity(machine, "A3").await, capacity_before - 1);
    assert_eq!(v.order_view(&no).await["status"], "COMPLETED");
}

/// A Mini Program buyer: `jscode2session` through the emulator, a WeChat order with
/// `wx.requestPayment` parameters, paid at the emulator (whose signed notification reaches
/// `/notify/wechat`), COMPLETED, a "paid" template message, and the buyer's order list.
pub async fn wechat_mini_program_buyer(v: &Vending) {
    let (machine, sku) = ("VM0003", 3);
    let open_id = unique("oMini");
    let buyer = v.mini_buyer(&open_id).await;
    let (status, body) = v
        .post_as(None, "/api/login", json!({"js_code": "not-a-code"}))
        .await;
    assert!(status.is_client_error(), "{status} {body}");
    assert!(body.get("token").is_none(), "{body}");

    let (status, order) = v
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": machine, "sku_id": sku}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["open_id"], open_id.as_str());
    assert_eq!(order["pay"]["type"], "wechat_jsapi", "{order}");
    let params = &order["pay"]["params"];
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    for field in ["appId", "timeStamp", "nonceStr", "signType", "paySign"] {
        assert!(params[field].is_string(), "{field} in {params}");
    }
    assert_eq!(
        params["appId"], DEMO_MINI_APP_ID,
        "paid in the Mini Program"
    );
    let no = order_no(&order);
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    let done = wait_for_as(v, &buyer, &no, "COMPLETED").await;
    assert_eq!(done["channel"], "wechat_mini", "{done}");
    // The Mini Program's own message (a subscribe message), not the Official Account's.
    eventually(10, "the paid subscribe message", async || {
        v.messages_to(&open_id).await.iter().any(|m| {
            m["kind"] == "subscribe"
                && m["app_id"] == DEMO_MINI_APP_ID
                && m["body"]["template_id"] == "TPL_VENDING_PAID"
                && m["body"]["data"]["keyword1"]["value"] == no.as_str()
        })
    })
    .await;

    let (status, mine) = v.get_as(Some(&buyer), "/api/orders").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let listed: Vec<&str> = mine["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [no.as_str()]);
}

/// Waits until `buyer`'s order is `status`.
async fn wait_for_as(v: &Vending, buyer: &super::Session, no: &str, status: &str) -> Value {
    let mut last = Value::Null;
    eventually(20, &format!("order {no} to be {status}"), async || {
        last = v.get_as(Some(buyer), &format!("/api/orders/{no}")).await.1;
        last["status"] == status
    })
    .await;
    last
}

/// A WeChat order whose vend fails (fail rate 1): refunded through WeChat Pay; the emulator's
/// encrypted refund notification reaches `/notify/wechat/refund` and the order is REFUNDED.
pub async fn wechat_vend_failure_refund_notification(v: &Vending) {
    wechat_vend_failure_refunded(v).await;
}

/// The same with the refund notification lost at WeChat (the emulator drops it): the
/// reconciler's refund query finds the refund made and the order still ends REFUNDED, with the
/// buyer told once. Needs a server reconciling every second or so.
pub async fn wechat_refund_notification_lost(v: &Vending) {
    v.emulator(
        "/sandbox/faults",
        json!({"drop_notifications": "wechat.refund"}),
    )
    .await;
    let no = wechat_vend_failure_refunded(v).await;
    let log = crate::support::inspect_at(&v.emulator_url, "/sandbox/notifications").await;
    let dropped = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "wechat.refund" && n["reference"] == format!("R{no}"))
        .all(|n| n["abandoned"] == true && n["attempts"] == 0);
    assert!(dropped, "the refund notification never went out: {log}");
}

async fn wechat_vend_failure_refunded(v: &Vending) -> String {
    let (machine, sku) = ("VM0002", 6);
    let order = v.order_on(machine, sku, "wechat").await;
    assert_eq!(order["pay"]["type"], "qr_code", "{order}");
    let no = order_no(&order);
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "VEND_FAILED", 20).await;
    // The refund is asked for right after (or by the sweep, had the server stopped here).
    eventually(10, "the refund number", async || {
        v.order_view(&no).await["refund_no"] == format!("R{no}")
    })
    .await;
    // WeChat refunds are asynchronous: complete it at the "provider" now (as soon as the
    // refund request has reached it).
    let refund = json!({"out_refund_no": format!("R{no}")});
    eventually(10, "the refund at the emulator", async || {
        v.try_emulator("/sandbox/refund-complete", &refund).await
    })
    .await;
    v.wait_for(&no, "REFUNDED", 20).await;
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Refunded);
    no
}

/// The buyer pays at WeChat just as the order expires, and the payment notification is lost:
/// the server's close at WeChat answers "already paid" (WeChat never lets a closed order be
/// paid), so the payment is recorded from WeChat's answer and the order vends — the money is
/// neither lost nor kept without the item.
pub async fn wechat_paid_as_the_order_expires_vends(v: &Vending, timeout_secs: u64) {
    let (machine, sku) = ("VM0003", 5);
    let vends_before = v.vend_commands();
    let order = v.order_on(machine, sku, "wechat").await;
    let no = order_no(&order);
    v.emulator(
        "/sandbox/faults",
        json!({"drop_notifications": "wechat.payment"}),
    )
    .await;
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    let done = v.wait_for(&no, "COMPLETED", timeout_secs + 20).await;
    assert!(done["vend_at"].is_i64(), "{done}");
    assert_eq!(payment_status(v, &no).await, PaymentStatus::Paid);
    assert_eq!(v.vend_commands(), vends_before + 1);
    let log = crate::support::inspect_at(&v.emulator_url, "/sandbox/notifications").await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "wechat.payment"
                && n["reference"] == no.as_str()
                && n["attempts"] == 0),
        "the payment notification never went out: {log}"
    );
}
