//! The WeChat Pay API v3 gateway (JSON): every request's `Authorization` signature is verified
//! with the merchant's public key (`401 SIGN_ERROR` otherwise), and every answer is signed —
//! with the sandbox's WeChat Pay public key (`Wechatpay-Serial` = its `PUB_KEY_ID_…`), or for a
//! merchant in platform-certificate mode with the current platform certificate (its serial
//! number; `GET /v3/certificates` lists them, `POST /sandbox/wechatpay-rotate` makes a new one).
//! Notifications are JSON with an `AEAD_AES_256_GCM` resource encrypted with the merchant's API
//! v3 key, signed again for each delivery attempt, retried on WeChat's schedule until the app
//! answers 2xx.
//!
//! | file | endpoints |
//! |---|---|
//! | `transactions` | `POST /v3/pay/transactions/{jsapi,app,h5,native}`, query by either number, close; payment notifications; `POST /v3/pay/transactions/codepay` (a buyer's payment code, [`crate::payment_codes`]) and `…/out-trade-no/{no}/reverse` |
//! | `partner` | the same under `/v3/pay/partner/transactions/…` for a service provider's sub-merchants |
//! | `profit_sharing` | `/v3/profitsharing/…`: receivers, sharing orders, unfreeze, returns, amounts left; the ledgers |
//! | `refunds` | `POST /v3/refund/domestic/refunds`, query, `…/apply-abnormal-refund`; refund notifications |
//! | `bills` | `GET /v3/bill/tradebill`, `GET /v3/bill/fundflowbill`, the file at `download_url` |
//! | `transfers` | `/v3/fund-app/mch-transfer/transfer-bills` create, query, cancel; transfer notifications |
//! | `combine` | combined payments: `POST /v3/combine-transactions/{jsapi,native,app,h5}`, query, close; one notification for all its orders |
//! | `complaints` | consumer complaints 2.0 under `/v3/merchant-service/…` (list, detail, negotiation, response, complete, refund progress, notification URL, images) and `/v3/merchant/media/upload`; complaint notifications |
//! | `platform` | `GET /v3/certificates`, the signing keys |
//!
//! Orders share the v2 order book (`/sandbox/pay` pays either, `/sandbox/refund-complete` ends a
//! refund of either). Faults (`POST /sandbox/faults`) name a v3 API by its path, optionally after
//! its method: `{"api": "POST /v3/refund/domestic/refunds", "code": "NOT_ENOUGH"}`.

mod bills;
pub(crate) mod combine;
pub mod complaints;
pub mod key_switch;
mod partner;
mod platform;
pub mod profit_sharing;
mod refunds;
mod transactions;
mod transfers;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use wechat_pay::v3::RequestSignature;

use crate::SandboxState;
use crate::config::MerchantV3;
use crate::faults::{BAD_SIGNATURE, Stage};
use crate::notifier::{Ack, AttemptHeaders, Delivery, WECHAT_SCHEDULE};
use crate::state::{hex32, now, wechat_time};

pub(crate) use platform::V3State;
pub use platform::{CertificateError, PlatformCertificate, rotate_platform_certificate};
pub(crate) use refunds::refund_notification;
pub use transactions::notification;
pub use transfers::{TransferOutcome, finish_transfer};

