//! Consumer complaints 2.0: a payer's complaint about a merchant's paid v3 order, filed on
//! demand (`POST /sandbox/complaints`), notified to the merchant's complaint URL
//! (`COMPLAINT.CREATE`, encrypted and signed like every v3 notification), and its negotiation
//! held as WeChat holds it: the merchant's answers (images uploaded first, the upload's signature
//! checked over its `meta` part and the file against the `sha256` it names), refund decision and
//! completion, each notified (`COMPLAINT.STATE_CHANGE`). A sub-merchant's complaint is its
//! service provider's to read, answer and hear (every sub-merchant's, or the one
//! `complainted_mchid` names). `GET /sandbox/complaints` shows them with every answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Answer, V3Error, V3Notification, authenticate, notify, param, path_and_query, query_pairs,
    reply, rfc3339, v3_error,
};
use crate::state::{digits, hex32, now};
use crate::{SandboxState, lock};

/// The largest image WeChat takes.
const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;

/// A complaint the sandbox holds.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SandboxComplaint {
    complaint_id: String,
    mch_id: String,
    /// The service provider of a sub-merchant's order: it reads, answers and hears the
    /// complaint (WeChat sends a service provider every sub-merchant's complaints).
    sp_mchid: Option<String>,
    created_at: i64,
    detail: String,
    state: &'static str,
    transaction_id: String,
    out_trade_no: String,
    amount: u64,
    problem_type: String,
    apply_refund_amount: Option<u64>,
    history: Vec<Value>,
    refund_decision: Option<Value>,
}

/// What the sandbox keeps of complaints.
#[derive(Debug, Default)]
pub(crate) struct ComplaintBook {
    complaints: BTreeMap<String, SandboxComplaint>,
    /// Each merchant's complaint notification URL.
    urls: BTreeMap<String, String>,
    /// Uploaded images: their merchant and bytes.
    images: BTreeMap<String, (String, Vec<u8>)>,
}

fn not_found() -> V3Error {
    v3_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "投诉单不存在")
}

