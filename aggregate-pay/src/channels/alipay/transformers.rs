//! Alipay's wire values (the `alipay` crate) ↔ the channel vocabulary. Amounts cross here as
//! integers of fen on both sides.

use alipay::{Error as AliError, Product, SubCode, TradePagePay, TradeStatus};

use crate::channels::{ChannelPaymentState, CreatePayment, NotifiedStatus, PayAction};
use crate::{ChannelError, Fen, PayMethod};

/// Fen, as the alipay crate counts it.
pub(super) fn to_alipay(fen: Fen) -> alipay::Fen {
    alipay::Fen::new(fen.as_u64())
}

/// Fen, as this crate counts it.
pub(super) fn from_alipay(fen: alipay::Fen) -> Fen {
    Fen::new(fen.as_u64())
}

/// A refusal keeps Alipay's `sub_code` (else its `code`) as the channel's code.
pub(super) fn error(e: AliError) -> ChannelError {
    match e {
        AliError::Transport(m) => ChannelError::Transport(m),
        AliError::Gateway {
            code,
            sub_code,
            message,
        } => ChannelError::Rejected {
            code: match sub_code {
                SubCode::Other(s) if s.is_empty() => code,
                other => other.as_str().to_owned(),
            },
            message,
        },
        AliError::Signature(s) => ChannelError::Signature(s.to_string()),
        e @ AliError::AccountMismatch { .. } => ChannelError::Signature(e.to_string()),
        e @ AliError::Decode { .. } => ChannelError::Decode(e.to_string()),
        other => ChannelError::Config(other.to_string()),
    }
}

/// Whether a refusal is this sub code.
pub(super) fn is(e: &AliError, sub_code: &SubCode) -> bool {
    e.sub_code() == Some(sub_code)
}

/// The checkout of a page, mobile-web or app payment.
pub(super) fn checkout(r: &CreatePayment) -> Option<TradePagePay> {
    let product = match r.method {
        PayMethod::AlipayPage => Product::Desktop,
        PayMethod::AlipayWap => Product::MobileWeb,
        PayMethod::AlipayApp => Product::App,
        _ => return None,
    };
    let mut page = TradePagePay::new(product, &r.out_trade_no, to_alipay(r.amount), &r.subject)
        .notify_url(&r.notify_url);
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
    r: &CreatePayment,
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
    total_amount: alipay::Fen,
) -> ChannelPaymentState {
    match status {
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => ChannelPaymentState::Paid {
            transaction_id: trade_no.to_owned(),
            amount: from_alipay(total_amount),
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
            payment_state(&TradeStatus::TradeSuccess, "T1", alipay::Fen::new(350)),
            ChannelPaymentState::Paid {
                transaction_id: "T1".into(),
                amount: Fen::new(350)
            }
        );
        assert_eq!(
            payment_state(&TradeStatus::Other("NEW".into()), "T1", alipay::Fen::new(1)),
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
        assert!(matches!(e, ChannelError::Rejected { code, .. } if code == "20000"));
    }
}
