//! The keys of API v3: the merchant's RSA private key, WeChat Pay's RSA public key (with its id),
//! and the API v3 key.

use std::fmt;

use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PublicEncryptingKey};
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why a key was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not PEM, or PEM of another kind.
    #[error("not a {expected} PEM: {detail}")]
    Pem {
        /// What was expected.
        expected: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// PEM of the right kind whose key is not an acceptable RSA key (2048 to 8192 bits).
    #[error("not an acceptable RSA key: {0}")]
    Rsa(String),
    /// The API v3 key must be 32 bytes.
    #[error("the API v3 key must be 32 bytes, not {0}")]
    ApiV3KeyLength(usize),
}

/// PEM with `\n` line endings, as WeChat's key files have (some SDKs read nothing else).
fn pem_lf(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The merchant's API certificate private key (`apiclient_key.pem`): signs every request. Never
/// printed.
pub struct MerchantKey {
    pair: RsaKeyPair,
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MerchantKey(***)")
    }
}

impl MerchantKey {
    /// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what WeChat's tool writes) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let block = pem::parse(pem.trim()).map_err(|e| KeyError::Pem {
            expected: "private key",
            detail: e.to_string(),
        })?;
        let pair = match block.tag() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()),
            other => {
                return Err(KeyError::Pem {
                    expected: "private key",
                    detail: format!("found {other}"),
                });
            }
        }
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(MerchantKey { pair })
    }

    /// A fresh 2048-bit key (for stand-ins of WeChat Pay, and tests).
    pub fn generate() -> Result<Self, KeyError> {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(MerchantKey { pair })
    }

    /// The private key as PKCS#8 PEM — a secret: only to write the key file of a key this
    /// process generated.
    pub fn export_pkcs8_pem(&self) -> Result<String, KeyError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let der: Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(pem_lf("PRIVATE KEY", der.as_ref()))
    }

    /// The public key as SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
    pub fn public_key_pem(&self) -> Result<String, KeyError> {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::KeyPair as _;
        let der: PublicKeyX509Der<'static> = self
            .pair
            .public_key()
            .as_der()
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(pem_lf("PUBLIC KEY", der.as_ref()))
    }

    /// Decrypts a base64 field encrypted to this key's public key with RSAES-OAEP (SHA-1, MGF1
    /// SHA-1), as sensitive fields are encrypted to WeChat Pay's key — what a stand-in for WeChat
    /// Pay does with them.
    pub fn decrypt(&self, ciphertext_b64: &str) -> Result<String, KeyError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
        let bad = |what: &str| KeyError::Rsa(format!("cannot decrypt: {what}"));
        let der: Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        let private = OaepPrivateDecryptingKey::new(
            PrivateDecryptingKey::from_pkcs8(der.as_ref())
                .map_err(|e| KeyError::Rsa(e.to_string()))?,
        )
        .map_err(|e| KeyError::Rsa(e.to_string()))?;
        let ciphertext = STANDARD
            .decode(ciphertext_b64.trim())
            .map_err(|_| bad("not base64"))?;
        let mut out = vec![0u8; private.min_output_size()];
        let plain = private
            .decrypt(&OAEP_SHA1_MGF1SHA1, &ciphertext, &mut out, None)
            .map_err(|_| bad("not for this key"))?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad("not UTF-8"))
    }

    /// The base64 RSA-SHA256 (PKCS#1 v1.5) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        // Signing with a valid key into a buffer of the modulus' length cannot fail; the
        // random source is unused for PKCS#1 v1.5.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        if self
            .pair
            .sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .is_err()
        {
            return String::new();
        }
        STANDARD.encode(signature)
    }
}

/// A WeChat Pay public key and its id: the "WeChat Pay public key" (`PUB_KEY_ID_…`) or a
/// platform certificate's key (its serial number). Verifies responses and notifications;
/// encrypts sensitive request fields.
#[derive(Clone)]
pub struct WechatPayKey {
    id: String,
    verify: std::sync::Arc<ParsedPublicKey>,
    der: std::sync::Arc<[u8]>,
}

