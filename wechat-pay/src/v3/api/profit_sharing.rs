//! Profit sharing (分账, `/v3/profitsharing/…`): a paid order's money, frozen at payment when the
//! order asked for it ([`OrderRequest::profit_sharing`](super::OrderRequest::profit_sharing)),
//! is shared with receivers the merchant (or, in partner mode, the sub-merchant) added; what is
//! not shared is unfrozen to the merchant; a share can be returned before a refund. In partner
//! mode every request names the sub-merchant (`sub_mchid`); directly it is omitted. Receivers'
//! names travel encrypted to WeChat Pay's key. Amounts are [`Fen`].

use serde::Deserialize;
use serde_json::{Value, json};

use super::segment;
use crate::v3::Request;
use crate::wire_enum::wire_enum;
use crate::{Error, Fen};

wire_enum! {
    /// What a receiver's `account` is.
    pub enum ReceiverType {
        /// A merchant id.
        MerchantId => "MERCHANT_ID",
        /// A user's openid under the service provider's (or the merchant's) app.
        PersonalOpenid => "PERSONAL_OPENID",
        /// A user's openid under the sub-merchant's app (partner mode).
        PersonalSubOpenid => "PERSONAL_SUB_OPENID",
    }
}

wire_enum! {
    /// How a receiver relates to the merchant.
    pub enum RelationType {
        /// The service provider.
        ServiceProvider => "SERVICE_PROVIDER",
        /// A store.
        Store => "STORE",
        /// Staff.
        Staff => "STAFF",
        /// A store owner.
        StoreOwner => "STORE_OWNER",
        /// A partner.
        Partner => "PARTNER",
        /// Headquarters.
        Headquarter => "HEADQUARTER",
        /// A brand.
        Brand => "BRAND",
        /// A distributor.
        Distributor => "DISTRIBUTOR",
        /// A user.
        User => "USER",
        /// A supplier.
        Supplier => "SUPPLIER",
        /// Custom (`custom_relation` says what).
        Custom => "CUSTOM",
    }
}

/// The merchant and app ids of a profit-sharing request: the sub-merchant in partner mode.
fn ids(sub_mchid: Option<&String>, app_id: Option<&String>, sub_appid: Option<&String>) -> Value {
    let mut body = json!({});
    if let Some(s) = sub_mchid {
        body["sub_mchid"] = json!(s);
    }
    if let Some(a) = app_id {
        body["appid"] = json!(a);
    }
    if let Some(a) = sub_appid {
        body["sub_appid"] = json!(a);
    }
    body
}

/// Partner mode's `sub_mchid=…&` at the front of a query string (nothing directly).
fn sub_query(sub_mchid: Option<&String>) -> String {
    sub_mchid
        .map(|s| format!("sub_mchid={}&", segment(s)))
        .unwrap_or_default()
}

/// `POST /v3/profitsharing/receivers/add`: a receiver the merchant may share with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddReceiver {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// The app an openid receiver belongs to (the service provider's in partner mode).
    pub app_id: String,
    /// Partner mode: the sub-merchant's app (for `PERSONAL_SUB_OPENID`).
    pub sub_appid: Option<String>,
    /// What `account` is.
    pub receiver_type: ReceiverType,
    /// The merchant id or openid.
    pub account: String,
    /// The receiver's name (required for a merchant: its registered name), sent encrypted.
    pub name: Option<String>,
    /// How they relate to the merchant.
    pub relation_type: RelationType,
    /// `CUSTOM`'s text.
    pub custom_relation: Option<String>,
}

impl AddReceiver {
    /// A receiver `account` of `receiver_type` for `app_id`.
    pub fn new(
        app_id: impl Into<String>,
        receiver_type: ReceiverType,
        account: impl Into<String>,
        relation_type: RelationType,
    ) -> Self {
        AddReceiver {
            sub_mchid: None,
            app_id: app_id.into(),
            sub_appid: None,
            receiver_type,
            account: account.into(),
            name: None,
            relation_type,
            custom_relation: None,
        }
    }

    /// Partner mode: for the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }

    /// The receiver's name (encrypted when sent).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A receiver as WeChat Pay recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ReceiverRecord {
    /// Partner mode: the sub-merchant.
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// What `account` is.
    #[serde(rename = "type")]
    pub receiver_type: ReceiverType,
    /// The merchant id or openid.
    pub account: String,
    /// How they relate (adds).
    #[serde(default)]
    pub relation_type: Option<RelationType>,
}

