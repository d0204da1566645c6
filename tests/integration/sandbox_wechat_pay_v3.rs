//! The project's `wechat_pay::v3` client against the sandbox's v3 gateway: requests verified by
//! the sandbox with the merchant's key, answers and notifications signed with the sandbox's
//! WeChat Pay key, notifications encrypted with the merchant's API v3 key.

use serde_json::Value;
use wechat_pay::Fen;
use wechat_pay::v3::{
    ApiV3Key, Client, CloseTransaction, JsapiOrder, MerchantKey, NativeOrder, Notification,
    OrderRequest, QueryTransaction, TradeState, TransactionRef, V3ErrorCode, WechatPayKey,
};
use wechat_sandbox::{Sandbox, control::PayRequest};

use crate::support::{
    APP_ID as APP, V3_API_KEY, V3_MCH_ID, V3_MERCHANT_KEY as MERCHANT_KEY, V3_SERIAL,
    sandbox_builder, start_mp_callbacks, unique,
};

async fn sandbox() -> Sandbox {
    sandbox_builder(&start_mp_callbacks().await)
        .start()
        .await
        .unwrap()
}

fn client(sandbox: &Sandbox, merchant_key: &str) -> Client {
    let (id, pem) = sandbox.wechatpay_public_key();
    Client::builder(
        V3_MCH_ID,
        V3_SERIAL,
        MerchantKey::from_pem(merchant_key).unwrap(),
        ApiV3Key::new(V3_API_KEY).unwrap(),
    )
    .wechat_pay_key(WechatPayKey::from_pem(id, &pem).unwrap())
    .base_url(sandbox.base_url())
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_v3_order_is_created_paid_notified_queried_and_not_closed_once_paid() {
    let sandbox = sandbox().await;
    let c = client(&sandbox, MERCHANT_KEY);
    let (notify_url, received) = crate::support::recording_endpoint().await;
    let no = unique("V3N");
    let created = c
        .execute(&NativeOrder(OrderRequest::new(
            APP,
            "Cola",
            &no,
            Fen::new(350),
            &notify_url,
        )))
        .await
        .unwrap();
    assert!(created.code_url.starts_with("weixin://wxpay/bizpayurl"));
    let q = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(no.clone())))
        .await
        .unwrap();
    assert_eq!(q.trade_state, TradeState::NotPay);

    sandbox.pay_with(&PayRequest::new(&no)).await.unwrap();
    crate::support::eventually(10, "the v3 notification", async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (envelope, event) = c.notification(header, &body).await.unwrap();
    assert_eq!(envelope.event_type, "TRANSACTION.SUCCESS");
    let Notification::Transaction(t) = event else {
        panic!("{event:?}")
    };
    assert_eq!(t.out_trade_no, no);
    assert_eq!(t.trade_state, TradeState::Success);
    assert_eq!(t.amount.as_ref().unwrap().total, Fen::new(350));
    // Acknowledged (204): delivered once.
    let log = sandbox.notifications();
    let entry = log.iter().find(|n| n.reference == no).unwrap();
    assert!(entry.delivered, "{entry:?}");

    let paid = c
        .execute(&QueryTransaction(TransactionRef::TransactionId(
            t.transaction_id.clone().unwrap(),
        )))
        .await
        .unwrap();
    assert_eq!(paid.trade_state, TradeState::Success);
    let e = c
        .execute(&CloseTransaction { out_trade_no: no })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            wechat_pay::Error::V3Api {
                status: 400,
                code: V3ErrorCode::OrderPaid,
                ..
            }
        ),
        "{e:?}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_request_signed_with_another_key_is_refused_as_wechat_refuses_it() {
    let sandbox = sandbox().await;
    let stranger = MerchantKey::generate().unwrap().export_pkcs8_pem().unwrap();
    let e = client(&sandbox, &stranger)
        .execute(&JsapiOrder {
            order: OrderRequest::new(
                APP,
                "Cola",
                unique("V3X"),
                Fen::new(1),
                "http://127.0.0.1:9/n",
            ),
            openid: "o1".into(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            wechat_pay::Error::V3Api {
                status: 401,
                code: V3ErrorCode::SignError,
                ..
            }
        ),
        "{e:?}"
    );
    // The public key and its id, for any v3 client.
    let key = crate::support::inspect(&sandbox, "/sandbox/wechatpay-public-key").await;
    let (id, pem) = sandbox.wechatpay_public_key();
    assert_eq!(key["public_key_id"], Value::String(id));
    assert_eq!(key["public_key"], Value::String(pem));
    sandbox.shutdown().await;
}