/// The largest v3 request body.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The routes.
pub fn routes(state: &Arc<SandboxState>) -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/v3/pay/transactions/{kind}", post(transactions::create))
        .route(
            "/v3/pay/transactions/out-trade-no/{no}",
            get(transactions::query_by_out_trade_no),
        )
        .route(
            "/v3/pay/transactions/id/{id}",
            get(transactions::query_by_id),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}/close",
            post(transactions::close),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{no}/reverse",
            post(transactions::reverse),
        )
        .route("/v3/pay/partner/transactions/{kind}", post(partner::create))
        .route(
            "/v3/pay/partner/transactions/out-trade-no/{no}",
            get(partner::query_by_out_trade_no),
        )
        .route(
            "/v3/pay/partner/transactions/id/{id}",
            get(partner::query_by_id),
        )
        .route(
            "/v3/pay/partner/transactions/out-trade-no/{no}/close",
            post(partner::close),
        )
        .route(
            "/v3/profitsharing/receivers/add",
            post(profit_sharing::add_receiver),
        )
        .route(
            "/v3/profitsharing/receivers/delete",
            post(profit_sharing::delete_receiver),
        )
        .route("/v3/profitsharing/orders", post(profit_sharing::create))
        .route(
            "/v3/profitsharing/orders/unfreeze",
            post(profit_sharing::unfreeze),
        )
        .route("/v3/profitsharing/orders/{no}", get(profit_sharing::query))
        .route(
            "/v3/profitsharing/return-orders",
            post(profit_sharing::create_return),
        )
        .route(
            "/v3/profitsharing/return-orders/{no}",
            get(profit_sharing::query_return),
        )
        .route(
            "/v3/profitsharing/transactions/{id}/amounts",
            get(profit_sharing::amounts),
        )
        .route("/v3/refund/domestic/refunds", post(refunds::create))
        .route("/v3/refund/domestic/refunds/{no}", get(refunds::query))
        .route(
            "/v3/refund/domestic/refunds/{id}/apply-abnormal-refund",
            post(refunds::abnormal),
        )
        .route("/v3/bill/tradebill", get(bills::trade_bill))
        .route("/v3/bill/fundflowbill", get(bills::fund_flow_bill))
        .route("/v3/billdownload/file", get(bills::file))
        .route(
            "/v3/fund-app/mch-transfer/transfer-bills",
            post(transfers::create),
        )
        .route(
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}",
            get(transfers::query),
        )
        .route(
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{no}/cancel",
            post(transfers::cancel),
        )
        .route("/v3/combine-transactions/{kind}", post(combine::create))
        .route(
            "/v3/combine-transactions/out-trade-no/{no}",
            get(combine::query),
        )
        .route(
            "/v3/combine-transactions/out-trade-no/{no}/close",
            post(combine::close),
        )
        .route("/v3/merchant-service/complaints-v2", get(complaints::list))
        .route(
            "/v3/merchant-service/complaints-v2/{id}",
            get(complaints::detail),
        )
        .route(
            "/v3/merchant-service/complaints-v2/{id}/negotiation-historys",
            get(complaints::history),
        )
        .route(
            "/v3/merchant-service/complaints-v2/{id}/response",
            post(complaints::respond),
        )
        .route(
            "/v3/merchant-service/complaints-v2/{id}/complete",
            post(complaints::complete),
        )
        .route(
            "/v3/merchant-service/complaints-v2/{id}/update-refund-progress",
            post(complaints::refund_progress),
        )
        .route(
            "/v3/merchant-service/complaint-notifications",
            get(complaints::notify_url)
                .post(complaints::notify_url)
                .put(complaints::notify_url)
                .delete(complaints::notify_url),
        )
        .route(
            "/v3/merchant-service/images/upload",
            post(complaints::upload),
        )
        .route("/v3/merchant/media/upload", post(complaints::upload))
        .route("/v3/merchant-service/images/{id}", get(complaints::image))
        .route("/v3/certificates", get(platform::certificates))
        .layer(middleware::from_fn_with_state(Arc::clone(state), faults))
}

/// A v3 error: WeChat's HTTP status and `{code, message}`.
#[derive(Debug)]
pub(crate) struct V3Error {
    status: StatusCode,
    code: String,
    message: String,
}

pub(crate) fn v3_error(status: StatusCode, code: &str, message: impl Into<String>) -> V3Error {
    V3Error {
        status,
        code: code.to_owned(),
        message: message.into(),
    }
}

pub(crate) fn param(message: impl Into<String>) -> V3Error {
    v3_error(StatusCode::BAD_REQUEST, "PARAM_ERROR", message)
}

/// A query string's pairs.
pub(crate) fn query_pairs(query: Option<&str>) -> std::collections::BTreeMap<String, String> {
    serde_urlencoded::from_str(query.unwrap_or_default()).unwrap_or_default()
}

/// A sub-merchant that is not the service provider's (受理关系不存在).
pub(crate) fn no_relation() -> V3Error {
    v3_error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        "受理关系不存在：特约商户不属于该服务商",
    )
}

