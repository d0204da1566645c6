//! WeChat Pay v2 signatures: `MD5` and `HMAC-SHA256` over the canonical parameter string.
//!
//! The canonical string is every parameter with a non-empty value except `sign`, sorted by key
//! in ASCII order, written `k=v` and joined with `&`, followed by `&key=API_KEY`. Values are
//! hashed as their UTF-8 bytes, never percent-encoded. The result is upper-case hex.
//!
//! These are pure functions: no I/O, no clock. The canonical string is streamed into the hash
//! rather than built, and comparisons of signatures are constant-time.

use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ApiKey;

/// The signature algorithm (`sign_type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignType {
    /// `MD5`: WeChat's default when `sign_type` is absent.
    #[default]
    Md5,
    /// `HMAC-SHA256`, keyed with the API key.
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignType {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" => Ok(SignType::HmacSha256),
            other => Err(SignatureError::UnsupportedSignType(
                other.chars().take(32).collect(),
            )),
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The message carries no `sign` field (never treated as "nothing to check").
    #[error("the message has no `sign` field")]
    Missing,
    /// The signature does not match the message and key.
    #[error(
        "the signature does not match: check the key (API v2's 32-character API key from the \
         merchant platform — not the API v3 key; WeChat's /sandboxnew gateway signs with its own \
         sandbox key), the sign type (MD5 or HMAC-SHA256, as the order was made), and that the \
         XML is verified exactly as received"
    )]
    Mismatch,
    /// The message says it is signed with another algorithm than the one it was verified
    /// with (the client's configured sign type).
    #[error(
        "the message is signed with {received}, but was verified with {configured}: set the \
         client's sign type (or the notification policy) to {received}, as the order was made"
    )]
    SignTypeNotConfigured {
        /// The `sign_type` the message names.
        received: String,
        /// The sign type it was verified with.
        configured: String,
    },
    /// `sign_type` names an algorithm WeChat Pay v2 does not define.
    #[error("unsupported sign_type {0:?}")]
    UnsupportedSignType(String),
}

/// Signs `params` (in any order) and returns the upper-case hex signature.
///
/// Empty values and the `sign` parameter are left out, as WeChat does.
///
/// ```
/// use wechat_pay::{sign, ApiKey, SignType};
/// // WeChat's documented example.
/// let params = [
///     ("appid", "wxd930ea5d5a258f4f"),
///     ("mch_id", "10000100"),
///     ("device_info", "1000"),
///     ("body", "test"),
///     ("nonce_str", "ibuaiVcKdpRxkhJA"),
/// ];
/// let key = ApiKey::new("192006250b4c09247ec02edce69f6a2d");
/// assert_eq!(sign::sign(params, &key, SignType::Md5), "9A0A8659F005D6984697E2CA0A9CF3B7");
/// ```
pub fn sign<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
) -> String {
    let mut sorted: Vec<(&str, &str)> = params.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sign_sorted(sorted, key, sign_type)
}

/// Verifies `signature` against `params` (in any order), in constant time.
pub fn verify<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
    signature: &str,
) -> Result<(), SignatureError> {
    let mut sorted: Vec<(&str, &str)> = params.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    verify_sorted(sorted, key, sign_type, signature)
}

/// [`sign`] for parameters already sorted by key (as [`crate::Params`] keeps them).
pub(crate) fn sign_sorted<'a>(
    sorted: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
) -> String {
    let digest = digest_sorted(sorted, key, sign_type);
    let mut hex = [0u8; 64];
    let out = upper_hex(digest.as_slice(), &mut hex);
    out.to_owned()
}

