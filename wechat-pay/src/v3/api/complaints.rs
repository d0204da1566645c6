//! Consumer complaints 2.0 (消费者投诉 2.0, `/v3/merchant-service/…`): a payer's complaint about
//! an order reaches the merchant here, and the merchant must answer it in time (WeChat penalises
//! merchants who do not).
//!
//! - list ([`ListComplaints`], a page of at most 50, dates at most 30 days apart) and detail
//!   ([`QueryComplaint`]) → [`Complaint`]; the negotiation so far ([`NegotiationHistory`]);
//! - answer the payer ([`RespondComplaint`], text and images uploaded first with
//!   [`Client::upload_complaint_image`](crate::v3::Client::upload_complaint_image)), tell WeChat
//!   a refund is coming or refused ([`UpdateRefundProgress`]), and mark it handled
//!   ([`CompleteComplaint`]);
//! - where complaint notifications go ([`SetComplaintNotifyUrl`], [`QueryComplaintNotifyUrl`],
//!   [`DeleteComplaintNotifyUrl`]); a notification decrypts to
//!   [`Notification::Complaint`](crate::v3::Notification::Complaint) ([`ComplaintNotification`]).
//!
//! ```no_run
//! # async fn handle(client: wechat_pay::v3::Client) -> Result<(), wechat_pay::Error> {
//! use wechat_pay::v3::{CompleteComplaint, ListComplaints, RespondComplaint};
//!
//! let today = time::OffsetDateTime::now_utc().date();
//! let page = client
//!     .execute(&ListComplaints::new(today - time::Duration::days(7), today))
//!     .await?;
//! for complaint in page.data.iter().filter(|c| c.is_open()) {
//!     let photo = client
//!         .upload_complaint_image("refund.jpg", std::fs::read("refund.jpg").unwrap_or_default())
//!         .await?;
//!     client
//!         .execute(
//!             &RespondComplaint::new(&complaint.complaint_id, client.mch_id(), "Refunded today")
//!                 .image(photo),
//!         )
//!         .await?;
//!     client
//!         .execute(&CompleteComplaint::new(&complaint.complaint_id, client.mch_id()))
//!         .await?;
//! }
//! # Ok(()) }
//! ```

use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::Date;

use super::bills::date;
use super::segment;
use super::transactions::NoContent;
use crate::Fen;
use crate::v3::Request;
use crate::wire_enum::wire_enum;

wire_enum! {
    /// Where a complaint is (`complaint_state`).
    pub enum ComplaintState {
        /// Waiting for the merchant's first answer.
        Pending => "PENDING",
        /// Answered, not finished.
        Processing => "PROCESSING",
        /// Handled.
        Processed => "PROCESSED",
    }
}

/// An order a complaint is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ComplaintOrder {
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// The merchant's number.
    pub out_trade_no: String,
    /// The order's amount.
    pub amount: Fen,
}

/// Media the payer attached (`media_url`s to fetch with
/// [`Client::download_complaint_image`](crate::v3::Client::download_complaint_image)).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ComplaintMedia {
    /// `USER_COMPLAINT_IMAGE`, `OPERATION_IMAGE`…
    pub media_type: String,
    /// Where each file is.
    #[serde(default)]
    pub media_url: Vec<String>,
}

/// A complaint (list entries and the detail).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Complaint {
    /// WeChat's number of the complaint.
    pub complaint_id: String,
    /// When it was made (RFC 3339).
    pub complaint_time: String,
    /// What the payer wrote.
    #[serde(default)]
    pub complaint_detail: String,
    /// Where it is.
    pub complaint_state: ComplaintState,
    /// The payer's phone, encrypted to the merchant's key (RSA-OAEP), when given.
    #[serde(default)]
    pub payer_phone: Option<String>,
    /// The orders it is about.
    #[serde(default)]
    pub complaint_order_info: Vec<ComplaintOrder>,
    /// Whether the orders were refunded in full.
    #[serde(default)]
    pub complaint_full_refunded: bool,
    /// Whether the payer wrote again since the merchant's last answer.
    #[serde(default)]
    pub incoming_user_response: bool,
    /// How many complaints the payer made.
    #[serde(default)]
    pub user_complaint_times: u32,
    /// What the payer attached.
    #[serde(default)]
    pub complaint_media_list: Vec<ComplaintMedia>,
    /// `REFUND`, `SERVICE_NOT_WORK`, `OTHERS`.
    #[serde(default)]
    pub problem_type: Option<String>,
    /// The problem in WeChat's words.
    #[serde(default)]
    pub problem_description: String,
    /// The refund the payer asks for.
    #[serde(default)]
    pub apply_refund_amount: Option<Fen>,
    /// The merchant complained about (a service provider's sub-merchant).
    #[serde(default)]
    pub complainted_mchid: Option<String>,
    /// Every other field WeChat sent (kept, never dropped).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Complaint {
    /// Whether the merchant still has to act (not handled, or the payer wrote again).
    pub fn is_open(&self) -> bool {
        self.complaint_state != ComplaintState::Processed || self.incoming_user_response
    }
}

