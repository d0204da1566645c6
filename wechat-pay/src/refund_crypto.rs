//! The `req_info` of refund notifications: base64 of AES-256-ECB with PKCS#7 padding, keyed with
//! the 32 ASCII characters of the lower-case hex MD5 of the API key.
//!
//! ECB gives confidentiality of a sort and no integrity; that is WeChat's design, not a choice
//! made here. The decrypted text must then parse as a well-formed message with the expected
//! fields, which a forger without the key cannot produce.

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

use crate::{ApiKey, Error};

fn aes_key(key: &ApiKey) -> [u8; 32] {
    let digest = Md5::digest(key.expose().as_bytes());
    let mut upper = [0u8; 64];
    let hex = crate::sign::upper_hex(&digest, &mut upper);
    let mut out = [0u8; 32];
    out.copy_from_slice(hex.to_ascii_lowercase().as_bytes());
    out
}

/// Decrypts `req_info`.
pub(crate) fn decrypt_req_info(req_info: &str, key: &ApiKey) -> Result<String, Error> {
    let data = STANDARD
        .decode(req_info.trim())
        .map_err(|_| Error::Decrypt("req_info is not base64"))?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(Error::Decrypt("req_info is not a whole number of blocks"));
    }
    let plain = ecb::Decryptor::<Aes256>::new(&aes_key(key).into())
        .decrypt_padded_vec::<Pkcs7>(&data)
        .map_err(|_| Error::Decrypt("bad padding: wrong key or corrupted data"))?;
    String::from_utf8(plain).map_err(|_| Error::Decrypt("decrypted data is not utf-8"))
}

/// Encrypts `plain` as WeChat does (for emulators and tests).
pub(crate) fn encrypt_req_info(plain: &str, key: &ApiKey) -> String {
    let data = ecb::Encryptor::<Aes256>::new(&aes_key(key).into())
        .encrypt_padded_vec::<Pkcs7>(plain.as_bytes());
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_lower_case_hex_md5_of_the_api_key() {
        let k = aes_key(&ApiKey::new("192006250b4c09247ec02edce69f6a2d"));
        // md5("192006250b4c09247ec02edce69f6a2d"), computed independently.
        assert_eq!(&k[..], b"d96eb16afdd491fa1e705096edbc2205");
    }

    #[test]
    fn round_trip_and_wrong_key() {
        let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let plain = "<root><out_refund_no><![CDATA[R1]]></out_refund_no></root>";
        let enc = encrypt_req_info(plain, &key);
        assert_eq!(decrypt_req_info(&enc, &key).unwrap(), plain);
        // A wrong key gives bad padding (or, rarely, garbage that fails later parsing).
        let wrong = decrypt_req_info(&enc, &ApiKey::new("another-key"));
        assert!(wrong.is_err() || wrong.unwrap() != plain);
        assert!(decrypt_req_info("***", &key).is_err());
        assert!(decrypt_req_info("AAAA", &key).is_err());
    }

    #[test]
    fn matches_an_independent_aes_ecb_implementation() {
        // Computed with Python's `cryptography` (AES-256-ECB, PKCS#7) for key "key":
        // aes key = md5("key") = 3c6e0b8a9c15224a8228b9a98ca1531d.
        let key = ApiKey::new("key");
        let enc = encrypt_req_info("hello", &key);
        assert_eq!(enc, include_str!("../testdata/req_info_hello.b64").trim());
    }
}
