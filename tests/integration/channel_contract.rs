//! The channel contract: one suite every `PaymentChannel` passes — the in-process sandbox, and
//! WeChat and Alipay against the sandbox emulator. Adding a channel means adding one line to
//! `every_channel_keeps_the_contract`.

use std::sync::Arc;

use aggregate_pay::channels::alipay::{AlipayChannel, AlipayClient};
use aggregate_pay::channels::sandbox::SandboxChannel;
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use aggregate_pay::channels::{
    AckOutcome, ChannelNotification, ChannelPaymentState, CloseOutcome, NotifiedStatus, RawNotify,
    RefundRequest,
};
use aggregate_pay::{ChannelError, Fen, NewPayment, PayMethod, PaymentChannel, RefundStatus};
use async_trait::async_trait;
use wechat_sandbox::Sandbox;

use crate::support::{
    ALIPAY_APP_ID, APP_ID, KEY, MCH_ID, Receiver, alipay_app_key, alipay_gateway_public_key,
    control, start_mp_callbacks, start_sandbox, v3_client,
};

/// What the contract needs from the provider's side of a channel.
#[async_trait]
trait Provider: Send + Sync {
    /// The payer pays; returns the notification the provider sent.
    async fn pay(&self, out_trade_no: &str) -> RawNotify;
    /// The provider finishes a refund it accepted as pending.
    async fn finish_refund(&self, out_refund_no: &str);
}

struct InProcess(Arc<SandboxChannel>);

#[async_trait]
impl Provider for InProcess {
    async fn pay(&self, out_trade_no: &str) -> RawNotify {
        self.0.pay(out_trade_no).unwrap()
    }
    async fn finish_refund(&self, _: &str) {}
}

struct Emulated<'a> {
    sandbox: &'a Sandbox,
    receiver: Receiver,
    path: &'static str,
}

#[async_trait]
impl Provider for Emulated<'_> {
    async fn pay(&self, out_trade_no: &str) -> RawNotify {
        let before = self.receiver.count(self.path);
        let (status, body) = control(
            self.sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": out_trade_no}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let got = self.receiver.wait_for(self.path, before + 1).await;
        RawNotify::payment(got[before].body.clone()).with_headers(got[before].headers.clone())
    }
    async fn finish_refund(&self, out_refund_no: &str) {
        control(
            self.sandbox,
            "/sandbox/refund-complete",
            serde_json::json!({"out_refund_no": out_refund_no}),
        )
        .await;
    }
}