impl SandboxComplaint {
    fn view(&self, base_url: &str) -> Value {
        let images: Vec<String> = self
            .history
            .iter()
            .filter(|h| h["operate_type"] == "USER_CREATE_COMPLAINT")
            .flat_map(|h| h["image_list"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(|s| format!("{base_url}{s}")))
            .collect();
        json!({
            "complaint_id": self.complaint_id,
            "complaint_time": rfc3339(self.created_at),
            "complaint_detail": self.detail,
            "complaint_state": self.state,
            "complainted_mchid": self.mch_id,
            "payer_phone": null,
            "complaint_order_info": [{
                "transaction_id": self.transaction_id,
                "out_trade_no": self.out_trade_no,
                "amount": self.amount,
            }],
            "complaint_full_refunded": false,
            "incoming_user_response": false,
            "user_complaint_times": 1,
            "complaint_media_list": if images.is_empty() { json!([]) } else {
                json!([{"media_type": "USER_COMPLAINT_IMAGE", "media_url": images}])
            },
            "problem_type": self.problem_type,
            "problem_description": "商品未出货",
            "apply_refund_amount": self.apply_refund_amount,
            "need_immediate_service": false,
        })
    }

    /// Whether merchant `mch_id` may read and answer it: the merchant complained about, or its
    /// service provider.
    fn visible_to(&self, mch_id: &str) -> bool {
        self.mch_id == mch_id || self.sp_mchid.as_deref() == Some(mch_id)
    }

    /// The merchant WeChat talks to about it: the service provider, if any.
    fn handler(&self) -> &str {
        self.sp_mchid.as_deref().unwrap_or(&self.mch_id)
    }

    fn record(&mut self, operator: &str, operate_type: &str, details: &str, images: &[String]) {
        let log_id = format!("{}-{}", self.complaint_id, self.history.len() + 1);
        self.history.push(json!({
            "log_id": log_id,
            "operator": operator,
            "operate_time": rfc3339(now()),
            "operate_type": operate_type,
            "operate_details": details,
            "image_list": images
                .iter()
                .map(|id| format!("/v3/merchant-service/images/{id}"))
                .collect::<Vec<_>>(),
        }));
    }
}

/// Sends a complaint notification to the merchant's URL, if it set one.
fn notify_complaint(state: &SandboxState, c: &SandboxComplaint, event: &'static str, action: &str) {
    let Some(url) = lock(&state.v3).complaints.urls.get(c.handler()).cloned() else {
        return;
    };
    let summary = if event == "COMPLAINT.CREATE" {
        "产生新投诉"
    } else {
        "投诉单状态变化"
    };
    notify(
        state,
        c.handler(),
        V3Notification {
            kind: "wechat.complaint",
            reference: &c.complaint_id,
            url: &url,
            event_type: event,
            summary,
            original_type: "complaint",
            plain: json!({
                "complaint_id": c.complaint_id,
                "action_type": action,
                "out_trade_no": c.out_trade_no,
                "complaint_time": rfc3339(c.created_at),
                "amount": c.amount,
            }),
        },
    );
}

/// Files a complaint about a paid v3 order `out_trade_no`: its id.
pub fn file_complaint(
    state: &SandboxState,
    out_trade_no: &str,
    detail: &str,
    refund_amount: Option<u64>,
) -> Option<String> {
    let order = lock(&state.wechat)
        .orders
        .values()
        .find(|o| o.out_trade_no == out_trade_no && o.sign_type == "RSA" && o.paid_at.is_some())
        .cloned()?;
    let at = now();
    let complaint = SandboxComplaint {
        complaint_id: format!("2002{}{}", &crate::state::wechat_time(at)[..8], digits(15)),
        mch_id: order
            .partner
            .as_ref()
            .map_or_else(|| order.mch_id.clone(), |p| p.sub_mchid.clone()),
        sp_mchid: order.partner.as_ref().map(|_| order.mch_id.clone()),
        created_at: at,
        detail: detail.to_owned(),
        state: "PENDING",
        transaction_id: order.transaction_id.clone(),
        out_trade_no: order.out_trade_no.clone(),
        amount: order.total_fee,
        problem_type: if refund_amount.is_some() {
            "REFUND"
        } else {
            "SERVICE_NOT_WORK"
        }
        .to_owned(),
        apply_refund_amount: refund_amount,
        history: Vec::new(),
        refund_decision: None,
    };
    let mut complaint = complaint;
    complaint.record("投诉人", "USER_CREATE_COMPLAINT", detail, &[]);
    lock(&state.v3)
        .complaints
        .complaints
        .insert(complaint.complaint_id.clone(), complaint.clone());
    notify_complaint(state, &complaint, "COMPLAINT.CREATE", "CREATE_COMPLAINT");
    Some(complaint.complaint_id)
}

/// Every complaint with its negotiation (the control API's view).
pub fn all(state: &SandboxState) -> Value {
    let book = &lock(&state.v3).complaints;
    json!(book.complaints.values().collect::<Vec<_>>())
}

/// The complaint `id`, as merchant `mch_id` may see it (its own, or a sub-merchant's), changed
/// by `f`.
fn with_complaint<T>(
    state: &SandboxState,
    mch_id: &str,
    id: &str,
    f: impl FnOnce(&mut SandboxComplaint, &BTreeMap<String, (String, Vec<u8>)>) -> Result<T, V3Error>,
) -> Result<T, V3Error> {
    let mut v3 = lock(&state.v3);
    let book = &mut v3.complaints;
    let c = book
        .complaints
        .get_mut(id)
        .filter(|c| c.visible_to(mch_id))
        .ok_or_else(not_found)?;
    f(c, &book.images)
}

/// `GET /v3/merchant-service/complaints-v2?begin_date=…&end_date=…&limit=…&offset=…`.
pub(super) async fn list(
    State(state): State<Arc<SandboxState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        let q = query_pairs(uri.query());
        let day = |f: &str| {
            let v = q.get(f).ok_or_else(|| param(format!("缺少参数 {f}")))?;
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| param(format!("{f}: YYYY-MM-DD")))
        };
        let (begin, end) = (day("begin_date")?, day("end_date")?);
        if end < begin || (end - begin).whole_days() > 30 {
            return Err(param("查询日期跨度不超过30天"));
        }
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
        if !(1..=50).contains(&limit) {
            return Err(param("limit: 1 to 50"));
        }
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let china = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
        let v3 = lock(&state.v3);
        let mine: Vec<&SandboxComplaint> = v3
            .complaints
            .complaints
            .values()
            .filter(|c| c.visible_to(&m.mch_id))
            // A service provider's list is every sub-merchant's, or the one it names.
            .filter(|c| {
                q.get("complainted_mchid")
                    .is_none_or(|named| c.mch_id == *named)
            })
            .filter(|c| {
                time::OffsetDateTime::from_unix_timestamp(c.created_at)
                    .map(|t| t.to_offset(china).date())
                    .is_ok_and(|d| d >= begin && d <= end)
            })
            .collect();
        let data: Vec<Value> = mine
            .iter()
            .skip(offset)
            .take(limit)
            .map(|c| c.view(""))
            .collect();
        Ok((
            StatusCode::OK,
            Some(
                json!({"data": data, "limit": limit, "offset": offset, "total_count": mine.len()}),
            ),
        ))
    });
    reply(&state, &headers, answer)
}

