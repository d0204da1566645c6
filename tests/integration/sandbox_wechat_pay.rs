//! `wechat-pay`'s client against the sandbox: every endpoint, notifications with retries,
//! refunds with encrypted notifications, sandbox-key mode, bills, and bad requests answered the
//! way WeChat answers them.

use wechat_pay::{
    AccountType, ApiKey, BillType, Client, CloseOrder, DownloadBill, DownloadFundFlow, ErrCode,
    Error, Fen, H5Info, Micropay, MicropayOutcome, OrderId, OrderQuery, Params, Recall, Refund,
    RefundQuery, RefundQueryBy, RefundStatus, Reverse, SandboxPrefix, SignType, Trade, TradeState,
    UnifiedOrder,
};

use crate::support::{
    APP_ID, KEY, MCH_ID, MINI_APP_ID, Receiver, control, inspect, start_mp_callbacks, start_sandbox,
};

fn client(url: &str, sign_type: SignType) -> Client {
    Client::builder(APP_ID, MCH_ID, ApiKey::new(KEY))
        .base_url(url)
        .sign_type(sign_type)
        .build()
        .unwrap()
}

fn order(no: &str, trade: Trade, fee: u64, notify: &str) -> UnifiedOrder {
    UnifiedOrder::new(trade, "Cola 330ml", no, Fen::new(fee), "127.0.0.1", notify)
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

#[tokio::test]
async fn jsapi_order_paid_notified_refunded() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let receiver = Receiver::start().await;
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let c = client(sandbox.base_url(), sign_type);
        let no = format!("JS{}", sign_type.as_str().len());
        let notify = format!("{}/wechat/notify", receiver.url);
        let created = c
            .execute(&order(&no, Trade::jsapi("oBuyer1"), 350, &notify))
            .await
            .unwrap();
        assert!(created.prepay_id.starts_with("wx"));
        let params = c.jsapi_params(&created.prepay_id).unwrap();
        assert_eq!(params.package, format!("prepay_id={}", created.prepay_id));

        let q = c
            .execute(&OrderQuery::new(OrderId::OutTradeNo(no.clone())))
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::NotPay);
        assert_eq!(q.total_fee, Some(Fen::new(350)));

        // The user pays; WeChat notifies; the notification verifies with the client.
        let before = receiver.count("/wechat/notify");
        let (status, _) = control(
            &sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": no}),
        )
        .await;
        assert_eq!(status, 200);
        let got = receiver.wait_for("/wechat/notify", before + 1).await;
        let n = c
            .verify_payment_notification(got[before].body.as_bytes())
            .await
            .unwrap();
        assert_eq!(n.out_trade_no, no);
        assert_eq!(n.total_fee, Fen::new(350));
        assert_eq!(n.open_id, "oBuyer1");

        let q = c
            .execute(&OrderQuery::new(OrderId::TransactionId(
                n.transaction_id.clone(),
            )))
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::Success);
        // Paying or closing a paid order.
        let (status, _) = control(
            &sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": no}),
        )
        .await;
        assert_eq!(status, 409);
        let err = c.execute(&CloseOrder::new(no.clone())).await.unwrap_err();
        assert_eq!(err.err_code(), Some(&ErrCode::OrderPaid));

        // Partial refund, idempotent by out_refund_no; completion sends the encrypted notification.
        let refund_notify = format!("{}/wechat/refund-notify", receiver.url);
        let refund = Refund::new(
            OrderId::OutTradeNo(no.clone()),
            format!("R{no}"),
            Fen::new(350),
            Fen::new(100),
        )
        .notify_url(refund_notify.clone());
        let r1 = c.execute(&refund).await.unwrap();
        let r2 = c.execute(&refund).await.unwrap();
        assert_eq!(
            r1.refund_id, r2.refund_id,
            "a retried refund is the same refund"
        );
        let rq = c
            .execute(&RefundQuery::new(RefundQueryBy::OutRefundNo(format!(
                "R{no}"
            ))))
            .await
            .unwrap();
        assert_eq!(rq.refunds[0].refund_status, RefundStatus::Processing);
        // More than what is left: refused.
        let over = Refund::new(
            OrderId::OutTradeNo(no.clone()),
            format!("R2{no}"),
            Fen::new(350),
            Fen::new(251),
        );
        assert!(matches!(
            c.execute(&over).await,
            Err(Error::Business { .. })
        ));
        // A different amount under the same refund number: refused.
        let conflicting = Refund::new(
            OrderId::OutTradeNo(no.clone()),
            format!("R{no}"),
            Fen::new(350),
            Fen::new(50),
        );
        assert_eq!(
            c.execute(&conflicting).await.unwrap_err().err_code(),
            Some(&ErrCode::InvalidRequest)
        );

        let before = receiver.count("/wechat/refund-notify");
        let (status, _) = control(
            &sandbox,
            "/sandbox/refund-complete",
            serde_json::json!({"out_refund_no": format!("R{no}")}),
        )
        .await;
        assert_eq!(status, 200);
        let got = receiver.wait_for("/wechat/refund-notify", before + 1).await;
        let rn = c
            .decrypt_refund_notification(got[before].body.as_bytes())
            .await
            .unwrap();
        assert_eq!(rn.out_refund_no, format!("R{no}"));
        assert_eq!(rn.refund_fee, Fen::new(100));
        assert_eq!(rn.refund_status, RefundStatus::Success);
        let q = c
            .execute(&OrderQuery::new(OrderId::OutTradeNo(no.clone())))
            .await
            .unwrap();
        assert_eq!(q.trade_state, TradeState::Refund);
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn notifications_are_retried_until_acknowledged() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let receiver = Receiver::start().await;
    let c = client(sandbox.base_url(), SignType::Md5);
    let notify = format!("{}/wechat/notify", receiver.url);
    c.execute(&order("RETRY1", Trade::native("sku"), 1, &notify))
        .await
        .unwrap();
    receiver.refuse_next(3);
    control(
        &sandbox,
        "/sandbox/pay",
        serde_json::json!({"out_trade_no": "RETRY1"}),
    )
    .await;
    // 15 s, 15 s, 30 s at a 1000× time scale: the 4th attempt comes after ~60 ms.
    let got = receiver.wait_for("/wechat/notify", 4).await;
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt carries the same notification"
    );
    let log = inspect(&sandbox, "/sandbox/notifications").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reference"] == "RETRY1")
        .unwrap();
    assert_eq!(entry["attempts"], 4);
    assert_eq!(entry["delivered"], true);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        receiver.count("/wechat/notify"),
        4,
        "no attempt after the acknowledgement"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn native_mweb_app_and_mini_program_orders() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = client(sandbox.base_url(), SignType::Md5);
    let native = c
        .execute(&order(
            "N1",
            Trade::native("sku-1"),
            300,
            "http://127.0.0.1:9/n",
        ))
        .await
        .unwrap();
    assert!(
        native
            .code_url
            .unwrap()
            .starts_with("weixin://wxpay/bizpayurl?pr=")
    );
    let mweb = c
        .execute(&order(
            "H1",
            Trade::Mweb {
                scene: H5Info::Wap {
                    wap_url: "https://m.shop".into(),
                    wap_name: "shop".into(),
                },
            },
            300,
            "http://127.0.0.1:9/n",
        ))
        .await
        .unwrap();
    let page = reqwest::get(mweb.mweb_url.unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Cola 330ml"));
    let app = c
        .execute(&order("A1", Trade::App, 300, "http://127.0.0.1:9/n"))
        .await
        .unwrap();
    assert!(!app.prepay_id.is_empty());
    assert_eq!(c.app_params(&app.prepay_id).unwrap().partnerid, MCH_ID);
    // A Mini Program shares the merchant under its own app id.
    let mini = Client::builder(MINI_APP_ID, MCH_ID, ApiKey::new(KEY))
        .base_url(sandbox.base_url())
        .build()
        .unwrap();
    let m = mini
        .execute(&order(
            "M1",
            Trade::jsapi("oMini"),
            300,
            "http://127.0.0.1:9/n",
        ))
        .await
        .unwrap();
    assert_eq!(m.app_id, MINI_APP_ID);

    // The same order again: same prepay id. The same number with other parameters: refused.
    let again = c
        .execute(&order(
            "N1",
            Trade::native("sku-1"),
            300,
            "http://127.0.0.1:9/n",
        ))
        .await
        .unwrap();
    assert_eq!(again.prepay_id, native.prepay_id);
    let conflict = c
        .execute(&order(
            "N1",
            Trade::native("sku-1"),
            301,
            "http://127.0.0.1:9/n",
        ))
        .await
        .unwrap_err();
    assert_eq!(conflict.err_code(), Some(&ErrCode::InvalidRequest));
    // JSAPI without openid is a parameter error (the client cannot even build it, so go raw).
    // Closing, then closing again.
    c.execute(&CloseOrder::new("A1")).await.unwrap();
    assert_eq!(
        c.execute(&CloseOrder::new("A1"))
            .await
            .unwrap_err()
            .err_code(),
        Some(&ErrCode::OrderClosed)
    );
    let (status, _) = control(
        &sandbox,
        "/sandbox/pay",
        serde_json::json!({"out_trade_no": "A1"}),
    )
    .await;
    assert_eq!(status, 409, "a closed order cannot be paid");
    // PAYERROR is a state.
    control(
        &sandbox,
        "/sandbox/pay",
        serde_json::json!({"out_trade_no": "H1", "result": "PAYERROR"}),
    )
    .await;
    let q = c
        .execute(&OrderQuery::new(OrderId::OutTradeNo("H1".into())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::PayError);
    assert_eq!(
        c.execute(&OrderQuery::new(OrderId::OutTradeNo("NOPE".into())))
            .await
            .unwrap_err()
            .err_code(),
        Some(&ErrCode::OrderNotExist)
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn micropay_and_reverse() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = client(sandbox.base_url(), SignType::Md5);
    let paid = c
        .execute(&Micropay::new(
            "Cola",
            "MP1",
            Fen::new(350),
            "127.0.0.1",
            "134567890123456780".replacen("13", "10", 1),
        ))
        .await
        .unwrap();
    assert!(matches!(paid, MicropayOutcome::Paid(p) if p.total_fee == Fen::new(350)));
    // A code starting with 13 asks the payer to confirm.
    let confirming = Micropay::new(
        "Cola",
        "MP2",
        Fen::new(350),
        "127.0.0.1",
        "134567890123456789",
    );
    assert_eq!(
        c.execute(&confirming).await.unwrap(),
        MicropayOutcome::UserPaying
    );
    let q = c
        .execute(&OrderQuery::new(OrderId::OutTradeNo("MP2".into())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::UserPaying);
    let r = c
        .execute(&Reverse::new(OrderId::OutTradeNo("MP2".into())))
        .await
        .unwrap();
    assert_eq!(r.recall, Recall::Done);
    let q = c
        .execute(&OrderQuery::new(OrderId::OutTradeNo("MP2".into())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Revoked);
    let bad = Micropay::new("Cola", "MP3", Fen::new(1), "127.0.0.1", "99");
    assert_eq!(
        c.execute(&bad).await.unwrap_err().err_code(),
        Some(&ErrCode::AuthCodeInvalid)
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bills_from_the_days_orders() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let c = client(sandbox.base_url(), SignType::Md5);
    assert!(matches!(
        c.download(&DownloadBill::new(today(), BillType::All)).await,
        Err(Error::Protocol { return_msg }) if return_msg == "No Bill Exist"
    ));
    for (no, fee) in [("B1", 350u64), ("B2", 200)] {
        c.execute(&order(no, Trade::native("s"), fee, "http://127.0.0.1:9/n"))
            .await
            .unwrap();
        control(
            &sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": no}),
        )
        .await;
    }
    c.execute(&Refund::new(
        OrderId::OutTradeNo("B1".into()),
        "RB1",
        Fen::new(350),
        Fen::new(50),
    ))
    .await
    .unwrap();
    control(
        &sandbox,
        "/sandbox/refund-complete",
        serde_json::json!({"out_refund_no": "RB1"}),
    )
    .await;
    for gzip in [false, true] {
        let req = DownloadBill::new(today(), BillType::All);
        let bill = c
            .download(&if gzip { req.gzip() } else { req })
            .await
            .unwrap();
        assert_eq!(bill.rows.len(), 3);
        assert_eq!(bill.summary.settlement_total_fee, Some(Fen::new(550)));
        assert_eq!(bill.summary.refund_fee, Some(Fen::new(50)));
    }
    let success = c
        .download(&DownloadBill::new(today(), BillType::Success))
        .await
        .unwrap();
    assert_eq!(success.rows.len(), 2);
    // Fund flow needs HMAC-SHA256, which the client forces for this endpoint.
    let flow = c
        .download(&DownloadFundFlow::new(today(), AccountType::Basic))
        .await
        .unwrap();
    assert_eq!(flow.summary.income, Some(Fen::new(550)));
    assert_eq!(flow.summary.expense, Some(Fen::new(50)));
    assert_eq!(flow.rows.last().unwrap().balance, Some(500));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sandbox_key_mode_under_both_prefixes() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let receiver = Receiver::start().await;
    for (i, prefix) in [SandboxPrefix::Current, SandboxPrefix::Legacy]
        .into_iter()
        .enumerate()
    {
        let c = Client::builder(APP_ID, MCH_ID, ApiKey::new(KEY))
            .base_url(sandbox.base_url())
            .sandbox(prefix)
            .build()
            .unwrap();
        let no = format!("SB{i}");
        c.execute(&order(
            &no,
            Trade::native("s"),
            101,
            &format!("{}/wechat/notify", receiver.url),
        ))
        .await
        .unwrap();
        let before = receiver.count("/wechat/notify");
        control(
            &sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": no}),
        )
        .await;
        let got = receiver.wait_for("/wechat/notify", before + 1).await;
        // Signed with the sandbox key: the sandbox-mode client verifies it, a plain one does not.
        c.verify_payment_notification(got[before].body.as_bytes())
            .await
            .unwrap();
        let plain = client(sandbox.base_url(), SignType::Md5);
        assert!(matches!(
            plain
                .verify_payment_notification(got[before].body.as_bytes())
                .await,
            Err(Error::Signature(_))
        ));
    }
    sandbox.shutdown().await;
}

async fn raw(url: &str, path: &str, body: impl Into<String>) -> Params {
    let text = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .body(body.into())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    Params::from_xml(text.as_bytes()).unwrap()
}

#[tokio::test]
async fn bad_requests_are_answered_like_wechat() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let key = ApiKey::new(KEY);
    let signed = |mut p: Params| {
        p.sign(&key, SignType::Md5);
        p.to_xml()
    };
    let base = || -> Params {
        [
            ("appid", APP_ID),
            ("mch_id", MCH_ID),
            ("nonce_str", "n1"),
            ("body", "b"),
            ("out_trade_no", "BAD1"),
            ("total_fee", "1"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", "http://127.0.0.1:9/n"),
            ("trade_type", "NATIVE"),
            ("product_id", "p"),
        ]
        .into_iter()
        .collect()
    };
    // A good request, for contrast.
    let ok = raw(sandbox.base_url(), "/pay/unifiedorder", signed(base())).await;
    assert_eq!(ok.get("return_code"), Some("SUCCESS"));
    ok.verify(&key, SignType::Md5).unwrap();

    let mut tampered = Params::from_xml(signed(base()).as_bytes()).unwrap();
    tampered.insert("total_fee", "2");
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", tampered.to_xml()).await;
    assert_eq!(
        (r.get("return_code"), r.get("return_msg")),
        (Some("FAIL"), Some("签名错误"))
    );

    let mut missing = base();
    missing.remove("body");
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", signed(missing)).await;
    assert_eq!(r.get("return_code"), Some("FAIL"));
    assert!(r.get("return_msg").unwrap().contains("body"));

    let mut wrong_mch = base();
    wrong_mch.insert("mch_id", "1999999999");
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", signed(wrong_mch)).await;
    assert_eq!(r.get("return_code"), Some("FAIL"));

    let mut wrong_app = base();
    wrong_app.insert("appid", "wxnotmine");
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", signed(wrong_app)).await;
    assert_eq!(r.get("return_msg"), Some("appid和mch_id不匹配"));

    let mut huge = base();
    huge.insert("attach", "x".repeat(70 * 1024));
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", signed(huge)).await;
    assert_eq!(r.get("return_code"), Some("FAIL"));

    let r = raw(sandbox.base_url(), "/pay/unifiedorder", "not xml").await;
    assert_eq!(r.get("return_code"), Some("FAIL"));

    let mut bad_fee = base();
    bad_fee.insert("total_fee", "1.00");
    let r = raw(sandbox.base_url(), "/pay/unifiedorder", signed(bad_fee)).await;
    assert_eq!(
        (r.get("result_code"), r.get("err_code")),
        (Some("FAIL"), Some("PARAM_ERROR"))
    );
    r.verify(&key, SignType::Md5).unwrap();
    sandbox.shutdown().await;
}

#[tokio::test]
async fn orders_survive_a_restart_with_a_database() {
    let dir = std::env::temp_dir().join(format!("sandbox-test-{}.db", std::process::id()));
    let db = dir.to_string_lossy().into_owned();
    let callbacks = start_mp_callbacks().await;
    let sandbox = crate::support::start_sandbox_with_db(&callbacks, Some(&db)).await;
    let c = client(sandbox.base_url(), SignType::Md5);
    c.execute(&order(
        "PERSIST1",
        Trade::native("s"),
        42,
        "http://127.0.0.1:9/n",
    ))
    .await
    .unwrap();
    control(
        &sandbox,
        "/sandbox/pay",
        serde_json::json!({"out_trade_no": "PERSIST1"}),
    )
    .await;
    sandbox.shutdown().await;

    let again = crate::support::start_sandbox_with_db(&callbacks, Some(&db)).await;
    let c = client(again.base_url(), SignType::Md5);
    let q = c
        .execute(&OrderQuery::new(OrderId::OutTradeNo("PERSIST1".into())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::Success);
    assert_eq!(q.total_fee, Some(Fen::new(42)));
    again.shutdown().await;
    let _ = std::fs::remove_file(&dir);
}
