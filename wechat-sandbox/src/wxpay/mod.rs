//! The WeChat Pay v2 gateway: the real paths (and the same paths under the sandbox prefixes
//! `/sandboxnew` and `/xdc/apiv2sandbox`), signed XML in and out.
//!
//! Every request goes through `WxRequest::parse`: size, XML, merchant and app id, signature
//! (MD5 or HMAC-SHA256, with the sandbox key under a prefix). Failures there are answered as
//! WeChat does, `return_code=FAIL` with a message; business failures are signed
//! `result_code=FAIL` replies with WeChat's `err_code`.

mod bills;
mod orders;
mod refunds;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use wechat_pay::{ApiKey, Params, SignType};

use super::SandboxState;
use super::config::Merchant;
use crate::faults::{BAD_SIGNATURE, Stage};
use crate::server::TlsClient;
use crate::settlement::Changes;

pub(crate) use orders::{charge_code, notify_payment};
pub(crate) use refunds::notify_refund;

/// Whether a request came in under a sandbox prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefixed(pub bool);

/// The largest request body accepted, as WeChat's limit.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The routes, at the real paths and under both sandbox prefixes.
pub fn routes(state: &Arc<SandboxState>) -> Router<Arc<SandboxState>> {
    let endpoints = || {
        Router::new()
            .route("/pay/unifiedorder", post(orders::unified_order))
            .route("/pay/orderquery", post(orders::order_query))
            .route("/pay/closeorder", post(orders::close_order))
            .route("/pay/micropay", post(orders::micropay))
            .merge(
                Router::new()
                    .route("/secapi/pay/reverse", post(orders::reverse))
                    .route("/secapi/pay/refund", post(refunds::refund))
                    .layer(middleware::from_fn(client_certificate_required)),
            )
            .route("/pay/refundquery", post(refunds::refund_query))
            .route("/pay/downloadbill", post(bills::download_bill))
            .route("/pay/downloadfundflow", post(bills::download_fund_flow))
            .layer(middleware::from_fn_with_state(Arc::clone(state), faults))
    };
    let prefixed = || {
        endpoints()
            .route("/pay/getsignkey", post(sign_key))
            .layer(Extension(Prefixed(true)))
    };
    endpoints()
        .layer(Extension(Prefixed(false)))
        .nest("/sandboxnew", prefixed())
        .nest("/xdc/apiv2sandbox", prefixed())
}

/// Over TLS, `/secapi/*` needs the merchant certificate, as WeChat's gateway does (its answer
/// without one is nginx's 400). Over plain HTTP (a local emulator) there is nothing to check.
async fn client_certificate_required(
    tls: Option<Extension<TlsClient>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    match tls {
        Some(Extension(TlsClient { certificate: false })) => (
            axum::http::StatusCode::BAD_REQUEST,
            "400 Bad Request: No required SSL certificate was sent",
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

/// Faults set through the control API: a business error instead of the call, or instead of its
/// answer once it was carried out (see [`crate::faults`]). Signed like any answer.
async fn faults(
    State(state): State<Arc<SandboxState>>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let api = request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let prefixed = request
        .extensions()
        .get::<Prefixed>()
        .copied()
        .unwrap_or(Prefixed(false));
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BYTES + 1).await else {
        return protocol_response("请求体过大 (request body too large)");
    };
    let injected = |code: String| match WxRequest::parse(&state, prefixed, &body) {
        Ok(req) => Some(req.respond(WxReply::Injected(code))),
        // Not even a valid request: the endpoint answers it as usual.
        Err(_) => None,
    };
    let mut unverifiable = false;
    if let Some(code) = state.faults.take_api(&api, Stage::Before) {
        if code == BAD_SIGNATURE {
            unverifiable = true;
        } else if let Some(response) = injected(code) {
            return response;
        }
    }
    let response = next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(body.clone()),
        ))
        .await;
    match state.faults.take_api(&api, Stage::After) {
        Some(code) if code == BAD_SIGNATURE => with_broken_sign(response).await,
        Some(code) => injected(code).unwrap_or(response),
        None if unverifiable => with_broken_sign(response).await,
        None => response,
    }
}

