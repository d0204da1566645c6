//! The `alipay` channel (feature `alipay`): QR (precreate), web page, mobile web, APP, Mini
//! Program (`alipay.trade.create` for the logged-in buyer) and payment-code (`alipay.trade.pay`,
//! reversed with `alipay.trade.cancel`) payments over the `alipay` protocol
//! crate, in public-key or certificate mode (the client's). Wire types and conversions live in
//! `transformers.rs`; amounts stay integers of fen on both sides of this edge.
//!
//! **As a service provider** ([`AlipayChannel::service_provider`]): the platform's third-party
//! app acts for each merchant who authorized it, with the merchant's `app_auth_token` (looked
//! up by the merchant's Alipay user id through [`AppAuthTokens`] at each call, so a new or
//! revoked authorization counts at once on every instance). The merchant's trades are its own
//! (`seller_id`); the platform's fee is settled to the platform's own Alipay account
//! (`alipay.trade.order.settle`, the platform bound as the merchant's royalty receiver), and
//! taken back with a refund (`refund_royalty_parameters`).

mod bill;
mod transformers;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use alipay::{
    AccountType, Buyer, NotifyReply, RefundQuery, Request, RoyaltyReceiver, RoyaltyRelationBind,
    RoyaltyShare, SubCode, TradeCancel, TradeClose, TradeCreate, TradeOrderSettle, TradePay,
    TradePrecreate, TradeQuery, TradeRef, TradeRefund,
};
pub use alipay::{Client as AlipayClient, DEFAULT_GATEWAY};

use super::{
    AckBody, AckOutcome, BillAvailability, BillSink, Capabilities, ChannelNotification,
    ChannelPaymentState, ChannelRefund, CloseOutcome, CodeCharge, NewPayment, NotifyKind,
    PayAction, PaymentChannel, RawNotify, RefundRequest, Reversal, ShareAnswer, ShareRequest,
    ShareReturn,
};
use crate::{ChannelError, PayMethod, PaymentCode, RefundStatus};
use transformers::{error, is};

/// Where a service provider's app finds the `app_auth_token` each merchant granted it.
#[async_trait]
pub trait AppAuthTokens: Send + Sync + fmt::Debug {
    /// The token merchant `merchant` (its Alipay user id, `2088…`) granted the app; `None`
    /// when it has not, or no longer has.
    async fn app_auth_token(&self, merchant: &str) -> Result<Option<String>, ChannelError>;
}

/// Alipay as a channel.
#[derive(Debug, Clone)]
pub struct AlipayChannel {
    id: String,
    client: AlipayClient,
    capabilities: Capabilities,
    /// Service-provider mode: where merchants' tokens are found.
    tokens: Option<Arc<dyn AppAuthTokens>>,
    /// Service-provider mode: the merchant (Alipay user id) this channel acts for.
    merchant: Option<String>,
    account: String,
}

impl AlipayChannel {
    /// The channel `alipay` over `client`.
    pub fn new(client: AlipayClient) -> Self {
        AlipayChannel {
            id: "alipay".to_owned(),
            account: client.app_id().to_owned(),
            tokens: None,
            merchant: None,
            client,
            capabilities: Capabilities {
                methods: vec![
                    PayMethod::AlipayQr,
                    PayMethod::AlipayPage,
                    PayMethod::AlipayWap,
                    PayMethod::AlipayApp,
                    PayMethod::AlipayMiniProgram,
                    PayMethod::AlipayPaymentCode,
                ],
                partial_refunds: true,
                refund_notifications: false,
            },
        }
    }
}