/// Service-provider mode: a partner order is its sub-merchant's — created, paid, notified and
/// queried under it, refunded and closed only through it; another sub-merchant, a sub-merchant
/// that is not the provider's, and the direct API do not see it.
#[tokio::test]
async fn a_partner_order_belongs_to_its_sub_merchant_only() {
    use wechat_pay::v3::{CreateRefund, Partner, PartnerCloseTransaction, PartnerQueryTransaction};

    use crate::support::{V3_OTHER_SUB_MCH_ID, V3_SUB_MCH_ID};
    let sandbox = sandbox().await;
    let c = client(&sandbox, MERCHANT_KEY);
    let (notify_url, received) = crate::support::recording_endpoint().await;
    let no = unique("V3P");
    let order = |no: &str, sub: &str| {
        OrderRequest::new(APP, "Cola", no, Fen::new(350), &notify_url)
            .for_sub_merchant(Partner::new(sub))
    };
    c.execute(&JsapiOrder {
        order: order(&no, V3_SUB_MCH_ID),
        openid: "o_sp_payer".into(),
    })
    .await
    .unwrap();
    // Not the provider's sub-merchant: refused.
    let e = c
        .execute(&NativeOrder(order(&unique("V3P"), "1999999999")))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            wechat_pay::Error::V3Api {
                status: 400,
                code: V3ErrorCode::InvalidRequest,
                ..
            }
        ),
        "{e:?}"
    );
    // The same number for another sub-merchant is not this order.
    let e = c
        .execute(&NativeOrder(order(&no, V3_OTHER_SUB_MCH_ID)))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, wechat_pay::Error::V3Api { status: 400, .. }),
        "{e:?}"
    );

    sandbox.pay_with(&PayRequest::new(&no)).await.unwrap();
    crate::support::eventually(10, "the partner notification", async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (_, event) = c.notification(header, &body).await.unwrap();
    let Notification::Transaction(t) = event else {
        panic!("{event:?}")
    };
    assert_eq!((t.mchid.as_str(), t.appid.as_str()), (V3_MCH_ID, APP));
    assert_eq!(t.sub_mchid.as_deref(), Some(V3_SUB_MCH_ID));
    assert_eq!(t.payer.as_ref().unwrap().openid, "o_sp_payer");

    let query = |sub: &str| PartnerQueryTransaction {
        by: TransactionRef::OutTradeNo(no.clone()),
        sub_mchid: sub.into(),
    };
    let paid = c.execute(&query(V3_SUB_MCH_ID)).await.unwrap();
    assert_eq!(paid.trade_state, TradeState::Success);
    assert_eq!(paid.sub_mchid.as_deref(), Some(V3_SUB_MCH_ID));
    for (who, q) in [
        (
            "another sub-merchant",
            c.execute(&query(V3_OTHER_SUB_MCH_ID)).await,
        ),
        (
            "the direct API",
            c.execute(&QueryTransaction(TransactionRef::OutTradeNo(no.clone())))
                .await,
        ),
    ] {
        assert!(
            matches!(&q, Err(wechat_pay::Error::V3Api { status: 404, .. })),
            "{who}: {q:?}"
        );
    }

    // Refunds go through the order's sub-merchant only.
    let refund = |sub: &str, out_refund_no: &str| {
        CreateRefund::new(
            TransactionRef::OutTradeNo(no.clone()),
            out_refund_no,
            Fen::new(100),
            Fen::new(350),
        )
        .sub_mchid(sub)
    };
    let e = c
        .execute(&refund(V3_OTHER_SUB_MCH_ID, &unique("V3PR")))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, wechat_pay::Error::V3Api { status: 404, .. }),
        "{e:?}"
    );
    let r = c
        .execute(&refund(V3_SUB_MCH_ID, &unique("V3PR")))
        .await
        .unwrap();
    assert_eq!(r.amount.refund, Fen::new(100));

    // An unpaid partner order closes through its sub-merchant.
    let other = unique("V3P");
    c.execute(&NativeOrder(order(&other, V3_SUB_MCH_ID)))
        .await
        .unwrap();
    let close = |sub: &str| PartnerCloseTransaction {
        out_trade_no: other.clone(),
        sub_mchid: sub.into(),
    };
    assert!(c.execute(&close(V3_OTHER_SUB_MCH_ID)).await.is_err());
    c.execute(&close(V3_SUB_MCH_ID)).await.unwrap();
    let closed = c
        .execute(&PartnerQueryTransaction {
            by: TransactionRef::OutTradeNo(other),
            sub_mchid: V3_SUB_MCH_ID.into(),
        })
        .await
        .unwrap();
    assert_eq!(closed.trade_state, TradeState::Closed);
    sandbox.shutdown().await;
}

