//! Refunds: create, query.

use serde::Deserialize;
use serde_json::{Value, json};

use super::segment;
use super::transactions::TransactionRef;
use crate::Fen;
use crate::v3::Request;
use crate::wire_enum::wire_enum;

/// `POST /v3/refund/domestic/refunds`: idempotent by `out_refund_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateRefund {
    /// The order.
    pub order: TransactionRef,
    /// The refund's number.
    pub out_refund_no: String,
    /// The amount to refund.
    pub refund: Fen,
    /// The order's amount.
    pub total: Fen,
    /// Why (shown to the payer).
    pub reason: Option<String>,
    /// Where the refund's notification goes.
    pub notify_url: Option<String>,
    /// The sub-merchant (service-provider mode).
    pub sub_mchid: Option<String>,
}

impl CreateRefund {
    /// A refund of `refund` of an order of `total`.
    pub fn new(
        order: TransactionRef,
        out_refund_no: impl Into<String>,
        refund: Fen,
        total: Fen,
    ) -> Self {
        CreateRefund {
            order,
            out_refund_no: out_refund_no.into(),
            refund,
            total,
            reason: None,
            notify_url: None,
            sub_mchid: None,
        }
    }

    /// For a sub-merchant (service-provider mode).
    pub fn sub_mchid(mut self, sub_mchid: impl Into<String>) -> Self {
        self.sub_mchid = Some(sub_mchid.into());
        self
    }

    /// The reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The notify URL.
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }
}

wire_enum! {
    /// A refund's `status`.
    pub enum RefundStatus {
        /// Done.
        Success => "SUCCESS",
        /// Closed without refunding.
        Closed => "CLOSED",
        /// Being processed.
        Processing => "PROCESSING",
        /// Abnormal: the money could not reach the payer (use the abnormal-refund API).
        Abnormal => "ABNORMAL",
    }
}

/// A refund's amounts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundAmount {
    /// The order's amount.
    pub total: Fen,
    /// This refund's amount.
    pub refund: Fen,
    /// What the payer paid.
    #[serde(default)]
    pub payer_total: Option<Fen>,
    /// What the payer gets back.
    #[serde(default)]
    pub payer_refund: Option<Fen>,
    /// `CNY`.
    #[serde(default)]
    pub currency: String,
}

/// A refund as WeChat Pay has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RefundRecord {
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refund's number.
    pub out_refund_no: String,
    /// WeChat's transaction id.
    #[serde(default)]
    pub transaction_id: String,
    /// The merchant's order number.
    #[serde(default)]
    pub out_trade_no: String,
    /// Where it is.
    pub status: RefundStatus,
    /// When done.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The amounts.
    pub amount: RefundAmount,
}

impl Request for CreateRefund {
    type Response = RefundRecord;
    const METHOD: &'static str = "POST";
    fn path(&self, _: &str) -> String {
        "/v3/refund/domestic/refunds".into()
    }
    fn body(&self, _: &str) -> Option<Value> {
        let mut body = json!({
            "out_refund_no": self.out_refund_no,
            "amount": {"refund": self.refund, "total": self.total, "currency": "CNY"},
        });
        match &self.order {
            TransactionRef::OutTradeNo(no) => body["out_trade_no"] = json!(no),
            TransactionRef::TransactionId(id) => body["transaction_id"] = json!(id),
        }
        if let Some(r) = &self.reason {
            body["reason"] = json!(r);
        }
        if let Some(u) = &self.notify_url {
            body["notify_url"] = json!(u);
        }
        if let Some(s) = &self.sub_mchid {
            body["sub_mchid"] = json!(s);
        }
        Some(body)
    }
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}[?sub_mchid=…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRefund {
    /// The refund's number.
    pub out_refund_no: String,
    /// The sub-merchant (service-provider mode).
    pub sub_mchid: Option<String>,
}

impl QueryRefund {
    /// The refund `out_refund_no` of this merchant.
    pub fn new(out_refund_no: impl Into<String>) -> Self {
        QueryRefund {
            out_refund_no: out_refund_no.into(),
            sub_mchid: None,
        }
    }
}

impl Request for QueryRefund {
    type Response = RefundRecord;
    const METHOD: &'static str = "GET";
    fn path(&self, _: &str) -> String {
        let mut p = format!(
            "/v3/refund/domestic/refunds/{}",
            segment(&self.out_refund_no)
        );
        if let Some(s) = &self.sub_mchid {
            p.push_str(&format!("?sub_mchid={}", segment(s)));
        }
        p
    }
}

/// Where the money of an abnormal refund goes instead (WeChat's `type`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbnormalRefundTo {
    /// `USER_BANK_CARD`: a debit card of the payer's, which the merchant names (WeChat needs
    /// its bank, account and holder; the account and name are encrypted on the wire).
    UserBankCard {
        /// WeChat's bank type code (`ICBC_DEBIT`, `CMB_DEBIT`…).
        bank_type: String,
        /// The card's account number.
        bank_account: String,
        /// The card holder's name.
        real_name: String,
    },
    /// `MERCHANT_BANK_CARD`: the merchant's own settlement bank account (the merchant then
    /// pays the payer some other way).
    MerchantBankCard,
}

/// `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund`: a refund whose money
/// could not reach the payer (`ABNORMAL`), sent another way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbnormalRefund {
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refund's number.
    pub out_refund_no: String,
    /// Where to.
    pub to: AbnormalRefundTo,
    /// The sub-merchant (service-provider mode).
    pub sub_mchid: Option<String>,
}

impl Request for AbnormalRefund {
    type Response = RefundRecord;
    const METHOD: &'static str = "POST";
    const ENCRYPTS: bool = true;
    fn path(&self, _: &str) -> String {
        format!(
            "/v3/refund/domestic/refunds/{}/apply-abnormal-refund",
            segment(&self.refund_id)
        )
    }
    fn encrypted_body(
        &self,
        _: &str,
        encrypt: &mut dyn FnMut(&str) -> Result<String, crate::Error>,
    ) -> Result<Option<Value>, crate::Error> {
        let mut body = json!({"out_refund_no": self.out_refund_no});
        match &self.to {
            AbnormalRefundTo::UserBankCard {
                bank_type,
                bank_account,
                real_name,
            } => {
                body["type"] = json!("USER_BANK_CARD");
                body["bank_type"] = json!(bank_type);
                body["bank_account"] = json!(encrypt(bank_account)?);
                body["real_name"] = json!(encrypt(real_name)?);
            }
            AbnormalRefundTo::MerchantBankCard => body["type"] = json!("MERCHANT_BANK_CARD"),
        }
        if let Some(s) = &self.sub_mchid {
            body["sub_mchid"] = json!(s);
        }
        Ok(Some(body))
    }
}
