//! The inbound endpoint: every message kind from real-format XML, safe mode, the router's
//! precedence, dedupe, late replies, and every way a request can be bad.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wechat_mp::message::{
    AesKey, Callback, CallbackQuery, Event, EventKind, IncomingMessage, MessageBody, MsgType,
    Reply, Router, UrlCheck, signature,
};
use wechat_mp::{Error, Secret};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer};

use crate::support::{APP_ID, client, json, mount_token};

const TOKEN: &str = "callback-token";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOW: i64 = 1_700_000_000;

fn plain_query(ts: i64) -> CallbackQuery {
    let ts = ts.to_string();
    CallbackQuery {
        signature: signature::sign(&[TOKEN, &ts, "nonce1"]),
        timestamp: ts,
        nonce: "nonce1".into(),
        openid: Some("oUser".into()),
        encrypt_type: None,
        msg_signature: None,
    }
}

fn msg(kind_fields: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName>\
         <FromUserName><![CDATA[oUser]]></FromUserName>\
         <CreateTime>{NOW}</CreateTime>{kind_fields}</xml>"
    )
}

/// A callback whose fallback records every message it sees and answers "seen" — in compatible
/// mode (plaintext and encrypted both, as while switching to safe mode).
fn recording() -> (Callback, Arc<Mutex<Vec<IncomingMessage>>>) {
    recording_in(true)
}

fn recording_in(compatible: bool) -> (Callback, Arc<Mutex<Vec<IncomingMessage>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let router = Router::new().fallback(move |m: IncomingMessage| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(m);
            Reply::text("seen")
        }
    });
    let mut builder = Callback::builder(APP_ID, Secret::new(TOKEN))
        .encoding_aes_key(Secret::new(AES_KEY))
        .router(router);
    if compatible {
        builder = builder.compatible_mode();
    }
    let cb = builder.build().unwrap();
    (cb, seen)
}

/// Issue 27, finding 9: with the EncodingAESKey set, plaintext callbacks were still accepted;
/// their signature covers no body, so one `(timestamp, nonce, signature)` from any access log
/// forged any event for five minutes (a forged SCAN bound an attacker's openid to a merchant).
/// In safe mode (the default with a key) the same forgery is refused; encrypted ones pass.
#[tokio::test]
async fn safe_mode_refuses_plaintext_so_a_seen_signature_forges_nothing() {
    let (cb, seen) = recording_in(false);
    assert_eq!(cb.mode(), wechat_mp::message::MessageMode::Safe);
    // A signature triple as it appears in any access log, over a body of the attacker's choice.
    let forged = msg(
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event>\
         <EventKey><![CDATA[bind_merchant_42]]></EventKey>",
    )
    .replace("[oUser]", "[oForgedPlain]");
    let e = cb
        .handle_at(&plain_query(NOW), forged.as_bytes(), NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unencrypted), "{e:?}");
    assert!(seen.lock().unwrap().is_empty(), "no handler ran");
    // The same event encrypted and signed over its ciphertext, as WeChat sends it: accepted.
    let (query, body) = encrypted_request(&forged, APP_ID, false);
    cb.handle_at(&query, body.as_bytes(), NOW).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Compatible mode needs asking for, and a key.
    assert!(
        Callback::builder(APP_ID, Secret::new(TOKEN))
            .compatible_mode()
            .build()
            .is_err()
    );
}

type BodyCheck = Box<dyn Fn(&MessageBody) -> bool>;

