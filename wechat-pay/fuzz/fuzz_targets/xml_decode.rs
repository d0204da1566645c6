//! Any bytes: the decoder returns a value or an error, never panics, and whatever it accepts
//! survives an encode/decode round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wechat_pay::Params;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = Params::from_xml(data) {
        let again = Params::from_xml(params.to_xml().as_bytes())
            .expect("an encoded message must decode");
        assert_eq!(again, params, "round trip changed the message");
    }
});
