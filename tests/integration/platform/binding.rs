//! Binding a merchant's WeChat through a QR scene, simulated with the emulator's user actions;
//! template messages to the bound openid; keyword replies; unsubscribe clears the binding.

use merchant_client::{CreatePayment, Fen};
use serde_json::{Value, json};

use super::{MerchantEndpoint, Options, Platform, eventually};
use crate::support::control_at;

const EMULATOR_MP_APP: &str = "wxsandbox00000001";

async fn user_action(p: &Platform, action: Value) -> Value {
    let (status, body) = control_at(&p.emulator_url, "/sandbox/mp-event", &action).await;
    assert!((200..300).contains(&status), "{status} {body}");
    body
}

pub async fn messages_to(p: &Platform, open_id: &str) -> Vec<Value> {
    crate::support::messages_to(&p.emulator_url, open_id).await
}

/// Binds merchant `app_id`'s WeChat to `open_id` (the binding QR code scanned).
pub async fn bind(p: &Platform, app_id: &str, open_id: &str) {
    let (status, binding) = p
        .admin("POST", &format!("/admin/merchants/{app_id}/binding"), None)
        .await;
    assert_eq!(status, 200, "{binding}");
    let outcome = user_action(
        p,
        json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "scan", "ticket": binding["ticket"]}),
    )
    .await;
    assert!(
        outcome["reply_content"]
            .as_str()
            .unwrap_or_default()
            .contains("Bound to merchant"),
        "{outcome}"
    );
}

#[tokio::test]
async fn scanning_the_binding_code_binds_the_merchants_wechat() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;

    let (status, binding) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/binding", creds.app_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{binding}");
    let scene = binding["scene"].as_str().unwrap();
    assert!(
        binding["expires_in"].as_u64().unwrap() <= 600,
        "short-lived: {binding}"
    );
    let page = p
        .http
        .get(binding["bind_page"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<svg") && page.contains("Waiting for the scan"),
        "{page}"
    );
    let status_url = format!("{}/bind/{scene}/status", p.url);
    let bound = || async {
        p.http
            .get(&status_url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["bound"]
            == true
    };
    assert!(!bound().await);

    // A new follower scans: WeChat sends subscribe with the scene.
    let open_id = "o_shop_owner_0001";
    let outcome = user_action(&p, json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "scan", "ticket": binding["ticket"]})).await;
    assert!(
        outcome["reply_content"]
            .as_str()
            .unwrap()
            .contains("Bound to merchant Test Shop"),
        "{outcome}"
    );
    assert!(bound().await);
    let (_, merchant) = p
        .admin("GET", &format!("/admin/merchants/{}", creds.app_id), None)
        .await;
    assert_eq!(merchant["wechat_bound"], true);
    let done = p
        .http
        .get(format!("{}/bind/{scene}/done", p.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Your WeChat is bound"));
    eventually(5, "the onboarding template message", async || {
        messages_to(&p, open_id).await.iter().any(|m| {
            m["kind"] == "template" && m["body"].to_string().contains("Onboarding approved")
        })
    })
    .await;

    // A payment: the owner hears of it on WeChat.
    let client = p.client(&creds);
    let created = client
        .create_payment(&CreatePayment::new("bind-pay-1", Fen::new(880), "Juice").method("sandbox"))
        .await
        .unwrap();
    p.cashier_sandbox_pay(&created.payment_token).await;
    eventually(10, "the payment template message", async || {
        messages_to(&p, open_id).await.iter().any(|m| {
            let body = m["body"].to_string();
            body.contains("Payment received")
                && body.contains("bind-pay-1")
                && body.contains("8.80")
        })
    })
    .await;

    // Keyword replies from the configured list.
    let outcome = user_action(
        &p,
        json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "text", "content": "help"}),
    )
    .await;
    assert!(
        outcome["reply_content"]
            .as_str()
            .unwrap()
            .contains("binding QR code"),
        "{outcome}"
    );

    // Unfollowing clears the binding.
    user_action(
        &p,
        json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "unsubscribe"}),
    )
    .await;
    assert!(!bound().await);
    let (_, merchant) = p
        .admin("GET", &format!("/admin/merchants/{}", creds.app_id), None)
        .await;
    assert_eq!(merchant["wechat_bound"], false);
    p.stop().await;
}

