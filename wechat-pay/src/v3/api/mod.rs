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
//! | payment-code payment (the merchant scans the payer) | `POST /v3/pay/transactions/codepay` | [`CodePayOrder`] | [`Transaction`] (`SUCCESS`, or `USERPAYING`) |
//! | reverse a code payment | `POST /v3/pay/transactions/out-trade-no/{no}/reverse` | [`ReverseTransaction`] | [`Reversed`] |
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
//! | profit-sharing receivers | `POST /v3/profitsharing/receivers/{add,delete}` (name encrypted) | [`AddReceiver`], [`DeleteReceiver`] | [`ReceiverRecord`] |
//! | share a paid order / query it / unfreeze the rest | `POST /v3/profitsharing/orders`, `GET …/orders/{out_order_no}`, `POST …/orders/unfreeze` | [`CreateSharing`], [`QuerySharing`], [`UnfreezeSharing`] | [`SharingOrder`] |
//! | return a share / query it | `POST /v3/profitsharing/return-orders`, `GET …/return-orders/{out_return_no}` | [`CreateReturn`], [`QueryReturn`] | [`ReturnOrder`] |
//! | combined payment (合单) | `POST /v3/combine-transactions/{jsapi,native,app,h5}` | [`CombineOrder`] | [`CombineCreated`] |
//! | query / close a combined payment | `GET /v3/combine-transactions/out-trade-no/{no}`, `POST …/close` | [`QueryCombine`], [`CloseCombine`] | [`CombineTransaction`], 204 |
//! | complaints: list, detail, negotiation | `GET /v3/merchant-service/complaints-v2`, `…/{id}`, `…/{id}/negotiation-historys` | [`ListComplaints`], [`QueryComplaint`], [`NegotiationHistory`] | [`ComplaintPage`], [`Complaint`], [`NegotiationPage`] |
//! | answer, refund decision, complete | `POST …/complaints-v2/{id}/response`, `…/update-refund-progress`, `…/complete` | [`RespondComplaint`], [`UpdateRefundProgress`], [`CompleteComplaint`] | 204 |
//! | complaint notification URL | `POST`/`PUT`/`GET`/`DELETE /v3/merchant-service/complaint-notifications` | [`SetComplaintNotifyUrl`], [`QueryComplaintNotifyUrl`], [`DeleteComplaintNotifyUrl`] | [`ComplaintNotifyUrl`], 204 |
//! | complaint images, merchant media | `POST /v3/merchant-service/images/upload`, `POST /v3/merchant/media/upload` (multipart, `meta` signed) | [`Client::upload_complaint_image`](crate::v3::Client::upload_complaint_image), [`Client::upload_media`](crate::v3::Client::upload_media) | `media_id` |
//! | what is left to share | `GET /v3/profitsharing/transactions/{id}/amounts` | [`UnsplitAmount`] | [`UnsplitAmountAnswer`] |
//!
//! Adding an endpoint: a file with its request and response types, a `mod` and `pub use` line
//! here, and a row in the table.

mod bills;
mod codepay;
mod combine;
mod complaints;
mod profit_sharing;
mod refunds;
mod transactions;
mod transfers;

pub use transfers::{CancelTransfer, CreateTransfer, QueryTransfer, TransferBill, TransferState};

pub use bills::{BillLink, FundFlowBill, TradeBill};
pub use codepay::{CodePayOrder, ReverseTransaction, Reversed};
pub use combine::{
    CloseCombine, CombineAmount, CombineCreated, CombineKind, CombineOrder, CombineSubOrder,
    CombineTransaction, QueryCombine, SubOrder,
};
pub use complaints::{
    Complaint, ComplaintMedia, ComplaintNotification, ComplaintNotifyUrl, ComplaintOrder,
    ComplaintPage, ComplaintState, CompleteComplaint, DeleteComplaintNotifyUrl, ListComplaints,
    NegotiationHistory, NegotiationPage, NegotiationRecord, Page, QueryComplaint,
    QueryComplaintNotifyUrl, RefundDecision, RespondComplaint, SetComplaintNotifyUrl,
    UpdateRefundProgress,
};

pub use profit_sharing::{
    AddReceiver, CreateReturn, CreateSharing, DeleteReceiver, NotifiedShare, QueryReturn,
    QuerySharing, ReceiverRecord, ReceiverType, RelationType, ReturnOrder, ReturnResult, Share,
    ShareRecord, ShareResult, SharingNotification, SharingOrder, SharingRef, SharingState,
    UnfreezeSharing, UnsplitAmount, UnsplitAmountAnswer,
};

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
