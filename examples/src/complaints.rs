//! Consumer complaints (WeChat Pay API v3, 消费者投诉 2.0), for the servers: where WeChat sends a
//! merchant's complaint notifications (`POST /notify/wechat/complaints`, registered at start by
//! [`ComplaintDesk::register`]), each verified and decrypted before anything is believed, and
//! the reading every server does — the complaints of the last days page by page, one complaint
//! with its negotiation. What a server keeps and whom it shows them to is its own
//! (vending-server: `vending::complaints`).
//!
//! A server keeps complaints its own way ([`ComplaintKeeper`]); [`follow`] registers the
//! notification URL and reads the last 30 days' complaints periodically, so none is missed
//! while the server was down or when notifications go elsewhere. At start the URL is
//! registered; live, an `http://` public URL is not (WeChat takes `https://` only), and a URL
//! the merchant set for another system is never replaced: the periodic read alone brings
//! complaints in, and the log says why. The route answers WeChat `204` once a complaint is
//! kept, `401` to a notification whose signature fails (a forgery changes nothing), `5xx` when
//! it could not be kept (WeChat sends it again).

use std::future::Future;
use std::sync::Arc;

use aggregate_pay::StoreError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;
use wechat_pay::v3::{
    Client, Complaint, ListComplaints, NegotiationHistory, NegotiationRecord, Notification,
    QueryComplaint, QueryComplaintNotifyUrl, SetComplaintNotifyUrl, V3ErrorCode,
};

use crate::error::AppError;
use crate::providers::Mode;

/// Where complaint notifications arrive.
pub const NOTIFY_PATH: &str = "/notify/wechat/complaints";

/// WeChat lists complaints over at most this many days at once.
const LIST_WINDOW_DAYS: i64 = 30;

/// The complaint notification URL under `public_url`.
pub fn notify_url(public_url: &str) -> String {
    format!("{}{NOTIFY_PATH}", public_url.trim_end_matches('/'))
}

/// A merchant's complaints at WeChat Pay: its API v3 client, and what reading them takes.
#[derive(Debug, Clone)]
pub struct ComplaintDesk {
    client: Client,
}

/// What registering the notification URL found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// It was set already.
    Unchanged,
    /// It is set now (none was, or `replace` allowed replacing another).
    Set,
    /// Another URL is set and was left alone: complaints are only read periodically.
    Elsewhere(String),
}

impl ComplaintDesk {
    /// The desk of `client`'s merchant.
    pub fn new(client: Client) -> Self {
        ComplaintDesk { client }
    }

    /// The client (for answering, refund decisions, completion, images).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Makes `url` where WeChat sends this merchant's complaint notifications. Another URL the
    /// merchant set (their other system, say) is replaced only with `replace`.
    pub async fn register(
        &self,
        url: &str,
        replace: bool,
    ) -> Result<Registration, wechat_pay::Error> {
        let exists = match self.client.execute(&QueryComplaintNotifyUrl).await {
            Ok(current) if current.url == url => return Ok(Registration::Unchanged),
            Ok(current) if !replace => return Ok(Registration::Elsewhere(current.url)),
            Ok(_) => true,
            Err(wechat_pay::Error::V3Api {
                code: V3ErrorCode::ResourceNotExists,
                ..
            }) => false,
            Err(e) => return Err(e),
        };
        self.client
            .execute(&SetComplaintNotifyUrl {
                url: url.to_owned(),
                replace: exists,
            })
            .await?;
        Ok(Registration::Set)
    }

    /// A notification, verified (WeChat's signature, the clock) and decrypted: the complaint
    /// it is about, or `None` when it is another kind of notification.
    pub async fn heard(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Option<wechat_pay::v3::ComplaintNotification>, wechat_pay::Error> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Ok(match self.client.notification(header, body).await? {
            (_, Notification::Complaint(c)) => Some(*c),
            (envelope, _) => {
                tracing::warn!(event = %envelope.event_type, "not a complaint notification");
                None
            }
        })
    }

