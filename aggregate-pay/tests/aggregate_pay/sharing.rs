//! Service-provider mode in every store: a payment keeps its sub-merchant and platform fee, and
//! a payment's share is recorded once, changed only by compare-and-set, found when due, and
//! counted on the day it was shared.

use std::time::Duration;

use aggregate_pay::sharing::{Share, ShareReturned, ShareStatus};
use aggregate_pay::store::Insert;
use aggregate_pay::{Fen, NotifyProcessor, PaymentId, PaymentStatus};
use time::OffsetDateTime;

use crate::support::{all_stores, paid_payment, sandbox, unique};

#[tokio::test]
async fn every_store_keeps_sub_merchants_fees_and_shares() {
    for faces in all_stores().await {
        let name = faces.name;
        let (channel, channels, payments) = sandbox(&faces.payments);
        let processor = NotifyProcessor::new(channels, faces.payments.clone());
        let created = paid_payment(&payments, &channel, &processor, "SH", 1000).await;
        let paid = payments.get(&created.id).await.unwrap();
        assert_eq!(paid.status, PaymentStatus::Paid);
        assert_eq!(
            (paid.sub_merchant.as_deref(), paid.platform_fee),
            (None, Fen::ZERO)
        );

        // A sub-merchant's payment with a fee reads back as it was stored.
        let mut p = paid.clone();
        p.id = PaymentId::generate();
        p.out_trade_no = unique("SH");
        p.sub_merchant = Some("1900000109".into());
        p.platform_fee = Fen::new(6);
        assert_eq!(
            faces.payments.insert_payment(&p).await.unwrap(),
            Insert::Inserted
        );
        let back = faces.payments.payment(&p.id).await.unwrap().unwrap();
        assert_eq!(back.sub_merchant.as_deref(), Some("1900000109"), "{name}");
        assert_eq!(back.platform_fee, Fen::new(6), "{name}");
        // Nothing to share for a payment without a sub-merchant or a fee.
        assert_eq!(Share::of(&paid, OffsetDateTime::now_utc()), None);

        // Stores keep milliseconds.
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let now = OffsetDateTime::from_unix_timestamp_nanos(nanos - nanos % 1_000_000).unwrap();
        let share = Share::of(&back, now).unwrap();
        assert_eq!(
            faces.shares.insert_share(&share).await.unwrap(),
            Insert::Inserted,
            "{name}"
        );
        // Once per payment.
        let mut again = share.clone();
        again.amount = Fen::new(5);
        match faces.shares.insert_share(&again).await.unwrap() {
            Insert::Existing(existing) => assert_eq!(existing.amount, Fen::new(6), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        // Due now; not before.
        let due = faces.shares.due_shares(now, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert!(
            faces
                .shares
                .due_shares(now - Duration::from_secs(1), 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );

        // Compare-and-set: the first claim wins, a stale copy changes nothing.
        let mut claimed = due[0].clone();
        claimed.in_flight = true;
        claimed.attempts = 1;
        claimed.next_attempt_at = now + Duration::from_secs(60);
        assert!(faces.shares.update_share(&claimed).await.unwrap(), "{name}");
        assert!(
            !faces.shares.update_share(&claimed).await.unwrap(),
            "{name}"
        );
        assert!(
            faces.shares.due_shares(now, 10).await.unwrap().is_empty(),
            "{name}"
        );

        let mut shared = faces.shares.share(&p.id).await.unwrap().unwrap();
        assert_eq!(
            (shared.version, shared.in_flight, shared.attempts),
            (1, true, 1)
        );
        shared.status = ShareStatus::Shared;
        shared.in_flight = false;
        shared.channel_order_id = Some("3008450740201411110007820472".into());
        shared.shared_at = Some(now);
        shared.last_error = Some("kept as given".into());
        shared.returns.push(ShareReturned {
            out_refund_no: "R-1".into(),
            amount: Fen::new(2),
        });
        assert!(faces.shares.update_share(&shared).await.unwrap(), "{name}");
        let stored = faces.shares.share(&p.id).await.unwrap().unwrap();
        shared.version += 1;
        assert_eq!(stored, shared, "{name}");
        assert_eq!(
            (stored.returned(), stored.kept()),
            (Fen::new(2), Fen::new(4))
        );

        // Counted on the day it was shared, and only then.
        let day = |from: OffsetDateTime| (from, from + Duration::from_secs(24 * 3600));
        let (from, to) = day(now - Duration::from_secs(60));
        let listed = faces.shares.shares_between(from, to, 10).await.unwrap();
        assert_eq!(listed.len(), 1, "{name}");
        let (from, to) = day(now + Duration::from_secs(1));
        assert!(
            faces
                .shares
                .shares_between(from, to, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