/// A page of a list WeChat answers in pages (`data`, `limit`, `offset`, `total_count`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The entries.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// The page size asked.
    #[serde(default)]
    pub limit: u32,
    /// Where the page starts.
    #[serde(default)]
    pub offset: u32,
    /// How many there are in all.
    #[serde(default)]
    pub total_count: u32,
}

/// A page of complaints.
pub type ComplaintPage = Page<Complaint>;

/// `GET /v3/merchant-service/complaints-v2?limit=…&offset=…&begin_date=…&end_date=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListComplaints {
    /// The first day (China time).
    pub begin_date: Date,
    /// The last day (at most 30 days after the first).
    pub end_date: Date,
    /// Page size, 1 to 50.
    pub limit: u32,
    /// Where the page starts.
    pub offset: u32,
    /// A service provider: only this sub-merchant's.
    pub complainted_mchid: Option<String>,
}

impl ListComplaints {
    /// The first page (50) of complaints from `begin_date` to `end_date`.
    pub fn new(begin_date: Date, end_date: Date) -> Self {
        ListComplaints {
            begin_date,
            end_date,
            limit: 50,
            offset: 0,
            complainted_mchid: None,
        }
    }

    /// The page starting at `offset`, of `limit` (clamped to 1–50).
    pub fn page(mut self, offset: u32, limit: u32) -> Self {
        self.offset = offset;
        self.limit = limit.clamp(1, 50);
        self
    }

    /// A service provider's sub-merchant's only.
    pub fn complainted_mchid(mut self, mch_id: impl Into<String>) -> Self {
        self.complainted_mchid = Some(mch_id.into());
        self
    }
}

impl Request for ListComplaints {
    type Response = ComplaintPage;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let mut p = format!(
            "/v3/merchant-service/complaints-v2?limit={}&offset={}&begin_date={}&end_date={}",
            self.limit,
            self.offset,
            date(self.begin_date),
            date(self.end_date)
        );
        if let Some(m) = &self.complainted_mchid {
            p.push_str(&format!("&complainted_mchid={}", segment(m)));
        }
        p
    }
}

/// `GET /v3/merchant-service/complaints-v2/{complaint_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryComplaint(pub String);

impl Request for QueryComplaint {
    type Response = Complaint;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        format!("/v3/merchant-service/complaints-v2/{}", segment(&self.0))
    }
}

/// One step of a complaint's negotiation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct NegotiationRecord {
    /// Its id.
    pub log_id: String,
    /// Who (`投诉人`, `商户`, `微信支付客服`…).
    #[serde(default)]
    pub operator: String,
    /// When (RFC 3339).
    #[serde(default)]
    pub operate_time: String,
    /// What (`USER_CREATE_COMPLAINT`, `MERCHANT_RESPONSE`, `MERCHANT_CONFIRM_COMPLETE`…).
    #[serde(default)]
    pub operate_type: String,
    /// What was said.
    #[serde(default)]
    pub operate_details: String,
    /// Images attached (`media_url`s).
    #[serde(default)]
    pub image_list: Vec<String>,
    /// Every other field WeChat sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A page of a negotiation (its steps, oldest first).
pub type NegotiationPage = Page<NegotiationRecord>;

/// `GET /v3/merchant-service/complaints-v2/{complaint_id}/negotiation-historys?limit=…&offset=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NegotiationHistory {
    /// The complaint.
    pub complaint_id: String,
    /// Page size, 1 to 300.
    pub limit: u32,
    /// Where the page starts.
    pub offset: u32,
}