/// `GET /v3/merchant-service/complaints-v2/{id}`.
pub(super) async fn detail(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        with_complaint(&state, &m.mch_id, &id, |c, _| {
            Ok((StatusCode::OK, Some(c.view(""))))
        })
    });
    reply(&state, &headers, answer)
}

/// `GET /v3/merchant-service/complaints-v2/{id}/negotiation-historys`.
pub(super) async fn history(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        let q = query_pairs(uri.query());
        let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        with_complaint(&state, &m.mch_id, &id, |c, _| {
            let data: Vec<Value> = c.history.iter().skip(offset).take(limit.clamp(1, 300)).cloned().collect();
            Ok((
                StatusCode::OK,
                Some(json!({"data": data, "limit": limit, "offset": offset, "total_count": c.history.len()})),
            ))
        })
    });
    reply(&state, &headers, answer)
}

/// Runs a merchant's action on complaint `id` (the body JSON, `complainted_mchid` its own), then
/// notifies the state change.
async fn act(
    state: &SandboxState,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    action: impl FnOnce(
        &mut SandboxComplaint,
        &BTreeMap<String, (String, Vec<u8>)>,
        &Value,
    ) -> Result<&'static str, V3Error>,
) -> Answer {
    let m = authenticate(state, "POST", &path_and_query(uri), headers, body)?;
    let req: Value = serde_json::from_slice(body).map_err(|e| param(format!("body: {e}")))?;
    let (changed, action_type) = with_complaint(state, &m.mch_id, id, |c, images| {
        if req["complainted_mchid"]
            .as_str()
            .is_some_and(|named| named != c.mch_id)
        {
            return Err(param("complainted_mchid 与投诉单不符"));
        }
        let action_type = action(c, images, &req)?;
        Ok((c.clone(), action_type))
    })?;
    notify_complaint(state, &changed, "COMPLAINT.STATE_CHANGE", action_type);
    Ok((StatusCode::NO_CONTENT, None))
}

/// `POST /v3/merchant-service/complaints-v2/{id}/response`.
pub(super) async fn respond(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = act(&state, &id, &uri, &headers, &body, |c, images, req| {
        if req["complainted_mchid"].as_str().is_none() {
            return Err(param("缺少参数 complainted_mchid"));
        }
        let content = req["response_content"].as_str().unwrap_or_default();
        if content.is_empty() || content.chars().count() > 200 {
            return Err(param("response_content: 1 to 200 characters"));
        }
        let ids: Vec<String> = req["response_images"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() > 4 {
            return Err(param("response_images: at most 4"));
        }
        if let Some(bad) = ids.iter().find(|id| {
            images
                .get(*id)
                .is_none_or(|(owner, _)| !c.visible_to(owner))
        }) {
            return Err(param(format!("response_images: unknown media_id {bad}")));
        }
        if c.state == "PENDING" {
            c.state = "PROCESSING";
        }
        c.record("商户", "MERCHANT_RESPONSE", content, &ids);
        Ok("MERCHANT_RESPONSE")
    })
    .await;
    reply(&state, &headers, answer)
}

/// `POST /v3/merchant-service/complaints-v2/{id}/complete`.
pub(super) async fn complete(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = act(&state, &id, &uri, &headers, &body, |c, _, _| {
        match c.state {
            "PENDING" => Err(v3_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "请先回复用户，再标记处理完成",
            )),
            _ => {
                c.state = "PROCESSED";
                c.record("商户", "MERCHANT_CONFIRM_COMPLETE", "处理完成", &[]);
                Ok("MERCHANT_CONFIRM_COMPLETE")
            }
        }
    })
    .await;
    reply(&state, &headers, answer)
}

/// `POST /v3/merchant-service/complaints-v2/{id}/update-refund-progress`.
pub(super) async fn refund_progress(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = act(&state, &id, &uri, &headers, &body, |c, _, req| {
        let details = match req["action"].as_str() {
            Some("APPROVE") => {
                let days = req["launch_refund_day"]
                    .as_u64()
                    .ok_or_else(|| param("APPROVE 需要 launch_refund_day"))?;
                format!("同意退款，{days}天内发起")
            }
            Some("REJECT") => {
                let reason = req["reject_reason"]
                    .as_str()
                    .filter(|r| !r.is_empty())
                    .ok_or_else(|| param("REJECT 需要 reject_reason"))?;
                format!("拒绝退款：{reason}")
            }
            _ => return Err(param("action: APPROVE or REJECT")),
        };
        c.refund_decision = Some(req.clone());
        c.record("商户", "MERCHANT_UPDATE_REFUND_PROGRESS", &details, &[]);
        Ok("MERCHANT_UPDATE_REFUND_PROGRESS")
    })
    .await;
    reply(&state, &headers, answer)
}

