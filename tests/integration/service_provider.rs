//! `aggregate-pay` as a service provider against the emulator's WeChat Pay v3 partner mode:
//! payments land in the sub-merchant's own ledger, the platform's fee is shared once however
//! many instances see the success, a missing receiver leaves the share pending with the reason
//! until the operator adds it, and a refund takes the fee back before refunding — the ledgers
//! balance to the fen.

use std::sync::Arc;

use aggregate_pay::channels::RawNotify;
use aggregate_pay::channels::wechat::{WechatApi, WechatChannel};
use aggregate_pay::fees::FeeRate;
use aggregate_pay::sharing::{ProfitSharing, ShareStatus};
use aggregate_pay::{
    Channels, EventHandler, EventKind, Fen, MemoryStore, NewPayment, NotifyOutcome,
    NotifyProcessor, PayMethod, Payment, PaymentStatus, PaymentStore, Payments, RefundStatus,
};
use wechat_pay::v3::{AddReceiver, ReceiverType, RelationType};
use wechat_sandbox::Sandbox;

use crate::support::{
    APP_ID, Receiver, V3_MCH_ID, V3_OTHER_SUB_MCH_ID, V3_SUB_MCH_ID, control, start_mp_callbacks,
    start_sandbox, unique, v3_client,
};

/// One instance of the platform: its own service, notify processor and sharer, over the shared
/// store.
struct Instance {
    payments: Payments,
    processor: NotifyProcessor,
    sharing: ProfitSharing,
}

struct Platform {
    sandbox: Sandbox,
    receiver: Receiver,
    store: Arc<MemoryStore>,
    channels: Channels,
}

impl Platform {
    async fn start() -> Platform {
        let sandbox = start_sandbox(&start_mp_callbacks().await).await;
        let channels = Channels::new().with(WechatChannel::new(WechatApi::v3(
            v3_client(&sandbox),
            APP_ID,
        )));
        Platform {
            sandbox,
            receiver: Receiver::start().await,
            store: Arc::new(MemoryStore::new()),
            channels,
        }
    }

    fn instance(&self) -> Instance {
        let store: Arc<dyn PaymentStore> = self.store.clone();
        let sharing = ProfitSharing::new(self.channels.clone(), store.clone(), self.store.clone());
        Instance {
            payments: Payments::new(self.channels.clone(), store.clone())
                .profit_sharing(sharing.clone()),
            processor: NotifyProcessor::new(self.channels.clone(), store),
            sharing,
        }
    }

    /// The service provider becomes a receiver of `sub`'s sharing (what onboarding does).
    async fn add_receiver(&self, sub: &str) {
        v3_client(&self.sandbox)
            .execute(
                &AddReceiver::new(
                    APP_ID,
                    ReceiverType::MerchantId,
                    V3_MCH_ID,
                    RelationType::ServiceProvider,
                )
                .sub_mchid(sub)
                .name("示例平台有限公司"),
            )
            .await
            .unwrap();
    }

    /// A payment of `fen` to `sub` with the platform's 0.6 % fee, created on `at`.
    async fn create(&self, at: &Instance, sub: &str, fen: u64) -> Payment {
        let fee = FeeRate::bps(60).unwrap().fee(Fen::new(fen));
        let (payment, _) = at
            .payments
            .create(
                NewPayment::new(
                    unique("SP"),
                    Fen::new(fen),
                    "Cola",
                    PayMethod::WechatNative,
                    format!("{}/wechat/notify", self.receiver.url),
                )
                .sub_merchant(sub)
                .platform_fee(fee),
            )
            .await
            .unwrap();
        payment
    }

