//! Signatures of API v3.
//!
//! **Requests** (merchant → WeChat Pay): RSA-SHA256 with the merchant key over
//!
//! ```text
//! METHOD "\n" PATH[?QUERY] "\n" TIMESTAMP "\n" NONCE "\n" BODY "\n"
//! ```
//!
//! sent as `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",
//! timestamp="…",serial_no="…"` (the serial of the merchant's API certificate).
//!
//! **Responses and notifications** (WeChat Pay → merchant): RSA-SHA256 with WeChat Pay's key
//! over `TIMESTAMP "\n" NONCE "\n" BODY "\n"`, from the headers `Wechatpay-Timestamp`,
//! `Wechatpay-Nonce`, `Wechatpay-Signature` and `Wechatpay-Serial` (which key). Verified before
//! anything is decoded; each failure is its own [`SignatureError`]. WeChat Pay sends
//! signature-probe traffic on purpose (signatures starting `WECHATPAY/SIGNTEST/`): a verifier
//! that accepts it is broken, so it is refused by name.

use super::{MerchantKey, WechatPayKey};

/// The longest accepted distance between a response's timestamp and the clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The prefix of WeChat Pay's signature probes.
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The length of an RSA-2048 signature (`WECHATPAY2-SHA256-RSA2048`).
const RSA_2048_SIGNATURE_BYTES: usize = 256;

/// Header names.
pub mod headers {
    /// Which WeChat Pay key signed (`PUB_KEY_ID_…` or a certificate serial); on a request, which
    /// key encrypted its sensitive fields.
    pub const SERIAL: &str = "Wechatpay-Serial";
    /// Unix seconds.
    pub const TIMESTAMP: &str = "Wechatpay-Timestamp";
    /// The nonce.
    pub const NONCE: &str = "Wechatpay-Nonce";
    /// The base64 signature.
    pub const SIGNATURE: &str = "Wechatpay-Signature";
    /// What kind of signature (`WECHATPAY2-SHA256-RSA2048`).
    pub const SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";
}

/// Why WeChat Pay's signature on a response or notification was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A signature header is missing (or empty).
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// `Wechatpay-Timestamp` is not a number.
    #[error("malformed Wechatpay-Timestamp {0:?}")]
    MalformedTimestamp(String),
    /// The timestamp is more than [`MAX_CLOCK_SKEW_SECS`] from the clock (a replay, or a clock far
    /// off).
    #[error(
        "stale signature: signed at {timestamp}, {} s {} this clock ({now}), more than {MAX_CLOCK_SKEW_SECS} s: \
         a replayed message, or this machine's clock is off by about that much (fix the clock, or \
         set ClientBuilder::clock_offset)",
        timestamp.abs_diff(*now),
        if timestamp > now { "ahead of" } else { "behind" }
    )]
    Stale {
        /// The signed timestamp.
        timestamp: i64,
        /// The clock.
        now: i64,
    },
    /// No known key has this id (after a refresh, when the client refreshes).
    #[error("unknown Wechatpay-Serial {serial:?}{hint}", serial = .0, hint = serial_hint(.0))]
    UnknownSerial(String),
    /// `Wechatpay-Serial` is the merchant's own API certificate's serial: WeChat Pay never signs
    /// with the merchant's key, so this was not signed by WeChat Pay (a request of the merchant's
    /// own sent back, or a test signing with the wrong key).
    #[error(
        "Wechatpay-Serial {0:?} is your own merchant certificate's serial: WeChat Pay never signs \
         with it, so this message was not signed by WeChat Pay"
    )]
    MerchantSerial(String),
    /// `Wechatpay-Signature` is not the base64 of an RSA-2048 signature (256 bytes).
    #[error("Wechatpay-Signature is not an RSA-2048 signature")]
    Malformed,
    /// A WeChat Pay signature probe (`WECHATPAY/SIGNTEST/…`): never valid.
    #[error("a signature probe (WECHATPAY/SIGNTEST/), refused")]
    Probe,
    /// The signature does not match the body and the key.
    #[error(
        "the signature does not match the body: verify the body's raw bytes exactly as received \
         — a body parsed and serialized again (whitespace, escaping, field order: a framework's \
         JSON extractor, a proxy) no longer matches — with the headers of the same request"
    )]
    Mismatch,
}

/// What an unknown `Wechatpay-Serial` most likely means.
fn serial_hint(serial: &str) -> &'static str {
    if serial.starts_with("PUB_KEY_ID_") {
        ": signed with a WeChat Pay public key this client does not hold (download it from the \
         merchant platform and configure it with ClientBuilder::wechat_pay_key; while WeChat \
         moves the merchant from platform certificates to the public key, configure both)"
    } else if serial.len() == 40 && serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        ": a platform certificate this client does not hold (certificate mode downloads them; \
         with only a public key configured, turn certificates on, or check that this is not \
         your own merchant certificate's serial — WeChat never signs with that)"
    } else {
        ""
    }
}

