//! The merchant certificate: PKCS#12 (legacy and modern encryption) and PEM loading, and the
//! certificate-only endpoints refusing to run without one.

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
};
use wechat_pay::{
    AccountType, Client, ClientCertificate, DownloadFundFlow, Error, Fen, OrderId, Refund, Reverse,
};

use crate::support::{APP_ID, MCH_ID, key};

struct Generated {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn generate() -> Generated {
    let ck = rcgen::generate_simple_self_signed(vec!["10000100".to_owned()]).unwrap();
    Generated {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        cert_der: ck.cert.der().to_vec(),
        key_der: ck.signing_key.serialize_der(),
    }
}

/// A `.p12` like the one the merchant platform hands out (password = mch_id by default).
fn pkcs12(g: &Generated, password: &str, algorithm: EncryptionAlgorithm) -> Vec<u8> {
    let chain = PrivateKeyChain::new(
        b"1".as_slice(),
        PrivateKey::from_der(&g.key_der).unwrap(),
        [Certificate::from_der(&g.cert_der).unwrap()],
    );
    let mut store = KeyStore::new();
    store.add_entry("Tenpay Certificate", KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(algorithm)
        .write()
        .unwrap()
}

#[test]
fn loads_legacy_and_modern_pkcs12() {
    let g = generate();
    for algorithm in [
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
        EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
    ] {
        let p12 = pkcs12(&g, MCH_ID, algorithm);
        let cert = ClientCertificate::from_pkcs12(&p12, MCH_ID).unwrap();
        assert_eq!(format!("{cert:?}"), "ClientCertificate(***)");
        Client::builder(APP_ID, MCH_ID, key())
            .certificate(cert)
            .build()
            .unwrap();
    }
}

#[test]
fn wrong_password_or_garbage_is_a_config_error() {
    let g = generate();
    let p12 = pkcs12(
        &g,
        MCH_ID,
        EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
    );
    assert!(matches!(
        ClientCertificate::from_pkcs12(&p12, "wrong"),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        ClientCertificate::from_pkcs12(b"not a p12", MCH_ID),
        Err(Error::Config(_))
    ));
}

#[test]
fn loads_pem_pair_and_rejects_incomplete_ones() {
    let g = generate();
    ClientCertificate::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).unwrap();
    assert!(matches!(
        ClientCertificate::from_pem(g.key_pem.as_bytes(), g.key_pem.as_bytes()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        ClientCertificate::from_pem(g.cert_pem.as_bytes(), g.cert_pem.as_bytes()),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        ClientCertificate::from_pem(b"garbage", g.key_pem.as_bytes()),
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn certificate_endpoints_refuse_to_run_without_one() {
    // Port 9 on loopback: if a request were sent it would fail with a transport error, so a
    // config error proves nothing was sent.
    let client = Client::builder(APP_ID, MCH_ID, key())
        .base_url("https://127.0.0.1:9")
        .build()
        .unwrap();
    let refund = Refund::new(
        OrderId::OutTradeNo("o1".into()),
        "r1",
        Fen::new(1),
        Fen::new(1),
    );
    for err in [
        client.execute(&refund).await.unwrap_err(),
        client
            .execute(&Reverse::new(OrderId::OutTradeNo("o1".into())))
            .await
            .unwrap_err(),
        client
            .download(&DownloadFundFlow::new(
                time::macros::date!(2024 - 01 - 31),
                AccountType::Basic,
            ))
            .await
            .unwrap_err(),
    ] {
        match err {
            Error::Config(msg) => assert!(msg.contains("certificate"), "{msg}"),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    // An endpoint without the requirement does try the network.
    let err = client
        .execute(&wechat_pay::CloseOrder::new("o1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
}

#[test]
fn an_extra_root_must_be_a_pem_certificate() {
    let g = generate();
    Client::builder(APP_ID, MCH_ID, key())
        .root_certificate(g.cert_pem.clone())
        .build()
        .unwrap();
    for garbage in [b"garbage".to_vec(), g.key_pem.into_bytes()] {
        let err = Client::builder(APP_ID, MCH_ID, key())
            .root_certificate(garbage)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}
