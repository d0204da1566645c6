//! `AEAD_AES_256_GCM`: how WeChat Pay encrypts a notification's `resource` (and a downloaded
//! certificate) with the API v3 key — a 12-byte `nonce`, `associated_data`, and the base64
//! ciphertext with its 16-byte tag at the end.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::ApiV3Key;

/// Why a resource did not decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// `algorithm` is not `AEAD_AES_256_GCM`.
    #[error("unsupported algorithm {0:?}")]
    Algorithm(String),
    /// The nonce is not 12 bytes.
    #[error("the nonce must be 12 bytes")]
    Nonce,
    /// The ciphertext is not base64.
    #[error("the ciphertext is not base64")]
    Encoding,
    /// Wrong key, or the ciphertext, nonce or associated data were altered.
    #[error(
        "authentication failed: wrong API v3 key, or altered ciphertext, nonce or associated data"
    )]
    Authentication,
    /// The plaintext is not UTF-8.
    #[error("the plaintext is not UTF-8")]
    Utf8,
}

fn key(api_v3_key: &ApiV3Key) -> LessSafeKey {
    // A 32-byte key always makes an AES-256 key.
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, api_v3_key.bytes())
            .unwrap_or_else(|_| unreachable!("32 bytes is an AES-256 key")),
    )
}

fn nonce(nonce: &str) -> Result<Nonce, DecryptError> {
    let bytes: [u8; NONCE_LEN] = nonce
        .as_bytes()
        .try_into()
        .map_err(|_| DecryptError::Nonce)?;
    Ok(Nonce::assume_unique_for_key(bytes))
}

/// Decrypts a resource: `algorithm` (`AEAD_AES_256_GCM`), base64 `ciphertext`, `nonce`,
/// `associated_data`.
pub fn decrypt(
    api_v3_key: &ApiV3Key,
    algorithm: &str,
    ciphertext: &str,
    nonce_text: &str,
    associated_data: &str,
) -> Result<String, DecryptError> {
    if algorithm != "AEAD_AES_256_GCM" {
        return Err(DecryptError::Algorithm(algorithm.to_owned()));
    }
    let nonce = nonce(nonce_text)?;
    let mut data = STANDARD
        .decode(ciphertext.trim())
        .map_err(|_| DecryptError::Encoding)?;
    let plain = key(api_v3_key)
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| DecryptError::Authentication)?;
    String::from_utf8(plain.to_vec()).map_err(|_| DecryptError::Utf8)
}

/// Encrypts `plaintext` as WeChat Pay does (for stand-ins of WeChat in tests): base64 of the
/// ciphertext and its tag. `nonce_text` must be 12 bytes and never reused with the same key.
pub fn encrypt(
    api_v3_key: &ApiV3Key,
    plaintext: &str,
    nonce_text: &str,
    associated_data: &str,
) -> Result<String, DecryptError> {
    let nonce = nonce(nonce_text)?;
    let mut data = plaintext.as_bytes().to_vec();
    key(api_v3_key)
        .seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| DecryptError::Authentication)?;
    Ok(STANDARD.encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_key() -> ApiV3Key {
        ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").unwrap()
    }

    const CIPHERTEXT: &str = include_str!("../../testdata/v3/resource_ciphertext.b64");
    const PLAINTEXT: &str = include_str!("../../testdata/v3/resource_plaintext.json");

    #[test]
    fn the_python_cryptography_vector_decrypts_and_round_trips() {
        let plain = decrypt(
            &api_key(),
            "AEAD_AES_256_GCM",
            CIPHERTEXT,
            "fdasflkja484",
            "transaction",
        );
        assert_eq!(plain.as_deref(), Ok(PLAINTEXT));
        assert_eq!(
            encrypt(&api_key(), PLAINTEXT, "fdasflkja484", "transaction").as_deref(),
            Ok(CIPHERTEXT.trim())
        );
    }

    #[test]
    fn wrong_key_altered_data_and_bad_parameters_are_refused() {
        let other = ApiV3Key::new("ABCDEFGHIJ0123456789abcdefghij01").unwrap();
        let bad =
            |k: &ApiV3Key, alg: &str, ct: &str, n: &str, aad: &str| decrypt(k, alg, ct, n, aad);
        let k = api_key();
        assert_eq!(
            bad(
                &other,
                "AEAD_AES_256_GCM",
                CIPHERTEXT,
                "fdasflkja484",
                "transaction"
            ),
            Err(DecryptError::Authentication)
        );
        assert_eq!(
            bad(&k, "AEAD_AES_256_GCM", CIPHERTEXT, "fdasflkja484", "refund"),
            Err(DecryptError::Authentication),
            "associated data is authenticated"
        );
        assert_eq!(
            bad(
                &k,
                "AEAD_AES_256_GCM",
                CIPHERTEXT,
                "fdasflkja485",
                "transaction"
            ),
            Err(DecryptError::Authentication)
        );
        let mut tampered = STANDARD.decode(CIPHERTEXT.trim()).unwrap();
        tampered[0] ^= 1;
        assert_eq!(
            bad(
                &k,
                "AEAD_AES_256_GCM",
                &STANDARD.encode(tampered),
                "fdasflkja484",
                "transaction"
            ),
            Err(DecryptError::Authentication)
        );
        assert_eq!(
            bad(
                &k,
                "AEAD_AES_128_GCM",
                CIPHERTEXT,
                "fdasflkja484",
                "transaction"
            ),
            Err(DecryptError::Algorithm("AEAD_AES_128_GCM".into()))
        );
        assert_eq!(
            bad(&k, "AEAD_AES_256_GCM", CIPHERTEXT, "short", "transaction"),
            Err(DecryptError::Nonce)
        );
        assert_eq!(
            bad(&k, "AEAD_AES_256_GCM", "%%%", "fdasflkja484", "transaction"),
            Err(DecryptError::Encoding)
        );
        assert_eq!(
            bad(&k, "AEAD_AES_256_GCM", "", "fdasflkja484", "transaction"),
            Err(DecryptError::Authentication),
            "shorter than a tag"
        );
    }
}
