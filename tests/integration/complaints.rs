//! Consumer complaints 2.0 end to end: the emulator files a payer's complaint about a paid v3
//! order, the merchant hears it (a verified, decrypted notification), reads it, answers with an
//! uploaded image, decides the refund and completes it; the emulator shows every answer. A
//! forged complaint notification is refused.

use wechat_pay::Fen;
use wechat_pay::v3::{
    ComplaintState, CompleteComplaint, ListComplaints, NativeOrder, NegotiationHistory,
    Notification, OrderRequest, QueryComplaint, QueryComplaintNotifyUrl, RefundDecision,
    RespondComplaint, SetComplaintNotifyUrl, UpdateRefundProgress, V3ErrorCode,
};
use wechat_sandbox::control::PayRequest;

use crate::support::{
    APP_ID as APP, V3_MCH_ID, eventually, start_mp_callbacks, start_sandbox, unique, v3_client,
};

#[tokio::test]
async fn a_complaint_is_heard_answered_with_an_image_and_completed() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = v3_client(&sandbox);
    let (url, received) = crate::support::recording_endpoint().await;
    c.execute(&SetComplaintNotifyUrl {
        url: url.clone(),
        replace: false,
    })
    .await
    .unwrap();
    assert_eq!(c.execute(&QueryComplaintNotifyUrl).await.unwrap().url, url);

    // A paid order, and its payer's complaint.
    let no = unique("CPL");
    c.execute(&NativeOrder(OrderRequest::new(
        APP,
        "Cola",
        &no,
        Fen::new(350),
        "http://127.0.0.1:9/notify",
    )))
    .await
    .unwrap();
    sandbox.pay_with(&PayRequest::new(&no)).await.unwrap();
    let id = sandbox
        .file_complaint(&no, "paid, nothing came out", Some(350))
        .unwrap();

    eventually(10, "the complaint notification", async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (envelope, event) = c.notification(header, &body).await.unwrap();
    assert_eq!(envelope.event_type, "COMPLAINT.CREATE");
    let Notification::Complaint(heard) = event else {
        panic!("{event:?}")
    };
    assert_eq!(heard.complaint_id, id);
    assert_eq!(heard.out_trade_no.as_deref(), Some(no.as_str()));

    // Forged: the envelope changed under WeChat's signature.
    let forged =
        String::from_utf8_lossy(&body).replace("COMPLAINT.CREATE", "COMPLAINT.STATE_CHANGE");
    assert_ne!(forged.as_bytes(), &body[..]);
    assert!(matches!(
        c.notification(header, forged.as_bytes()).await,
        Err(wechat_pay::Error::V3Signature(_))
    ));

    // Read it: in the list of the last week, and in detail.
    let today = time::OffsetDateTime::now_utc().date();
    let page = c
        .execute(&ListComplaints::new(
            today - time::Duration::days(7),
            today + time::Duration::days(1),
        ))
        .await
        .unwrap();
    let listed = page.data.iter().find(|x| x.complaint_id == id).unwrap();
    assert_eq!(listed.complaint_state, ComplaintState::Pending);
    assert!(listed.is_open());
    let detail = c.execute(&QueryComplaint(id.clone())).await.unwrap();
    assert_eq!(detail.complaint_order_info[0].out_trade_no, no);
    assert_eq!(detail.complaint_order_info[0].amount, Fen::new(350));
    assert_eq!(detail.apply_refund_amount, Some(Fen::new(350)));
    // A date span WeChat refuses is refused.
    let too_long = c
        .execute(&ListComplaints::new(
            today - time::Duration::days(40),
            today,
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_long,
            wechat_pay::Error::V3Api {
                code: V3ErrorCode::ParamError,
                ..
            }
        ),
        "{too_long:?}"
    );

    // Completing before answering: refused, as WeChat refuses it.
    assert!(
        c.execute(&CompleteComplaint::new(&id, V3_MCH_ID))
            .await
            .is_err()
    );

    // Answer with an image, decide the refund, complete.
    let photo = b"\x89PNG\r\n\x1a\n refund receipt".to_vec();
    let media_id = c
        .upload_complaint_image("receipt.png", photo.clone())
        .await
        .unwrap();
    c.execute(
        &RespondComplaint::new(&id, V3_MCH_ID, "Sorry! Refunded in full today.").image(&media_id),
    )
    .await
    .unwrap();
    c.execute(&UpdateRefundProgress {
        complaint_id: id.clone(),
        decision: RefundDecision::Approve {
            launch_refund_day: 1,
        },
        remark: None,
    })
    .await
    .unwrap();
    c.execute(&CompleteComplaint::new(&id, V3_MCH_ID))
        .await
        .unwrap();
    let detail = c.execute(&QueryComplaint(id.clone())).await.unwrap();
    assert_eq!(detail.complaint_state, ComplaintState::Processed);

    // The negotiation, and the image back from it.
    let history = c.execute(&NegotiationHistory::new(&id)).await.unwrap();
    let kinds: Vec<&str> = history
        .data
        .iter()
        .map(|h| h.operate_type.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "USER_CREATE_COMPLAINT",
            "MERCHANT_RESPONSE",
            "MERCHANT_UPDATE_REFUND_PROGRESS",
            "MERCHANT_CONFIRM_COMPLETE"
        ]
    );
    let image_url = format!("{}{}", sandbox.base_url(), history.data[1].image_list[0]);
    assert_eq!(c.download_complaint_image(&image_url).await.unwrap(), photo);

    // The emulator shows the answer; the merchant heard each state change.
    let shown = sandbox.complaints();
    let shown = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["complaint_id"] == id)
        .unwrap()
        .clone();
    assert_eq!(shown["state"], "PROCESSED");
    assert_eq!(
        shown["history"][1]["operate_details"],
        "Sorry! Refunded in full today."
    );
    eventually(10, "three state changes", async || {
        received.lock().unwrap().len() == 4
    })
    .await;

    // Unknown complaints and images are not found; a response naming an image never uploaded
    // is refused.
    assert!(
        c.execute(&QueryComplaint("2002000000".into()))
            .await
            .is_err()
    );
    assert!(
        c.execute(&RespondComplaint::new(&id, V3_MCH_ID, "x").image("sandbox-media-forged"))
            .await
            .is_err()
    );
    sandbox.shutdown().await;
}

