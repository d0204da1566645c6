//! The open-API signing scheme, precise enough to implement in any language.
//!
//! # Requests (merchant → platform)
//!
//! Headers: `X-App-Id`, `X-Timestamp` (Unix seconds), `X-Nonce` (16 to 64 ASCII letters or
//! digits, never reused), `X-Signature`.
//!
//! ```text
//! canonical = METHOD        "\n"   upper case: GET, POST
//!           + PATH          "\n"   as sent, e.g. /v1/payments/A1/close
//!           + QUERY         "\n"   the raw query's k=v pairs, sorted by byte order, joined by &
//!                                  (no decoding; empty when there is no query)
//!           + TIMESTAMP     "\n"
//!           + NONCE         "\n"
//!           + SHA256(BODY)  "\n"   lower-case hex of the body bytes (of "" when empty)
//!           + SALT                 the merchant's salt, as issued
//! X-Signature = lower-case hex( HMAC-SHA256(key = SECRET, canonical) )
//! ```
//!
//! The platform accepts a request when the signature matches (compared in constant time), the
//! timestamp is within its window of its clock (300 s by default), and the nonce was not seen
//! within that window.
//!
//! # Callbacks (platform → merchant)
//!
//! Header `X-Pay-Signature: t=TIMESTAMP,v1=HEX[,v1=HEX…]` where each
//! `HEX = lower-case hex( HMAC-SHA256(key = SECRET, TIMESTAMP + "." + BODY) )` — the scheme
//! Stripe uses. There is one `v1` per secret the platform signs with: one normally, **two during
//! a secret rotation's grace period** (the new secret's first, then the old one's), so that a
//! merchant still on the old secret keeps accepting callbacks until the grace period ends.
//!
//! A verifier accepts a callback when the timestamp is within its tolerance (300 s) and **any**
//! `v1` equals the HMAC computed with **any** secret it holds (compared in constant time);
//! unknown keys (`v0=…`, `v2=…`) are ignored. Then it dedupes by the event's `id`, recording the
//! event as handled only once it has been handled ([`crate::Callbacks::handle`]).
//!
//! Test vector (`testdata/callback_signature.txt`): secret `whsec_test`, timestamp
//! `1700000000`, body `{"id":"evt_1"}` → `v1=` the hex in that file; with secrets `whsec_new` and
//! `whsec_test` the header is `t=1700000000,v1=<whsec_new's>,v1=<whsec_test's>`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Secret;

/// Header names.
pub mod headers {
    /// The merchant's app id.
    pub const APP_ID: &str = "x-app-id";
    /// Unix seconds.
    pub const TIMESTAMP: &str = "x-timestamp";
    /// The nonce.
    pub const NONCE: &str = "x-nonce";
    /// The request signature.
    pub const SIGNATURE: &str = "x-signature";
    /// The callback signature (`t=…,v1=…`).
    pub const CALLBACK_SIGNATURE: &str = "x-pay-signature";
    /// Stripe-style idempotency key.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
}

/// What a request signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`…
    pub method: &'a str,
    /// The path.
    pub path: &'a str,
    /// The raw query string (without `?`), if any.
    pub query: Option<&'a str>,
    /// Unix seconds.
    pub timestamp: i64,
    /// The nonce.
    pub nonce: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn hmac(secret: &Secret, data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The canonical string of a request.
pub fn canonical(parts: &RequestParts<'_>, salt: &Secret) -> String {
    let mut pairs: Vec<&str> = parts
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    pairs.sort_unstable();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.to_ascii_uppercase(),
        parts.path,
        pairs.join("&"),
        parts.timestamp,
        parts.nonce,
        hex(&Sha256::digest(parts.body)),
        salt.expose()
    )
}

/// The `X-Signature` of a request.
pub fn sign_request(parts: &RequestParts<'_>, secret: &Secret, salt: &Secret) -> String {
    hex(&hmac(secret, canonical(parts, salt).as_bytes()))
}

/// Checks a request signature, in constant time, against each of `credentials` (the current
/// secret and, during a rotation's grace period, the previous one).
pub fn verify_request(
    parts: &RequestParts<'_>,
    signature: &str,
    credentials: &[(&Secret, &Secret)],
) -> bool {
    let received = signature.to_ascii_lowercase();
    let mut ok = false;
    for (secret, salt) in credentials {
        let expected = sign_request(parts, secret, salt);
        // Every credential is checked, so timing does not say which one matched.
        ok |= expected.len() == received.len()
            && bool::from(expected.as_bytes().ct_eq(received.as_bytes()));
    }
    ok
}