/// [`verify`] for parameters already sorted by key.
pub(crate) fn verify_sorted<'a>(
    sorted: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
    signature: &str,
) -> Result<(), SignatureError> {
    let expected = digest_sorted(sorted, key, sign_type);
    let expected = expected.as_slice();
    let mut received = [0u8; 32];
    let received = decode_hex(signature, &mut received).ok_or(SignatureError::Mismatch)?;
    // Lengths are public (they follow from the sign type); the contents are compared in
    // constant time.
    if received.len() == expected.len() && bool::from(received.ct_eq(expected)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A finished digest: 16 bytes (MD5) or 32 bytes (HMAC-SHA256).
struct DigestBytes {
    bytes: [u8; 32],
    len: usize,
}

impl DigestBytes {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

enum Hasher {
    Md5(Md5),
    HmacSha256(Hmac<Sha256>),
}

impl Hasher {
    fn new(key: &ApiKey, sign_type: SignType) -> Self {
        match sign_type {
            SignType::Md5 => Hasher::Md5(Md5::new()),
            SignType::HmacSha256 => Hasher::HmacSha256(hmac_sha256(key.expose().as_bytes())),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Md5(h) => Digest::update(h, data),
            Hasher::HmacSha256(h) => Mac::update(h, data),
        }
    }

    fn finish(self) -> DigestBytes {
        let mut bytes = [0u8; 32];
        match self {
            Hasher::Md5(h) => {
                bytes[..16].copy_from_slice(&h.finalize());
                DigestBytes { bytes, len: 16 }
            }
            Hasher::HmacSha256(h) => {
                bytes.copy_from_slice(&h.finalize().into_bytes());
                DigestBytes { bytes, len: 32 }
            }
        }
    }
}

/// HMAC-SHA256 keyed with `key`, built without a fallible constructor: HMAC itself hashes a key
/// longer than the block and zero-pads a shorter one, so doing that here gives the same MAC.
fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    Hmac::<Sha256>::new(&block.into())
}

fn digest_sorted<'a>(
    sorted: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
    sign_type: SignType,
) -> DigestBytes {
    let mut h = Batched::new(Hasher::new(key, sign_type));
    let mut first = true;
    for (k, v) in sorted {
        if v.is_empty() || k == "sign" {
            continue;
        }
        if !first {
            h.write(b"&");
        }
        first = false;
        h.write(k.as_bytes());
        h.write(b"=");
        h.write(v.as_bytes());
    }
    if !first {
        h.write(b"&");
    }
    h.write(b"key=");
    h.write(key.expose().as_bytes());
    h.finish()
}

/// Gathers the many small pieces of the canonical string into a stack buffer so the hash is fed
/// a few large updates instead of four tiny ones per parameter.
struct Batched {
    hasher: Hasher,
    buf: [u8; 512],
    len: usize,
}

impl Batched {
    fn new(hasher: Hasher) -> Self {
        Batched {
            hasher,
            buf: [0; 512],
            len: 0,
        }
    }

    #[inline]
    fn write(&mut self, data: &[u8]) {
        if self.len + data.len() > self.buf.len() {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            if data.len() > self.buf.len() {
                self.hasher.update(data);
                return;
            }
        }
        self.buf[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    fn finish(mut self) -> DigestBytes {
        self.hasher.update(&self.buf[..self.len]);
        self.hasher.finish()
    }
}

/// The canonical string that is hashed, for debugging a signature mismatch against another
/// implementation. It contains the API key: never log it.
pub fn canonical_string<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &ApiKey,
) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && *k != "sign")
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut s = String::new();
    for (k, v) in sorted {
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('&');
    }
    s.push_str("key=");
    s.push_str(key.expose());
    s
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `bytes` as upper-case hex into `out` and returns it as text.
pub(crate) fn upper_hex<'o>(bytes: &[u8], out: &'o mut [u8; 64]) -> &'o str {
    let n = bytes.len().min(32);
    for (i, b) in bytes[..n].iter().enumerate() {
        out[2 * i] = HEX_UPPER[usize::from(b >> 4)];
        out[2 * i + 1] = HEX_UPPER[usize::from(b & 0x0f)];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(&out[..2 * n]).unwrap_or_default()
}

