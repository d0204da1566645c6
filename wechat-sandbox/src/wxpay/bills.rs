//! API v2's bill downloads (`/pay/downloadbill`, `/pay/downloadfundflow`): the request's
//! checks and WeChat's answers around the bills `settlement::bills` writes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::Response;

use super::{Prefixed, WxReply, protocol, run};
use crate::SandboxState;
use crate::settlement::bills::{self, fund_flow_bill, trade_bill};

fn no_bill() -> WxReply {
    protocol("No Bill Exist")
}

fn bill_date(req_date: &str) -> Result<String, WxReply> {
    if req_date.len() == 8 && req_date.bytes().all(|b| b.is_ascii_digit()) {
        Ok(req_date.to_owned())
    } else {
        Err(protocol("bill_date参数错误"))
    }
}

fn maybe_gzip(text: String, gzip: bool) -> Result<WxReply, WxReply> {
    if !gzip {
        return Ok(WxReply::File(text.into_bytes()));
    }
    bills::gzip(&text)
        .map(WxReply::File)
        .map_err(|_| protocol("SYSTEMERROR"))
}

/// `/pay/downloadbill`.
pub(super) async fn download_bill(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, _| {
        let date = bill_date(req.required("bill_date")?)?;
        let bill_type = req.optional("bill_type").unwrap_or("ALL");
        if !matches!(bill_type, "ALL" | "SUCCESS" | "REFUND") {
            return Err(protocol("bill_type参数错误"));
        }
        if state.faults.take_bill_not_ready() {
            return Err(protocol("Bill Creating"));
        }
        let text = trade_bill(state, &req.merchant.mch_id, &date, bill_type).ok_or_else(no_bill)?;
        maybe_gzip(text, req.optional("tar_type") == Some("GZIP"))
    })
    .await
}

/// `/pay/downloadfundflow`: HMAC-SHA256 only, like WeChat.
pub(super) async fn download_fund_flow(
    State(state): State<Arc<SandboxState>>,
    Extension(prefixed): Extension<Prefixed>,
    body: Bytes,
) -> Response {
    run(&state, prefixed, &body, |state, req, _| {
        if req.sign_type != wechat_pay::SignType::HmacSha256 {
            return Err(protocol("sign_type必须为HMAC-SHA256"));
        }
        let date = bill_date(req.required("bill_date")?)?;
        let account = req.required("account_type")?;
        if !matches!(account, "Basic" | "Operation" | "Fees") {
            return Err(protocol("account_type参数错误"));
        }
        let text =
            fund_flow_bill(state, &req.merchant.mch_id, &date, account).ok_or_else(no_bill)?;
        maybe_gzip(text, req.optional("tar_type") == Some("GZIP"))
    })
    .await
}