/// Whether `nonce` has the required shape.
pub fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh nonce (32 random hex characters).
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    // A failing OS random source is not recoverable here; fall back to the clock so that
    // requests still carry distinct nonces.
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = t.to_le_bytes();
    }
    hex(&bytes)
}

/// The `X-Pay-Signature` header value of a callback body sent at `timestamp`.
pub fn sign_callback(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    sign_callback_with_all(&[secret], timestamp, body)
}

/// The header signed with each of `secrets`, in order (`t=…,v1=…,v1=…`): what the platform
/// sends during a rotation's grace period (the new secret first).
pub fn sign_callback_with_all(secrets: &[&Secret], timestamp: i64, body: &[u8]) -> String {
    let mut data = format!("{timestamp}.").into_bytes();
    data.extend_from_slice(body);
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex(&hmac(secret, &data)));
    }
    header
}

/// Why a callback was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The header is missing or malformed.
    #[error("malformed X-Pay-Signature header")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("callback timestamp outside the tolerance window")]
    Stale,
    /// No `v1` signature matches.
    #[error("callback signature does not match")]
    Mismatch,
}

/// Verifies a callback at time `now` (Unix seconds) with a `tolerance`.
pub fn verify_callback_at(
    secret: &Secret,
    header: &str,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), CallbackError> {
    verify_callback_with_any(&[secret], header, body, tolerance, now)
}

/// Verifies a callback at time `now` against several secrets (a rotation): accepted when any
/// `v1` matches any of them.
pub fn verify_callback_with_any(
    secrets: &[&Secret],
    header: &str,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), CallbackError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.push(s.to_ascii_lowercase()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(CallbackError::Malformed)?;
    if signatures.is_empty() {
        return Err(CallbackError::Malformed);
    }
    if timestamp.abs_diff(now) > tolerance.as_secs() {
        return Err(CallbackError::Stale);
    }
    let mut data = format!("{timestamp}.").into_bytes();
    data.extend_from_slice(body);
    let mut ok = false;
    // Every pair is compared, so timing does not tell which secret or signature matched.
    for secret in secrets {
        let expected = hex(&hmac(secret, &data));
        for s in &signatures {
            ok |= s.len() == expected.len() && bool::from(s.as_bytes().ct_eq(expected.as_bytes()));
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CallbackError::Mismatch)
    }
}

