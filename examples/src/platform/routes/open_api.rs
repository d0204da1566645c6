//! The signed open API: `/v1/payments` and `/v1/refunds`.
//!
//! Every POST accepts an `Idempotency-Key` header with Stripe's semantics: the first answer
//! under a key — errors included — is stored and replayed (with `Idempotent-Replayed: true`);
//! the same key with another request is `422 IDEMPOTENCY_KEY_REUSED`; while the first request
//! runs, a repeat gets `409 IDEMPOTENCY_KEY_IN_PROGRESS` — until the first request's lease runs
//! out (`IDEMPOTENCY_LEASE_SECS`, it crashed or was cut off): then a repeat takes the key over.
//! A 5xx answer is not stored, so the request can be retried under the same key. Keys expire
//! after `IDEMPOTENCY_TTL_SECS` (a day) and are pruned.

use std::future::Future;
use std::sync::Arc;

use aggregate_pay::{Error, Fen};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use merchant_client::signing::headers;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    answer, payment_of, payment_view, refund_notify_url, resolve_method, start_payment,
    valid_number,
};
use crate::clock::unix_now;
use crate::error::AppError;
use crate::platform::PlatformState;
use crate::platform::auth::SignedMerchant;
use crate::platform::db::{Idempotent, Order, RefundRecord};
use crate::random::token;

/// The longest a payment may stay open: 30 days.
const MAX_EXPIRES_IN: u64 = 30 * 24 * 3600;

/// The open API's routes.
pub fn routes() -> Router<Arc<PlatformState>> {
    Router::new()
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{out_trade_no}", get(get_payment))
        .route("/v1/payments/{out_trade_no}/close", post(close_payment))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/refunds/{out_refund_no}", get(get_refund))
}

type Answer = Result<(StatusCode, Value), AppError>;

/// Runs `run` under the request's idempotency key, if it has one.
async fn idempotent<Fut>(
    state: &PlatformState,
    signed: &SignedMerchant,
    request_headers: &HeaderMap,
    route: &str,
    run: impl FnOnce() -> Fut,
) -> Response
where
    Fut: Future<Output = Answer>,
{
    let Some(key) = request_headers.get(headers::IDEMPOTENCY_KEY) else {
        return respond(answer(run().await), false);
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return AppError::bad_request(
                "IDEMPOTENCY_KEY_INVALID",
                "Idempotency-Key must be 1 to 128 visible ASCII characters",
            )
            .into_response();
        }
    };
    let merchant = &signed.merchant.app_id;
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    hasher.update(&signed.body);
    let hash = hex::encode(hasher.finalize());
    match state
        .db
        .reserve_idempotency(
            merchant,
            &key,
            &hash,
            unix_now(),
            state.settings.idempotency,
        )
        .await
    {
        Err(e) => AppError::internal(e).into_response(),
        Ok(Idempotent::Mismatch) => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "IDEMPOTENCY_KEY_REUSED",
            "this Idempotency-Key was used with a different request",
        )
        .into_response(),
        Ok(Idempotent::InFlight) => AppError::conflict(
            "IDEMPOTENCY_KEY_IN_PROGRESS",
            "a request with this Idempotency-Key is still running",
        )
        .into_response(),
        Ok(Idempotent::Replay(status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body = serde_json::from_str(&body).unwrap_or(Value::Null);
            respond((status, body), true)
        }
        Ok(Idempotent::Reserved) => {
            let (status, body) = answer(run().await);
            let stored = if status.is_server_error() {
                state.db.release_idempotency(merchant, &key).await
            } else {
                state
                    .db
                    .complete_idempotency(merchant, &key, status.as_u16(), &body.to_string())
                    .await
            };
            if let Err(e) = stored {
                // The operation happened; only its replay is lost. Say so in the log and answer.
                tracing::error!(error = %e, "idempotent answer not stored");
            }
            respond((status, body), false)
        }
    }
}

fn respond((status, body): (StatusCode, Value), replayed: bool) -> Response {
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request("INVALID_REQUEST", format!("invalid JSON body: {e}")))
}

/// Checks a merchant-supplied order or refund number.
fn number(field: &str, value: &str) -> Result<(), AppError> {
    if valid_number(value) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "INVALID_REQUEST",
            format!("{field} must be 1 to 32 of A-Z a-z 0-9 _ -"),
        ))
    }
}

/// An amount in fen: more than zero, and storable.
fn positive_amount(fen: u64) -> Result<Fen, AppError> {
    // More than zero, and within what a BIGINT column stores.
    i64::try_from(fen)
        .ok()
        .filter(|a| *a > 0)
        .map(|_| Fen::new(fen))
        .ok_or_else(|| {
            AppError::bad_request("AMOUNT_INVALID", "amount must be a positive number of fen")
        })
}

