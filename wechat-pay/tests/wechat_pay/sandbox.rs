//! Sandbox mode: the sign key is fetched once (also under concurrency) from
//! `{prefix}/pay/getsignkey` with the real key, then every path is prefixed and signed with the
//! sandbox key — at both the current and the legacy prefix.

use wechat_pay::test_util::TestSigner;
use wechat_pay::{
    ApiKey, Client, OrderId, OrderQuery, Params, SandboxPrefix, SignType, TradeState,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{APP_ID, MCH_ID, SignedRequest, key, xml};

const SANDBOX_KEY: &str = "0d3c5d0f5c1f4f1a8c6e9b2a7d4e1f3a";

async fn sandbox_flow(prefix: SandboxPrefix) {
    let server = MockServer::start().await;
    let p = prefix.as_str();
    // The key request: mch_id, nonce_str, sign (MD5 with the real key), no appid.
    Mock::given(method("POST"))
        .and(path(format!("{p}/pay/getsignkey")))
        .and(SignedRequest {
            key: key(),
            sign_type: SignType::Md5,
            fields: vec![],
            envelope: false,
        })
        .respond_with(xml(format!(
            "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[ok]]></return_msg>\
             <sandbox_signkey><![CDATA[{SANDBOX_KEY}]]></sandbox_signkey></xml>"
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Business calls are signed with the sandbox key, and so are the replies.
    let sandbox_signer = TestSigner::new(APP_ID, MCH_ID, ApiKey::new(SANDBOX_KEY));
    Mock::given(method("POST"))
        .and(path(format!("{p}/pay/orderquery")))
        .and(SignedRequest {
            key: ApiKey::new(SANDBOX_KEY),
            sign_type: SignType::Md5,
            fields: vec![("out_trade_no".into(), "1".into())],
            envelope: true,
        })
        .respond_with(xml(
            sandbox_signer.reply([("trade_state", "NOTPAY")].into_iter().collect::<Params>())
        ))
        .expect(8)
        .mount(&server)
        .await;

    let client = Client::builder(APP_ID, MCH_ID, key())
        .base_url(server.uri())
        .sandbox(prefix)
        .build()
        .unwrap();
    let query = OrderQuery::new(OrderId::OutTradeNo("1".into()));
    // Eight concurrent first calls share one key fetch.
    let results = futures_join_all((0..8).map(|_| {
        let c = client.clone();
        let q = query.clone();
        tokio::spawn(async move { c.execute(&q).await })
    }))
    .await;
    for r in results {
        assert_eq!(r.unwrap().unwrap().trade_state, TradeState::NotPay);
    }
}

async fn futures_join_all<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await);
    }
    out
}

#[tokio::test]
async fn current_sandbox_prefix() {
    sandbox_flow(SandboxPrefix::Current).await;
}

#[tokio::test]
async fn legacy_sandbox_prefix() {
    sandbox_flow(SandboxPrefix::Legacy).await;
}

#[tokio::test]
async fn a_failed_key_fetch_is_an_error_and_is_retried_later() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xdc/apiv2sandbox/pay/getsignkey"))
        .respond_with(xml(
            "<xml><return_code>FAIL</return_code><return_msg>mch_id invalid</return_msg></xml>",
        ))
        .expect(2)
        .mount(&server)
        .await;
    let client = Client::builder(APP_ID, MCH_ID, key())
        .base_url(server.uri())
        .sandbox(SandboxPrefix::Current)
        .build()
        .unwrap();
    let q = OrderQuery::new(OrderId::OutTradeNo("1".into()));
    for _ in 0..2 {
        assert!(matches!(
            client.execute(&q).await,
            Err(wechat_pay::Error::Protocol { .. })
        ));
    }
}
