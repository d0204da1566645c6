//! Every method: what is sent, and every way its answer can come back.

use alipay::{
    Buyer, Error, Fen, FundTransfer, FundTransferQuery, OauthToken, Payee, PayeeIdentity, Product,
    RefundQuery, TradeCancel, TradeClose, TradeCreate, TradePagePay, TradePay, TradePrecreate,
    TradeQuery, TradeRef, TradeRefund, TradeStatus, TransferStatus, UserInfoShare, sign,
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

#[tokio::test]
async fn create_for_the_mini_program() {
    contract(
        TradeCreate::new(
            "M1",
            Fen::new(250),
            "Cola",
            Buyer::UserId("2088102146225135".into()),
        )
        .op_app_id("2021000000000099")
        .notify_url("https://shop.example/notify"),
        SignedCall {
            method: "alipay.trade.create",
            biz: json!({"out_trade_no": "M1", "total_amount": "2.50", "subject": "Cola",
                        "buyer_id": "2088102146225135", "product_code": "JSAPI_PAY",
                        "op_app_id": "2021000000000099"}),
            top: vec![("notify_url", "https://shop.example/notify".into())],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "M1", "trade_no": "2024M1"}),
        |r| assert_eq!(r.trade_no, "2024M1"),
    )
    .await;
    let open = serde_json::to_value(TradeCreate::new(
        "M2",
        Fen::new(1),
        "Gum",
        Buyer::OpenId("074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5".into()),
    ))
    .unwrap();
    assert!(open.get("buyer_open_id").is_some() && open.get("buyer_id").is_none());
}