/// Text no keyword matches goes to the chatbot; an answer within the timeout is the passive
/// reply, a slower one arrives later as a customer-service message.
#[tokio::test]
async fn other_text_goes_to_the_chatbot_with_a_deadline() {
    use axum::Json;
    use axum::routing::post;
    async fn bot(Json(q): Json<Value>) -> Json<Value> {
        let text = q["text"].as_str().unwrap_or_default().to_owned();
        if text.contains("slow") {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        }
        Json(json!({"reply": format!("bot: {text}")}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ask", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().route("/ask", post(bot)))
            .await
            .unwrap()
    });

    let p = Platform::start(Options {
        chatbot: Some((url, 500)),
        ..Options::default()
    })
    .await;
    let open_id = "o_curious_user_01";
    let quick = user_action(&p, json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "text", "content": "opening hours?"})).await;
    assert_eq!(quick["reply_content"], "bot: opening hours?");

    let slow = user_action(&p, json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "text", "content": "slow question"})).await;
    assert!(
        slow["reply_content"].is_null(),
        "answered empty at the deadline: {slow}"
    );
    eventually(10, "the late reply", async || {
        messages_to(&p, open_id)
            .await
            .iter()
            .any(|m| m["kind"] == "custom" && m["body"].to_string().contains("bot: slow question"))
    })
    .await;
    p.stop().await;
}

/// Issue 27, finding 10: a merchant's binding QR worked again for 30 days, and a second scan
/// silently replaced the bound WeChat — whoever saw the QR took over the merchant's payment
/// notices. Now a code binds once; a second scan is refused (and logged), and rebinding is the
/// admin issuing a new code.
#[tokio::test]
async fn a_binding_code_binds_once_and_a_second_scan_is_refused() {
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let creds = p.register(&endpoint.url).await;
    let (status, binding) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/binding", creds.app_id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{binding}");
    let scan = |open_id: &'static str, ticket: Value| {
        let p = &p;
        async move {
            user_action(
                p,
                json!({"app_id": EMULATOR_MP_APP, "open_id": open_id, "event": "scan", "ticket": ticket}),
            )
            .await["reply_content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    let bound_to = async || {
        p.state
            .db
            .merchant(&creds.app_id)
            .await
            .unwrap()
            .unwrap()
            .open_id
    };
    let reply = scan("o_owner", binding["ticket"].clone()).await;
    assert!(reply.contains("Bound to merchant"), "{reply}");
    assert_eq!(bound_to().await.as_deref(), Some("o_owner"));

    // Someone who saw the QR scans it too.
    let reply = scan("o_attacker", binding["ticket"].clone()).await;
    assert!(reply.contains("no longer valid"), "{reply}");
    assert_eq!(
        bound_to().await.as_deref(),
        Some("o_owner"),
        "the owner's WeChat stays bound"
    );

    // Rebinding is explicit: a new code from the admin; the old one stays dead.
    let (_, again) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/binding", creds.app_id),
            None,
        )
        .await;
    let reply = scan("o_attacker", binding["ticket"].clone()).await;
    assert!(reply.contains("no longer valid"), "{reply}");
    let reply = scan("o_new_phone", again["ticket"].clone()).await;
    assert!(reply.contains("Bound to merchant"), "{reply}");
    assert_eq!(bound_to().await.as_deref(), Some("o_new_phone"));

    // A code past its time binds nobody.
    let (_, late) = p
        .admin(
            "POST",
            &format!("/admin/merchants/{}/binding", creds.app_id),
            None,
        )
        .await;
    let merchant = p.state.db.merchant(&creds.app_id).await.unwrap().unwrap();
    let scene = merchant.bind_scene.unwrap();
    assert_eq!(
        p.state
            .db
            .bind(&scene, "o_late", examples::clock::unix_now() + 601)
            .await
            .unwrap()
            .err(),
        Some(examples::platform::db::BindRefused::Expired)
    );
    drop(late);
    assert_eq!(bound_to().await.as_deref(), Some("o_new_phone"));
    p.stop().await;
}
