//! `/pay/micropay`: charge the payer's payment code (the merchant scans the payer's phone).
//!
//! The outcome can be "paid", "the payer is confirming" or "unknown"; the last two are states,
//! not errors, and both mean: query the order (and reverse it if it does not complete).

use time::OffsetDateTime;

use super::{Endpoint, FromReply, Request};
use crate::types::{flag, wechat_time};
use crate::{ErrCode, Error, Fen, Params, TradeType};

/// A payment-code payment. `Debug` masks the code.
#[derive(Clone, PartialEq, Eq)]
pub struct Micropay {
    body: String,
    out_trade_no: String,
    total_fee: Fen,
    spbill_create_ip: String,
    auth_code: String,
    device_info: Option<String>,
    detail: Option<String>,
    attach: Option<String>,
    fee_type: Option<String>,
    goods_tag: Option<String>,
    time_expire: Option<String>,
}

impl std::fmt::Debug for Micropay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Micropay")
            .field("body", &self.body)
            .field("out_trade_no", &self.out_trade_no)
            .field("total_fee", &self.total_fee)
            .field("auth_code", &"***")
            .field("device_info", &self.device_info)
            .finish_non_exhaustive()
    }
}

impl Micropay {
    /// Charges `total_fee` for `body` to the payment code `auth_code`.
    pub fn new(
        body: impl Into<String>,
        out_trade_no: impl Into<String>,
        total_fee: Fen,
        spbill_create_ip: impl Into<String>,
        auth_code: impl Into<String>,
    ) -> Self {
        Micropay {
            body: body.into(),
            out_trade_no: out_trade_no.into(),
            total_fee,
            spbill_create_ip: spbill_create_ip.into(),
            auth_code: auth_code.into(),
            device_info: None,
            detail: None,
            attach: None,
            fee_type: None,
            goods_tag: None,
            time_expire: None,
        }
    }

    /// `device_info`.
    pub fn device_info(mut self, v: impl Into<String>) -> Self {
        self.device_info = Some(v.into());
        self
    }

    /// `detail`.
    pub fn detail(mut self, v: impl Into<String>) -> Self {
        self.detail = Some(v.into());
        self
    }

    /// `attach`.
    pub fn attach(mut self, v: impl Into<String>) -> Self {
        self.attach = Some(v.into());
        self
    }

    /// `fee_type`.
    pub fn fee_type(mut self, v: impl Into<String>) -> Self {
        self.fee_type = Some(v.into());
        self
    }

    /// `goods_tag`.
    pub fn goods_tag(mut self, v: impl Into<String>) -> Self {
        self.goods_tag = Some(v.into());
        self
    }

    /// `time_expire`.
    pub fn time_expire(mut self, t: OffsetDateTime) -> Self {
        self.time_expire = Some(wechat_time(t));
        self
    }
}

impl Endpoint for Micropay {
    const PATH: &'static str = "/pay/micropay";

    fn write_params(&self, p: &mut Params) {
        p.insert("body", self.body.as_str());
        p.insert("out_trade_no", self.out_trade_no.as_str());
        p.insert("total_fee", self.total_fee.to_string());
        p.insert("spbill_create_ip", self.spbill_create_ip.as_str());
        p.insert("auth_code", self.auth_code.as_str());
        p.insert_opt("device_info", self.device_info.as_deref());
        p.insert_opt("detail", self.detail.as_deref());
        p.insert_opt("attach", self.attach.as_deref());
        p.insert_opt("fee_type", self.fee_type.as_deref());
        p.insert_opt("goods_tag", self.goods_tag.as_deref());
        p.insert_opt("time_expire", self.time_expire.as_deref());
    }
}

impl Request for Micropay {
    type Response = MicropayOutcome;
}

/// What happened to a payment-code payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MicropayOutcome {
    /// Paid.
    Paid(MicropayPaid),
    /// `USERPAYING`: the payer is entering a password. Query the order every few seconds; reverse
    /// it if it is still unpaid after about 30 seconds.
    UserPaying,
    /// `SYSTEMERROR` / `BANKERROR`: the outcome is unknown. Query the order; reverse it if it
    /// cannot be confirmed.
    Unknown {
        /// The code WeChat gave.
        err_code: ErrCode,
        /// Its description.
        err_code_des: String,
    },
}

/// A completed payment-code payment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MicropayPaid {
    /// `transaction_id`.
    pub transaction_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `openid`.
    pub open_id: String,
    /// `is_subscribe`.
    pub is_subscribe: Option<bool>,
    /// `trade_type` (`MICROPAY`).
    pub trade_type: TradeType,
    /// `bank_type`.
    pub bank_type: String,
    /// `total_fee`.
    pub total_fee: Fen,
    /// `settlement_total_fee`.
    pub settlement_total_fee: Option<Fen>,
    /// `coupon_fee`.
    pub coupon_fee: Option<Fen>,
    /// `cash_fee`.
    pub cash_fee: Fen,
    /// `attach`.
    pub attach: Option<String>,
    /// `time_end`.
    pub time_end: String,
}

impl FromReply for MicropayOutcome {
    fn from_params(p: Params) -> Result<Self, Error> {
        Ok(MicropayOutcome::Paid(MicropayPaid {
            transaction_id: p.required_string("transaction_id")?,
            out_trade_no: p.required_string("out_trade_no")?,
            open_id: p.required_string("openid")?,
            is_subscribe: flag(&p, "is_subscribe"),
            trade_type: p.required_parse("trade_type")?,
            bank_type: p.required_string("bank_type")?,
            total_fee: p.required_fen("total_fee")?,
            settlement_total_fee: p.optional_fen("settlement_total_fee")?,
            coupon_fee: p.optional_fen("coupon_fee")?,
            cash_fee: p.required_fen("cash_fee")?,
            attach: p.optional_string("attach"),
            time_end: p.required_string("time_end")?,
        }))
    }

    fn from_business_failure(
        err_code: ErrCode,
        err_code_des: String,
        _params: Params,
    ) -> Result<Self, Error> {
        match err_code {
            ErrCode::UserPaying => Ok(MicropayOutcome::UserPaying),
            ErrCode::SystemError | ErrCode::BankError => Ok(MicropayOutcome::Unknown {
                err_code,
                err_code_des,
            }),
            _ => Err(Error::Business {
                err_code,
                err_code_des,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_the_buyers_code() {
        let pay = Micropay::new(
            "Cola",
            "M1",
            Fen::new(100),
            "10.0.0.1",
            "134567890123456789",
        );
        assert!(!format!("{pay:?}").contains("134567890123456789"));
    }

    #[test]
    fn in_progress_failures_are_states() {
        let p = Params::new();
        assert_eq!(
            MicropayOutcome::from_business_failure(ErrCode::UserPaying, String::new(), p.clone())
                .unwrap(),
            MicropayOutcome::UserPaying
        );
        assert!(matches!(
            MicropayOutcome::from_business_failure(ErrCode::BankError, "x".into(), p.clone()),
            Ok(MicropayOutcome::Unknown { .. })
        ));
        assert!(matches!(
            MicropayOutcome::from_business_failure(ErrCode::AuthCodeExpire, "x".into(), p),
            Err(Error::Business {
                err_code: ErrCode::AuthCodeExpire,
                ..
            })
        ));
    }
}
