//! The Alipay open gateway (`/gateway.do`): RSA2-verified requests, RSA2-signed responses, and
//! RSA2-signed form notifications with Alipay's retry schedule.
//!
//! `alipay.trade.precreate`, `query`, `close`, `refund` and `fastpay.refund.query` answer JSON
//! like Alipay; `page.pay`, `wap.pay` and `app.pay` (which a browser or the Alipay app opens)
//! answer a small cashier page whose button pays the trade. `alipay.data.dataservice.bill.
//! downloadurl.query` links to the day's bill (`bills`). `alipay.trade.create` (a Mini Program
//! trade for a known buyer) and `alipay.trade.cancel` (closes an unpaid trade, refunds a paid
//! one) live with the trades; transfers with their balance in `transfers`; buyer login
//! (`alipay.system.oauth.token`, `alipay.user.info.share`) in `oauth`; third-party apps acting
//! for merchants with `app_auth_token` in `app_auth`; settlement sharing in `settle`. Apps in
//! certificate mode are checked and answered as Alipay does in that mode (`certs`).

pub(crate) mod app_auth;
pub(crate) mod bills;
pub mod certs;
pub(crate) mod oauth;
pub(crate) mod settle;
mod trades;
pub mod transfers;

use std::collections::BTreeMap;
use std::sync::Arc;

use ::alipay::PublicKey as AlipayPublicKey;
use ::alipay::sign;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::SandboxState;
use crate::faults::{BAD_SIGNATURE, FUND_CHANGE_N, Stage};

pub use trades::{PayTradeError, close_waiting_trade, pay_trade};

/// The routes.
pub fn routes() -> Router<Arc<SandboxState>> {
    Router::new()
        .route("/gateway.do", get(gateway).post(gateway))
        .route("/sandbox/alipay/bill/{token}", get(bills::download))
}

/// A verified gateway request.
pub(crate) struct AliRequest {
    pub app_id: String,
    pub method: String,
    pub params: BTreeMap<String, String>,
    pub biz: Value,
    /// The app's AES key, when the request came encrypted (the answer goes back encrypted).
    pub encrypted_with: Option<::alipay::AesKey>,
    /// Third-party apps: the merchant whose `app_auth_token` the request carried.
    pub merchant: Option<String>,
}