/// `POST /v1/payments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePaymentBody {
    out_trade_no: String,
    amount: u64,
    subject: String,
    method: Option<String>,
    channel: Option<String>,
    open_id: Option<String>,
    expires_in: Option<u64>,
    metadata: Option<Value>,
}

async fn create_payment(
    State(state): State<Arc<PlatformState>>,
    request_headers: HeaderMap,
    signed: SignedMerchant,
) -> Response {
    idempotent(
        &state,
        &signed,
        &request_headers,
        "POST /v1/payments",
        || do_create_payment(&state, &signed),
    )
    .await
}

async fn do_create_payment(state: &Arc<PlatformState>, signed: &SignedMerchant) -> Answer {
    let req: CreatePaymentBody = parse(&signed.body)?;
    number("out_trade_no", &req.out_trade_no)?;
    let amount = positive_amount(req.amount)?;
    let subject = req.subject.trim();
    if subject.is_empty() || subject.chars().count() > 128 {
        return Err(AppError::bad_request(
            "INVALID_REQUEST",
            "subject must be 1 to 128 characters",
        ));
    }
    // Refused before the order exists: test money in live mode, an unconfigured provider.
    let method = resolve_method(state, req.method.as_deref(), req.channel.as_deref())?;
    if method.is_some_and(|m| m.needs_open_id()) && req.open_id.is_none() {
        return Err(AppError::bad_request(
            "OPEN_ID_REQUIRED",
            "this pay method needs the buyer's open_id",
        ));
    }
    if req.expires_in.is_some_and(|s| s == 0 || s > MAX_EXPIRES_IN) {
        return Err(AppError::bad_request(
            "INVALID_REQUEST",
            "expires_in must be 1 second to 30 days",
        ));
    }
    let now = unix_now();
    let merchant_id = signed.merchant.app_id.clone();
    let order = Order {
        merchant_id: merchant_id.clone(),
        out_trade_no: req.out_trade_no.clone(),
        platform_no: format!("P{}", token(12)?),
        token: token(16)?,
        amount,
        subject: subject.to_owned(),
        method: None,
        open_id: req.open_id.clone(),
        expires_at: req.expires_in.map(|s| now + i64::try_from(s).unwrap_or(0)),
        metadata: req.metadata.clone().unwrap_or(Value::Null).to_string(),
        payment_id: None,
        pay_action: None,
        closed: false,
    };
    let inserted = state
        .db
        .insert_order(&order, now)
        .await
        .map_err(AppError::internal)?;
    let order = if inserted {
        order
    } else {
        // The number is taken: the same request again is answered with the order as it is;
        // anything else is a conflict.
        let existing = state
            .db
            .order(&merchant_id, &req.out_trade_no)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(|| AppError::internal("an order vanished"))?;
        let same = existing.amount == order.amount
            && existing.subject == order.subject
            && existing.open_id == order.open_id
            && existing.metadata == order.metadata
            && (method.is_none() || existing.method.is_none() || existing.method == method);
        if !same {
            return Err(AppError::conflict(
                "OUT_TRADE_NO_USED",
                "out_trade_no was already used with different parameters",
            ));
        }
        existing
    };
    let (order, payment) = match method {
        Some(m) => {
            let (o, p) = start_payment(state, &order, m).await?;
            (o, Some(p))
        }
        None => {
            let p = payment_of(state, &order).await?;
            (order, p)
        }
    };
    let status = if inserted {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, payment_view(state, &order, payment.as_ref())))
}

async fn merchant_order(
    state: &PlatformState,
    merchant_id: &str,
    out_trade_no: &str,
) -> Result<Order, AppError> {
    state
        .db
        .order(merchant_id, out_trade_no)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            AppError::not_found("PAYMENT_NOT_FOUND", "no payment with this out_trade_no")
        })
}

/// `GET /v1/payments/{out_trade_no}`.
async fn get_payment(
    State(state): State<Arc<PlatformState>>,
    Path(out_trade_no): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let order = merchant_order(&state, &signed.merchant.app_id, &out_trade_no).await?;
    let payment = payment_of(&state, &order).await?;
    Ok(Json(payment_view(&state, &order, payment.as_ref())))
}

