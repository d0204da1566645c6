//! Every merchant endpoint through the reply-path contract, plus its typed decoding.

use wechat_pay::{
    CloseOrder, ErrCode, Fen, H5Info, Micropay, MicropayOutcome, OrderId, OrderQuery, Recall,
    Refund, RefundAccount, RefundQuery, RefundQueryBy, RefundStatus, Reverse, Trade, TradeState,
    TradeType, UnifiedOrder,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{APP_ID, SignedRequest, client, contract, params, signer, xml};

fn order(trade: Trade) -> UnifiedOrder {
    UnifiedOrder::new(
        trade,
        "腾讯充值中心-QQ会员充值",
        "20240101000001",
        Fen::new(350),
        "203.0.113.7",
        "https://shop.example/notify/wechat",
    )
}

#[tokio::test]
async fn unified_order_jsapi() {
    let r = contract(
        &order(Trade::jsapi("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")).attach("machine=M001"),
        "/pay/unifiedorder",
        &[
            ("trade_type", "JSAPI"),
            ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            ("body", "腾讯充值中心-QQ会员充值"),
            ("out_trade_no", "20240101000001"),
            ("total_fee", "350"),
            ("spbill_create_ip", "203.0.113.7"),
            ("notify_url", "https://shop.example/notify/wechat"),
            ("attach", "machine=M001"),
        ],
        params(&[
            ("trade_type", "JSAPI"),
            ("prepay_id", "wx201410272009395522657a690389285100"),
        ]),
    )
    .await;
    assert_eq!(r.trade_type, TradeType::Jsapi);
    assert_eq!(r.prepay_id, "wx201410272009395522657a690389285100");
    assert_eq!(r.app_id, APP_ID);
    assert_eq!(r.code_url, None);
}

#[tokio::test]
async fn unified_order_native() {
    let r = contract(
        &order(Trade::native("sku-42")),
        "/pay/unifiedorder",
        &[("trade_type", "NATIVE"), ("product_id", "sku-42")],
        params(&[
            ("trade_type", "NATIVE"),
            ("prepay_id", "wx2014"),
            ("code_url", "weixin://wxpay/bizpayurl?pr=abc"),
        ]),
    )
    .await;
    assert_eq!(
        r.code_url.as_deref(),
        Some("weixin://wxpay/bizpayurl?pr=abc")
    );
}

#[tokio::test]
async fn unified_order_app_and_mweb() {
    let r = contract(
        &order(Trade::App),
        "/pay/unifiedorder",
        &[("trade_type", "APP")],
        params(&[("trade_type", "APP"), ("prepay_id", "wx2014")]),
    )
    .await;
    assert_eq!(r.trade_type, TradeType::App);

    let scene = H5Info::Wap {
        wap_url: "https://m.shop.example".into(),
        wap_name: "shop".into(),
    };
    let r = contract(
        &order(Trade::Mweb {
            scene: scene.clone(),
        }),
        "/pay/unifiedorder",
        &[
            ("trade_type", "MWEB"),
            ("scene_info", &scene.to_scene_info()),
        ],
        params(&[
            ("trade_type", "MWEB"),
            ("prepay_id", "wx2014"),
            (
                "mweb_url",
                "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2014",
            ),
        ]),
    )
    .await;
    assert!(r.mweb_url.unwrap().starts_with("https://wx.tenpay.com/"));
}

#[tokio::test]
async fn order_query_by_either_number() {
    let paid = params(&[
        ("trade_state", "SUCCESS"),
        ("trade_state_desc", "支付成功"),
        ("out_trade_no", "20240101000001"),
        ("transaction_id", "4200000001"),
        ("openid", "o1"),
        ("is_subscribe", "N"),
        ("trade_type", "JSAPI"),
        ("bank_type", "CMC"),
        ("total_fee", "350"),
        ("cash_fee", "300"),
        ("coupon_fee", "50"),
        ("coupon_count", "1"),
        ("coupon_id_0", "10000"),
        ("coupon_fee_0", "50"),
        ("time_end", "20240101120000"),
    ]);
    let r = contract(
        &OrderQuery::new(OrderId::OutTradeNo("20240101000001".into())),
        "/pay/orderquery",
        &[("out_trade_no", "20240101000001")],
        paid.clone(),
    )
    .await;
    assert_eq!(r.trade_state, TradeState::Success);
    assert_eq!(r.total_fee, Some(Fen::new(350)));
    assert_eq!(r.cash_fee, Some(Fen::new(300)));
    assert_eq!(r.coupons.len(), 1);
    assert_eq!(r.coupons[0].fee, Fen::new(50));
    assert_eq!(r.is_subscribe, Some(false));

    contract(
        &OrderQuery::new(OrderId::TransactionId("4200000001".into())),
        "/pay/orderquery",
        &[("transaction_id", "4200000001")],
        paid,
    )
    .await;

    // Unpaid is a state, not an error, and the paid-only fields are absent.
    let r = contract(
        &OrderQuery::new(OrderId::OutTradeNo("20240101000002".into())),
        "/pay/orderquery",
        &[("out_trade_no", "20240101000002")],
        params(&[
            ("trade_state", "NOTPAY"),
            ("out_trade_no", "20240101000002"),
        ]),
    )
    .await;
    assert_eq!(r.trade_state, TradeState::NotPay);
    assert_eq!(r.transaction_id, None);
}

#[tokio::test]
async fn close_order() {
    contract(
        &CloseOrder::new("20240101000001"),
        "/pay/closeorder",
        &[("out_trade_no", "20240101000001")],
        params(&[]),
    )
    .await;

    // Closing a paid order: WeChat's ORDERPAID is a typed business error.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/closeorder"))
        .respond_with(xml(signer().business_failure("ORDERPAID", "订单已支付")))
        .mount(&server)
        .await;
    let err = client(&server)
        .execute(&CloseOrder::new("20240101000001"))
        .await
        .unwrap_err();
    assert_eq!(err.err_code(), Some(&ErrCode::OrderPaid));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn refund() {
    let r = contract(
        &Refund::new(
            OrderId::OutTradeNo("20240101000001".into()),
            "R20240101000001",
            Fen::new(350),
            Fen::new(100),
        )
        .refund_desc("vend failed")
        .refund_account(RefundAccount::RechargeFunds)
        .notify_url("https://shop.example/notify/wechat/refund"),
        "/secapi/pay/refund",
        &[
            ("out_trade_no", "20240101000001"),
            ("out_refund_no", "R20240101000001"),
            ("total_fee", "350"),
            ("refund_fee", "100"),
            ("refund_desc", "vend failed"),
            ("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS"),
            ("notify_url", "https://shop.example/notify/wechat/refund"),
        ],
        params(&[
            ("transaction_id", "4200000001"),
            ("out_trade_no", "20240101000001"),
            ("out_refund_no", "R20240101000001"),
            ("refund_id", "50000000012024"),
            ("refund_fee", "100"),
            ("total_fee", "350"),
            ("cash_fee", "350"),
        ]),
    )
    .await;
    assert_eq!(r.refund_fee, Fen::new(100));
    assert_eq!(r.refund_id, "50000000012024");
}

#[tokio::test]
async fn refund_query() {
    let r = contract(
        &RefundQuery::new(RefundQueryBy::OutRefundNo("R1".into())).offset(10),
        "/pay/refundquery",
        &[("out_refund_no", "R1"), ("offset", "10")],
        params(&[
            ("transaction_id", "4200000001"),
            ("out_trade_no", "o1"),
            ("total_fee", "350"),
            ("cash_fee", "350"),
            ("refund_count", "1"),
            ("out_refund_no_0", "R1"),
            ("refund_id_0", "5000"),
            ("refund_fee_0", "100"),
            ("refund_status_0", "PROCESSING"),
        ]),
    )
    .await;
    assert_eq!(r.refunds.len(), 1);
    assert_eq!(r.refunds[0].refund_status, RefundStatus::Processing);
}

#[tokio::test]
async fn micropay() {
    let request = Micropay::new(
        "Cola",
        "20240101000003",
        Fen::new(350),
        "203.0.113.7",
        "134567890123456789",
    );
    let outcome = contract(
        &request,
        "/pay/micropay",
        &[
            ("auth_code", "134567890123456789"),
            ("total_fee", "350"),
            ("body", "Cola"),
        ],
        params(&[
            ("transaction_id", "4200000003"),
            ("out_trade_no", "20240101000003"),
            ("openid", "o1"),
            ("trade_type", "MICROPAY"),
            ("bank_type", "CMC"),
            ("total_fee", "350"),
            ("cash_fee", "350"),
            ("time_end", "20240101120000"),
        ]),
    )
    .await;
    match outcome {
        MicropayOutcome::Paid(paid) => assert_eq!(paid.total_fee, Fen::new(350)),
        other => panic!("expected paid, got {other:?}"),
    }

    // USERPAYING is a state the caller polls, not an error.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/micropay"))
        .and(SignedRequest::merchant(wechat_pay::SignType::Md5, &[]))
        .respond_with(xml(
            signer().business_failure("USERPAYING", "需要用户输入支付密码")
        ))
        .mount(&server)
        .await;
    assert_eq!(
        client(&server).execute(&request).await.unwrap(),
        MicropayOutcome::UserPaying
    );
}

#[tokio::test]
async fn reverse() {
    let r = contract(
        &Reverse::new(OrderId::OutTradeNo("20240101000003".into())),
        "/secapi/pay/reverse",
        &[("out_trade_no", "20240101000003")],
        params(&[("recall", "Y")]),
    )
    .await;
    assert_eq!(r.recall, Recall::Again);
}

#[tokio::test]
async fn transport_and_http_errors_are_distinct() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = client(&server)
        .execute(&CloseOrder::new("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, wechat_pay::Error::HttpStatus { status: 503 }));
    assert!(err.is_retryable());

    // Garbage instead of XML.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(xml("<html>502 Bad Gateway</html>"))
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).execute(&CloseOrder::new("1")).await,
        Err(wechat_pay::Error::Xml(_))
    ));

    // Nobody listening.
    let dead = wechat_pay::Client::builder(APP_ID, "10000100", crate::support::key())
        .base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let err = dead.execute(&CloseOrder::new("1")).await.unwrap_err();
    assert!(matches!(err, wechat_pay::Error::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn oversized_reply_is_rejected() {
    let server = MockServer::start().await;
    let huge = format!(
        "<xml><return_code>SUCCESS</return_code><x>{}</x></xml>",
        "a".repeat(70 * 1024)
    );
    Mock::given(method("POST"))
        .respond_with(xml(huge))
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).execute(&CloseOrder::new("1")).await,
        Err(wechat_pay::Error::Xml(
            wechat_pay::XmlError::TooLarge { .. }
        ))
    ));
}

