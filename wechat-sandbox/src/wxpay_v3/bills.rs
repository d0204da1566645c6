//! Bills: `GET /v3/bill/tradebill` and `GET /v3/bill/fundflowbill` answer a `download_url` and
//! the file's SHA-1; the file (the same rows as v2's bills, gzip-compressed when asked) is
//! fetched from `download_url` with a signed request within five minutes. The file itself is not
//! signed, as WeChat's is not.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha1::{Digest, Sha1};

use super::platform::BillFile;
use super::{Answer, V3Error, authenticated, param, reply, v3_error};
use crate::settlement::bills;
use crate::state::{hex32, now};
use crate::{SandboxState, lock};

/// How long a download URL works.
const LINK_SECS: i64 = 300;

/// `YYYY-MM-DD` → `yyyyMMdd`.
fn bill_date(q: &HashMap<String, String>) -> Result<String, V3Error> {
    let d = q
        .get("bill_date")
        .ok_or_else(|| param("缺少参数 bill_date"))?;
    let b = d.as_bytes();
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !ok {
        return Err(param("bill_date 格式为 YYYY-MM-DD"));
    }
    Ok(d.replace('-', ""))
}

fn no_bill() -> V3Error {
    v3_error(
        StatusCode::BAD_REQUEST,
        "NO_STATEMENT_EXIST",
        "请求的账单文件不存在",
    )
}

/// Keeps `text` (gzipped when `gzip`) behind a new token; the link and hash.
fn publish(
    state: &SandboxState,
    mch_id: &str,
    text: &str,
    gzip: bool,
) -> Result<serde_json::Value, V3Error> {
    let bytes = if gzip {
        bills::gzip(text).map_err(|e| {
            v3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SYSTEM_ERROR",
                e.to_string(),
            )
        })?
    } else {
        text.as_bytes().to_vec()
    };
    let hash: String = Sha1::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let token = hex32();
    let at = now();
    let mut v3 = lock(&state.v3);
    v3.bill_files.retain(|_, f| f.expires_at > at);
    v3.bill_files.insert(
        token.clone(),
        BillFile {
            mch_id: mch_id.to_owned(),
            bytes,
            expires_at: at + LINK_SECS,
        },
    );
    Ok(json!({
        "hash_type": "SHA1",
        "hash_value": hash,
        "download_url": format!("{}/v3/billdownload/file?token={token}", state.config.public_url),
    }))
}

fn gzip_asked(q: &HashMap<String, String>) -> Result<bool, V3Error> {
    match q.get("tar_type").map(String::as_str) {
        None => Ok(false),
        Some("GZIP") => Ok(true),
        Some(other) => Err(param(format!("tar_type {other} 无效 (GZIP)"))),
    }
}

/// A bill request: authenticated, its date and compression read, the file made by `make` (from
/// the merchant id and the `yyyyMMdd` date; `Ok(None)`: no bill) and published.
fn bill_link(
    state: &SandboxState,
    q: &HashMap<String, String>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    make: impl FnOnce(&str, &str) -> Result<Option<String>, V3Error>,
) -> Answer {
    let req = authenticated(state, method, uri, headers, &Bytes::new())?;
    let date = bill_date(q)?;
    let gzip = gzip_asked(q)?;
    let text = make(&req.merchant.mch_id, &date)?.ok_or_else(no_bill)?;
    Ok((
        StatusCode::OK,
        Some(publish(state, &req.merchant.mch_id, &text, gzip)?),
    ))
}

/// `GET /v3/bill/tradebill?bill_date=…[&bill_type=ALL|SUCCESS|REFUND][&tar_type=GZIP]`.
pub(super) async fn trade_bill(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = bill_link(&state, &q, &method, &uri, &headers, |mch, date| {
        let bill_type = q.get("bill_type").map_or("ALL", String::as_str);
        if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND") {
            return Err(param(format!("bill_type {bill_type} 无效")));
        }
        if state.faults.take_bill_not_ready() {
            return Err(v3_error(
                StatusCode::BAD_REQUEST,
                "STATEMENT_CREATING",
                "账单生成中，请稍后再试",
            ));
        }
        Ok(bills::trade_bill(&state, mch, date, bill_type))
    });
    reply(&state, &headers, answer)
}

/// `GET /v3/bill/fundflowbill?bill_date=…[&account_type=BASIC|OPERATION|FEES][&tar_type=GZIP]`.
pub(super) async fn fund_flow_bill(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = bill_link(&state, &q, &method, &uri, &headers, |mch, date| {
        let account = q.get("account_type").map_or("BASIC", String::as_str);
        if !matches!(account, "BASIC" | "OPERATION" | "FEES") {
            return Err(param(format!("account_type {account} 无效")));
        }
        Ok(bills::fund_flow_bill(&state, mch, date, account))
    });
    reply(&state, &headers, answer)
}

/// `GET /v3/billdownload/file?token=…`: the file, to the merchant it was made for, while the
/// link is valid.
pub(super) async fn file(
    State(state): State<Arc<SandboxState>>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let found = authenticated(&state, &method, &uri, &headers, &Bytes::new()).and_then(|req| {
        let token = q.get("token").ok_or_else(|| param("缺少参数 token"))?;
        lock(&state.v3)
            .bill_files
            .get(token)
            .filter(|f| f.mch_id == req.merchant.mch_id && f.expires_at > now())
            .map(|f| f.bytes.clone())
            .ok_or_else(|| {
                v3_error(
                    StatusCode::NOT_FOUND,
                    "RESOURCE_NOT_EXISTS",
                    "下载链接无效或已过期",
                )
            })
    });
    match found {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) => reply(&state, &headers, Err(e)),
    }
}