#[tokio::test]
async fn decodes_every_message_kind() {
    let cases: Vec<(&str, BodyCheck)> = vec![
        (
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>",
            Box::new(
                |b| matches!(b, MessageBody::Text { content, msg_id } if content == "this is a test" && msg_id.as_deref() == Some("1234567890123456")),
            ),
        ),
        (
            "<MsgType><![CDATA[image]]></MsgType><PicUrl><![CDATA[http://img/1.jpg]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>2</MsgId>",
            Box::new(
                |b| matches!(b, MessageBody::Image { pic_url, .. } if pic_url == "http://img/1.jpg"),
            ),
        ),
        (
            "<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>3</MsgId>",
            Box::new(
                |b| matches!(b, MessageBody::Voice { format, recognition: Some(r), .. } if format == "amr" && r == "腾讯微信团队"),
            ),
        ),
        (
            "<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>4</MsgId>",
            Box::new(
                |b| matches!(b, MessageBody::Video { short: false, thumb_media_id, .. } if thumb_media_id == "t"),
            ),
        ),
        (
            "<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[m]]></MediaId><ThumbMediaId><![CDATA[t]]></ThumbMediaId><MsgId>5</MsgId>",
            Box::new(|b| matches!(b, MessageBody::Video { short: true, .. })),
        ),
        (
            "<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>6</MsgId>",
            Box::new(
                |b| matches!(b, MessageBody::Location { latitude, longitude, scale: Some(20), .. } if (*latitude - 23.134521).abs() < 1e-9 && (*longitude - 113.358803).abs() < 1e-9),
            ),
        ),
        (
            "<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[url]]></Url><MsgId>7</MsgId>",
            Box::new(|b| matches!(b, MessageBody::Link { url, .. } if url == "url")),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>",
            Box::new(|b| matches!(b, MessageBody::Event(Event::Subscribe { scene: None, .. }))),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::Subscribe { scene: Some(s), ticket: Some(t) }) if s == "123123" && t == "TICKET"),
            ),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::Scan { scene, .. }) if scene == "123123"),
            ),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[unsubscribe]]></Event>",
            Box::new(|b| matches!(b, MessageBody::Event(Event::Unsubscribe))),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::Click { key }) if key == "EVENTKEY"),
            ),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey><MenuId>3</MenuId>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::View { url, menu_id: Some(m) }) if url == "www.qq.com" && m == "3"),
            ),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
            Box::new(|b| {
                matches!(
                    b,
                    MessageBody::Event(Event::Location {
                        precision: Some(_),
                        ..
                    })
                )
            }),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::TemplateSendJobFinish { msg_id, status }) if msg_id == "200163836" && status == "success"),
            ),
        ),
        (
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event><EventKey><![CDATA[rselfmenu_0_1]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo>",
            Box::new(
                |b| matches!(b, MessageBody::Event(Event::Unknown { event, key: Some(k) }) if event == "scancode_push" && k == "rselfmenu_0_1"),
            ),
        ),
        (
            "<MsgType><![CDATA[miniprogrampage]]></MsgType><Title><![CDATA[t]]></Title>",
            Box::new(
                |b| matches!(b, MessageBody::Unknown { msg_type } if msg_type == "miniprogrampage"),
            ),
        ),
    ];
    for (fields, check) in &cases {
        let m = IncomingMessage::from_xml(msg(fields).as_bytes()).unwrap();
        assert_eq!(m.from_user, "oUser");
        assert_eq!(m.create_time, NOW);
        assert!(check(&m.body), "{fields}: decoded as {:?}", m.body);
    }
    // The same through the whole endpoint.
    let (cb, seen) = recording();
    for (i, (fields, _)) in cases.iter().enumerate() {
        let body = msg(fields).replace(
            &format!("<CreateTime>{NOW}"),
            &format!("<CreateTime>{}", NOW + i as i64),
        );
        cb.handle_at(&plain_query(NOW), body.as_bytes(), NOW)
            .await
            .unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), cases.len());
}

#[tokio::test]
async fn replies_in_plain_mode() {
    let (cb, _) = recording();
    let body =
        msg("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1</MsgId>");
    let reply = cb
        .handle_at(&plain_query(NOW), body.as_bytes(), NOW)
        .await
        .unwrap();
    let decoded = IncomingMessage::from_xml(reply.as_bytes()).unwrap();
    assert_eq!(
        decoded.to_user, "oUser",
        "the reply goes back to the sender"
    );
    assert_eq!(decoded.from_user, "gh_account");
    assert_eq!(decoded.text(), Some("seen"));
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).unwrap() + open.len();
    let end = s[start..].find(close).unwrap() + start;
    &s[start..end]
}

fn encrypted_request(inner: &str, app_id: &str, tamper: bool) -> (CallbackQuery, String) {
    let key = AesKey::from_encoding_aes_key(&Secret::new(AES_KEY)).unwrap();
    let encrypt = key.encrypt(inner, app_id).unwrap();
    let ts = NOW.to_string();
    let msg_signature = signature::sign(&[TOKEN, &ts, "nonce2", &encrypt]);
    let sent = if tamper {
        let mut bytes = encrypt.into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    } else {
        encrypt
    };
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[{sent}]]></Encrypt></xml>"
    );
    let query = CallbackQuery {
        signature: signature::sign(&[TOKEN, &ts, "nonce2"]),
        timestamp: ts,
        nonce: "nonce2".into(),
        openid: Some("oUser".into()),
        encrypt_type: Some("aes".into()),
        msg_signature: Some(msg_signature),
    };
    (query, body)
}

