//! [`AppError`]: every error answer is `{code, message}` with a proper status. Client errors say
//! what is wrong; internal errors are logged and answered without details.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct AppError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable code (`SIGNATURE_INVALID`, `PAYMENT_NOT_FOUND`…).
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// Seconds after which trying again may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
    /// More fields of the answer (`order_no` of the order in the way…).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl AppError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            fields: serde_json::Map::new(),
        }
    }

    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 404.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 422: understood, but not something this server does (a method or channel it does not
    /// offer).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// The same answer with one more field.
    pub fn with_field(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.insert(name.to_owned(), value.into());
        self
    }

    /// 403: who is asking is known, and may not do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 429 `RATE_LIMITED`, with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", message);
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500; the detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut body = self.fields;
        body.insert("code".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        let mut response = (self.status, Json(serde_json::Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<aggregate_pay::Error> for AppError {
    fn from(e: aggregate_pay::Error) -> Self {
        use aggregate_pay::{ChannelError, Error};
        match e {
            Error::Conflict(m) => AppError::conflict(
                "CONFLICT",
                format!("{m} is already used with different parameters"),
            ),
            Error::InvalidState { status, .. } => {
                AppError::conflict("INVALID_STATE", format!("the payment is {status}"))
            }
            Error::Invalid(m) => AppError::bad_request("INVALID_REQUEST", m),
            Error::PaymentNotFound(_) => {
                AppError::not_found("PAYMENT_NOT_FOUND", "no such payment")
            }
            Error::RefundNotFound(_) => AppError::not_found("REFUND_NOT_FOUND", "no such refund"),
            Error::NoChannel(m) => {
                AppError::unprocessable("CHANNEL_UNAVAILABLE", format!("no channel for {m}"))
            }
            Error::Channel(ChannelError::Transport(m)) => {
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, "CHANNEL_UNAVAILABLE", m)
            }
            Error::Channel(ChannelError::Rejected { code, message }) => AppError::new(
                StatusCode::BAD_GATEWAY,
                "CHANNEL_REJECTED",
                format!("{code}: {message}"),
            ),
            Error::Channel(ChannelError::Unavailable { code, message, .. }) => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CHANNEL_UNAVAILABLE",
                format!("{code}: {message}"),
            ),
            // The channel cannot do it at all (an abnormal refund on WeChat Pay API v2): the
            // message says where it is done instead.
            Error::Channel(ChannelError::Unsupported(m)) => {
                AppError::unprocessable("CHANNEL_UNSUPPORTED", m)
            }
            Error::RefundState { status, .. } => {
                AppError::conflict("REFUND_STATE", format!("the refund is {status}"))
            }
            other => AppError::internal(other),
        }
    }
}

impl From<crate::random::RandomError> for AppError {
    fn from(e: crate::random::RandomError) -> Self {
        AppError::internal(e)
    }
}

impl From<crate::providers::ChoiceError> for AppError {
    fn from(e: crate::providers::ChoiceError) -> Self {
        use crate::providers::ChoiceError;
        let message = e.to_string();
        match e {
            ChoiceError::UnknownMethod(_) => AppError::bad_request("METHOD_INVALID", message),
            ChoiceError::TestMoney | ChoiceError::NotServed { .. } => {
                AppError::unprocessable("METHOD_INVALID", message)
            }
            ChoiceError::NoSuchChannel(_) | ChoiceError::MethodUnavailable(_) => {
                AppError::unprocessable("CHANNEL_UNAVAILABLE", message)
            }
            ChoiceError::MethodRequired(_) => AppError::unprocessable("METHOD_REQUIRED", message),
        }
    }
}

/// A JSON request body whose rejection is an [`AppError`] (`{code, message}`, like every other
/// error): `415 CONTENT_TYPE_INVALID` without a JSON content type, `400 INVALID_JSON` for a body
/// that is not JSON, `422 INVALID_REQUEST` for JSON of the wrong shape (the message says which
/// field), `413 BODY_TOO_LARGE` over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(AppJson(value)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> AppError {
    let message = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CONTENT_TYPE_INVALID",
            "send the body as application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => AppError::bad_request("INVALID_JSON", message),
        JsonRejection::JsonDataError(_) => AppError::unprocessable("INVALID_REQUEST", message),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "the body is too large",
        ),
        _ => AppError::bad_request("INVALID_REQUEST", message),
    }
}
