//! Alipay's content encryption (`encrypt_type=AES`, 接口内容加密): the app's AES key (128 bits,
//! given as base64), AES-CBC with a zero IV and PKCS#7 padding, base64. A request's
//! `biz_content` is encrypted before the request is signed; an answer's `…_response` is then a
//! JSON string of ciphertext, signed as it stands (quotes included) and decrypted after its
//! signature is checked.

use std::fmt;

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Error;

/// The all-zero IV Alipay's content encryption uses.
const IV: [u8; 16] = [0; 16];

/// An app's AES key (the "AES密钥" set in the open platform). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 16]);

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(***)")
    }
}

impl AesKey {
    /// The key as the open platform shows it: base64 of 16 bytes.
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Key("the AES key is not base64".into()))?;
        let key: [u8; 16] = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::Key(format!("the AES key must be 16 bytes, not {}", b.len()))
        })?;
        Ok(AesKey(key))
    }

    /// A new random key (for the sandbox and tests).
    pub fn generate() -> Result<Self, Error> {
        let mut key = [0u8; 16];
        getrandom::fill(&mut key)
            .map_err(|e| Error::Config(format!("the system random source failed: {e}")))?;
        Ok(AesKey(key))
    }

    /// Base64, as the open platform shows it. Handle with care: this is the secret.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// `plain`, encrypted, base64.
    pub fn encrypt(&self, plain: &str) -> String {
        let data = cbc::Encryptor::<Aes128>::new(&self.0.into(), &IV.into())
            .encrypt_padded_vec::<Pkcs7>(plain.as_bytes());
        STANDARD.encode(data)
    }

    /// The text of base64 `ciphertext`.
    pub fn decrypt(&self, ciphertext: &str) -> Result<String, Error> {
        let bad = |what: &str| Error::decode("encrypted content", what);
        let data = STANDARD
            .decode(ciphertext.trim())
            .map_err(|_| bad("not base64"))?;
        let plain = cbc::Decryptor::<Aes128>::new(&self.0.into(), &IV.into())
            .decrypt_padded_vec::<Pkcs7>(&data)
            .map_err(|_| bad("does not decrypt with this key"))?;
        String::from_utf8(plain).map_err(|_| bad("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with Python's `cryptography` (AES-128-CBC, zero IV, PKCS#7), as the SDKs do.
    const VECTOR: &str = include_str!("../testdata/aes_vector.txt");

    #[test]
    fn matches_an_independent_implementation_both_ways() {
        let mut lines = VECTOR.lines();
        let (key, plain, cipher) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
        );
        let key = AesKey::from_base64(key).unwrap();
        assert_eq!(key.encrypt(plain), cipher);
        assert_eq!(key.decrypt(cipher).unwrap(), plain);
        let other = AesKey::generate().unwrap();
        assert!(other.decrypt(cipher).is_err() || other.decrypt(cipher).unwrap() != plain);
        assert!(key.decrypt("%%%").is_err());
        assert!(format!("{key:?}").contains("***"));
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }

    #[test]
    fn refuses_keys_that_are_not_16_bytes() {
        assert!(AesKey::from_base64("AAEC").is_err());
        assert!(AesKey::from_base64("not base64!").is_err());
        assert!(AesKey::from_base64(&STANDARD.encode([7u8; 32])).is_err());
    }
}
