//! `wechat-mp`'s client and inbound endpoint against the sandbox: tokens with WeChat's
//! invalidation rules (and the client's retry-once), OAuth and Mini Program codes, messages, QR
//! codes, menus, followers, and user events delivered to a real callback in plain and safe mode.

use std::time::Duration;

use wechat_mp::{
    Button, Client, Error, Menu, OAuthScope, QrLifetime, QrScene, Secret, TemplateMessage,
    TokenSource,
};

use crate::support::{
    MP_PLAIN, MP_SAFE, MP_SECRET, control, inspect, start_mp_callbacks, start_sandbox,
};

fn client(url: &str, app_id: &str) -> Client {
    Client::builder(app_id, Secret::new(MP_SECRET))
        .base_url(url)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tokens_follow_wechats_rules() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let http = reqwest::Client::new();
    let token = |secret: &'static str| {
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={MP_PLAIN}&secret={secret}",
            sandbox.base_url()
        );
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let bad = token("wrong").await;
    assert_eq!(bad["errcode"], 40125);
    let first = token(MP_SECRET).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = token(MP_SECRET).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    // The replaced token keeps working for five minutes.
    let menu_delete = |t: String| {
        let url = format!(
            "{}/cgi-bin/menu/delete?access_token={t}",
            sandbox.base_url()
        );
        let http = http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(menu_delete(first).await["errcode"], 0);
    assert_eq!(menu_delete("forged".into()).await["errcode"], 40001);

    // Stable tokens: repeated calls return the same token; a forced refresh replaces it at once,
    // which the client notices (40001) and recovers from by refreshing and retrying once.
    let stable = Client::builder(MP_PLAIN, Secret::new(MP_SECRET))
        .base_url(sandbox.base_url())
        .token_source(TokenSource::StableToken)
        .build()
        .unwrap();
    let t1 = stable.access_token().await.unwrap();
    let again = Client::builder(MP_PLAIN, Secret::new(MP_SECRET))
        .base_url(sandbox.base_url())
        .token_source(TokenSource::StableToken)
        .build()
        .unwrap();
    assert_eq!(
        again.access_token().await.unwrap(),
        t1,
        "stable_token is stable"
    );
    let forced: serde_json::Value = http
        .post(format!("{}/cgi-bin/stable_token", sandbox.base_url()))
        .json(&serde_json::json!({"grant_type": "client_credential", "appid": MP_PLAIN, "secret": MP_SECRET, "force_refresh": true}))
        .send().await.unwrap().json().await.unwrap();
    assert_ne!(forced["access_token"].as_str().unwrap(), t1.expose());
    assert_eq!(
        menu_delete(t1.expose().to_owned()).await["errcode"],
        40001,
        "the forced refresh invalidated it"
    );
    stable.delete_menu().await.unwrap();
    sandbox.shutdown().await;
}

