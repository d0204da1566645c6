//! `/pay/refundquery`: the refunds of an order, or one refund.

use super::{Endpoint, FromReply, RefundCoupon, Request};
use crate::{Error, Fen, Params, RefundStatus};

/// What to look refunds up by. With an order number, every refund of the order is listed
/// (up to 10 per page, see [`RefundQuery::offset`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefundQueryBy {
    /// `out_trade_no`: the merchant's order number.
    OutTradeNo(String),
    /// `transaction_id`: WeChat's order number.
    TransactionId(String),
    /// `out_refund_no`: the merchant's refund number.
    OutRefundNo(String),
    /// `refund_id`: WeChat's refund number.
    RefundId(String),
}

/// A refund query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuery {
    by: RefundQueryBy,
    offset: Option<u32>,
}

impl RefundQuery {
    /// Looks refunds up `by` one of the four numbers.
    pub fn new(by: RefundQueryBy) -> Self {
        RefundQuery { by, offset: None }
    }

    /// `offset`: skip this many refunds (orders with more than 10 refunds).
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = Some(offset);
        self
    }
}

impl Endpoint for RefundQuery {
    const PATH: &'static str = "/pay/refundquery";

    fn write_params(&self, p: &mut Params) {
        let (k, v) = match &self.by {
            RefundQueryBy::OutTradeNo(v) => ("out_trade_no", v),
            RefundQueryBy::TransactionId(v) => ("transaction_id", v),
            RefundQueryBy::OutRefundNo(v) => ("out_refund_no", v),
            RefundQueryBy::RefundId(v) => ("refund_id", v),
        };
        p.insert(k, v.as_str());
        p.insert_opt("offset", self.offset.map(|o| o.to_string()));
    }
}

impl Request for RefundQuery {
    type Response = RefundQueryResponse;
}

/// One refund of an order (`*_$n`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundRecord {
    /// `out_refund_no_$n`.
    pub out_refund_no: String,
    /// `refund_id_$n`.
    pub refund_id: String,
    /// `refund_channel_$n` (`ORIGINAL` or `BALANCE`).
    pub refund_channel: Option<String>,
    /// `refund_fee_$n`.
    pub refund_fee: Fen,
    /// `settlement_refund_fee_$n`.
    pub settlement_refund_fee: Option<Fen>,
    /// `coupon_refund_fee_$n`.
    pub coupon_refund_fee: Option<Fen>,
    /// `coupon_*_$n_$m`.
    pub coupons: Vec<RefundCoupon>,
    /// `refund_status_$n`: a value (PROCESSING, SUCCESS, CHANGE, REFUNDCLOSE).
    pub refund_status: RefundStatus,
    /// `refund_account_$n`.
    pub refund_account: Option<String>,
    /// `refund_recv_accout_$n` (WeChat's spelling): where the money went.
    pub refund_recv_account: Option<String>,
    /// `refund_success_time_$n` (`yyyy-MM-dd HH:mm:ss`, UTC+8).
    pub refund_success_time: Option<String>,
}

/// The refunds found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefundQueryResponse {
    /// `transaction_id`.
    pub transaction_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `total_fee`.
    pub total_fee: Fen,
    /// `settlement_total_fee`.
    pub settlement_total_fee: Option<Fen>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `cash_fee`.
    pub cash_fee: Fen,
    /// `total_refund_count`: refunds of the order in all (when paging).
    pub total_refund_count: Option<u32>,
    /// The refunds on this page.
    pub refunds: Vec<RefundRecord>,
}

impl FromReply for RefundQueryResponse {
    fn from_params(p: Params) -> Result<Self, Error> {
        let count = p.optional_count("refund_count")?;
        let refunds = (0..count)
            .map(|n| read_record(&p, n))
            .collect::<Result<_, Error>>()?;
        Ok(RefundQueryResponse {
            transaction_id: p.required_string("transaction_id")?,
            out_trade_no: p.required_string("out_trade_no")?,
            total_fee: p.required_fen("total_fee")?,
            settlement_total_fee: p.optional_fen("settlement_total_fee")?,
            fee_type: p.optional_string("fee_type"),
            cash_fee: p.required_fen("cash_fee")?,
            total_refund_count: p.optional_parse("total_refund_count")?,
            refunds,
        })
    }
}

fn read_record(p: &Params, n: usize) -> Result<RefundRecord, Error> {
    let coupon_count = p.optional_count(&format!("coupon_refund_count_{n}"))?;
    let coupons = (0..coupon_count)
        .map(|m| {
            Ok(RefundCoupon {
                id: p.required_string(&format!("coupon_refund_id_{n}_{m}"))?,
                coupon_type: p.optional_string(&format!("coupon_type_{n}_{m}")),
                fee: p.required_fen(&format!("coupon_refund_fee_{n}_{m}"))?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(RefundRecord {
        out_refund_no: p.required_string(&format!("out_refund_no_{n}"))?,
        refund_id: p.required_string(&format!("refund_id_{n}"))?,
        refund_channel: p.optional_string(&format!("refund_channel_{n}")),
        refund_fee: p.required_fen(&format!("refund_fee_{n}"))?,
        settlement_refund_fee: p.optional_fen(&format!("settlement_refund_fee_{n}"))?,
        coupon_refund_fee: p.optional_fen(&format!("coupon_refund_fee_{n}"))?,
        coupons,
        refund_status: p.required_parse(&format!("refund_status_{n}"))?,
        refund_account: p.optional_string(&format!("refund_account_{n}")),
        refund_recv_account: p.optional_string(&format!("refund_recv_accout_{n}")),
        refund_success_time: p.optional_string(&format!("refund_success_time_{n}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_indexed_refunds_and_their_coupons() {
        let p: Params = [
            ("transaction_id", "4200000001"),
            ("out_trade_no", "o1"),
            ("total_fee", "100"),
            ("cash_fee", "100"),
            ("refund_count", "2"),
            ("out_refund_no_0", "r0"),
            ("refund_id_0", "w0"),
            ("refund_fee_0", "30"),
            ("refund_status_0", "SUCCESS"),
            ("refund_recv_accout_0", "支付用户的零钱"),
            ("coupon_refund_count_0", "1"),
            ("coupon_refund_id_0_0", "c0"),
            ("coupon_refund_fee_0_0", "5"),
            ("out_refund_no_1", "r1"),
            ("refund_id_1", "w1"),
            ("refund_fee_1", "70"),
            ("refund_status_1", "PROCESSING"),
        ]
        .into_iter()
        .collect();
        let r = RefundQueryResponse::from_params(p).unwrap();
        assert_eq!(r.refunds.len(), 2);
        assert_eq!(r.refunds[0].refund_fee, Fen::new(30));
        assert_eq!(r.refunds[0].coupons[0].fee, Fen::new(5));
        assert_eq!(
            r.refunds[0].refund_recv_account.as_deref(),
            Some("支付用户的零钱")
        );
        assert_eq!(r.refunds[1].refund_status, RefundStatus::Processing);
    }
}