impl NegotiationHistory {
    /// The first 300 steps of `complaint_id`'s negotiation.
    pub fn new(complaint_id: impl Into<String>) -> Self {
        NegotiationHistory {
            complaint_id: complaint_id.into(),
            limit: 300,
            offset: 0,
        }
    }
}

impl Request for NegotiationHistory {
    type Response = NegotiationPage;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/merchant-service/complaints-v2/{}/negotiation-historys?limit={}&offset={}",
            segment(&self.complaint_id),
            self.limit.clamp(1, 300),
            self.offset
        )
    }
}

/// `POST /v3/merchant-service/complaints-v2/{complaint_id}/response` (204): the merchant answers
/// the payer (the first answer moves the complaint to PROCESSING).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RespondComplaint {
    /// The complaint.
    pub complaint_id: String,
    /// The merchant complained about.
    pub complainted_mchid: String,
    /// The answer (≤ 200 characters).
    pub response_content: String,
    /// Images, as uploaded (`media_id`s, at most 4).
    pub response_images: Vec<String>,
    /// A page for the payer, and its link text.
    pub jump: Option<(String, String)>,
}

impl RespondComplaint {
    /// Answers `complaint_id` (about merchant `complainted_mchid`) with `content`.
    pub fn new(
        complaint_id: impl Into<String>,
        complainted_mchid: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        RespondComplaint {
            complaint_id: complaint_id.into(),
            complainted_mchid: complainted_mchid.into(),
            response_content: content.into(),
            response_images: Vec::new(),
            jump: None,
        }
    }

    /// With an uploaded image (its `media_id`).
    pub fn image(mut self, media_id: impl Into<String>) -> Self {
        self.response_images.push(media_id.into());
        self
    }

    /// With a link for the payer.
    pub fn jump(mut self, url: impl Into<String>, text: impl Into<String>) -> Self {
        self.jump = Some((url.into(), text.into()));
        self
    }
}

impl Request for RespondComplaint {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/merchant-service/complaints-v2/{}/response",
            segment(&self.complaint_id)
        )
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut b = json!({
            "complainted_mchid": self.complainted_mchid,
            "response_content": self.response_content,
            "response_images": self.response_images,
        });
        if let Some((url, text)) = &self.jump {
            b["jump_url"] = json!(url);
            b["jump_url_text"] = json!(text);
        }
        Some(b)
    }
}

/// `POST /v3/merchant-service/complaints-v2/{complaint_id}/complete` (204): handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteComplaint {
    /// The complaint.
    pub complaint_id: String,
    /// The merchant complained about.
    pub complainted_mchid: String,
}

impl CompleteComplaint {
    /// Marks `complaint_id` (about `complainted_mchid`) handled.
    pub fn new(complaint_id: impl Into<String>, complainted_mchid: impl Into<String>) -> Self {
        CompleteComplaint {
            complaint_id: complaint_id.into(),
            complainted_mchid: complainted_mchid.into(),
        }
    }
}

impl Request for CompleteComplaint {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/merchant-service/complaints-v2/{}/complete",
            segment(&self.complaint_id)
        )
    }
    fn body(&self, _: &str) -> Option<Value> {
        Some(json!({"complainted_mchid": self.complainted_mchid}))
    }
}

/// The merchant's decision on a refund the payer asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundDecision {
    /// The refund will be made within `launch_refund_day` days.
    Approve {
        /// Days until the refund is made.
        launch_refund_day: u32,
    },
    /// No refund, and why.
    Reject {
        /// Why not.
        reason: String,
    },
}

/// `POST /v3/merchant-service/complaints-v2/{complaint_id}/update-refund-progress` (204).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRefundProgress {
    /// The complaint.
    pub complaint_id: String,
    /// The decision.
    pub decision: RefundDecision,
    /// A note.
    pub remark: Option<String>,
}

impl Request for UpdateRefundProgress {
    type Response = NoContent;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/merchant-service/complaints-v2/{}/update-refund-progress",
            segment(&self.complaint_id)
        )
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut b = match &self.decision {
            RefundDecision::Approve { launch_refund_day } => {
                json!({"action": "APPROVE", "launch_refund_day": launch_refund_day})
            }
            RefundDecision::Reject { reason } => {
                json!({"action": "REJECT", "reject_reason": reason})
            }
        };
        if let Some(r) = &self.remark {
            b["remark"] = json!(r);
        }
        Some(b)
    }
}

