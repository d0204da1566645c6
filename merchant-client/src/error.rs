//! The crate's error types: [`Error`], what a call fails with, and [`StoreError`], what a store
//! you plug in ([`crate::HandledEvents`], [`crate::NonceStore`]) reports.

/// An error as a cause: any error type, or a message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A failure of a store you plug in, with the store's own error as its source.
///
/// ```
/// use merchant_client::StoreError;
/// let e = StoreError::new(std::io::Error::other("connection reset"));
/// assert_eq!(e.to_string(), "the store failed: connection reset");
/// let e = StoreError::new("the table is missing");
/// assert!(std::error::Error::source(&e).is_some());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("the store failed: {0}")]
pub struct StoreError(#[source] BoxError);

impl StoreError {
    /// A store failure caused by `cause` (an error, or a message).
    pub fn new(cause: impl Into<BoxError>) -> Self {
        StoreError(cause.into())
    }
}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The platform could not be reached (the request's URL is left out of the source).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// The store behind [`crate::Callbacks`] failed: answer a non-2xx status; the platform
    /// delivers the callback again.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    Decode(#[source] serde_json::Error),
    /// A callback's event has no id (so it cannot be deduplicated).
    #[error("the callback's event has no id")]
    NoEventId,
    /// A callback's event is being handled by another delivery right now: answer a non-2xx
    /// status (e.g. 409) so that the platform delivers it again later.
    #[error("event {0} is being handled by another delivery")]
    InProgress(String),
    /// Your callback handler failed: answer a non-2xx status; the event is not recorded as
    /// handled, so the platform's next delivery runs the handler again.
    #[error("the callback handler failed: {0}")]
    Handler(#[source] BoxError),
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
