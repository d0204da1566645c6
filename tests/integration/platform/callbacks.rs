//! Merchant callbacks: exactly once per event despite duplicate channel notifications, retried
//! until the merchant answers, dead-lettered when it never does, redelivered from the admin API.

use std::sync::Arc;

use aggregate_pay::Fen;
use merchant_client::{Callbacks, CreatePayment, Handled, MemoryHandledEvents, Secret};
use serde_json::Value;
use wechat_pay::test_util::TestSigner;

use super::{MerchantEndpoint, Options, Platform, eventually};

/// A payment paid with duplicate notifications — the sandbox cashier's button pressed three
/// times, and the same signed WeChat notification POSTed five times, three of them at once —
/// gives the merchant exactly one `payment.succeeded` each.
pub async fn exactly_one_callback(p: &Platform) {
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);

    let sandbox = client
        .create_payment(&CreatePayment::new("dup-1", Fen::new(990), "Tea").method("sandbox"))
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            p.cashier_sandbox_pay(&sandbox.payment_token).await["status"],
            "PAID"
        );
    }

    client
        .create_payment(
            &CreatePayment::new("dup-2", Fen::new(1500), "Coffee").method("wechat_native"),
        )
        .await
        .unwrap();
    let platform_no = p.platform_no(&creds.app_id, "dup-2").await;
    let (app_id, mch_id, key) = p.wechat_merchant.clone();
    let notification =
        TestSigner::new(app_id, mch_id, key).payment_notification(&platform_no, Fen::new(1500));
    let post = || async {
        let r = p
            .http
            .post(format!("{}/notify/wechat", p.url))
            .body(notification.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ack = r.text().await.unwrap();
        assert!(ack.contains("SUCCESS"), "{ack}");
    };
    tokio::join!(post(), post(), post());
    post().await;
    post().await;

    eventually(15, "both payments' callbacks", async || {
        endpoint.accepted("payment.succeeded").len() >= 2
    })
    .await;
    // Give duplicates every chance to show up.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let succeeded = endpoint.accepted("payment.succeeded");
    let mut numbers: Vec<&str> = succeeded
        .iter()
        .map(|e| e["data"]["out_trade_no"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        ["dup-1", "dup-2"],
        "exactly one callback per payment"
    );
    assert_eq!(client.get_payment("dup-2").await.unwrap().status, "PAID");
}

/// Refused three times, delivered on the fourth attempt; the merchant sees it once after
/// deduplicating by event id.
pub async fn delivered_on_the_fourth_attempt(p: &Platform) {
    let endpoint = MerchantEndpoint::start().await;
    endpoint.refuse_first(3);
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);
    let created = client
        .create_payment(&CreatePayment::new("retry-1", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&created.payment_token).await;

    eventually(20, "the fourth attempt", async || {
        endpoint.accepted("payment.succeeded").len() == 1
    })
    .await;
    let attempts = endpoint.deliveries();
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    assert_eq!(attempts.iter().filter(|d| !d.accepted).count(), 3);
    // Every attempt carries the same event id, so the merchant can dedupe.
    let ids: Vec<String> = attempts
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(&d.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let verifier = Callbacks::new(
        Secret::new(creds.secret.clone()),
        Arc::new(MemoryHandledEvents::new()),
    );
    let last = attempts.last().unwrap();
    let handle = || async {
        verifier
            .handle(&last.signature, last.body.as_bytes(), |_| async {
                Ok::<_, String>(())
            })
            .await
            .unwrap()
    };
    assert_eq!(handle().await, Handled::Done);
    assert_eq!(handle().await, Handled::Duplicate, "a duplicate is dropped");
}

/// A merchant that is always down: the callback goes to the dead letters with its last error;
/// once the merchant is back, the admin redelivers it.
pub async fn dead_letter_then_redeliver(p: &Platform) {
    let endpoint = MerchantEndpoint::start().await;
    endpoint.set_down(true);
    let creds = p.register(&endpoint.url).await;
    let client = p.client(&creds);
    let created = client
        .create_payment(&CreatePayment::new("dead-1", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&created.payment_token).await;

    let dead = p.dead_letter(Some("payment.succeeded")).await;
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("500"),
        "{dead}"
    );
    let refused = endpoint.deliveries().len();
    assert!(refused >= 2, "{refused} attempts");

    endpoint.set_down(false);
    let id = dead["id"].as_str().unwrap();
    let (status, _) = p
        .admin("POST", &format!("/admin/dead-letters/{id}/redeliver"), None)
        .await;
    assert_eq!(status, 200);
    eventually(20, "the redelivery", async || {
        endpoint.accepted("payment.succeeded").len() == 1
    })
    .await;
    let (_, list) = p.admin("GET", "/admin/dead-letters", None).await;
    assert!(
        !list.as_array().unwrap().iter().any(|e| e["id"] == id),
        "no longer dead"
    );
    let (status, _) = p
        .admin("POST", "/admin/dead-letters/no-such-id/redeliver", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn duplicate_channel_notifications_give_exactly_one_callback() {
    let p = Platform::start(Options::default()).await;
    exactly_one_callback(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn a_callback_refused_three_times_is_delivered_on_the_fourth() {
    let p = Platform::start(Options::default()).await;
    delivered_on_the_fourth_attempt(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn a_callback_that_never_gets_through_is_dead_lettered_and_redelivered() {
    let p = Platform::start(Options {
        max_attempts: 2,
        ..Options::default()
    })
    .await;
    dead_letter_then_redeliver(&p).await;
    p.stop().await;
}

/// A merchant whose endpoint hangs (never answers) does not hold up another merchant's
/// callbacks: those arrive within a second while the first one's keep timing out.
#[tokio::test]
async fn a_hanging_merchant_does_not_hold_up_another() {
    let p = Platform::start(Options {
        callback_timeout_secs: 3,
        ..Options::default()
    })
    .await;
    let hanging = hanging_endpoint().await;
    let slow = p.register(&hanging).await;
    let slow_client = p.client(&slow);
    for i in 0..12 {
        let created = slow_client
            .create_payment(
                &CreatePayment::new(format!("hang-{i}"), Fen::new(100), "Gum").method("sandbox"),
            )
            .await
            .unwrap();
        p.cashier_sandbox_pay(&created.payment_token).await;
    }
    let endpoint = MerchantEndpoint::start().await;
    let fast = p.client(&p.register(&endpoint.url).await);
    let created = fast
        .create_payment(&CreatePayment::new("fast-1", Fen::new(100), "Gum").method("sandbox"))
        .await
        .unwrap();
    let paid_at = std::time::Instant::now();
    p.cashier_sandbox_pay(&created.payment_token).await;
    eventually(10, "the other merchant's callback", async || {
        endpoint.accepted("payment.succeeded").len() == 1
    })
    .await;
    let took = paid_at.elapsed();
    assert!(
        took < std::time::Duration::from_secs(1),
        "the callback took {took:?} behind a hanging merchant"
    );
    p.stop().await;
}

/// A notify URL that accepts connections and never answers.
async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callbacks", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

/// The merchant's "payment received" WeChat message is its own outbox consumer: sent once
/// although the HTTP callback keeps failing (and the message's first send fails too), and not
/// again when the dead callback is redelivered.
#[tokio::test]
async fn the_payment_message_is_sent_once_whatever_the_callback_does() {
    let p = Platform::start(Options {
        max_attempts: 3,
        ..Options::default()
    })
    .await;
    let endpoint = MerchantEndpoint::start().await;
    endpoint.set_down(true);
    let creds = p.register(&endpoint.url).await;
    let open_id = "o_msg_owner_0001";
    super::binding::bind(&p, &creds.app_id, open_id).await;
    // WeChat refuses the first send (a rate limit).
    let (status, _) = crate::support::control_at(
        &p.emulator_url,
        "/sandbox/faults",
        &serde_json::json!({"api": "template/send", "code": "45009"}),
    )
    .await;
    assert_eq!(status, 204);
    let created = p
        .client(&creds)
        .create_payment(&CreatePayment::new("msg-1", Fen::new(640), "Tea").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&created.payment_token).await;
    let received = || async {
        super::binding::messages_to(&p, open_id)
            .await
            .iter()
            .filter(|m| {
                let body = m["body"].to_string();
                body.contains("Payment received") && body.contains("msg-1")
            })
            .count()
    };
    eventually(15, "the payment message", async || received().await == 1).await;
    // The callback dies; redelivered, it still does not send the message again.
    let dead = p.dead_letter(Some("payment.succeeded")).await;
    endpoint.set_down(false);
    let (status, _) = p
        .admin(
            "POST",
            &format!(
                "/admin/dead-letters/{}/redeliver",
                dead["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    eventually(20, "the redelivered callback", async || {
        endpoint.accepted("payment.succeeded").len() == 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(received().await, 1, "one message per payment");
    p.stop().await;
}
