//! Payment notifications through the notify processor and the real channels, as the emulator
//! (or a signer with the merchant's key) sends them: what is acknowledged, what is recorded,
//! what is refused.

use std::sync::Arc;

use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::wechat::WechatChannel;
use aggregate_pay::channels::{PayAction, RawNotify};
use aggregate_pay::store::PaymentStore;
use aggregate_pay::{
    Channels, EventKind, Fen, MemoryStore, NewPayment, NotifyOutcome, NotifyProcessor, PayMethod,
    Payment, PaymentStatus, Payments,
};
use wechat_pay::test_util::TestSigner;
use wechat_pay::{ApiKey, Params, SignType};
use wechat_sandbox::control::PayRequest;
use wechat_sandbox::{AlipayApp, Sandbox};

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, Receiver, alipay_app_key, alipay_gateway_public_key,
    start_mp_callbacks, start_sandbox, unique,
};

struct Setup {
    sandbox: Sandbox,
    receiver: Receiver,
    store: Arc<dyn PaymentStore>,
    payments: Payments,
    processor: NotifyProcessor,
}

async fn setup(sign_type: SignType, alipay_seller_id: Option<&str>) -> Setup {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let wechat = WechatChannel::official_account(
        wechat_pay::Client::builder(APP_ID, MCH_ID, ApiKey::new(KEY))
            .sign_type(sign_type)
            .base_url(sandbox.base_url())
            .build()
            .unwrap(),
    );
    let mut alipay =
        AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned());
    if let Some(seller) = alipay_seller_id {
        alipay = alipay.seller_id(seller);
    }
    let channels = Channels::new()
        .with(wechat)
        .with(AlipayChannel::new(alipay.build().unwrap()));
    let store: Arc<dyn PaymentStore> = Arc::new(MemoryStore::new());
    Setup {
        receiver: Receiver::start().await,
        payments: Payments::new(channels.clone(), store.clone()),
        processor: NotifyProcessor::new(channels, store.clone()),
        store,
        sandbox,
    }
}

impl Setup {
    async fn create(&self, method: PayMethod, path: &str) -> (Payment, PayAction) {
        self.payments
            .create(NewPayment::new(
                unique("N"),
                Fen::new(350),
                "Cola",
                method,
                format!("{}{path}", self.receiver.url),
            ))
            .await
            .unwrap()
    }

    async fn events(&self, p: &Payment) -> Vec<EventKind> {
        self.store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.payment_id == p.id)
            .map(|e| e.kind)
            .collect()
    }
}

#[tokio::test]
async fn an_authentic_failed_payment_is_recorded_once_and_acknowledged() {
    let s = setup(SignType::Md5, None).await;
    let (p, _) = s.create(PayMethod::WechatNative, "/wechat/notify").await;
    let failed = PayRequest {
        result: Some("PAYERROR".into()),
        ..PayRequest::new(&p.out_trade_no)
    };
    s.sandbox.pay_with(&failed).await.unwrap();
    let body = s.receiver.wait_for("/wechat/notify", 1).await[0]
        .body
        .clone();
    let fields = Params::from_xml(body.as_bytes()).unwrap();
    assert_eq!(fields.get("result_code"), Some("FAIL"), "{body}");
    for copy in 0..2 {
        let handled = s
            .processor
            .handle("wechat", &RawNotify::payment(body.clone().into_bytes()))
            .await;
        assert!(
            handled.ack.body.contains("SUCCESS"),
            "copy {copy}: acknowledged, so WeChat stops: {handled:?}"
        );
        let expected = if copy == 0 {
            NotifyOutcome::Applied
        } else {
            NotifyOutcome::Ignored
        };
        assert_eq!(handled.outcome, expected, "copy {copy}");
    }
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Failed
    );
    assert_eq!(
        s.events(&p).await,
        [EventKind::PaymentFailed],
        "recorded once"
    );
}

