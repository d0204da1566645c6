//! The sandbox's daily bill, and the discrepancies it makes on demand.
//!
//! The file is one line per payment or refund of the day (China time), then its totals:
//!
//! ```text
//! kind,out_trade_no,transaction_id,out_refund_no,amount,fee
//! payment,A1,sbx0000000001,,350,2
//! refund,A1,,R1,350,-2
//! total,2
//! ```
//!
//! Amounts and fees are in fen; the fee is 0.6%, rounded.

use std::io::{BufRead, BufReader, Write};

use time::{Date, OffsetDateTime};

use super::SandboxChannel;
use crate::bills::china_day;
use crate::channels::bill::unreadable;
use crate::channels::{BillAvailability, BillEntry, BillSink};
use crate::{ChannelError, Fen};

/// What the next bills do instead of listing the truth.
#[derive(Debug, Default)]
pub(super) struct BillFaults {
    not_ready: u32,
    amounts: Vec<(String, Fen)>,
}

const HEADER: &str = "kind,out_trade_no,transaction_id,out_refund_no,amount,fee";

/// The sandbox's fee on `amount`: 0.6%, rounded to the fen.
fn fee(amount: Fen) -> i64 {
    i64::try_from((amount.as_u64() * 6 + 500) / 1000).unwrap_or(i64::MAX)
}

impl SandboxChannel {
    /// The next `times` bill downloads answer "not ready yet".
    pub fn bill_not_ready(&self, times: u32) {
        self.faults().not_ready += times;
    }

    /// From now on, the bill lists the payment `out_trade_no` with `amount` (a provider's
    /// record that disagrees with the store).
    pub fn misstate_in_bill(&self, out_trade_no: impl Into<String>, amount: Fen) {
        self.faults().amounts.push((out_trade_no.into(), amount));
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, BillFaults> {
        self.bill_faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn write_bill(
        &self,
        day: Date,
        to: &mut (dyn Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        let amounts = {
            let mut faults = self.faults();
            if faults.not_ready > 0 {
                faults.not_ready -= 1;
                return Ok(BillAvailability::NotReady);
            }
            faults.amounts.clone()
        };
        let on_day = |t: Option<OffsetDateTime>| t.is_some_and(|t| china_day(t) == day);
        let mut lines = Vec::new();
        for (no, order) in self.orders().iter() {
            if let (super::ChannelPaymentState::Paid { transaction_id, .. }, true) =
                (&order.state, on_day(order.paid_at))
            {
                let amount = amounts
                    .iter()
                    .rev()
                    .find(|(n, _)| n == no)
                    .map_or(order.amount, |(_, a)| *a);
                lines.push(format!(
                    "payment,{no},{transaction_id},,{amount},{}",
                    fee(amount),
                    amount = amount.as_u64()
                ));
            }
            for (refund_no, amount) in &order.refunds {
                if on_day(order.refunded_at.get(refund_no).copied()) {
                    lines.push(format!(
                        "refund,{no},,{refund_no},{},{}",
                        amount.as_u64(),
                        -fee(*amount)
                    ));
                }
            }
        }
        let io = |e: std::io::Error| ChannelError::Transport(format!("writing the bill: {e}"));
        writeln!(to, "{HEADER}").map_err(io)?;
        for line in &lines {
            writeln!(to, "{line}").map_err(io)?;
        }
        writeln!(to, "total,{}", lines.len()).map_err(io)?;
        Ok(BillAvailability::Ready)
    }
}

pub(super) fn read(file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
    let mut lines = BufReader::new(file).lines();
    match lines.next() {
        Some(Ok(h)) if h == HEADER => {}
        _ => return Err(unreadable("not a sandbox bill")),
    }
    for (rows, line) in (0u64..).zip(lines) {
        let line = line.map_err(unreadable)?;
        let f: Vec<&str> = line.split(',').collect();
        if let ["total", count] = f.as_slice() {
            return if count.parse::<u64>().ok() == Some(rows) {
                Ok(())
            } else {
                Err(unreadable(format!("{rows} rows, the totals say {count}")))
            };
        }
        let [
            kind,
            out_trade_no,
            transaction_id,
            out_refund_no,
            amount,
            fee,
        ] = f.as_slice()
        else {
            return Err(unreadable(format!("line {}: {line:?}", rows + 2)));
        };
        let amount = Fen::new(amount.parse().map_err(unreadable)?);
        let fee: i64 = fee.parse().map_err(unreadable)?;
        let entry = match *kind {
            "payment" => BillEntry::payment(*out_trade_no, *transaction_id, amount),
            "refund" => BillEntry::refund(*out_trade_no, *out_refund_no, amount),
            other => return Err(unreadable(format!("a row of kind {other:?}"))),
        }
        .fee(fee);
        if !each(entry) {
            return Ok(());
        }
    }
    Err(unreadable("the bill ends before its totals"))
}