/// Verifies a callback now, with a 300-second tolerance.
pub fn verify_callback(secret: &Secret, header: &str, body: &[u8]) -> Result<(), CallbackError> {
    verify_callback_at(
        secret,
        header,
        body,
        Duration::from_secs(300),
        crate::unix_now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(body: &'a [u8], query: Option<&'a str>) -> RequestParts<'a> {
        RequestParts {
            method: "post",
            path: "/v1/payments",
            query,
            timestamp: 1_700_000_000,
            nonce: "abcdefghijklmnop",
            body,
        }
    }

    #[test]
    fn canonical_string_layout() {
        let salt = Secret::new("salt");
        let c = canonical(&parts(b"{}", Some("b=2&a=1")), &salt);
        assert_eq!(
            c,
            "POST\n/v1/payments\na=1&b=2\n1700000000\nabcdefghijklmnop\n\
             44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\nsalt"
        );
    }

    #[test]
    fn known_vector() {
        // Computed independently: hmac.new(b"secret", canonical, sha256).hexdigest().
        let sig = sign_request(
            &parts(b"{}", Some("b=2&a=1")),
            &Secret::new("secret"),
            &Secret::new("salt"),
        );
        assert_eq!(
            sig,
            include_str!("../testdata/request_signature.txt").trim()
        );
    }

    /// The published vectors every client's tests read (testdata/vectors.properties) are this
    /// implementation's.
    #[test]
    fn published_vectors() {
        let v: std::collections::HashMap<&str, &str> =
            include_str!("../testdata/vectors.properties")
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .collect();
        let ts: i64 = v["request.timestamp"].parse().unwrap_or_default();
        let p = RequestParts {
            method: v["request.method"],
            path: v["request.path"],
            query: Some(v["request.query"]),
            timestamp: ts,
            nonce: v["request.nonce"],
            body: v["request.body"].as_bytes(),
        };
        let (secret, salt) = (
            Secret::new(v["request.secret"]),
            Secret::new(v["request.salt"]),
        );
        let c = canonical(&p, &salt);
        assert!(c.contains(v["request.canonical_query"]) && c.contains(v["request.body_sha256"]));
        assert_eq!(sign_request(&p, &secret, &salt), v["request.signature"]);
        let (old, new) = (
            Secret::new(v["callback.secret"]),
            Secret::new(v["rotation.new_secret"]),
        );
        let body = v["callback.body"].as_bytes();
        let ts: i64 = v["callback.timestamp"].parse().unwrap_or_default();
        assert_eq!(
            sign_callback(&old, ts, body),
            format!("t={ts},v1={}", v["callback.v1"])
        );
        assert_eq!(
            sign_callback_with_all(&[&new, &old], ts, body),
            v["rotation.header"]
        );
    }

    #[test]
    fn verification() {
        let (secret, salt) = (Secret::new("secret"), Secret::new("salt"));
        let p = parts(b"{\"amount\":1}", None);
        let sig = sign_request(&p, &secret, &salt);
        assert!(verify_request(&p, &sig, &[(&secret, &salt)]));
        assert!(verify_request(&p, &sig.to_uppercase(), &[(&secret, &salt)]));
        let old = Secret::new("old");
        assert!(
            verify_request(&p, &sig, &[(&old, &salt), (&secret, &salt)]),
            "either credential"
        );
        let tampered = parts(b"{\"amount\":2}", None);
        assert!(!verify_request(&tampered, &sig, &[(&secret, &salt)]));
        assert!(!verify_request(&p, &sig, &[(&Secret::new("wrong"), &salt)]));
        assert!(!verify_request(
            &p,
            &sig,
            &[(&secret, &Secret::new("other-salt"))]
        ));
        assert!(!verify_request(&p, "", &[(&secret, &salt)]));
    }

    #[test]
    fn callbacks() {
        let secret = Secret::new("whsec");
        let header = sign_callback(&secret, 1_700_000_000, b"{\"id\":\"evt_1\"}");
        assert!(header.starts_with("t=1700000000,v1="));
        let ok = verify_callback_at(
            &secret,
            &header,
            b"{\"id\":\"evt_1\"}",
            Duration::from_secs(300),
            1_700_000_100,
        );
        assert_eq!(ok, Ok(()));
        assert_eq!(
            verify_callback_at(
                &secret,
                &header,
                b"{\"id\":\"evt_2\"}",
                Duration::from_secs(300),
                1_700_000_100
            ),
            Err(CallbackError::Mismatch)
        );
        assert_eq!(
            verify_callback_at(
                &secret,
                &header,
                b"{\"id\":\"evt_1\"}",
                Duration::from_secs(300),
                1_700_000_301
            ),
            Err(CallbackError::Stale)
        );
        assert_eq!(
            verify_callback_at(&secret, "garbage", b"", Duration::from_secs(300), 0),
            Err(CallbackError::Malformed)
        );
    }

    #[test]
    fn callback_vector_and_several_signatures() {
        // `(printf '1700000000.'; printf '{"id":"evt_1"}') | openssl dgst -sha256 -hmac whsec_test`
        let expected = include_str!("../testdata/callback_signature.txt").trim();
        let body = br#"{"id":"evt_1"}"#;
        let old = Secret::new("whsec_test");
        assert_eq!(
            sign_callback(&old, 1_700_000_000, body),
            format!("t=1700000000,v1={expected}")
        );
        let new = Secret::new("whsec_new");
        let both = sign_callback_with_all(&[&new, &old], 1_700_000_000, body);
        assert!(both.ends_with(&format!(",v1={expected}")), "{both}");
        let at = |secrets: &[&Secret], header: &str| {
            verify_callback_with_any(
                secrets,
                header,
                body,
                Duration::from_secs(300),
                1_700_000_000,
            )
        };
        assert_eq!(at(&[&old], &both), Ok(()));
        assert_eq!(at(&[&new], &both), Ok(()));
        assert_eq!(at(&[&Secret::new("x"), &new], &both), Ok(()));
        assert_eq!(
            at(&[&Secret::new("x")], &both),
            Err(CallbackError::Mismatch)
        );
        // Unknown schemes are ignored, not an error.
        let with_v0 = format!("{both},v0=deadbeef");
        assert_eq!(at(&[&old], &with_v0), Ok(()));
    }

    #[test]
    fn nonces() {
        assert!(valid_nonce(&nonce()));
        assert_ne!(nonce(), nonce());
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce("has spaces in it!!"));
    }
}
