//! Every method: what is sent, and every way its answer can come back.

use alipay::{
    Error, Fen, Product, RefundQuery, TradeClose, TradePagePay, TradePay, TradePrecreate,
    TradeQuery, TradeRef, TradeRefund, TradeStatus, sign,
};
use serde_json::json;
use wiremock::MockServer;

use crate::support::{SignedCall, app_public_key, client, contract, gateway};

fn by_number(no: &str) -> TradeRef {
    TradeRef::OutTradeNo(no.to_owned())
}

#[tokio::test]
async fn precreate() {
    contract(
        TradePrecreate::new("A1", Fen::new(350), "Cola")
            .notify_url("https://shop.example/notify")
            .expires_at(time::macros::datetime!(2024-01-31 16:05:09 UTC)),
        SignedCall {
            method: "alipay.trade.precreate",
            biz: json!({"out_trade_no": "A1", "total_amount": "3.50", "subject": "Cola",
                        "time_expire": "2024-02-01 00:05:09"}),
            top: vec![("notify_url", "https://shop.example/notify".into())],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "A1", "qr_code": "https://qr.alipay.com/x"}),
        |r| assert_eq!((r.out_trade_no.as_str(), r.qr_code.as_str()), ("A1", "https://qr.alipay.com/x")),
    )
    .await;
}

