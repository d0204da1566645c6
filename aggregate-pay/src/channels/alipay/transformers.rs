//! Alipay's wire values (the `alipay` crate) ↔ the channel vocabulary. Amounts need no
//! conversion: `Fen` is this crate's [`Fen`] (`pay-money`'s).

use std::time::Duration;

use alipay::{Error as AliError, Product, SubCode, TradePagePay, TradeStatus};

use crate::channels::{ChannelPaymentState, NewPayment, NotifiedStatus, PayAction};
use crate::{ChannelError, Fen, PayMethod};

/// A refusal keeps Alipay's `sub_code` (else its `code`) as the channel's code; the codes
/// Alipay documents as "try again" (`ACQ.SYSTEM_ERROR`, `isp.*`, a seller balance to top up)
/// are [`ChannelError::Unavailable`].
pub(super) fn error(e: AliError) -> ChannelError {
    let retryable = e.is_retryable();
    classify(e, retryable)
}

/// How long to wait after `ACQ.SELLER_BALANCE_NOT_ENOUGH` (the balance must be topped up).
pub(super) const BALANCE_WAIT: Duration = Duration::from_secs(30 * 60);

/// A refund error: only the sub codes Alipay documents as final for a refund are definitive;
/// any other (a system error, a code this crate does not know) leaves the refund pending, to be
/// sent again with the same `out_request_no`.
pub(super) fn refund_error(e: AliError) -> ChannelError {
    let definitive = e.sub_code().is_some_and(|c| {
        matches!(
            c,
            SubCode::InvalidParameter
                | SubCode::TradeNotExist
                | SubCode::TradeHasClose
                | SubCode::TradeStatusError
                | SubCode::TradeHasFinished
                | SubCode::RefundAmountNotEqualTotal
                | SubCode::RefundAmountRestricted
                | SubCode::ContextInconsistent
        ) || matches!(c, SubCode::Other(s) if DEFINITIVE_REFUND_CODES.contains(&s.as_str()))
    });
    classify(e, !definitive)
}

/// Final refund sub codes the `SubCode` enum keeps as `Other`.
const DEFINITIVE_REFUND_CODES: &[&str] = &[
    "ACQ.REFUND_FEE_ERROR",
    "ACQ.REASON_TRADE_BEEN_FREEZEN",
    "ACQ.TRADE_NOT_ALLOW_REFUND",
    "ACQ.DISCORDANT_REPEAT_REQUEST",
    "ACQ.REASON_TRADE_REFUND_FEE_ERR",
    "ACQ.BUYER_ERROR",
    "ACQ.ONLINE_TRADE_VOUCHER_NOT_ALLOW_REFUND",
    "ACQ.REFUND_CHARGE_ERROR",
];

fn classify(e: AliError, retryable: bool) -> ChannelError {
    match e {
        AliError::Transport(m) => ChannelError::Transport(m),
        AliError::Gateway {
            code,
            sub_code,
            message,
        } => {
            let wait = (sub_code == SubCode::SellerBalanceNotEnough).then_some(BALANCE_WAIT);
            let code = match sub_code {
                SubCode::Other(s) if s.is_empty() => code,
                other => other.as_str().to_owned(),
            };
            if retryable {
                ChannelError::Unavailable {
                    code,
                    message,
                    retry_after: wait,
                }
            } else {
                ChannelError::Rejected { code, message }
            }
        }
        AliError::Signature(s) => ChannelError::Signature(s.to_string()),
        e @ AliError::AccountMismatch { .. } => ChannelError::Signature(e.to_string()),
        e @ AliError::Decode { .. } => ChannelError::Decode(e.to_string()),
        other => ChannelError::Config(other.to_string()),
    }
}

/// Whether an `alipay.trade.pay` refusal is the buyer's definitive "no" (nothing taken): the
/// code is invalid or used, the buyer's balance, card or limits will not do, the buyer's account
/// is restricted, the payment failed.
pub(super) fn declines_code(e: &AliError) -> bool {
    e.sub_code().is_some_and(|c| {
        matches!(
            c,
            SubCode::BuyerBalanceNotEnough
                | SubCode::PaymentAuthCodeInvalid
                | SubCode::TradeHasClose
        ) || matches!(c, SubCode::Other(s) if DECLINED_CODES.contains(&s.as_str()))
    })
}

/// Declining `alipay.trade.pay` sub codes the `SubCode` enum keeps as `Other`.
const DECLINED_CODES: &[&str] = &[
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH",
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE",
    "ACQ.BUYER_SELLER_EQUAL",
    "ACQ.BUYER_ENABLE_STATUS_FORBID",
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
    "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR",
    "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT",
    "ACQ.PAYMENT_FAIL",
    "ACQ.PAYMENT_REQUEST_HAS_RISK",
    "ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE",
    "ACQ.USER_FACE_PAYMENT_SWITCH_OFF",
    "ACQ.AUTH_NO_ERROR",
];

