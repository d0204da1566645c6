//! The `sandbox` channel: in-process and deterministic, and the reference for writing a channel.
//!
//! It keeps its "provider side" in memory: [`SandboxChannel::pay`] is the payer paying, and
//! returns the notification the provider would POST, signed (HMAC-SHA256 over the fields, with a
//! secret only this channel knows), so that it goes through the same [`crate::NotifyProcessor`]
//! path as any real channel. Nothing here touches the network.
//!
//! Every method below says what a real channel must do at that point.

mod bill;

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;
use wechat_pay::{ApiKey, Params, SignType};

use super::{
    AckBody, AckOutcome, BillAvailability, BillSink, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, NewPayment, NotifiedStatus, NotifyKind,
    PayAction, PaymentChannel, RawNotify, RefundRequest,
};
use crate::{ChannelError, Fen, PayMethod, RefundStatus};

#[derive(Debug, Clone)]
struct Order {
    amount: Fen,
    state: ChannelPaymentState,
    refunded: Fen,
    refunds: HashMap<String, Fen>,
    /// When it was paid, and when each refund was made (the bill's days).
    paid_at: Option<OffsetDateTime>,
    refunded_at: HashMap<String, OffsetDateTime>,
}

/// The in-process sandbox channel.
#[derive(Debug)]
pub struct SandboxChannel {
    id: String,
    account: String,
    secret: ApiKey,
    capabilities: Capabilities,
    orders: Mutex<HashMap<String, Order>>,
    sequence: Mutex<u64>,
    refund_faults: Mutex<VecDeque<RefundFault>>,
    bill_faults: Mutex<bill::BillFaults>,
    queries: std::sync::atomic::AtomicU64,
}

/// What the next refund call does instead of answering normally.
#[derive(Debug)]
struct RefundFault {
    error: ChannelError,
    made: bool,
}

