//! Consumer complaints (WeChat Pay API v3, 消费者投诉 2.0), for the servers: where WeChat sends a
//! merchant's complaint notifications (`POST /notify/wechat/complaints`, registered at start by
//! [`ComplaintDesk::register`]), each verified and decrypted before anything is believed, and
//! the reading every server does — the complaints of the last days page by page, one complaint
//! with its negotiation. What a server keeps and whom it shows them to is its own
//! (vending-server: `vending::complaints`).
//!
//! A server's state says what it does with a complaint it heard ([`HearsComplaints`]); the
//! route answers WeChat `204` once that is done, `401` to a notification whose signature fails
//! (a forgery changes nothing), `5xx` when it could not be kept (WeChat sends it again; the
//! periodic read finds it anyway).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use wechat_pay::v3::{
    Client, Complaint, ComplaintNotification, ListComplaints, NegotiationHistory,
    NegotiationRecord, Notification, QueryComplaint, QueryComplaintNotifyUrl,
    SetComplaintNotifyUrl, V3ErrorCode,
};

use crate::error::AppError;

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
    ) -> Result<Option<ComplaintNotification>, wechat_pay::Error> {
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
    /// The merchant's desk (`None`: no API v3 merchant, so no complaint notification is
    /// believed).
    fn complaint_desk(&self) -> Option<&ComplaintDesk>;

    /// Keeps what a verified notification says (an error: WeChat is told to send it again).
    fn complaint_heard(
        &self,
        notification: ComplaintNotification,
    ) -> impl Future<Output = Result<(), String>> + Send;
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
    let Some(desk) = state.complaint_desk() else {
        return wechat_answer(StatusCode::NOT_FOUND, "complaints are not handled here");
    };
    let notification = match desk.heard(&headers, &body).await {
        Ok(Some(n)) => n,
        Ok(None) => {
            return wechat_answer(StatusCode::BAD_REQUEST, "not a complaint notification");
        }
        Err(e) => {
            tracing::warn!(error = %e, "complaint notification refused");
            return wechat_answer(StatusCode::UNAUTHORIZED, "not verified");
        }
    };
    let id = notification.complaint_id.clone();
    match state.complaint_heard(notification).await {
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
