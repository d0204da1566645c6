//! Faults on demand: what real providers sometimes do, so that an application can test how it
//! answers. Each fault is used a given number of times, in the order they were set.
//!
//! - **An API error**: the next calls of an API (`refund`, `refundquery`, `orderquery`,
//!   `unifiedorder`… — the last part of a WeChat Pay v2 path — a WeChat Pay v3 path, optionally
//!   after its method, such as `POST /v3/refund/domestic/refunds`, an Alipay method such as
//!   `alipay.trade.refund`, or a WeChat MP path's last two parts such as `template/send`)
//!   answer a business error with `code` (`SYSTEMERROR`, `NOTENOUGH`, `ACQ.SYSTEM_ERROR`, an MP
//!   `errcode` such as `45009`…), signed as the provider signs it. With `after_processing`, the request
//!   is carried out first and only its answer is replaced: the provider did it, the merchant
//!   never heard.
//! - **An answer that cannot be verified** (code [`BAD_SIGNATURE`]): the request is carried
//!   out and answered as usual, but the answer's signature is broken (WeChat Pay v2's `sign`,
//!   v3's `Wechatpay-Signature`, Alipay's `sign`) — the provider did it, the merchant cannot
//!   trust the answer that says so.
//! - **Alipay's `fund_change = N` for a refund that moved nothing** (code [`FUND_CHANGE_N`] on
//!   `alipay.trade.refund`): `10000` with `fund_change = N`, and no refund made.
//! - **Lost notifications**: the next notifications of a kind (`wechat.payment`,
//!   `wechat.refund`, `alipay.payment`) are never sent; the delivery log shows them dropped.
//! - **Discrepancies for reconciliation against the bills**:
//!   - `{bill_not_ready: N}` — the next N bill requests (WeChat Pay v2's `downloadbill`, v3's
//!     trade bill, Alipay's bill link) answer "not ready yet" (`Bill Creating`,
//!     `STATEMENT_CREATING`, `isp.bill_not_exist`);
//!   - `{bill_amount: {out_trade_no, amount}}` — trade bills list that payment with another
//!     amount (fen) than was paid;
//!   - `{withhold_query: out_trade_no}` — queries of that order answer "not paid" (WeChat
//!     `NOTPAY`, Alipay `WAIT_BUYER_PAY`) until a trade bill listing it has been downloaded: with
//!     a dropped notification, only the bill tells the merchant it was paid.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The fault code that carries a request out and breaks its answer's signature.
pub const BAD_SIGNATURE: &str = "BAD_SIGNATURE";

/// The fault code that answers an Alipay refund `10000` with `fund_change = N`, making nothing.
pub const FUND_CHANGE_N: &str = "FUND_CHANGE_N";

/// An API error to answer instead of the real one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFault {
    /// The API: a WeChat Pay v2 path's last part (`refund`), a v3 path (`POST /v3/…`) or an
    /// Alipay method.
    pub api: String,
    /// The provider's error code (WeChat `err_code`, Alipay `sub_code`).
    pub code: String,
    /// How many calls it answers (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// Carry the request out first, then lose its answer.
    #[serde(default)]
    pub after_processing: bool,
}

fn one() -> u32 {
    1
}

impl ApiFault {
    /// The next call of `api` answers `code` instead of being carried out.
    pub fn new(api: impl Into<String>, code: impl Into<String>) -> Self {
        ApiFault {
            api: api.into(),
            code: code.into(),
            times: 1,
            after_processing: false,
        }
    }

    /// For the next `times` calls.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// The request is carried out and only its answer replaced.
    pub fn after_processing(mut self) -> Self {
        self.after_processing = true;
        self
    }
}

/// `POST /sandbox/faults`: an API error, or notifications to drop.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FaultRequest {
    /// `{api, code, times?, after_processing?}`.
    Api(ApiFault),
    /// `{drop_notifications: "wechat.refund", times?}`.
    Drop {
        /// The notification kind.
        drop_notifications: String,
        /// How many (default 1).
        #[serde(default = "one")]
        times: u32,
    },
    /// `{bill_not_ready: N}`: the next N bill requests answer "not ready yet".
    BillNotReady {
        /// How many.
        bill_not_ready: u32,
    },
    /// `{bill_amount: {out_trade_no, amount}}`: bills list the payment with this amount.
    BillAmount {
        /// The payment and the amount.
        bill_amount: BillAmount,
    },
    /// `{withhold_query: out_trade_no}`: queries answer "not paid" until a bill lists it.
    WithholdQuery {
        /// The order.
        withhold_query: String,
    },
}

/// A payment a bill lists with another amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillAmount {
    /// The payment's number.
    pub out_trade_no: String,
    /// The amount the bill says, in fen.
    pub amount: u64,
}

impl From<ApiFault> for FaultRequest {
    fn from(f: ApiFault) -> Self {
        FaultRequest::Api(f)
    }
}

impl FaultRequest {
    /// The next `times` bill requests answer "not ready yet".
    pub fn bill_not_ready(times: u32) -> Self {
        FaultRequest::BillNotReady {
            bill_not_ready: times,
        }
    }

    /// Trade bills list the payment `out_trade_no` with `amount` fen.
    pub fn bill_amount(out_trade_no: impl Into<String>, amount: u64) -> Self {
        FaultRequest::BillAmount {
            bill_amount: BillAmount {
                out_trade_no: out_trade_no.into(),
                amount,
            },
        }
    }

    /// Queries of `out_trade_no` answer "not paid" until a trade bill listing it is downloaded.
    pub fn withhold_query(out_trade_no: impl Into<String>) -> Self {
        FaultRequest::WithholdQuery {
            withhold_query: out_trade_no.into(),
        }
    }

