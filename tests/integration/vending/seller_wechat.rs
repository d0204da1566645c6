//! Sellers log in by scanning a QR code with the WeChat they bound from the dashboard (the
//! emulator plays the phone: its Official Account login says who scanned). The session goes only
//! to the browser that showed the code, once; a WeChat bound to nobody, or to another seller,
//! is refused; a binding needs the seller's confirmation on the dashboard.

use axum::http::StatusCode;
use serde_json::Value;

use super::{Vending, set_cookie};
use crate::support::unique;

/// What the phone sees after scanning `scan_url` as WeChat user `open_id`: the status, the page,
/// and the cookie it was given.
async fn phone_scans(
    v: &Vending,
    scan_url: &str,
    open_id: &str,
) -> (StatusCode, String, Option<String>) {
    let start = v.http.get(scan_url).send().await.unwrap();
    if !start.status().is_redirection() {
        return (start.status(), start.text().await.unwrap(), None);
    }
    let back = v
        .http
        .get(
            v.wechat_allows(&start, "/seller/wechat/callback", open_id)
                .await,
        )
        .send()
        .await
        .unwrap();
    let phone = set_cookie(&back, "vending_scan_phone");
    (back.status(), back.text().await.unwrap(), phone)
}

/// A login QR code on a browser: its view and the browser's cookie.
async fn login_code(v: &Vending) -> (Value, String) {
    let resp = v
        .http
        .post(format!("{}/api/seller/wechat/login", v.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = set_cookie(&resp, "vending_scan").unwrap();
    (resp.json().await.unwrap(), cookie)
}

/// The browser's poll: status, body, and the seller session it was given.
async fn poll(v: &Vending, id: &str, cookie: Option<&str>) -> (StatusCode, Value, Option<String>) {
    let mut req = v
        .http
        .get(format!("{}/api/seller/wechat/login/{id}", v.url));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("vending_scan={c}"));
    }
    let resp = req.send().await.unwrap();
    let session = set_cookie(&resp, "vending_seller").filter(|s| !s.is_empty());
    (
        resp.status(),
        resp.json().await.unwrap_or(Value::Null),
        session,
    )
}

async fn confirm_on_phone(v: &Vending, id: &str, phone: Option<&str>) -> StatusCode {
    let mut req = v.http.post(format!("{}/seller/wechat/confirm/{id}", v.url));
    if let Some(p) = phone {
        req = req.header("cookie", format!("vending_scan_phone={p}"));
    }
    req.send().await.unwrap().status()
}

/// `seller` binds WeChat user `open_id`: the confirmation's answer.
async fn bind(v: &Vending, seller: &str, open_id: &str) -> (StatusCode, Value) {
    let (status, shown) = v
        .seller_call(Some(seller), "POST", "/api/seller/wechat/bind", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let id = shown["scan_id"].as_str().unwrap().to_owned();
    let (status, page, _) = phone_scans(v, shown["scan_url"].as_str().unwrap(), open_id).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, scanned) = v
        .seller_call(
            Some(seller),
            "GET",
            &format!("/api/seller/wechat/bind/{id}"),
            None,
        )
        .await;
    assert_eq!(scanned["status"], "scanned", "{scanned}");
    v.seller_call(
        Some(seller),
        "POST",
        &format!("/api/seller/wechat/bind/{id}/confirm"),
        None,
    )
    .await
}

