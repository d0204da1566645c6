//! Payment and refund notifications: every way a body can be wrong gets its own clear error.

use wechat_pay::test_util::TestSigner;
use wechat_pay::{
    ApiKey, Client, Error, Fen, NotifyReply, NotifySignType, Params, RefundStatus, SignType,
    SignatureError, XmlError, notify,
};

use crate::support::{APP_ID, MCH_ID, key, signer};

fn client() -> Client {
    Client::builder(APP_ID, MCH_ID, key()).build().unwrap()
}

async fn verify(body: &str) -> Result<wechat_pay::PaymentNotification, Error> {
    client().verify_payment_notification(body.as_bytes()).await
}

#[tokio::test]
async fn valid_md5_notification() {
    let n = verify(&signer().payment_notification("20240101000001", Fen::new(350)))
        .await
        .unwrap();
    assert_eq!(n.out_trade_no, "20240101000001");
    assert_eq!(n.total_fee, Fen::new(350));
    assert_eq!(n.cash_fee, Fen::new(350));
    assert_eq!(n.app_id, APP_ID);
    assert_eq!(n.is_subscribe, Some(true));
}

fn hmac_client() -> Client {
    Client::builder(APP_ID, MCH_ID, key())
        .sign_type(SignType::HmacSha256)
        .build()
        .unwrap()
}

#[tokio::test]
async fn valid_hmac_sha256_notification() {
    let signer = signer().with_sign_type(SignType::HmacSha256);
    let body = signer.payment_notification("20240101000001", Fen::new(1));
    assert!(body.contains("HMAC-SHA256"));
    let n = hmac_client()
        .verify_payment_notification(body.as_bytes())
        .await
        .unwrap();
    assert_eq!(n.total_fee, Fen::new(1));
}

#[tokio::test]
async fn fields_we_do_not_model_are_covered_by_the_signature() {
    let mut p = signer().payment_notification_params("o1", Fen::new(350));
    p.insert("coupon_fee", "50");
    p.insert("coupon_count", "1");
    p.insert("coupon_id_0", "10000");
    p.insert("coupon_fee_0", "50");
    p.insert("coupon_type_0", "CASH");
    p.insert("sub_mch_id", "1900000109");
    p.insert("a_field_wechat_adds_next_year", "x");
    let body = signer().sign(p);
    let n = verify(&body).await.unwrap();
    assert_eq!(n.coupons.len(), 1);
    assert_eq!(n.raw.get("a_field_wechat_adds_next_year"), Some("x"));

    // Dropping an unmodeled field after signing breaks the signature.
    let mut tampered = Params::from_xml(body.as_bytes()).unwrap();
    tampered.remove("a_field_wechat_adds_next_year");
    assert!(matches!(
        verify(&tampered.to_xml()).await,
        Err(Error::Signature(SignatureError::Mismatch))
    ));
}

#[tokio::test]
async fn tampered_field_and_amount_are_rejected() {
    let body = signer().payment_notification("o1", Fen::new(350));
    for (field, value) in [("attach", "x"), ("total_fee", "1"), ("out_trade_no", "o2")] {
        let mut p = Params::from_xml(body.as_bytes()).unwrap();
        p.insert(field, value);
        assert!(
            matches!(
                verify(&p.to_xml()).await,
                Err(Error::Signature(SignatureError::Mismatch))
            ),
            "changing {field} must break the signature"
        );
    }
}

#[tokio::test]
async fn missing_sign_is_a_failure_not_a_skip() {
    let p = signer().payment_notification_params("o1", Fen::new(350));
    assert!(matches!(
        verify(&p.to_xml()).await,
        Err(Error::Signature(SignatureError::Missing))
    ));
    let mut p = Params::from_xml(
        signer()
            .payment_notification("o1", Fen::new(350))
            .as_bytes(),
    )
    .unwrap();
    p.insert("sign", "");
    assert!(matches!(
        verify(&p.to_xml()).await,
        Err(Error::Signature(SignatureError::Mismatch))
    ));
}