#[tokio::test]
async fn safe_mode_round_trip() {
    let (cb, seen) = recording();
    let inner = msg(
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[secret hello]]></Content><MsgId>9</MsgId>",
    );
    let (query, body) = encrypted_request(&inner, APP_ID, false);
    let reply = cb.handle_at(&query, body.as_bytes(), NOW).await.unwrap();
    assert_eq!(seen.lock().unwrap()[0].text(), Some("secret hello"));

    // The reply is encrypted and signed the way WeChat checks it.
    let encrypt = between(&reply, "<Encrypt><![CDATA[", "]]></Encrypt>");
    let msg_signature = between(&reply, "<MsgSignature><![CDATA[", "]]></MsgSignature>");
    let ts = between(&reply, "<TimeStamp>", "</TimeStamp>");
    let nonce = between(&reply, "<Nonce><![CDATA[", "]]></Nonce>");
    signature::verify(&[TOKEN, ts, nonce, encrypt], msg_signature).unwrap();
    let key = AesKey::from_encoding_aes_key(&Secret::new(AES_KEY)).unwrap();
    let plain = key.decrypt(encrypt, APP_ID).unwrap();
    assert_eq!(
        IncomingMessage::from_xml(plain.as_bytes()).unwrap().text(),
        Some("seen")
    );
    assert!(
        !reply.contains("seen"),
        "the reply must not travel in clear"
    );
}