impl fmt::Debug for WechatPayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPayKey")
            .field("id", &self.id)
            .finish()
    }
}

impl WechatPayKey {
    /// A public key PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo, as WeChat's merchant
    /// platform hands it out; or `BEGIN RSA PUBLIC KEY`) with its id.
    pub fn from_pem(id: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let block = pem::parse(pem.trim()).map_err(|e| KeyError::Pem {
            expected: "public key",
            detail: e.to_string(),
        })?;
        match block.tag() {
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Self::from_der(id, block.contents()),
            other => Err(KeyError::Pem {
                expected: "public key",
                detail: format!("found {other}"),
            }),
        }
    }

    /// A DER public key (SubjectPublicKeyInfo or PKCS#1) with its id.
    pub fn from_der(id: impl Into<String>, der: &[u8]) -> Result<Self, KeyError> {
        let parsed = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(WechatPayKey {
            id: id.into(),
            verify: std::sync::Arc::new(parsed),
            der: der.into(),
        })
    }

    /// Its id: what `Wechatpay-Serial` names (`PUB_KEY_ID_…` or a certificate serial).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether `signature` (base64) is this key's RSA-SHA256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        self.verify.verify_sig(message, &signature).is_ok()
    }

    /// Encrypts a sensitive field (a name, an ID number) for WeChat Pay: RSA-OAEP with SHA-1 and
    /// MGF1-SHA-1, base64 — sent with `Wechatpay-Serial` naming this key.
    pub fn encrypt(&self, plaintext: &str) -> Result<String, KeyError> {
        let key = PublicEncryptingKey::from_der(&self.der)
            .map_err(|e| KeyError::Rsa(e.to_string()))
            .and_then(|k| {
                OaepPublicEncryptingKey::new(k).map_err(|e| KeyError::Rsa(e.to_string()))
            })?;
        let mut out = vec![0u8; key.ciphertext_size()];
        let written = key
            .encrypt(&OAEP_SHA1_MGF1SHA1, plaintext.as_bytes(), &mut out, None)
            .map_err(|e| KeyError::Rsa(format!("cannot encrypt: {e}")))?;
        Ok(STANDARD.encode(written))
    }
}

/// The API v3 key (32 bytes, set in the merchant platform): decrypts notifications and
/// certificates. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiV3Key([u8; 32]);

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(***)")
    }
}

