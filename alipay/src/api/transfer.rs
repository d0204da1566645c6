//! `alipay.fund.trans.uni.transfer` and `alipay.fund.trans.common.query`: money from the
//! merchant's Alipay balance to a user's account (certificate mode only, as Alipay requires).
//! Idempotent by `out_biz_no`: a transfer whose answer was lost is asked again with the same
//! number, or queried — never sent under a new one.

use serde::{Deserialize, Serialize};

use super::Request;
use crate::Fen;

/// How the payee is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayeeIdentity {
    /// The payee's Alipay user id (`2088…`).
    AlipayUserId,
    /// The payee's open id for this app.
    AlipayOpenId,
    /// The payee's login (phone or e-mail): their real name is required.
    AlipayLogonId,
}

/// The payee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payee {
    identity: String,
    identity_type: PayeeIdentity,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl Payee {
    /// The payee `identity` of kind `identity_type`.
    pub fn new(identity_type: PayeeIdentity, identity: impl Into<String>) -> Self {
        Payee {
            identity: identity.into(),
            identity_type,
            name: None,
        }
    }

    /// Their real name (checked by Alipay; required with a login id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A transfer to an Alipay account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundTransfer {
    out_biz_no: String,
    #[serde(with = "pay_money::yuan")]
    trans_amount: Fen,
    product_code: &'static str,
    biz_scene: &'static str,
    order_title: String,
    payee_info: Payee,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<String>,
}

impl FundTransfer {
    /// `trans_amount` to `payee`, numbered `out_biz_no`, titled `order_title`.
    pub fn new(
        out_biz_no: impl Into<String>,
        trans_amount: Fen,
        order_title: impl Into<String>,
        payee: Payee,
    ) -> Self {
        FundTransfer {
            out_biz_no: out_biz_no.into(),
            trans_amount,
            product_code: "TRANS_ACCOUNT_NO_PWD",
            biz_scene: "DIRECT_TRANSFER",
            order_title: order_title.into(),
            payee_info: payee,
            remark: None,
        }
    }

    /// A remark the payee sees.
    pub fn remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferStatus {
    /// The money arrived.
    Success,
    /// Under way: query again later.
    Dealing,
    /// Failed: nothing moved (see `fail_reason`).
    Fail,
    /// Paid, then returned to the merchant (the account could not take it).
    Refund,
    /// A status this crate does not know.
    Other(String),
}

impl TransferStatus {
    /// Reads Alipay's text.
    pub fn parse(s: &str) -> Self {
        match s {
            "SUCCESS" => TransferStatus::Success,
            "DEALING" | "WAIT_PAY" | "INIT" => TransferStatus::Dealing,
            "FAIL" | "CLOSED" => TransferStatus::Fail,
            "REFUND" => TransferStatus::Refund,
            other => TransferStatus::Other(other.to_owned()),
        }
    }

    /// Whether this is where the transfer ends (success, failure or returned).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TransferStatus::Success | TransferStatus::Fail | TransferStatus::Refund
        )
    }
}

impl<'de> Deserialize<'de> for TransferStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(TransferStatus::parse(&String::deserialize(d)?))
    }
}

/// The transfer as made.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TransferResponse {
    /// The merchant's number.
    pub out_biz_no: String,
    /// Alipay's transfer order.
    pub order_id: String,
    /// Alipay's fund order.
    #[serde(default)]
    pub pay_fund_order_id: Option<String>,
    /// Where it is.
    pub status: TransferStatus,
    /// When it was made (China time).
    #[serde(default)]
    pub trans_date: Option<String>,
}

impl Request for FundTransfer {
    const METHOD: &'static str = "alipay.fund.trans.uni.transfer";
    type Response = TransferResponse;
}

/// Queries a transfer by the merchant's number or Alipay's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundTransferQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    out_biz_no: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    product_code: &'static str,
    biz_scene: &'static str,
}

impl FundTransferQuery {
    /// The transfer the merchant numbered `out_biz_no`.
    pub fn by_out_biz_no(out_biz_no: impl Into<String>) -> Self {
        FundTransferQuery {
            out_biz_no: Some(out_biz_no.into()),
            order_id: None,
            product_code: "TRANS_ACCOUNT_NO_PWD",
            biz_scene: "DIRECT_TRANSFER",
        }
    }

    /// The transfer Alipay numbered `order_id`.
    pub fn by_order_id(order_id: impl Into<String>) -> Self {
        FundTransferQuery {
            out_biz_no: None,
            order_id: Some(order_id.into()),
            product_code: "TRANS_ACCOUNT_NO_PWD",
            biz_scene: "DIRECT_TRANSFER",
        }
    }
}

/// The transfer as it stands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TransferQueryResponse {
    /// Alipay's transfer order.
    pub order_id: String,
    /// The merchant's number.
    #[serde(default)]
    pub out_biz_no: Option<String>,
    /// Alipay's fund order.
    #[serde(default)]
    pub pay_fund_order_id: Option<String>,
    /// Where it is.
    pub status: TransferStatus,
    /// The amount.
    #[serde(with = "pay_money::yuan")]
    pub trans_amount: Fen,
    /// When the money moved.
    #[serde(default)]
    pub pay_date: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// Alipay's error code for a failure.
    #[serde(default)]
    pub error_code: Option<String>,
}

impl Request for FundTransferQuery {
    const METHOD: &'static str = "alipay.fund.trans.common.query";
    type Response = TransferQueryResponse;
}