    /// The next `times` notifications of `kind` (`wechat.refund`…) are lost.
    pub fn drop_notifications(kind: impl Into<String>, times: u32) -> Self {
        FaultRequest::Drop {
            drop_notifications: kind.into(),
            times,
        }
    }
}

/// When a fault applies to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Before,
    After,
}

/// The faults waiting to happen.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    api: Vec<ApiFault>,
    drops: Vec<(String, u32)>,
    bill_not_ready: u32,
    bill_amounts: HashMap<String, u64>,
    withheld: HashSet<String>,
}

impl Faults {
    /// Adds a fault.
    pub fn add(&self, fault: FaultRequest) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match fault {
            FaultRequest::Api(f) if f.times > 0 => inner.api.push(f),
            FaultRequest::Drop {
                drop_notifications,
                times,
            } if times > 0 => inner.drops.push((drop_notifications, times)),
            FaultRequest::BillNotReady { bill_not_ready } => inner.bill_not_ready += bill_not_ready,
            FaultRequest::BillAmount { bill_amount } => {
                inner
                    .bill_amounts
                    .insert(bill_amount.out_trade_no, bill_amount.amount);
            }
            FaultRequest::WithholdQuery { withhold_query } => {
                inner.withheld.insert(withhold_query);
            }
            _ => {}
        }
    }

    /// Forgets every fault not used yet.
    pub fn clear(&self) {
        *self.inner.lock().unwrap_or_else(PoisonError::into_inner) = Inner::default();
    }

    /// The error code a call of `api` answers at `stage`, if a fault says so (and uses it up).
    pub(crate) fn take_api(&self, api: &str, stage: Stage) -> Option<String> {
        self.take_api_matching(|a| a == api, stage)
    }

    /// The error code of the first fault whose `api` `names` accepts, at `stage` (used up).
    pub(crate) fn take_api_matching(
        &self,
        names: impl Fn(&str) -> bool,
        stage: Stage,
    ) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let i = inner.api.iter().position(|f| names(&f.api))?;
        let fault = &mut inner.api[i];
        if (stage == Stage::After) != fault.after_processing {
            return None;
        }
        let code = fault.code.clone();
        fault.times -= 1;
        if fault.times == 0 {
            inner.api.remove(i);
        }
        Some(code)
    }

    /// Whether this bill request answers "not ready yet" (and uses the fault up).
    pub(crate) fn take_bill_not_ready(&self) -> bool {
        let mut inner = self.lock();
        let not_ready = inner.bill_not_ready > 0;
        inner.bill_not_ready = inner.bill_not_ready.saturating_sub(1);
        not_ready
    }

    /// The amount bills list for `out_trade_no` instead of the one paid.
    pub(crate) fn bill_amount(&self, out_trade_no: &str) -> Option<u64> {
        self.lock().bill_amounts.get(out_trade_no).copied()
    }

    /// Whether queries of `out_trade_no` answer "not paid".
    pub(crate) fn withheld(&self, out_trade_no: &str) -> bool {
        self.lock().withheld.contains(out_trade_no)
    }

    /// A trade bill listing these orders was downloaded: their queries answer the truth again.
    pub(crate) fn billed<'a>(&self, out_trade_nos: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for no in out_trade_nos {
            inner.withheld.remove(no);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a notification of `kind` is to be dropped (and uses the fault up).
    pub(crate) fn take_drop(&self, kind: &str) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(i) = inner.drops.iter().position(|(k, _)| k == kind) else {
            return false;
        };
        inner.drops[i].1 -= 1;
        if inner.drops[i].1 == 0 {
            inner.drops.remove(i);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_in_order_and_only_at_their_stage() {
        let faults = Faults::default();
        faults.add(FaultRequest::Api(
            ApiFault::new("refund", "SYSTEMERROR").times(2),
        ));
        faults.add(FaultRequest::Api(
            ApiFault::new("orderquery", "SYSTEMERROR").after_processing(),
        ));
        assert_eq!(faults.take_api("refund", Stage::After), None);
        assert_eq!(
            faults.take_api("refund", Stage::Before).as_deref(),
            Some("SYSTEMERROR")
        );
        assert_eq!(
            faults.take_api("refund", Stage::Before).as_deref(),
            Some("SYSTEMERROR")
        );
        assert_eq!(faults.take_api("refund", Stage::Before), None);
        assert_eq!(faults.take_api("orderquery", Stage::Before), None);
        assert!(faults.take_api("orderquery", Stage::After).is_some());
        faults.add(
            serde_json::from_str::<FaultRequest>(r#"{"drop_notifications":"wechat.refund"}"#)
                .unwrap(),
        );
        assert!(!faults.take_drop("wechat.payment"));
        assert!(faults.take_drop("wechat.refund"));
        assert!(!faults.take_drop("wechat.refund"));
    }

    #[test]
    fn bill_faults_read_from_json_and_wear_off() {
        let faults = Faults::default();
        for json in [
            r#"{"bill_not_ready":2}"#,
            r#"{"bill_amount":{"out_trade_no":"A1","amount":999}}"#,
            r#"{"withhold_query":"A2"}"#,
        ] {
            faults.add(serde_json::from_str::<FaultRequest>(json).unwrap());
        }
        assert!(faults.take_bill_not_ready());
        assert!(faults.take_bill_not_ready());
        assert!(!faults.take_bill_not_ready());
        assert_eq!(faults.bill_amount("A1"), Some(999));
        assert_eq!(faults.bill_amount("A2"), None);
        assert!(faults.withheld("A2"));
        faults.billed(["A1"]);
        assert!(faults.withheld("A2"));
        faults.billed(["A2"]);
        assert!(!faults.withheld("A2"));
    }
}