/// A request to sign, field by field ([`RequestSignature::request`]): `GET /` with no body
/// until told otherwise.
#[derive(Debug, Clone, Copy)]
#[must_use = "a request is signed by sign_now or sign_at"]
pub struct SignRequest<'a> {
    key: &'a MerchantKey,
    mch_id: &'a str,
    serial_no: &'a str,
    method: &'a str,
    path_and_query: &'a str,
    body: &'a str,
}

impl<'a> SignRequest<'a> {
    /// The HTTP method (`GET` by default).
    pub fn method(mut self, method: &'a str) -> Self {
        self.method = method;
        self
    }

    /// The path with its query string, as sent (`/v3/…?mchid=…`).
    pub fn path(mut self, path_and_query: &'a str) -> Self {
        self.path_and_query = path_and_query;
        self
    }

    /// The body, exactly as sent (empty for a `GET`).
    pub fn body(mut self, body: &'a str) -> Self {
        self.body = body;
        self
    }

    /// Signed now, with a fresh random nonce.
    pub fn sign_now(self) -> Result<RequestSignature, crate::Error> {
        Ok(self.sign_at(super::client::unix_now(), &crate::client::nonce()?))
    }

    /// Signed at `timestamp` (Unix seconds) with `nonce`.
    pub fn sign_at(self, timestamp: i64, nonce: &str) -> RequestSignature {
        RequestSignature::sign(
            self.key,
            self.mch_id,
            self.serial_no,
            self.method,
            self.path_and_query,
            self.body,
            timestamp,
            nonce,
        )
    }
}

/// A request's signature and the `Authorization` header carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// The merchant id.
    pub mch_id: String,
    /// The merchant API certificate's serial number.
    pub serial_no: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The nonce (32 characters).
    pub nonce: String,
    /// The base64 signature.
    pub signature: String,
}

impl RequestSignature {
    /// What a request signature covers.
    pub fn message(
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &str,
    ) -> String {
        format!(
            "{}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n",
            method.to_ascii_uppercase()
        )
    }

    /// Signs a request with the merchant key.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &MerchantKey,
        mch_id: &str,
        serial_no: &str,
        method: &str,
        path_and_query: &str,
        body: &str,
        timestamp: i64,
        nonce: &str,
    ) -> Self {
        let message = Self::message(method, path_and_query, timestamp, nonce, body);
        RequestSignature {
            mch_id: mch_id.to_owned(),
            serial_no: serial_no.to_owned(),
            timestamp,
            nonce: nonce.to_owned(),
            signature: key.sign(message.as_bytes()),
        }
    }

    /// Signs a request named field by field — method, path and body cannot be swapped — now,
    /// with a fresh nonce ([`SignRequest::sign_now`]) or at a given time with a given nonce
    /// ([`SignRequest::sign_at`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use wechat_pay::v3::{MerchantKey, RequestSignature};
    ///
    /// # let pem = include_str!("../../testdata/v3/merchant_private_key.pem");
    /// let key = MerchantKey::from_pem(pem)?;
    /// let signed = RequestSignature::request(&key, "1900009191", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")
    ///     .method("POST")
    ///     .path("/v3/pay/transactions/native")
    ///     .body(r#"{"appid":"wxd678efh567hg6787"}"#)
    ///     .sign_now()?;
    /// assert_eq!(signed.nonce.len(), 32);
    /// assert!(signed.authorization().starts_with("WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\""));
    /// // The same fields at a given time and nonce sign as `RequestSignature::sign` does.
    /// let at = RequestSignature::request(&key, "1900009191", "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C")
    ///     .path("/v3/certificates")
    ///     .sign_at(1_554_208_460, "593BEC0C930BF1AFEB40B4A08C8FB242");
    /// assert_eq!(at.signature, RequestSignature::sign(&key, "1900009191",
    ///     "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C", "GET", "/v3/certificates", "",
    ///     1_554_208_460, "593BEC0C930BF1AFEB40B4A08C8FB242").signature);
    /// # Ok(()) }
    /// ```
    pub fn request<'a>(
        key: &'a MerchantKey,
        mch_id: &'a str,
        serial_no: &'a str,
    ) -> SignRequest<'a> {
        SignRequest {
            key,
            mch_id,
            serial_no,
            method: "GET",
            path_and_query: "/",
            body: "",
        }
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        format!(
            "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{}\",signature=\"{}\",timestamp=\"{}\",serial_no=\"{}\"",
            self.mch_id, self.nonce, self.signature, self.timestamp, self.serial_no
        )
    }
}

