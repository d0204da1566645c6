//! Any bytes as a payment or refund notification: a typed error or a verified message, never a
//! panic; and nothing unsigned ever verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wechat_pay::{ApiKey, NotifySignType, notify};

fuzz_target!(|data: &[u8]| {
    let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
    if notify::verify_payment_notification(data, &key, NotifySignType::FromBody).is_ok() {
        // Only possible if the input carries a correct signature for the key: check it does.
        let params = wechat_pay::Params::from_xml(data).expect("it decoded once");
        assert!(params.get("sign").is_some());
    }
    let _ = notify::decrypt_refund_notification(data, &key);
});
