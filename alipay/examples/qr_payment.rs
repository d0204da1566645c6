//! A QR payment end to end against a local stand-in for Alipay's gateway (no network, no
//! account): create the QR code, receive the signed notification, verify it, answer — then see
//! a forged notification refused.
//!
//! `cargo run -p alipay --example qr_payment --features test-util`

use alipay::test_util::TestGateway;
use alipay::{Client, Fen, NotifyReply, PrivateKey, TradePrecreate};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keys: the app's (it signs requests) and the gateway's (it signs answers and notifications).
    let app_key = PrivateKey::from_pem(include_str!("../testdata/app_private_key.pem"))?;
    let gateway_key = PrivateKey::from_pem(include_str!("../testdata/gateway_private_key.pem"))?;
    let gateway = TestGateway::new(gateway_key.clone());

    // The stand-in answers precreate as Alipay does, signed.
    let server = MockServer::start().await;
    let answer = gateway.response(
        "alipay.trade.precreate",
        &json!({"code": "10000", "msg": "Success", "out_trade_no": "ORDER-1",
                "qr_code": "https://qr.alipay.com/bax00001"}),
    )?;
    Mock::given(method("POST"))
        .and(body_string_contains("alipay.trade.precreate"))
        .respond_with(ResponseTemplate::new(200).set_body_string(answer))
        .mount(&server)
        .await;

    let client = Client::builder("2021000000000042", app_key, gateway_key.public_key())
        .base_url(server.uri())
        .seller_id("2088000000000042")
        .build()?;
    let created = client
        .execute(
            &TradePrecreate::new("ORDER-1", Fen::new(350), "Cola 330ml")
                .notify_url("https://shop.example/notify/alipay"),
        )
        .await?;
    println!("1. show this QR code to the buyer: {}", created.qr_code);

    // The buyer pays; Alipay POSTs the notification.
    let fields = [
        ("app_id", "2021000000000042"),
        ("seller_id", "2088000000000042"),
        ("notify_type", "trade_status_sync"),
        ("out_trade_no", "ORDER-1"),
        ("trade_no", "2024010122001400000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", "3.50"),
    ];
    let body = gateway.notification(&fields)?;
    let n = client.verify_notification(body.as_bytes())?;
    assert!(n.trade_status.is_paid());
    assert_eq!(n.total_amount, Fen::new(350), "compare amounts as integers");
    println!(
        "2. verified: {} paid {} yuan; answer {:?}",
        n.out_trade_no,
        n.total_amount,
        NotifyReply::Success.as_str()
    );

    // Someone changes the amount: the signature no longer matches.
    let forged = body.replace("total_amount=3.50", "total_amount=0.01");
    match client.verify_notification(forged.as_bytes()) {
        Err(refused) => println!("3. a forged notification is refused: {refused}"),
        Ok(n) => return Err(format!("a forged notification was accepted: {n:?}").into()),
    }
    Ok(())
}
