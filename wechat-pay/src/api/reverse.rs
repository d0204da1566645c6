//! `/secapi/pay/reverse`: cancel a payment-code (micropay) payment whose outcome is unknown or
//! that must be undone (needs the client certificate).

use super::{Endpoint, FromReply, Request};
use crate::{Error, OrderId, Params};

/// A reverse request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverse {
    order: OrderId,
}

impl Reverse {
    /// Reverses `order`.
    pub fn new(order: OrderId) -> Self {
        Reverse { order }
    }
}

impl Endpoint for Reverse {
    const PATH: &'static str = "/secapi/pay/reverse";
    const NEEDS_CERTIFICATE: bool = true;

    fn write_params(&self, p: &mut Params) {
        self.order.write(p);
    }
}

impl Request for Reverse {
    type Response = ReverseResponse;
}

/// Whether WeChat asks for the reverse to be called again (`recall`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recall {
    /// `recall=Y`: not finished; call reverse again.
    Again,
    /// `recall=N`: done.
    Done,
}

/// The reverse was processed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReverseResponse {
    /// `recall`.
    pub recall: Recall,
}

impl FromReply for ReverseResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        let recall = match p.required("recall")? {
            "Y" => Recall::Again,
            "N" => Recall::Done,
            other => {
                return Err(Error::decode(
                    "recall",
                    format!("unexpected value {other:?}"),
                ));
            }
        };
        Ok(ReverseResponse { recall })
    }
}