#[tokio::test]
async fn oauth_and_mini_program_login() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = client(sandbox.base_url(), MP_PLAIN);
    let (_, minted) = control(
        &sandbox,
        "/sandbox/oauth-code",
        serde_json::json!({"app_id": MP_PLAIN, "open_id": "oUserA", "scope": "snsapi_userinfo"}),
    )
    .await;
    let code = minted["code"].as_str().unwrap();
    let token = c.oauth_exchange_code(code).await.unwrap();
    assert_eq!(token.openid, "oUserA");
    assert!(
        matches!(
            c.oauth_exchange_code(code).await,
            Err(Error::Api { errcode: 40163, .. })
        ),
        "a code works once"
    );
    assert!(matches!(
        c.oauth_exchange_code("made-up").await,
        Err(Error::Api { errcode: 40029, .. })
    ));
    let info = c.oauth_user_info(&token).await.unwrap();
    assert_eq!(info.openid, "oUserA");
    let refreshed = c.oauth_refresh(&token.refresh_token).await.unwrap();
    assert_eq!(refreshed.openid, "oUserA");
    // A base-scope token cannot read the profile.
    let (_, minted) = control(
        &sandbox,
        "/sandbox/oauth-code",
        serde_json::json!({"app_id": MP_PLAIN, "open_id": "oUserB"}),
    )
    .await;
    let base = c
        .oauth_exchange_code(minted["code"].as_str().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        c.oauth_user_info(&base).await,
        Err(Error::Api { errcode: 48001, .. })
    ));
    let url = c
        .oauth_authorize_url("https://shop.example/cb", OAuthScope::Base, "s1")
        .unwrap();
    assert!(url.ends_with("#wechat_redirect"));

    let (_, js) = control(
        &sandbox,
        "/sandbox/js-code",
        serde_json::json!({"app_id": MP_PLAIN, "open_id": "oMiniUser"}),
    )
    .await;
    let session = c
        .code_to_session(js["js_code"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(session.openid, "oMiniUser");
    assert_eq!(session.session_key.expose().len(), 24, "16 bytes of base64");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn messages_qr_codes_menus_and_followers() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = client(sandbox.base_url(), MP_PLAIN);
    let msgid = c
        .send_template(
            &TemplateMessage::new("oMerchant", "TPL_PAID")
                .field("amount", "3.50")
                .url("https://x"),
        )
        .await
        .unwrap();
    assert!(msgid > 0);
    c.send_custom_text("oMerchant", "hello").await.unwrap();
    assert!(matches!(
        c.send_template(&TemplateMessage::new("", "TPL")).await,
        Err(Error::Api { errcode: 40003, .. })
    ));
    let sent = inspect(&sandbox, &format!("/sandbox/messages?app_id={MP_PLAIN}")).await;
    let sent = sent.as_array().unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["kind"], "template");
    assert_eq!(sent[0]["body"]["data"]["amount"]["value"], "3.50");
    assert_eq!(sent[1]["body"]["text"]["content"], "hello");

    let qr = c
        .create_qrcode(QrLifetime::Temporary(3600), &QrScene::Str("bind-42".into()))
        .await
        .unwrap();
    assert_eq!(qr.expire_seconds, Some(3600));

    let menu = Menu {
        button: vec![Button::click("Help", "MENU_HELP")],
    };
    assert!(matches!(
        c.menu().await,
        Err(Error::Api { errcode: 46003, .. })
    ));
    c.create_menu(&menu).await.unwrap();
    assert_eq!(c.menu().await.unwrap(), menu);
    c.delete_menu().await.unwrap();

    // Scanning the binding QR code as a new user subscribes with the scene.
    let (status, outcome) = control(&sandbox, "/sandbox/mp-event", serde_json::json!({"app_id": MP_PLAIN, "open_id": "oMerchant", "event": "scan", "ticket": qr.ticket})).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["reply_content"], "welcome via bind-42");
    let user = c.user_info("oMerchant").await.unwrap();
    assert!(user.is_subscribed());
    assert_eq!(user.qr_scene_str, "bind-42");
    // Scanning again as a follower is a SCAN event.
    let (_, outcome) = control(&sandbox, "/sandbox/mp-event", serde_json::json!({"app_id": MP_PLAIN, "open_id": "oMerchant", "event": "scan", "ticket": qr.ticket})).await;
    assert_eq!(outcome["reply_content"], "scanned bind-42");
    control(
        &sandbox,
        "/sandbox/mp-event",
        serde_json::json!({"app_id": MP_PLAIN, "open_id": "oMerchant", "event": "unsubscribe"}),
    )
    .await;
    assert!(!c.user_info("oMerchant").await.unwrap().is_subscribed());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn events_reach_the_callback_in_plain_and_safe_mode() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    for app in [MP_PLAIN, MP_SAFE] {
        let (status, outcome) = control(&sandbox, "/sandbox/mp-event", serde_json::json!({"app_id": app, "open_id": "oTalker", "event": "text", "content": "hi"})).await;
        assert_eq!(status, 200, "{app}: {outcome}");
        assert_eq!(outcome["reply_type"], "text");
        assert_eq!(outcome["reply_content"], "hello from the app", "{app}");
        let (_, outcome) = control(
            &sandbox,
            "/sandbox/mp-event",
            serde_json::json!({"app_id": app, "open_id": "oTalker", "event": "subscribe"}),
        )
        .await;
        assert_eq!(outcome["reply_content"], "welcome");
        // Text the app has no rule for: no reply.
        let (_, outcome) = control(&sandbox, "/sandbox/mp-event", serde_json::json!({"app_id": app, "open_id": "oTalker", "event": "text", "content": "unknown"})).await;
        assert!(outcome["reply_xml"].is_null());
    }
    let (status, _) = control(&sandbox, "/sandbox/mp-event", serde_json::json!({"app_id": MP_PLAIN, "open_id": "o", "event": "scan", "ticket": "no-such-ticket"})).await;
    assert_eq!(status, 400);
    tokio::time::sleep(Duration::from_millis(1)).await;
    sandbox.shutdown().await;
}
