//! The attacker's second pass (issue 27), against a live server with `wechat-sandbox` standing
//! in for WeChat: each test is the attack, and fails for the attacker.

use base64::Engine as _;

use super::live::live_with;
use crate::support::{start_gateway, wechat_v3_credentials_with_login};

/// The certificate downloads `/metrics` reports.
async fn certificate_downloads(v: &super::Vending) -> u64 {
    let text = v.text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("vending_wechat_certificate_downloads{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Finding 4: in platform-certificate mode, any unauthenticated POST to `/notify/wechat` with
/// an unknown `Wechatpay-Serial` made the server download certificates with the merchant's
/// credentials (20 forged requests, 20 downloads). 100 forged notifications now make at most
/// one, and the metric says so.
#[tokio::test]
async fn forged_notifications_with_unknown_serials_make_at_most_one_certificate_download() {
    let gateway = start_gateway().await;
    let v = live_with(&gateway, wechat_v3_credentials_with_login(&gateway, true)).await;
    // A real sale first: the certificates are downloaded once, as they must be.
    let order = v.order_on("VM0001", 1, "wechat").await;
    let no = order["order_no"].as_str().unwrap().to_owned();
    v.emulator("/sandbox/pay", serde_json::json!({"out_trade_no": no}))
        .await;
    v.wait_for(&no, "COMPLETED", 20).await;
    let before = certificate_downloads(&v).await;
    assert!(before >= 1, "the real notification needed the certificates");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = base64::engine::general_purpose::STANDARD.encode([0x42u8; 256]);
    for i in 0..100 {
        let status = v
            .http
            .post(format!("{}/notify/wechat", v.url))
            .header("Wechatpay-Serial", format!("{i:040X}"))
            .header("Wechatpay-Timestamp", now.to_string())
            .header("Wechatpay-Nonce", format!("n{i}"))
            .header("Wechatpay-Signature", &signature)
            .header("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")
            .body(r#"{"id":"forged","event_type":"TRANSACTION.SUCCESS","resource":{}}"#)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status.is_server_error(),
            "refused, to be sent again: {status}"
        );
    }
    let after = certificate_downloads(&v).await;
    assert!(
        after <= before + 1,
        "100 forged notifications made {} downloads",
        after - before
    );
    v.stop().await;
    gateway.shutdown().await;
}
