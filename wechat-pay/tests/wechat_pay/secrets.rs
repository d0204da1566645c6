//! The API key never reaches `Debug` output (the logs: `tests/logs.rs`).

use wechat_pay::{ApiKey, Client, ClientCertificate};

use crate::support::{APP_ID, KEY, MCH_ID, key, signer};

#[test]
fn debug_output_never_shows_the_key() {
    let builder = Client::builder(APP_ID, MCH_ID, key());
    let builder_debug = format!("{builder:?}");
    let client = builder.build().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    let cert = ClientCertificate::from_pem(
        ck.cert.pem().as_bytes(),
        ck.signing_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    let key_pem = ck.signing_key.serialize_pem();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_owned();
    for text in [
        builder_debug,
        format!("{client:?}"),
        format!("{client:#?}"),
        format!("{:?}", ApiKey::new(KEY)),
        format!("{}", ApiKey::new(KEY)),
        format!("{cert:?}"),
        format!("{:?}", signer()),
        format!("{:?}", wechat_pay::notify::NotifySignType::FromBody),
    ] {
        assert!(!text.contains(KEY), "the API key leaked: {text}");
        assert!(!text.contains(&key_body), "the private key leaked: {text}");
    }
}
