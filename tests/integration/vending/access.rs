//! Nobody is trusted by what they claim: each attack on the vending server, tried as an attacker
//! would, fails for the attacker — buyers reach only their own orders, sessions cannot be forged
//! or stretched, one buyer cannot hold the fleet, sellers see and touch only their machines, and
//! a cookie cannot be ridden from another site.

use axum::http::StatusCode;
use examples::providers::Mode;
use examples::vending::auth::{Audience, Claims, SessionKeys};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{Options, Session, Vending};
use crate::support::eventually;

const SECRET: &str = "a-test-session-secret-of-32-chars-or-more";

fn no(order: &Value) -> String {
    order["order_no"].as_str().unwrap().to_owned()
}

fn token(aud: Audience, sub: &str, exp: i64, ctx: &str) -> String {
    SessionKeys::new(SECRET, Mode::Demo).sign(&Claims {
        aud,
        sub: sub.into(),
        exp,
        ctx: Some(ctx.into()),
    })
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn buyers_reach_only_their_own_orders_and_sessions_cannot_be_forged() {
    let v = Vending::start(Options {
        session_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await;
    let alice = v.demo_buyer().await;
    let mallory = v.demo_buyer().await;
    let (status, order) = v
        .post_as(
            Some(&alice),
            "/api/orders",
            json!({"inner_code": "VM0001", "sku_id": 1, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let alices = no(&order);

    // No session: nothing.
    for (method, path) in [
        ("POST", "/api/orders".to_owned()),
        ("GET", "/api/orders".to_owned()),
        ("GET", format!("/api/orders/{alices}")),
        ("POST", format!("/api/orders/{alices}/cancel")),
        ("POST", format!("/api/orders/{alices}/sandbox-pay")),
        ("GET", "/api/session".to_owned()),
    ] {
        let (status, body) = match method {
            "GET" => v.get_as(None, &path).await,
            _ => {
                v.post_as(
                    None,
                    &path,
                    json!({"inner_code": "VM0002", "sku_id": 1, "channel": "sandbox"}),
                )
                .await
            }
        };
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("UNAUTHENTICATED")),
            "{method} {path}: {body}"
        );
    }

    // Someone else's order does not exist for Mallory.
    let as_mallory = Some(&mallory);
    for (status, body) in [
        v.get_as(as_mallory, &format!("/api/orders/{alices}")).await,
        v.post_as(
            as_mallory,
            &format!("/api/orders/{alices}/cancel"),
            json!({}),
        )
        .await,
        v.post_as(
            as_mallory,
            &format!("/api/orders/{alices}/sandbox-pay"),
            json!({}),
        )
        .await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "ORDER_NOT_FOUND");
    }
    let (_, mine) = v.get_as(as_mallory, "/api/orders").await;
    assert_eq!(mine["orders"], json!([]), "{mine}");
    // Naming Alice in the query or the body is refused, not obeyed.
    let (status, _) = v
        .get_as(
            as_mallory,
            &format!("/api/orders?open_id={}", alice.open_id),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = v
        .post_as(
            as_mallory,
            "/api/orders",
            json!({"inner_code": "VM0002", "sku_id": 1, "channel": "sandbox", "open_id": alice.open_id}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Alice's order is untouched, and she can still see and pay it.
    assert_eq!(
        v.get_as(Some(&alice), &format!("/api/orders/{alices}"))
            .await
            .1["status"],
        "CREATED"
    );
    assert!(
        v.messages_to(&alice.open_id).await.is_empty(),
        "nobody sent Alice messages"
    );

    // Forged, altered, expired and misdirected tokens.
    let forged =
        SessionKeys::new("not-the-servers-secret-0123456789abcdef", Mode::Demo).sign(&Claims {
            aud: Audience::Buyer,
            sub: alice.open_id.clone(),
            exp: now() + 3600,
            ctx: Some("demo".into()),
        });
    let (payload, sig) = mallory.token.split_once('.').unwrap();
    let altered = format!("{}x.{sig}", &payload[..payload.len() - 1]);
    let expired = token(Audience::Buyer, &alice.open_id, now() - 1, "demo");
    let seller_token = token(Audience::Seller, &alice.open_id, now() + 3600, "demo");
    for (bad, code) in [
        (forged, "SESSION_INVALID"),
        (altered, "SESSION_INVALID"),
        ("garbage".to_owned(), "SESSION_INVALID"),
        (expired, "SESSION_EXPIRED"),
        (seller_token, "SESSION_INVALID"),
    ] {
        let as_bad = Session {
            open_id: String::new(),
            token: bad.clone(),
        };
        let (status, body) = v
            .get_as(Some(&as_bad), &format!("/api/orders/{alices}"))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some(code)),
            "{bad}: {body}"
        );
    }
    // A token signed with the server's secret is honoured: the secret is the whole proof.
    let real = Session {
        open_id: alice.open_id.clone(),
        token: token(Audience::Buyer, &alice.open_id, now() + 60, "demo"),
    };
    assert_eq!(
        v.get_as(Some(&real), &format!("/api/orders/{alices}"))
            .await
            .0,
        StatusCode::OK
    );

    // Cookie sessions refuse a request another site's page makes.
    let resp = v
        .http
        .post(format!("{}/api/orders/{alices}/cancel", v.url))
        .header("cookie", format!("vending_buyer={}", alice.token))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(
        v.get_as(Some(&alice), &format!("/api/orders/{alices}"))
            .await
            .1["status"],
        "CREATED"
    );
    v.stop().await;
}

#[tokio::test]
async fn one_buyer_cannot_hold_the_fleet_and_orders_are_rate_limited() {
    let v = Vending::start(Options {
        order_rate_per_min: 4,
        ..Options::default()
    })
    .await;
    let buyer = v.buyer.clone().unwrap();
    let order = v.order("VM0001", 1).await;
    // A second machine while the first order is open: refused, naming the open order.
    for machine in ["VM0002", "VM0003"] {
        let (status, body) = v
            .post(
                "/api/orders",
                json!({"inner_code": machine, "sku_id": 2, "channel": "sandbox"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "ORDER_OPEN");
        assert_eq!(body["order_no"], no(&order).as_str());
    }
    // The other machines are still free for everyone else.
    let other = v.demo_buyer().await;
    let (status, theirs) = v
        .post_as(
            Some(&other),
            "/api/orders",
            json!({"inner_code": "VM0002", "sku_id": 2, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");

    // Four order attempts a minute per buyer and per address: the buyer made three, this
    // address four (with `other`'s); the next is 429 with Retry-After, whoever asks.
    let resp = v
        .http
        .post(format!("{}/api/orders", v.url))
        .bearer_auth(&buyer.token)
        .json(&json!({"inner_code": "VM0003", "sku_id": 5, "channel": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    // Logins from this address are limited too: two so far (the default buyer's, `other`'s),
    // two more allowed, then 429.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(v.post_as(None, "/api/demo-login", json!({})).await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    v.stop().await;
}

/// The body of a WebSocket message, as JSON.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).unwrap(),
            Ok(Some(Ok(_))) => {}
            other => panic!("no message from the feed: {other:?}"),
        }
    }
}

#[tokio::test]
async fn sellers_see_and_touch_only_their_own_machines() {
    let v = Vending::start(Options::default()).await;
    // The demo seller has VM0001 and VM0002; Bob is given VM0003.
    let demo = v.demo_seller().await;
    let (bob_login, bob) = v.new_seller(&["VM0003"]).await;

    // Without a session: the dashboard sends to the login page, the API and the feed say 401.
    let page = v
        .http
        .get(format!("{}/seller", v.url))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_redirection());
    assert_eq!(page.headers()["location"], "/seller/login");
    assert!(v.text("/seller/login").await.contains("Seller login"));
    for path in [
        "/api/seller/orders",
        "/api/seller/machines",
        "/api/seller/audit",
        "/api/seller/me",
    ] {
        assert_eq!(
            v.seller_call(None, "GET", path, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            v.seller_call(Some("forged.token"), "GET", path, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
    match tokio_tungstenite::connect_async(v.dashboard_request(None)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        other => panic!("the feed let an anonymous dashboard in: {other:?}"),
    }
    // A buyer's session is not a seller's.
    let buyer_token = v.buyer.as_ref().unwrap().token.clone();
    assert_eq!(
        v.seller_call(Some(&buyer_token), "GET", "/api/seller/orders", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Wrong password and unknown login: the same answer.
    for (login, password) in [
        (bob_login.as_str(), "wrong-password"),
        ("nobody-here", "a-seller-password"),
    ] {
        let (status, body) = v
            .post_as(
                None,
                "/api/seller/login",
                json!({"login": login, "password": password}),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("LOGIN_FAILED")),
            "{login}"
        );
    }

    // Bob's dashboard: connected before anyone buys.
    let (mut bobs_feed, _) = tokio_tungstenite::connect_async(v.dashboard_request(Some(&bob)))
        .await
        .unwrap();
    assert_eq!(next_json(&mut bobs_feed).await["type"], "snapshot");
    let on_demo = v.order("VM0001", 1).await;
    let (status, on_bob) = v
        .post_as(
            Some(&v.demo_buyer().await),
            "/api/orders",
            json!({"inner_code": "VM0003", "sku_id": 5, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{on_bob}");
    // The first change Bob sees is his machine's; the demo seller's order never shows.
    let change = next_json(&mut bobs_feed).await;
    assert_eq!(
        change["order"]["order_no"],
        no(&on_bob).as_str(),
        "{change}"
    );
    let (_, listed) = v
        .seller_call(Some(&bob), "GET", "/api/seller/orders", None)
        .await;
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [no(&on_bob).as_str()]);
    let (_, machines) = v
        .seller_call(Some(&bob), "GET", "/api/seller/machines", None)
        .await;
    assert_eq!(machines["machines"].as_array().unwrap().len(), 1);
    assert_eq!(machines["machines"][0]["inner_code"], "VM0003");

    // Bob cannot act on the demo seller's order or machines.
    let demos = no(&on_demo);
    for (method, path, body) in [
        (
            "POST",
            format!("/api/seller/orders/{demos}/cancel"),
            json!({}),
        ),
        (
            "POST",
            format!("/api/seller/orders/{demos}/refund"),
            json!({"amount": 1, "reason": "x"}),
        ),
        (
            "POST",
            "/api/seller/machines/VM0001/status".to_owned(),
            json!({"status": "OFFLINE"}),
        ),
        (
            "POST",
            "/api/seller/machines/VM0001/slots/A1".to_owned(),
            json!({"capacity": 0}),
        ),
    ] {
        let (status, answer) = v.seller_call(Some(&bob), method, &path, Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    assert_eq!(v.order_view(&demos).await["status"], "CREATED");
    assert_eq!(v.slot_capacity("VM0001", "A1").await, 8);

    // A request another site's page makes with Bob's cookie is refused.
    let resp = v
        .http
        .post(format!("{}/api/seller/machines/VM0003/status", v.url))
        .header("cookie", format!("vending_seller={bob}"))
        .header("origin", "https://evil.example")
        .json(&json!({"status": "OFFLINE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // Disabled, Bob's session stops working at once; the demo seller's does not.
    examples::vending::accounts::set_enabled(v.state.orders.db(), &bob_login, false)
        .await
        .unwrap();
    assert_eq!(
        v.seller_call(Some(&bob), "GET", "/api/seller/orders", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        v.seller_call(Some(&demo), "GET", "/api/seller/orders", None)
            .await
            .0,
        StatusCode::OK
    );
    // A new password ends the sessions of the old one.
    examples::vending::accounts::set_password(v.state.orders.db(), "demo", "another-demo-password")
        .await
        .unwrap();
    assert_eq!(
        v.seller_call(Some(&demo), "GET", "/api/seller/orders", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(page_is_dashboard(&v, &v.seller_login("demo", "another-demo-password").await).await);
    v.stop().await;
}

async fn page_is_dashboard(v: &Vending, cookie: &str) -> bool {
    let page = v
        .http
        .get(format!("{}/seller", v.url))
        .header("cookie", format!("vending_seller={cookie}"))
        .send()
        .await
        .unwrap();
    page.status().is_success() && page.text().await.unwrap().contains("/ws/seller")
}

#[tokio::test]
async fn a_seller_refunds_in_part_and_in_full_restocks_and_reprices_and_it_is_all_recorded() {
    let v = Vending::start(Options::default()).await;
    let seller = v.demo_seller().await;
    let call = async |method: &str, path: &str, body: Option<Value>| {
        v.seller_call(Some(&seller), method, path, body).await
    };

    // A WeChat purchase (through the emulator), completed.
    let buyer = v.buyer.clone().unwrap();
    let (status, order) = v
        .post(
            "/api/orders",
            json!({"inner_code": "VM0001", "sku_id": 2, "channel": "wechat"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let n = no(&order);
    v.emulator("/sandbox/pay", json!({"out_trade_no": n})).await;
    v.wait_for(&n, "COMPLETED", 20).await;
    assert_eq!(order["amount"], 200);

    // Too much, nothing, no reason: refused, nothing moves.
    for (body, code) in [
        (
            json!({"amount": 201, "reason": "broken"}),
            "REFUND_AMOUNT_INVALID",
        ),
        (
            json!({"amount": 0, "reason": "broken"}),
            "REFUND_AMOUNT_INVALID",
        ),
        (json!({"amount": 50, "reason": " "}), "REASON_INVALID"),
    ] {
        let (status, answer) = call(
            "POST",
            &format!("/api/seller/orders/{n}/refund"),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["code"], code);
    }

    // Part of it: WeChat refunds later; the order records it when the emulator completes it.
    let (status, part) = call(
        "POST",
        &format!("/api/seller/orders/{n}/refund"),
        Some(json!({"amount": 50, "reason": "dented can"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{part}");
    let first = part["refund"]["out_refund_no"].as_str().unwrap().to_owned();
    assert_eq!(first, format!("S{n}-1"));
    // The same click again is the same refund, not a second one.
    let (status, again) = call(
        "POST",
        &format!("/api/seller/orders/{n}/refund"),
        Some(json!({"amount": 50, "reason": "dented can"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["refund"]["out_refund_no"], first.as_str());
    // Another amount while it is on its way: wait.
    let (status, busy) = call(
        "POST",
        &format!("/api/seller/orders/{n}/refund"),
        Some(json!({"amount": 10, "reason": "more"})),
    )
    .await;
    assert_eq!(
        (status, busy["code"].as_str()),
        (StatusCode::CONFLICT, Some("REFUND_IN_PROGRESS"))
    );
    v.emulator("/sandbox/refund-complete", json!({"out_refund_no": first}))
        .await;
    eventually(20, "the partial refund recorded", async || {
        v.order_view(&n).await["refunded"] == 50
    })
    .await;
    assert_eq!(v.order_view(&n).await["status"], "COMPLETED");

    // The rest: the order is REFUNDED.
    let (status, rest) = call(
        "POST",
        &format!("/api/seller/orders/{n}/refund"),
        Some(json!({"amount": 150, "reason": "customer unhappy"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["refund"]["out_refund_no"], format!("S{n}-2"));
    v.emulator(
        "/sandbox/refund-complete",
        json!({"out_refund_no": format!("S{n}-2")}),
    )
    .await;
    let done = v.wait_for(&n, "REFUNDED", 20).await;
    assert_eq!(done["refunded"], 200);
    // The buyer heard of both refunds.
    eventually(10, "two refund messages", async || {
        v.messages_to(&buyer.open_id)
            .await
            .iter()
            .filter(|m| m["body"]["template_id"] == "TPL_VENDING_REFUNDED")
            .count()
            == 2
    })
    .await;
    // Nothing is left to refund.
    let (status, _) = call(
        "POST",
        &format!("/api/seller/orders/{n}/refund"),
        Some(json!({"amount": 1, "reason": "again"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // An unpaid order is cancelled, not refunded.
    let open = v.order("VM0002", 6).await;
    let (status, _) = call(
        "POST",
        &format!("/api/seller/orders/{}/refund", no(&open)),
        Some(json!({"amount": 1, "reason": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, cancelled) = call(
        "POST",
        &format!("/api/seller/orders/{}/cancel", no(&open)),
        Some(json!({"reason": "machine being serviced"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        cancelled["reason"],
        "cancelled by the seller: machine being serviced"
    );

    // Restock and reprice a slot: the buyers' list shows it, a new order pays the new price.
    let (status, slot) = call(
        "POST",
        "/api/seller/machines/VM0002/slots/A2",
        Some(json!({"capacity": 12, "price": 480})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{slot}");
    assert_eq!(
        (slot["capacity"].as_i64(), slot["price"].as_i64()),
        (Some(12), Some(480))
    );
    assert_eq!(v.sku_entry("VM0002", 6).await.unwrap()["capacity"], 12);
    let (status, bad) = call(
        "POST",
        "/api/seller/machines/VM0002/slots/A2",
        Some(json!({"sku_id": 999})),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("SLOT_INVALID"))
    );

    // Out of service: no new orders there; back in service: orders again.
    let (status, _) = call(
        "POST",
        "/api/seller/machines/VM0002/status",
        Some(json!({"status": "OFFLINE"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, offline) = v
        .post(
            "/api/orders",
            json!({"inner_code": "VM0002", "sku_id": 6, "channel": "sandbox"}),
        )
        .await;
    assert_eq!(
        (status, offline["code"].as_str()),
        (StatusCode::CONFLICT, Some("MACHINE_OFFLINE"))
    );
    call(
        "POST",
        "/api/seller/machines/VM0002/status",
        Some(json!({"status": "ONLINE"})),
    )
    .await;
    let repriced = v.order("VM0002", 6).await;
    assert_eq!(repriced["amount"], 480);

    // Every action is in the audit, newest first, with before and after.
    let (_, audit) = call("GET", "/api/seller/audit", None).await;
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    let open_no = no(&open);
    assert_eq!(
        actions,
        [
            ("machine_status", "VM0002"),
            ("machine_status", "VM0002"),
            ("slot", "VM0002/A2"),
            ("cancel", open_no.as_str()),
            ("refund", n.as_str()),
            ("refund", n.as_str()),
            ("refund", n.as_str()),
        ]
    );
    let slot_entry = &audit["entries"][2];
    assert_eq!(slot_entry["before"]["capacity"], 3);
    assert_eq!(slot_entry["after"]["capacity"], 12);
    assert_eq!(slot_entry["seller"], "demo");
    v.stop().await;
}

/// A result for `order_no` from `machine`, signed with `secret` at `at` (or unsigned).
fn result_from(
    order_no: &str,
    machine: &str,
    secret: Option<&str>,
    at: i64,
) -> examples::vending::machines::Received {
    let mut result = examples::vending::machines::VendResult {
        order_no: order_no.into(),
        success: true,
        error: None,
        inner_code: None,
        ts: None,
        sig: None,
    };
    if let Some(s) = secret {
        examples::vending::machines::signing::sign_result(s, &mut result, machine, at);
    }
    examples::vending::machines::Received {
        machine: machine.into(),
        result,
    }
}

const MACHINE_SECRET: &str = "machine-secret-0123456789abcdef0123456789abcdef";

/// Results that do not come from the order's machine, or are not signed by it when it has a
/// secret, change nothing and are counted; the machine's own signed result completes the order.
#[tokio::test]
async fn only_the_orders_machine_with_its_signature_completes_a_vend() {
    let v = Vending::start(Options {
        machine_secret: Some(MACHINE_SECRET.into()),
        // The real machine answers late, so the forgeries come first.
        latency_ms: 3_000,
        ..Options::default()
    })
    .await;
    let capacity = v.slot_capacity("VM0001", "A2").await;
    let order = v.order("VM0001", 1).await;
    let n = no(&order);
    v.sandbox_pay(&n).await;
    v.wait_for(&n, "VENDING", 10).await;

    let orders = &v.state.orders;
    let t = now();
    for (received, reason) in [
        // Another machine's topic, even signed by a machine with the same secret.
        (
            result_from(&n, "VM0002", Some(MACHINE_SECRET), t),
            "wrong_machine",
        ),
        (result_from(&n, "VM0001", None, t), "unsigned"),
        (
            result_from(&n, "VM0001", Some(MACHINE_SECRET), t - 120),
            "stale",
        ),
        (
            result_from(&n, "VM0001", Some("a guessed secret"), t),
            "bad_signature",
        ),
    ] {
        let before = v.state.metrics.results_rejected(reason);
        orders.on_vend_result(&received).await.unwrap();
        assert_eq!(
            v.state.metrics.results_rejected(reason),
            before + 1,
            "{reason}"
        );
        assert_eq!(v.order_view(&n).await["status"], "VENDING", "{reason}");
    }
    // A signed result whose outcome was changed on the way.
    let mut altered = result_from(&n, "VM0001", Some(MACHINE_SECRET), t);
    altered.result.success = false;
    altered.result.error = Some("jammed".into());
    orders.on_vend_result(&altered).await.unwrap();
    assert_eq!(v.state.metrics.results_rejected("bad_signature"), 2);
    assert_eq!(v.slot_capacity("VM0001", "A2").await, capacity);

    // The machine's own answer (the simulated machine signs with its secret).
    v.wait_for(&n, "COMPLETED", 20).await;
    assert_eq!(v.slot_capacity("VM0001", "A2").await, capacity - 1);
    let metrics = v.text("/metrics").await;
    assert!(
        metrics.contains("vending_vend_results_rejected_total{reason=\"wrong_machine\"} 1"),
        "{metrics}"
    );
    v.stop().await;
}
