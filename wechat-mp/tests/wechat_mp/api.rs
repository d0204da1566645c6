//! Every API call: the request WeChat expects, the typed reply, and `errcode` errors.

use wechat_mp::{
    Button, Error, Menu, MiniProgramState, OAuthScope, QrLifetime, QrScene, Secret,
    SubscribeMessage, TemplateMessage,
};
use wiremock::matchers::{body_json, body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{APP_ID, APP_SECRET, client, json, mount_token};

#[tokio::test]
async fn token_errors_are_typed() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(json(
            serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"}),
        ))
        .mount(&server)
        .await;
    match client(&server).access_token().await {
        Err(Error::Api { errcode, errmsg }) => {
            assert_eq!(errcode, 40125);
            assert_eq!(errmsg, "invalid appsecret");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retries_once_after_an_expired_token() {
    for errcode in [40001, 40014, 42001] {
        let server = MockServer::start().await;
        // First token: rejected by the API; second: accepted.
        Mock::given(path("/cgi-bin/token"))
            .respond_with(json(
                serde_json::json!({"access_token": "OLD", "expires_in": 7200}),
            ))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/cgi-bin/token"))
            .respond_with(json(
                serde_json::json!({"access_token": "NEW", "expires_in": 7200}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/cgi-bin/user/info"))
            .and(query_param("access_token", "OLD"))
            .respond_with(json(
                serde_json::json!({"errcode": errcode, "errmsg": "expired"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/cgi-bin/user/info"))
            .and(query_param("access_token", "NEW"))
            .and(query_param("openid", "o1"))
            .respond_with(json(
                serde_json::json!({"subscribe": 1, "openid": "o1", "subscribe_time": 1700000000}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let user = client(&server).user_info("o1").await.unwrap();
        assert!(user.is_subscribed());
    }
}

#[tokio::test]
async fn retries_only_once() {
    let server = MockServer::start().await;
    Mock::given(path("/cgi-bin/token"))
        .respond_with(json(
            serde_json::json!({"access_token": "T", "expires_in": 7200}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/user/info"))
        .respond_with(json(
            serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}),
        ))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server).user_info("o1").await.unwrap_err();
    assert!(err.is_token_error(), "{err:?}");
}

#[tokio::test]
async fn other_errcodes_are_not_retried() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    Mock::given(path("/cgi-bin/user/info"))
        .respond_with(json(
            serde_json::json!({"errcode": 40003, "errmsg": "invalid openid"}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).user_info("bad").await,
        Err(Error::Api { errcode: 40003, .. })
    ));
}

#[tokio::test]
async fn oauth_flow() {
    let server = MockServer::start().await;
    let c = client(&server);
    let url = c
        .oauth_authorize_url(
            "https://shop.example/cb?a=1&b=2",
            OAuthScope::UserInfo,
            "st4te",
        )
        .unwrap();
    assert_eq!(
        url,
        format!(
            "https://open.example/connect/oauth2/authorize?appid={APP_ID}\
             &redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Fa%3D1%26b%3D2\
             &response_type=code&scope=snsapi_userinfo&state=st4te#wechat_redirect"
        )
    );
    assert!(
        c.oauth_authorize_url("https://x.example", OAuthScope::Base, "no spaces")
            .is_err()
    );
    assert!(
        c.oauth_authorize_url("not a url", OAuthScope::Base, "s")
            .is_err()
    );

    Mock::given(method("GET"))
        .and(path("/sns/oauth2/access_token"))
        .and(query_param("appid", APP_ID))
        .and(query_param("secret", APP_SECRET))
        .and(query_param("code", "CODE"))
        .and(query_param("grant_type", "authorization_code"))
        .respond_with(json(serde_json::json!({
            "access_token": "WEB", "expires_in": 7200, "refresh_token": "R",
            "openid": "o1", "scope": "snsapi_userinfo", "unionid": "u1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let token = c.oauth_exchange_code("CODE").await.unwrap();
    assert_eq!(token.openid, "o1");
    assert_eq!(token.unionid.as_deref(), Some("u1"));
    assert_eq!(token.refresh_token.expose(), "R");

    Mock::given(path("/sns/oauth2/refresh_token"))
        .and(query_param("refresh_token", "R"))
        .and(query_param("grant_type", "refresh_token"))
        .respond_with(json(serde_json::json!({
            "access_token": "WEB2", "expires_in": 7200, "refresh_token": "R",
            "openid": "o1", "scope": "snsapi_userinfo"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let refreshed = c.oauth_refresh(&token.refresh_token).await.unwrap();
    assert_eq!(refreshed.access_token.expose(), "WEB2");

    Mock::given(path("/sns/userinfo"))
        .and(query_param("access_token", "WEB2"))
        .and(query_param("openid", "o1"))
        .respond_with(json(serde_json::json!({
            "openid": "o1", "nickname": "小明", "sex": 0, "province": "", "city": "",
            "country": "", "headimgurl": "https://img", "privilege": []
        })))
        .expect(1)
        .mount(&server)
        .await;
    let info = c.oauth_user_info(&refreshed).await.unwrap();
    assert_eq!(info.nickname, "小明");

    // A used code.
    server.reset().await;
    Mock::given(path("/sns/oauth2/access_token"))
        .respond_with(json(
            serde_json::json!({"errcode": 40163, "errmsg": "code been used"}),
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        c.oauth_exchange_code("CODE").await,
        Err(Error::Api { errcode: 40163, .. })
    ));
}

#[tokio::test]
async fn mini_program_login() {
    let server = MockServer::start().await;
    Mock::given(path("/sns/jscode2session"))
        .and(query_param("appid", APP_ID))
        .and(query_param("secret", APP_SECRET))
        .and(query_param("js_code", "JS"))
        .and(query_param("grant_type", "authorization_code"))
        .respond_with(json(serde_json::json!({
            "openid": "o1", "session_key": "tiihtNczf5v6AKRyjwEUhQ==", "unionid": "u1"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let s = client(&server).code_to_session("JS").await.unwrap();
    assert_eq!(s.openid, "o1");
    assert!(!format!("{s:?}").contains("tiihtNczf5v6AKRyjwEUhQ"));

    server.reset().await;
    Mock::given(path("/sns/jscode2session"))
        .respond_with(json(
            serde_json::json!({"errcode": 40029, "errmsg": "invalid code"}),
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).code_to_session("JS").await,
        Err(Error::Api { errcode: 40029, .. })
    ));
}

#[tokio::test]
async fn template_subscribe_and_custom_messages() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/template/send"))
        .and(query_param("access_token", "T"))
        .and(body_json(serde_json::json!({
            "touser": "o1",
            "template_id": "TPL",
            "url": "https://shop.example/o/1",
            "data": {"first": {"value": "paid"}, "amount": {"value": "3.50", "color": "#173177"}}
        })))
        .respond_with(json(
            serde_json::json!({"errcode": 0, "errmsg": "ok", "msgid": 200228332}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/subscribe/send"))
        .and(body_partial_json(serde_json::json!({
            "touser": "o1", "template_id": "SUB", "page": "pages/order",
            "miniprogram_state": "formal", "data": {"thing1": {"value": "Cola"}}
        })))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/custom/send"))
        .and(body_json(
            serde_json::json!({"touser": "o1", "msgtype": "text", "text": {"content": "hi"}}),
        ))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let msgid = c
        .send_template(
            &TemplateMessage::new("o1", "TPL")
                .url("https://shop.example/o/1")
                .field("first", "paid")
                .field_colored("amount", "3.50", "#173177"),
        )
        .await
        .unwrap();
    assert_eq!(msgid, 200228332);
    c.send_subscribe(
        &SubscribeMessage::new("o1", "SUB")
            .page("pages/order")
            .state(MiniProgramState::Formal)
            .field("thing1", "Cola"),
    )
    .await
    .unwrap();
    c.send_custom_text("o1", "hi").await.unwrap();
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/custom/send"))
        .and(body_json(
            serde_json::json!({"touser": "o1", "msgtype": "image", "image": {"media_id": "MEDIA"}}),
        ))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    c.send_custom_image("o1", "MEDIA").await.unwrap();

    // A user who blocked the account.
    server.reset().await;
    mount_token(&server, "T", 0).await;
    Mock::given(path("/cgi-bin/message/template/send"))
        .respond_with(json(
            serde_json::json!({"errcode": 43101, "errmsg": "user refuse to accept the msg"}),
        ))
        .mount(&server)
        .await;
    assert!(matches!(
        c.send_template(&TemplateMessage::new("o1", "TPL")).await,
        Err(Error::Api { errcode: 43101, .. })
    ));
}

#[tokio::test]
async fn qr_codes() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    let c = client(&server);
    for (body, lifetime, scene) in [
        (
            serde_json::json!({"expire_seconds": 2592000, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "bind-42"}}}),
            QrLifetime::Temporary(2_592_000),
            QrScene::Str("bind-42".into()),
        ),
        (
            serde_json::json!({"expire_seconds": 60, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 42}}}),
            QrLifetime::Temporary(60),
            QrScene::Id(42),
        ),
        (
            serde_json::json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 7}}}),
            QrLifetime::Permanent,
            QrScene::Id(7),
        ),
        (
            serde_json::json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "shop"}}}),
            QrLifetime::Permanent,
            QrScene::Str("shop".into()),
        ),
    ] {
        Mock::given(method("POST"))
            .and(path("/cgi-bin/qrcode/create"))
            .and(body_json(body))
            .respond_with(json(serde_json::json!({
                "ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw==",
                "expire_seconds": 60, "url": "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"
            })))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        let t = c.create_qrcode(lifetime, &scene).await.unwrap();
        assert_eq!(t.url, "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI");
        assert_eq!(
            c.qrcode_image_url(&t.ticket),
            "https://mp.example/cgi-bin/showqrcode?ticket=gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw%3D%3D"
        );
    }
    // Limits are checked before sending.
    for (lifetime, scene) in [
        (QrLifetime::Temporary(2_592_001), QrScene::Id(1)),
        (QrLifetime::Temporary(0), QrScene::Id(1)),
        (QrLifetime::Permanent, QrScene::Id(100_001)),
        (QrLifetime::Permanent, QrScene::Str(String::new())),
        (QrLifetime::Permanent, QrScene::Str("x".repeat(65))),
    ] {
        assert!(matches!(
            c.create_qrcode(lifetime, &scene).await,
            Err(Error::Config(_))
        ));
    }
}

#[tokio::test]
async fn menus() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    let menu = Menu {
        button: vec![
            Button::click("Help", "MENU_HELP"),
            Button::parent(
                "Shop",
                vec![
                    Button::view("Orders", "https://shop.example/orders"),
                    Button::mini_program("Mini", "wxmini", "pages/index", "https://shop.example"),
                ],
            ),
        ],
    };
    Mock::given(method("POST"))
        .and(path("/cgi-bin/menu/create"))
        .and(body_json(serde_json::to_value(&menu).unwrap()))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/menu/get"))
        .respond_with(json(
            serde_json::json!({"menu": serde_json::to_value(&menu).unwrap()}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cgi-bin/menu/delete"))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    c.create_menu(&menu).await.unwrap();
    assert_eq!(c.menu().await.unwrap(), menu);
    c.delete_menu().await.unwrap();
    // Invalid menus never reach WeChat.
    assert!(matches!(
        c.create_menu(&Menu::default()).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn user_info() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    Mock::given(path("/cgi-bin/user/info"))
        .and(query_param("access_token", "T"))
        .and(query_param("openid", "o1"))
        .and(query_param("lang", "zh_CN"))
        .respond_with(json(serde_json::json!({
            "subscribe": 1, "openid": "o1", "language": "zh_CN", "subscribe_time": 1382694957,
            "unionid": "u1", "remark": "", "groupid": 0, "tagid_list": [128, 2],
            "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 98765, "qr_scene_str": ""
        })))
        .mount(&server)
        .await;
    let u = client(&server).user_info("o1").await.unwrap();
    assert_eq!(u.tagid_list, vec![128, 2]);
    assert_eq!(u.subscribe_scene, "ADD_SCENE_QR_CODE");
}

#[tokio::test]
async fn malformed_replies_and_http_errors() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    Mock::given(path("/cgi-bin/user/info"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>gateway</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/cgi-bin/user/info"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let c = client(&server);
    assert!(matches!(c.user_info("o1").await, Err(Error::Decode { .. })));
    assert!(matches!(
        c.user_info("o1").await,
        Err(Error::HttpStatus { status: 502 })
    ));
}

#[tokio::test]
async fn secrets_stay_out_of_errors_and_debug() {
    // Nobody listens on port 9: the transport error must not carry the URL (with the secret).
    let c = wechat_mp::Client::builder(APP_ID, Secret::new(APP_SECRET))
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = c.access_token().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    let text = format!("{err} {err:?}");
    assert!(!text.contains(APP_SECRET), "{text}");
    assert!(!format!("{c:?}").contains(APP_SECRET));
    let builder = wechat_mp::Client::builder(APP_ID, Secret::new(APP_SECRET));
    assert!(!format!("{builder:?}").contains(APP_SECRET));
}
