//! [`Client`]: the merchant's side of the open API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::signing::{self, RequestParts, headers};
use crate::{Error, Fen, Secret};

/// A payment to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatePayment {
    /// Your order number (unique among your orders).
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// What is bought.
    pub subject: String,
    /// A pay method (`wechat_native`, `wechat_jsapi`, `alipay_qr`, `sandbox`…); without it (and
    /// without `channel`) the buyer chooses on the cashier page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A channel (`wechat`, `alipay`, `sandbox`) with its default method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The buyer's openid (WeChat JSAPI / Mini Program).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_id: Option<String>,
    /// Seconds until the payment expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Your data, returned in callbacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

impl CreatePayment {
    /// A payment of `amount` fen for `subject` under your number `out_trade_no`.
    pub fn new(out_trade_no: impl Into<String>, amount: Fen, subject: impl Into<String>) -> Self {
        CreatePayment {
            out_trade_no: out_trade_no.into(),
            amount,
            subject: subject.into(),
            method: None,
            channel: None,
            open_id: None,
            expires_in: None,
            metadata: None,
        }
    }

    /// The pay method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// The channel.
    pub fn channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// The buyer's openid.
    pub fn open_id(mut self, open_id: impl Into<String>) -> Self {
        self.open_id = Some(open_id.into());
        self
    }

    /// Expiry in seconds.
    pub fn expires_in(mut self, seconds: u64) -> Self {
        self.expires_in = Some(seconds);
        self
    }

    /// Your data.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// A refund to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateRefund {
    /// The payment's order number.
    pub out_trade_no: String,
    /// Your refund number (refunds are idempotent by it).
    pub out_refund_no: String,
    /// The amount.
    pub amount: Fen,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CreateRefund {
    /// A refund of `amount` fen of `out_trade_no` under your number `out_refund_no`.
    pub fn new(
        out_trade_no: impl Into<String>,
        out_refund_no: impl Into<String>,
        amount: Fen,
    ) -> Self {
        CreateRefund {
            out_trade_no: out_trade_no.into(),
            out_refund_no: out_refund_no.into(),
            amount,
            reason: None,
        }
    }

    /// The reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// A payment as the platform reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PaymentView {
    /// Your order number.
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// What is bought.
    pub subject: String,
    /// `PENDING`, `PAID`, `REFUNDING`, `PARTIALLY_REFUNDED`, `REFUNDED`, `CLOSED`, `FAILED`.
    pub status: String,
    /// The channel, once chosen.
    pub channel: Option<String>,
    /// The pay method, once chosen.
    pub method: Option<String>,
    /// Refunded so far.
    pub refunded_amount: Fen,
    /// The platform's fee of what is still paid (a platform taking its fee by profit sharing;
    /// 0 otherwise, and before the payment is paid).
    #[serde(default)]
    pub fee: Fen,
    /// What you net: the amount, less refunds and the fee (0 before the payment is paid).
    #[serde(default)]
    pub net: Fen,
    /// The channel's transaction id, once paid.
    pub channel_transaction_id: Option<String>,
    /// What the front end does to pay (`{"type": "qr_code", …}`), once a method is chosen.
    pub pay: Option<serde_json::Value>,
    /// The token of the cashier page.
    pub payment_token: String,
    /// The cashier page.
    pub cashier_url: String,
    /// Your data.
    pub metadata: serde_json::Value,
}

/// A refund as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundView {
    /// Your refund number.
    pub out_refund_no: String,
    /// The payment's order number.
    pub out_trade_no: String,
    /// The amount.
    pub amount: Fen,
    /// `PENDING` (sent, or to be sent again with the same number), `ABNORMAL` (taken, but the
    /// money could not reach the buyer: the platform's operator resolves it), `SUCCEEDED`,
    /// `FAILED` (refused for good: nothing moved).
    pub status: String,
    /// Why it is not settled yet, why it failed, or (ABNORMAL) what happened and what to do.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A payer's WeChat Pay complaint about one of your payments, as the platform reports it (in a
/// `complaint.updated` callback's `data` too).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ComplaintView {
    /// WeChat's number of the complaint.
    pub complaint_id: String,
    /// Your order number.
    pub out_trade_no: String,
    /// `PENDING` (answer it in time: WeChat penalises merchants who do not), `PROCESSING`,
    /// `PROCESSED`.
    pub state: String,
    /// Whether you must act (not handled, or the payer wrote again).
    pub needs_action: bool,
    /// What the payer wrote and asked (`detail`, `apply_refund_amount`, `problem_type`…).
    pub summary: serde_json::Value,
    /// Its changes so far (a callback's id names the version it tells).
    pub version: i64,
    /// The negotiation so far (`GET /v1/complaints/{id}` only).
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
}