impl AlipayChannel {
    /// The same channel registered under `id` (its notifications arrive at `/notify/{id}`).
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The app as a service provider's third-party app: it acts for each merchant who
    /// authorized it ([`PaymentChannel::for_sub_merchant`] with the merchant's Alipay user id),
    /// finding the merchant's `app_auth_token` in `tokens`. The client's `seller_id` is the
    /// platform's own Alipay account, where its fee is settled.
    pub fn service_provider(mut self, tokens: Arc<dyn AppAuthTokens>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Sends `request` as the app, or for the merchant this channel acts for (with its token).
    async fn call<R: Request>(
        &self,
        request: &R,
    ) -> Result<Result<R::Response, alipay::Error>, ChannelError> {
        let (Some(merchant), Some(tokens)) = (&self.merchant, &self.tokens) else {
            return Ok(self.client.execute(request).await);
        };
        let token =
            tokens
                .app_auth_token(merchant)
                .await?
                .ok_or_else(|| ChannelError::Unavailable {
                    code: "NOT_AUTHORIZED".into(),
                    message: format!("merchant {merchant} has not authorized the platform's app"),
                    retry_after: None,
                })?;
        Ok(self.client.execute_for(&token, request).await)
    }

    /// The merchant this channel acts for, and the platform's own account.
    fn sub_merchant_only(&self) -> Result<(&str, &str), ChannelError> {
        let merchant = self.merchant.as_deref().ok_or_else(|| {
            ChannelError::Unsupported(
                "profit sharing is for a merchant's payments (for_sub_merchant)".into(),
            )
        })?;
        let platform = self.client.seller_id().ok_or_else(|| {
            ChannelError::Config(
                "the service provider's own Alipay account (seller_id) is needed to receive its \
                 fee"
                .into(),
            )
        })?;
        Ok((merchant, platform))
    }
}

/// An Alipay user id: `2088` and 12 digits.
fn is_user_id(id: &str) -> bool {
    id.len() == 16 && id.starts_with("2088") && id.bytes().all(|b| b.is_ascii_digit())
}

impl AlipayChannel {
    /// A Mini Program payment: the trade created for the buyer, whose id is a user id (`2088`
    /// and 12 digits) or an open id.
    async fn create_for_buyer(&self, r: &NewPayment) -> Result<PayAction, ChannelError> {
        let payer = r.open_id.clone().filter(|p| !p.is_empty()).ok_or_else(|| {
            ChannelError::Unsupported("a Mini Program payment needs its buyer".into())
        })?;
        let buyer = if is_user_id(&payer) {
            Buyer::UserId(payer)
        } else {
            Buyer::OpenId(payer)
        };
        let mut request = TradeCreate::new(&r.out_trade_no, r.amount, &r.subject, buyer)
            .notify_url(&r.notify_url);
        if let Some(at) = r.expires_at {
            request = request.expires_at(at);
        }
        let created = self.call(&request).await?.map_err(error)?;
        Ok(PayAction::AlipayTradePay {
            trade_no: created.trade_no,
        })
    }
}

fn by_number(out_trade_no: &str) -> TradeRef {
    TradeRef::OutTradeNo(out_trade_no.to_owned())
}

#[async_trait]
impl PaymentChannel for AlipayChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &str {
        "Alipay"
    }

    fn account(&self) -> &str {
        &self.account
    }

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    async fn create(&self, r: &NewPayment) -> Result<PayAction, ChannelError> {
        if let Some(page) = transformers::checkout(r) {
            if self.merchant.is_some() {
                return Err(ChannelError::Unsupported(format!(
                    "{} for an authorized merchant: use the QR code or the Mini Program",
                    r.method
                )));
            }
            return transformers::checkout_action(&self.client, r, &page);
        }
        if r.method == PayMethod::AlipayMiniProgram {
            return self.create_for_buyer(r).await;
        }
        if r.method != PayMethod::AlipayQr {
            return Err(ChannelError::Unsupported(format!("method {}", r.method)));
        }
        let mut request =
            TradePrecreate::new(&r.out_trade_no, r.amount, &r.subject).notify_url(&r.notify_url);
        if let Some(at) = r.expires_at {
            request = request.expires_at(at);
        }
        let created = self.call(&request).await?.map_err(error)?;
        Ok(PayAction::QrCode {
            content: created.qr_code,
        })
    }

    async fn query(&self, out_trade_no: &str) -> Result<ChannelPaymentState, ChannelError> {
        match self.call(&TradeQuery::new(by_number(out_trade_no))).await? {
            Ok(t) => Ok(transformers::payment_state(
                &t.trade_status,
                &t.trade_no,
                t.total_amount,
            )),
            Err(e) if is(&e, &SubCode::TradeNotExist) => Ok(ChannelPaymentState::NotFound),
            Err(e) => Err(error(e)),
        }
    }

