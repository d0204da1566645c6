//! The crate's errors: channel failures, storage failures, and requests that cannot be done.

use crate::{PaymentId, PaymentStatus};

/// What a channel reports when it cannot do what was asked. Declines and states are values in
/// the channel's answers; these are errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The channel could not be reached (retrying later may work).
    #[error("channel unreachable: {0}")]
    Transport(String),
    /// The channel answered that it cannot do it *now* (an internal error, a rate limit, an
    /// unknown code, a balance to top up): nothing is decided, the same request (same numbers)
    /// may be sent again, no sooner than `retry_after` when the channel says how long to wait.
    #[error("channel temporarily unavailable ({code}): {message}")]
    Unavailable {
        /// The channel's error code.
        code: String,
        /// Its message.
        message: String,
        /// How long to wait before trying again, when the code says so (a balance to top up
        /// takes longer than an internal error).
        retry_after: Option<std::time::Duration>,
    },
    /// The channel refused the request for good (bad parameters, wrong state…), with its code:
    /// a definitive answer, nothing was done.
    #[error("channel refused ({code}): {message}")]
    Rejected {
        /// The channel's error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A message failed signature verification.
    #[error("signature verification failed: {0}")]
    Signature(String),
    /// A message could not be decoded.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// The channel cannot do this (e.g. a method it does not support).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The channel is misconfigured.
    #[error("configuration: {0}")]
    Config(String),
}

impl ChannelError {
    /// Whether retrying later may succeed: the outcome is unknown (transport) or the channel
    /// said "not now" ([`ChannelError::Unavailable`]). Only the other variants are definitive.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ChannelError::Transport(_) | ChannelError::Unavailable { .. }
        )
    }

    /// Whether this is a definitive "no": the channel refused the request for good
    /// ([`ChannelError::Rejected`]) or the channel cannot do it at all
    /// ([`ChannelError::Unsupported`]) — either way nothing was done. Everything else leaves
    /// the outcome unknown: a transport error, a temporary refusal, and also an answer that
    /// failed verification or decoding (the provider may well have done it) or a configuration
    /// the operator has yet to fix. Money is only ever settled on a refusal or a verified
    /// answer.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ChannelError::Rejected { .. } | ChannelError::Unsupported(_)
        )
    }

    /// `CODE: message`, as a refund's `last_error` records it.
    pub fn summary(&self) -> String {
        match self {
            ChannelError::Unavailable { code, message, .. }
            | ChannelError::Rejected { code, message } => format!("{code}: {message}"),
            ChannelError::Transport(m) => format!("TRANSPORT: {m}"),
            ChannelError::Signature(m) => format!("UNVERIFIED_ANSWER: {m}"),
            ChannelError::Decode(m) => format!("UNDECODABLE_ANSWER: {m}"),
            ChannelError::Unsupported(m) => format!("UNSUPPORTED: {m}"),
            ChannelError::Config(m) => format!("CONFIGURATION: {m}"),
        }
    }

    /// How long the channel asked to wait before the same request, if it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ChannelError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A storage failure, by kind. Never swallowed: a notification that meets one is acknowledged
/// `FAIL` so the channel sends it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Someone else wrote first (a unique key taken, a row that moved on): read again and
    /// decide again.
    #[error("storage conflict: {0}")]
    Conflict(String),
    /// The engine cannot be reached, or stopped answering (connection, pool, timeout, a
    /// background task gone): the same operation may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// What is stored cannot be read back (an unknown status, a negative amount): a bug or a
    /// manual edit, never retried.
    #[error("corrupt data in storage: {0}")]
    Corrupt(String),
    /// Anything else (a statement the engine refused, an encoding error).
    #[error("storage error: {0}")]
    Other(String),
}

impl StoreError {
    /// What happened, without the kind.
    pub fn message(&self) -> &str {
        match self {
            StoreError::Conflict(m)
            | StoreError::Unavailable(m)
            | StoreError::Corrupt(m)
            | StoreError::Other(m) => m,
        }
    }

    /// Whether the same operation may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_) | StoreError::Unavailable(_))
    }
}

/// Everything the payment service can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No channel with this id or for this method is registered.
    #[error("no channel for {0}")]
    NoChannel(String),
    /// No such payment.
    #[error("payment {0} not found")]
    PaymentNotFound(String),
    /// No such refund.
    #[error("refund {0} not found")]
    RefundNotFound(String),
    /// The request conflicts with an earlier one with the same number.
    #[error("{0} is already used with different parameters")]
    Conflict(String),
    /// The payment is not in a state that allows this.
    #[error("payment {id} is {status}")]
    InvalidState {
        /// The payment.
        id: PaymentId,
        /// Its state.
        status: PaymentStatus,
    },
    /// The refund is not in a state that allows this.
    #[error("refund {out_refund_no} is {status}")]
    RefundState {
        /// The refund.
        out_refund_no: String,
        /// Its state.
        status: crate::RefundStatus,
    },
    /// The request is invalid (amount, missing openid…).
    #[error("invalid request: {0}")]
    Invalid(String),
}