#[tokio::test]
async fn calls_for_a_sub_merchant_carry_its_ids_and_its_payers_sub_openid() {
    use wechat_pay::{ForSubMerchant, SubMerchant};
    let with_app = SubMerchant::new("1900000109").sub_appid("wxsubapp0000001");
    let r = contract(
        &ForSubMerchant::new(&with_app, order(Trade::jsapi("oSub_payer"))),
        "/pay/unifiedorder",
        &[
            ("sub_mch_id", "1900000109"),
            ("sub_appid", "wxsubapp0000001"),
            ("sub_openid", "oSub_payer"),
            ("trade_type", "JSAPI"),
        ],
        params(&[("trade_type", "JSAPI"), ("prepay_id", "wx2026sub")]),
    )
    .await;
    assert_eq!(r.prepay_id, "wx2026sub");
    // Without the sub-merchant's app: the payer is under the provider's app, as `openid`.
    let plain = SubMerchant::new("1900000109");
    contract(
        &ForSubMerchant::new(&plain, order(Trade::jsapi("oSp_payer"))),
        "/pay/unifiedorder",
        &[("sub_mch_id", "1900000109"), ("openid", "oSp_payer")],
        params(&[("trade_type", "JSAPI"), ("prepay_id", "wx2026sp")]),
    )
    .await;
    // Any request: a query for the sub-merchant.
    contract(
        &ForSubMerchant::new(&plain, OrderQuery::new(OrderId::OutTradeNo("A1".into()))),
        "/pay/orderquery",
        &[("sub_mch_id", "1900000109"), ("out_trade_no", "A1")],
        params(&[
            ("out_trade_no", "A1"),
            ("trade_state", "NOTPAY"),
            ("total_fee", "350"),
        ]),
    )
    .await;
    // The payer's openid is never sent twice.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/pay/unifiedorder"))
        .respond_with(xml(
            signer().reply(params(&[("trade_type", "JSAPI"), ("prepay_id", "wx1")]))
        ))
        .mount(&server)
        .await;
    client(&server)
        .execute(&ForSubMerchant::new(
            &with_app,
            order(Trade::jsapi("oSub_payer")),
        ))
        .await
        .unwrap();
    let body =
        String::from_utf8(server.received_requests().await.unwrap()[0].body.clone()).unwrap();
    assert!(!body.contains("<openid>"), "{body}");
}
