//! The limits every server has, on the vending server (the one with a WebSocket): slow clients
//! cannot hold connections, bodies are bounded, and the seller feed is bounded in message size,
//! connections and silence — each failure closes that one connection and the server stays up.

use std::time::Duration;

use axum::http::StatusCode;
use examples::vending::config::VendingConfig;
use futures_util::{SinkExt, StreamExt};
use http_serve::HttpLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::{Options, Vending};

fn limits(header_read_timeout_secs: u64, max_body_bytes: usize) -> HttpLimits {
    HttpLimits {
        header_read_timeout_secs,
        max_body_bytes: Some(max_body_bytes),
        ..HttpLimits::default()
    }
}

/// Reads until the server closes the connection (or resets it); `None` if it is still open
/// after `secs`.
async fn closed_within(stream: &mut tokio::net::TcpStream, secs: u64) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(secs), async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| got)
}

#[tokio::test]
async fn a_client_too_slow_with_its_headers_is_cut_off() {
    let v = Vending::start(Options {
        http: Some(limits(1, 64 * 1024)),
        ..Options::default()
    })
    .await;
    let addr = v.url.trim_start_matches("http://").to_owned();

    // Half a request, then nothing: the connection is closed after the 1 s header timeout.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut slow, 15)
        .await
        .expect("the slow connection is still open");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "a half request was answered"
    );

    // A whole request on a fresh connection is answered as usual.
    let mut quick = tokio::net::TcpStream::connect(&addr).await.unwrap();
    quick
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = closed_within(&mut quick, 15).await.unwrap();
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    v.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let v = Vending::start(Options {
        http: Some(limits(15, 1024)),
        ..Options::default()
    })
    .await;
    let big = format!(
        r#"{{"inner_code": "VM0001", "sku_id": 1, "channel": "sandbox", "method": "{}"}}"#,
        "x".repeat(4096)
    );
    let resp = v
        .http
        .post(format!("{}/api/orders", v.url))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        StatusCode::PAYLOAD_TOO_LARGE.as_u16()
    );
    // The same limit holds on the notification routes.
    let resp = v
        .http
        .post(format!("{}/notify/wechat", v.url))
        .body(vec![b'<'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        StatusCode::PAYLOAD_TOO_LARGE.as_u16()
    );
    v.stop().await;
}

/// The dashboard's request, as the demo seller.
async fn ws_url(v: &Vending) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    v.dashboard_request(Some(&v.demo_seller().await))
}

fn feed(max_message: usize, max_connections: usize, ping: u64, idle: u64) -> Options {
    let mut f = VendingConfig::embedded().feed;
    f.ws_max_message_bytes = max_message;
    f.ws_max_connections = max_connections;
    f.ws_ping_secs = ping;
    f.ws_idle_timeout_secs = idle;
    Options {
        feed: Some(f),
        ..Options::default()
    }
}

/// Reads frames until the socket ends; whether it ended within `secs`.
async fn ends_within<S>(socket: &mut S, secs: u64) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_that_socket_and_the_server_stays_up() {
    let v = Vending::start(feed(1024, 16, 20, 60)).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(&v).await)
        .await
        .unwrap();
    let snapshot = socket.next().await.unwrap().unwrap();
    assert!(snapshot.to_text().unwrap().contains("snapshot"));

    socket
        .send(Message::Text("x".repeat(64 * 1024).into()))
        .await
        .unwrap();
    assert!(
        ends_within(&mut socket, 10).await,
        "the socket stayed open after an oversized message"
    );

    // The server and the feed are still there.
    let (status, _) = v.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (mut again, _) = tokio_tungstenite::connect_async(ws_url(&v).await)
        .await
        .unwrap();
    let snapshot = again.next().await.unwrap().unwrap();
    assert!(snapshot.to_text().unwrap().contains("snapshot"));
    // A small message is fine.
    again.send(Message::Text("hello".into())).await.unwrap();
    let order = v.order("VM0001", 1).await;
    let change = again.next().await.unwrap().unwrap();
    assert!(
        change
            .to_text()
            .unwrap()
            .contains(order["order_no"].as_str().unwrap())
    );
    v.stop().await;
}

#[tokio::test]
async fn dashboards_are_capped_and_silent_ones_dropped() {
    let v = Vending::start(feed(4096, 1, 1, 2)).await;
    let (mut first, _) = tokio_tungstenite::connect_async(ws_url(&v).await)
        .await
        .unwrap();
    first.next().await.unwrap().unwrap();
    match tokio_tungstenite::connect_async(ws_url(&v).await).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503)
        }
        other => panic!("a second dashboard was let in: {other:?}"),
    }

    // Not reading means not answering pings: after the idle timeout the server drops it, and
    // its place is free again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ends_within(&mut first, 10).await,
        "a silent dashboard was kept"
    );
    let mut next = None;
    for _ in 0..50 {
        if let Ok((s, _)) = tokio_tungstenite::connect_async(ws_url(&v).await).await {
            next = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut next = next.expect("the freed place was not given to a new dashboard");
    assert!(
        next.next()
            .await
            .unwrap()
            .unwrap()
            .to_text()
            .unwrap()
            .contains("snapshot")
    );
    v.stop().await;
}

/// A body that is not JSON, or JSON of the wrong shape, is answered `{code, message}` like every
/// other error.
#[tokio::test]
async fn malformed_json_is_answered_like_every_other_error() {
    let v = Vending::start(Options::default()).await;
    let send = async |content_type: &str, body: &str| {
        let resp = v
            .http
            .post(format!("{}/api/orders", v.url))
            .bearer_auth(&v.buyer.as_ref().unwrap().token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        (
            status,
            answer["code"].as_str().unwrap_or_default().to_owned(),
            answer,
        )
    };
    for (content_type, body, status, code) in [
        ("application/json", "{not json", 400, "INVALID_JSON"),
        (
            "application/json",
            r#"{"inner_code": 7}"#,
            422,
            "INVALID_REQUEST",
        ),
        (
            "application/json",
            r#"{"inner_code": "VM0001", "sku_id": 1, "extra": 1}"#,
            422,
            "INVALID_REQUEST",
        ),
        (
            "text/plain",
            r#"{"inner_code": "VM0001", "sku_id": 1}"#,
            415,
            "CONTENT_TYPE_INVALID",
        ),
    ] {
        let (got, got_code, answer) = send(content_type, body).await;
        assert_eq!((got, got_code.as_str()), (status, code), "{body}: {answer}");
        assert!(answer["message"].is_string(), "{answer}");
    }
    v.stop().await;
}