impl Request for AddReceiver {
    type Response = ReceiverRecord;
    const METHOD: &'static str = "POST";
    const ENCRYPTS: bool = true;
    fn path(&self, _: &str) -> String {
        "/v3/profitsharing/receivers/add".into()
    }
    fn encrypted_body(
        &self,
        _: &str,
        encrypt: &mut dyn FnMut(&str) -> Result<String, Error>,
    ) -> Result<Option<Value>, Error> {
        let mut body = ids(
            self.sub_mchid.as_ref(),
            Some(&self.app_id),
            self.sub_appid.as_ref(),
        );
        body["type"] = json!(self.receiver_type.as_str());
        body["account"] = json!(self.account);
        body["relation_type"] = json!(self.relation_type.as_str());
        if let Some(n) = &self.name {
            body["name"] = json!(encrypt(n)?);
        }
        if let Some(c) = &self.custom_relation {
            body["custom_relation"] = json!(c);
        }
        Ok(Some(body))
    }
}

/// `POST /v3/profitsharing/receivers/delete`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteReceiver {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// The app an openid receiver belongs to.
    pub app_id: String,
    /// What `account` is.
    pub receiver_type: ReceiverType,
    /// The merchant id or openid.
    pub account: String,
}

impl DeleteReceiver {
    /// The receiver `account` of `receiver_type` for `app_id`.
    pub fn new(
        app_id: impl Into<String>,
        receiver_type: ReceiverType,
        account: impl Into<String>,
    ) -> Self {
        DeleteReceiver {
            sub_mchid: None,
            app_id: app_id.into(),
            receiver_type,
            account: account.into(),
        }
    }

    /// Partner mode: of the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for DeleteReceiver {
    type Response = ReceiverRecord;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        "/v3/profitsharing/receivers/delete".into()
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut body = ids(self.sub_mchid.as_ref(), Some(&self.app_id), None);
        body["type"] = json!(self.receiver_type.as_str());
        body["account"] = json!(self.account);
        Some(body)
    }
}

/// One receiver's share in a [`CreateSharing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// What `account` is.
    pub receiver_type: ReceiverType,
    /// The merchant id or openid (added as a receiver before).
    pub account: String,
    /// The name, for a merchant receiver (sent encrypted).
    pub name: Option<String>,
    /// How much.
    pub amount: Fen,
    /// Why (shown to the receiver).
    pub description: String,
}

impl Share {
    /// `amount` to `account`.
    pub fn new(
        receiver_type: ReceiverType,
        account: impl Into<String>,
        amount: Fen,
        description: impl Into<String>,
    ) -> Self {
        Share {
            receiver_type,
            account: account.into(),
            name: None,
            amount,
            description: description.into(),
        }
    }
}

/// `POST /v3/profitsharing/orders`: shares a paid order's frozen money. Idempotent by
/// `out_order_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateSharing {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// The app of openid receivers.
    pub app_id: String,
    /// WeChat's transaction id of the paid order.
    pub transaction_id: String,
    /// This sharing's number.
    pub out_order_no: String,
    /// Who gets what.
    pub receivers: Vec<Share>,
    /// Unfreeze what is left to the merchant after this sharing (no later sharing possible).
    pub unfreeze_unsplit: bool,
}

impl CreateSharing {
    /// Shares `transaction_id`'s money as `receivers` say.
    pub fn new(
        app_id: impl Into<String>,
        transaction_id: impl Into<String>,
        out_order_no: impl Into<String>,
        receivers: Vec<Share>,
        unfreeze_unsplit: bool,
    ) -> Self {
        CreateSharing {
            sub_mchid: None,
            app_id: app_id.into(),
            transaction_id: transaction_id.into(),
            out_order_no: out_order_no.into(),
            receivers,
            unfreeze_unsplit,
        }
    }

    /// Partner mode: for the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for CreateSharing {
    type Response = SharingOrder;
    const METHOD: &'static str = "POST";
    const ENCRYPTS: bool = true;
    fn path(&self, _: &str) -> String {
        "/v3/profitsharing/orders".into()
    }
    fn encrypted_body(
        &self,
        _: &str,
        encrypt: &mut dyn FnMut(&str) -> Result<String, Error>,
    ) -> Result<Option<Value>, Error> {
        let mut body = ids(self.sub_mchid.as_ref(), Some(&self.app_id), None);
        body["transaction_id"] = json!(self.transaction_id);
        body["out_order_no"] = json!(self.out_order_no);
        body["unfreeze_unsplit"] = json!(self.unfreeze_unsplit);
        let mut receivers = Vec::with_capacity(self.receivers.len());
        for r in &self.receivers {
            let mut v = json!({
                "type": r.receiver_type.as_str(),
                "account": r.account,
                "amount": r.amount,
                "description": r.description,
            });
            if let Some(n) = &r.name {
                v["name"] = json!(encrypt(n)?);
            }
            receivers.push(v);
        }
        body["receivers"] = Value::Array(receivers);
        Ok(Some(body))
    }
}