/// Profit sharing as a service provider: the platform's fee shared from a sub-merchant's paid
/// order once its receiver is added, never more than is frozen; a refund waits for the share to
/// come back; the ledgers balance to the fen.
#[tokio::test]
async fn a_partner_payment_shares_the_fee_returns_it_then_refunds_and_the_ledgers_balance() {
    use wechat_pay::v3::{
        AddReceiver, CreateRefund, CreateReturn, CreateSharing, Partner, QueryReturn, QuerySharing,
        ReceiverType, RelationType, Share, ShareResult, SharingRef, SharingState, UnfreezeSharing,
        UnsplitAmount,
    };

    use crate::support::{V3_OTHER_SUB_MCH_ID, V3_SUB_MCH_ID};
    let sandbox = sandbox().await;
    let c = client(&sandbox, MERCHANT_KEY);
    let (notify_url, _) = crate::support::recording_endpoint().await;
    let api = |e: &wechat_pay::Error| match e {
        wechat_pay::Error::V3Api { status, code, .. } => (*status, code.as_str().to_owned()),
        other => panic!("{other:?}"),
    };
    let pay = async |no: &str, total: u64, sharing: bool| {
        let mut order = OrderRequest::new(APP, "Cola", no, Fen::new(total), &notify_url)
            .for_sub_merchant(Partner::new(V3_SUB_MCH_ID));
        if sharing {
            order = order.profit_sharing();
        }
        c.execute(&NativeOrder(order)).await.unwrap();
        sandbox.pay_with(&PayRequest::new(no)).await.unwrap();
        let paid = c
            .execute(&wechat_pay::v3::PartnerQueryTransaction {
                by: TransactionRef::OutTradeNo(no.to_owned()),
                sub_mchid: V3_SUB_MCH_ID.into(),
            })
            .await
            .unwrap();
        paid.transaction_id.unwrap()
    };
    let no = unique("PS");
    let tid = pay(&no, 1000, true).await;
    let fee = |amount: u64| {
        vec![Share::new(
            ReceiverType::MerchantId,
            V3_MCH_ID,
            Fen::new(amount),
            "platform fee",
        )]
    };
    let share = |out: &str, amount: u64| {
        CreateSharing::new(APP, &tid, out, fee(amount), false).sub_mchid(V3_SUB_MCH_ID)
    };

    // The platform is not a receiver yet.
    let e = c.execute(&share("PS-1", 60)).await.unwrap_err();
    assert_eq!(api(&e), (400, "INVALID_REQUEST".into()), "{e:?}");
    c.execute(
        &AddReceiver::new(
            APP,
            ReceiverType::MerchantId,
            V3_MCH_ID,
            RelationType::ServiceProvider,
        )
        .sub_mchid(V3_SUB_MCH_ID)
        .name("示例平台有限公司"),
    )
    .await
    .unwrap();
    let (sharing_url, sharing_events) = crate::support::recording_endpoint().await;
    sandbox.set_profit_sharing_notify_url(V3_MCH_ID, Some(&sharing_url));
    let shared = c.execute(&share("PS-1", 60)).await.unwrap();
    assert_eq!(shared.state, SharingState::Finished);
    assert_eq!(shared.receivers[0].result, ShareResult::Success);
    // The share's notification, to the merchant's configured URL.
    crate::support::eventually(10, "the profit-sharing notification", async || {
        !sharing_events.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = sharing_events.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (envelope, event) = c.notification(header, &body).await.unwrap();
    assert_eq!(envelope.event_type, "PROFITSHARING.SUCCESS");
    let Notification::ProfitSharing(n) = event else {
        panic!("{event:?}")
    };
    assert_eq!(
        (n.out_order_no.as_str(), n.receiver.amount),
        ("PS-1", Fen::new(60))
    );
    assert_eq!(n.sub_mchid.as_deref(), Some(V3_SUB_MCH_ID));
    // The same request again is the same sharing; the same number with another amount is not.
    let again = c.execute(&share("PS-1", 60)).await.unwrap();
    assert_eq!(again.order_id, shared.order_id);
    let e = c.execute(&share("PS-1", 61)).await.unwrap_err();
    assert_eq!(api(&e).0, 400, "{e:?}");
    // Never more than is frozen.
    let e = c.execute(&share("PS-2", 941)).await.unwrap_err();
    assert_eq!(api(&e), (403, "NOT_ENOUGH".into()), "{e:?}");
    let left = c
        .execute(&UnsplitAmount {
            transaction_id: tid.clone(),
        })
        .await
        .unwrap();
    assert_eq!(left.unsplit_amount, Fen::new(940));
    // Another sub-merchant does not see the sharing.
    let q = c
        .execute(&QuerySharing::new(&tid, "PS-1").sub_mchid(V3_OTHER_SUB_MCH_ID))
        .await;
    assert!(
        matches!(&q, Err(wechat_pay::Error::V3Api { status: 404, .. })),
        "{q:?}"
    );
    let q = c
        .execute(&QuerySharing::new(&tid, "PS-1").sub_mchid(V3_SUB_MCH_ID))
        .await
        .unwrap();
    assert_eq!(q.receivers[0].amount, Fen::new(60));

    // The whole refund waits for the fee to come back.
    let refund = |out: &str| {
        CreateRefund::new(
            TransactionRef::OutTradeNo(no.clone()),
            out,
            Fen::new(1000),
            Fen::new(1000),
        )
        .sub_mchid(V3_SUB_MCH_ID)
    };
    let e = c.execute(&refund(&unique("PSR"))).await.unwrap_err();
    assert_eq!(api(&e), (403, "NOT_ENOUGH".into()), "{e:?}");
    let back = c
        .execute(
            &CreateReturn::new(
                SharingRef::OutOrderNo("PS-1".into()),
                "PS-1-R",
                V3_MCH_ID,
                Fen::new(60),
                "refund",
            )
            .sub_mchid(V3_SUB_MCH_ID),
        )
        .await
        .unwrap();
    assert_eq!(back.amount, Fen::new(60));
    let queried = c
        .execute(&QueryReturn::new("PS-1", "PS-1-R").sub_mchid(V3_SUB_MCH_ID))
        .await
        .unwrap();
    assert_eq!(queried.return_mchid, V3_MCH_ID);
    c.execute(&refund(&unique("PSR"))).await.unwrap();

    // An order that did not ask to share cannot be; another one's rest is unfrozen.
    let plain = pay(&unique("PS"), 300, false).await;
    let e = c
        .execute(&CreateSharing::new(APP, &plain, "PS-3", fee(10), false).sub_mchid(V3_SUB_MCH_ID))
        .await
        .unwrap_err();
    assert_eq!(api(&e), (400, "INVALID_REQUEST".into()), "{e:?}");
    let frozen = pay(&unique("PS"), 500, true).await;
    c.execute(&UnfreezeSharing::new(&frozen, "PS-4", "no fee").sub_mchid(V3_SUB_MCH_ID))
        .await
        .unwrap();
    let left = c
        .execute(&UnsplitAmount {
            transaction_id: frozen,
        })
        .await
        .unwrap();
    assert_eq!(left.unsplit_amount, Fen::new(0));

    // The ledgers balance to the fen: the sub-merchant holds what its buyers paid and kept.
    let ledgers = sandbox.ledgers();
    let sub = &ledgers[V3_SUB_MCH_ID];
    assert_eq!(
        (
            sub.paid,
            sub.refunded,
            sub.shared_out,
            sub.returned_in,
            sub.unfrozen,
            sub.frozen
        ),
        (1800, 1000, 60, 60, 500, 0)
    );
    assert_eq!(sub.balance, 800);
    let platform = &ledgers[V3_MCH_ID];
    assert_eq!(
        (
            platform.paid,
            platform.shared_in,
            platform.returned_out,
            platform.balance
        ),
        (0, 60, 60, 0)
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_combined_payment_is_paid_notified_and_queried_as_one() {
    use wechat_pay::v3::{CloseCombine, CombineOrder, QueryCombine, SubOrder};
    let sandbox = sandbox().await;
    let c = client(&sandbox, MERCHANT_KEY);
    let (notify_url, received) = crate::support::recording_endpoint().await;
    let combined = unique("CMB");
    let (s1, s2) = (unique("CS1"), unique("CS2"));
    let order = CombineOrder::new(APP, &combined, &notify_url)
        .sub_order(SubOrder::new(V3_MCH_ID, &s1, Fen::new(300), "Cola"))
        .sub_order(SubOrder::new(V3_MCH_ID, &s2, Fen::new(200), "Chips"));
    let created = c.execute(&order).await.unwrap();
    assert!(created.code_url.unwrap().starts_with("weixin://"));
    let q = c.execute(&QueryCombine(combined.clone())).await.unwrap();
    assert_eq!(q.sub_orders.len(), 2);
    assert!(!q.is_paid());

    sandbox.pay_with(&PayRequest::new(&combined)).await.unwrap();
    crate::support::eventually(10, "the combined notification", async || {
        !received.lock().unwrap().is_empty()
    })
    .await;
    let (headers, body) = received.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (_, event) = c.notification(header, &body).await.unwrap();
    let Notification::Combine(paid) = event else {
        panic!("{event:?}")
    };
    assert_eq!(paid.combine_out_trade_no, combined);
    assert!(paid.is_paid());
    let amounts: Vec<_> = paid
        .sub_orders
        .iter()
        .map(|o| o.amount.total_amount)
        .collect();
    assert_eq!(amounts, [Fen::new(300), Fen::new(200)]);
    // Each order is an order of its own afterwards.
    let one = c
        .execute(&QueryTransaction(TransactionRef::OutTradeNo(s2.clone())))
        .await
        .unwrap();
    assert_eq!(one.trade_state, TradeState::Success);
    // Paid: it cannot be closed.
    let close = CloseCombine {
        combine_appid: APP.into(),
        combine_out_trade_no: combined.clone(),
        sub_orders: vec![(V3_MCH_ID.into(), s1), (V3_MCH_ID.into(), s2)],
    };
    assert!(c.execute(&close).await.is_err());

    // Another, closed before it is paid: every order closed, none payable.
    let other = unique("CMB");
    let s3 = unique("CS3");
    c.execute(
        &CombineOrder::new(APP, &other, &notify_url).sub_order(SubOrder::new(
            V3_MCH_ID,
            &s3,
            Fen::new(100),
            "Gum",
        )),
    )
    .await
    .unwrap();
    c.execute(&CloseCombine {
        combine_appid: APP.into(),
        combine_out_trade_no: other.clone(),
        sub_orders: vec![(V3_MCH_ID.into(), s3)],
    })
    .await
    .unwrap();
    let q = c.execute(&QueryCombine(other.clone())).await.unwrap();
    assert_eq!(q.sub_orders[0].trade_state, TradeState::Closed);
    assert!(sandbox.pay_with(&PayRequest::new(&other)).await.is_err());
    sandbox.shutdown().await;
}
