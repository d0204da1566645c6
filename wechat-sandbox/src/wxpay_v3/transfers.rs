//! Transfers to users (`/v3/fund-app/mch-transfer/transfer-bills`): create (idempotent by
//! `out_bill_no`; the payee's name, when given, must decrypt with the key `Wechatpay-Serial`
//! names), query, cancel before the payee confirms. A created transfer waits for the payee
//! (`WAIT_USER_CONFIRM`); `POST /sandbox/transfer-confirm` plays the payee. Every end
//! (`SUCCESS`, `FAIL`, `CANCELLED`) is notified as `MCHTRANSFER.BILL.FINISHED`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::{
    Answer, V3Error, V3Notification, authenticated, decrypt_field, notify, param, reply, rfc3339,
    text, v3_error,
};
use crate::state::{digits, key, now, wechat_time};
use crate::{SandboxState, lock};

/// From this amount (2,000 yuan) the payee's real name is required.
const NAME_REQUIRED_FROM: u64 = 200_000;

/// A transfer.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    mch_id: String,
    app_id: String,
    out_bill_no: String,
    transfer_bill_no: String,
    openid: String,
    amount: u64,
    state: String,
    fail_reason: Option<String>,
    notify_url: Option<String>,
    fingerprint: String,
    created_at: i64,
    updated_at: i64,
}

/// How the payee answers a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransferOutcome {
    /// Confirmed: the money arrives.
    Success,
    /// It fails (the payee's account cannot receive it).
    Fail,
}

fn record(t: &Transfer) -> Value {
    let mut v = json!({
        "mch_id": t.mch_id,
        "out_bill_no": t.out_bill_no,
        "transfer_bill_no": t.transfer_bill_no,
        "appid": t.app_id,
        "state": t.state,
        "transfer_amount": t.amount,
        "openid": t.openid,
        "create_time": rfc3339(t.created_at),
        "update_time": rfc3339(t.updated_at),
    });
    if let Some(r) = &t.fail_reason {
        v["fail_reason"] = json!(r);
    }
    if t.state == "WAIT_USER_CONFIRM" {
        v["package_info"] = json!(format!("sandbox-package-{}", t.transfer_bill_no));
    }
    v
}

fn not_found() -> V3Error {
    v3_error(StatusCode::NOT_FOUND, "NOT_FOUND", "记录不存在")
}

/// `POST /v3/fund-app/mch-transfer/transfer-bills`.
pub(super) async fn create(
    State(state): State<Arc<SandboxState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer: Answer = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let b = &req.body;
        let app_id = text(b, "appid")?;
        if !super::app_bound(&state, &req.merchant.mch_id, &app_id) {
            return Err(v3_error(
                StatusCode::BAD_REQUEST,
                "APPID_MCHID_NOT_MATCH",
                "appid和mch_id不匹配",
            ));
        }
        let out_bill_no = text(b, "out_bill_no")?;
        if !(5..=32).contains(&out_bill_no.len())
            || !out_bill_no.bytes().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(param("out_bill_no: 5 to 32 letters or digits"));
        }
        text(b, "transfer_scene_id")?;
        let openid = text(b, "openid")?;
        text(b, "transfer_remark")?;
        let amount = b["transfer_amount"]
            .as_u64()
            .filter(|a| *a >= 10)
            .ok_or_else(|| param("transfer_amount: at least 10 fen (0.1 yuan)"))?;
        match b["user_name"].as_str() {
            Some(name) => {
                decrypt_field(&state, &headers, name)?;
            }
            None if amount >= NAME_REQUIRED_FROM => {
                return Err(param("转账金额 >= 2000 元时 user_name 必填"));
            }
            None => {}
        }
        let fingerprint = {
            let mut f = b.clone();
            // The encrypted name differs on every request (OAEP is randomized).
            f.as_object_mut().map(|o| o.remove("user_name"));
            f.to_string()
        };
        let mut v3 = lock(&state.v3);
        let k = key(&req.merchant.mch_id, &out_bill_no);
        if let Some(existing) = v3.transfers.get(&k) {
            if existing.fingerprint != fingerprint {
                return Err(v3_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST",
                    "商户单号重复，且请求参数与原请求不一致",
                ));
            }
            return Ok((StatusCode::OK, Some(record(existing))));
        }
        let at = now();
        let t = Transfer {
            mch_id: req.merchant.mch_id.clone(),
            app_id,
            out_bill_no,
            transfer_bill_no: format!("1330{}{}", &wechat_time(at)[..8], digits(20)),
            openid,
            amount,
            state: "WAIT_USER_CONFIRM".to_owned(),
            fail_reason: None,
            notify_url: b["notify_url"].as_str().map(str::to_owned),
            fingerprint,
            created_at: at,
            updated_at: at,
        };
        let answer = record(&t);
        v3.transfers.insert(k, t);
        Ok((StatusCode::OK, Some(answer)))
    })();
    reply(&state, &headers, answer)
}