/// `GET /v3/profitsharing/orders/{out_order_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuerySharing {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// WeChat's transaction id of the order shared.
    pub transaction_id: String,
    /// The sharing's number.
    pub out_order_no: String,
}

impl QuerySharing {
    /// The sharing `out_order_no` of `transaction_id`.
    pub fn new(transaction_id: impl Into<String>, out_order_no: impl Into<String>) -> Self {
        QuerySharing {
            sub_mchid: None,
            transaction_id: transaction_id.into(),
            out_order_no: out_order_no.into(),
        }
    }

    /// Partner mode: of the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for QuerySharing {
    type Response = SharingOrder;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let sub = sub_query(self.sub_mchid.as_ref());
        format!(
            "/v3/profitsharing/orders/{}?{sub}transaction_id={}",
            segment(&self.out_order_no),
            segment(&self.transaction_id)
        )
    }
}

/// `POST /v3/profitsharing/orders/unfreeze`: the rest of a paid order's frozen money goes to
/// the merchant; no more sharing after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnfreezeSharing {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// WeChat's transaction id.
    pub transaction_id: String,
    /// This request's number.
    pub out_order_no: String,
    /// Why.
    pub description: String,
}

impl UnfreezeSharing {
    /// Unfreezes what is left of `transaction_id`, numbered `out_order_no`.
    pub fn new(
        transaction_id: impl Into<String>,
        out_order_no: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        UnfreezeSharing {
            sub_mchid: None,
            transaction_id: transaction_id.into(),
            out_order_no: out_order_no.into(),
            description: description.into(),
        }
    }

    /// Partner mode: of the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for UnfreezeSharing {
    type Response = SharingOrder;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        "/v3/profitsharing/orders/unfreeze".into()
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut body = ids(self.sub_mchid.as_ref(), None, None);
        body["transaction_id"] = json!(self.transaction_id);
        body["out_order_no"] = json!(self.out_order_no);
        body["description"] = json!(self.description);
        Some(body)
    }
}

wire_enum! {
    /// A sharing order's `state`.
    pub enum SharingState {
        /// Under way.
        Processing => "PROCESSING",
        /// Done (each receiver's `result` says how).
        Finished => "FINISHED",
    }
}

wire_enum! {
    /// One receiver's `result`.
    pub enum ShareResult {
        /// Under way.
        Pending => "PENDING",
        /// Shared.
        Success => "SUCCESS",
        /// Not shared (`fail_reason`); the money stays with the merchant.
        Closed => "CLOSED",
    }
}

/// One receiver's share as WeChat Pay has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ShareRecord {
    /// What `account` is.
    #[serde(rename = "type")]
    pub receiver_type: ReceiverType,
    /// The merchant id or openid.
    pub account: String,
    /// How much.
    pub amount: Fen,
    /// Why.
    #[serde(default)]
    pub description: String,
    /// Where it is.
    pub result: ShareResult,
    /// Why it was closed (`ACCOUNT_ABNORMAL`, `NO_RELATION`, `RECEIVER_HIGH_RISK`…).
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// WeChat's id of this share.
    #[serde(default)]
    pub detail_id: Option<String>,
}

/// A sharing order (create, query and unfreeze answers).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SharingOrder {
    /// Partner mode: the sub-merchant.
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// The order shared.
    pub transaction_id: String,
    /// The sharing's number.
    pub out_order_no: String,
    /// WeChat's number.
    pub order_id: String,
    /// Where it is.
    pub state: SharingState,
    /// Each receiver's share.
    #[serde(default)]
    pub receivers: Vec<ShareRecord>,
}

/// Which sharing a return takes back from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharingRef {
    /// WeChat's number.
    OrderId(String),
    /// The merchant's number.
    OutOrderNo(String),
}

/// `POST /v3/profitsharing/return-orders`: a merchant receiver gives a share back (before the
/// payer is refunded). Idempotent by `out_return_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateReturn {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// The sharing returned from.
    pub sharing: SharingRef,
    /// This return's number.
    pub out_return_no: String,
    /// The merchant receiver who gives back.
    pub return_mchid: String,
    /// How much.
    pub amount: Fen,
    /// Why.
    pub description: String,
}

impl CreateReturn {
    /// `amount` of `sharing` back from the merchant receiver `return_mchid`.
    pub fn new(
        sharing: SharingRef,
        out_return_no: impl Into<String>,
        return_mchid: impl Into<String>,
        amount: Fen,
        description: impl Into<String>,
    ) -> Self {
        CreateReturn {
            sub_mchid: None,
            sharing,
            out_return_no: out_return_no.into(),
            return_mchid: return_mchid.into(),
            amount,
            description: description.into(),
        }
    }