#[tokio::test]
async fn barcode_pay_paid_or_waiting() {
    contract(
        TradePay::new("B1", "287951669925163381", Fen::new(1), "Gum"),
        SignedCall {
            method: "alipay.trade.pay",
            biz: json!({"out_trade_no": "B1", "auth_code": "287951669925163381",
                        "scene": "bar_code", "total_amount": "0.01"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "B1", "trade_no": "2024T1",
               "total_amount": "0.01", "buyer_pay_amount": "0.01"}),
        |r| {
            assert!(r.is_paid());
            assert_eq!(r.total_amount, Some(Fen::new(1)));
        },
    )
    .await;
    // 10003: the buyer has to confirm; a value, not an error.
    contract(
        TradePay::new("B2", "287951669925163381", Fen::new(100), "Gum"),
        SignedCall {
            method: "alipay.trade.pay",
            biz: json!({"out_trade_no": "B2"}),
            top: vec![],
        },
        json!({"code": "10003", "msg": " order success pay inprocess", "out_trade_no": "B2"}),
        |r| assert!(!r.is_paid()),
    )
    .await;
}

#[tokio::test]
async fn query() {
    contract(
        TradeQuery::new(TradeRef::TradeNo("2024T1".into())),
        SignedCall {
            method: "alipay.trade.query",
            biz: json!({"trade_no": "2024T1"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "trade_no": "2024T1", "out_trade_no": "A1",
               "trade_status": "TRADE_SUCCESS", "total_amount": "3.50", "send_pay_date": "2024-02-01 00:05:09"}),
        |r| {
            assert_eq!(r.trade_status, TradeStatus::TradeSuccess);
            assert_eq!(r.total_amount, Fen::new(350));
        },
    )
    .await;
}

#[tokio::test]
async fn close() {
    contract(
        TradeClose::new(by_number("A1")),
        SignedCall {
            method: "alipay.trade.close",
            biz: json!({"out_trade_no": "A1"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "A1", "trade_no": "2024T1"}),
        |r| assert_eq!(r.out_trade_no.as_deref(), Some("A1")),
    )
    .await;
}

#[tokio::test]
async fn refund() {
    contract(
        TradeRefund::new(by_number("A1"), "R1", Fen::new(150)).reason("one can missing"),
        SignedCall {
            method: "alipay.trade.refund",
            biz: json!({"out_trade_no": "A1", "out_request_no": "R1", "refund_amount": "1.50",
                        "refund_reason": "one can missing"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "A1", "trade_no": "2024T1",
               "fund_change": "Y", "refund_fee": "1.50"}),
        |r| {
            assert_eq!(r.refund_fee, Fen::new(150));
            assert_eq!(r.fund_change.as_deref(), Some("Y"));
        },
    )
    .await;
}

#[tokio::test]
async fn refund_query() {
    contract(
        RefundQuery::new(by_number("A1"), "R1"),
        SignedCall {
            method: "alipay.trade.fastpay.refund.query",
            biz: json!({"out_trade_no": "A1", "out_request_no": "R1"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "A1", "trade_no": "2024T1",
               "out_request_no": "R1", "refund_amount": "1.50", "refund_status": "REFUND_SUCCESS"}),
        |r| {
            assert!(r.is_refunded());
            assert_eq!(r.refund_amount, Some(Fen::new(150)));
        },
    )
    .await;
    // No such refund: an answer without the amount.
    contract(
        RefundQuery::new(by_number("A1"), "R9"),
        SignedCall {
            method: "alipay.trade.fastpay.refund.query",
            biz: json!({"out_request_no": "R9"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success"}),
        |r| assert!(!r.is_refunded()),
    )
    .await;
}

#[tokio::test]
async fn a_refusal_keeps_alipays_codes() {
    let server = MockServer::start().await;
    let body = gateway()
        .response(
            "alipay.trade.query",
            &json!({"code": "40004", "msg": "Business Failed",
                    "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"}),
        )
        .unwrap();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    match client(&server)
        .execute(&TradeQuery::new(by_number("A404")))
        .await
    {
        Err(Error::Gateway {
            code,
            sub_code,
            message,
        }) => {
            assert_eq!(code, "40004");
            assert_eq!(sub_code, alipay::SubCode::TradeNotExist);
            assert_eq!(message, "交易不存在");
        }
        other => panic!("{other:?}"),
    }
}

/// Page, mobile-web and app payments are signed, never posted.
#[tokio::test]
async fn checkout_urls_and_order_strings_are_signed() {
    let server = MockServer::start().await;
    let c = client(&server);
    for (product, method, code) in [
        (
            Product::Desktop,
            "alipay.trade.page.pay",
            "FAST_INSTANT_TRADE_PAY",
        ),
        (Product::MobileWeb, "alipay.trade.wap.pay", "QUICK_WAP_WAY"),
        (Product::App, "alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
    ] {
        let request = TradePagePay::new(product, "P1", Fen::new(2000), "Shoes")
            .notify_url("https://shop.example/notify")
            .return_url("https://shop.example/done");
        let encoded = if product == Product::App {
            c.order_string(&request).unwrap()
        } else {
            let url = c.page_url(&request).unwrap();
            let (gateway, query) = url.split_once('?').unwrap();
            assert_eq!(gateway, format!("{}/gateway.do", server.uri()));
            query.to_owned()
        };
        let form: std::collections::BTreeMap<String, String> =
            serde_urlencoded::from_str(&encoded).unwrap();
        assert_eq!(form["method"], method);
        let biz: serde_json::Value = serde_json::from_str(&form["biz_content"]).unwrap();
        assert_eq!(biz["product_code"], code);
        assert_eq!(biz["total_amount"], "20.00");
        assert_eq!(form["notify_url"], "https://shop.example/notify");
        let content = sign::canonical(
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            sign::REQUEST_EXCLUDES,
        );
        app_public_key().verify(&content, &form["sign"]).unwrap();
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[test]
fn keys_never_print() {
    let key = crate::support::app_key();
    let pem = key.to_pem().unwrap();
    let secret_line = pem.lines().nth(1).unwrap().to_owned();
    let client = alipay::Client::builder(
        "2021",
        key.clone(),
        crate::support::gateway_key().public_key(),
    )
    .build()
    .unwrap();
    for shown in [format!("{client:?}"), format!("{key:?}")] {
        assert!(!shown.contains(&secret_line), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[tokio::test]
async fn a_days_bill_url_is_asked_for_and_the_bill_downloaded() {
    let day = time::macros::date!(2026 - 12 - 05);
    let server = MockServer::start().await;
    let url = format!("{}/bills/trade-20261205.zip", server.uri());
    contract(
        alipay::BillDownloadUrlQuery::new(alipay::BillType::Trade, day),
        SignedCall {
            method: "alipay.data.dataservice.bill.downloadurl.query",
            biz: json!({"bill_type": "trade", "bill_date": "2026-12-05"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "bill_download_url": url}),
        |r| assert_eq!(r.bill_download_url, url),
    )
    .await;

    // The download, streamed into any writer.
    let zip = b"PK\x05\x06not really".to_vec();
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/bills/trade-20261205.zip"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(zip.clone()))
        .mount(&server)
        .await;
    let mut out = Vec::new();
    let written = client(&server).download_bill(&url, &mut out).await.unwrap();
    assert_eq!((written, out), (zip.len() as u64, zip));
    // An expired link: a transport error, not an empty bill.
    let mut out = Vec::new();
    let expired = client(&server)
        .download_bill(&format!("{}/bills/gone.zip", server.uri()), &mut out)
        .await;
    assert!(matches!(expired, Err(Error::Transport(_))), "{expired:?}");
}

#[tokio::test]
async fn no_bill_for_the_day_is_alipays_bill_not_exist() {
    let server = MockServer::start().await;
    let body = gateway()
        .response(
            "alipay.data.dataservice.bill.downloadurl.query",
            &json!({"code": "40004", "msg": "Business Failed",
                    "sub_code": "isp.bill_not_exist", "sub_msg": "账单不存在"}),
        )
        .unwrap();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let answer = client(&server)
        .execute(&alipay::BillDownloadUrlQuery::new(
            alipay::BillType::Trade,
            time::macros::date!(2026 - 12 - 05),
        ))
        .await
        .unwrap_err();
    assert_eq!(answer.sub_code(), Some(&alipay::SubCode::BillNotExist));
    assert!(answer.is_retryable(), "the bill may not be made yet");
}
