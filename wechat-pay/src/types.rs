//! Value types shared by several endpoints: trade types and states, refund states, coupons, and
//! the two ways of naming an order.

use crate::wire_enum::wire_enum;
use crate::{Error, Fen, Params};

wire_enum! {
    /// How the payer pays (`trade_type`).
    pub enum TradeType {
        /// In the WeChat browser (Official Account) or a Mini Program: `wx.requestPayment`.
        Jsapi => "JSAPI",
        /// A QR code the payer scans (`code_url`).
        Native => "NATIVE",
        /// A native mobile app (the WeChat SDK).
        App => "APP",
        /// A mobile browser outside WeChat (`mweb_url`).
        Mweb => "MWEB",
        /// The merchant scans the payer's payment code.
        Micropay => "MICROPAY",
        /// Face payment.
        Facepay => "FACEPAY",
    }
}

wire_enum! {
    /// The state of an order (`trade_state`). These are values, not errors.
    pub enum TradeState {
        /// Paid.
        Success => "SUCCESS",
        /// Paid, then (partly) refunded.
        Refund => "REFUND",
        /// Not paid yet.
        NotPay => "NOTPAY",
        /// Closed before payment.
        Closed => "CLOSED",
        /// Reversed (micropay).
        Revoked => "REVOKED",
        /// The payer is confirming (micropay).
        UserPaying => "USERPAYING",
        /// Payment failed.
        PayError => "PAYERROR",
        /// Accepted, waiting for deduction (periodic payments).
        Accept => "ACCEPT",
    }
}

impl TradeState {
    /// Whether the money has been collected (`SUCCESS` or `REFUND`).
    pub fn is_paid(&self) -> bool {
        matches!(self, TradeState::Success | TradeState::Refund)
    }
}

wire_enum! {
    /// The state of a refund (`refund_status`).
    pub enum RefundStatus {
        /// The money is back with the payer.
        Success => "SUCCESS",
        /// The refund was closed.
        RefundClose => "REFUNDCLOSE",
        /// The refund is in progress.
        Processing => "PROCESSING",
        /// The refund failed and needs handling in the merchant platform.
        Change => "CHANGE",
    }
}

/// Names an order either by the merchant's number or by WeChat's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderId {
    /// The merchant's `out_trade_no`.
    OutTradeNo(String),
    /// WeChat's `transaction_id`.
    TransactionId(String),
}

impl OrderId {
    pub(crate) fn write(&self, p: &mut Params) {
        match self {
            OrderId::OutTradeNo(v) => p.insert("out_trade_no", v.as_str()),
            OrderId::TransactionId(v) => p.insert("transaction_id", v.as_str()),
        };
    }
}

/// A coupon or voucher applied to a payment (`coupon_*_$n`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Coupon {
    /// `coupon_id_$n`.
    pub id: String,
    /// `coupon_type_$n` (`CASH` or `NO_CASH`), when sent.
    pub coupon_type: Option<String>,
    /// `coupon_fee_$n`.
    pub fee: Fen,
}

impl Coupon {
    /// Reads `coupon_count` coupons named `coupon_id_{n}` / `coupon_type_{n}` / `coupon_fee_{n}`.
    pub(crate) fn read_all(p: &Params) -> Result<Vec<Coupon>, Error> {
        let count = p.optional_count("coupon_count")?;
        (0..count)
            .map(|n| {
                Ok(Coupon {
                    id: p.required_string(&format!("coupon_id_{n}"))?,
                    coupon_type: p.optional_string(&format!("coupon_type_{n}")),
                    fee: p.required_fen(&format!("coupon_fee_{n}"))?,
                })
            })
            .collect()
    }
}

/// `Y` / `N` flags (`is_subscribe`); anything but `Y` reads as `false`.
pub(crate) fn flag(p: &Params, field: &str) -> Option<bool> {
    p.optional(field).map(|v| v == "Y")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept() {
        assert_eq!(TradeState::from_wire("NOTPAY"), TradeState::NotPay);
        let new = TradeState::from_wire("SOMETHING_NEW");
        assert_eq!(new, TradeState::Other("SOMETHING_NEW".into()));
        assert_eq!(new.to_string(), "SOMETHING_NEW");
        assert!(TradeState::Refund.is_paid());
        assert!(!TradeState::NotPay.is_paid());
    }

    #[test]
    fn coupons_are_read_by_index() {
        let p: Params = [
            ("coupon_count", "2"),
            ("coupon_id_0", "a"),
            ("coupon_fee_0", "5"),
            ("coupon_id_1", "b"),
            ("coupon_type_1", "CASH"),
            ("coupon_fee_1", "7"),
        ]
        .into_iter()
        .collect();
        let coupons = Coupon::read_all(&p).unwrap();
        assert_eq!(coupons.len(), 2);
        assert_eq!(coupons[1].fee, Fen::new(7));
        assert_eq!(coupons[1].coupon_type.as_deref(), Some("CASH"));

        let missing: Params = [("coupon_count", "1")].into_iter().collect();
        assert!(Coupon::read_all(&missing).is_err());
        let huge: Params = [("coupon_count", "99999999")].into_iter().collect();
        assert!(Coupon::read_all(&huge).is_err());
    }
}

/// Formats an instant as WeChat's `yyyyMMddHHmmss` in China Standard Time (UTC+8).
pub(crate) fn wechat_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::macros::offset!(+8));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn wechat_time_is_china_standard_time() {
        let t = time::macros::datetime!(2024-01-31 16:05:09 UTC);
        assert_eq!(super::wechat_time(t), "20240201000509");
    }
}