/// `POST /v1/payments/{out_trade_no}/close`.
async fn close_payment(
    State(state): State<Arc<PlatformState>>,
    Path(out_trade_no): Path<String>,
    request_headers: HeaderMap,
    signed: SignedMerchant,
) -> Response {
    let route = format!("POST /v1/payments/{out_trade_no}/close");
    idempotent(&state, &signed, &request_headers, &route, || async {
        let order = merchant_order(&state, &signed.merchant.app_id, &out_trade_no).await?;
        // No payment yet: close the order itself, unless a method was chosen meanwhile.
        if payment_of(&state, &order).await?.is_none()
            && state
                .db
                .close_unpaid_order(&order)
                .await
                .map_err(AppError::internal)?
        {
            let order = merchant_order(&state, &signed.merchant.app_id, &out_trade_no).await?;
            return Ok((StatusCode::OK, payment_view(&state, &order, None)));
        }
        let payment = payment_of(&state, &order).await?.ok_or_else(|| {
            AppError::internal("an order has neither a payment nor a closable state")
        })?;
        let closed = state.payments.close(&payment.id).await?;
        let order = merchant_order(&state, &signed.merchant.app_id, &out_trade_no).await?;
        Ok((StatusCode::OK, payment_view(&state, &order, Some(&closed))))
    })
    .await
}

/// `POST /v1/refunds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRefundBody {
    out_trade_no: String,
    out_refund_no: String,
    amount: u64,
    reason: Option<String>,
}

async fn create_refund(
    State(state): State<Arc<PlatformState>>,
    request_headers: HeaderMap,
    signed: SignedMerchant,
) -> Response {
    idempotent(
        &state,
        &signed,
        &request_headers,
        "POST /v1/refunds",
        || do_create_refund(&state, &signed),
    )
    .await
}

/// A refund as merchants see it; `reason` says why it failed or, while ABNORMAL, what happened
/// and what to do.
fn refund_view(record: &RefundRecord, refund: &aggregate_pay::Refund) -> Value {
    let status = refund.status.as_str();
    json!({
        "reason": refund.last_error,
        "out_refund_no": record.out_refund_no,
        "out_trade_no": record.out_trade_no,
        "amount": record.amount,
        "status": status,
    })
}

async fn do_create_refund(state: &Arc<PlatformState>, signed: &SignedMerchant) -> Answer {
    let req: CreateRefundBody = parse(&signed.body)?;
    number("out_refund_no", &req.out_refund_no)?;
    let amount = positive_amount(req.amount)?;
    let merchant_id = &signed.merchant.app_id;
    let order = merchant_order(state, merchant_id, &req.out_trade_no).await?;
    let payment = payment_of(state, &order)
        .await?
        .ok_or_else(|| AppError::conflict("INVALID_STATE", "the payment was not paid"))?;
    let record = RefundRecord {
        merchant_id: merchant_id.clone(),
        out_refund_no: req.out_refund_no.clone(),
        out_trade_no: req.out_trade_no.clone(),
        platform_refund_no: format!("R{}", token(12)?),
        amount,
    };
    let now = unix_now();
    let record = if state
        .db
        .insert_refund(&record, now)
        .await
        .map_err(AppError::internal)?
    {
        record
    } else {
        // Refunds are idempotent by out_refund_no: the same refund again continues the first.
        let existing = state
            .db
            .refund(merchant_id, &req.out_refund_no)
            .await
            .map_err(AppError::internal)?
            .ok_or_else(|| AppError::internal("a refund vanished"))?;
        if existing.out_trade_no != record.out_trade_no || existing.amount != record.amount {
            return Err(AppError::conflict(
                "OUT_REFUND_NO_USED",
                "out_refund_no was already used with different parameters",
            ));
        }
        existing
    };
    let refund = state
        .payments
        .refund(
            &payment.id,
            &record.platform_refund_no,
            Fen::new(req.amount),
            req.reason.clone(),
            refund_notify_url(state, &payment.channel),
        )
        .await
        .map_err(|e| match e {
            Error::Invalid(m) => AppError::bad_request("REFUND_INVALID", m),
            other => other.into(),
        })?;
    Ok((StatusCode::OK, refund_view(&record, &refund)))
}

/// `GET /v1/refunds/{out_refund_no}`.
async fn get_refund(
    State(state): State<Arc<PlatformState>>,
    Path(out_refund_no): Path<String>,
    signed: SignedMerchant,
) -> Result<Json<Value>, AppError> {
    let record = state
        .db
        .refund(&signed.merchant.app_id, &out_refund_no)
        .await
        .map_err(AppError::internal)?
        .ok_or_else(|| {
            AppError::not_found("REFUND_NOT_FOUND", "no refund with this out_refund_no")
        })?;
    let refund = state
        .payments
        .get_refund(&record.platform_refund_no)
        .await?;
    Ok(Json(refund_view(&record, &refund)))
}