    /// The buyer pays; returns the notification WeChat sent.
    async fn pay(&self, payment: &Payment) -> RawNotify {
        let before = self.receiver.count("/wechat/notify");
        let (status, body) = control(
            &self.sandbox,
            "/sandbox/pay",
            serde_json::json!({"out_trade_no": payment.out_trade_no}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let got = self.receiver.wait_for("/wechat/notify", before + 1).await;
        RawNotify::payment(got[before].body.clone()).with_headers(got[before].headers.clone())
    }

    fn ledger(&self, id: &str) -> wechat_sandbox::Ledger {
        self.sandbox.ledgers().remove(id).unwrap_or_default()
    }
}

#[tokio::test]
async fn the_fee_is_shared_once_when_two_instances_see_the_same_success() {
    let p = Platform::start().await;
    p.add_receiver(V3_SUB_MCH_ID).await;
    let (a, b) = (p.instance(), p.instance());
    let payment = p.create(&a, V3_SUB_MCH_ID, 1000).await;
    assert_eq!(
        payment.channel_account,
        format!("{APP_ID}/{V3_MCH_ID}/{V3_SUB_MCH_ID}"),
        "the payment is the sub-merchant's"
    );
    let notification = p.pay(&payment).await;

    // Both instances get the notification at once: one records the success.
    let (x, y) = tokio::join!(
        a.processor.handle("wechat", &notification),
        b.processor.handle("wechat", &notification)
    );
    let mut outcomes = [x.outcome, y.outcome];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [NotifyOutcome::Applied, NotifyOutcome::Duplicate]);
    let events = p.store.events(None, 100).await.unwrap();
    let succeeded: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::PaymentSucceeded)
        .collect();
    assert_eq!(succeeded.len(), 1);
    // …and both instances' sharers are handed the event (a redelivery), at the same moment.
    let (x, y) = tokio::join!(
        a.sharing.handle(succeeded[0]),
        b.sharing.handle(succeeded[0])
    );
    x.unwrap();
    y.unwrap();
    a.sharing.on_paid(&payment.id).await.unwrap();
    let share = a.sharing.share(&payment.id).await.unwrap().unwrap();
    assert_eq!(share.status, ShareStatus::Shared, "{share:?}");
    assert_eq!(share.amount, Fen::new(6));