/// Where the merchant's complaint notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ComplaintNotifyUrl {
    /// The merchant.
    #[serde(default)]
    pub mchid: String,
    /// The URL (https).
    pub url: String,
}

/// `POST /v3/merchant-service/complaint-notifications` `{url}` (`PUT` to change it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetComplaintNotifyUrl {
    /// The URL (https).
    pub url: String,
    /// Whether one is set already (`PUT` replaces it).
    pub replace: bool,
}

impl Request for SetComplaintNotifyUrl {
    type Response = ComplaintNotifyUrl;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        "/v3/merchant-service/complaint-notifications".to_owned()
    }
    fn method(&self) -> &'static str {
        if self.replace { "PUT" } else { "POST" }
    }
    fn body(&self, _: &str) -> Option<Value> {
        Some(json!({"url": self.url}))
    }
}

/// `GET /v3/merchant-service/complaint-notifications`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryComplaintNotifyUrl;

impl Request for QueryComplaintNotifyUrl {
    type Response = ComplaintNotifyUrl;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        "/v3/merchant-service/complaint-notifications".to_owned()
    }
}

/// `DELETE /v3/merchant-service/complaint-notifications` (204).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteComplaintNotifyUrl;

impl Request for DeleteComplaintNotifyUrl {
    type Response = NoContent;
    const METHOD: &'static str = "DELETE";
    fn path(&self, _: &str) -> String {
        "/v3/merchant-service/complaint-notifications".to_owned()
    }
}

/// A complaint notification's resource (`COMPLAINT.CREATE`, `COMPLAINT.STATE_CHANGE`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ComplaintNotification {
    /// The complaint.
    pub complaint_id: String,
    /// What happened (`CREATE_COMPLAINT`, `CONTINUE_COMPLAINT`, `USER_RESPONSE`,
    /// `RESPONSE_BY_PLATFORM`, `SELLER_REFUND`, `MERCHANT_RESPONSE`,
    /// `MERCHANT_CONFIRM_COMPLETE`…).
    #[serde(default)]
    pub action_type: String,
    /// The order's number, when WeChat sends it.
    #[serde(default)]
    pub out_trade_no: Option<String>,
    /// When the complaint was made.
    #[serde(default)]
    pub complaint_time: Option<String>,
    /// The order's amount, when sent.
    #[serde(default)]
    pub amount: Option<Fen>,
    /// Every other field.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complaint_keeps_what_it_does_not_name_and_knows_when_it_is_open() {
        let c: Complaint = serde_json::from_value(json!({
            "complaint_id": "200201820200101080076610000",
            "complaint_time": "2026-12-07T10:00:00+08:00",
            "complaint_detail": "paid, nothing came out",
            "complaint_state": "PROCESSED",
            "complaint_order_info": [{"transaction_id": "4200", "out_trade_no": "V1", "amount": 350}],
            "incoming_user_response": true,
            "service_order_info": [{"order_id": "x"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.complaint_order_info[0].amount, Fen::new(350));
        assert!(c.other.contains_key("service_order_info"));
        assert!(c.is_open(), "the payer wrote again");
    }

    #[test]
    fn paths_and_bodies() {
        let d = |y, m, d| Date::from_calendar_date(y, m, d).unwrap_or(Date::MIN);
        let list = ListComplaints::new(
            d(2026, time::Month::December, 1),
            d(2026, time::Month::December, 7),
        )
        .page(10, 500);
        assert_eq!(
            list.path("1"),
            "/v3/merchant-service/complaints-v2?limit=50&offset=10&begin_date=2026-12-01&end_date=2026-12-07"
        );
        let r = RespondComplaint::new("C1", "1900", "done").image("M1");
        assert_eq!(r.body("1").unwrap_or_default()["response_images"][0], "M1");
        let u = UpdateRefundProgress {
            complaint_id: "C1".into(),
            decision: RefundDecision::Reject {
                reason: "used".into(),
            },
            remark: None,
        };
        assert_eq!(u.body("1").unwrap_or_default()["action"], "REJECT");
        assert_eq!(
            SetComplaintNotifyUrl {
                url: "https://x".into(),
                replace: true
            }
            .method(),
            "PUT"
        );
    }
}
