//! What an order step can fail with, in the order's own terms. The routes turn these into HTTP
//! answers (`vending::routes`); the workers log them.

use super::super::db::OrderStatus;
use crate::providers::ChoiceError;

/// Why an order step did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// No machine with this code.
    #[error("no such machine")]
    MachineNotFound,
    /// The machine is out of service.
    #[error("the machine is offline")]
    MachineOffline,
    /// No slot of the machine holds the item.
    #[error("this item is sold out in this machine")]
    SoldOut,
    /// Someone else's order holds the machine.
    #[error("someone else is buying at this machine; try again shortly")]
    MachineBusy,
    /// Neither a channel nor a method was said.
    #[error("say which channel (or method) pays")]
    ChannelRequired,
    /// The channel or method asked for cannot pay here.
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    /// A Mini Program login code, but no Mini Program is configured.
    #[error("no Mini Program is configured on this server")]
    LoginUnavailable,
    /// The Mini Program login code was refused.
    #[error("the login code was refused: {0}")]
    JsCodeInvalid(String),
    /// The method needs the buyer's openid.
    #[error("this pay method needs the buyer's open_id")]
    OpenIdRequired,
    /// The buyer already has an order waiting for payment (its number, when it exists yet).
    #[error("you already have an order waiting for payment; pay or cancel it first")]
    OrderOpen(Option<String>),
    /// Only a completed order can be refunded by its seller.
    #[error("only a completed order can be refunded (this one is {})", .0.as_str())]
    NotRefundable(OrderStatus),
    /// A refund of this order is still on its way; another amount waits for it.
    #[error("a refund of this order is still in progress; try again once it is done")]
    RefundInProgress,
    /// Nothing, or more than is left, to refund.
    #[error("the refund must be more than zero and at most the {left} fen not refunded yet")]
    RefundAmount {
        /// What is left to refund, in fen.
        left: u64,
    },
    /// No order with this number.
    #[error("no such order")]
    OrderNotFound,
    /// The order already ended unpaid (its time ran out).
    #[error("the order already ended (not paid in time)")]
    Ended,
    /// The order was paid; the item or a refund is on its way.
    #[error("the order was paid ({}); it cannot be cancelled", .0.as_str())]
    Paid(OrderStatus),
    /// The payment service failed (a channel, its storage).
    #[error(transparent)]
    Payment(#[from] aggregate_pay::Error),
    /// No randomness for the order number.
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
    /// The order tables failed.
    #[error("order storage: {0}")]
    Storage(String),
}