/// A media upload is checked as WeChat checks it: the signature over its `meta`, and the file
/// against the `sha256` the meta names.
#[tokio::test]
async fn a_media_upload_is_verified_by_its_signed_meta() {
    use wechat_pay::v3::{MerchantKey, RequestSignature};
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = v3_client(&sandbox);
    let id = c
        .upload_media("storefront.jpg", b"\xff\xd8\xff jpeg".to_vec())
        .await
        .unwrap();
    assert!(id.starts_with("sandbox-media-"));

    // By hand: a meta signed by the merchant, but naming another file's hash; and a meta whose
    // signature is of another meta.
    let key = MerchantKey::from_pem(crate::support::V3_MERCHANT_KEY).unwrap();
    let send = async |signed_meta: &str, sent_meta: &str| {
        let auth = RequestSignature::request(&key, V3_MCH_ID, crate::support::V3_SERIAL)
            .method("POST")
            .path("/v3/merchant/media/upload")
            .body(signed_meta)
            .sign_now()
            .unwrap()
            .authorization();
        let body = format!(
            "--B\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{sent_meta}\r\n\
             --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\nthe file\r\n--B--\r\n"
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/v3/merchant/media/upload", sandbox.base_url()))
            .header("Authorization", auth)
            .header("Content-Type", "multipart/form-data; boundary=B")
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    let wrong_hash = r#"{"filename":"a.jpg","sha256":"00"}"#;
    let (status, body) = send(wrong_hash, wrong_hash).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("PARAM_ERROR"), "{body}");
    let (status, body) = send(r#"{"filename":"b.jpg","sha256":"00"}"#, wrong_hash).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("SIGN_ERROR"), "{body}");
    sandbox.shutdown().await;
}