#[tokio::test]
async fn the_configured_sign_type_verifies_whatever_the_body_says() {
    let hmac = signer().with_sign_type(SignType::HmacSha256);
    let md5_body = signer().payment_notification("o1", Fen::new(1));
    let hmac_body = hmac.payment_notification("o1", Fen::new(1));
    // An HMAC-SHA256 client refuses an MD5-signed notification (the body does not choose)…
    assert!(matches!(
        hmac_client()
            .verify_payment_notification(md5_body.as_bytes())
            .await,
        Err(Error::Signature(SignatureError::Mismatch))
    ));
    // …and an MD5 client an HMAC-signed one, even one naming HMAC-SHA256 in its sign_type —
    // saying why: the message names one algorithm, the client verified with the other.
    let hmac_refused = verify(&hmac_body).await;
    let Err(Error::Signature(why @ SignatureError::SignTypeNotConfigured { .. })) = &hmac_refused
    else {
        panic!("{hmac_refused:?}")
    };
    let text = why.to_string();
    assert!(
        text.contains("signed with HMAC-SHA256") && text.contains("verified with MD5"),
        "{text}"
    );
    // One naming MD5 to an HMAC-SHA256 client, likewise.
    let mut p = signer().payment_notification_params("o1", Fen::new(1));
    p.insert("sign_type", "MD5");
    let named_md5 = hmac_client()
        .verify_payment_notification(signer().sign(p).as_bytes())
        .await;
    assert!(
        matches!(&named_md5, Err(Error::Signature(SignatureError::SignTypeNotConfigured { received, .. })) if received == "MD5"),
        "{named_md5:?}"
    );
    // The configured type needs no sign_type in the body.
    assert!(
        hmac_client()
            .verify_payment_notification(p_without_sign_type(&hmac).as_bytes())
            .await
            .is_ok()
    );
    // Accepting either type is an explicit option.
    let either = Client::builder(APP_ID, MCH_ID, key())
        .sign_type(SignType::HmacSha256)
        .notify_sign_type(NotifySignType::FromBody)
        .build()
        .unwrap();
    for body in [&md5_body, &hmac_body] {
        assert!(
            either
                .verify_payment_notification(body.as_bytes())
                .await
                .is_ok()
        );
    }
    // There an HMAC notification stripped of its sign_type is checked as MD5, and fails; an
    // unknown sign_type is refused by name.
    let mut p = Params::from_xml(hmac_body.as_bytes()).unwrap();
    p.remove("sign_type");
    assert!(matches!(
        either
            .verify_payment_notification(p.to_xml().as_bytes())
            .await,
        Err(Error::Signature(SignatureError::Mismatch))
    ));
    let mut p = signer().payment_notification_params("o1", Fen::new(1));
    p.insert("sign_type", "SHA1");
    assert!(matches!(
        either
            .verify_payment_notification(signer().sign(p).as_bytes())
            .await,
        Err(Error::Signature(SignatureError::UnsupportedSignType(_)))
    ));
}

fn p_without_sign_type(hmac: &TestSigner) -> String {
    let mut p = hmac.payment_notification_params("o1", Fen::new(1));
    p.remove("sign_type");
    hmac.sign(p)
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors() {
    let good = signer().payment_notification("o1", Fen::new(350));

    let duplicated = good.replacen("</xml>", "<total_fee>1</total_fee></xml>", 1);
    assert!(matches!(
        verify(&duplicated).await,
        Err(Error::Xml(XmlError::DuplicateField(f))) if f == "total_fee"
    ));

    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        good.replacen("<attach>", "<attach>&xxe;", 1)
    );
    assert!(matches!(
        verify(&xxe).await,
        Err(Error::Xml(XmlError::Doctype))
    ));

    let entity = good.replacen("</xml>", "<attach>&xxe;</attach></xml>", 1);
    assert!(matches!(
        verify(&entity).await,
        Err(Error::Xml(XmlError::Entity(_)))
    ));

    let oversized = good.replacen(
        "</xml>",
        &format!("<pad>{}</pad></xml>", "x".repeat(64 * 1024)),
        1,
    );
    assert!(matches!(
        verify(&oversized).await,
        Err(Error::Xml(XmlError::TooLarge { .. }))
    ));

    let mut invalid_utf8 = good.clone().into_bytes();
    let at = invalid_utf8.len() - 10;
    invalid_utf8.insert(at, 0xff);
    assert!(matches!(
        client().verify_payment_notification(&invalid_utf8).await,
        Err(Error::Xml(XmlError::InvalidUtf8))
    ));

    let nested = good.replacen("</xml>", "<x><y>1</y></x></xml>", 1);
    assert!(matches!(
        verify(&nested).await,
        Err(Error::Xml(XmlError::Nested(_)))
    ));

    assert!(matches!(verify("").await, Err(Error::Xml(XmlError::Root))));
    assert!(matches!(
        verify("{\"json\":true}").await,
        Err(Error::Xml(_))
    ));
}