/// An Alipay reply object (inside `…_response`).
pub(crate) enum AliReply {
    /// `code=10000` with these fields.
    Ok(Value),
    /// An error `code` / `msg` / `sub_code` / `sub_msg`.
    Fail(&'static str, &'static str, &'static str, String),
    /// `code=10003` (the buyer is confirming a payment-code payment) with these fields.
    Waiting(Value),
    /// An HTML page (page / wap / app payments).
    Page(String),
    /// A business failure with a fault's `sub_code`.
    Injected(String),
}

pub(crate) fn missing(what: &str) -> AliReply {
    AliReply::Fail(
        "40001",
        "Missing Required Arguments",
        "isv.missing-parameter",
        format!("缺少必选参数 {what}"),
    )
}

pub(crate) fn invalid(sub_code: &'static str, what: impl Into<String>) -> AliReply {
    AliReply::Fail("40002", "Invalid Arguments", sub_code, what.into())
}

pub(crate) fn business(sub_code: &'static str, what: impl Into<String>) -> AliReply {
    AliReply::Fail("40004", "Business Failed", sub_code, what.into())
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
fn response_key(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

async fn gateway(
    State(state): State<Arc<SandboxState>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for source in [query.as_deref().unwrap_or_default().as_bytes(), &body[..]] {
        match serde_urlencoded::from_bytes::<Vec<(String, String)>>(source) {
            Ok(pairs) => params.extend(pairs),
            Err(_) => {
                return signed(
                    &state.config.alipay_key,
                    None,
                    "error_response",
                    AliReply::Fail(
                        "40002",
                        "Invalid Arguments",
                        "isv.invalid-parameter",
                        "form decoding failed".into(),
                    ),
                    None,
                );
            }
        }
    }
    let method = params.get("method").cloned().unwrap_or_default();
    let key = if method.is_empty() {
        "error_response".to_owned()
    } else {
        response_key(&method)
    };
    let signer = state.alipay_signer(params.get("app_id").map(String::as_str).unwrap_or_default());
    let mut unverifiable = false;
    let mut encrypted_with = None;
    let reply = match verify(&state, params) {
        Err(reply) => reply,
        Ok(req) => match state.faults.take_api(&req.method, Stage::Before) {
            Some(code) if code == FUND_CHANGE_N => trades::unchanged_refund(&state, &req),
            Some(code) if code != BAD_SIGNATURE => AliReply::Injected(code),
            before => {
                unverifiable = before.is_some();
                encrypted_with = req.encrypted_with.clone();
                let reply = trades::dispatch(&state, &req).await;
                match state.faults.take_api(&req.method, Stage::After) {
                    Some(code) if code == BAD_SIGNATURE => {
                        unverifiable = true;
                        reply
                    }
                    Some(code) => AliReply::Injected(code),
                    None => reply,
                }
            }
        },
    };
    let response = signed(
        &signer.0,
        signer.1.as_deref(),
        &key,
        reply,
        encrypted_with.as_ref(),
    );
    if unverifiable {
        with_broken_sign(response).await
    } else {
        response
    }
}

/// The same answer signed over something else: its `sign` no longer matches.
async fn with_broken_sign(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let marker = "\"sign\":\"";
    let broken = match text.rfind(marker) {
        Some(at) => {
            let i = at + marker.len();
            let first = if text[i..].starts_with('A') { "B" } else { "A" };
            format!("{}{first}{}", &text[..i], &text[i + 1..])
        }
        None => text,
    };
    Response::from_parts(parts, axum::body::Body::from(broken))
}

fn verify(state: &SandboxState, params: BTreeMap<String, String>) -> Result<AliRequest, AliReply> {
    for f in [
        "app_id",
        "method",
        "sign",
        "sign_type",
        "timestamp",
        "charset",
    ] {
        if params.get(f).is_none_or(String::is_empty) {
            return Err(missing(f));
        }
    }
    let get = |f: &str| params.get(f).map(String::as_str).unwrap_or_default();
    if get("sign_type") != "RSA2" {
        return Err(invalid("isv.invalid-signature-type", "只支持 RSA2"));
    }
    if !get("charset").eq_ignore_ascii_case("utf-8") {
        return Err(invalid("isv.invalid-charset", "只支持 utf-8"));
    }
    let app = state
        .config
        .alipay_apps
        .iter()
        .find(|a| a.app_id == get("app_id"))
        .ok_or_else(|| invalid("isv.invalid-app-id", "无效的AppID参数"))?;
    let content = sign::canonical(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        sign::REQUEST_EXCLUDES,
    );
    verify_with(&app.public_key, &content, get("sign"))?;
    if let Some(pki) = &state.alipay_pki {
        pki.check_request(&app.app_id, &params)?;
    }
    let merchant = match params.get("app_auth_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(app_auth::merchant_of(state, &app.app_id, token)?),
    };
    // Content encryption: the signature covered the ciphertext; now it is read.
    let (encrypted_with, biz_text) = match params.get("encrypt_type").map(String::as_str) {
        None | Some("") => (None, params.get("biz_content").cloned()),
        Some("AES") => {
            let key = app
                .aes_key
                .clone()
                .ok_or_else(|| invalid("isv.missing-encrypt-key", "应用未配置 AES 密钥"))?;
            let plain = params
                .get("biz_content")
                .map(|c| key.decrypt(c))
                .transpose()
                .map_err(|_| invalid("isv.decryption-error", "解密出错，请检查 AES 密钥"))?;
            (Some(key), plain)
        }
        Some(_) => return Err(invalid("isv.invalid-encrypt-type", "只支持 AES")),
    };
    let biz = match biz_text {
        None => json!({}),
        Some(b) => serde_json::from_str(&b)
            .map_err(|_| invalid("isv.invalid-parameter", "biz_content 不是合法的 JSON"))?,
    };
    Ok(AliRequest {
        app_id: get("app_id").to_owned(),
        method: get("method").to_owned(),
        params: params.clone(),
        biz,
        encrypted_with,
        merchant,
    })
}

fn verify_with(key: &AlipayPublicKey, content: &str, sign: &str) -> Result<(), AliReply> {
    key.verify(content, sign).map_err(|_| {
        invalid(
            "isv.invalid-signature",
            "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
        )
    })
}

/// Serializes the reply object and signs its exact text with `key`, as Alipay does; for an
/// encrypted request, the object is encrypted with the app's key and the JSON string of
/// ciphertext is what is signed. In certificate mode the answer names the signing certificate.
fn signed(
    key: &::alipay::PrivateKey,
    cert_sn: Option<&str>,
    response_key: &str,
    reply: AliReply,
    encrypt: Option<&::alipay::AesKey>,
) -> Response {
    let object = match reply {
        AliReply::Page(html) => return Html(html).into_response(),
        AliReply::Ok(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("code".into(), json!("10000"));
                o.insert("msg".into(), json!("Success"));
            }
            v
        }
        AliReply::Waiting(mut v) => {
            if let Some(o) = v.as_object_mut() {
                o.insert("code".into(), json!("10003"));
                o.insert("msg".into(), json!("order success pay inprocess"));
            }
            v
        }
        AliReply::Fail(code, msg, sub_code, sub_msg) => {
            json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg})
        }
        AliReply::Injected(sub_code) => {
            json!({"code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": "sandbox fault"})
        }
    };
    let content = match encrypt {
        Some(key) => Value::String(key.encrypt(&object.to_string())).to_string(),
        None => object.to_string(),
    };
    let sign = key.sign(&content).unwrap_or_default();
    let cert_sn = cert_sn
        .map(|sn| format!(",\"alipay_cert_sn\":{}", Value::String(sn.to_owned())))
        .unwrap_or_default();
    let body = format!(
        "{{{}:{content}{cert_sn},\"sign\":{}}}",
        Value::String(response_key.to_owned()),
        Value::String(sign)
    );
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}
