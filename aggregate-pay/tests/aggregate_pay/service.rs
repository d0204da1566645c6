//! Creating, closing and refunding through the service.

use aggregate_pay::{
    Error, EventKind, Fen, NewPayment, NotifyProcessor, PayAction, PayMethod, PaymentStatus,
    RefundStatus,
};

use crate::support::{events_of, paid_payment, sandbox, stores, unique};

#[tokio::test]
async fn creation_is_idempotent_by_number() {
    for (engine, store) in stores().await {
        let (_, _, payments) = sandbox(&store);
        let no = unique("C");
        let req = NewPayment::new(&no, Fen::new(100), "Tea", PayMethod::Sandbox, "http://n")
            .metadata(serde_json::json!({"machine": "M001"}));
        let (a, action) = payments.create(req.clone()).await.unwrap();
        assert_eq!(
            action,
            PayAction::Sandbox {
                out_trade_no: no.clone()
            }
        );
        let (b, _) = payments.create(req.clone()).await.unwrap();
        assert_eq!(a.id, b.id, "{engine}: the same payment");
        assert_eq!(
            payments.get(&a.id).await.unwrap().metadata["machine"],
            "M001"
        );
        let mut other = req.clone();
        other.amount = Fen::new(101);
        assert!(
            matches!(payments.create(other).await, Err(Error::Conflict(_))),
            "{engine}"
        );
        assert!(matches!(
            payments
                .create(NewPayment::new(
                    unique("Z"),
                    Fen::ZERO,
                    "x",
                    PayMethod::Sandbox,
                    "http://n"
                ))
                .await,
            Err(Error::Invalid(_))
        ));
        assert!(
            matches!(
                payments
                    .create(NewPayment::new(
                        unique("W"),
                        Fen::new(1),
                        "x",
                        PayMethod::WechatJsapi,
                        "http://n"
                    ))
                    .await,
                Err(Error::Invalid(_))
            ),
            "JSAPI without openid"
        );
        assert!(
            matches!(
                payments
                    .create(NewPayment::new(
                        unique("W"),
                        Fen::new(1),
                        "x",
                        PayMethod::WechatNative,
                        "http://n"
                    ))
                    .await,
                Err(Error::NoChannel(_))
            ),
            "no WeChat channel registered"
        );
    }
}

#[tokio::test]
async fn closing_and_refunding() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());

        // Close an unpaid payment: at the channel, then here, with its event.
        let (open, _) = payments
            .create(NewPayment::new(
                unique("O"),
                Fen::new(100),
                "Tea",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        let closed = payments.close(&open.id).await.unwrap();
        assert_eq!(closed.status, PaymentStatus::Closed, "{engine}");
        assert_eq!(
            events_of(&store, &open.id).await[0].kind,
            EventKind::PaymentClosed
        );
        assert!(
            channel.pay(&open.out_trade_no).is_err(),
            "closed at the channel too"
        );

        // Pay one, then refund in parts.
        let p = paid_payment(&payments, &channel, &processor, "R", 1000).await;
        assert!(matches!(
            payments.close(&p.id).await,
            Err(Error::InvalidState {
                status: PaymentStatus::Paid,
                ..
            })
        ));
        let r1 = payments
            .refund(
                &p.id,
                &unique("RF"),
                Fen::new(300),
                Some("dented".into()),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            r1.status,
            RefundStatus::Succeeded,
            "{engine}: the sandbox refunds at once"
        );
        let after = payments.get(&p.id).await.unwrap();
        assert_eq!(
            (after.status, after.refunded_amount),
            (PaymentStatus::PartiallyRefunded, Fen::new(300))
        );
        // The same refund again: the same refund, no second refund.
        let again = payments
            .refund(&p.id, &r1.out_refund_no, Fen::new(300), None, None)
            .await
            .unwrap();
        assert_eq!(again.id, r1.id);
        assert!(matches!(
            payments
                .refund(&p.id, &r1.out_refund_no, Fen::new(200), None, None)
                .await,
            Err(Error::Conflict(_))
        ));
        assert!(
            matches!(
                payments
                    .refund(&p.id, &unique("RF"), Fen::new(701), None, None)
                    .await,
                Err(Error::Invalid(_))
            ),
            "{engine}: more than is left"
        );
        let r2 = payments
            .refund(&p.id, &unique("RF"), Fen::new(700), None, None)
            .await
            .unwrap();
        assert_eq!(r2.status, RefundStatus::Succeeded);
        let done = payments.get(&p.id).await.unwrap();
        assert_eq!(
            (done.status, done.refunded_amount),
            (PaymentStatus::Refunded, Fen::new(1000))
        );
        assert!(matches!(
            payments
                .refund(&p.id, &unique("RF"), Fen::new(1), None, None)
                .await,
            Err(Error::InvalidState {
                status: PaymentStatus::Refunded,
                ..
            })
        ));
        let kinds: Vec<EventKind> = events_of(&store, &p.id)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventKind::RefundSucceeded)
                .count(),
            2,
            "{engine}"
        );
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == EventKind::PaymentSucceeded)
                .count(),
            1
        );
        // Refunding an unpaid payment.
        assert!(matches!(
            payments
                .refund(&open.id, &unique("RF"), Fen::new(1), None, None)
                .await,
            Err(Error::InvalidState { .. })
        ));
    }
}

#[tokio::test]
async fn sync_applies_what_the_channel_says() {
    for (engine, store) in stores().await {
        let (channel, _, payments) = sandbox(&store);
        let (p, _) = payments
            .create(NewPayment::new(
                unique("Y"),
                Fen::new(5),
                "Gum",
                PayMethod::Sandbox,
                "http://n",
            ))
            .await
            .unwrap();
        // Paid at the channel; the notification is lost.
        channel.pay(&p.out_trade_no).unwrap();
        let synced = payments.sync(&p.id).await.unwrap();
        assert_eq!(synced.status, PaymentStatus::Paid, "{engine}");
        payments.sync(&p.id).await.unwrap();
        assert_eq!(events_of(&store, &p.id).await.len(), 1, "{engine}");
    }
}