#[tokio::test]
async fn protocol_and_business_failures() {
    assert!(matches!(
        verify("<xml><return_code>FAIL</return_code><return_msg>x</return_msg></xml>").await,
        Err(Error::Protocol { .. })
    ));
    // An authentic failed payment is its own error, with what it is about: acknowledge it.
    let mut p = signer().payment_notification_params("o1", Fen::new(1));
    p.insert("result_code", "FAIL");
    p.insert("err_code", "NOTENOUGH");
    match verify(&signer().sign(p.clone())).await {
        Err(Error::PaymentFailed(f)) => {
            assert_eq!(f.out_trade_no, "o1");
            assert_eq!(f.err_code, wechat_pay::ErrCode::NotEnough);
            assert_eq!(f.total_fee, Some(Fen::new(1)));
        }
        other => panic!("{other:?}"),
    }
    // …but only an authentic one for this account.
    let mut forged = p.clone();
    forged.insert("sign", "0".repeat(32));
    assert!(matches!(
        verify(&forged.to_xml()).await,
        Err(Error::Signature(_))
    ));
    let mut other_merchant = p;
    other_merchant.insert("mch_id", "1900000109");
    assert!(matches!(
        verify(&signer().sign(other_merchant)).await,
        Err(Error::AccountMismatch { .. })
    ));
    // Signed but undecodable amount: named field.
    let mut p = signer().payment_notification_params("o1", Fen::new(1));
    p.insert("total_fee", "1.00");
    match verify(&signer().sign(p)).await {
        Err(Error::Decode { field, .. }) => assert_eq!(field, "total_fee"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn notifications_for_another_account_are_refused() {
    let other_app = TestSigner::new("wx-another-app", MCH_ID, key());
    assert!(matches!(
        verify(&other_app.payment_notification("o1", Fen::new(1))).await,
        Err(Error::AccountMismatch { field: "appid", .. })
    ));
    let other_mch = TestSigner::new(APP_ID, "1900000000", key());
    assert!(matches!(
        verify(&other_mch.payment_notification("o1", Fen::new(1))).await,
        Err(Error::AccountMismatch {
            field: "mch_id",
            ..
        })
    ));
    // The free function checks the signature only.
    assert!(
        notify::verify_payment_notification(
            other_app.payment_notification("o1", Fen::new(1)).as_bytes(),
            &key(),
            NotifySignType::FromBody,
        )
        .is_ok()
    );
}

#[tokio::test]
async fn refund_notification_round_trip() {
    let info = signer().refund_notification_info("o1", "R1", Fen::new(350), Fen::new(100));
    let body = signer().refund_notification(&info);
    assert!(!body.contains("R1"), "the refund details travel encrypted");
    let n = client()
        .decrypt_refund_notification(body.as_bytes())
        .await
        .unwrap();
    assert_eq!(n.out_refund_no, "R1");
    assert_eq!(n.out_trade_no, "o1");
    assert_eq!(n.refund_fee, Fen::new(100));
    assert_eq!(n.total_fee, Fen::new(350));
    assert_eq!(n.refund_status, RefundStatus::Success);
    assert_eq!(n.refund_recv_account.as_deref(), Some("支付用户的零钱"));
}

#[tokio::test]
async fn refund_notification_with_the_wrong_key_fails() {
    let info = signer().refund_notification_info("o1", "R1", Fen::new(350), Fen::new(100));
    let forged =
        TestSigner::new(APP_ID, MCH_ID, ApiKey::new("not-the-key")).refund_notification(&info);
    let err = client()
        .decrypt_refund_notification(forged.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decrypt(_) | Error::Xml(_) | Error::Decode { .. }
        ),
        "{err:?}"
    );

    let no_req_info = "<xml><return_code>SUCCESS</return_code><appid>a</appid></xml>";
    assert!(matches!(
        client().decrypt_refund_notification(no_req_info.as_bytes()).await,
        Err(Error::Decode { field, .. }) if field == "req_info"
    ));
    let garbage =
        "<xml><return_code>SUCCESS</return_code><req_info>bm90IGJsb2Nrcw==</req_info></xml>";
    assert!(matches!(
        client()
            .decrypt_refund_notification(garbage.as_bytes())
            .await,
        Err(Error::Decrypt(_))
    ));
}

#[test]
fn replies() {
    assert_eq!(
        NotifyReply::fail("bad ]]> sign").to_xml(),
        "<xml><return_code><![CDATA[FAIL]]></return_code>\
         <return_msg><![CDATA[bad ]]]]><![CDATA[> sign]]></return_msg></xml>"
    );
    let parsed = Params::from_xml(NotifyReply::fail("bad ]]> sign").to_xml().as_bytes()).unwrap();
    assert_eq!(parsed.get("return_msg"), Some("bad ]]> sign"));
    assert!(NotifyReply::success().is_success());
}