/// `POST`, `PUT`, `GET` and `DELETE /v3/merchant-service/complaint-notifications`.
pub(super) async fn notify_url(
    State(state): State<Arc<SandboxState>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = authenticate(
        &state,
        method.as_str(),
        &path_and_query(&uri),
        &headers,
        &body,
    )
    .and_then(|m| {
        let mut v3 = lock(&state.v3);
        let urls = &mut v3.complaints.urls;
        match method.as_str() {
            "GET" => urls
                .get(&m.mch_id)
                .map(|u| (StatusCode::OK, Some(json!({"mchid": m.mch_id, "url": u}))))
                .ok_or_else(|| {
                    v3_error(
                        StatusCode::NOT_FOUND,
                        "RESOURCE_NOT_EXISTS",
                        "未设置回调地址",
                    )
                }),
            "DELETE" => {
                urls.remove(&m.mch_id);
                Ok((StatusCode::NO_CONTENT, None))
            }
            _ => {
                let req: Value =
                    serde_json::from_slice(&body).map_err(|e| param(format!("body: {e}")))?;
                let url = req["url"]
                    .as_str()
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .ok_or_else(|| param("url: an http(s) URL"))?;
                if method == "POST" && urls.contains_key(&m.mch_id) {
                    return Err(v3_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_REQUEST",
                        "回调地址已存在，请使用更新接口",
                    ));
                }
                urls.insert(m.mch_id.clone(), url.to_owned());
                Ok((StatusCode::OK, Some(json!({"mchid": m.mch_id, "url": url}))))
            }
        }
    });
    reply(&state, &headers, answer)
}

/// `POST /v3/merchant-service/images/upload` (and `/v3/merchant/media/upload`): multipart with
/// a `meta` part `{filename, sha256}` — what the signature covers — and the `file`.
pub(super) async fn upload(
    State(state): State<Arc<SandboxState>>,
    uri: Uri,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut meta = None;
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.bytes().await {
                    Ok(bytes) if name == "meta" => meta = Some(bytes),
                    Ok(bytes) if name == "file" => file = Some(bytes),
                    Ok(_) => {}
                    Err(e) => {
                        return reply(&state, &headers, Err(param(format!("multipart: {e}"))));
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return reply(&state, &headers, Err(param(format!("multipart: {e}")))),
        }
    }
    let answer = (|| {
        let meta = meta.ok_or_else(|| param("缺少 meta"))?;
        let m = authenticate(&state, "POST", &path_and_query(&uri), &headers, &meta)?;
        let file = file.ok_or_else(|| param("缺少 file"))?;
        let described: Value =
            serde_json::from_slice(&meta).map_err(|e| param(format!("meta: {e}")))?;
        let sha256 = described["sha256"].as_str().unwrap_or_default();
        let actual: String = Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !sha256.eq_ignore_ascii_case(&actual) {
            return Err(param("文件的 sha256 与 meta 不符"));
        }
        if file.is_empty() || file.len() > MAX_IMAGE_BYTES {
            return Err(param("图片大小不超过2M"));
        }
        let media_id = format!("sandbox-media-{}", hex32());
        lock(&state.v3)
            .complaints
            .images
            .insert(media_id.clone(), (m.mch_id.clone(), file.to_vec()));
        Ok((StatusCode::OK, Some(json!({"media_id": media_id}))))
    })();
    reply(&state, &headers, answer)
}

/// `GET /v3/merchant-service/images/{media_id}`: the image, to its merchant only.
pub(super) async fn image(
    State(state): State<Arc<SandboxState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let found = authenticate(&state, "GET", &path_and_query(&uri), &headers, b"").and_then(|m| {
        lock(&state.v3)
            .complaints
            .images
            .get(&id)
            .filter(|(owner, _)| *owner == m.mch_id)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| v3_error(StatusCode::NOT_FOUND, "RESOURCE_NOT_EXISTS", "图片不存在"))
    });
    match found {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response(),
        Err(e) => reply(&state, &headers, Err(e)),
    }
}