#[tokio::test]
async fn cancel_closes_or_refunds() {
    contract(
        TradeCancel::new(by_number("C1")),
        SignedCall {
            method: "alipay.trade.cancel",
            biz: json!({"out_trade_no": "C1"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_trade_no": "C1", "trade_no": "2024C1",
               "retry_flag": "N", "action": "refund"}),
        |r| {
            assert_eq!(r.action.as_deref(), Some("refund"));
            assert!(!r.must_retry());
        },
    )
    .await;
}

#[tokio::test]
async fn transfer_and_its_query() {
    contract(
        FundTransfer::new(
            "T1",
            Fen::new(1234),
            "Refund of deposit",
            Payee::new(PayeeIdentity::AlipayLogonId, "buyer@example.com").name("张三"),
        )
        .remark("deposit"),
        SignedCall {
            method: "alipay.fund.trans.uni.transfer",
            biz: json!({"out_biz_no": "T1", "trans_amount": "12.34",
                        "product_code": "TRANS_ACCOUNT_NO_PWD", "biz_scene": "DIRECT_TRANSFER",
                        "order_title": "Refund of deposit", "remark": "deposit",
                        "payee_info": {"identity": "buyer@example.com",
                                       "identity_type": "ALIPAY_LOGON_ID", "name": "张三"}}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "out_biz_no": "T1", "order_id": "2024T1",
               "pay_fund_order_id": "2024F1", "status": "SUCCESS", "trans_date": "2024-01-01 12:00:00"}),
        |r| {
            assert_eq!(r.status, TransferStatus::Success);
            assert!(r.status.is_final());
            assert_eq!(r.order_id, "2024T1");
        },
    )
    .await;
    contract(
        FundTransferQuery::by_out_biz_no("T1"),
        SignedCall {
            method: "alipay.fund.trans.common.query",
            biz: json!({"out_biz_no": "T1", "product_code": "TRANS_ACCOUNT_NO_PWD",
                        "biz_scene": "DIRECT_TRANSFER"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "order_id": "2024T1", "out_biz_no": "T1",
               "status": "DEALING", "trans_amount": "12.34"}),
        |r| {
            assert_eq!(r.status, TransferStatus::Dealing);
            assert!(!r.status.is_final());
            assert_eq!(r.trans_amount, Fen::new(1234));
        },
    )
    .await;
}

#[tokio::test]
async fn buyer_login_exchanges_the_code_and_reads_the_profile() {
    contract(
        OauthToken::code("4b203fe6c11548bcabd8da5bb087a83b"),
        SignedCall {
            method: "alipay.system.oauth.token",
            biz: json!({}),
            top: vec![
                ("grant_type", "authorization_code".into()),
                ("code", "4b203fe6c11548bcabd8da5bb087a83b".into()),
            ],
        },
        json!({"user_id": "2088102150477652", "access_token": "20120823ac6ffaa4d2d84e7384bf983531473993",
               "expires_in": "3600", "refresh_token": "20120823ac6ffdsdf2d84e7384bf983531473993",
               "re_expires_in": "3600", "code": "10000", "msg": "Success"}),
        |r| {
            assert_eq!(r.buyer(), Some("2088102150477652"));
            assert_eq!(r.expires_in, 3600);
            // The token never prints.
            let shown = format!("{r:?}");
            assert!(!shown.contains("20120823ac6f"), "{shown}");
        },
    )
    .await;
    contract(
        UserInfoShare::new("20120823ac6ffaa4d2d84e7384bf983531473993"),
        SignedCall {
            method: "alipay.user.info.share",
            biz: json!({}),
            top: vec![(
                "auth_token",
                "20120823ac6ffaa4d2d84e7384bf983531473993".into(),
            )],
        },
        json!({"code": "10000", "msg": "Success", "user_id": "2088102150477652",
               "nick_name": "Buyer", "avatar": "https://tfs.alipayobjects.com/images/a.jpg"}),
        |r| assert_eq!(r.nick_name.as_deref(), Some("Buyer")),
    )
    .await;
    assert!(!format!("{:?}", OauthToken::code("secret-code")).contains("secret-code"));
    assert!(!format!("{:?}", UserInfoShare::new("secret-token")).contains("secret-token"));

    // The login methods send no biz_content at all; an invalid code is Alipay's error_response.
    let server = MockServer::start().await;
    let refusal = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"},"sign":"SIGN"}"#;
    let body = refusal.replace(
        "SIGN",
        &gateway_key_sign(r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}"#),
    );
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(body))
        .mount(&server)
        .await;
    let refused = client(&server)
        .execute(&OauthToken::code("used"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.sub_code().map(|c| c.as_str()),
        Some("isv.code-invalid")
    );
    let sent = &server.received_requests().await.unwrap()[0];
    assert!(!String::from_utf8_lossy(&sent.body).contains("biz_content"));
}

fn gateway_key_sign(content: &str) -> String {
    crate::support::gateway_key().sign(content).unwrap()
}

#[test]
fn the_web_login_url_names_the_app_scope_return_and_state() {
    let server_less = alipay::Client::builder(
        crate::support::APP_ID,
        crate::support::app_key(),
        crate::support::gateway_key().public_key(),
    )
    .build()
    .unwrap();
    let url = server_less
        .oauth_authorize_url(
            "https://vend.example/api/oauth/alipay/callback?x=1",
            alipay::AuthScope::Base,
            "n0nce-1",
        )
        .unwrap();
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(
        parsed.as_str().split('?').next(),
        Some(alipay::DEFAULT_AUTHORIZE_URL)
    );
    let q: std::collections::BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["app_id"], crate::support::APP_ID);
    assert_eq!(q["scope"], "auth_base");
    assert_eq!(
        q["redirect_uri"],
        "https://vend.example/api/oauth/alipay/callback?x=1"
    );
    assert_eq!(q["state"], "n0nce-1");
    for bad in ["", "a b", &"x".repeat(129)] {
        assert!(
            server_less
                .oauth_authorize_url("https://vend.example/cb", alipay::AuthScope::User, bad)
                .is_err()
        );
    }
}

#[tokio::test]
async fn a_merchant_authorizes_the_provider_and_calls_carry_its_token() {
    use alipay::{OpenAuthToken, OpenAuthTokenQuery};
    contract(
        OpenAuthToken::code("P6f5a1ab0de1c4cd8b5f2bbd1c2e58B9"),
        SignedCall {
            method: "alipay.open.auth.token.app",
            biz: json!({"grant_type": "authorization_code", "code": "P6f5a1ab0de1c4cd8b5f2bbd1c2e58B9"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "user_id": "2088102150527498",
               "auth_app_id": "2013121100055554", "app_auth_token": "201509BBeff9351ad1874306903e96b91d248A36",
               "app_refresh_token": "201509BBdcba1e3347de4e75ba3fed2c9abebE36", "expires_in": "123456"}),
        |r| {
            assert_eq!(r.user_id.as_deref(), Some("2088102150527498"));
            assert_eq!(r.expires_in, 123_456);
            assert!(!format!("{r:?}").contains("201509BB"), "a token printed");
        },
    )
    .await;
    contract(
        OpenAuthToken::refresh("201509BBdcba1e3347de4e75ba3fed2c9abebE36"),
        SignedCall {
            method: "alipay.open.auth.token.app",
            biz: json!({"grant_type": "refresh_token", "refresh_token": "201509BBdcba1e3347de4e75ba3fed2c9abebE36"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "app_auth_token": "201509BBnew"}),
        |r| assert_eq!(r.app_auth_token, "201509BBnew"),
    )
    .await;
    contract(
        OpenAuthTokenQuery::new("201509BBeff9351ad1874306903e96b91d248A36"),
        SignedCall {
            method: "alipay.open.auth.token.app.query",
            biz: json!({"app_auth_token": "201509BBeff9351ad1874306903e96b91d248A36"}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "user_id": "2088102150527498", "status": "valid",
               "auth_methods": ["alipay.trade.precreate"], "auth_end": "2027-12-07 10:00:00"}),
        |r| assert!(r.is_valid()),
    )
    .await;
    assert!(!format!("{:?}", OpenAuthToken::code("secret-code")).contains("secret-code"));

    // Any call for the merchant carries (and signs) its token.
    let server = MockServer::start().await;
    let answer = gateway()
        .response(
            "alipay.trade.precreate",
            &json!({"code": "10000", "msg": "Success", "out_trade_no": "SP1", "qr_code": "https://qr.alipay.com/sp"}),
        )
        .unwrap();
    wiremock::Mock::given(SignedCall {
        method: "alipay.trade.precreate",
        biz: json!({"out_trade_no": "SP1"}),
        top: vec![("app_auth_token", "201509BBmerchant".into())],
    })
    .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(answer))
    .expect(1)
    .mount(&server)
    .await;
    let created = client(&server)
        .execute_for(
            "201509BBmerchant",
            &TradePrecreate::new("SP1", Fen::new(100), "Cola"),
        )
        .await
        .unwrap();
    assert_eq!(created.out_trade_no, "SP1");
    assert!(matches!(
        client(&server)
            .execute_for(" ", &TradePrecreate::new("SP2", Fen::new(100), "Cola"))
            .await,
        Err(Error::Config(_))
    ));

    let url = client(&server)
        .app_auth_url(
            alipay::DEFAULT_APP_AUTH_URL,
            "https://platform.example/alipay/authorized",
            "m-42",
        )
        .unwrap();
    let parsed = reqwest::Url::parse(&url).unwrap();
    let q: std::collections::BTreeMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["app_id"], crate::support::APP_ID);
    assert_eq!(
        q["redirect_uri"],
        "https://platform.example/alipay/authorized"
    );
    assert_eq!(q["state"], "m-42");
}

#[tokio::test]
async fn settlement_sharing_binds_receivers_and_settles_a_paid_trade() {
    use alipay::{
        AccountType, RoyaltyReceiver, RoyaltyRelationBind, RoyaltyShare, TradeOrderSettle,
    };
    contract(
        RoyaltyRelationBind::new(
            "BIND-1",
            vec![RoyaltyReceiver::new(AccountType::UserId, "2088101126708402").name("平台")],
        ),
        SignedCall {
            method: "alipay.trade.royalty.relation.bind",
            biz: json!({"out_request_no": "BIND-1",
                        "receiver_list": [{"type": "userId", "account": "2088101126708402", "name": "平台"}]}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "result_code": "SUCCESS"}),
        |r| assert_eq!(r.result_code.as_deref(), Some("SUCCESS")),
    )
    .await;
    contract(
        TradeOrderSettle::new(
            "SETTLE-1",
            "2024T1",
            vec![RoyaltyShare::new(AccountType::UserId, "2088101126708402", Fen::new(6)).desc("fee")],
        ),
        SignedCall {
            method: "alipay.trade.order.settle",
            biz: json!({"out_request_no": "SETTLE-1", "trade_no": "2024T1",
                        "royalty_parameters": [{"royalty_type": "transfer", "trans_in_type": "userId",
                                                "trans_in": "2088101126708402", "amount": "0.06", "desc": "fee"}]}),
            top: vec![],
        },
        json!({"code": "10000", "msg": "Success", "trade_no": "2024T1", "settle_no": "20241207S1"}),
        |r| assert_eq!(r.settle_no.as_deref(), Some("20241207S1")),
    )
    .await;
}
