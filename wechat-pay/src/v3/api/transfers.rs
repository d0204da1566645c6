//! Transfers to users (商家转账, `/v3/fund-app/mch-transfer/transfer-bills`): create (the
//! user's name encrypted to WeChat Pay's key), query, cancel.

use serde::Deserialize;
use serde_json::{Value, json};

use super::segment;
use crate::v3::Request;
use crate::wire_enum::wire_enum;
use crate::{Error, Fen};

/// `POST /v3/fund-app/mch-transfer/transfer-bills`: idempotent by `out_bill_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateTransfer {
    /// The app id the user's openid belongs to.
    pub app_id: String,
    /// The transfer's number.
    pub out_bill_no: String,
    /// The transfer scene registered in the merchant platform (`1000`, `1005`…).
    pub transfer_scene_id: String,
    /// The user.
    pub openid: String,
    /// The user's real name, checked by WeChat (encrypted on the wire); needed from 2,000 yuan.
    pub user_name: Option<String>,
    /// The amount.
    pub transfer_amount: Fen,
    /// What the user sees (≤ 32 characters).
    pub transfer_remark: String,
    /// Where the result is notified.
    pub notify_url: Option<String>,
    /// The scene's report items (`info_type`, `info_content`), as the scene requires.
    pub scene_report: Vec<(String, String)>,
}

impl CreateTransfer {
    /// A transfer of `amount` to `openid` of `app_id`.
    pub fn new(
        app_id: impl Into<String>,
        out_bill_no: impl Into<String>,
        transfer_scene_id: impl Into<String>,
        openid: impl Into<String>,
        amount: Fen,
        remark: impl Into<String>,
    ) -> Self {
        CreateTransfer {
            app_id: app_id.into(),
            out_bill_no: out_bill_no.into(),
            transfer_scene_id: transfer_scene_id.into(),
            openid: openid.into(),
            user_name: None,
            transfer_amount: amount,
            transfer_remark: remark.into(),
            notify_url: None,
            scene_report: Vec::new(),
        }
    }

    /// The user's real name (encrypted when sent).
    pub fn user_name(mut self, name: impl Into<String>) -> Self {
        self.user_name = Some(name.into());
        self
    }

    /// A scene report item.
    pub fn report(mut self, info_type: impl Into<String>, info_content: impl Into<String>) -> Self {
        self.scene_report
            .push((info_type.into(), info_content.into()));
        self
    }

    /// The notify URL.
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }
}

wire_enum! {
    /// A transfer's `state`.
    pub enum TransferState {
        /// Accepted.
        Accepted => "ACCEPTED",
        /// Being processed.
        Processing => "PROCESSING",
        /// Waiting for the user to confirm (in WeChat).
        WaitUserConfirm => "WAIT_USER_CONFIRM",
        /// Being transferred.
        Transfering => "TRANSFERING",
        /// Done.
        Success => "SUCCESS",
        /// Failed (see `fail_reason`).
        Fail => "FAIL",
        /// Being cancelled.
        Canceling => "CANCELING",
        /// Cancelled.
        Cancelled => "CANCELLED",
    }
}

/// A transfer as WeChat Pay has it (create, cancel and query answers; its notification).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TransferBill {
    /// The transfer's number.
    pub out_bill_no: String,
    /// WeChat's number.
    #[serde(default)]
    pub transfer_bill_no: String,
    /// Where it is.
    pub state: TransferState,
    /// The amount (queries, notifications).
    #[serde(default)]
    pub transfer_amount: Option<Fen>,
    /// Why it failed.
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// The user (queries).
    #[serde(default)]
    pub openid: Option<String>,
    /// What the user confirms with in WeChat (`WAIT_USER_CONFIRM`).
    #[serde(default)]
    pub package_info: Option<String>,
    /// When created.
    #[serde(default)]
    pub create_time: Option<String>,
    /// When last changed.
    #[serde(default)]
    pub update_time: Option<String>,
}

impl Request for CreateTransfer {
    type Response = TransferBill;
    const METHOD: &'static str = "POST";
    const ENCRYPTS: bool = true;
    fn path(&self, _: &str) -> String {
        "/v3/fund-app/mch-transfer/transfer-bills".into()
    }
    fn encrypted_body(
        &self,
        _: &str,
        encrypt: &mut dyn FnMut(&str) -> Result<String, Error>,
    ) -> Result<Option<Value>, Error> {
        let mut body = json!({
            "appid": self.app_id,
            "out_bill_no": self.out_bill_no,
            "transfer_scene_id": self.transfer_scene_id,
            "openid": self.openid,
            "transfer_amount": self.transfer_amount,
            "transfer_remark": self.transfer_remark,
            "transfer_scene_report_infos": self.scene_report.iter()
                .map(|(t, c)| json!({"info_type": t, "info_content": c}))
                .collect::<Vec<_>>(),
        });
        if let Some(name) = &self.user_name {
            body["user_name"] = json!(encrypt(name)?);
        }
        if let Some(url) = &self.notify_url {
            body["notify_url"] = json!(url);
        }
        Ok(Some(body))
    }
}

/// `GET /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTransfer {
    /// The transfer's number.
    pub out_bill_no: String,
}

impl Request for QueryTransfer {
    type Response = TransferBill;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{}",
            segment(&self.out_bill_no)
        )
    }
}

/// `POST /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}/cancel`: before
/// the user confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTransfer {
    /// The transfer's number.
    pub out_bill_no: String,
}

impl Request for CancelTransfer {
    type Response = TransferBill;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{}/cancel",
            segment(&self.out_bill_no)
        )
    }
    fn body(&self, _: &str) -> Option<Value> {
        Some(json!({}))
    }
}
