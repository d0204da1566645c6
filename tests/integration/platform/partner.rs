//! `pay-platform` as a service provider (`PLATFORM_MODE=partner`): each merchant paid into its
//! own sub-merchant account at the emulator's WeChat Pay, the platform's fee shared once and
//! shown as gross / fee / net, taken back before a refund, and counted as the platform's fee
//! income per day; a merchant without a sub-merchant cannot take WeChat payments, and no
//! merchant can use another's.

use axum::http::StatusCode;
use examples::platform::config::PlatformMode;
use merchant_client::{CreatePayment, CreateRefund, Error, Fen};
use serde_json::json;

use super::{MerchantEndpoint, Options, Platform, eventually};

fn partner() -> Options {
    Options {
        platform_mode: Some(PlatformMode::Partner),
        platform_fee_bps: Some(60),
        ..Options::default()
    }
}

fn api_code(e: Error) -> (u16, String) {
    match e {
        Error::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn each_merchant_is_paid_into_its_own_account_and_the_fee_is_shared() {
    let p = Platform::start(partner()).await;
    let endpoint = MerchantEndpoint::start().await;
    let (a, b) = (
        p.register(&endpoint.url).await,
        p.register(&endpoint.url).await,
    );
    let shop = p.client(&a);
    let wechat =
        |no: &str, fen: u64| CreatePayment::new(no, Fen::new(fen), "Cola").method("wechat_native");

    // Not onboarded on WeChat Pay yet: no WeChat payments.
    let e = shop.create_payment(&wechat("p-0", 1000)).await.unwrap_err();
    assert_eq!(api_code(e), (422, "CHANNEL_UNAVAILABLE".into()));

    // Onboarding: WeChat issued sub-merchant 1900100001; this merchant's fee is 1 %.
    let sub = examples::providers::demo_sub_merchants().next().unwrap();
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", a.app_id),
            Some(json!({"wechat_sub_mchid": sub, "fee_bps": 100})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["wechat_sub_mchid"].as_str(), body["fee_bps"].as_u64()),
        (Some(sub.as_str()), Some(100))
    );
    // One merchant's sub-merchant only; one that is not the platform's is refused by WeChat.
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", b.app_id),
            Some(json!({"wechat_sub_mchid": sub})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("SUB_MERCHANT_TAKEN")),
        "{body}"
    );
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", b.app_id),
            Some(json!({"wechat_sub_mchid": "1999999999"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("SUB_MERCHANT_REFUSED")
        ),
        "{body}"
    );
    // A merchant cannot name a sub-merchant in its own request.
    let e = p
        .client(&b)
        .request::<serde_json::Value>(
            "POST",
            "/v1/payments",
            Some(
                &json!({"out_trade_no": "p-x", "amount": 100, "subject": "Cola",
                         "method": "wechat_native", "sub_mchid": sub}),
            ),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(e).0, 400);

    // The cashier offers a merchant what it is onboarded for (and, in demo mode, test money).
    let page_of = async |creds: &super::Creds, no: &str| {
        let order = p
            .client(creds)
            .create_payment(&CreatePayment::new(no, Fen::new(100), "Gum"))
            .await
            .unwrap();
        p.page(&order.cashier_url).await
    };
    let (onboarded, not_yet) = (page_of(&a, "c-a").await, page_of(&b, "c-b").await);
    assert!(onboarded.contains("choose('wechat_native')"), "{onboarded}");
    assert!(!not_yet.contains("choose('wechat_native')"), "{not_yet}");
    assert!(not_yet.contains("choose('sandbox')"), "{not_yet}");

    // A payment of 1000 fen: the fee is 10 (1 %), the merchant nets 990 once paid.
    let created = shop.create_payment(&wechat("p-1", 1000)).await.unwrap();
    assert_eq!(
        (created.fee, created.net),
        (Fen::ZERO, Fen::ZERO),
        "nothing before it is paid"
    );
    p.pay_at_emulator(&a.app_id, "p-1").await;
    eventually(20, "paid, and the fee shared", async || {
        p.ledgers().get(&sub).is_some_and(|l| l.shared_out > 0)
    })
    .await;
    let view = shop.get_payment("p-1").await.unwrap();
    assert_eq!(
        (view.status.as_str(), view.amount, view.fee, view.net),
        ("PAID", Fen::new(1000), Fen::new(10), Fen::new(990))
    );
    // The callback says the same.
    let delivered = endpoint.accepted("payment.succeeded");
    assert_eq!(
        (
            delivered[0]["data"]["fee"].as_u64(),
            delivered[0]["data"]["net"].as_u64()
        ),
        (Some(10), Some(990))
    );
    // The money is the sub-merchant's; the platform holds its fee only.
    let ledgers = p.ledgers();
    let (shop_ledger, platform_ledger) = (&ledgers[&sub], &ledgers[&p.wechat_merchant.1]);
    assert_eq!((platform_ledger.paid, platform_ledger.shared_in), (0, 10));
    assert_eq!(
        (
            shop_ledger.paid,
            shop_ledger.shared_out,
            shop_ledger.frozen,
            shop_ledger.balance
        ),
        (1000, 10, 0, 990)
    );

    let today = aggregate_pay::bills::china_day(time::OffsetDateTime::now_utc()).to_string();
    let fees = |from: &str| format!("/admin/fees?from={from}&to={today}");
    let (status, income) = p.admin("GET", &fees(&today), None).await;
    assert_eq!(status, StatusCode::OK, "{income}");
    assert_eq!(
        income["total"],
        json!({"shares": 1, "shared": 10, "returned": 0, "kept": 10})
    );
    assert_eq!(income["days"][0]["day"], today.as_str());

    // 300 back to the buyer: the fee of what is left is ⌊10 × 700 / 1000⌋ = 7, so 3 fen come back
    // from the platform first.
    shop.create_refund(&CreateRefund::new("p-1", "r-1", Fen::new(300)))
        .await
        .unwrap();
    eventually(20, "the refund", async || {
        shop.get_payment("p-1").await.unwrap().refunded_amount == Fen::new(300)
    })
    .await;
    let view = shop.get_payment("p-1").await.unwrap();
    assert_eq!((view.fee, view.net), (Fen::new(7), Fen::new(693)));
    let shop_ledger = p.ledgers()[&sub].clone();
    assert_eq!(
        (
            shop_ledger.refunded,
            shop_ledger.returned_in,
            shop_ledger.balance
        ),
        (300, 3, 693)
    );
    let (_, income) = p.admin("GET", &fees(&today), None).await;
    assert_eq!(
        income["total"],
        json!({"shares": 1, "shared": 10, "returned": 3, "kept": 7})
    );
    // Bad ranges are refused.
    let (status, _) = p.admin("GET", &fees("2020-01-01"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    p.stop().await;
}

#[tokio::test]
async fn partner_settings_are_refused_where_they_cannot_work() {
    // Direct mode has no sub-merchants.
    let p = Platform::start(Options::default()).await;
    let endpoint = MerchantEndpoint::start().await;
    let a = p.register(&endpoint.url).await;
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", a.app_id),
            Some(json!({"wechat_sub_mchid": "1900100001"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("NOT_PARTNER_MODE"))
    );
    p.stop().await;
    // A fee is taken by profit sharing: not in direct mode; never above 100 %.
    let refused = |options: Options| async move {
        match Platform::try_start(options).await {
            Ok(_) => panic!("started"),
            Err(e) => e.to_string(),
        }
    };
    let e = refused(Options {
        platform_mode: Some(PlatformMode::Direct),
        platform_fee_bps: Some(60),
        ..Options::default()
    })
    .await;
    assert!(e.contains("PLATFORM_FEE_BPS"), "{e}");
    let e = refused(Options {
        platform_fee_bps: Some(10_001),
        ..partner()
    })
    .await;
    assert!(e.contains("10000"), "{e}");
}

/// Live: partner mode is the default when a fee is set, needs API v3 and the provider's name,
/// serves any number of merchants, and pays each into its own sub-merchant at the gateway.
#[tokio::test]
async fn live_partner_mode_pays_sub_merchants_at_the_gateway() {
    use crate::support::{
        V3_MCH_ID, V3_SUB_MCH_ID, control, start_gateway, wechat_credentials,
        wechat_v3_credentials_with_login,
    };
    let gateway = start_gateway().await;
    let live = |providers, name: Option<&str>| Options {
        providers: Some(providers),
        gateway_url: Some(gateway.base_url().to_owned()),
        callback_allow_private: Some(true),
        platform_fee_bps: Some(60),
        platform_merchant_name: name.map(str::to_owned),
        ..Options::default()
    };
    let refused = |options: Options| async move {
        match Platform::try_start(options).await {
            Ok(_) => panic!("started"),
            Err(e) => e.to_string(),
        }
    };
    // API v2 has no partner payments here; the provider's name is required.
    let e = refused(live(
        wechat_credentials(gateway.base_url()),
        Some("示例平台有限公司"),
    ))
    .await;
    assert!(e.contains("WECHAT_PAY_API=v3"), "{e}");
    let e = refused(live(
        wechat_v3_credentials_with_login(&gateway, false),
        None,
    ))
    .await;
    assert!(e.contains("PLATFORM_MERCHANT_NAME"), "{e}");

    let p = Platform::start(live(
        wechat_v3_credentials_with_login(&gateway, false),
        Some("示例平台有限公司"),
    ))
    .await;
    let endpoint = MerchantEndpoint::start().await;
    // Any number of merchants: their money never passes through the platform.
    let a = p.register(&endpoint.url).await;
    p.register(&endpoint.url).await;
    let shop = p.client(&a);
    let pay = CreatePayment::new("live-p-1", Fen::new(1000), "Cola").method("wechat_native");
    let e = shop.create_payment(&pay).await.unwrap_err();
    assert_eq!(api_code(e), (422, "CHANNEL_UNAVAILABLE".into()));
    let (status, body) = p
        .admin(
            "PUT",
            &format!("/admin/merchants/{}/partner", a.app_id),
            Some(json!({"wechat_sub_mchid": V3_SUB_MCH_ID})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    shop.create_payment(&pay).await.unwrap();
    let platform_no = p.platform_no(&a.app_id, "live-p-1").await;
    let (status, paid) = control(
        &gateway,
        "/sandbox/pay",
        json!({"out_trade_no": platform_no}),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    eventually(20, "the fee shared at the gateway", async || {
        gateway
            .ledgers()
            .get(V3_SUB_MCH_ID)
            .is_some_and(|l| l.shared_out > 0)
    })
    .await;
    let ledgers = gateway.ledgers();
    assert_eq!(
        (
            ledgers[V3_SUB_MCH_ID].paid,
            ledgers[V3_SUB_MCH_ID].shared_out
        ),
        (1000, 6)
    );
    assert_eq!(
        (ledgers[V3_MCH_ID].paid, ledgers[V3_MCH_ID].shared_in),
        (0, 6)
    );
    let view = shop.get_payment("live-p-1").await.unwrap();
    assert_eq!((view.fee, view.net), (Fen::new(6), Fen::new(994)));
    p.stop().await;
    gateway.shutdown().await;
}

/// Alipay in partner mode: the merchant authorizes the platform's app through Alipay's page (the
/// emulator's), then its payments are made with its `app_auth_token` into its own account; the
/// platform's fee is settled to it and given back before a refund.
#[tokio::test]
async fn an_alipay_merchant_authorizes_the_platform_and_is_paid_through_its_token() {
    let p = Platform::start(partner()).await;
    let endpoint = MerchantEndpoint::start().await;
    let a = p.register(&endpoint.url).await;
    let shop = p.client(&a);
    let qr = |no: &str| CreatePayment::new(no, Fen::new(1000), "Cola").method("alipay_qr");
    let e = shop.create_payment(&qr("ali-0")).await.unwrap_err();
    assert_eq!(api_code(e), (422, "CHANNEL_UNAVAILABLE".into()));

    // The admin hands the merchant its link; the merchant approves on Alipay's page and comes
    // back to the platform, which takes the authorization.
    let path = format!("/admin/merchants/{}/alipay-authorization", a.app_id);
    let (status, link) = p.admin("POST", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    let back = p.http.get(&url).send().await.unwrap();
    assert_eq!(back.status().as_u16(), 200);
    assert!(
        back.text()
            .await
            .unwrap()
            .contains("has authorized the platform")
    );
    // The link is single-use.
    let again = p.http.get(&url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 403);
    let (_, shown) = p
        .admin("GET", &format!("/admin/merchants/{}", a.app_id), None)
        .await;
    let user_id = shown["alipay_user_id"].as_str().unwrap().to_owned();
    assert!(user_id.starts_with("2088"), "{shown}");
    assert!(
        !shown.to_string().contains("token"),
        "the token is never shown: {shown}"
    );

    // Paid with the merchant's token: the trade is the merchant's.
    shop.create_payment(&qr("ali-1")).await.unwrap();
    p.pay_at_emulator(&a.app_id, "ali-1").await;
    let platform_no = p.platform_no(&a.app_id, "ali-1").await;
    let mut payment = None;
    eventually(20, "paid, and the fee settled", async || {
        let found = p
            .state
            .payments
            .get_by_out_trade_no(&platform_no)
            .await
            .unwrap();
        let shared = match &p.state.sharing {
            Some(s) => s.share(&found.id).await.unwrap(),
            None => None,
        };
        payment = Some(found);
        shared.is_some_and(|s| s.status == aggregate_pay::sharing::ShareStatus::Shared)
    })
    .await;
    let payment = payment.unwrap();
    assert!(
        payment.channel_account.ends_with(&format!("/{user_id}")),
        "{}",
        payment.channel_account
    );
    assert_eq!(payment.sub_merchant.as_deref(), Some(user_id.as_str()));
    let view = shop.get_payment("ali-1").await.unwrap();
    assert_eq!((view.fee, view.net), (Fen::new(6), Fen::new(994)));

    // Refunds `fen` more; the share's (returned, kept) once the payment shows it.
    let refund = async |no: &str, fen: u64, total: u64| {
        shop.create_refund(&CreateRefund::new("ali-1", no, Fen::new(fen)))
            .await
            .unwrap();
        eventually(20, "the refund", async || {
            shop.get_payment("ali-1").await.unwrap().refunded_amount == Fen::new(total)
        })
        .await;
        let sharing = p.state.sharing.as_ref().unwrap();
        let share = sharing.share(&payment.id).await.unwrap().unwrap();
        (share.returned(), share.kept())
    };
    // 300 back: 2 fen of the fee go back to the merchant with the refund.
    assert_eq!(
        refund("ali-r-1", 300, 300).await,
        (Fen::new(2), Fen::new(4))
    );
    let view = shop.get_payment("ali-1").await.unwrap();
    assert_eq!((view.fee, view.net), (Fen::new(4), Fen::new(696)));
    // The rest: Alipay refunds what was settled away only with it taken back from the
    // platform (refund_royalty_parameters) — the last 4 fen of the fee.
    assert_eq!(refund("ali-r-2", 700, 1000).await, (Fen::new(6), Fen::ZERO));
    p.stop().await;
}
