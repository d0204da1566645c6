//! Settlement sharing (分账) on a paid trade: `alipay.trade.royalty.relation.bind` declares who
//! may receive a share of the merchant's trades; `alipay.trade.order.settle` moves a share of a
//! paid trade to them (the platform's fee, for a service provider). Idempotent by
//! `out_request_no`. Amounts are [`Fen`].

use serde::{Deserialize, Serialize};

use super::Request;
use crate::Fen;

/// How a receiver's account is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AccountType {
    /// An Alipay user id (`2088…`).
    #[serde(rename = "userId")]
    UserId,
    /// An open id.
    #[serde(rename = "openId")]
    OpenId,
    /// A login (phone or e-mail).
    #[serde(rename = "loginName")]
    LoginName,
}

/// A receiver to bind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoyaltyReceiver {
    #[serde(rename = "type")]
    account_type: AccountType,
    account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memo: Option<String>,
}

impl RoyaltyReceiver {
    /// `account` of `account_type`.
    pub fn new(account_type: AccountType, account: impl Into<String>) -> Self {
        RoyaltyReceiver {
            account_type,
            account: account.into(),
            name: None,
            memo: None,
        }
    }

    /// The receiver's real name (required with a login name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// `alipay.trade.royalty.relation.bind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoyaltyRelationBind {
    receiver_list: Vec<RoyaltyReceiver>,
    out_request_no: String,
}

impl RoyaltyRelationBind {
    /// Binds `receivers`, numbered `out_request_no`.
    pub fn new(out_request_no: impl Into<String>, receivers: Vec<RoyaltyReceiver>) -> Self {
        RoyaltyRelationBind {
            receiver_list: receivers,
            out_request_no: out_request_no.into(),
        }
    }
}

/// The binding's result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RoyaltyBindResponse {
    /// `SUCCESS`.
    #[serde(default)]
    pub result_code: Option<String>,
}

impl Request for RoyaltyRelationBind {
    const METHOD: &'static str = "alipay.trade.royalty.relation.bind";
    type Response = RoyaltyBindResponse;
}

/// One share of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoyaltyShare {
    royalty_type: &'static str,
    trans_in_type: AccountType,
    trans_in: String,
    #[serde(with = "pay_money::yuan")]
    amount: Fen,
    #[serde(skip_serializing_if = "Option::is_none")]
    desc: Option<String>,
}

impl RoyaltyShare {
    /// `amount` to `trans_in` (a bound receiver).
    pub fn new(trans_in_type: AccountType, trans_in: impl Into<String>, amount: Fen) -> Self {
        RoyaltyShare {
            royalty_type: "transfer",
            trans_in_type,
            trans_in: trans_in.into(),
            amount,
            desc: None,
        }
    }

    /// What it is for.
    pub fn desc(mut self, desc: impl Into<String>) -> Self {
        self.desc = Some(desc.into());
        self
    }
}

/// `alipay.trade.order.settle`: shares a paid trade's money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeOrderSettle {
    out_request_no: String,
    trade_no: String,
    royalty_parameters: Vec<RoyaltyShare>,
}

impl TradeOrderSettle {
    /// Shares Alipay's trade `trade_no` as `shares` say, numbered `out_request_no`.
    pub fn new(
        out_request_no: impl Into<String>,
        trade_no: impl Into<String>,
        shares: Vec<RoyaltyShare>,
    ) -> Self {
        TradeOrderSettle {
            out_request_no: out_request_no.into(),
            trade_no: trade_no.into(),
            royalty_parameters: shares,
        }
    }
}

/// The settlement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SettleResponse {
    /// The trade.
    pub trade_no: String,
    /// Alipay's number of the settlement.
    #[serde(default)]
    pub settle_no: Option<String>,
}

impl Request for TradeOrderSettle {
    const METHOD: &'static str = "alipay.trade.order.settle";
    type Response = SettleResponse;
}