#[tokio::test]
async fn a_notification_signed_with_the_other_type_is_refused() {
    let s = setup(SignType::HmacSha256, None).await;
    let (p, _) = s.create(PayMethod::WechatNative, "/wechat/notify").await;
    // Signed with the right key, but MD5 while the merchant uses HMAC-SHA256.
    let md5 = TestSigner::new(APP_ID, MCH_ID, ApiKey::new(KEY))
        .payment_notification(&p.out_trade_no, Fen::new(350));
    let handled = s
        .processor
        .handle("wechat", &RawNotify::payment(md5.into_bytes()))
        .await;
    assert!(
        matches!(handled.outcome, NotifyOutcome::Rejected(_)),
        "{handled:?}"
    );
    assert!(handled.ack.body.contains("FAIL"));
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Pending
    );
    // WeChat's own (HMAC-SHA256, as the order was signed) is accepted.
    s.sandbox.pay(&p.out_trade_no).await.unwrap();
    let body = s.receiver.wait_for("/wechat/notify", 1).await[0]
        .body
        .clone();
    assert!(body.contains("HMAC-SHA256"), "{body}");
    let handled = s
        .processor
        .handle("wechat", &RawNotify::payment(body.into_bytes()))
        .await;
    assert_eq!(handled.outcome, NotifyOutcome::Applied);
    assert_eq!(
        s.payments.get(&p.id).await.unwrap().status,
        PaymentStatus::Paid
    );
}

#[tokio::test]
async fn app_parameters_are_signed_with_the_merchants_sign_type() {
    let s = setup(SignType::HmacSha256, None).await;
    let (_, action) = s.create(PayMethod::WechatApp, "/wechat/notify").await;
    let PayAction::WechatApp { params } = action else {
        panic!("{action:?}");
    };
    assert_eq!(params.sign_type, "HMAC-SHA256");
    let mut p = Params::new();
    p.insert("appid", params.appid.as_str());
    p.insert("partnerid", params.partnerid.as_str());
    p.insert("prepayid", params.prepayid.as_str());
    p.insert("package", params.package.as_str());
    p.insert("noncestr", params.noncestr.as_str());
    p.insert("timestamp", params.timestamp.as_str());
    p.insert("sign", params.sign.as_str());
    let key = ApiKey::new(KEY);
    assert!(p.verify(&key, SignType::HmacSha256).is_ok(), "{params:?}");
    assert!(p.verify(&key, SignType::Md5).is_err());
}

#[tokio::test]
async fn money_in_another_currency_is_not_marked_paid() {
    let s = setup(SignType::Md5, None).await;
    let (p, _) = s.create(PayMethod::WechatNative, "/wechat/notify").await;
    let signer = TestSigner::new(APP_ID, MCH_ID, ApiKey::new(KEY));
    let mut fields = signer.payment_notification_params(&p.out_trade_no, Fen::new(350));
    fields.insert("fee_type", "USD");
    let handled = s
        .processor
        .handle(
            "wechat",
            &RawNotify::payment(signer.sign(fields).into_bytes()),
        )
        .await;
    assert_eq!(
        handled.outcome,
        NotifyOutcome::AmountMismatch,
        "{handled:?}"
    );
    let now = s.payments.get(&p.id).await.unwrap();
    assert_eq!(now.status, PaymentStatus::Pending, "not paid");
    assert!(now.needs_review);
    assert_eq!(s.events(&p).await, [EventKind::PaymentAmountMismatch]);
}

#[tokio::test]
async fn an_alipay_notification_for_another_seller_is_refused() {
    let ours = AlipayApp::default_seller_id(ALIPAY_APP_ID);
    for (seller, accepted) in [("2088000000000009", false), (ours.as_str(), true)] {
        let s = setup(SignType::Md5, Some(seller)).await;
        let (p, _) = s.create(PayMethod::AlipayQr, "/alipay/notify").await;
        s.sandbox.pay(&p.out_trade_no).await.unwrap();
        let body = s.receiver.wait_for("/alipay/notify", 1).await[0]
            .body
            .clone();
        assert!(body.contains(&format!("seller_id={ours}")), "{body}");
        let handled = s
            .processor
            .handle("alipay", &RawNotify::payment(body.into_bytes()))
            .await;
        if accepted {
            assert_eq!(handled.outcome, NotifyOutcome::Applied);
            assert_eq!(handled.ack.body, "success");
        } else {
            assert!(
                matches!(&handled.outcome, NotifyOutcome::Rejected(r) if r.contains("seller_id")),
                "{handled:?}"
            );
            assert_eq!(handled.ack.body, "fail");
            assert_eq!(
                s.payments.get(&p.id).await.unwrap().status,
                PaymentStatus::Pending
            );
        }
    }
}