/// The same answer, its `sign` no longer matching (the first hex digit changed).
async fn with_broken_sign(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return protocol_response("sandbox fault: unreadable answer");
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let broken = match text.find("<sign>") {
        Some(at) => {
            let mut i = at + "<sign>".len();
            if text[i..].starts_with("<![CDATA[") {
                i += "<![CDATA[".len();
            }
            let first = if text[i..].starts_with('0') { "1" } else { "0" };
            format!("{}{first}{}", &text[..i], &text[i + 1..])
        }
        None => text,
    };
    Response::from_parts(parts, axum::body::Body::from(broken))
}

/// The sandbox key of a merchant: what `getsignkey` hands out and what prefixed requests are
/// signed with.
pub fn sandbox_key(merchant: &Merchant) -> ApiKey {
    use md5::{Digest, Md5};
    let digest = Md5::digest(format!("sandbox:{}", merchant.api_key.expose()).as_bytes());
    ApiKey::new(
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    )
}

/// A verified request.
pub(crate) struct WxRequest {
    pub params: Params,
    pub merchant: Merchant,
    pub key: ApiKey,
    pub sign_type: SignType,
    pub sandbox: bool,
}

/// What an endpoint answers.
pub(crate) enum WxReply {
    /// `result_code=SUCCESS` with these fields.
    Ok(Params),
    /// `result_code=FAIL` with `err_code` and `err_code_des`.
    Business(&'static str, String),
    /// `return_code=FAIL` with `return_msg`.
    Protocol(String),
    /// `result_code=FAIL` with a fault's `err_code`.
    Injected(String),
    /// A file (bills).
    File(Vec<u8>),
}

pub(crate) fn protocol(msg: impl Into<String>) -> WxReply {
    WxReply::Protocol(msg.into())
}

impl WxRequest {
    /// Checks everything WeChat checks before looking at the endpoint's own fields.
    pub fn parse(state: &SandboxState, prefixed: Prefixed, body: &[u8]) -> Result<Self, WxReply> {
        if body.is_empty() {
            return Err(protocol("post数据为空"));
        }
        if body.len() > MAX_REQUEST_BYTES {
            return Err(protocol("请求体过大 (request body too large)"));
        }
        let params = Params::from_xml(body).map_err(|e| protocol(format!("XML格式错误: {e}")))?;
        let mch_id = params.get("mch_id").unwrap_or_default();
        if mch_id.is_empty() {
            return Err(protocol("缺少参数 mch_id"));
        }
        let candidates: Vec<&Merchant> = state
            .config
            .merchants
            .iter()
            .filter(|m| m.mch_id == mch_id)
            .collect();
        if candidates.is_empty() {
            return Err(protocol("mch_id参数格式错误 (unknown mch_id)"));
        }
        let app_id = params.get("appid");
        let merchant = match app_id {
            // getsignkey carries no appid.
            None => candidates[0],
            Some(a) => *candidates
                .iter()
                .find(|m| m.app_id == a)
                .ok_or_else(|| protocol("appid和mch_id不匹配"))?,
        }
        .clone();
        let sign_type = match params.get("sign_type") {
            None | Some("") | Some("MD5") => SignType::Md5,
            Some("HMAC-SHA256") => SignType::HmacSha256,
            Some(_) => return Err(protocol("sign_type参数错误")),
        };
        if params.get("nonce_str").unwrap_or_default().is_empty() {
            return Err(protocol("缺少参数 nonce_str"));
        }
        let key = if prefixed.0 {
            sandbox_key(&merchant)
        } else {
            merchant.api_key.clone()
        };
        if params.get("sign").is_none() {
            return Err(protocol("缺少参数 sign"));
        }
        if params.verify(&key, sign_type).is_err() {
            return Err(protocol("签名错误"));
        }
        Ok(WxRequest {
            params,
            merchant,
            key,
            sign_type,
            sandbox: prefixed.0,
        })
    }