impl ApiV3Key {
    /// The key as set in the merchant platform: 32 characters. Surrounding whitespace (the
    /// newline of a key read from a file) is not part of it, as the PEM loaders trim theirs.
    ///
    /// ```
    /// use wechat_pay::v3::ApiV3Key;
    ///
    /// assert!(ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01\n").is_ok());
    /// assert!(ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ0").is_err());
    /// ```
    pub fn new(key: &str) -> Result<Self, KeyError> {
        let key = key.trim();
        let bytes: [u8; 32] = key
            .as_bytes()
            .try_into()
            .map_err(|_| KeyError::ApiV3KeyLength(key.len()))?;
        Ok(ApiV3Key(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT: &str = include_str!("../../testdata/v3/merchant_private_key.pem");
    const MERCHANT_PKCS1: &str = include_str!("../../testdata/v3/merchant_private_key_pkcs1.pem");
    const MERCHANT_PUBLIC: &str = include_str!("../../testdata/v3/merchant_public_key.pem");
    const WECHATPAY_PUBLIC: &str = include_str!("../../testdata/v3/wechatpay_public_key.pem");

    #[test]
    fn signatures_match_openssl_for_both_key_formats() {
        let message = include_bytes!("../../testdata/v3/request_message.txt");
        let expected = include_str!("../../testdata/v3/request_signature.b64").trim();
        for pem in [MERCHANT, MERCHANT_PKCS1] {
            assert_eq!(MerchantKey::from_pem(pem).unwrap().sign(message), expected);
        }
    }

    #[test]
    fn an_openssl_signature_verifies_and_a_tampered_one_does_not() {
        let key =
            WechatPayKey::from_pem("PUB_KEY_ID_0114232134912410000000000000", WECHATPAY_PUBLIC)
                .unwrap();
        let message = include_bytes!("../../testdata/v3/response_message.txt");
        let signature = include_str!("../../testdata/v3/response_signature.b64").trim();
        assert!(key.verifies(message, signature));
        let mut tampered = message.to_vec();
        tampered[3] ^= 1;
        assert!(!key.verifies(&tampered, signature));
        assert!(!key.verifies(message, "not base64!"));
        let other = WechatPayKey::from_pem("other", MERCHANT_PUBLIC).unwrap();
        assert!(!other.verifies(message, signature));
    }

    #[test]
    fn oaep_ciphertexts_decrypt_with_the_private_key() {
        use aws_lc_rs::rsa::{OaepPrivateDecryptingKey, PrivateDecryptingKey};
        let block = pem::parse(MERCHANT).unwrap();
        let private = OaepPrivateDecryptingKey::new(
            PrivateDecryptingKey::from_pkcs8(block.contents()).unwrap(),
        )
        .unwrap();
        let decrypt = |b64: &str| {
            let ct = STANDARD.decode(b64.trim()).unwrap();
            let mut out = vec![0u8; private.min_output_size()];
            let pt = private
                .decrypt(&OAEP_SHA1_MGF1SHA1, &ct, &mut out, None)
                .unwrap();
            String::from_utf8(pt.to_vec()).unwrap()
        };
        // OpenSSL's ciphertext (the vector), and ours (random padding: round trip).
        assert_eq!(
            decrypt(include_str!("../../testdata/v3/oaep_alice_to_merchant.b64")),
            "Alice"
        );
        let key = WechatPayKey::from_pem("serial", MERCHANT_PUBLIC).unwrap();
        let ours = key.encrypt("张三").unwrap();
        assert_eq!(decrypt(&ours), "张三");
        // MerchantKey::decrypt reads both, and refuses what is not for it.
        let merchant = MerchantKey::from_pem(MERCHANT).unwrap();
        assert_eq!(merchant.decrypt(&ours).unwrap(), "张三");
        assert_eq!(
            merchant
                .decrypt(include_str!("../../testdata/v3/oaep_alice_to_merchant.b64"))
                .unwrap(),
            "Alice"
        );
        let other = MerchantKey::generate().unwrap();
        assert!(other.decrypt(&ours).is_err());
        assert!(merchant.decrypt("not base64!").is_err());
        assert_ne!(key.encrypt("张三").unwrap(), ours, "OAEP is randomized");
    }

    #[test]
    fn a_generated_key_exports_and_its_public_key_verifies() {
        let key = MerchantKey::generate().unwrap();
        let again = MerchantKey::from_pem(&key.export_pkcs8_pem().unwrap()).unwrap();
        let public_pem = key.public_key_pem().unwrap();
        assert!(
            public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && !public_pem.contains('\r'),
            "{public_pem}"
        );
        let public = WechatPayKey::from_pem("PUB_KEY_ID_X", &public_pem).unwrap();
        assert!(public.verifies(b"m", &again.sign(b"m")));
        assert!(!public.verifies(b"m", &MerchantKey::from_pem(MERCHANT).unwrap().sign(b"m")));
    }

    #[test]
    fn bad_keys_are_typed_errors_and_secrets_never_print() {
        assert!(matches!(
            MerchantKey::from_pem("garbage"),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            MerchantKey::from_pem(MERCHANT_PUBLIC),
            Err(KeyError::Pem { .. })
        ));
        assert!(matches!(
            WechatPayKey::from_pem("x", MERCHANT),
            Err(KeyError::Pem { .. })
        ));
        assert_eq!(ApiV3Key::new("short"), Err(KeyError::ApiV3KeyLength(5)));
        let key = ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").unwrap();
        assert_eq!(format!("{key:?}"), "ApiV3Key(***)");
        let merchant = MerchantKey::from_pem(MERCHANT).unwrap();
        assert_eq!(format!("{merchant:?}"), "MerchantKey(***)");
    }
}