    async fn close(&self, out_trade_no: &str) -> Result<CloseOutcome, ChannelError> {
        match self.call(&TradeClose::new(by_number(out_trade_no))).await? {
            Ok(_) => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, &SubCode::TradeNotExist) => Ok(CloseOutcome::Closed),
            Err(e) if is(&e, &SubCode::TradeStatusError) => match self.query(out_trade_no).await? {
                ChannelPaymentState::Paid { .. } => Ok(CloseOutcome::AlreadyPaid),
                _ => Ok(CloseOutcome::Closed),
            },
            Err(e) => Err(error(e)),
        }
    }

    async fn charge_code(
        &self,
        r: &NewPayment,
        code: &PaymentCode,
    ) -> Result<CodeCharge, ChannelError> {
        let request = TradePay::new(&r.out_trade_no, code.expose(), r.amount, &r.subject)
            .notify_url(&r.notify_url);
        match self.call(&request).await? {
            Ok(answer) if answer.is_paid() => Ok(CodeCharge::Paid {
                transaction_id: answer.trade_no.ok_or_else(|| {
                    ChannelError::Decode("a paid alipay.trade.pay answer without trade_no".into())
                })?,
                amount: answer.total_amount.unwrap_or(r.amount),
            }),
            Ok(_) => Ok(CodeCharge::Waiting),
            Err(e) if transformers::declines_code(&e) => {
                let (code, message) = match error(e) {
                    ChannelError::Rejected { code, message } => (code, message),
                    other => ("DECLINED".to_owned(), other.to_string()),
                };
                Ok(CodeCharge::Declined { code, message })
            }
            Err(e) => Err(error(e)),
        }
    }

    async fn reverse(&self, out_trade_no: &str) -> Result<Reversal, ChannelError> {
        match self
            .call(&TradeCancel::new(by_number(out_trade_no)))
            .await?
        {
            Ok(answer) if answer.must_retry() => Ok(Reversal::Again),
            Ok(_) => Ok(Reversal::Done),
            Err(e) if is(&e, &SubCode::TradeNotExist) => Ok(Reversal::Done),
            Err(e) => Err(error(e)),
        }
    }

    async fn refund(&self, r: &RefundRequest) -> Result<ChannelRefund, ChannelError> {
        let mut request = TradeRefund::new(by_number(&r.out_trade_no), &r.out_refund_no, r.amount);
        if let Some(reason) = &r.reason {
            request = request.reason(reason);
        }
        if r.share_returned > crate::Fen::ZERO {
            // The platform's fee comes back from it with the refund.
            let (_, platform) = self.sub_merchant_only()?;
            request = request.royalty_back(platform, r.share_returned);
        }
        let done = self
            .call(&request)
            .await?
            .map_err(transformers::refund_error)?;
        // Alipay refunds are synchronous, but only `fund_change = Y` says money moved for this
        // request. `N` is also what a retry of a refund already made answers — and what a
        // request that moved nothing answers: Alipay's advice is to query the refund before
        // counting it. Until the query confirms it, it is pending (queried again later).
        if done.fund_change.as_deref() == Some("Y") {
            return Ok(ChannelRefund {
                status: RefundStatus::Succeeded,
                channel_refund_id: Some(done.trade_no),
            });
        }
        Ok(self
            .query_refund(&r.out_trade_no, &r.out_refund_no)
            .await?
            .unwrap_or(ChannelRefund {
                status: RefundStatus::Pending,
                channel_refund_id: Some(done.trade_no),
            }))
    }

    async fn query_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Option<ChannelRefund>, ChannelError> {
        let found = self
            .call(&RefundQuery::new(by_number(out_trade_no), out_refund_no))
            .await?
            .map_err(error)?;
        // Alipay: an answer without the refund means it was not made; sending it again with the
        // same out_request_no is how to retry.
        Ok(found.is_refunded().then_some(ChannelRefund {
            status: RefundStatus::Succeeded,
            channel_refund_id: found.trade_no,
        }))
    }

    async fn download_bill(
        &self,
        day: time::Date,
        to: &mut (dyn std::io::Write + Send),
    ) -> Result<BillAvailability, ChannelError> {
        bill::download(&self.client, day, to).await
    }

    fn read_bill(&self, file: std::fs::File, each: BillSink<'_>) -> Result<(), ChannelError> {
        bill::read(file, each)
    }

    async fn verify_notify(&self, raw: &RawNotify) -> Result<ChannelNotification, ChannelError> {
        if raw.kind != NotifyKind::Payment {
            return Err(ChannelError::Unsupported(
                "alipay refunds complete synchronously".into(),
            ));
        }
        // A service provider's app also hears of its merchants' trades: the seller is then the
        // merchant, which the account below names (and the payment's record must match).
        let n = match self.tokens {
            Some(_) => self.client.verify_merchant_notification(&raw.body),
            None => self.client.verify_notification(&raw.body),
        }
        .map_err(error)?;
        Ok(ChannelNotification::Payment {
            // Alipay's notifications are in yuan (fen here) of CNY.
            currency: "CNY".to_owned(),
            status: transformers::notified(&n.trade_status),
            amount: n.total_amount,
            out_trade_no: n.out_trade_no,
            transaction_id: n.trade_no,
            // A trade made for a merchant who authorized the app is the merchant's (seller_id).
            account: match (&self.tokens, n.seller_id) {
                (Some(_), Some(seller)) if Some(seller.as_str()) != self.client.seller_id() => {
                    format!("{}/{seller}", n.app_id)
                }
                _ => n.app_id,
            },
        })
    }

    fn for_sub_merchant(
        &self,
        sub_merchant: &str,
    ) -> Result<Arc<dyn PaymentChannel>, ChannelError> {
        if self.tokens.is_none() || self.merchant.is_some() {
            return Err(ChannelError::Unsupported(format!(
                "{} is not configured as a service provider's app",
                self.id
            )));
        }
        if !is_user_id(sub_merchant) {
            return Err(ChannelError::Config(format!(
                "{sub_merchant:?} is not an Alipay user id (2088 and 12 digits)"
            )));
        }
        let mut scoped = self.clone();
        scoped.account = format!("{}/{sub_merchant}", self.client.app_id());
        scoped.merchant = Some(sub_merchant.to_owned());
        Ok(Arc::new(scoped))
    }

    async fn add_fee_receiver(&self, _receiver_name: &str) -> Result<(), ChannelError> {
        let (merchant, platform) = self.sub_merchant_only()?;
        let bind = RoyaltyRelationBind::new(
            format!("bind{}", &merchant[4..]),
            vec![RoyaltyReceiver::new(AccountType::UserId, platform)],
        );
        self.call(&bind).await?.map_err(error)?;
        Ok(())
    }

    async fn share(&self, r: &ShareRequest) -> Result<ShareAnswer, ChannelError> {
        let (_, platform) = self.sub_merchant_only()?;
        if r.amount == crate::Fen::ZERO {
            // Alipay holds nothing back for sharing: there is nothing to release.
            return Ok(ShareAnswer::Shared {
                order_id: r.transaction_id.clone(),
            });
        }
        let settle = TradeOrderSettle::new(
            &r.out_order_no,
            &r.transaction_id,
            vec![RoyaltyShare::new(AccountType::UserId, platform, r.amount).desc("平台服务费")],
        );
        let done = self.call(&settle).await?.map_err(error)?;
        Ok(ShareAnswer::Shared {
            order_id: done.settle_no.unwrap_or(done.trade_no),
        })
    }

    async fn return_share(&self, _: &ShareReturn) -> Result<(), ChannelError> {
        // Alipay takes a settlement back with the refund itself (`refund_royalty_parameters`,
        // from `RefundRequest::share_returned`): nothing to do before it.
        self.sub_merchant_only().map(|_| ())
    }

    fn ack(&self, outcome: &AckOutcome) -> AckBody {
        AckBody {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: match outcome {
                AckOutcome::Accepted => NotifyReply::Success,
                AckOutcome::Retry(_) => NotifyReply::Fail,
            }
            .as_str()
            .to_owned(),
        }
    }
}
