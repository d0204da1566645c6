//! Notifications: verified, then checked to name this app and seller, then decoded — or
//! refused, whatever was changed.

use alipay::{Error, Fen, NotifyReply, SignatureError, TradeStatus};
use wiremock::MockServer;

use crate::support::{APP_ID, SELLER_ID, client, gateway};

fn paid(app_id: &str, seller_id: &str, amount: &str) -> String {
    gateway()
        .notification(&[
            ("notify_time", "2024-02-01 00:05:09"),
            ("notify_type", "trade_status_sync"),
            ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
            ("app_id", app_id),
            ("seller_id", seller_id),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("trade_no", "2024T1"),
            ("out_trade_no", "A1"),
            ("buyer_id", "2088102122524333"),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", amount),
            ("receipt_amount", amount),
            ("subject", "可乐 Cola"),
            ("gmt_payment", "2024-02-01 00:05:08"),
        ])
        .unwrap()
}

#[tokio::test]
async fn a_signed_notification_for_this_app_and_seller_is_decoded() {
    let server = MockServer::start().await;
    let n = client(&server)
        .verify_notification(paid(APP_ID, SELLER_ID, "3.50").as_bytes())
        .unwrap();
    assert_eq!(n.out_trade_no, "A1");
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(n.total_amount, Fen::new(350));
    assert_eq!(n.receipt_amount, Some(Fen::new(350)));
    assert_eq!(n.fields["subject"], "可乐 Cola");
    assert_eq!(NotifyReply::Success.as_str(), "success");
    assert_eq!(NotifyReply::Fail.as_str(), "fail");
}

#[tokio::test]
async fn a_notification_signed_with_another_algorithm_says_so() {
    let server = MockServer::start().await;
    let good = paid(APP_ID, SELLER_ID, "3.50");
    // An app still on RSA (SHA1withRSA) sends sign_type=RSA: its signature (here: one over
    // other content) does not verify as RSA2, and the error says which algorithm to switch to.
    let rsa = good
        .replace("sign_type=RSA2", "sign_type=RSA")
        .replace("total_amount=3.50", "total_amount=3.51");
    assert_ne!(rsa, good);
    let e = client(&server).verify_notification(rsa.as_bytes());
    assert_eq!(
        e,
        Err(Error::Signature(SignatureError::SignTypeNotConfigured(
            "RSA".into()
        )))
    );
    let text = e.unwrap_err().to_string();
    assert!(text.contains("RSA2") && text.contains("\"RSA\""), "{text}");
}

#[tokio::test]
async fn forged_or_foreign_notifications_are_refused() {
    let server = MockServer::start().await;
    let c = client(&server);
    let good = paid(APP_ID, SELLER_ID, "3.50");

    let tampered = good.replace("total_amount=3.50", "total_amount=0.01");
    assert_eq!(
        c.verify_notification(tampered.as_bytes()),
        Err(Error::Signature(SignatureError::Mismatch))
    );
    let unsigned: String = good
        .split('&')
        .filter(|p| !p.starts_with("sign="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        c.verify_notification(unsigned.as_bytes()),
        Err(Error::Signature(SignatureError::Missing))
    );
    // Signed by the app's key instead of Alipay's.
    let stranger = alipay::test_util::TestGateway::new(crate::support::app_key())
        .notification(&[("app_id", APP_ID), ("out_trade_no", "A1")])
        .unwrap();
    assert!(matches!(
        c.verify_notification(stranger.as_bytes()),
        Err(Error::Signature(_))
    ));
    // Genuinely signed by Alipay, but for another app or another seller.
    match c.verify_notification(paid("2021000000000099", SELLER_ID, "3.50").as_bytes()) {
        Err(Error::AccountMismatch { field, .. }) => assert_eq!(field, "app_id"),
        other => panic!("{other:?}"),
    }
    match c.verify_notification(paid(APP_ID, "2088000000000099", "3.50").as_bytes()) {
        Err(Error::AccountMismatch { field, .. }) => assert_eq!(field, "seller_id"),
        other => panic!("{other:?}"),
    }
    // Signed, but the amount is not a yuan amount.
    assert!(matches!(
        c.verify_notification(paid(APP_ID, SELLER_ID, "3.505").as_bytes()),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        c.verify_notification(b"%%%not a form"),
        Err(Error::Decode { .. }) | Err(Error::Signature(_))
    ));
}
