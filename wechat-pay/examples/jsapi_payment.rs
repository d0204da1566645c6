//! A JSAPI payment end to end, against a local stand-in for WeChat Pay (wiremock), with no
//! merchant account and no network:
//!
//! 1. create the order (`/pay/unifiedorder`);
//! 2. hand the page its `wx.requestPayment` parameters;
//! 3. receive and verify WeChat's payment notification;
//! 4. answer `SUCCESS`.
//!
//! Run: `cargo run -p wechat-pay --example jsapi_payment`

use wechat_pay::test_util::TestSigner;
use wechat_pay::{ApiKey, Client, Fen, NotifyReply, Params, Trade, UnifiedOrder};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

// WeChat's documented test merchant.
const APP_ID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";
const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A stand-in for api.mch.weixin.qq.com that signs its replies like WeChat does.
    let wechat = MockServer::start().await;
    let signer = TestSigner::new(APP_ID, MCH_ID, ApiKey::new(API_KEY));
    let reply: Params = [
        ("trade_type", "JSAPI"),
        ("prepay_id", "wx201410272009395522657a690389285100"),
    ]
    .into_iter()
    .collect();
    Mock::given(method("POST"))
        .and(path("/pay/unifiedorder"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(signer.reply(reply), "text/xml"))
        .mount(&wechat)
        .await;

    // 1. Create the order.
    let client = Client::builder(APP_ID, MCH_ID, ApiKey::new(API_KEY))
        .base_url(wechat.uri())
        .build()?;
    println!("client: {client:?}");
    let order_no = "20240101000001";
    let price = Fen::new(350);
    let created = client
        .execute(&UnifiedOrder::new(
            Trade::jsapi("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            "Cola 330ml",
            order_no,
            price,
            "203.0.113.7",
            "https://shop.example/notify/wechat",
        ))
        .await?;
    println!(
        "1. order {order_no} created, prepay_id = {}",
        created.prepay_id
    );

    // 2. What the page passes to wx.requestPayment.
    let params = client.jsapi_params(&created.prepay_id)?;
    println!(
        "2. wx.requestPayment({})",
        serde_json::to_string_pretty(&params)?
    );

    // 3. WeChat POSTs the result to the notify URL; verify it and check the amount as integers.
    let body = signer.payment_notification(order_no, price);
    let reply = match client.verify_payment_notification(body.as_bytes()).await {
        Ok(n) if n.out_trade_no == order_no && n.total_fee == price => {
            println!(
                "3. paid: {} fen, transaction {}",
                n.total_fee, n.transaction_id
            );
            NotifyReply::success()
        }
        Ok(n) => NotifyReply::fail(format!("unexpected order or amount: {}", n.out_trade_no)),
        Err(e) => NotifyReply::fail(e.to_string()),
    };
    // 4. The HTTP response body that stops WeChat's retries.
    println!("4. reply: {}", reply.to_xml());

    // A forged notification (signed with another key) is refused and not acknowledged.
    let forger = TestSigner::new(APP_ID, MCH_ID, ApiKey::new("guessed-key"));
    let forged = forger.payment_notification(order_no, Fen::new(1));
    match client.verify_payment_notification(forged.as_bytes()).await {
        Err(e) => println!("   forged notification refused: {e}"),
        Ok(_) => return Err("a forged notification verified".into()),
    }
    Ok(())
}
