//! Payers' complaints (WeChat Pay API v3) reach the seller whose order they are about: the
//! emulator files one, its notification brings it in, the seller reads it beside the order,
//! answers with an image, refunds (once) and completes it, and the emulator shows each answer.
//! Nobody else sees or touches it; a forged notification changes nothing; a live server that
//! cannot be notified reads complaints periodically.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::in_process::on_v3;
use super::live::live_with_options;
use super::{Options, Session, Vending};
use crate::support::{
    eventually, start_gateway, unique, v3_client, wechat_v3_credentials_with_login,
};

/// The smallest PNG there is (a 1×1 pixel).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";

/// A Mini Program buyer's order at VM0001 (the demo seller's), paid at WeChat and vended: its
/// number, amount and buyer.
async fn paid_wechat_order(v: &Vending) -> (String, u64, Session) {
    let buyer = v.mini_buyer(&unique("oMini")).await;
    let (status, order) = v
        .post_as(
            Some(&buyer),
            "/api/orders",
            json!({"inner_code": "VM0001", "sku_id": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for_as(&buyer, &no, "COMPLETED", 30).await;
    (no, order["amount"].as_u64().unwrap(), buyer)
}

/// The payer complains about order `no`, asking `amount` back: the complaint's id.
async fn complain(v: &Vending, no: &str, amount: u64) -> String {
    let filed = v
        .emulator(
            "/sandbox/complaints",
            json!({"out_trade_no": no, "detail": "paid, nothing came out", "refund_amount": amount}),
        )
        .await;
    filed["complaint_id"].as_str().unwrap().to_owned()
}

/// The seller's complaint `id` on their list, when it is there.
async fn listed(v: &Vending, cookie: &str, id: &str) -> Option<Value> {
    let (status, list) = v
        .seller_call(Some(cookie), "GET", "/api/seller/complaints", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["complaints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["complaint_id"] == id)
        .cloned()
}

async fn upload(v: &Vending, cookie: &str, id: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let resp = v
        .http
        .post(format!("{}/api/seller/complaints/{id}/images", v.url))
        .header("cookie", format!("vending_seller={cookie}"))
        .header("content-type", "image/png")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_complaint_reaches_its_seller_who_answers_with_an_image_refunds_once_and_completes() {
    let v = Vending::start(on_v3(Options::default())).await;
    let seller = v.demo_seller().await;
    let (_, stranger) = v.new_seller(&[]).await;
    let (no, amount, buyer) = paid_wechat_order(&v).await;
    let id = complain(&v, &no, amount).await;

    // The notification brings it in (the periodic read runs every 5 minutes by default).
    eventually(10, "the complaint on the seller's list", async || {
        listed(&v, &seller, &id).await.is_some()
    })
    .await;
    let c = listed(&v, &seller, &id).await.unwrap();
    assert_eq!(c["order_no"], no.as_str(), "{c}");
    assert_eq!(
        c["order"]["order_no"],
        no.as_str(),
        "the order beside it: {c}"
    );
    assert_eq!(
        (c["state"].as_str(), c["needs_action"].as_bool()),
        (Some("PENDING"), Some(true))
    );
    assert_eq!(c["summary"]["detail"], "paid, nothing came out");
    assert_eq!(c["summary"]["apply_refund_amount"], amount);

    // Another seller neither sees it nor acts on it.
    assert!(listed(&v, &stranger, &id).await.is_none());
    for (method, path, body) in [
        ("GET", format!("/api/seller/complaints/{id}"), None),
        (
            "POST",
            format!("/api/seller/complaints/{id}/complete"),
            None,
        ),
        (
            "POST",
            format!("/api/seller/complaints/{id}/refund"),
            Some(json!({"amount": 350, "reason": "mine now"})),
        ),
    ] {
        let (status, body) = v.seller_call(Some(&stranger), method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(
        upload(&v, &stranger, &id, PNG).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _) = v
        .seller_call(None, "GET", "/api/seller/complaints", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The detail: WeChat's view now, the payer's words first in the negotiation.
    let (status, detail) = v
        .seller_call(
            Some(&seller),
            "GET",
            &format!("/api/seller/complaints/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(
        detail["history"][0]["type"], "USER_CREATE_COMPLAINT",
        "{detail}"
    );

    // An answer with an image (not anything else called an image).
    let (status, body) = upload(&v, &seller, &id, b"GIF89a not taken").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = upload(&v, &seller, &id, PNG).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let media_id = body["media_id"].as_str().unwrap().to_owned();
    let (status, answered) = v
        .seller_call(
            Some(&seller),
            "POST",
            &format!("/api/seller/complaints/{id}/response"),
            Some(json!({"text": "Sorry! Refunding now.", "images": [media_id]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answered}");
    assert_eq!(answered["state"], "PROCESSING");

    // The refund, asked twice: one refund, the decision told to WeChat.
    for _ in 0..2 {
        let (status, body) = v
            .seller_call(
                Some(&seller),
                "POST",
                &format!("/api/seller/complaints/{id}/refund"),
                Some(json!({"amount": amount, "reason": "nothing came out"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let order = v.wait_for_as(&buyer, &no, "REFUNDED", 20).await;
    assert_eq!(order["refunded"], amount, "{order}");
    let payment = v
        .state
        .orders
        .payments()
        .get_by_out_trade_no(&no)
        .await
        .unwrap();
    let refunds = v
        .state
        .orders
        .payments()
        .refunds(&payment.id)
        .await
        .unwrap();
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");

    // Completed.
    let (status, done) = v
        .seller_call(
            Some(&seller),
            "POST",
            &format!("/api/seller/complaints/{id}/complete"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(
        (done["state"].as_str(), done["needs_action"].as_bool()),
        (Some("PROCESSED"), Some(false))
    );

    // WeChat (the emulator) has every answer.
    let held = &crate::support::held_complaint(&v.emulator_url, &id).await;
    assert_eq!(held["state"], "PROCESSED", "{held}");
    let mut kinds: Vec<&str> = held["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["operate_type"].as_str())
        .collect();
    // The second refund click told WeChat the same decision again: harmless.
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "USER_CREATE_COMPLAINT",
            "MERCHANT_RESPONSE",
            "MERCHANT_UPDATE_REFUND_PROGRESS",
            "MERCHANT_CONFIRM_COMPLETE"
        ],
        "{held}"
    );
    let response = &held["history"][1];
    assert_eq!(response["operate_details"], "Sorry! Refunding now.");
    assert_eq!(
        response["image_list"].as_array().unwrap().len(),
        1,
        "{response}"
    );
    assert_eq!(held["refund_decision"]["action"], "APPROVE", "{held}");

    // Each action is in the seller's audit.
    let (_, audit) = v
        .seller_call(Some(&seller), "GET", "/api/seller/audit", None)
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "complaint_response",
        "complaint_refund",
        "complaint_complete",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    v.stop().await;
}

#[tokio::test]
async fn a_forged_complaint_notification_changes_nothing() {
    let v = Vending::start(on_v3(Options::default())).await;
    let seller = v.demo_seller().await;
    let body = json!({
        "id": "forged", "create_time": "2026-12-08T10:00:00+08:00", "event_type": "COMPLAINT.CREATE",
        "resource_type": "encrypt-resource", "summary": "产生新投诉",
        "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": "AAAA", "nonce": "0123456789ab",
                     "associated_data": "complaint", "original_type": "complaint"},
    })
    .to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    for headers in [
        vec![],
        vec![
            ("Wechatpay-Timestamp", now.as_str()),
            ("Wechatpay-Nonce", "forgednonce"),
            ("Wechatpay-Serial", "PUB_KEY_ID_FORGED"),
            ("Wechatpay-Signature", "Zm9yZ2Vk"),
        ],
    ] {
        let mut req = v
            .http
            .post(format!("{}/notify/wechat/complaints", v.url))
            .header("content-type", "application/json")
            .body(body.clone());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, list) = v
        .seller_call(Some(&seller), "GET", "/api/seller/complaints", None)
        .await;
    assert_eq!(list["complaints"], json!([]), "{list}");
    v.stop().await;
}

#[tokio::test]
async fn without_api_v3_there_are_no_complaints_to_act_on() {
    let v = Vending::start(Options::default()).await;
    let seller = v.demo_seller().await;
    let (status, list) = v
        .seller_call(Some(&seller), "GET", "/api/seller/complaints", None)
        .await;
    assert_eq!((status, &list["enabled"]), (StatusCode::OK, &json!(false)));
    let (status, body) = v
        .seller_call(
            Some(&seller),
            "POST",
            "/api/seller/complaints/200200000000000000000001/complete",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "COMPLAINTS_OFF");
    let resp = v
        .http
        .post(format!("{}/notify/wechat/complaints", v.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    v.stop().await;
}

/// Live, over `http://`: WeChat is not given the URL (it takes `https://` only), and the
/// periodic read brings the complaint to its seller anyway.
#[tokio::test]
async fn live_complaints_arrive_by_the_periodic_read_when_notifications_cannot() {
    let gateway = start_gateway().await;
    let v = live_with_options(
        &gateway,
        wechat_v3_credentials_with_login(&gateway, false),
        Options {
            complaint_sync_secs: Some(1),
            ..Options::default()
        },
    )
    .await;
    let seller = v.seller_login("operator", "operator-password-1").await;
    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let id = complain(&v, &no, 100).await;
    // The server did not register its http:// URL.
    let registered = v3_client(&gateway)
        .execute(&wechat_pay::v3::QueryComplaintNotifyUrl)
        .await;
    assert!(
        matches!(
            registered,
            Err(wechat_pay::Error::V3Api {
                code: wechat_pay::v3::V3ErrorCode::ResourceNotExists,
                ..
            })
        ),
        "{registered:?}"
    );
    eventually(15, "the complaint read periodically", async || {
        listed(&v, &seller, &id).await.is_some()
    })
    .await;
    let c = listed(&v, &seller, &id).await.unwrap();
    assert_eq!(c["order"]["order_no"], no.as_str(), "{c}");
    v.stop().await;
}
