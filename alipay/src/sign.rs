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
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{
    KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{Error, SignatureError};

/// An RSA private key: the app's (it signs requests), or a gateway's (Alipay's, or an emulator's:
/// it signs responses and notifications). `Debug` never shows it. Signing runs on aws-lc-rs
/// (constant time).
#[derive(Clone)]
pub struct PrivateKey(Arc<RsaKeyPair>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

/// An RSA public key: Alipay's (it verifies responses and notifications), or an app's.
#[derive(Clone)]
pub struct PublicKey {
    /// SubjectPublicKeyInfo DER: what two keys are compared by.
    der: Arc<[u8]>,
    verify: Arc<ParsedPublicKey>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(..)")
    }
}

/// The DER inside a PEM block, or inside a bare base64 one-liner (the Alipay key tool's).
fn der_of(text: &str) -> Result<(Option<String>, Vec<u8>), Error> {
    let t = text.trim();
    if t.starts_with("-----BEGIN") {
        let block = pem::parse(t).map_err(|e| Error::Key(format!("not PEM: {e}")))?;
        return Ok((Some(block.tag().to_owned()), block.into_contents()));
    }
    let body: String = t.split_whitespace().collect();
    STANDARD
        .decode(body)
        .map(|der| (None, der))
        .map_err(|_| Error::Key("neither PEM nor base64".into()))
}

/// PEM with `\n` line endings.
fn pem_lf(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

impl PrivateKey {
    /// Reads a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) key, PEM or bare base64.
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        let (tag, der) = der_of(text)?;
        let pair = match tag.as_deref() {
            Some("PRIVATE KEY") => RsaKeyPair::from_pkcs8(&der),
            Some("RSA PRIVATE KEY") => RsaKeyPair::from_der(&der),
            Some(other) => return Err(Error::Key(format!("a {other} is not a private key"))),
            // Bare base64: PKCS#8 (the key tool's default) or PKCS#1.
            None => RsaKeyPair::from_pkcs8(&der).or_else(|_| RsaKeyPair::from_der(&der)),
        }
        .map_err(|e| Error::Key(format!("not an RSA private key of 2048 to 8192 bits: {e}")))?;
        Ok(PrivateKey(Arc::new(pair)))
    }

    /// A new 2048-bit key (for the sandbox and tests).
    pub fn generate() -> Result<Self, Error> {
        RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map(|pair| PrivateKey(Arc::new(pair)))
            .map_err(|e| Error::Key(e.to_string()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let der: Result<PublicKeyX509Der<'static>, _> = self.0.public_key().as_der();
        // A key pair's own public key always encodes and parses.
        match der
            .map_err(|e| Error::Key(e.to_string()))
            .and_then(|d| PublicKey::from_der(d.as_ref()))
        {
            Ok(key) => key,
            Err(e) => unreachable!("a key pair's public key: {e}"),
        }
    }

    /// PKCS#8 PEM. Handle with care: this is the secret.
    pub fn to_pem(&self) -> Result<String, Error> {
        let der: Pkcs8V1Der<'static> = self.0.as_der().map_err(|e| Error::Key(e.to_string()))?;
        Ok(pem_lf("PRIVATE KEY", der.as_ref()))
    }

    /// The base64 RSA2 signature of `content`.
    pub fn sign(&self, content: &str) -> Result<String, Error> {
        let mut signature = vec![0u8; self.0.public_modulus_len()];
        // PKCS#1 v1.5 uses no randomness; the source is only the API's.
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.0
            .sign(&RSA_PKCS1_SHA256, &rng, content.as_bytes(), &mut signature)
            .map_err(|e| Error::Key(format!("cannot sign: {e}")))?;
        Ok(STANDARD.encode(signature))
    }
}

impl PublicKey {
    /// Reads an SPKI (`PUBLIC KEY`) or PKCS#1 (`RSA PUBLIC KEY`) key, PEM or bare base64.
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        let (tag, der) = der_of(text)?;
        match tag.as_deref() {
            None | Some("PUBLIC KEY" | "RSA PUBLIC KEY") => Self::from_der(&der),
            Some(other) => Err(Error::Key(format!("a {other} is not a public key"))),
        }
    }

    /// Reads a DER key (SubjectPublicKeyInfo or PKCS#1).
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let verify = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map_err(|e| Error::Key(format!("not an RSA public key of 2048 to 8192 bits: {e}")))?;
        let spki: PublicKeyX509Der<'static> =
            verify.as_der().map_err(|e| Error::Key(e.to_string()))?;
        Ok(PublicKey {
            der: spki.as_ref().into(),
            verify: Arc::new(verify),
        })
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.der
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        Ok(pem_lf("PUBLIC KEY", &self.der))
    }

    /// Checks a base64 RSA2 `signature` of `content`.
    pub fn verify(&self, content: &str, signature: &str) -> Result<(), Error> {
        let sig = STANDARD
            .decode(signature.trim())
            .map_err(|_| Error::Signature(SignatureError::Mismatch))?;
        self.verify
            .verify_sig(content.as_bytes(), &sig)
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

/// Extracts the exact text of `"{method_response}": …` from a gateway reply, which is what
/// Alipay signs (re-serializing the JSON would change it): an object, or — for an encrypted
/// answer — a JSON string, quotes included.
pub fn response_content<'a>(body: &'a str, response_key: &str) -> Option<&'a str> {
    let key = format!("\"{response_key}\"");
    let start = body.find(&key)? + key.len();
    let rest = &body[start..];
    let value_at = rest.find(|c: char| !c.is_whitespace() && c != ':')?;
    if !rest[..value_at].trim().starts_with(':') {
        return None;
    }
    if rest[value_at..].starts_with('"') {
        let mut escaped = false;
        for (i, b) in rest.bytes().enumerate().skip(value_at + 1) {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => return Some(&rest[value_at..=i]),
                _ => {}
            }
        }
        return None;
    }
    let open = value_at;
    if !matches!(rest.as_bytes()[open], b'{' | b'[') {
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
        let encrypted = r#"{"alipay_trade_query_response":"G7PYcj\"yA==","sign":"abc"}"#;
        assert_eq!(
            response_content(encrypted, "alipay_trade_query_response"),
            Some(r#""G7PYcj\"yA==""#)
        );
        assert_eq!(
            response_content(r#"{"x_response":"unterminated}"#, "x_response"),
            None
        );
    }
}