async fn contract(
    name: &str,
    channel: &dyn PaymentChannel,
    method: PayMethod,
    provider: &dyn Provider,
    notify_url: &str,
) {
    assert!(channel.capabilities().methods.contains(&method), "{name}");
    let no = format!("CT{}{}", name.len(), &crate::support::KEY[..6]).to_uppercase() + name;
    let no: String = no
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    let req =
        NewPayment::new(&no, Fen::new(123), "Contract", method, notify_url).open_id("oContract");

    // Create, idempotently; the same number with another amount is refused.
    channel
        .create(&req)
        .await
        .unwrap_or_else(|e| panic!("{name}: create: {e}"));
    channel
        .create(&req)
        .await
        .unwrap_or_else(|e| panic!("{name}: create again: {e}"));
    let mut other = req.clone();
    other.amount = Fen::new(124);
    assert!(
        matches!(
            channel.create(&other).await,
            Err(ChannelError::Rejected { .. })
        ),
        "{name}: reused number"
    );
    assert_eq!(
        channel.query(&no).await.unwrap(),
        ChannelPaymentState::Pending,
        "{name}"
    );

    // Paid: the notification verifies, names the account and the amount.
    let raw = provider.pay(&no).await;
    match channel
        .verify_notify(&raw)
        .await
        .unwrap_or_else(|e| panic!("{name}: verify: {e}"))
    {
        ChannelNotification::Payment {
            out_trade_no,
            amount,
            account,
            status,
            ..
        } => {
            assert_eq!(out_trade_no, no, "{name}");
            assert_eq!(amount, Fen::new(123), "{name}");
            assert_eq!(account, channel.account(), "{name}");
            assert_eq!(status, NotifiedStatus::Paid, "{name}");
        }
        other => panic!("{name}: {other:?}"),
    }
    // A tampered copy does not verify.
    let mut tampered = raw.clone();
    let text = String::from_utf8(tampered.body.clone()).unwrap();
    tampered.body = text
        .replacen("123", "124", 1)
        .replacen("1.23", "1.24", 1)
        .into_bytes();
    if tampered.body == raw.body {
        // The amount is encrypted (WeChat Pay v3): change the body around it.
        tampered.body.insert(1, b' ');
    }
    assert!(
        channel.verify_notify(&tampered).await.is_err(),
        "{name}: tampered notification"
    );
    assert!(
        channel
            .verify_notify(&RawNotify::payment("garbage"))
            .await
            .is_err(),
        "{name}"
    );
    assert!(
        matches!(channel.query(&no).await.unwrap(), ChannelPaymentState::Paid { amount, .. } if amount == Fen::new(123)),
        "{name}"
    );
    assert_eq!(
        channel.close(&no).await.unwrap(),
        CloseOutcome::AlreadyPaid,
        "{name}: closing a paid payment"
    );

    // Refund part of it.
    let refund = RefundRequest::new(
        no.clone(),
        format!("R{no}").chars().take(32).collect::<String>(),
        Fen::new(123),
        Fen::new(23),
    );
    let r = channel
        .refund(&refund)
        .await
        .unwrap_or_else(|e| panic!("{name}: refund: {e}"));
    if r.status == RefundStatus::Pending {
        provider.finish_refund(&refund.out_refund_no).await;
    }
    let q = channel
        .query_refund(&no, &refund.out_refund_no)
        .await
        .unwrap();
    assert_eq!(q.map(|q| q.status), Some(RefundStatus::Succeeded), "{name}");
    let never_sent = format!("N{}", refund.out_refund_no)
        .chars()
        .take(32)
        .collect::<String>();
    assert_eq!(
        channel.query_refund(&no, &never_sent).await.unwrap(),
        None,
        "{name}: a refund the channel never got is not found (so sending it is safe)"
    );
    let mut too_much = refund.clone();
    too_much.out_refund_no = format!("X{}", refund.out_refund_no)
        .chars()
        .take(32)
        .collect();
    too_much.amount = Fen::new(101);
    let refused = channel.refund(&too_much).await.unwrap_err();
    assert!(
        matches!(refused, ChannelError::Rejected { .. }),
        "{name}: more than is left is a definitive refusal: {refused:?}"
    );

    // An unpaid payment closes.
    let mut second = req.clone();
    second.out_trade_no = format!("C{no}").chars().take(32).collect();
    channel.create(&second).await.unwrap();
    assert_eq!(
        channel.close(&second.out_trade_no).await.unwrap(),
        CloseOutcome::Closed,
        "{name}"
    );
    assert_eq!(
        channel.query(&second.out_trade_no).await.unwrap(),
        ChannelPaymentState::Closed,
        "{name}"
    );

    // Acknowledgements differ for "done" and "send it again".
    assert_ne!(
        channel.ack(&AckOutcome::Accepted).body,
        channel.ack(&AckOutcome::Retry("x".into())).body,
        "{name}"
    );
}

#[tokio::test]
async fn every_channel_keeps_the_contract() {
    let sandbox = start_sandbox(&start_mp_callbacks().await).await;
    let receiver = Receiver::start().await;

    let in_process = Arc::new(SandboxChannel::new("contract", "secret"));
    contract(
        "sandbox",
        in_process.as_ref(),
        PayMethod::Sandbox,
        &InProcess(in_process.clone()),
        "http://unused",
    )
    .await;

    // WeChat Pay over API v2 and over API v3: the same contract.
    let v2 = WechatChannel::new(
        wechat_pay::Client::builder(APP_ID, MCH_ID, wechat_pay::ApiKey::new(KEY))
            .base_url(sandbox.base_url())
            .build()
            .unwrap(),
    );
    let v3 = WechatChannel::new(WechatApi::v3(v3_client(&sandbox), APP_ID));
    let provider = Emulated {
        sandbox: &sandbox,
        receiver: receiver.clone(),
        path: "/wechat/notify",
    };
    for (api, wechat) in [("v2", &v2), ("v3", &v3)] {
        for method in [PayMethod::WechatNative, PayMethod::WechatJsapi] {
            let notify = format!("{}/wechat/notify", receiver.url);
            contract(
                &format!("wechat{api}{method}"),
                wechat,
                method,
                &provider,
                &notify,
            )
            .await;
        }
    }

    let alipay = AlipayChannel::new(
        AlipayClient::builder(ALIPAY_APP_ID, alipay_app_key(), alipay_gateway_public_key())
            .base_url(sandbox.base_url().to_owned())
            .build()
            .unwrap(),
    );
    let provider = Emulated {
        sandbox: &sandbox,
        receiver: receiver.clone(),
        path: "/alipay/notify",
    };
    contract(
        "alipay",
        &alipay,
        PayMethod::AlipayQr,
        &provider,
        &format!("{}/alipay/notify", receiver.url),
    )
    .await;
    sandbox.shutdown().await;
}