/// Whether a refusal is this sub code.
pub(super) fn is(e: &AliError, sub_code: &SubCode) -> bool {
    e.sub_code() == Some(sub_code)
}

/// The checkout of a page, mobile-web or app payment.
pub(super) fn checkout(r: &NewPayment) -> Option<TradePagePay> {
    let product = match r.method {
        PayMethod::AlipayPage => Product::Desktop,
        PayMethod::AlipayWap => Product::MobileWeb,
        PayMethod::AlipayApp => Product::App,
        _ => return None,
    };
    let mut page =
        TradePagePay::new(product, &r.out_trade_no, r.amount, &r.subject).notify_url(&r.notify_url);
    if let Some(u) = &r.return_url {
        page = page.return_url(u);
    }
    if let Some(at) = r.expires_at {
        page = page.expires_at(at);
    }
    Some(page)
}

/// What the front end does with a signed checkout.
pub(super) fn checkout_action(
    client: &alipay::Client,
    r: &NewPayment,
    page: &TradePagePay,
) -> Result<PayAction, ChannelError> {
    Ok(match r.method {
        PayMethod::AlipayApp => PayAction::AlipayApp {
            order_string: client.order_string(page).map_err(error)?,
        },
        _ => PayAction::Redirect {
            url: client.page_url(page).map_err(error)?,
        },
    })
}

/// A trade's status as a channel state.
pub(super) fn payment_state(
    status: &TradeStatus,
    trade_no: &str,
    total_amount: Fen,
) -> ChannelPaymentState {
    match status {
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => ChannelPaymentState::Paid {
            transaction_id: trade_no.to_owned(),
            amount: total_amount,
        },
        TradeStatus::TradeClosed => ChannelPaymentState::Closed,
        _ => ChannelPaymentState::Pending,
    }
}

/// A notified status.
pub(super) fn notified(status: &TradeStatus) -> NotifiedStatus {
    match status {
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => NotifiedStatus::Paid,
        TradeStatus::TradeClosed => NotifiedStatus::Closed,
        _ => NotifiedStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_channel_vocabulary() {
        assert_eq!(notified(&TradeStatus::TradeFinished), NotifiedStatus::Paid);
        assert_eq!(notified(&TradeStatus::TradeClosed), NotifiedStatus::Closed);
        assert_eq!(
            notified(&TradeStatus::WaitBuyerPay),
            NotifiedStatus::Pending
        );
        assert_eq!(
            payment_state(&TradeStatus::TradeSuccess, "T1", Fen::new(350)),
            ChannelPaymentState::Paid {
                transaction_id: "T1".into(),
                amount: Fen::new(350)
            }
        );
        assert_eq!(
            payment_state(&TradeStatus::Other("NEW".into()), "T1", Fen::new(1)),
            ChannelPaymentState::Pending
        );
    }

    #[test]
    fn refusals_keep_the_sub_code() {
        let e = error(AliError::Gateway {
            code: "40004".into(),
            sub_code: SubCode::TradeNotExist,
            message: "交易不存在".into(),
        });
        assert!(
            matches!(&e, ChannelError::Rejected { code, message }
                if code == "ACQ.TRADE_NOT_EXIST" && message == "交易不存在"),
            "{e:?}"
        );
        let e = error(AliError::Gateway {
            code: "20000".into(),
            sub_code: SubCode::Other(String::new()),
            message: "Service Currently Unavailable".into(),
        });
        assert!(
            matches!(&e, ChannelError::Unavailable { code, .. } if code == "20000"),
            "{e:?}"
        );
    }

    #[test]
    fn only_final_refund_codes_are_definitive() {
        let gateway = |sub: &str| AliError::Gateway {
            code: "40004".into(),
            sub_code: SubCode::parse(sub),
            message: "m".into(),
        };
        for sub in [
            "ACQ.SYSTEM_ERROR",
            "aop.ACQ.SYSTEM_ERROR",
            "ACQ.SOMETHING_NEW",
        ] {
            let e = refund_error(gateway(sub));
            assert!(e.is_retryable(), "{sub}: {e:?}");
            assert_eq!(e.retry_after(), None);
        }
        let e = refund_error(gateway("ACQ.SELLER_BALANCE_NOT_ENOUGH"));
        assert_eq!(e.retry_after(), Some(BALANCE_WAIT), "{e:?}");
        for sub in [
            "ACQ.TRADE_NOT_EXIST",
            "ACQ.TRADE_HAS_CLOSE",
            "ACQ.TRADE_NOT_ALLOW_REFUND",
        ] {
            let e = refund_error(gateway(sub));
            assert!(
                matches!(&e, ChannelError::Rejected { code, .. } if code == sub),
                "{e:?}"
            );
        }
    }
}
