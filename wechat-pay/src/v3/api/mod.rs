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
//! | query a refund | `GET /v3/refund/domestic/refunds/{out_refund_no}` | [`QueryRefund`] | [`RefundRecord`] |
//!
//! Adding an endpoint: a file with its request and response types, a `mod` and `pub use` line
//! here, and a row in the table.

mod refunds;
mod transactions;

pub use refunds::{CreateRefund, QueryRefund, RefundAmount, RefundRecord, RefundStatus};
pub use transactions::{
    Amount, AppOrder, CloseTransaction, CodeUrl, H5Order, H5Url, JsapiOrder, NativeOrder,
    OrderRequest, Payer, PrepayId, QueryTransaction, TradeState, Transaction, TransactionRef,
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
