//! Alipay's RSA2 signatures (SHA256withRSA, PKCS#1 v1.5), and the keys they use. Pure functions:
//! nothing here touches the network.
//!
//! - Requests: every parameter except `sign`, with a non-empty value, sorted by key, `k=v` joined
//!   by `&`, signed with the app's private key.
//! - Responses: the exact JSON text of the `…_response` object, signed with Alipay's key.
//! - Notifications: like requests but without `sign` **and** `sign_type`, signed with Alipay's
//!   key.
//!
//! Keys come as PEM (PKCS#8 / PKCS#1 private, SPKI public) or as the bare base64 one-liners the
//! Alipay key tool produces.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::sha2::Sha256;
use rsa::{PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey};

use crate::{Error, SignatureError};

/// An RSA private key: the app's (it signs requests), or a gateway's (Alipay's, or an emulator's:
/// it signs responses and notifications). `Debug` never shows it.
#[derive(Clone)]
pub struct PrivateKey(RsaPrivateKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

/// An RSA public key: Alipay's (it verifies responses and notifications), or an app's.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(RsaPublicKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(..)")
    }
}

/// The body of a bare base64 key, or the text unchanged if it is PEM.
fn as_pem(text: &str, label: &str) -> String {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        return t.to_owned();
    }
    let body: String = t.split_whitespace().collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl PrivateKey {
    /// Reads a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) key, PEM or bare base64.
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        let pkcs8 = as_pem(text, "PRIVATE KEY");
        if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(&pkcs8) {
            return Ok(PrivateKey(k));
        }
        let pkcs1 = as_pem(text, "RSA PRIVATE KEY");
        RsaPrivateKey::from_pkcs1_pem(&pkcs1)
            .map(PrivateKey)
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// A new 2048-bit key (for the sandbox and tests).
    pub fn generate() -> Result<Self, Error> {
        RsaPrivateKey::new(&mut getrandom::SysRng, 2048)
            .map(PrivateKey)
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.to_public_key())
    }

    /// PKCS#8 PEM. Handle with care: this is the secret.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.0
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// The base64 RSA2 signature of `content`.
    pub fn sign(&self, content: &str) -> Result<String, Error> {
        self.0
            .pkcs1v15_sign::<Sha256>(content.as_bytes())
            .map(|s| STANDARD.encode(s))
            .map_err(|e| Error::Key(format!("cannot sign: {e}")))
    }
}

impl PublicKey {
    /// Reads an SPKI (`PUBLIC KEY`) key, PEM or bare base64.
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        RsaPublicKey::from_public_key_pem(&as_pem(text, "PUBLIC KEY"))
            .map(PublicKey)
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// Checks a base64 RSA2 `signature` of `content`.
    pub fn verify(&self, content: &str, signature: &str) -> Result<(), Error> {
        let sig = STANDARD
            .decode(signature.trim())
            .map_err(|_| Error::Signature(SignatureError::Mismatch))?;
        self.0
            .pkcs1v15_verify::<Sha256>(content.as_bytes(), &sig)
            .map_err(|_| Error::Signature(SignatureError::Mismatch))
    }
}

/// The string Alipay signs: parameters with non-empty values, minus `exclude`, sorted by key,
/// `k=v` joined by `&`, values as they are (not URL-encoded).
pub fn canonical<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    exclude: &[&str],
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && !exclude.contains(k))
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// What a request's signature leaves out.
pub const REQUEST_EXCLUDES: &[&str] = &["sign"];
/// What a notification's signature leaves out.
pub const NOTIFY_EXCLUDES: &[&str] = &["sign", "sign_type"];

/// Extracts the exact text of `"{method_response}": {...}` from a gateway reply, which is what
/// Alipay signs (re-serializing the JSON would change it).
pub fn response_content<'a>(body: &'a str, response_key: &str) -> Option<&'a str> {
    let key = format!("\"{response_key}\"");
    let start = body.find(&key)? + key.len();
    let rest = &body[start..];
    let open = rest.find(['{', '['])?;
    if !rest[..open].trim_start().starts_with(':') {
        return None;
    }
    let bytes = rest.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[open..=i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SignatureError;

    fn key() -> PrivateKey {
        PrivateKey::from_pem(include_str!("../testdata/app_private_key.pem")).unwrap()
    }

    #[test]
    fn canonical_string_sorts_and_skips() {
        let s = canonical(
            [
                ("b", "2"),
                ("sign", "x"),
                ("a", "1"),
                ("empty", ""),
                ("sign_type", "RSA2"),
            ],
            REQUEST_EXCLUDES,
        );
        assert_eq!(s, "a=1&b=2&sign_type=RSA2");
        let n = canonical(
            [("b", "2"), ("sign", "x"), ("sign_type", "RSA2")],
            NOTIFY_EXCLUDES,
        );
        assert_eq!(n, "b=2");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key();
        let sig = k.sign("a=1&b=2").unwrap();
        k.public_key().verify("a=1&b=2", &sig).unwrap();
        assert_eq!(
            k.public_key().verify("a=1&b=3", &sig),
            Err(Error::Signature(SignatureError::Mismatch))
        );
        assert_eq!(
            k.public_key().verify("a=1&b=2", "%%%"),
            Err(Error::Signature(SignatureError::Mismatch))
        );
    }

    #[test]
    fn matches_an_independent_implementation() {
        // Signed with Python's `cryptography` (PKCS#1 v1.5, SHA-256) using the same key.
        let expected = include_str!("../testdata/sig_hello.b64").trim();
        assert_eq!(key().sign("hello").unwrap(), expected);
    }

    #[test]
    fn reads_bare_base64_and_pem_keys() {
        let k = key();
        let pem = k.public_key().to_pem().unwrap();
        let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(PublicKey::from_pem(&bare).unwrap(), k.public_key());
        let private_bare: String = k
            .to_pem()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        PrivateKey::from_pem(&private_bare).unwrap();
        assert!(PrivateKey::from_pem("not a key").is_err());
        assert!(format!("{k:?}").contains("***"));
    }

    #[test]
    fn extracts_the_signed_response_text() {
        let body = r#"{"alipay_trade_query_response":{"code":"10000","msg":"Success","nested":{"a":"}"},"list":[1,2]},"sign":"abc"}"#;
        assert_eq!(
            response_content(body, "alipay_trade_query_response"),
            Some(r#"{"code":"10000","msg":"Success","nested":{"a":"}"},"list":[1,2]}"#)
        );
        assert_eq!(response_content(body, "other_response"), None);
    }
}