    /// Partner mode: for the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for CreateReturn {
    type Response = ReturnOrder;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        "/v3/profitsharing/return-orders".into()
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut body = ids(self.sub_mchid.as_ref(), None, None);
        match &self.sharing {
            SharingRef::OrderId(id) => body["order_id"] = json!(id),
            SharingRef::OutOrderNo(no) => body["out_order_no"] = json!(no),
        }
        body["out_return_no"] = json!(self.out_return_no);
        body["return_mchid"] = json!(self.return_mchid);
        body["amount"] = json!(self.amount);
        body["description"] = json!(self.description);
        Some(body)
    }
}

/// `GET /v3/profitsharing/return-orders/{out_return_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryReturn {
    /// Partner mode: the sub-merchant.
    pub sub_mchid: Option<String>,
    /// The sharing's number.
    pub out_order_no: String,
    /// The return's number.
    pub out_return_no: String,
}

impl QueryReturn {
    /// The return `out_return_no` of the sharing `out_order_no`.
    pub fn new(out_order_no: impl Into<String>, out_return_no: impl Into<String>) -> Self {
        QueryReturn {
            sub_mchid: None,
            out_order_no: out_order_no.into(),
            out_return_no: out_return_no.into(),
        }
    }

    /// Partner mode: of the sub-merchant `sub_mchid`.
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }
}

impl Request for QueryReturn {
    type Response = ReturnOrder;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let sub = sub_query(self.sub_mchid.as_ref());
        format!(
            "/v3/profitsharing/return-orders/{}?{sub}out_order_no={}",
            segment(&self.out_return_no),
            segment(&self.out_order_no)
        )
    }
}

wire_enum! {
    /// A return's `result`.
    pub enum ReturnResult {
        /// Under way.
        Processing => "PROCESSING",
        /// Given back.
        Success => "SUCCESS",
        /// Not given back (`fail_reason`).
        Failed => "FAILED",
    }
}

/// A return as WeChat Pay has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ReturnOrder {
    /// Partner mode: the sub-merchant.
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// The sharing's WeChat number.
    #[serde(default)]
    pub order_id: Option<String>,
    /// The sharing's number.
    #[serde(default)]
    pub out_order_no: Option<String>,
    /// The return's number.
    pub out_return_no: String,
    /// WeChat's number.
    #[serde(default)]
    pub return_id: Option<String>,
    /// Who gave back.
    pub return_mchid: String,
    /// How much.
    pub amount: Fen,
    /// Where it is.
    pub result: ReturnResult,
    /// Why it failed (`ACCOUNT_ABNORMAL`, `BALANCE_NOT_ENOUGH`, `TIME_OUT_CLOSED`…).
    #[serde(default)]
    pub fail_reason: Option<String>,
}

/// `GET /v3/profitsharing/transactions/{transaction_id}/amounts`: what is left to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsplitAmount {
    /// WeChat's transaction id.
    pub transaction_id: String,
}

/// What is left to share of a paid order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UnsplitAmountAnswer {
    /// The order.
    pub transaction_id: String,
    /// Frozen, not yet shared nor unfrozen.
    pub unsplit_amount: Fen,
}

impl Request for UnsplitAmount {
    type Response = UnsplitAmountAnswer;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/profitsharing/transactions/{}/amounts",
            segment(&self.transaction_id)
        )
    }
}

/// The decrypted resource of a `PROFITSHARING.*` notification (a share succeeded or closed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SharingNotification {
    /// The merchant (directly) or the service provider's merchant id.
    #[serde(default)]
    pub mchid: Option<String>,
    /// Partner mode: the service provider.
    #[serde(default)]
    pub sp_mchid: Option<String>,
    /// Partner mode: the sub-merchant.
    #[serde(default)]
    pub sub_mchid: Option<String>,
    /// The order shared.
    pub transaction_id: String,
    /// The sharing's WeChat number.
    pub order_id: String,
    /// The sharing's number.
    pub out_order_no: String,
    /// The share this is about.
    pub receiver: NotifiedShare,
    /// When it succeeded.
    #[serde(default)]
    pub success_time: Option<String>,
}

/// The share a notification is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct NotifiedShare {
    /// What `account` is.
    #[serde(rename = "type")]
    pub receiver_type: ReceiverType,
    /// The merchant id or openid.
    pub account: String,
    /// How much.
    pub amount: Fen,
    /// Why.
    #[serde(default)]
    pub description: String,
}
