//! The WeChat Pay API v3 gateway (JSON): every request's `Authorization` signature is verified
//! with the merchant's public key (`401 SIGN_ERROR` otherwise), every answer is signed with the
//! sandbox's own WeChat Pay key (`Wechatpay-Serial` = its `PUB_KEY_ID_…`), and notifications are
//! JSON with an `AEAD_AES_256_GCM` resource encrypted with the merchant's API v3 key, signed for
//! each delivery attempt.
//!
//! Orders share the v2 order book (`/sandbox/pay` pays either). Served so far: transactions
//! (JSAPI, APP, H5, Native), query by either number, close.

mod transactions;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use wechat_pay::v3::RequestSignature;

use crate::SandboxState;
use crate::config::MerchantV3;
use crate::state::{hex32, now};

pub use transactions::notification;

/// The routes.
pub fn routes() -> Router<Arc<SandboxState>> {
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
}

/// A v3 error: WeChat's HTTP status and `{code, message}`.
#[derive(Debug)]
pub(crate) struct V3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

pub(crate) fn v3_error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> V3Error {
    V3Error {
        status,
        code,
        message: message.into(),
    }
}

/// The four signature headers WeChat Pay puts on `body`, signed now with the sandbox's key.
pub(crate) fn signature_headers(
    w: &crate::config::WechatPayIdentity,
    body: &str,
) -> Vec<(&'static str, String)> {
    wechat_pay::v3::signing::wechat_pay_headers(&w.key, &w.key_id, body, now(), &hex32())
}

/// A signed answer: `status` with a JSON body (or none for 204).
pub(crate) fn signed(state: &SandboxState, status: StatusCode, body: Option<&Value>) -> Response {
    let text = body.map(Value::to_string).unwrap_or_default();
    let mut response = (status, text.clone()).into_response();
    let h = response.headers_mut();
    if body.is_some() {
        h.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in signature_headers(&state.config.wechatpay, &text) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

impl V3Error {
    pub(crate) fn respond(self, state: &SandboxState) -> Response {
        signed(
            state,
            self.status,
            Some(&json!({"code": self.code, "message": self.message})),
        )
    }
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
    let fields = auth
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .ok_or_else(|| refuse("not WECHATPAY2-SHA256-RSA2048"))?;
    let field = |name: &str| {
        fields.split(',').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_owned())
        })
    };
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
