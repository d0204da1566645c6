//! Refunds through a gateway that, like WeChat's, serves HTTPS and requires the merchant
//! certificate on `/secapi/*`: the sandbox over TLS with this test's own CA (made fresh) and a
//! client-certificate verifier, and `wechat-pay` with the certificate as `.p12` and as PEM.

use wechat_pay::{
    ApiKey, Client, ClientCertificate, Error, Fen, OrderId, Refund, RefundQuery, RefundQueryBy,
    RefundStatus, Trade, UnifiedOrder,
};
use wechat_sandbox::Sandbox;
use wechat_sandbox::tls::GatewayPki;

use crate::support::{APP_ID, KEY, MCH_ID, sandbox_builder, start_mp_callbacks};

async fn https_gateway(pki: &GatewayPki) -> Sandbox {
    sandbox_builder(&start_mp_callbacks().await)
        .tls(pki.acceptor().unwrap())
        .start()
        .await
        .unwrap()
}

/// An HTTPS client that trusts `ca_pem` (for the control API).
fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn client(gateway: &Sandbox, ca_pem: &str, certificate: Option<ClientCertificate>) -> Client {
    let mut builder = Client::builder(APP_ID, MCH_ID, ApiKey::new(KEY))
        .base_url(gateway.base_url().to_owned())
        .root_certificate(ca_pem.as_bytes().to_vec());
    if let Some(c) = certificate {
        builder = builder.certificate(c);
    }
    builder.build().unwrap()
}

/// A paid WeChat order at the gateway.
async fn paid_order(gateway: &Sandbox, ca_pem: &str, c: &Client, no: &str) {
    c.execute(&UnifiedOrder::new(
        Trade::native("sku-1"),
        "Cola",
        no,
        Fen::new(350),
        "127.0.0.1",
        "http://127.0.0.1:9/notify",
    ))
    .await
    .unwrap();
    let paid = trusting(ca_pem)
        .post(format!("{}/sandbox/pay", gateway.base_url()))
        .json(&serde_json::json!({"out_trade_no": no}))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success(), "{}", paid.text().await.unwrap());
}

fn refund(no: &str, refund_no: &str) -> Refund {
    Refund::new(
        OrderId::OutTradeNo(no.to_owned()),
        refund_no,
        Fen::new(350),
        Fen::new(350),
    )
}

#[tokio::test]
async fn refunds_need_the_merchant_certificate_as_p12_or_pem() {
    let pki = GatewayPki::generate(MCH_ID, &[]).unwrap();
    let gateway = https_gateway(&pki).await;
    assert!(gateway.base_url().starts_with("https://"));

    let p12 = ClientCertificate::from_pkcs12(&pki.merchant_p12(MCH_ID).unwrap(), MCH_ID).unwrap();
    let pem = ClientCertificate::from_pem(
        pki.merchant.cert_pem.as_bytes(),
        pki.merchant.key_pem.as_bytes(),
    )
    .unwrap();
    for (no, certificate) in [("TLS-P12", p12), ("TLS-PEM", pem)] {
        let c = client(&gateway, &pki.ca_pem, Some(certificate));
        paid_order(&gateway, &pki.ca_pem, &c, no).await;
        let refunded = c.execute(&refund(no, &format!("R{no}"))).await.unwrap();
        assert_eq!(refunded.refund_fee, Fen::new(350), "{no}");
        let at_gateway = c
            .execute(&RefundQuery::new(RefundQueryBy::OutRefundNo(format!(
                "R{no}"
            ))))
            .await
            .unwrap();
        assert_eq!(
            at_gateway.refunds[0].refund_status,
            RefundStatus::Processing
        );
    }

    // Without a certificate the gateway refuses `/secapi/*` (the crate would not even send it
    // over https, so ask with plain reqwest), and the other paths still answer.
    let bare = trusting(&pki.ca_pem);
    let refused = bare
        .post(format!("{}/secapi/pay/refund", gateway.base_url()))
        .body("<xml></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("No required SSL certificate")
    );
    let c = client(&gateway, &pki.ca_pem, None);
    paid_order(&gateway, &pki.ca_pem, &c, "TLS-NONE").await;
    match c.execute(&refund("TLS-NONE", "RTLS-NONE")).await {
        Err(Error::Config(m)) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("a refund without the certificate: {other:?}"),
    }

    // A certificate the gateway's CA did not issue fails the handshake; so does a gateway the
    // client has no root for.
    let stranger = GatewayPki::generate(MCH_ID, &[]).unwrap();
    let foreign = ClientCertificate::from_pem(
        stranger.merchant.cert_pem.as_bytes(),
        stranger.merchant.key_pem.as_bytes(),
    )
    .unwrap();
    let c = client(&gateway, &pki.ca_pem, Some(foreign));
    paid_order(&gateway, &pki.ca_pem, &c, "TLS-FOREIGN").await;
    assert!(matches!(
        c.execute(&refund("TLS-FOREIGN", "RTLS-FOREIGN")).await,
        Err(Error::Transport(_))
    ));
    let untrusting = client(&gateway, &stranger.ca_pem, None);
    assert!(matches!(
        untrusting
            .execute(&UnifiedOrder::new(
                Trade::native("sku-1"),
                "Cola",
                "TLS-UNTRUSTED",
                Fen::new(1),
                "127.0.0.1",
                "http://127.0.0.1:9/notify",
            ))
            .await,
        Err(Error::Transport(_))
    ));
    gateway.shutdown().await;
}
