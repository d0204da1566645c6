//! The Alipay gateway of the sandbox, with real RSA2 keys: requests signed with the app key,
//! responses and notifications verified with the gateway key.

use std::collections::BTreeMap;

use alipay::sign;
use serde_json::{Value, json};

use crate::support::{
    ALIPAY_APP_ID, Receiver, alipay_app_key, alipay_gateway_public_key, control,
    start_mp_callbacks, start_sandbox,
};

/// Calls `method` with `biz`, checks the response signature, returns the response object.
async fn call(url: &str, method: &str, biz: Value, extra: &[(&str, &str)], tamper: bool) -> Value {
    let mut p: BTreeMap<String, String> = [
        ("app_id", ALIPAY_APP_ID),
        ("method", method),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2024-01-01 12:00:00"),
        ("version", "1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    p.insert("biz_content".into(), biz.to_string());
    for (k, v) in extra {
        p.insert((*k).to_owned(), (*v).to_owned());
    }
    let content = sign::canonical(
        p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::REQUEST_EXCLUDES,
    );
    p.insert("sign".into(), alipay_app_key().sign(&content).unwrap());
    if tamper {
        p.insert(
            "biz_content".into(),
            biz.to_string().replace("0.01", "0.02"),
        );
    }
    let body = reqwest::Client::new()
        .post(format!("{url}/gateway.do"))
        .form(&p)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = format!("{}_response", method.replace('.', "_"));
    let signed =
        sign::response_content(&body, &key).unwrap_or_else(|| panic!("no {key} in {body}"));
    let v: Value = serde_json::from_str(&body).unwrap();
    alipay_gateway_public_key()
        .verify(signed, v["sign"].as_str().unwrap())
        .expect("the response is signed by the gateway");
    v[key.as_str()].clone()
}

#[tokio::test]
async fn precreate_pay_notify_query_refund() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let receiver = Receiver::start().await;
    let notify = format!("{}/alipay/notify", receiver.url);
    let r = call(
        sandbox.base_url(),
        "alipay.trade.precreate",
        json!({"out_trade_no": "AL1", "total_amount": "3.50", "subject": "Cola"}),
        &[("notify_url", &notify)],
        false,
    )
    .await;
    assert_eq!(r["code"], "10000");
    assert!(
        r["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("https://qr.alipay.com/")
    );

    let q = call(
        sandbox.base_url(),
        "alipay.trade.query",
        json!({"out_trade_no": "AL1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(q["trade_status"], "WAIT_BUYER_PAY");

    // The buyer pays; the first notification is refused, the retry is acknowledged.
    receiver.refuse_next(1);
    let (status, _) = control(&sandbox, "/sandbox/pay", json!({"out_trade_no": "AL1"})).await;
    assert_eq!(status, 200);
    let got = receiver.wait_for("/alipay/notify", 2).await;
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&got[1].body).unwrap();
    assert_eq!(form["trade_status"], "TRADE_SUCCESS");
    assert_eq!(form["total_amount"], "3.50");
    let content = sign::canonical(
        form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::NOTIFY_EXCLUDES,
    );
    alipay_gateway_public_key()
        .verify(&content, &form["sign"])
        .expect("the notification verifies");

    let q = call(
        sandbox.base_url(),
        "alipay.trade.query",
        json!({"out_trade_no": "AL1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(q["trade_status"], "TRADE_SUCCESS");
    assert_eq!(q["total_amount"], "3.50");

    let refund = call(
        sandbox.base_url(),
        "alipay.trade.refund",
        json!({"out_trade_no": "AL1", "refund_amount": "1.00", "out_request_no": "RF1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(
        (
            refund["fund_change"].as_str(),
            refund["refund_fee"].as_str()
        ),
        (Some("Y"), Some("1.00"))
    );
    let again = call(
        sandbox.base_url(),
        "alipay.trade.refund",
        json!({"out_trade_no": "AL1", "refund_amount": "1.00", "out_request_no": "RF1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(again["fund_change"], "N", "a retried refund moves no money");
    let over = call(
        sandbox.base_url(),
        "alipay.trade.refund",
        json!({"out_trade_no": "AL1", "refund_amount": "2.51", "out_request_no": "RF2"}),
        &[],
        false,
    )
    .await;
    assert_eq!(over["sub_code"], "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL");
    let rq = call(
        sandbox.base_url(),
        "alipay.trade.fastpay.refund.query",
        json!({"out_trade_no": "AL1", "out_request_no": "RF1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(rq["refund_amount"], "1.00");
    assert_eq!(rq["refund_status"], "REFUND_SUCCESS");

    let closed = call(
        sandbox.base_url(),
        "alipay.trade.close",
        json!({"out_trade_no": "AL1"}),
        &[],
        false,
    )
    .await;
    assert_eq!(
        closed["sub_code"], "ACQ.TRADE_STATUS_ERROR",
        "a paid trade cannot be closed"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_answered_like_alipay() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let tampered = call(
        sandbox.base_url(),
        "alipay.trade.precreate",
        json!({"out_trade_no": "AL2", "total_amount": "0.01", "subject": "x"}),
        &[],
        true,
    )
    .await;
    assert_eq!(
        (tampered["code"].as_str(), tampered["sub_code"].as_str()),
        (Some("40002"), Some("isv.invalid-signature"))
    );
    let missing = call(
        sandbox.base_url(),
        "alipay.trade.precreate",
        json!({"out_trade_no": "AL2", "total_amount": "0.01"}),
        &[],
        false,
    )
    .await;
    assert_eq!(missing["code"], "40001");
    let bad_amount = call(
        sandbox.base_url(),
        "alipay.trade.precreate",
        json!({"out_trade_no": "AL2", "total_amount": "0.001", "subject": "x"}),
        &[],
        false,
    )
    .await;
    assert_eq!(bad_amount["code"], "40002");
    let unknown = call(
        sandbox.base_url(),
        "alipay.trade.query",
        json!({"out_trade_no": "NOPE"}),
        &[],
        false,
    )
    .await;
    assert_eq!(
        (unknown["code"].as_str(), unknown["sub_code"].as_str()),
        (Some("40004"), Some("ACQ.TRADE_NOT_EXIST"))
    );
    // Closing an unpaid trade, then paying it, fails.
    call(
        sandbox.base_url(),
        "alipay.trade.precreate",
        json!({"out_trade_no": "AL3", "total_amount": "0.01", "subject": "x"}),
        &[],
        false,
    )
    .await;
    let closed = call(
        sandbox.base_url(),
        "alipay.trade.close",
        json!({"out_trade_no": "AL3"}),
        &[],
        false,
    )
    .await;
    assert_eq!(closed["code"], "10000");
    let (status, _) = control(&sandbox, "/sandbox/pay", json!({"out_trade_no": "AL3"})).await;
    assert_eq!(status, 409);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn page_pay_opens_a_cashier_page() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let mut p: BTreeMap<String, String> = [
        ("app_id", ALIPAY_APP_ID),
        ("method", "alipay.trade.page.pay"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2024-01-01 12:00:00"),
        ("version", "1.0"),
        ("return_url", "https://shop.example/return"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    p.insert("biz_content".into(), json!({"out_trade_no": "PAGE1", "total_amount": "9.90", "subject": "Tea", "product_code": "FAST_INSTANT_TRADE_PAY"}).to_string());
    let content = sign::canonical(
        p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::REQUEST_EXCLUDES,
    );
    p.insert("sign".into(), alipay_app_key().sign(&content).unwrap());
    let url = format!(
        "{}/gateway.do?{}",
        sandbox.base_url(),
        serde_urlencoded::to_string(&p).unwrap()
    );
    let page = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(page.contains("Tea") && page.contains("9.90"), "{page}");
    sandbox.shutdown().await;
}

/// The day's bills, asked for and downloaded with the `alipay` crate, list the day's payments
/// and refunds with Alipay's fee, and a day without any is `isp.bill_not_exist`.
#[tokio::test]
async fn the_days_bills_list_its_payments_and_refunds() {
    use alipay::bill::{BillArchive, TradeBillKind};
    use alipay::{BillDownloadUrlQuery, BillType, Fen, TradePrecreate, TradeRef, TradeRefund};

    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let client =
        alipay::Client::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap();
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let query = |t| BillDownloadUrlQuery::new(t, today);

    let none = client.execute(&query(BillType::Trade)).await.unwrap_err();
    assert_eq!(none.sub_code(), Some(&alipay::SubCode::BillNotExist));
    let future = client
        .execute(&BillDownloadUrlQuery::new(
            BillType::Trade,
            today.next_day().unwrap(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(future, alipay::Error::Gateway { .. }),
        "{future:?}"
    );
    assert_ne!(future.sub_code(), Some(&alipay::SubCode::BillNotExist));

    for (no, fen, subject) in [("BILL-1", 350, "Cola"), ("BILL-2", 1200, "Chips, salted")] {
        client
            .execute(&TradePrecreate::new(no, Fen::new(fen), subject))
            .await
            .unwrap();
        sandbox.pay(no).await.unwrap();
    }
    client
        .execute(&TradeRefund::new(
            TradeRef::OutTradeNo("BILL-1".into()),
            "R-1",
            Fen::new(100),
        ))
        .await
        .unwrap();

    let download = |url: String| {
        let client = client.clone();
        async move {
            let mut zip = Vec::new();
            client.download_bill(&url, &mut zip).await.unwrap();
            BillArchive::new(std::io::Cursor::new(zip)).unwrap()
        }
    };
    let url = client
        .execute(&query(BillType::Trade))
        .await
        .unwrap()
        .bill_download_url;
    let mut archive = download(url).await;
    let mut bill = archive.trade_bill().unwrap();
    let rows: Vec<_> = bill.by_ref().collect::<Result<_, _>>().unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.out_trade_no.as_str(),
                r.kind.clone(),
                r.amount,
                r.service_fee,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("BILL-1", TradeBillKind::Payment, 350, -2),
            ("BILL-2", TradeBillKind::Payment, 1200, -7),
            ("BILL-1", TradeBillKind::Refund, -100, 1),
        ]
    );
    assert_eq!(rows[2].out_request_no.as_deref(), Some("R-1"));
    assert_eq!(rows[1].subject, "Chips, salted");
    assert!(rows.iter().all(|r| r.trade_no.starts_with("20")));
    assert_eq!(bill.footer().count("交易合计"), Some(2));
    assert_eq!(bill.footer().count("退款合计"), Some(1));

    let url = client
        .execute(&query(BillType::SignCustomer))
        .await
        .unwrap()
        .bill_download_url;
    let mut archive = download(url).await;
    let movements: Vec<_> = archive
        .account_bill()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        movements.len(),
        6,
        "income and fee per payment, refund and fee back"
    );
    // 350 + 1200 − 2 − 7 − 100 + 1
    assert_eq!(movements.last().unwrap().balance, 1442);
    assert_eq!(movements[0].income, Fen::new(350));
}

/// Content encryption against the emulator: an app with an AES key sends its content encrypted
/// and reads encrypted answers; a wrong key is refused as Alipay refuses it; an app without a
/// key cannot ask for encryption.
#[tokio::test]
async fn an_encrypting_app_pays_queries_and_refunds() {
    use alipay::{AesKey, Fen, TradePrecreate, TradeQuery, TradeRef, TradeRefund};

    use crate::support::{ALIPAY_AES_APP_ID, ALIPAY_AES_KEY};

    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let client = |app: &str, key: Option<AesKey>| {
        let b = alipay::Client::builder(app, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned());
        match key {
            Some(k) => b.aes_key(k),
            None => b,
        }
        .build()
        .unwrap()
    };
    let encrypting = client(
        ALIPAY_AES_APP_ID,
        Some(AesKey::from_base64(ALIPAY_AES_KEY).unwrap()),
    );
    let qr = encrypting
        .execute(&TradePrecreate::new("AES-1", Fen::new(250), "Cola"))
        .await
        .unwrap();
    assert!(!qr.qr_code.is_empty());
    sandbox.pay("AES-1").await.unwrap();
    let by_no = || TradeRef::OutTradeNo("AES-1".into());
    let paid = encrypting.execute(&TradeQuery::new(by_no())).await.unwrap();
    assert_eq!(paid.total_amount, Fen::new(250));
    let refund = encrypting
        .execute(&TradeRefund::new(by_no(), "AES-R1", Fen::new(100)))
        .await
        .unwrap();
    assert_eq!(refund.refund_fee, Fen::new(100));

    // Another key: the emulator cannot read the content.
    let wrong = client(ALIPAY_AES_APP_ID, Some(AesKey::generate().unwrap()));
    let refused = wrong.execute(&TradeQuery::new(by_no())).await.unwrap_err();
    assert_eq!(
        refused.sub_code().map(|c| c.as_str().to_owned()).as_deref(),
        Some("isv.decryption-error"),
        "{refused:?}"
    );
    // An app without a key cannot ask for encryption.
    let keyless = client(
        crate::support::ALIPAY_APP_ID,
        Some(AesKey::generate().unwrap()),
    );
    let refused = keyless
        .execute(&TradeQuery::new(by_no()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.sub_code().map(|c| c.as_str().to_owned()).as_deref(),
        Some("isv.missing-encrypt-key"),
        "{refused:?}"
    );
    sandbox.shutdown().await;
}

/// Certificate mode end to end: the project's client configured with the certificates the
/// emulator issued pays, queries and refunds; Alipay rotates its certificate and the client
/// downloads the new one, checks it chains to the root and goes on; a notification signed after
/// the rotation verifies; a request naming another app certificate or root is refused.
#[tokio::test]
async fn a_certificate_mode_app_pays_refunds_and_follows_a_rotation() {
    use alipay::{Certificates, Fen, TradePrecreate, TradeQuery, TradeRef, TradeRefund};

    const CERT_APP_ID: &str = "2021000000000044";
    let sandbox = crate::support::sandbox_builder(&start_mp_callbacks().await)
        .alipay_app_with_certificates(CERT_APP_ID, alipay_app_key().public_key())
        .start()
        .await
        .unwrap();
    // Public-key apps have no certificates.
    assert_eq!(
        sandbox
            .alipay_certificates(ALIPAY_APP_ID)
            .unwrap_err()
            .code(),
        "APP_NOT_IN_CERT_MODE"
    );
    let issued = sandbox.alipay_certificates(CERT_APP_ID).unwrap();
    let certs =
        Certificates::from_pem(&issued.app_cert, &issued.alipay_cert, &issued.root_cert).unwrap();
    assert_eq!(certs.app_cert_sn(), issued.app_cert_sn);
    assert_eq!(certs.root_cert_sn(), issued.alipay_root_cert_sn);
    let client = |certs: Certificates| {
        alipay::Client::builder(CERT_APP_ID, alipay_app_key(), certs)
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap()
    };
    let alipay = client(certs.clone());
    let receiver = Receiver::start().await;
    alipay
        .execute(
            &TradePrecreate::new("CERT-1", Fen::new(300), "Cola")
                .notify_url(format!("{}/alipay/notify", receiver.url)),
        )
        .await
        .unwrap();

    // Alipay rotates before the buyer pays: the notification and every answer use the new key.
    let rotated = sandbox.rotate_alipay_certificate().unwrap();
    assert_ne!(rotated, issued.alipay_cert_sn);
    sandbox.pay("CERT-1").await.unwrap();
    let got = receiver.wait_for("/alipay/notify", 1).await;
    let by_no = || TradeRef::OutTradeNo("CERT-1".into());
    let paid = alipay.execute(&TradeQuery::new(by_no())).await.unwrap();
    assert_eq!(paid.total_amount, Fen::new(300));
    let notification = alipay.verify_notification(got[0].body.as_bytes()).unwrap();
    assert_eq!(notification.out_trade_no, "CERT-1");
    // The client now verifies with the new certificate, downloaded and checked against the root.
    assert_ne!(
        alipay.alipay_public_key().spki_der(),
        certs.alipay_public_key().spki_der()
    );
    let refund = alipay
        .execute(&TradeRefund::new(by_no(), "CERT-R1", Fen::new(100)))
        .await
        .unwrap();
    assert_eq!(refund.refund_fee, Fen::new(100));

    // Another app certificate, another root: refused with Alipay's codes.
    let stranger_pki = alipay::test_util::TestPki::new("Elsewhere").unwrap();
    let other_app_cert = stranger_pki
        .issue("other", &alipay_app_key().public_key())
        .unwrap();
    for (what, app_cert, root, sub_code) in [
        (
            "app certificate",
            other_app_cert.as_str(),
            issued.root_cert.as_str(),
            "isv.app-cert-not-exist",
        ),
        (
            "root",
            issued.app_cert.as_str(),
            stranger_pki.root_pem(),
            "isv.invalid-alipay-root-cert-sn",
        ),
    ] {
        // The Alipay certificate must chain to the root given: build the mismatch by hand.
        let certs = match Certificates::from_pem(app_cert, &issued.alipay_cert, root) {
            Ok(c) => c,
            Err(_) => {
                let mixed = format!("{root}\n{}", issued.root_cert);
                Certificates::from_pem(app_cert, &issued.alipay_cert, &mixed).unwrap()
            }
        };
        let refused = client(certs)
            .execute(&TradeQuery::new(by_no()))
            .await
            .unwrap_err();
        assert_eq!(
            refused.sub_code().map(|c| c.as_str().to_owned()).as_deref(),
            Some(sub_code),
            "{what}: {refused:?}"
        );
    }
    sandbox.shutdown().await;
}

/// The newer methods through the project's client against the emulator: a Mini Program trade for
/// a known buyer, cancel (close unpaid, refund paid), transfers (certificate mode only,
/// idempotent, balance bounded), and buyer login (code once, token for its app, refresh).
#[tokio::test]
async fn mini_program_trades_cancel_transfers_and_buyer_login() {
    use alipay::{
        Buyer, Certificates, Error, Fen, FundTransfer, FundTransferQuery, OauthToken, Payee,
        PayeeIdentity, TradeCancel, TradeCreate, TradeQuery, TradeRef, TransferStatus,
        UserInfoShare,
    };

    const CERT_APP_ID: &str = "2021000000000045";
    let sandbox = crate::support::sandbox_builder(&start_mp_callbacks().await)
        .alipay_app_with_certificates(CERT_APP_ID, alipay_app_key().public_key())
        .start()
        .await
        .unwrap();
    let public_key_client =
        alipay::Client::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap();
    let issued = sandbox.alipay_certificates(CERT_APP_ID).unwrap();
    let cert_client = alipay::Client::builder(
        CERT_APP_ID,
        alipay_app_key(),
        Certificates::from_pem(&issued.app_cert, &issued.alipay_cert, &issued.root_cert).unwrap(),
    )
    .base_url(sandbox.base_url().to_owned())
    .build()
    .unwrap();
    let sub_code = |e: Error| {
        e.sub_code()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default()
    };

    // Buyer login: the Mini Program's code gives the buyer, once.
    let (code, user_id) = sandbox.alipay_auth_code(ALIPAY_APP_ID, None).unwrap();
    let login = public_key_client
        .execute(&OauthToken::code(&code))
        .await
        .unwrap();
    assert_eq!(login.user_id.as_deref(), Some(user_id.as_str()));
    assert!(login.open_id.is_some());
    let again = public_key_client.execute(&OauthToken::code(&code)).await;
    assert_eq!(sub_code(again.unwrap_err()), "isv.code-invalid");
    let profile = public_key_client
        .execute(&UserInfoShare::new(&login.access_token))
        .await
        .unwrap();
    assert_eq!(profile.user_id.as_deref(), Some(user_id.as_str()));
    // The token is this app's only.
    let elsewhere = cert_client
        .execute(&UserInfoShare::new(&login.access_token))
        .await;
    // Alipay writes `aop.invalid-auth-token`; the `aop.` prefix is read away.
    assert_eq!(sub_code(elsewhere.unwrap_err()), "invalid-auth-token");
    let renewed = public_key_client
        .execute(&OauthToken::refresh(login.refresh_token.clone().unwrap()))
        .await
        .unwrap();
    assert_eq!(renewed.user_id.as_deref(), Some(user_id.as_str()));
    assert_ne!(renewed.access_token, login.access_token);
    // Another app's code is refused.
    let (theirs, _) = sandbox.alipay_auth_code(CERT_APP_ID, None).unwrap();
    let refused = public_key_client.execute(&OauthToken::code(&theirs)).await;
    assert_eq!(sub_code(refused.unwrap_err()), "isv.code-invalid");

    // The Mini Program trade: created for the buyer, paid by them.
    let created = public_key_client
        .execute(&TradeCreate::new(
            "MP-1",
            Fen::new(450),
            "Cola",
            Buyer::UserId(user_id.clone()),
        ))
        .await
        .unwrap();
    assert!(!created.trade_no.is_empty());
    sandbox.pay("MP-1").await.unwrap();
    let by_no = |no: &str| TradeRef::OutTradeNo(no.into());
    let paid = public_key_client
        .execute(&TradeQuery::new(by_no("MP-1")))
        .await
        .unwrap();
    assert!(paid.trade_status.is_paid());
    assert_eq!(paid.buyer_user_id.as_deref(), Some(user_id.as_str()));
    // A trade.create needs its buyer.
    let anonymous = public_key_client
        .execute_json(
            "alipay.trade.create",
            &json!({"out_trade_no": "MP-2", "total_amount": "1.00", "subject": "Gum"}),
        )
        .await;
    assert_eq!(sub_code(anonymous.unwrap_err()), "isv.missing-parameter");

    // Cancel: the paid trade is refunded in full, an unpaid one closed, a closed one is a no-op.
    let cancelled = public_key_client
        .execute(&TradeCancel::new(by_no("MP-1")))
        .await
        .unwrap();
    assert_eq!(cancelled.action.as_deref(), Some("refund"));
    let after = public_key_client
        .execute(&TradeQuery::new(by_no("MP-1")))
        .await
        .unwrap();
    assert_eq!(after.trade_status, alipay::TradeStatus::TradeClosed);
    public_key_client
        .execute(&TradeCreate::new(
            "MP-3",
            Fen::new(100),
            "Gum",
            Buyer::UserId(user_id.clone()),
        ))
        .await
        .unwrap();
    let closed = public_key_client
        .execute(&TradeCancel::new(by_no("MP-3")))
        .await
        .unwrap();
    assert_eq!(closed.action.as_deref(), Some("close"));
    let again = public_key_client
        .execute(&TradeCancel::new(by_no("MP-3")))
        .await
        .unwrap();
    assert_eq!(again.action, None);
    assert!(!again.must_retry());

    // Transfers: certificate mode only; idempotent by out_biz_no; bounded by the balance.
    let payee = || Payee::new(PayeeIdentity::AlipayUserId, user_id.clone());
    let transfer = |no: &str, fen: u64| FundTransfer::new(no, Fen::new(fen), "Prize", payee());
    let refused = public_key_client.execute(&transfer("TR-0", 100)).await;
    assert_eq!(
        sub_code(refused.unwrap_err()),
        "isv.insufficient-isv-permissions"
    );
    let made = cert_client.execute(&transfer("TR-1", 1234)).await.unwrap();
    assert_eq!(made.status, TransferStatus::Success);
    let repeated = cert_client.execute(&transfer("TR-1", 1234)).await.unwrap();
    assert_eq!(repeated.order_id, made.order_id);
    let changed = cert_client.execute(&transfer("TR-1", 999)).await;
    assert_eq!(sub_code(changed.unwrap_err()), "PARAM_ILLEGAL");
    let queried = cert_client
        .execute(&FundTransferQuery::by_out_biz_no("TR-1"))
        .await
        .unwrap();
    assert_eq!(
        (queried.trans_amount, queried.order_id.as_str()),
        (Fen::new(1234), made.order_id.as_str())
    );
    let too_much = cert_client
        .execute(&transfer(
            "TR-2",
            wechat_sandbox::alipay::transfers::BALANCE_FEN,
        ))
        .await;
    assert_eq!(sub_code(too_much.unwrap_err()), "PAYER_BALANCE_NOT_ENOUGH");
    let unknown = cert_client
        .execute(&FundTransferQuery::by_out_biz_no("TR-2"))
        .await;
    assert_eq!(sub_code(unknown.unwrap_err()), "ORDER_NOT_EXIST");
    let nameless = cert_client
        .execute(&FundTransfer::new(
            "TR-3",
            Fen::new(100),
            "Prize",
            Payee::new(PayeeIdentity::AlipayLogonId, "buyer@example.com"),
        ))
        .await;
    assert_eq!(sub_code(nameless.unwrap_err()), "PAYEE_USER_INFO_ERROR");
    sandbox.shutdown().await;
}

/// A merchant authorizes the service provider's app; the provider's calls with the merchant's
/// token make the merchant's trades (the notification names the merchant as seller), which only
/// that token sees; the platform's fee is settled from a paid trade to a bound receiver, never
/// more than is left.
#[tokio::test]
async fn a_merchant_authorizes_the_provider_which_sells_and_settles_for_it() {
    use alipay::{
        AccountType, Fen, OpenAuthToken, OpenAuthTokenQuery, RoyaltyReceiver, RoyaltyRelationBind,
        RoyaltyShare, TradeOrderSettle, TradePrecreate, TradeQuery, TradeRef,
    };

    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let provider =
        alipay::Client::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap();
    let sub_code = |e: alipay::Error| {
        e.sub_code()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default()
    };
    let (code, merchant) = sandbox.alipay_app_auth_code(ALIPAY_APP_ID, None).unwrap();
    let auth = provider.execute(&OpenAuthToken::code(&code)).await.unwrap();
    assert_eq!(auth.user_id.as_deref(), Some(merchant.as_str()));
    // A code works once.
    let again = provider.execute(&OpenAuthToken::code(&code)).await;
    assert_eq!(sub_code(again.unwrap_err()), "isv.code-invalid");
    let info = provider
        .execute(&OpenAuthTokenQuery::new(&auth.app_auth_token))
        .await
        .unwrap();
    assert!(info.is_valid());
    let token = auth.app_auth_token.clone();

    let receiver = Receiver::start().await;
    let no = "ISV-1";
    provider
        .execute_for(
            &token,
            &TradePrecreate::new(no, Fen::new(1000), "Cola")
                .notify_url(format!("{}/alipay/notify", receiver.url)),
        )
        .await
        .unwrap();
    sandbox.pay(no).await.unwrap();
    let got = receiver.wait_for("/alipay/notify", 1).await;
    let form: BTreeMap<String, String> = serde_urlencoded::from_str(&got[0].body).unwrap();
    assert_eq!(form["seller_id"], merchant, "the merchant's money");
    let by_no = || TradeRef::OutTradeNo(no.into());
    let paid = provider
        .execute_for(&token, &TradeQuery::new(by_no()))
        .await
        .unwrap();
    assert!(paid.trade_status.is_paid());
    // Without the merchant's token (the provider's own trades), or with a made-up one: nothing.
    let own = provider.execute(&TradeQuery::new(by_no())).await;
    assert_eq!(sub_code(own.unwrap_err()), "ACQ.TRADE_NOT_EXIST");
    let forged = provider
        .execute_for("2026forged", &TradeQuery::new(by_no()))
        .await;
    assert_eq!(sub_code(forged.unwrap_err()), "invalid-app-auth-token");

    // The platform's fee: bound first, then settled from the paid trade.
    let fee = |out: &str, fen: u64| {
        TradeOrderSettle::new(
            out,
            &paid.trade_no,
            vec![
                RoyaltyShare::new(AccountType::UserId, "2088000000000999", Fen::new(fen))
                    .desc("fee"),
            ],
        )
    };
    let unbound = provider.execute_for(&token, &fee("S-0", 60)).await;
    assert_eq!(sub_code(unbound.unwrap_err()), "ACQ.TRANS_IN_NOT_BIND");
    provider
        .execute_for(
            &token,
            &RoyaltyRelationBind::new(
                "B-1",
                vec![RoyaltyReceiver::new(
                    AccountType::UserId,
                    "2088000000000999",
                )],
            ),
        )
        .await
        .unwrap();
    let settled = provider.execute_for(&token, &fee("S-1", 60)).await.unwrap();
    assert!(settled.settle_no.is_some());
    let repeated = provider.execute_for(&token, &fee("S-1", 60)).await.unwrap();
    assert_eq!(repeated.settle_no, settled.settle_no);
    let too_much = provider.execute_for(&token, &fee("S-2", 941)).await;
    assert_eq!(
        sub_code(too_much.unwrap_err()),
        "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR"
    );
    sandbox.shutdown().await;
}