/// The headers WeChat Pay puts on a response or notification `body`: signed with `key` (known
/// to clients as `key_id`) at `timestamp` with `nonce` — for stand-ins of WeChat Pay (the
/// sandbox, test signers).
pub fn wechat_pay_headers(
    key: &MerchantKey,
    key_id: &str,
    body: &str,
    timestamp: i64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let message = format!("{timestamp}\n{nonce}\n{body}\n");
    vec![
        (headers::SERIAL, key_id.to_owned()),
        (headers::TIMESTAMP, timestamp.to_string()),
        (headers::NONCE, nonce.to_owned()),
        (headers::SIGNATURE, key.sign(message.as_bytes())),
        (
            headers::SIGNATURE_TYPE,
            "WECHATPAY2-SHA256-RSA2048".to_owned(),
        ),
    ]
}

/// WeChat Pay's signature on a response or notification, read from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatPaySignature {
    /// `Wechatpay-Serial`.
    pub serial: String,
    /// `Wechatpay-Timestamp`.
    pub timestamp: i64,
    /// `Wechatpay-Nonce`.
    pub nonce: String,
    /// `Wechatpay-Signature`.
    pub signature: String,
}

impl WechatPaySignature {
    /// Reads the four headers through `header` (a name → value lookup, any case).
    pub fn from_headers<'h>(
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<Self, SignatureError> {
        let need = |name: &'static str| {
            header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(SignatureError::MissingHeader(name))
        };
        let serial = need(headers::SERIAL)?;
        let timestamp = need(headers::TIMESTAMP)?;
        let nonce = need(headers::NONCE)?;
        let signature = need(headers::SIGNATURE)?;
        Ok(WechatPaySignature {
            serial: serial.to_owned(),
            timestamp: timestamp
                .parse()
                .map_err(|_| SignatureError::MalformedTimestamp(timestamp.to_owned()))?,
            nonce: nonce.to_owned(),
            signature: signature.to_owned(),
        })
    }

    /// What the signature covers.
    pub fn message(&self, body: &[u8]) -> Vec<u8> {
        let mut m = format!("{}\n{}\n", self.timestamp, self.nonce).into_bytes();
        m.extend_from_slice(body);
        m.push(b'\n');
        m
    }

    /// Everything that can be checked at `now` without a key: not a probe, the timestamp within
    /// [`MAX_CLOCK_SKEW_SECS`], and a signature of the right shape (base64 of 256 bytes, an
    /// RSA-2048 signature). A client checks these before it downloads certificates for an
    /// unknown serial, so that nobody without a signed message can make it download.
    pub fn check_form(&self, now: i64) -> Result<(), SignatureError> {
        if self.signature.starts_with(PROBE_PREFIX) {
            return Err(SignatureError::Probe);
        }
        if self.timestamp.abs_diff(now) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
            return Err(SignatureError::Stale {
                timestamp: self.timestamp,
                now,
            });
        }
        use base64::Engine as _;
        match base64::engine::general_purpose::STANDARD.decode(self.signature.trim()) {
            Ok(bytes) if bytes.len() == RSA_2048_SIGNATURE_BYTES => Ok(()),
            _ => Err(SignatureError::Malformed),
        }
    }

    /// Checks the signature over `body` at `now` (Unix seconds) with the key `key_for` finds by
    /// `Wechatpay-Serial`: a probe, a stale timestamp, a malformed signature, an unknown serial
    /// and a mismatch are each their own error, in that order.
    pub fn verify<'k>(
        &self,
        body: &[u8],
        now: i64,
        key_for: impl FnOnce(&str) -> Option<&'k WechatPayKey>,
    ) -> Result<(), SignatureError> {
        self.check_form(now)?;
        let key = key_for(&self.serial)
            .ok_or_else(|| SignatureError::UnknownSerial(self.serial.clone()))?;
        if key.verifies(&self.message(body), &self.signature) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERCHANT: &str = include_str!("../../testdata/v3/merchant_private_key.pem");
    const WECHATPAY_PUBLIC: &str = include_str!("../../testdata/v3/wechatpay_public_key.pem");
    const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

    #[test]
    fn the_request_message_and_header_match_openssl() {
        let key = MerchantKey::from_pem(MERCHANT).unwrap();
        let s = RequestSignature::sign(
            &key,
            "1900009191",
            "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
            "get",
            "/v3/certificates",
            "",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
        );
        assert_eq!(
            RequestSignature::message(
                "GET",
                "/v3/certificates",
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                ""
            ),
            include_str!("../../testdata/v3/request_message.txt")
        );
        let expected = include_str!("../../testdata/v3/request_signature.b64").trim();
        assert_eq!(s.signature, expected);
        assert_eq!(
            s.authorization(),
            format!(
                "WECHATPAY2-SHA256-RSA2048 mchid=\"1900009191\",nonce_str=\"593BEC0C930BF1AFEB40B4A08C8FB242\",\
                 signature=\"{expected}\",timestamp=\"1554208460\",serial_no=\"1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C\""
            )
        );
    }

    fn signed_response() -> (WechatPaySignature, Vec<u8>) {
        let message = include_str!("../../testdata/v3/response_message.txt");
        // The vector's message is TIMESTAMP\nNONCE\nBODY\n.
        let mut lines = message.splitn(3, '\n');
        let (ts, nonce, body) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap().strip_suffix('\n').unwrap(),
        );
        let signature = include_str!("../../testdata/v3/response_signature.b64").trim();
        let headers = [
            (headers::SERIAL, KEY_ID),
            (headers::TIMESTAMP, ts),
            (headers::NONCE, nonce),
            (headers::SIGNATURE, signature),
        ];
        let sig = WechatPaySignature::from_headers(|name| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
        .unwrap();
        (sig, body.as_bytes().to_vec())
    }

    #[test]
    fn responses_verify_and_each_failure_is_named() {
        let key = WechatPayKey::from_pem(KEY_ID, WECHATPAY_PUBLIC).unwrap();
        let find = |serial: &str| (serial == KEY_ID).then_some(&key);
        let (sig, body) = signed_response();
        let now = sig.timestamp + 10;
        assert_eq!(sig.verify(&body, now, find), Ok(()));
        // Tampered body.
        let mut tampered = body.clone();
        tampered[2] ^= 1;
        assert_eq!(
            sig.verify(&tampered, now, find),
            Err(SignatureError::Mismatch)
        );
        // Stale either way.
        assert!(matches!(
            sig.verify(&body, sig.timestamp + 301, find),
            Err(SignatureError::Stale { .. })
        ));
        assert!(matches!(
            sig.verify(&body, sig.timestamp - 301, find),
            Err(SignatureError::Stale { .. })
        ));
        // Unknown serial.
        let mut other = sig.clone();
        other.serial = "PUB_KEY_ID_OTHER".into();
        assert_eq!(
            other.verify(&body, now, find),
            Err(SignatureError::UnknownSerial("PUB_KEY_ID_OTHER".into()))
        );
        // A probe is refused before anything else.
        let mut probe = sig.clone();
        probe.signature = format!("{PROBE_PREFIX}{}", sig.signature);
        assert_eq!(probe.verify(&body, now, find), Err(SignatureError::Probe));
        // Not an RSA-2048 signature: refused without looking for a key.
        use base64::Engine as _;
        for junk in [
            "not base64!".to_owned(),
            base64::engine::general_purpose::STANDARD.encode([7u8; 255]),
            base64::engine::general_purpose::STANDARD.encode([7u8; 512]),
        ] {
            let mut malformed = other.clone();
            malformed.signature = junk;
            assert_eq!(
                malformed.check_form(now),
                Err(SignatureError::Malformed),
                "{}",
                malformed.signature
            );
            assert_eq!(
                malformed.verify(&body, now, |_| panic!("no key is looked for")),
                Err(SignatureError::Malformed)
            );
        }
        assert_eq!(other.check_form(now), Ok(()), "the right shape, any serial");
        // Missing and malformed headers.
        assert_eq!(
            WechatPaySignature::from_headers(|_| None),
            Err(SignatureError::MissingHeader(headers::SERIAL))
        );
        assert_eq!(
            WechatPaySignature::from_headers(|n| Some(if n == headers::TIMESTAMP {
                "soon"
            } else {
                "x"
            })),
            Err(SignatureError::MalformedTimestamp("soon".into()))
        );
    }
}

#[cfg(test)]
mod explained {
    use super::*;

    #[test]
    fn each_failure_says_why_and_what_to_do() {
        let stale = SignatureError::Stale {
            timestamp: 1_000,
            now: 1_000 + 900,
        }
        .to_string();
        assert!(stale.contains("900 s behind"), "{stale}");
        assert!(stale.contains("clock_offset"), "{stale}");
        let ahead = SignatureError::Stale {
            timestamp: 2_000,
            now: 1_000,
        }
        .to_string();
        assert!(ahead.contains("1000 s ahead of"), "{ahead}");
        let public = SignatureError::UnknownSerial("PUB_KEY_ID_0114".into()).to_string();
        assert!(public.contains("wechat_pay_key"), "{public}");
        let cert = SignatureError::UnknownSerial("5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into())
            .to_string();
        assert!(cert.contains("platform certificate"), "{cert}");
        let mismatch = SignatureError::Mismatch.to_string();
        assert!(mismatch.contains("raw bytes"), "{mismatch}");
        let own = SignatureError::MerchantSerial("1DDE".into()).to_string();
        assert!(own.contains("never signs"), "{own}");
    }
}