    /// Every complaint made in the last `days` days (WeChat's dates, Beijing time), page by
    /// page, in windows of at most 30 days.
    pub async fn recent(&self, days: u32) -> Result<Vec<Complaint>, wechat_pay::Error> {
        let china = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
        let today = OffsetDateTime::now_utc().to_offset(china).date();
        let first = today - Duration::days(i64::from(days));
        let mut all = Vec::new();
        let mut begin = first;
        while begin <= today {
            let end = (begin + Duration::days(LIST_WINDOW_DAYS - 1)).min(today);
            let mut offset = 0;
            loop {
                let page = self
                    .client
                    .execute(&ListComplaints::new(begin, end).page(offset, 50))
                    .await?;
                let got = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
                all.extend(page.data);
                offset = offset.saturating_add(got);
                if got == 0 || offset >= page.total_count {
                    break;
                }
            }
            begin = end + Duration::days(1);
        }
        Ok(all)
    }

    /// One complaint as WeChat has it now, with its whole negotiation.
    pub async fn case(
        &self,
        complaint_id: &str,
    ) -> Result<(Complaint, Vec<NegotiationRecord>), wechat_pay::Error> {
        let complaint = self
            .client
            .execute(&QueryComplaint(complaint_id.to_owned()))
            .await?;
        let mut history = Vec::new();
        let mut ask = NegotiationHistory::new(complaint_id);
        loop {
            let page = self.client.execute(&ask).await?;
            let got = u32::try_from(page.data.len()).unwrap_or(u32::MAX);
            history.extend(page.data);
            ask.offset = ask.offset.saturating_add(got);
            if got == 0 || ask.offset >= page.total_count {
                break;
            }
        }
        Ok((complaint, history))
    }
}

/// How many days back the periodic read looks.
const SYNC_DAYS: u32 = 30;

