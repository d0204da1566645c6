//! The API v3 endpoints, one file per resource, each request type implementing
//! [`Request`](super::Request).
//!
//! | endpoint | method and path | request | answers |
//! |---|---|---|---|
//! | JSAPI / Mini Program order | `POST /v3/pay/transactions/jsapi` | [`JsapiOrder`] | [`PrepayId`] |
//! | Native order | `POST /v3/pay/transactions/native` | [`NativeOrder`] | [`CodeUrl`] |
//! | APP order | `POST /v3/pay/transactions/app` | [`AppOrder`] | [`PrepayId`] |
//! | H5 order | `POST /v3/pay/transactions/h5` | [`H5Order`] | [`H5Url`] |
//! | query by out_trade_no / transaction_id | `GET /v3/pay/transactions/out-trade-no/{no}`, `…/id/{id}` | [`QueryTransaction`] | [`Transaction`] |
//! | close | `POST /v3/pay/transactions/out-trade-no/{no}/close` | [`CloseTransaction`] | 204 |
//! | refund | `POST /v3/refund/domestic/refunds` | [`CreateRefund`] | [`RefundRecord`] |
//! | abnormal refund | `POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund` (card encrypted) | [`AbnormalRefund`] | [`RefundRecord`] |
//! | partner (service-provider) orders | `POST /v3/pay/partner/transactions/{jsapi,native,app,h5}` | the orders above with [`OrderRequest::for_sub_merchant`] | as above |
//! | partner query / close | `GET /v3/pay/partner/transactions/…`, `POST …/close` | [`PartnerQueryTransaction`], [`PartnerCloseTransaction`] | [`Transaction`], 204 |
//! | partner refunds | as above, with `sub_mchid` | [`CreateRefund::sub_mchid`], [`QueryRefund`] | [`RefundRecord`] |
//! | query a refund | `GET /v3/refund/domestic/refunds/{out_refund_no}` | [`QueryRefund`] | [`RefundRecord`] |
//! | transfer to a user | `POST /v3/fund-app/mch-transfer/transfer-bills` (name encrypted) | [`CreateTransfer`] | [`TransferBill`] |
//! | query / cancel a transfer | `GET …/transfer-bills/out-bill-no/{no}`, `POST …/{no}/cancel` | [`QueryTransfer`], [`CancelTransfer`] | [`TransferBill`] |
//! | trade bill | `GET /v3/bill/tradebill` | [`TradeBill`] | [`BillLink`] → [`Client::trade_bill`](crate::v3::Client::trade_bill) |
//! | fund-flow bill | `GET /v3/bill/fundflowbill` | [`FundFlowBill`] | [`BillLink`] → [`Client::fund_flow_bill`](crate::v3::Client::fund_flow_bill) |
//!
//! Adding an endpoint: a file with its request and response types, a `mod` and `pub use` line
//! here, and a row in the table.

mod bills;
mod refunds;
mod transactions;
mod transfers;

pub use transfers::{CancelTransfer, CreateTransfer, QueryTransfer, TransferBill, TransferState};

pub use bills::{BillLink, FundFlowBill, TradeBill};

pub use refunds::{
    AbnormalRefund, AbnormalRefundTo, CreateRefund, QueryRefund, RefundAmount, RefundRecord,
    RefundStatus,
};
pub use transactions::{
    Amount, AppOrder, CloseTransaction, CodeUrl, H5Order, H5Url, JsapiOrder, NativeOrder,
    NoContent, OrderRequest, Partner, PartnerCloseTransaction, PartnerQueryTransaction, Payer,
    PrepayId, QueryTransaction, TradeState, Transaction, TransactionRef,
};

/// A path segment, percent-encoded (merchant numbers are letters, digits, `_`, `-`, `|`, `*`).
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