    /// A required field, or the `return_code=FAIL` WeChat answers.
    pub fn required(&self, field: &str) -> Result<&str, WxReply> {
        match self.params.get(field) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(protocol(format!("缺少参数 {field}"))),
        }
    }

    /// An optional field (empty counts as absent).
    pub fn optional(&self, field: &str) -> Option<&str> {
        self.params.get(field).filter(|v| !v.is_empty())
    }

    /// A required amount in fen: a positive integer.
    pub fn amount(&self, field: &str) -> Result<u64, WxReply> {
        let v = self.required(field)?;
        match v.parse::<wechat_pay::Fen>() {
            Ok(f) if f.as_u64() > 0 => Ok(f.as_u64()),
            _ => Err(WxReply::Business(
                "PARAM_ERROR",
                format!("{field}参数错误: must be a positive integer of fen"),
            )),
        }
    }

    /// The signed reply.
    pub fn respond(&self, reply: WxReply) -> Response {
        let mut p = match reply {
            WxReply::Protocol(msg) => return protocol_response(&msg),
            WxReply::File(bytes) => {
                return ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes)
                    .into_response();
            }
            WxReply::Ok(p) => {
                let mut p = p;
                p.insert("result_code", "SUCCESS");
                p
            }
            WxReply::Business(code, des) => business_params(code, &des),
            WxReply::Injected(code) => business_params(&code, "sandbox fault"),
        };
        p.insert("return_code", "SUCCESS");
        p.insert("return_msg", "OK");
        p.insert("appid", self.merchant.app_id.as_str());
        p.insert("mch_id", self.merchant.mch_id.as_str());
        p.insert("nonce_str", super::state::hex32());
        if let Some(d) = self.optional("device_info") {
            if !p.contains_key("device_info") {
                p.insert("device_info", d);
            }
        }
        p.sign(&self.key, self.sign_type);
        xml_response(p.to_xml())
    }
}

fn business_params(code: &str, des: &str) -> Params {
    let mut p = Params::new();
    p.insert("result_code", "FAIL");
    p.insert("err_code", code);
    p.insert("err_code_des", des);
    p
}

pub(crate) fn xml_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

pub(crate) fn protocol_response(msg: &str) -> Response {
    let mut p = Params::new();
    p.insert("return_code", "FAIL");
    p.insert("return_msg", msg);
    xml_response(p.to_xml())
}

/// Runs `f` on a verified request, persists what it changed, and answers.
pub(crate) async fn run(
    state: &SandboxState,
    prefixed: Prefixed,
    body: &[u8],
    f: impl FnOnce(&SandboxState, &WxRequest, &mut Changes) -> Result<WxReply, WxReply>,
) -> Response {
    let req = match WxRequest::parse(state, prefixed, body) {
        Ok(req) => req,
        Err(WxReply::Protocol(msg)) => return protocol_response(&msg),
        Err(_) => return protocol_response("invalid request"),
    };
    let mut changes = Changes::default();
    let reply = f(state, &req, &mut changes).unwrap_or_else(|e| e);
    state.persist_wechat(&changes).await;
    req.respond(reply)
}

/// `{prefix}/pay/getsignkey`: signed with the real key (MD5), answered unsigned.
async fn sign_key(
    State(state): State<Arc<SandboxState>>,
    Extension(_): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    // The request is signed with the real key even though it arrives under the prefix.
    match WxRequest::parse(&state, Prefixed(false), &body) {
        Err(WxReply::Protocol(msg)) => protocol_response(&msg),
        Err(_) => protocol_response("invalid request"),
        Ok(req) => {
            let mut p = Params::new();
            p.insert("return_code", "SUCCESS");
            p.insert("return_msg", "ok");
            p.insert("mch_id", req.merchant.mch_id.as_str());
            p.insert("sandbox_signkey", sandbox_key(&req.merchant).expose());
            xml_response(p.to_xml())
        }
    }
}
