//! The crate's one error type.

/// Everything that can go wrong calling the WeChat APIs or handling an inbound message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request did not complete (connection, TLS, timeout). The URL is stripped from the
    /// underlying error: it can carry the app secret or the access token.
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// WeChat answered with an HTTP status other than 2xx.
    #[error("unexpected http status {status}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
    },
    /// WeChat answered `errcode != 0`.
    #[error("wechat api error {errcode}: {errmsg}")]
    Api {
        /// WeChat's `errcode`.
        errcode: i64,
        /// WeChat's `errmsg`.
        errmsg: String,
    },
    /// An inbound message or URL check failed signature verification.
    #[error("signature verification failed")]
    Signature,
    /// A plaintext inbound message in safe mode: only encrypted messages with a `msg_signature`
    /// over their ciphertext are accepted (a plaintext signature covers no body).
    #[error(
        "a plaintext message in safe mode: only encrypt_type=aes with msg_signature is accepted"
    )]
    Unencrypted,
    /// An inbound message's timestamp is outside the accepted window (a replay, or a clock far
    /// off).
    #[error("stale timestamp {timestamp} (now {now}, window {window_secs} s)")]
    StaleTimestamp {
        /// The message's timestamp.
        timestamp: i64,
        /// The time it was checked at.
        now: i64,
        /// The accepted distance, in seconds.
        window_secs: u64,
    },
    /// A message or response could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded (a field, a document).
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// Decryption or encryption failed (safe mode, Mini Program user data).
    #[error("crypto error: {0}")]
    Crypto(&'static str),
    /// The token store or the deduplication store failed.
    #[error("store error: {0}")]
    Store(String),
    /// The client or a request is misconfigured.
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn decode(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Decode {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Whether this is WeChat telling that the access token is invalid or expired
    /// (`40001`, `40014`, `42001`), after which the client refreshes it and retries once.
    pub fn is_token_error(&self) -> bool {
        matches!(self, Error::Api { errcode, .. } if TOKEN_ERRCODES.contains(errcode))
    }
}

/// `40001` invalid credential, `40014` invalid access_token, `42001` access_token expired.
pub(crate) const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::Transport(e.without_url())
    }
}