    // The money is the sub-merchant's, the fee the platform's — once.
    let sub = p.ledger(V3_SUB_MCH_ID);
    assert_eq!((sub.paid, sub.shared_out, sub.frozen), (1000, 6, 0));
    assert_eq!(sub.balance, 994);
    let platform = p.ledger(V3_MCH_ID);
    assert_eq!((platform.paid, platform.shared_in), (0, 6));
    p.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_missing_receiver_leaves_the_share_pending_with_the_reason_until_it_is_added() {
    let p = Platform::start().await;
    let a = p.instance();
    let payment = p.create(&a, V3_OTHER_SUB_MCH_ID, 2500).await;
    let notification = p.pay(&payment).await;
    assert_eq!(
        a.processor.handle("wechat", &notification).await.outcome,
        NotifyOutcome::Applied
    );
    let share = a.sharing.on_paid(&payment.id).await.unwrap().unwrap();
    assert_eq!(share.status, ShareStatus::Pending);
    let reason = share.last_error.clone().unwrap_or_default();
    assert!(reason.contains("INVALID_REQUEST"), "{reason}");
    assert!(share.next_attempt_at > time::OffsetDateTime::now_utc());
    // Not due yet: a round leaves it alone; the money stays frozen with the sub-merchant.
    assert_eq!(a.sharing.run_once().await.unwrap().tried, 0);
    assert_eq!(p.ledger(V3_OTHER_SUB_MCH_ID).frozen, 2500);

    // The operator adds the receiver and tries again.
    p.add_receiver(V3_OTHER_SUB_MCH_ID).await;
    let share = a.sharing.retry_now(&payment.id).await.unwrap().unwrap();
    assert_eq!(share.status, ShareStatus::Shared, "{share:?}");
    assert_eq!((share.amount, share.attempts), (Fen::new(15), 2));
    assert_eq!(share.last_error, None);
    let sub = p.ledger(V3_OTHER_SUB_MCH_ID);
    assert_eq!((sub.shared_out, sub.frozen, sub.balance), (15, 0, 2485));
    p.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_refund_of_a_shared_payment_takes_the_fee_back_first_and_the_ledgers_balance() {
    let p = Platform::start().await;
    p.add_receiver(V3_SUB_MCH_ID).await;
    let a = p.instance();
    let payment = p.create(&a, V3_SUB_MCH_ID, 1000).await;
    let notification = p.pay(&payment).await;
    a.processor.handle("wechat", &notification).await;
    let share = a.sharing.on_paid(&payment.id).await.unwrap().unwrap();
    assert_eq!(
        (share.status, share.amount),
        (ShareStatus::Shared, Fen::new(6))
    );

    // 300 of 1000 back to the buyer: the fee of what is left is ⌊6 × 700 / 1000⌋ = 4, so 2 fen
    // come back from the platform first.
    let refund = a
        .payments
        .refund(&payment.id, &unique("SPR"), Fen::new(300), None, None)
        .await
        .unwrap();
    assert_ne!(refund.status, RefundStatus::Failed, "{refund:?}");
    let share = a.sharing.share(&payment.id).await.unwrap().unwrap();
    assert_eq!((share.returned(), share.kept()), (Fen::new(2), Fen::new(4)));
    let (sub, platform) = (p.ledger(V3_SUB_MCH_ID), p.ledger(V3_MCH_ID));
    assert_eq!((sub.refunded, sub.returned_in, sub.balance), (300, 2, 696));
    assert_eq!(platform.balance, 4);

    // The rest: all of the fee comes back, nobody holds anything.
    a.payments
        .refund(&payment.id, &unique("SPR"), Fen::new(700), None, None)
        .await
        .unwrap();
    let share = a.sharing.share(&payment.id).await.unwrap().unwrap();
    assert_eq!((share.returned(), share.kept()), (Fen::new(6), Fen::ZERO));
    let (sub, platform) = (p.ledger(V3_SUB_MCH_ID), p.ledger(V3_MCH_ID));
    assert_eq!((sub.paid, sub.refunded, sub.balance), (1000, 1000, 0));
    assert_eq!(
        (platform.shared_in, platform.returned_out, platform.balance),
        (6, 6, 0)
    );
    p.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_refund_before_sharing_shrinks_the_share_instead() {
    let p = Platform::start().await;
    let a = p.instance();
    let payment = p.create(&a, V3_OTHER_SUB_MCH_ID, 1000).await;
    let notification = p.pay(&payment).await;
    a.processor.handle("wechat", &notification).await;
    // The receiver is missing: the share waits while the buyer gets 500 back.
    let share = a.sharing.on_paid(&payment.id).await.unwrap().unwrap();
    assert_eq!(share.status, ShareStatus::Pending);
    let refund = a
        .payments
        .refund(&payment.id, &unique("SPR"), Fen::new(500), None, None)
        .await
        .unwrap();
    assert_ne!(refund.status, RefundStatus::Failed, "{refund:?}");
    p.add_receiver(V3_OTHER_SUB_MCH_ID).await;
    let share = a.sharing.retry_now(&payment.id).await.unwrap().unwrap();
    assert_eq!(
        (share.status, share.amount, share.returned()),
        (ShareStatus::Shared, Fen::new(3), Fen::ZERO)
    );
    let sub = p.ledger(V3_OTHER_SUB_MCH_ID);
    assert_eq!(
        (sub.refunded, sub.shared_out, sub.frozen, sub.balance),
        (500, 3, 0, 497)
    );
    p.sandbox.shutdown().await;
}

#[tokio::test]
async fn sub_merchant_payments_are_checked_before_anything_is_sent() {
    let p = Platform::start().await;
    let a = p.instance();
    let new = |fee: u64| {
        NewPayment::new(
            unique("SP"),
            Fen::new(100),
            "Cola",
            PayMethod::WechatNative,
            "https://platform.example/notify",
        )
        .platform_fee(Fen::new(fee))
    };
    // A fee without a sub-merchant, a fee above the amount, a sub-merchant id that is not one.
    let e = a.payments.create(new(1)).await.unwrap_err();
    assert!(matches!(e, aggregate_pay::Error::Invalid(_)), "{e:?}");
    let e = a
        .payments
        .create(new(101).sub_merchant(V3_SUB_MCH_ID))
        .await
        .unwrap_err();
    assert!(matches!(e, aggregate_pay::Error::Invalid(_)), "{e:?}");
    let e = a
        .payments
        .create(new(1).sub_merchant("../v3/other"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            aggregate_pay::Error::Channel(aggregate_pay::ChannelError::Config(_))
        ),
        "{e:?}"
    );
    // A sub-merchant that is not the service provider's: WeChat refuses, nothing is paid.
    let e = a
        .payments
        .create(new(1).sub_merchant("1999999999"))
        .await
        .unwrap_err();
    assert!(matches!(e, aggregate_pay::Error::Channel(_)), "{e:?}");
    // The same number again with another sub-merchant is a conflict, not a second payment.
    let no = unique("SP");
    let first = NewPayment::new(
        &no,
        Fen::new(100),
        "Cola",
        PayMethod::WechatNative,
        "https://p.example/n",
    )
    .sub_merchant(V3_SUB_MCH_ID);
    a.payments.create(first.clone()).await.unwrap();
    let e = a
        .payments
        .create(first.sub_merchant(V3_OTHER_SUB_MCH_ID))
        .await
        .unwrap_err();
    assert!(matches!(e, aggregate_pay::Error::Conflict(_)), "{e:?}");
    let stored = a.payments.get_by_out_trade_no(&no).await.unwrap();
    assert_eq!(stored.sub_merchant.as_deref(), Some(V3_SUB_MCH_ID));
    assert_eq!(stored.status, PaymentStatus::Pending);
    p.sandbox.shutdown().await;
}