#[tokio::test]
async fn a_seller_binds_their_wechat_then_logs_in_by_scanning() {
    let v = Vending::start(super::Options::default()).await;
    let seller = v.demo_seller().await;
    let (_, stranger) = v.new_seller(&[]).await;
    let wechat = unique("oSeller");

    // Binding: scanned, then confirmed on the dashboard (another seller cannot even see it).
    let (status, shown) = v
        .seller_call(Some(&seller), "POST", "/api/seller/wechat/bind", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert!(
        shown["qr_svg"].as_str().unwrap().contains("<svg"),
        "a QR code"
    );
    let id = shown["scan_id"].as_str().unwrap().to_owned();
    let (status, _) = v
        .seller_call(
            Some(&stranger),
            "GET",
            &format!("/api/seller/wechat/bind/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, page, _) = phone_scans(&v, shown["scan_url"].as_str().unwrap(), &wechat).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = v
        .seller_call(
            Some(&stranger),
            "POST",
            &format!("/api/seller/wechat/bind/{id}/confirm"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only the seller who asked confirms"
    );
    let (status, bound) = v
        .seller_call(
            Some(&seller),
            "POST",
            &format!("/api/seller/wechat/bind/{id}/confirm"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bound}");
    let (_, me) = v
        .seller_call(Some(&seller), "GET", "/api/seller/me", None)
        .await;
    assert_eq!(me["wechat_bound"], true, "{me}");

    // Login: the browser shows a code; only it may poll.
    let (shown, browser) = login_code(&v).await;
    let id = shown["scan_id"].as_str().unwrap().to_owned();
    assert_eq!(poll(&v, &id, None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        poll(&v, &id, Some("not-the-secret")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(poll(&v, &id, Some(&browser)).await.1["status"], "waiting");

    // The phone scans: it is asked to confirm whose dashboard opens; only that phone confirms.
    let (status, page, phone) = phone_scans(&v, shown["scan_url"].as_str().unwrap(), &wechat).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Log in as <b>demo</b>"), "{page}");
    assert_eq!(poll(&v, &id, Some(&browser)).await.1["status"], "scanned");
    assert_eq!(
        phone_scans(&v, shown["scan_url"].as_str().unwrap(), &wechat)
            .await
            .0,
        StatusCode::NOT_FOUND,
        "a code is scanned once"
    );
    assert_eq!(confirm_on_phone(&v, &id, None).await, StatusCode::NOT_FOUND);
    assert_eq!(
        confirm_on_phone(&v, &id, Some("forged")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        confirm_on_phone(&v, &id, phone.as_deref()).await,
        StatusCode::OK
    );

    // The browser takes the session, once.
    let (status, taken, session) = poll(&v, &id, Some(&browser)).await;
    assert_eq!(status, StatusCode::OK, "{taken}");
    let session = session.expect("a seller session");
    let (status, me) = v
        .seller_call(Some(&session), "GET", "/api/seller/me", None)
        .await;
    assert_eq!(
        (status, me["login"].as_str()),
        (StatusCode::OK, Some("demo"))
    );
    let (_, again, none) = poll(&v, &id, Some(&browser)).await;
    assert!(none.is_none(), "used once: {again}");

    // Same session rules: a logout ends it.
    let (status, _) = v
        .seller_call(Some(&session), "POST", "/api/seller/logout", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = v
        .seller_call(Some(&session), "GET", "/api/seller/me", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Both are in the audit.
    let seller = v.demo_seller().await;
    let (_, audit) = v
        .seller_call(Some(&seller), "GET", "/api/seller/audit", None)
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in ["bind_wechat", "login_wechat"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    v.stop().await;
}

#[tokio::test]
async fn a_scan_bound_to_another_seller_or_to_nobody_is_refused() {
    let v = Vending::start(super::Options::default()).await;
    let seller = v.demo_seller().await;
    let (_, other) = v.new_seller(&[]).await;
    let wechat = unique("oSeller");
    assert_eq!(bind(&v, &seller, &wechat).await.0, StatusCode::OK);

    // Another seller cannot bind a WeChat that is the demo seller's.
    let (status, body) = bind(&v, &other, &wechat).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("WECHAT_TAKEN"))
    );

    // A WeChat bound to nobody logs nobody in.
    let (shown, browser) = login_code(&v).await;
    let id = shown["scan_id"].as_str().unwrap().to_owned();
    let (status, page, phone) =
        phone_scans(&v, shown["scan_url"].as_str().unwrap(), &unique("oNobody")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(phone.is_none());
    let (_, refused, session) = poll(&v, &id, Some(&browser)).await;
    assert_eq!(refused["status"], "refused", "{refused}");
    assert!(session.is_none());

    // A disabled seller's WeChat neither.
    let db = v.state.orders.db();
    assert!(db.set_seller_enabled("demo", false).await.unwrap());
    let (shown, browser) = login_code(&v).await;
    let id = shown["scan_id"].as_str().unwrap().to_owned();
    let (status, _, _) = phone_scans(&v, shown["scan_url"].as_str().unwrap(), &wechat).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(poll(&v, &id, Some(&browser)).await.1["status"], "refused");

    // Old scans go (the sweep drops those expired an hour ago); live ones stay.
    let far = examples::clock::unix_now() + 3600;
    assert_eq!(
        db.prune_scans(0).await.unwrap(),
        0,
        "none expired before 1970"
    );
    assert!(db.prune_scans(far).await.unwrap() >= 3, "this test's scans");
    assert!(db.scan(&id).await.unwrap().is_none());
    v.stop().await;
}

/// Live: the QR code sends the phone to WeChat's own authorization page (no emulator stands
/// in), through the configured Official Account.
#[tokio::test]
async fn live_the_qr_code_goes_to_wechats_own_authorization() {
    let gateway = crate::support::start_gateway().await;
    let v = super::live::live(&gateway).await;
    assert_eq!(v.mode(), examples::providers::Mode::Live);
    let (shown, _) = login_code(&v).await;
    let scan_url = shown["scan_url"].as_str().unwrap();
    assert!(scan_url.starts_with(&v.url), "{scan_url}");
    let start = v.http.get(scan_url).send().await.unwrap();
    assert!(start.status().is_redirection(), "{}", start.status());
    let location = start.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(wechat_mp::client::DEFAULT_OPEN_BASE_URL),
        "{location}"
    );
    v.stop().await;
}