/// `GET /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}`.
pub(super) async fn query(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer: Answer =
        authenticated(&state, &method, &uri, &headers, &Bytes::new()).and_then(|req| {
            lock(&state.v3)
                .transfers
                .get(&key(&req.merchant.mch_id, &no))
                .map(|t| (StatusCode::OK, Some(record(t))))
                .ok_or_else(not_found)
        });
    reply(&state, &headers, answer)
}

/// `POST …/out-bill-no/{out_bill_no}/cancel`: before the payee confirmed.
pub(super) async fn cancel(
    State(state): State<Arc<SandboxState>>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cancelled = (|| {
        let req = authenticated(&state, &method, &uri, &headers, &body)?;
        let mut v3 = lock(&state.v3);
        let t = v3
            .transfers
            .get_mut(&key(&req.merchant.mch_id, &no))
            .ok_or_else(not_found)?;
        match t.state.as_str() {
            "WAIT_USER_CONFIRM" | "ACCEPTED" => {
                t.state = "CANCELLED".to_owned();
                t.updated_at = now();
                Ok((t.clone(), true))
            }
            "CANCELLED" => Ok((t.clone(), false)),
            _ => Err(v3_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "转账单状态不允许撤销",
            )),
        }
    })();
    let answer = cancelled.map(|(t, newly)| {
        if newly {
            transfer_notification(&state, &t);
        }
        let v = json!({
            "out_bill_no": t.out_bill_no,
            "transfer_bill_no": t.transfer_bill_no,
            "state": t.state,
            "update_time": rfc3339(t.updated_at),
        });
        (StatusCode::OK, Some(v))
    });
    reply(&state, &headers, answer)
}

/// The payee answers a transfer waiting for them; its state now (`None`: no such transfer). A
/// transfer no longer waiting is left as it is.
pub async fn finish_transfer(
    state: &SandboxState,
    out_bill_no: &str,
    outcome: TransferOutcome,
) -> Option<String> {
    let (t, newly) = {
        let mut v3 = lock(&state.v3);
        let t = v3
            .transfers
            .values_mut()
            .find(|t| t.out_bill_no == out_bill_no)?;
        let newly = matches!(t.state.as_str(), "WAIT_USER_CONFIRM" | "ACCEPTED");
        if newly {
            match outcome {
                TransferOutcome::Success => t.state = "SUCCESS".to_owned(),
                TransferOutcome::Fail => {
                    t.state = "FAIL".to_owned();
                    t.fail_reason = Some("PAYEE_ACCOUNT_ABNORMAL".to_owned());
                }
            }
            t.updated_at = now();
        }
        (t.clone(), newly)
    };
    if newly {
        transfer_notification(state, &t);
    }
    Some(t.state)
}

fn transfer_notification(state: &SandboxState, t: &Transfer) {
    let Some(url) = &t.notify_url else { return };
    notify(
        state,
        &t.mch_id,
        V3Notification {
            kind: "wechat.transfer",
            reference: &t.out_bill_no,
            url,
            event_type: "MCHTRANSFER.BILL.FINISHED",
            summary: "商家转账单据终态通知",
            original_type: "mch_payment",
            plain: record(t),
        },
    );
}