/// The HTTP status WeChat answers an error `code` with.
fn status_of(code: &str) -> StatusCode {
    match code {
        "SYSTEM_ERROR" | "BANK_ERROR" | "BANKERROR" => StatusCode::INTERNAL_SERVER_ERROR,
        "FREQUENCY_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "NOT_ENOUGH" | "NO_AUTH" | "TRADE_ERROR" | "RULE_LIMIT" | "USER_ACCOUNT_ABNORMAL" => {
            StatusCode::FORBIDDEN
        }
        "ORDER_NOT_EXIST" | "RESOURCE_NOT_EXISTS" | "NOT_FOUND" => StatusCode::NOT_FOUND,
        "SIGN_ERROR" => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What a handler answers: a status and a JSON body (none for 204), or an error.
pub(crate) type Answer = Result<(StatusCode, Option<Value>), V3Error>;

/// The request's path and query, as signed.
pub(crate) fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// The merchant a request names in its `Authorization` (unverified: only to choose the key the
/// answer is signed with, as WeChat does by the merchant's mode).
fn named_merchant<'a>(state: &'a SandboxState, headers: &HeaderMap) -> Option<&'a MerchantV3> {
    let mchid = auth_field(headers, "mchid")?;
    state.config.merchants_v3.iter().find(|m| m.mch_id == mchid)
}

fn auth_field(headers: &HeaderMap, name: &str) -> Option<String> {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let fields = auth.strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
    fields.split(',').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.trim_matches('"').to_owned())
    })
}

/// `answer`, signed for the merchant the request names.
pub(crate) fn reply(state: &SandboxState, request: &HeaderMap, answer: Answer) -> Response {
    let requested = request
        .get(wechat_pay::v3::signing::headers::SERIAL)
        .and_then(|v| v.to_str().ok());
    let signer = platform::answer_signer(state, named_merchant(state, request), requested);
    let (status, body) = match answer {
        Ok(ok) => ok,
        Err(e) => (
            e.status,
            Some(json!({"code": e.code, "message": e.message})),
        ),
    };
    let text = body.as_ref().map(Value::to_string).unwrap_or_default();
    let mut response = (status, text.clone()).into_response();
    let h = response.headers_mut();
    if body.is_some() {
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in signer.headers(&text) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

/// Checks a request's `Authorization` (`WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
/// signature=…,timestamp=…,serial_no=…`) against the merchant's public key: the merchant it is
/// from, or WeChat's `401 SIGN_ERROR`.
pub(crate) fn authenticate(
    state: &SandboxState,
    method: &str,
    path_and_query: &str,
    request_headers: &HeaderMap,
    body: &[u8],
) -> Result<MerchantV3, V3Error> {
    let refuse = |why: &str| {
        v3_error(
            StatusCode::UNAUTHORIZED,
            "SIGN_ERROR",
            format!("签名错误 ({why})"),
        )
    };
    let auth = request_headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse("no Authorization header"))?;
    if !auth.starts_with("WECHATPAY2-SHA256-RSA2048 ") {
        return Err(refuse("not WECHATPAY2-SHA256-RSA2048"));
    }
    let field = |name: &str| auth_field(request_headers, name);
    let (Some(mchid), Some(nonce), Some(signature), Some(timestamp), Some(serial)) = (
        field("mchid"),
        field("nonce_str"),
        field("signature"),
        field("timestamp"),
        field("serial_no"),
    ) else {
        return Err(refuse("Authorization lacks a field"));
    };
    let merchant = state
        .config
        .merchants_v3
        .iter()
        .find(|m| m.mch_id == mchid)
        .ok_or_else(|| refuse("unknown mchid"))?;
    if merchant.serial_no != serial {
        return Err(refuse("unknown serial_no"));
    }
    let ts: i64 = timestamp.parse().map_err(|_| refuse("bad timestamp"))?;
    if (now() - ts).abs() > 300 {
        return Err(refuse("timestamp expired"));
    }
    let message = RequestSignature::message(
        method,
        path_and_query,
        ts,
        &nonce,
        &String::from_utf8_lossy(body),
    );
    if !merchant.public_key.verifies(message.as_bytes(), &signature) {
        return Err(refuse("signature mismatch"));
    }
    Ok(merchant.clone())
}

/// Whether `app_id` is bound to merchant `mch_id` (a merchant may be configured once per app).
pub(crate) fn app_bound(state: &SandboxState, mch_id: &str, app_id: &str) -> bool {
    state
        .config
        .merchants_v3
        .iter()
        .any(|m| m.mch_id == mch_id && m.app_id == app_id)
}

/// A request, authenticated: the merchant and the JSON body (`{}` when empty).
pub(crate) struct Authenticated {
    pub merchant: MerchantV3,
    pub body: Value,
}

pub(crate) fn authenticated(
    state: &SandboxState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Authenticated, V3Error> {
    let merchant = authenticate(state, method.as_str(), &path_and_query(uri), headers, body)?;
    let body = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|e| param(format!("请求体不是合法的JSON: {e}")))?
    };
    Ok(Authenticated { merchant, body })
}

