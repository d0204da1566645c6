//! The platform's fee, in integer fen. A rate is in basis points (1 bp = 0.01 %, at most
//! 10 000 = 100 %). **Rounding rule: down, to the fen** — the fee of `amount` is
//! `⌊amount × bps / 10 000⌋`, never more than the stated rate, in the merchant's favour (a
//! 1-fen payment at 60 bp pays no fee). When a payment is refunded, the fee the platform keeps is
//! the fee of what is left paid, so the fee given back by a refund is
//! `fee(paid − refunded before) − fee(paid − refunded after)`: the returns of any sequence of
//! partial refunds add up to exactly the fee taken, and a full refund gives it all back.
//!
//! ```
//! use aggregate_pay::Fen;
//! use aggregate_pay::fees::FeeRate;
//!
//! let rate = FeeRate::bps(60).unwrap(); // 0.6 %
//! assert_eq!(rate.fee(Fen::new(1000)), Fen::new(6));
//! assert_eq!(rate.fee(Fen::new(166)), Fen::new(0)); // 0.996 fen, rounded down
//! // 300 of 1000 refunded: the fee of the 700 left is 4, so 2 fen of the fee go back.
//! assert_eq!(rate.fee_returned(Fen::new(1000), Fen::ZERO, Fen::new(300)), Fen::new(2));
//! ```

use crate::Fen;

/// Basis points in one whole.
pub const BPS_PER_WHOLE: u16 = 10_000;

/// A fee rate in basis points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(u16);

/// A rate above 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a fee rate is at most {BPS_PER_WHOLE} basis points (100 %), not {0}")]
pub struct FeeRateError(pub u32);

impl FeeRate {
    /// `bps` basis points.
    pub fn bps(bps: u32) -> Result<Self, FeeRateError> {
        u16::try_from(bps)
            .ok()
            .filter(|b| *b <= BPS_PER_WHOLE)
            .map(FeeRate)
            .ok_or(FeeRateError(bps))
    }

    /// The rate in basis points.
    pub fn as_bps(self) -> u16 {
        self.0
    }

    /// The fee of `amount`, rounded down to the fen.
    pub fn fee(self, amount: Fen) -> Fen {
        let fee = u128::from(amount.as_u64()) * u128::from(self.0) / u128::from(BPS_PER_WHOLE);
        // At most `amount`, so it fits.
        Fen::new(u64::try_from(fee).unwrap_or(u64::MAX))
    }

    /// `amount` split into the fee and what the merchant nets.
    pub fn split(self, amount: Fen) -> (Fen, Fen) {
        let fee = self.fee(amount);
        (fee, amount.checked_sub(fee).unwrap_or(Fen::ZERO))
    }

    /// The fee given back when `refund` more of a payment of `paid` is refunded, `refunded`
    /// having been refunded before. Refunds beyond `paid` count as refunding all of it.
    pub fn fee_returned(self, paid: Fen, refunded: Fen, refund: Fen) -> Fen {
        let left = |r: u64| Fen::new(paid.as_u64().saturating_sub(r));
        let before = self.fee(left(refunded.as_u64()));
        let after = self.fee(left(refunded.as_u64().saturating_add(refund.as_u64())));
        before.checked_sub(after).unwrap_or(Fen::ZERO)
    }
}

/// What a platform keeps of a payment's `fee` once `refunded` of its `amount` was refunded:
/// the fee in proportion to what is left paid, **rounded down** —
/// `⌊fee × (amount − refunded) ÷ amount⌋`. All of it when nothing was refunded, nothing after a
/// full refund; the differences between successive refunds add up to exactly the fee.
///
/// ```
/// use aggregate_pay::Fen;
/// use aggregate_pay::fees::kept;
///
/// assert_eq!(kept(Fen::new(6), Fen::new(1000), Fen::ZERO), Fen::new(6));
/// assert_eq!(kept(Fen::new(6), Fen::new(1000), Fen::new(300)), Fen::new(4)); // 4.2
/// assert_eq!(kept(Fen::new(6), Fen::new(1000), Fen::new(1000)), Fen::ZERO);
/// ```
pub fn kept(fee: Fen, amount: Fen, refunded: Fen) -> Fen {
    let amount = amount.as_u64();
    if amount == 0 {
        return Fen::ZERO;
    }
    let left = amount.saturating_sub(refunded.as_u64());
    let kept = u128::from(fee.as_u64().min(amount)) * u128::from(left) / u128::from(amount);
    Fen::new(u64::try_from(kept).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_falls_with_refunds_to_nothing() {
        for (fee, amount) in [(6u64, 1000u64), (1, 3), (599, 99_999), (0, 10), (10, 10)] {
            let (fee, amount) = (Fen::new(fee), Fen::new(amount));
            assert_eq!(kept(fee, amount, Fen::ZERO), fee);
            assert_eq!(kept(fee, amount, amount), Fen::ZERO);
            let mut last = fee;
            for r in 0..=amount.as_u64() {
                let now = kept(fee, amount, Fen::new(r));
                assert!(now <= last, "never more after a further refund");
                last = now;
            }
        }
        assert_eq!(kept(Fen::new(5), Fen::ZERO, Fen::ZERO), Fen::ZERO);
    }

    #[test]
    fn rates_are_at_most_one_whole() {
        assert_eq!(FeeRate::bps(10_000).unwrap().as_bps(), 10_000);
        assert_eq!(FeeRate::bps(10_001), Err(FeeRateError(10_001)));
        assert_eq!(FeeRate::bps(u32::MAX), Err(FeeRateError(u32::MAX)));
    }

    #[test]
    fn fees_round_down_and_never_exceed_the_rate() {
        for bps in [0, 1, 38, 60, 250, 599, 10_000] {
            let rate = FeeRate::bps(bps).unwrap();
            for fen in (0..3_000).chain([u64::MAX / 2, u64::MAX]) {
                let (fee, net) = rate.split(Fen::new(fen));
                let exact = u128::from(fen) * u128::from(bps);
                // fee ≤ amount × rate < fee + 1
                assert!(
                    u128::from(fee.as_u64()) * 10_000 <= exact,
                    "{bps} bp of {fen}"
                );
                assert!(
                    exact < (u128::from(fee.as_u64()) + 1) * 10_000,
                    "{bps} bp of {fen}"
                );
                assert_eq!(fee.as_u64() + net.as_u64(), fen);
            }
        }
    }

    #[test]
    fn refunds_give_back_exactly_the_fee_taken_in_any_order() {
        let rate = FeeRate::bps(60).unwrap();
        for paid in [1u64, 99, 166, 1000, 1234, 99_999] {
            let fee = rate.fee(Fen::new(paid));
            // Refunded in steps of every size: the returns add up to the fee, never more.
            for step in [1u64, 7, 100, 333, paid] {
                let mut refunded = 0u64;
                let mut returned = 0u64;
                while refunded < paid {
                    let refund = step.min(paid - refunded);
                    returned += rate
                        .fee_returned(Fen::new(paid), Fen::new(refunded), Fen::new(refund))
                        .as_u64();
                    refunded += refund;
                    assert!(returned <= fee.as_u64(), "{paid} by {step}");
                }
                assert_eq!(returned, fee.as_u64(), "{paid} by {step}");
            }
            // Refunding more than was paid gives back no more than the fee.
            assert_eq!(
                rate.fee_returned(Fen::new(paid), Fen::ZERO, Fen::new(paid * 2)),
                fee
            );
        }
    }
}