impl SandboxChannel {
    /// A sandbox channel for `account`, signing its notifications with `secret`.
    pub fn new(account: impl Into<String>, secret: impl Into<String>) -> Self {
        SandboxChannel {
            id: "sandbox".to_owned(),
            account: account.into(),
            secret: ApiKey::new(secret),
            capabilities: Capabilities {
                methods: vec![PayMethod::Sandbox],
                partial_refunds: true,
                refund_notifications: false,
            },
            orders: Mutex::new(HashMap::new()),
            sequence: Mutex::new(0),
            refund_faults: Mutex::new(VecDeque::new()),
            bill_faults: Mutex::default(),
            queries: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The same channel registered under `id` (the id a channel has is chosen where it is
    /// registered; `sandbox` by default).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The next refund call answers `error` instead — after making the refund when `made` (the
    /// answer lost on the way back, as in a timeout), before it otherwise (the provider did
    /// nothing). Calls queue: each fault is used once, in order.
    pub fn fail_next_refund(&self, error: ChannelError, made: bool) {
        self.refund_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(RefundFault { error, made });
    }

    /// How many times the channel was asked where a payment is (any payment).
    pub fn queries(&self) -> u64 {
        self.queries.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How much of `out_trade_no` the "provider" has refunded, over every refund number.
    pub fn refunded(&self, out_trade_no: &str) -> Option<Fen> {
        self.orders().get(out_trade_no).map(|o| o.refunded)
    }

    /// Refunds at the "provider": idempotent by `out_refund_no`, never more than was paid.
    fn make_refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let refund_id = self.next_id("sbr");
        let mut orders = self.orders();
        let order = orders
            .get_mut(&request.out_trade_no)
            .ok_or_else(|| rejected("ORDER_NOT_FOUND", "no such sandbox payment"))?;
        if !matches!(order.state, ChannelPaymentState::Paid { .. }) {
            return Err(rejected("NOT_PAID", "only a paid payment can be refunded"));
        }
        if let Some(previous) = order.refunds.get(&request.out_refund_no) {
            if *previous != request.amount {
                return Err(rejected(
                    "REFUND_NO_USED",
                    "the refund number is used with another amount",
                ));
            }
        } else {
            let total = order
                .refunded
                .checked_add(request.amount)
                .filter(|t| *t <= order.amount)
                .ok_or_else(|| rejected("REFUND_TOO_LARGE", "more than was paid"))?;
            order.refunded = total;
            order
                .refunds
                .insert(request.out_refund_no.clone(), request.amount);
            order
                .refunded_at
                .insert(request.out_refund_no.clone(), OffsetDateTime::now_utc());
        }
        Ok(ChannelRefund {
            status: RefundStatus::Succeeded,
            channel_refund_id: Some(refund_id),
        })
    }

    fn orders(&self) -> MutexGuard<'_, HashMap<String, Order>> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut n = self.sequence.lock().unwrap_or_else(PoisonError::into_inner);
        *n += 1;
        format!("{prefix}{:010}", *n)
    }

    /// The payer pays `out_trade_no`: the order is paid at the "provider", and the signed
    /// notification it would send is returned (feed it to the notify processor).
    pub fn pay(&self, out_trade_no: &str) -> Result<RawNotify, ChannelError> {
        let amount = {
            let orders = self.orders();
            orders
                .get(out_trade_no)
                .map(|o| o.amount)
                .ok_or_else(|| rejected("ORDER_NOT_FOUND", "no such sandbox payment"))?
        };
        self.pay_amount(out_trade_no, amount)
    }

    /// Like [`SandboxChannel::pay`] but reporting `amount` (to exercise amount checks).
    pub fn pay_amount(&self, out_trade_no: &str, amount: Fen) -> Result<RawNotify, ChannelError> {
        self.take_money(out_trade_no, amount, false)
    }

    /// The payer's money arrives although the payment was closed — a close that raced the
    /// payer, the case a service must refund rather than keep. Marks it paid whatever its state
    /// and returns the notification.
    pub fn pay_after_close(&self, out_trade_no: &str) -> Result<RawNotify, ChannelError> {
        let amount = self
            .orders()
            .get(out_trade_no)
            .map(|o| o.amount)
            .ok_or_else(|| rejected("ORDER_NOT_FOUND", "no such sandbox payment"))?;
        self.take_money(out_trade_no, amount, true)
    }

    fn take_money(
        &self,
        out_trade_no: &str,
        amount: Fen,
        even_if_closed: bool,
    ) -> Result<RawNotify, ChannelError> {
        let fresh_id = self.next_id("sbx");
        let transaction_id = {
            let mut orders = self.orders();
            let order = orders
                .get_mut(out_trade_no)
                .ok_or_else(|| rejected("ORDER_NOT_FOUND", "no such sandbox payment"))?;
            let transaction_id = match &order.state {
                // Paying twice re-sends the same notification, as providers do.
                ChannelPaymentState::Paid { transaction_id, .. } => transaction_id.clone(),
                ChannelPaymentState::Pending => fresh_id,
                _ if even_if_closed => fresh_id,
                _ => return Err(rejected("ORDER_CLOSED", "the payment is closed")),
            };
            if !matches!(order.state, ChannelPaymentState::Paid { .. }) {
                order.paid_at = Some(OffsetDateTime::now_utc());
            }
            order.state = ChannelPaymentState::Paid {
                transaction_id: transaction_id.clone(),
                amount,
            };
            transaction_id
        };
        Ok(self.notification(out_trade_no, &transaction_id, amount))
    }

    /// The signed payment notification the provider sends (again) for a paid order.
    pub fn notification(&self, out_trade_no: &str, transaction_id: &str, amount: Fen) -> RawNotify {
        let mut p = Params::new();
        p.insert("account", self.account.as_str());
        p.insert("out_trade_no", out_trade_no);
        p.insert("transaction_id", transaction_id);
        p.insert("amount", amount.to_string());
        p.insert("status", "PAID");
        p.sign(&self.secret, SignType::HmacSha256);
        RawNotify::payment(p.to_xml())
    }
}

fn rejected(code: &str, message: &str) -> ChannelError {
    ChannelError::Rejected {
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

#[async_trait]
impl PaymentChannel for SandboxChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &str {
        "Sandbox (test money)"
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// A real channel calls its provider here and must be idempotent by `out_trade_no`: a retry
    /// with the same request returns the same action; the same number with another amount is a
    /// refusal, never a second charge.
    async fn create(&self, request: &NewPayment) -> Result<PayAction, ChannelError> {
        if request.method != PayMethod::Sandbox {
            return Err(ChannelError::Unsupported(format!(
                "method {}",
                request.method
            )));
        }
        let mut orders = self.orders();
        match orders.get(&request.out_trade_no) {
            Some(o) if o.amount != request.amount => {
                return Err(rejected(
                    "OUT_TRADE_NO_USED",
                    "the number is used with another amount",
                ));
            }
            Some(_) => {}
            None => {
                orders.insert(
                    request.out_trade_no.clone(),
                    Order {
                        amount: request.amount,
                        state: ChannelPaymentState::Pending,
                        refunded: Fen::ZERO,
                        refunds: HashMap::new(),
                        paid_at: None,
                        refunded_at: HashMap::new(),
                    },
                );
            }
        }
        Ok(PayAction::Sandbox {
            out_trade_no: request.out_trade_no.clone(),
        })
    }

    /// A real channel maps every provider state to [`ChannelPaymentState`]; "the provider does
    /// not know it" is `NotFound`, not an error.
    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(self
            .orders()
            .get(out_trade_no)
            .map_or(ChannelPaymentState::NotFound, |o| o.state.clone()))
    }

    /// A real channel reports "already paid" as [`CloseOutcome::AlreadyPaid`] so that the
    /// caller records the payment instead of losing it.
    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        let mut orders = self.orders();
        let Some(order) = orders.get_mut(out_trade_no) else {
            return Ok(CloseOutcome::Closed);
        };
        match order.state {
            ChannelPaymentState::Paid { .. } => Ok(CloseOutcome::AlreadyPaid),
            _ => {
                order.state = ChannelPaymentState::Closed;
                Ok(CloseOutcome::Closed)
            }
        }
    }

    /// A real channel must be idempotent by `out_refund_no` and refuse more than was paid.
    async fn refund(&self, request: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let fault = self
            .refund_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        match fault {
            None => self.make_refund(request),
            Some(RefundFault { error, made: false }) => Err(error),
            Some(RefundFault { error, made: true }) => {
                self.make_refund(request)?;
                Err(error)
            }
        }
    }

    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        let orders = self.orders();
        let known = orders
            .get(out_trade_no)
            .is_some_and(|o| o.refunds.contains_key(out_refund_no));
        Ok(known.then_some(ChannelRefund {
            status: RefundStatus::Succeeded,
            channel_refund_id: None,
        }))
    }

    /// A real channel verifies the signature over **everything received** before decoding, and
    /// refuses a missing signature. It does not check amounts or states: the processor does.
    /// A real channel asks its provider for the day's trade bill and writes the file as it
    /// arrives; "not made yet" and "no bill for that day" are answers, not errors.
    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        self.write_bill(day, to)
    }

    /// A real channel reads its provider's format a row at a time and fails on a file that
    /// ends before its totals.
    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        bill::read(file, each)
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        if raw.kind != NotifyKind::Payment {
            return Err(ChannelError::Unsupported(
                "sandbox refunds complete synchronously".into(),
            ));
        }
        let p = Params::from_xml(&raw.body).map_err(|e| ChannelError::Decode(e.to_string()))?;
        p.verify(&self.secret, SignType::HmacSha256)
            .map_err(|e| ChannelError::Signature(e.to_string()))?;
        let field = |name: &str| {
            p.get(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ChannelError::Decode(format!("missing {name}")))
        };
        let amount: Fen = field("amount")?
            .parse()
            .map_err(|e: wechat_pay::ParseFenError| ChannelError::Decode(e.to_string()))?;
        Ok(ChannelNotification::Payment {
            currency: "CNY".to_owned(),
            out_trade_no: field("out_trade_no")?,
            transaction_id: field("transaction_id")?,
            amount,
            account: field("account")?,
            status: NotifiedStatus::Paid,
        })
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        AckBody {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: match outcome {
                AckOutcome::Accepted => "SUCCESS".to_owned(),
                AckOutcome::Retry(_) => "FAIL".to_owned(),
            },
        }
    }
}