/// A required non-empty text field of a JSON body.
pub(crate) fn text(body: &Value, field: &str) -> Result<String, V3Error> {
    body[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| param(format!("缺少参数 {field}")))
}

/// An encrypted field of a request (`user_name`, `bank_account`…): the request must name the
/// key it was encrypted to in `Wechatpay-Serial`, and it must decrypt with that key.
pub(crate) fn decrypt_field(
    state: &SandboxState,
    headers: &HeaderMap,
    value: &str,
) -> Result<String, V3Error> {
    let serial = headers
        .get("Wechatpay-Serial")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| param("加密字段需要 Wechatpay-Serial 请求头"))?;
    let key = platform::decryption_key(state, serial).ok_or_else(|| {
        param(format!(
            "Wechatpay-Serial {serial} 不是有效的微信支付公钥或平台证书"
        ))
    })?;
    key.decrypt(value)
        .map_err(|_| param("加密字段无法解密 (encrypted field does not decrypt)"))
}

/// `unix` as RFC 3339 in UTC+8, as v3 writes times.
pub(crate) fn rfc3339(unix: i64) -> String {
    let t = wechat_time(unix);
    format!(
        "{}-{}-{}T{}:{}:{}+08:00",
        &t[..4],
        &t[4..6],
        &t[6..8],
        &t[8..10],
        &t[10..12],
        &t[12..14]
    )
}

/// A v3 notification to `url` of merchant `mch_id`: `plain` encrypted with its API v3 key into
/// `resource`, signed again for each attempt; preceded by a signature probe (a copy with a
/// deliberately wrong signature, which the app must refuse) at the configured probe rate.
pub(crate) struct V3Notification<'a> {
    pub kind: &'static str,
    pub reference: &'a str,
    pub url: &'a str,
    pub event_type: &'static str,
    pub summary: &'static str,
    pub original_type: &'static str,
    pub plain: Value,
}

pub(crate) fn notify(state: &SandboxState, mch_id: &str, n: V3Notification<'_>) {
    let Some(merchant) = state
        .config
        .merchants_v3
        .iter()
        .find(|m| m.mch_id == mch_id)
    else {
        return;
    };
    let nonce: String = hex32().chars().take(12).collect();
    let Ok(ciphertext) = wechat_pay::v3::aead::encrypt(
        &merchant.api_v3_key,
        &n.plain.to_string(),
        &nonce,
        n.original_type,
    ) else {
        return;
    };
    let body = json!({
        "id": format!("EV-{}", hex32()),
        "create_time": rfc3339(now()),
        "resource_type": "encrypt-resource",
        "event_type": n.event_type,
        "summary": n.summary,
        "resource": {
            "original_type": n.original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": n.original_type,
            "nonce": nonce,
        },
    })
    .to_string();
    let signer = platform::notification_signer(state, merchant);
    if platform::probe_now(state.config.sign_probe_rate) {
        let probe = signer.clone();
        state.notifier.send(Delivery {
            kind: "wechat.sign_probe",
            reference: n.reference.to_owned(),
            url: n.url.to_owned(),
            content_type: "application/json",
            body: body.clone(),
            ack: Ack::Status2xx,
            schedule: &[0],
            headers: Some(AttemptHeaders(Arc::new(move |body: &str| {
                probe.probe_headers(body)
            }))),
        });
    }
    state.notifier.send(Delivery {
        kind: n.kind,
        reference: n.reference.to_owned(),
        url: n.url.to_owned(),
        content_type: "application/json",
        body,
        ack: Ack::Status2xx,
        schedule: WECHAT_SCHEDULE,
        headers: Some(AttemptHeaders(Arc::new(move |body: &str| {
            signer.headers(body)
        }))),
    });
}

