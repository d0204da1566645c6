//! The crate's one error type.

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The platform could not be reached.
    #[error("transport error: {0}")]
    Transport(String),
    /// The platform refused the request: HTTP status, its error code and message.
    #[error("platform error {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The platform's code (`SIGNATURE_INVALID`, `PAYMENT_NOT_FOUND`…).
        code: String,
        /// Its message.
        message: String,
    },
    /// A callback failed verification.
    #[error("signature error: {0}")]
    Signature(#[from] crate::signing::CallbackError),
    /// A response or callback body could not be decoded.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// A callback's event is being handled by another delivery right now: answer a non-2xx
    /// status (e.g. 409) so that the platform delivers it again later.
    #[error("event {0} is being handled by another delivery")]
    InProgress(String),
    /// Your callback handler failed: answer a non-2xx status; the event is not recorded as
    /// handled, so the platform's next delivery runs the handler again.
    #[error("the callback handler failed: {0}")]
    Handler(String),
    /// The client is misconfigured.
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    /// The platform's error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
