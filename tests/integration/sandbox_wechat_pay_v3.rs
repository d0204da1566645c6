//! The project's `wechat_pay::v3` client against the sandbox's v3 gateway: requests verified by
//! the sandbox with the merchant's key, answers and notifications signed with the sandbox's
//! WeChat Pay key, notifications encrypted with the merchant's API v3 key.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
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

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A notify URL keeping each request's headers and body; answers 204.
async fn notify_endpoint() -> (String, Received) {
    let received: Received = Arc::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/notify",
        post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn a_v3_order_is_created_paid_notified_queried_and_not_closed_once_paid() {
    let sandbox = sandbox().await;
    let c = client(&sandbox, MERCHANT_KEY);
    let (notify_url, received) = notify_endpoint().await;
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
    let (notify_url, received) = notify_endpoint().await;
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
