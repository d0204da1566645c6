//! An API v3 JSAPI payment end to end, against a local stand-in for WeChat Pay (wiremock,
//! signing like WeChat with the test keys in `testdata/v3`), with no merchant account and no
//! network:
//!
//! 1. create the order (`POST /v3/pay/transactions/jsapi`), the answer's signature verified;
//! 2. hand the page its `wx.requestPayment` parameters (`signType: "RSA"`);
//! 3. receive WeChat's notification: verify its signature, decrypt its resource;
//! 4. answer 204.
//!
//! Run: `cargo run -p wechat-pay --example v3_jsapi_payment --features test-util`

use serde_json::json;
use wechat_pay::Fen;
use wechat_pay::test_util::V3Wechat;
use wechat_pay::v3::{
    ApiV3Key, Client, JsapiOrder, MerchantKey, Notification, OrderRequest, WechatPayKey, notify,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MCH_ID: &str = "1900009191";
const APP_ID: &str = "wxd678efh567hg6787";
const MERCHANT_SERIAL: &str = "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C";
const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";
const API_V3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A stand-in for api.mch.weixin.qq.com that signs its answers like WeChat Pay.
    let wechat = V3Wechat::new(
        include_str!("../testdata/v3/wechatpay_private_key.pem"),
        PUBLIC_KEY_ID,
        ApiV3Key::new(API_V3_KEY)?,
    )?;
    let server = MockServer::start().await;
    let prepay = json!({"prepay_id": "wx201410272009395522657a690389285100"}).to_string();
    let mut answer = ResponseTemplate::new(200).set_body_raw(prepay.clone(), "application/json");
    for (name, value) in wechat.sign(&prepay) {
        answer = answer.insert_header(name, value.as_str());
    }
    Mock::given(method("POST"))
        .and(path("/v3/pay/transactions/jsapi"))
        .respond_with(answer)
        .mount(&server)
        .await;

    // The merchant's client: its API certificate key and serial, its API v3 key, and the
    // WeChat Pay public key (with its id) from the merchant platform.
    let client = Client::builder(
        MCH_ID,
        MERCHANT_SERIAL,
        MerchantKey::from_pem(include_str!("../testdata/v3/merchant_private_key.pem"))?,
        ApiV3Key::new(API_V3_KEY)?,
    )
    .wechat_pay_key(WechatPayKey::from_pem(
        PUBLIC_KEY_ID,
        include_str!("../testdata/v3/wechatpay_public_key.pem"),
    )?)
    .base_url(server.uri())
    .build()?;
    println!("client: {client:?}");

    // 1. Create the order.
    let created = client
        .execute(&JsapiOrder {
            order: OrderRequest::new(
                APP_ID,
                "Cola 330ml",
                "V3ORDER0001",
                Fen::new(350),
                "https://shop.example/notify/wechat",
            ),
            openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        })
        .await?;
    println!("1. order created, prepay_id = {}", created.prepay_id);

    // 2. What the page passes to wx.requestPayment.
    let params = client.jsapi_params(APP_ID, &created.prepay_id)?;
    println!(
        "2. wx.requestPayment({})",
        serde_json::to_string_pretty(&params)?
    );

    // 3. WeChat POSTs the result: headers and raw body, verified then decrypted.
    let (body, headers) = wechat.notification(
        "TRANSACTION.SUCCESS",
        "transaction",
        &json!({
            "appid": APP_ID, "mchid": MCH_ID, "out_trade_no": "V3ORDER0001",
            "transaction_id": "4200000000000000000000000001", "trade_type": "JSAPI",
            "trade_state": "SUCCESS", "trade_state_desc": "支付成功",
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": 350, "payer_total": 350, "currency": "CNY"},
        }),
    );
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (status, reply) = match client.notification(header, body.as_bytes()).await {
        Ok((_, Notification::Transaction(t)))
            if t.out_trade_no == "V3ORDER0001"
                && t.amount.as_ref().is_some_and(|a| a.total == Fen::new(350)) =>
        {
            println!(
                "3. paid: {} fen, transaction {}",
                t.amount.map(|a| a.total.as_u64()).unwrap_or_default(),
                t.transaction_id.unwrap_or_default()
            );
            notify::reply_success()
        }
        Ok((_, other)) => notify::reply_fail(&format!("unexpected: {other:?}")),
        Err(e) => notify::reply_fail(&e.to_string()),
    };
    // 4. The HTTP answer that stops WeChat's retries.
    println!("4. reply: HTTP {status} {reply:?}");
    if status != 204 {
        return Err("the notification was not accepted".into());
    }

    // A forged notification (signed with another key) is refused.
    let forger = V3Wechat::new(
        include_str!("../testdata/v3/merchant_private_key.pem"),
        PUBLIC_KEY_ID,
        ApiV3Key::new(API_V3_KEY)?,
    )?;
    let (body, headers) = forger.notification("TRANSACTION.SUCCESS", "transaction", &json!({}));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    match client.notification(header, body.as_bytes()).await {
        Err(e) => println!("   forged notification refused: {e}"),
        Ok(_) => return Err("a forged notification verified".into()),
    }
    Ok(())
}