/// Decodes hex (either case) of at most 32 bytes; `None` on anything else.
fn decode_hex<'o>(s: &str, out: &'o mut [u8; 32]) -> Option<&'o [u8]> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 || s.len() > 64 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(&out[..s.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_says_where_to_look() {
        let text = SignatureError::Mismatch.to_string();
        for hint in [
            "not the API v3 key",
            "sandbox key",
            "HMAC-SHA256",
            "as received",
        ] {
            assert!(text.contains(hint), "{text}");
        }
    }

    const DOC_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const DOC_PARAMS: [(&str, &str); 5] = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ];

    #[test]
    fn documented_md5_vector() {
        let key = ApiKey::new(DOC_KEY);
        assert_eq!(
            canonical_string(DOC_PARAMS, &key),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&\
             nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d"
        );
        assert_eq!(
            sign(DOC_PARAMS, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn documented_hmac_sha256_vector() {
        // WeChat's documentation gives this HMAC-SHA256 result for the same parameters.
        let key = ApiKey::new(DOC_KEY);
        assert_eq!(
            sign(DOC_PARAMS, &key, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_values_and_sign_are_excluded() {
        let key = ApiKey::new(DOC_KEY);
        let mut with_extras: Vec<(&str, &str)> = DOC_PARAMS.to_vec();
        with_extras.push(("attach", ""));
        with_extras.push(("sign", "WHATEVER"));
        assert_eq!(
            sign(with_extras, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn non_ascii_values_are_hashed_as_utf8_without_percent_encoding() {
        let key = ApiKey::new("k");
        let params = [("body", "腾讯充值中心-QQ会员充值"), ("a", "1")];
        let canonical = canonical_string(params, &key);
        assert_eq!(canonical, "a=1&body=腾讯充值中心-QQ会员充值&key=k");
        let expected = {
            let digest = Md5::digest(canonical.as_bytes());
            let mut buf = [0u8; 64];
            upper_hex(&digest, &mut buf).to_owned()
        };
        assert_eq!(sign(params, &key, SignType::Md5), expected);
        // A percent-encoded body must give a different signature.
        let encoded = [("body", "%E8%85%BE%E8%AE%AF"), ("a", "1")];
        assert_ne!(sign(encoded, &key, SignType::Md5), expected);
    }

    #[test]
    fn keys_sort_in_ascii_order() {
        // Upper-case letters sort before lower-case, and `_` (0x5F) between them.
        let key = ApiKey::new("k");
        let canonical = canonical_string([("b", "1"), ("B", "2"), ("a_b", "3"), ("aB", "4")], &key);
        assert_eq!(canonical, "B=2&aB=4&a_b=3&b=1&key=k");
    }

    #[test]
    fn verify_accepts_good_and_rejects_bad() {
        let key = ApiKey::new(DOC_KEY);
        for ty in [SignType::Md5, SignType::HmacSha256] {
            let good = sign(DOC_PARAMS, &key, ty);
            assert_eq!(verify(DOC_PARAMS, &key, ty, &good), Ok(()));
            assert_eq!(
                verify(DOC_PARAMS, &key, ty, &good.to_lowercase()),
                Ok(()),
                "hex case must not matter"
            );
            let mut bad = good.clone().into_bytes();
            bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
            let bad = String::from_utf8(bad).unwrap();
            assert_eq!(
                verify(DOC_PARAMS, &key, ty, &bad),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                verify(DOC_PARAMS, &ApiKey::new("other"), ty, &good),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                verify(DOC_PARAMS, &key, ty, &good[..good.len() - 2]),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                verify(DOC_PARAMS, &key, ty, "not hex at all"),
                Err(SignatureError::Mismatch)
            );
            assert_eq!(
                verify(DOC_PARAMS, &key, ty, ""),
                Err(SignatureError::Mismatch)
            );
        }
        // An MD5 signature is not accepted as HMAC-SHA256 and vice versa.
        let md5 = sign(DOC_PARAMS, &key, SignType::Md5);
        assert_eq!(
            verify(DOC_PARAMS, &key, SignType::HmacSha256, &md5),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn sign_type_wire_names() {
        assert_eq!("MD5".parse::<SignType>(), Ok(SignType::Md5));
        assert_eq!("HMAC-SHA256".parse::<SignType>(), Ok(SignType::HmacSha256));
        assert!(matches!(
            "SHA1".parse::<SignType>(),
            Err(SignatureError::UnsupportedSignType(_))
        ));
        assert_eq!(SignType::HmacSha256.to_string(), "HMAC-SHA256");
    }
}
