//! Any bytes as an API v3 notification (four header lines — serial, timestamp, nonce,
//! signature — then the body): a typed error or a verified, decrypted event, never a panic; and
//! nothing WeChat Pay's key did not sign ever verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wechat_pay::v3::{ApiV3Key, WechatPayKey, WechatPaySignature, notify, signing::headers};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(5, '\n');
    let fields: Vec<&str> = (0..4).map(|_| lines.next().unwrap_or_default()).collect();
    let body = lines.next().unwrap_or_default();
    let key = WechatPayKey::from_pem(
        "PUB_KEY_ID_0114232134912410000000000000",
        include_str!("../../testdata/v3/wechatpay_public_key.pem"),
    )
    .expect("the test key");
    let api_key = ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").expect("32 bytes");
    let header = |name: &str| match name {
        headers::SERIAL => Some(fields[0]),
        headers::TIMESTAMP => Some(fields[1]),
        headers::NONCE => Some(fields[2]),
        headers::SIGNATURE => Some(fields[3]),
        _ => None,
    };
    if let Ok(signature) = WechatPaySignature::from_headers(header) {
        let verified = signature.verify(body.as_bytes(), signature.timestamp, |serial| {
            (serial == key.id()).then_some(&key)
        });
        // Forging WeChat's RSA signature is not something a fuzzer does.
        assert!(verified.is_err(), "an unsigned input verified");
    }
    // The decryption path on its own (as after a verification), whatever the body.
    let _ = notify::decrypt_notification(&api_key, body.as_bytes());
});
