//! Safe mode: messages encrypted with the EncodingAESKey.
//!
//! The key is the 43-character EncodingAESKey plus `=`, base64-decoded (32 bytes); the IV is its
//! first 16 bytes; the cipher is AES-256-CBC with PKCS#7 padding to **32-byte** blocks (WeChat's
//! choice, not AES's 16). The plaintext is 16 random bytes, the message length (4 bytes,
//! big-endian), the message, then the app id — which must be ours.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use crate::{Error, Secret};

/// WeChat pads to multiples of 32 bytes.
const PAD_BLOCK: usize = 32;

/// A decoded EncodingAESKey. `Debug` never shows it.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(***)")
    }
}

impl AesKey {
    /// Decodes the 43-character EncodingAESKey from the Official Account settings.
    pub fn from_encoding_aes_key(key: &Secret) -> Result<Self, Error> {
        let k = key.expose();
        if k.len() != 43 {
            return Err(Error::Config("the EncodingAESKey has 43 characters".into()));
        }
        // 43 characters carry 258 bits; the last 2 are not part of the key and real keys
        // (random letters and digits) usually have them set, so they must be tolerated.
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let bytes = LENIENT
            .decode(format!("{k}="))
            .map_err(|_| Error::Config("the EncodingAESKey is not base64".into()))?;
        let key = <[u8; 32]>::try_from(bytes)
            .map_err(|_| Error::Config("the EncodingAESKey does not decode to 32 bytes".into()))?;
        Ok(AesKey(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }

    /// Decrypts an `Encrypt` value and checks that it is for `app_id`.
    pub fn decrypt(&self, encrypted: &str, app_id: &str) -> Result<String, Error> {
        let data = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| Error::Crypto("Encrypt is not base64"))?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(Error::Crypto("Encrypt is not a whole number of blocks"));
        }
        let plain = cbc::Decryptor::<Aes256>::new(&self.0.into(), &self.iv().into())
            .decrypt_padded_vec::<NoPadding>(&data)
            .map_err(|_| Error::Crypto("cannot decrypt"))?;
        let pad = usize::from(*plain.last().unwrap_or(&0));
        if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
            return Err(Error::Crypto("bad padding: wrong key or corrupted data"));
        }
        let plain = &plain[..plain.len() - pad];
        if plain.len() < 20 {
            return Err(Error::Crypto("decrypted message too short"));
        }
        let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]);
        let len = usize::try_from(len).map_err(|_| Error::Crypto("bad message length"))?;
        let rest = &plain[20..];
        if len > rest.len() {
            return Err(Error::Crypto("bad message length"));
        }
        let (message, sender) = rest.split_at(len);
        if sender != app_id.as_bytes() {
            return Err(Error::Crypto("the message is for another app id"));
        }
        String::from_utf8(message.to_vec()).map_err(|_| Error::Crypto("message is not utf-8"))
    }

    /// Encrypts `message` for `app_id`.
    pub fn encrypt(&self, message: &str, app_id: &str) -> Result<String, Error> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| Error::Crypto("no randomness available"))?;
        Ok(self.encrypt_with(message, app_id, random))
    }

    fn encrypt_with(&self, message: &str, app_id: &str, random: [u8; 16]) -> String {
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        let mut plain = Vec::with_capacity(20 + message.len() + app_id.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(message.as_bytes());
        plain.extend_from_slice(app_id.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        // `pad` is 1..=32, so it fits a byte.
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let data = cbc::Encryptor::<Aes256>::new(&self.0.into(), &self.iv().into())
            .encrypt_padded_vec::<NoPadding>(&plain);
        STANDARD.encode(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn round_trip() {
        let key = AesKey::from_encoding_aes_key(&Secret::new(KEY)).unwrap();
        let enc = key.encrypt("<xml><a>1</a></xml>", "wx1").unwrap();
        assert_eq!(key.decrypt(&enc, "wx1").unwrap(), "<xml><a>1</a></xml>");
        assert!(matches!(key.decrypt(&enc, "wx2"), Err(Error::Crypto(_))));
    }

    #[test]
    fn matches_an_independent_implementation() {
        // Produced with Python's `cryptography` from the same key, random bytes of 0..16,
        // message "hello" and app id "wx1".
        let key = AesKey::from_encoding_aes_key(&Secret::new(KEY)).unwrap();
        let random: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            key.encrypt_with("hello", "wx1", random),
            include_str!("../../testdata/safe_mode_hello.b64").trim()
        );
    }

    #[test]
    fn rejects_tampering_and_garbage() {
        let key = AesKey::from_encoding_aes_key(&Secret::new(KEY)).unwrap();
        let enc = key.encrypt("hello", "wx1").unwrap();
        let mut bytes = STANDARD.decode(&enc).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(key.decrypt(&STANDARD.encode(&bytes), "wx1").is_err());
        assert!(key.decrypt("not base64!", "wx1").is_err());
        assert!(key.decrypt("AAAA", "wx1").is_err());
        assert!(AesKey::from_encoding_aes_key(&Secret::new("short")).is_err());
        let other = AesKey::from_encoding_aes_key(&Secret::new(KEY.replace('a', "b"))).unwrap();
        assert!(other.decrypt(&enc, "wx1").is_err());
    }
}
