//! `/pay/closeorder`: close an unpaid order so it can no longer be paid.

use super::{Endpoint, FromReply, Request};
use crate::{Error, Params};

/// A close-order request. Closing a paid order fails with `ORDERPAID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOrder {
    out_trade_no: String,
}

impl CloseOrder {
    /// Closes the order `out_trade_no`.
    pub fn new(out_trade_no: impl Into<String>) -> Self {
        CloseOrder {
            out_trade_no: out_trade_no.into(),
        }
    }
}

impl Endpoint for CloseOrder {
    const PATH: &'static str = "/pay/closeorder";

    fn write_params(&self, p: &mut Params) {
        p.insert("out_trade_no", self.out_trade_no.as_str());
    }
}

impl Request for CloseOrder {
    type Response = CloseOrderResponse;
}

/// The order is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CloseOrderResponse {
    /// `result_msg`, when sent.
    pub result_msg: Option<String>,
}

impl FromReply for CloseOrderResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        Ok(CloseOrderResponse {
            result_msg: p.optional_string("result_msg"),
        })
    }
}