/// Your decision on the refund a complaint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundProgress {
    /// The refund is made (with [`Client::create_refund`]) within this many days (0 to 5).
    Approve {
        /// Days.
        launch_refund_day: u32,
    },
    /// No refund, and why.
    Reject {
        /// Why not.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct Complaints {
    complaints: Vec<ComplaintView>,
}

/// The open-API client of one merchant. Cheap to clone; `Debug` never shows the secret or salt.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    secret: Secret,
    salt: Secret,
    base_url: String,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("app_id", &self.inner.app_id)
            .field("secret", &self.inner.secret)
            .field("salt", &self.inner.salt)
            .field("base_url", &self.inner.base_url)
            .finish()
    }
}

/// Configures a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    app_id: String,
    secret: Secret,
    salt: Secret,
    base_url: String,
    timeout: Duration,
}

impl ClientBuilder {
    /// The platform's base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The request timeout (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if self.app_id.is_empty() || self.secret.expose().is_empty() {
            return Err(Error::Config("app_id and secret are required".into()));
        }
        reqwest::Url::parse(&self.base_url).map_err(|e| Error::Config(format!("base_url: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                secret: self.secret,
                salt: self.salt,
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                http,
            }),
        })
    }
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    message: String,
}

impl Client {
    /// A client for `app_id` with its `secret` and `salt`.
    pub fn builder(app_id: impl Into<String>, secret: Secret, salt: Secret) -> ClientBuilder {
        ClientBuilder {
            app_id: app_id.into(),
            secret,
            salt,
            base_url: "http://127.0.0.1:8090".to_owned(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends a signed request; decodes a 2xx JSON body as `T`.
    pub async fn request<T: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Error> {
        let i = &self.inner;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let timestamp = crate::unix_now();
        let nonce = signing::nonce();
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let parts = RequestParts {
            method,
            path: path_only,
            query,
            timestamp,
            nonce: &nonce,
            body: body.as_bytes(),
        };
        let signature = signing::sign_request(&parts, &i.secret, &i.salt);
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Error::Config(e.to_string()))?;
        let mut req = i
            .http
            .request(method, format!("{}{path}", i.base_url))
            .header(headers::APP_ID, &i.app_id)
            .header(headers::TIMESTAMP, timestamp.to_string())
            .header(headers::NONCE, &nonce)
            .header(headers::SIGNATURE, signature);
        if !body.is_empty() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        if let Some(key) = idempotency_key {
            req = req.header(headers::IDEMPOTENCY_KEY, key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Transport(e.without_url()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport(e.without_url()))?;
        if !(200..300).contains(&status) {
            return Err(match serde_json::from_slice::<ApiError>(&bytes) {
                Ok(e) => Error::Api {
                    status,
                    code: e.code,
                    message: e.message,
                },
                Err(_) => Error::Api {
                    status,
                    code: "HTTP_ERROR".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(Error::Decode)
    }

    fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, Error> {
        serde_json::to_value(value).map_err(|e| Error::Config(e.to_string()))
    }

    /// Creates a payment (`POST /v1/payments`). With an idempotency key, a retry returns the
    /// first answer.
    pub async fn create_payment_idempotent(
        &self,
        payment: &CreatePayment,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, Error> {
        self.request(
            "POST",
            "/v1/payments",
            Some(&Self::json(payment)?),
            idempotency_key,
        )
        .await
    }

    /// Creates a payment with a fresh idempotency key.
    pub async fn create_payment(&self, payment: &CreatePayment) -> Result<PaymentView, Error> {
        self.create_payment_idempotent(payment, Some(&signing::nonce()))
            .await
    }

    /// A payment (`GET /v1/payments/{out_trade_no}`).
    pub async fn get_payment(&self, out_trade_no: &str) -> Result<PaymentView, Error> {
        self.request(
            "GET",
            &format!("/v1/payments/{}", encode(out_trade_no)),
            None,
            None,
        )
        .await
    }

    /// Closes an unpaid payment (`POST /v1/payments/{out_trade_no}/close`).
    pub async fn close_payment(&self, out_trade_no: &str) -> Result<PaymentView, Error> {
        self.request(
            "POST",
            &format!("/v1/payments/{}/close", encode(out_trade_no)),
            None,
            Some(&signing::nonce()),
        )
        .await
    }

    /// Refunds (`POST /v1/refunds`), idempotent by `out_refund_no`.
    pub async fn create_refund(&self, refund: &CreateRefund) -> Result<RefundView, Error> {
        self.request(
            "POST",
            "/v1/refunds",
            Some(&Self::json(refund)?),
            Some(&signing::nonce()),
        )
        .await
    }

    /// The payers' complaints about your payments, newest first (`GET /v1/complaints`).
    pub async fn complaints(&self) -> Result<Vec<ComplaintView>, Error> {
        let list: Complaints = self.request("GET", "/v1/complaints", None, None).await?;
        Ok(list.complaints)
    }

    /// A complaint as WeChat has it now, with its negotiation (`GET /v1/complaints/{id}`).
    pub async fn complaint(&self, complaint_id: &str) -> Result<ComplaintView, Error> {
        self.request(
            "GET",
            &format!("/v1/complaints/{}", encode(complaint_id)),
            None,
            None,
        )
        .await
    }

    /// Answers the payer (`POST /v1/complaints/{id}/response`, 1 to 200 characters).
    pub async fn respond_to_complaint(
        &self,
        complaint_id: &str,
        text: &str,
    ) -> Result<ComplaintView, Error> {
        self.request(
            "POST",
            &format!("/v1/complaints/{}/response", encode(complaint_id)),
            Some(&serde_json::json!({ "text": text })),
            None,
        )
        .await
    }

    /// Tells WeChat your refund decision (`POST /v1/complaints/{id}/refund-progress`).
    pub async fn complaint_refund_progress(
        &self,
        complaint_id: &str,
        progress: &RefundProgress,
    ) -> Result<ComplaintView, Error> {
        let body = match progress {
            RefundProgress::Approve { launch_refund_day } => {
                serde_json::json!({"action": "approve", "launch_refund_day": launch_refund_day})
            }
            RefundProgress::Reject { reason } => {
                serde_json::json!({"action": "reject", "reason": reason})
            }
        };
        self.request(
            "POST",
            &format!("/v1/complaints/{}/refund-progress", encode(complaint_id)),
            Some(&body),
            None,
        )
        .await
    }

    /// Marks a complaint handled (`POST /v1/complaints/{id}/complete`).
    pub async fn complete_complaint(&self, complaint_id: &str) -> Result<ComplaintView, Error> {
        self.request(
            "POST",
            &format!("/v1/complaints/{}/complete", encode(complaint_id)),
            None,
            None,
        )
        .await
    }

    /// A refund (`GET /v1/refunds/{out_refund_no}`).
    pub async fn get_refund(&self, out_refund_no: &str) -> Result<RefundView, Error> {
        self.request(
            "GET",
            &format!("/v1/refunds/{}", encode(out_refund_no)),
            None,
            None,
        )
        .await
    }
}

/// Order and refund numbers are `[A-Za-z0-9_-]`; anything else is percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
