//! The attacker's second pass (issue 27), against a live server with `wechat-sandbox` standing
//! in for WeChat: each test is the attack, and fails for the attacker.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::json;

use super::live::live_with;
use crate::support::{start_gateway, wechat_v3_credentials_with_login};

/// The certificate downloads `/metrics` reports.
async fn certificate_downloads(v: &super::Vending) -> u64 {
    let text = v.text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("vending_wechat_certificate_downloads{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Finding 4: in platform-certificate mode, any unauthenticated POST to `/notify/wechat` with
/// an unknown `Wechatpay-Serial` made the server download certificates with the merchant's
/// credentials (20 forged requests, 20 downloads). 100 forged notifications now make at most
/// one, and the metric says so.
#[tokio::test]
async fn forged_notifications_with_unknown_serials_make_at_most_one_certificate_download() {
    let gateway = start_gateway().await;
    let v = live_with(&gateway, wechat_v3_credentials_with_login(&gateway, true)).await;
    // A real sale first: the certificates are downloaded once, as they must be.
    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", serde_json::json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let before = certificate_downloads(&v).await;
    assert!(before >= 1, "the real notification needed the certificates");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = base64::engine::general_purpose::STANDARD.encode([0x42u8; 256]);
    for i in 0..100 {
        let status = v
            .http
            .post(format!("{}/notify/wechat", v.url))
            .header("Wechatpay-Serial", format!("{i:040X}"))
            .header("Wechatpay-Timestamp", now.to_string())
            .header("Wechatpay-Nonce", format!("n{i}"))
            .header("Wechatpay-Signature", &signature)
            .header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
            .body(r#"{"id":"forged","event_type":"TRANSACTION.SUCCESS","resource":{}}"#)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status.is_server_error(),
            "refused, to be sent again: {status}"
        );
    }
    let after = certificate_downloads(&v).await;
    assert!(
        after <= before + 1,
        "100 forged notifications made {} downloads",
        after - before
    );
    v.stop().await;
    gateway.shutdown().await;
}

/// Finding 11: after a machine was reassigned, its new owner could refund the previous
/// seller's orders (ownership was checked against the machine's current owner). An order now
/// records its seller; only they refund it, see it, and hear of it.
#[tokio::test]
async fn a_reassigned_machines_new_owner_cannot_refund_the_old_owners_order() {
    let v = super::Vending::start(super::Options::default()).await;
    let (alice_login, alice) = v.new_seller(&["VM0003"]).await;
    let (status, order) = v
        .post(
            "/api/orders",
            json!({"inner_code": "VM0003", "sku_id": 5, "channel": "wechat"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    assert_eq!(order["seller"], alice_login.as_str(), "{order}");

    // The operator gives VM0003 to Mallory.
    let (mallory_login, mallory) = v.new_seller(&[]).await;
    assert!(
        v.state
            .orders
            .db()
            .assign_machine("VM0003", &mallory_login)
            .await
            .unwrap()
    );
    let refund = json!({"amount": 650, "reason": "mine now"});
    let (status, answer) = v
        .seller_call(
            Some(&mallory),
            "POST",
            &format!("/api/seller/orders/{no}/refund"),
            Some(refund.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["code"], "ORDER_NOT_FOUND");
    let (_, listed) = v
        .seller_call(Some(&mallory), "GET", "/api/seller/orders", None)
        .await;
    assert!(
        !listed.to_string().contains(&no),
        "not in the new owner's list: {listed}"
    );
    assert_eq!(v.order_view(&no).await["refunded"], 0, "nothing moved");

    // Alice still can: the order is hers.
    let (status, answer) = v
        .seller_call(
            Some(&alice),
            "POST",
            &format!("/api/seller/orders/{no}/refund"),
            Some(json!({"amount": 650, "reason": "broken can"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    v.stop().await;
}

/// Finding 5: demo mode left doors open in live mode on the same database — without
/// `SESSION_SECRET` the stored secret survived, so a demo-login token (7 days, app `demo`) was
/// a live buyer session with no WeChat login; the demo seller's machines stayed for sale; a
/// demo start reset the password of any seller called `demo`.
#[tokio::test]
async fn live_mode_trusts_nothing_a_demo_run_left_in_the_same_database() {
    let path = std::env::temp_dir().join(format!("{}.db", crate::support::unique("demo-live-")));
    let database_url = format!("sqlite://{}?mode=rwc", path.display());
    let demo = super::Vending::start(super::Options {
        database_url: Some(database_url.clone()),
        ..super::Options::default()
    })
    .await;
    let buyer = demo.buyer.clone().unwrap();
    let seller = demo.demo_seller().await;
    let (status, _) = demo.get_as(Some(&buyer), "/api/orders").await;
    assert_eq!(status, StatusCode::OK, "a demo session in demo mode");
    demo.stop().await;

    // The same database goes live (no SESSION_SECRET: the stored one is used).
    let gateway = start_gateway().await;
    let live = super::Vending::start(super::Options {
        database_url: Some(database_url.clone()),
        providers: Some(crate::support::wechat_credentials_with_login(
            gateway.base_url(),
        )),
        gateway_url: Some(gateway.base_url().to_owned()),
        simulate_machines: Some(true),
        ..super::Options::default()
    })
    .await;
    let (status, answer) = live.get_as(Some(&buyer), "/api/orders").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, answer) = live
        .seller_call(Some(&seller), "GET", "/api/seller/orders", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    // The demo seller's machines are nobody's: not for sale until the operator assigns them.
    let shopper = live.buyer.clone().unwrap();
    let (status, answer) = live
        .post_as(
            Some(&shopper),
            "/api/orders",
            json!({"inner_code": "VM0001", "sku_id": 1, "channel": "wechat"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let machine = live
        .state
        .orders
        .db()
        .machine("VM0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(machine.owner, None);
    live.stop().await;
    gateway.shutdown().await;

    // An operator's seller called `demo` on a database a demo then starts on: left alone.
    let path = std::env::temp_dir().join(format!("{}.db", crate::support::unique("demo-op-")));
    let database_url = format!("sqlite://{}?mode=rwc", path.display());
    {
        let sql = aggregate_pay::store::SqlStore::connect(&database_url)
            .await
            .unwrap();
        let db = examples::vending::db::VendingDb::new(sql).await.unwrap();
        examples::vending::accounts::add_seller(&db, "demo", "the-operators-password")
            .await
            .unwrap();
    }
    let refused = super::Vending::try_start(super::Options {
        database_url: Some(database_url.clone()),
        ..super::Options::default()
    })
    .await;
    let e = match refused {
        Ok(v) => {
            v.stop().await;
            panic!("demo mode took over the operator's seller");
        }
        Err(e) => e.to_string(),
    };
    assert!(e.contains("did not create"), "{e}");
    let sql = aggregate_pay::store::SqlStore::connect(&database_url)
        .await
        .unwrap();
    let db = examples::vending::db::VendingDb::new(sql).await.unwrap();
    let kept = db.seller("demo").await.unwrap().unwrap();
    assert!(
        examples::vending::auth::password::verify(
            "the-operators-password".into(),
            Some(kept.password_hash)
        )
        .await,
        "the operator's password still works"
    );
}

/// Waits up to `secs` for the feed to close; whether it did (a close frame, or the end).
async fn closes_within<S>(socket: &mut S, secs: u64) -> bool
where
    S: futures_util::StreamExt<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return false,
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Finding 6: `/ws/seller` checked the session only when it opened — after `seller disable
/// alice`, her open socket still received the next order with the buyer's openid. Disabling a
/// seller, changing the password or logging out now closes that seller's feeds on every instance
/// within seconds (two instances on one database here).
#[tokio::test]
async fn a_revoked_sellers_open_feeds_close_on_every_instance_within_seconds() {
    let path = std::env::temp_dir().join(format!("{}.db", crate::support::unique("revoke-")));
    let database_url = format!("sqlite://{}?mode=rwc", path.display());
    let options = || super::Options {
        database_url: Some(database_url.clone()),
        ..super::Options::default()
    };
    let a = super::Vending::start(options()).await;
    let b = super::Vending::start(options()).await;
    let db = a.state.orders.db();
    let revocations: [(&str, &str); 3] = [
        ("disabled", "alice"),
        ("password changed", "carol"),
        ("logged out", "dave"),
    ];
    for (how, login) in revocations {
        examples::vending::accounts::add_seller(db, login, "a-seller-password")
            .await
            .unwrap();
        let cookie = a.seller_login(login, "a-seller-password").await;
        let (mut on_a, _) = tokio_tungstenite::connect_async(a.dashboard_request(Some(&cookie)))
            .await
            .unwrap();
        let (mut on_b, _) = tokio_tungstenite::connect_async(b.dashboard_request(Some(&cookie)))
            .await
            .unwrap();
        assert!(!closes_within(&mut on_a, 3).await, "{how}: open before");
        match how {
            "disabled" => examples::vending::accounts::set_enabled(db, login, false)
                .await
                .unwrap(),
            "password changed" => {
                examples::vending::accounts::set_password(db, login, "another-password-1")
                    .await
                    .unwrap()
            }
            _ => {
                let (status, _) = b
                    .seller_call(Some(&cookie), "POST", "/api/seller/logout", None)
                    .await;
                assert_eq!(status, StatusCode::NO_CONTENT);
            }
        }
        assert!(
            closes_within(&mut on_a, 5).await,
            "{how}: instance A's feed"
        );
        assert!(
            closes_within(&mut on_b, 5).await,
            "{how}: instance B's feed"
        );
        let (status, _) = a
            .seller_call(Some(&cookie), "GET", "/api/seller/orders", None)
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{how}: the session is over"
        );
    }
    a.stop().await;
    b.stop().await;
}

/// Finding 7: per-address limits were per IPv6 address, and one ordinary /64 holds 2^64 of
/// them: 14 addresses gave 14 logins and no 429, each unknown-name seller login costing an
/// argon2id hash. Clients are now counted by /64; 20 addresses of one /64 meet the limit.
#[tokio::test]
async fn twenty_addresses_of_one_ipv6_64_share_one_limit() {
    let v = super::Vending::start(super::Options {
        trusted_proxies: Some("127.0.0.1".into()),
        order_rate_per_min: 10,
        ..super::Options::default()
    })
    .await;
    let login_from = |address: String, login: String| {
        let v = &v;
        async move {
            v.http
                .post(format!("{}/api/seller/login", v.url))
                .header("x-forwarded-for", address)
                .json(&json!({"login": login, "password": "not-the-password"}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let mut statuses = Vec::new();
    for i in 0..20 {
        // A new address of the same /64 and a new (unknown) login each time.
        statuses
            .push(login_from(format!("2001:db8:ab:cd::{:x}", i + 1), format!("nobody{i}")).await);
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(refused, 10, "{statuses:?}");
    // Another network is not held back by that one.
    assert_eq!(
        login_from("2001:db8:ab:ce::1".into(), "somebody".into()).await,
        StatusCode::UNAUTHORIZED
    );
    v.stop().await;
}

/// Finding 3, on the vending server (live, WeChat Pay API v3): `REFUND.ABNORMAL` made the
/// refund FAILED and the payment PAID again, and WeChat's later `REFUND.SUCCESS` was ignored.
/// Now the order shows the seller what to do, the seller resolves it, and SUCCESS ends it
/// REFUNDED with the money counted.
#[tokio::test]
async fn an_abnormal_refund_is_shown_to_the_seller_resolved_and_settled() {
    let gateway = start_gateway().await;
    let v = live_with(&gateway, wechat_v3_credentials_with_login(&gateway, false)).await;
    let seller = v.seller_login("operator", "operator-password-1").await;
    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let amount = order["amount"].as_u64().unwrap();

    let (status, answer) = v
        .seller_call(
            Some(&seller),
            "POST",
            &format!("/api/seller/orders/{no}/refund"),
            Some(json!({"amount": amount, "reason": "the can was dented"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let refund_no = answer["refund"]["out_refund_no"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(answer["refund"]["status"], "PENDING", "{answer}");

    // WeChat cannot deliver it: REFUND.ABNORMAL reaches /notify/wechat/refund.
    v.emulator(
        "/sandbox/refund-complete",
        json!({"out_refund_no": refund_no, "status": "ABNORMAL"}),
    )
    .await;
    let mut issues = serde_json::Value::Null;
    crate::support::eventually(10, "the order shows the abnormal refund", async || {
        let (_, listed) = v
            .seller_call(Some(&seller), "GET", "/api/seller/orders", None)
            .await;
        issues = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["order_no"] == no.as_str())
            .map(|o| o["refund_issues"].clone())
            .unwrap_or_default();
        issues.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(issues[0]["out_refund_no"], refund_no.as_str(), "{issues}");
    assert!(
        issues[0]["what_to_do"]
            .as_str()
            .unwrap()
            .contains("resolve"),
        "{issues}"
    );
    let payment_id = v.state.orders.get(&no).await.unwrap().payment_id.unwrap();
    let payments = v.state.orders.payments();
    let payment = payments
        .get(&aggregate_pay::PaymentId(payment_id.clone()))
        .await
        .unwrap();
    assert_eq!(
        payment.status,
        aggregate_pay::PaymentStatus::Refunding,
        "never PAID again while the money is out"
    );

    // Another seller cannot touch it; the owner sends it to the buyer's card.
    let (_, mallory) = v.new_seller(&[]).await;
    let resolve = format!("/api/seller/orders/{no}/refunds/{refund_no}/resolve");
    let card = json!({"to": "payer_bank_card", "bank_type": "ICBC_DEBIT",
                      "bank_account": "6222000011112222", "real_name": "张三"});
    let (status, _) = v
        .seller_call(Some(&mallory), "POST", &resolve, Some(card.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) = v
        .seller_call(Some(&seller), "POST", &resolve, Some(card))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, audit) = v
        .seller_call(Some(&seller), "GET", "/api/seller/audit", None)
        .await;
    assert!(
        !audit.to_string().contains("6222000011112222"),
        "the card is never recorded: {audit}"
    );

    // WeChat's SUCCESS now settles it.
    v.emulator(
        "/sandbox/refund-complete",
        json!({"out_refund_no": refund_no}),
    )
    .await;
    let done = v.wait_for(&no, "REFUNDED", 20).await;
    assert_eq!(done["refunded"], amount, "{done}");
    let payment = payments
        .get(&aggregate_pay::PaymentId(payment_id))
        .await
        .unwrap();
    assert_eq!(payment.refunded_amount.as_u64(), amount);
    crate::support::eventually(10, "the issue is cleared", async || {
        v.order_view(&no).await["refund_issues"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    v.stop().await;
    gateway.shutdown().await;
}