#[tokio::test]
async fn safe_mode_detects_tampering() {
    let (cb, seen) = recording();
    let inner =
        msg("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[x]]></Content><MsgId>10</MsgId>");
    let (query, body) = encrypted_request(&inner, APP_ID, true);
    assert!(matches!(
        cb.handle_at(&query, body.as_bytes(), NOW).await,
        Err(Error::Signature)
    ));
    // Correctly signed, but encrypted for another app.
    let (query, body) = encrypted_request(&inner, "wxANOTHERAPP", false);
    assert!(matches!(
        cb.handle_at(&query, body.as_bytes(), NOW).await,
        Err(Error::Crypto(_))
    ));
    // A wrong msg_signature.
    let (mut query, body) = encrypted_request(&inner, APP_ID, false);
    query.msg_signature = Some("0".repeat(40));
    assert!(matches!(
        cb.handle_at(&query, body.as_bytes(), NOW).await,
        Err(Error::Signature)
    ));
    assert!(seen.lock().unwrap().is_empty(), "no handler ran");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let (cb, seen) = recording();
    let good =
        msg("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[x]]></Content><MsgId>11</MsgId>");

    let mut wrong = plain_query(NOW);
    wrong.signature = signature::sign(&["another-token", &NOW.to_string(), "nonce1"]);
    assert!(matches!(
        cb.handle_at(&wrong, good.as_bytes(), NOW).await,
        Err(Error::Signature)
    ));

    for skew in [-301, 301, -86_400] {
        assert!(matches!(
            cb.handle_at(&plain_query(NOW + skew), good.as_bytes(), NOW)
                .await,
            Err(Error::StaleTimestamp { .. })
        ));
    }
    let mut not_a_number = plain_query(NOW);
    not_a_number.timestamp = "soon".into();
    assert!(matches!(
        cb.handle_at(&not_a_number, good.as_bytes(), NOW).await,
        Err(Error::Decode { .. })
    ));

    for body in [
        "<xml><ToUserName>a</ToUserName>",
        "not xml",
        "<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><Content>&x;</Content></xml>",
        "<xml><ToUserName>a</ToUserName><ToUserName>b</ToUserName></xml>",
    ] {
        assert!(
            matches!(
                cb.handle_at(&plain_query(NOW), body.as_bytes(), NOW).await,
                Err(Error::Decode { .. })
            ),
            "{body}"
        );
    }
    // Missing required fields.
    let no_type = msg("<Content>x</Content>");
    assert!(matches!(
        cb.handle_at(&plain_query(NOW), no_type.as_bytes(), NOW)
            .await,
        Err(Error::Decode { .. })
    ));
    let bad_location =
        msg("<MsgType>location</MsgType><Location_X>north</Location_X><Location_Y>1</Location_Y>");
    assert!(matches!(
        cb.handle_at(&plain_query(NOW), bad_location.as_bytes(), NOW)
            .await,
        Err(Error::Decode { .. })
    ));
    // An encrypted request to a callback without the key.
    let plain_only = Callback::builder(APP_ID, Secret::new(TOKEN))
        .build()
        .unwrap();
    let (query, body) = encrypted_request(&good, APP_ID, false);
    assert!(matches!(
        plain_only.handle_at(&query, body.as_bytes(), NOW).await,
        Err(Error::Config(_))
    ));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn url_check() {
    let cb = Callback::builder(APP_ID, Secret::new(TOKEN))
        .build()
        .unwrap();
    let check = UrlCheck {
        signature: signature::sign(&[TOKEN, "1409659813", "263014780"]),
        timestamp: "1409659813".into(),
        nonce: "263014780".into(),
        echostr: "2193456789".into(),
    };
    assert_eq!(cb.verify_url(&check).unwrap(), "2193456789");
    let forged = UrlCheck {
        signature: "da39a3ee5e6b4b0d3255bfef95601890afd80709".into(),
        ..check
    };
    assert!(matches!(cb.verify_url(&forged), Err(Error::Signature)));
}

fn tag(name: &'static str) -> impl Fn(IncomingMessage) -> std::future::Ready<Reply> + Send + Sync {
    move |_| std::future::ready(Reply::text(name))
}

#[tokio::test]
async fn router_precedence() {
    // Registered from the lowest tier to the highest: order must not matter between tiers.
    let router = Router::new()
        .fallback(tag("fallback"))
        .msg_type(MsgType::Text, tag("msg_type"))
        .regex("^he", tag("regex-1"))
        .unwrap()
        .regex("^hel", tag("regex-2"))
        .unwrap()
        .keyword("hello", tag("keyword"))
        .event(EventKind::Click, tag("event"))
        .event_key(EventKind::Click, "K1", tag("event_key"))
        .event(EventKind::Subscribe, tag("subscribe"))
        .event_key(EventKind::Scan, "bind-42", tag("scan bind-42"));
    let text = |t: &str| {
        msg(&format!(
            "<MsgType>text</MsgType><Content><![CDATA[{t}]]></Content><MsgId>1</MsgId>"
        ))
    };
    let event = |e: &str, k: &str| {
        msg(&format!(
            "<MsgType>event</MsgType><Event>{e}</Event><EventKey><![CDATA[{k}]]></EventKey>"
        ))
    };
    for (body, expected) in [
        (text("hello"), "keyword"),
        (text("  hello "), "keyword"),
        (text("help"), "regex-1"),
        (text("other"), "msg_type"),
        (event("CLICK", "K1"), "event_key"),
        (event("CLICK", "K2"), "event"),
        (event("subscribe", "qrscene_bind-42"), "subscribe"),
        (event("SCAN", "bind-42"), "scan bind-42"),
        (event("SCAN", "bind-43"), "fallback"),
        (
            msg("<MsgType>image</MsgType><PicUrl>u</PicUrl><MediaId>m</MediaId>"),
            "fallback",
        ),
    ] {
        let m = IncomingMessage::from_xml(body.as_bytes()).unwrap();
        assert_eq!(router.dispatch(&m).await, Reply::text(expected), "{body}");
    }
    assert_eq!(
        Router::new()
            .dispatch(&IncomingMessage::from_xml(text("x").as_bytes()).unwrap())
            .await,
        Reply::Empty
    );
}

#[tokio::test]
async fn repeated_deliveries_run_the_handler_once() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let router = Router::new().fallback(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Reply::text("once"))
    });
    let cb = Callback::builder(APP_ID, Secret::new(TOKEN))
        .router(router)
        .build()
        .unwrap();
    let text = msg("<MsgType>text</MsgType><Content>x</Content><MsgId>777</MsgId>");
    let event = msg("<MsgType>event</MsgType><Event>subscribe</Event>");
    for body in [&text, &event] {
        let first = cb
            .handle_at(&plain_query(NOW), body.as_bytes(), NOW)
            .await
            .unwrap();
        assert!(first.contains("once"));
        for _ in 0..2 {
            let again = cb
                .handle_at(&plain_query(NOW), body.as_bytes(), NOW)
                .await
                .unwrap();
            assert_eq!(again, "success");
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_slow_fallback_answers_later_through_the_custom_message_api() {
    let server = MockServer::start().await;
    mount_token(&server, "T", 1).await;
    Mock::given(method("POST"))
        .and(path("/cgi-bin/message/custom/send"))
        .and(body_json(serde_json::json!({"touser": "oUser", "msgtype": "text", "text": {"content": "thought about it"}})))
        .respond_with(json(serde_json::json!({"errcode": 0, "errmsg": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    // The chatbot answers only when the test lets it: if the callback waited for it, the
    // callback could not answer first (and the timeout below fails the test, not a clock).
    let gate = Arc::new(tokio::sync::Notify::new());
    let chatbot = {
        let gate = gate.clone();
        move |_| {
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Reply::text("thought about it")
            }
        }
    };
    let router = Router::new().fallback_with_deadline(
        chatbot,
        Duration::from_millis(50),
        Arc::new(client(&server)),
    );
    let cb = Callback::builder(APP_ID, Secret::new(TOKEN))
        .router(router)
        .build()
        .unwrap();
    let body =
        msg("<MsgType>text</MsgType><Content>what is the meaning</Content><MsgId>12</MsgId>");
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        cb.handle_at(&plain_query(NOW), body.as_bytes(), NOW),
    )
    .await
    .expect("the callback waited for the chatbot instead of answering at its deadline")
    .unwrap();
    assert_eq!(reply, "success", "answered before the chatbot finished");
    gate.notify_one();
    // The late reply arrives through the API.
    for _ in 0..100 {
        let sent = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .any(|r| r.url.path() == "/cgi-bin/message/custom/send");
        if sent {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the late reply was never sent");
}