/// Whether a fault's `api` names this request: a path prefix (`/v3/refund/domestic/refunds`),
/// optionally after a method (`POST /v3/refund/domestic/refunds`).
fn fault_names(api: &str, method: &Method, path: &str) -> bool {
    let (want_method, prefix) = match api.split_once(' ') {
        Some((m, p)) => (Some(m), p.trim()),
        None => (None, api),
    };
    prefix.starts_with("/v3/")
        && path.starts_with(prefix)
        && want_method.is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
}

/// Faults set through the control API (see [`crate::faults`]): the error instead of the call, or
/// instead of its answer once carried out. Only an authentic request gets one.
async fn faults(
    State(state): State<Arc<SandboxState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BYTES + 1).await else {
        return reply(
            &state,
            &parts.headers,
            Err(param("请求体过大 (request body too large)")),
        );
    };
    let path = parts.uri.path().to_owned();
    let authentic = || {
        authenticate(
            &state,
            parts.method.as_str(),
            &path_and_query(&parts.uri),
            &parts.headers,
            &body,
        )
        .is_ok()
    };
    let injected = |code: String| {
        reply(
            &state,
            &parts.headers,
            Err(v3_error(
                status_of(&code),
                &code,
                format!("sandbox fault: {code}"),
            )),
        )
    };
    let names = |api: &str| fault_names(api, &parts.method, &path);
    let mut unverifiable = false;
    if authentic() {
        if let Some(code) = state.faults.take_api_matching(names, Stage::Before) {
            if code != BAD_SIGNATURE {
                return injected(code);
            }
            unverifiable = true;
        }
    }
    let headers = parts.headers.clone();
    let method = parts.method.clone();
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(body),
        ))
        .await;
    match state
        .faults
        .take_api_matching(|api| fault_names(api, &method, &path), Stage::After)
    {
        Some(code) if code == BAD_SIGNATURE => with_broken_signature(response),
        None if unverifiable => with_broken_signature(response),
        Some(code) => reply(
            &state,
            &headers,
            Err(v3_error(
                status_of(&code),
                &code,
                format!("sandbox fault: {code}"),
            )),
        ),
        None => response,
    }
}

/// The same answer with a `Wechatpay-Signature` of the right shape that does not match.
fn with_broken_signature(mut response: Response) -> Response {
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 256]);
    if let Ok(v) = HeaderValue::from_str(&forged) {
        response
            .headers_mut()
            .insert(wechat_pay::v3::signing::headers::SIGNATURE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_name_v3_apis_by_path_and_method() {
        let post = Method::POST;
        let get = Method::GET;
        let refunds = "/v3/refund/domestic/refunds";
        assert!(fault_names(refunds, &post, refunds));
        assert!(fault_names(refunds, &get, "/v3/refund/domestic/refunds/R1"));
        assert!(fault_names(
            "POST /v3/refund/domestic/refunds",
            &post,
            refunds
        ));
        assert!(!fault_names(
            "POST /v3/refund/domestic/refunds",
            &get,
            "/v3/refund/domestic/refunds/R1"
        ));
        // v2 names never match a v3 path.
        assert!(!fault_names("refund", &post, refunds));
        assert_eq!(status_of("NOT_ENOUGH"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("SYSTEM_ERROR"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status_of("ORDER_NOT_EXIST"), StatusCode::NOT_FOUND);
        assert_eq!(status_of("INVALID_REQUEST"), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn times_are_rfc3339_in_utc_plus_8() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00+08:00");
    }
}