/// Why a complaint could not be brought in.
#[derive(Debug, thiserror::Error)]
pub enum ComplaintError {
    /// WeChat Pay could not be asked, or refused.
    #[error("wechat pay: {0}")]
    Provider(#[from] wechat_pay::Error),
    /// The database.
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl From<ComplaintError> for AppError {
    fn from(e: ComplaintError) -> Self {
        match e {
            ComplaintError::Provider(e) => provider_error(&e),
            ComplaintError::Store(e) => AppError::internal(e),
        }
    }
}

/// What the merchant needs to know of a complaint (the payer's phone is left out).
pub fn summary(c: &Complaint) -> Value {
    let order = c.complaint_order_info.first();
    json!({
        "detail": c.complaint_detail,
        "complained_at": c.complaint_time,
        "problem_type": c.problem_type,
        "problem_description": c.problem_description,
        "apply_refund_amount": c.apply_refund_amount,
        "transaction_id": order.map(|o| o.transaction_id.clone()),
        "amount": order.map(|o| o.amount),
        "full_refunded": c.complaint_full_refunded,
        "payer_wrote_again": c.incoming_user_response,
        "times": c.user_complaint_times,
        "images": c.complaint_media_list.iter().map(|m| m.media_url.len()).sum::<usize>(),
    })
}

/// A complaint's negotiation as a merchant reads it: who, when, what, the text, how many images.
pub fn history_view(history: &[NegotiationRecord]) -> Value {
    history
        .iter()
        .map(|h| {
            json!({
                "operator": h.operator,
                "at": h.operate_time,
                "type": h.operate_type,
                "details": h.operate_details,
                "images": h.image_list.len(),
            })
        })
        .collect()
}

/// Where a server keeps complaints.
pub trait ComplaintKeeper: Send + Sync + 'static {
    /// The merchant's desk.
    fn desk(&self) -> &ComplaintDesk;

    /// Keeps what WeChat says of `c` now.
    fn keep(&self, c: &Complaint) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Reads complaint `id` from WeChat and keeps it.
pub async fn refresh(keeper: &impl ComplaintKeeper, id: &str) -> Result<(), ComplaintError> {
    let complaint = keeper
        .desk()
        .client()
        .execute(&QueryComplaint(id.to_owned()))
        .await?;
    Ok(keeper.keep(&complaint).await?)
}

/// Reads the last 30 days' complaints and keeps each: how many.
pub async fn sync(keeper: &impl ComplaintKeeper) -> Result<usize, ComplaintError> {
    let all = keeper.desk().recent(SYNC_DAYS).await?;
    for c in &all {
        keeper.keep(c).await?;
    }
    Ok(all.len())
}

/// Registers the notification URL under `public_url` (see the module), then reads the
/// complaints every `every` until `stop`.
pub async fn follow(
    keeper: Arc<impl ComplaintKeeper>,
    public_url: String,
    mode: Mode,
    every: std::time::Duration,
    stop: CancellationToken,
) {
    let url = notify_url(&public_url);
    let secs = every.as_secs();
    if mode.is_demo() || url.starts_with("https://") {
        match keeper.desk().register(&url, mode.is_demo()).await {
            Ok(Registration::Elsewhere(other)) => tracing::warn!(
                ours = %url, theirs = %other,
                "complaint notifications go to another URL the merchant set; complaints are read every {secs}s instead"
            ),
            Ok(_) => tracing::info!(url = %url, "complaint notifications registered"),
            Err(e) => {
                tracing::warn!(error = %e, "complaint notification URL not registered; complaints are read periodically")
            }
        }
    } else {
        tracing::warn!(
            url = %url,
            "complaint notifications need an https:// PUBLIC_URL; complaints are read every {secs}s instead"
        );
    }
    loop {
        match sync(keeper.as_ref()).await {
            Ok(n) => tracing::debug!(complaints = n, "complaints read"),
            Err(e) => tracing::warn!(error = %e, "complaints not read; trying again later"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// A WeChat Pay error as the seller's request answers it: WeChat refused (`502
/// CHANNEL_REJECTED`, its message), or could not be reached or asked to retry (`503
/// CHANNEL_UNAVAILABLE`).
pub fn provider_error(e: &wechat_pay::Error) -> AppError {
    match e {
        wechat_pay::Error::V3Api { .. } if !e.is_retryable() => {
            AppError::new(StatusCode::BAD_GATEWAY, "CHANNEL_REJECTED", e.to_string())
        }
        _ if e.is_retryable() => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "CHANNEL_UNAVAILABLE",
            e.to_string(),
        ),
        _ => AppError::internal(e),
    }
}

/// A server state that hears complaints.
pub trait HearsComplaints: Send + Sync + 'static {
    /// Where its complaints are kept.
    type Keeper: ComplaintKeeper;

    /// The keeper (`None`: no API v3 merchant, so no complaint notification is believed).
    fn complaint_keeper(&self) -> Option<&Self::Keeper>;
}

/// The complaint notification route.
pub fn routes<T: HearsComplaints>() -> Router<Arc<T>> {
    Router::new().route(NOTIFY_PATH, post(heard::<T>))
}

fn wechat_answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": "FAIL", "message": message})),
    )
        .into_response()
}

async fn heard<T: HearsComplaints>(
    State(state): State<Arc<T>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(keeper) = state.complaint_keeper() else {
        return wechat_answer(StatusCode::NOT_FOUND, "complaints are not handled here");
    };
    let notification = match keeper.desk().heard(&headers, &body).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return wechat_answer(StatusCode::BAD_REQUEST, "not a complaint notification");
        }
        Err(e) => {
            tracing::warn!(error = %e, "complaint notification refused");
            return wechat_answer(StatusCode::UNAUTHORIZED, "not verified");
        }
    };
    let id = notification.complaint_id;
    match refresh(keeper, &id).await {
        Ok(()) => {
            tracing::info!(complaint = %id, "complaint notification");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            tracing::warn!(complaint = %id, error = %e, "complaint notification not kept; WeChat sends it again");
            wechat_answer(StatusCode::INTERNAL_SERVER_ERROR, "try again")
        }
    }
}
