//! Merchant callbacks: every payment and refund event, POSTed as signed JSON to the merchant's
//! notify URL (`X-Pay-Signature: t=…,v1=…`, a second `v1` with the previous secret during a
//! rotation's grace period); a received payment also queues a message to the merchant's bound
//! WeChat ([`super::messages`] sends it). Runs as the outbox's [`EventHandler`]: at least once,
//! retried, dead-lettered after too many failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::callback_data::{CallbackBody, CallbackData, CallbackRefund, PaymentTag};
use super::db::{Merchant, PlatformDb};
use crate::url_guard::OutboundPolicy;
use aggregate_pay::{EventHandler, EventKind, HandlerError, OutboxEvent, StoreError};
use async_trait::async_trait;
use merchant_client::signing::{self, headers};

/// How long a merchant's record (notify URL, secret) is reused between callbacks: a burst of
/// callbacks costs one lookup, and a changed URL or rotated secret is used within a second.
const MERCHANT_CACHE_TTL: Duration = Duration::from_secs(1);

/// How long a callback waits for a turn among its merchant's (a healthy merchant's callbacks
/// take milliseconds; a slow one's waiters give their place back quickly and retry later).
const TURN_WAIT: Duration = Duration::from_millis(250);

/// Delivers outbox events to merchants.
#[derive(Debug, Clone)]
pub struct MerchantCallbacks {
    db: PlatformDb,
    http: reqwest::Client,
    outbound: OutboundPolicy,
    /// Whether "payment received" messages are queued (an Official Account is configured).
    messages: bool,
    /// Callbacks in flight per merchant.
    per_merchant: usize,
    slots: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
    merchants: Arc<Mutex<HashMap<String, (Instant, Merchant)>>>,
}

impl MerchantCallbacks {
    /// Callbacks from the platform database to the notify URLs `outbound` allows (checked again
    /// at each delivery; redirects are never followed), each request given `timeout`; with
    /// `messages`, "payment received" messages are queued for [`super::messages`].
    pub fn new(
        db: PlatformDb,
        messages: bool,
        outbound: OutboundPolicy,
        timeout: Duration,
    ) -> Self {
        MerchantCallbacks {
            db,
            http: outbound.client(timeout),
            outbound,
            messages,
            per_merchant: 16,
            slots: Arc::default(),
            merchants: Arc::default(),
        }
    }

    /// At most `n` callbacks in flight to one merchant (per instance); the others wait for a
    /// turn no longer than `TURN_WAIT`, then count as a failed attempt (retried later), so a
    /// slow or hanging merchant never holds up another's callbacks.
    pub fn per_merchant(mut self, n: usize) -> Self {
        self.per_merchant = n.max(1);
        self
    }

    fn slots_of(&self, merchant_id: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            slots
                .entry(merchant_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_merchant))),
        )
    }

    async fn merchant(&self, app_id: &str) -> Result<Option<Merchant>, StoreError> {
        let now = Instant::now();
        {
            let cache = self
                .merchants
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((at, m)) = cache.get(app_id) {
                if now.duration_since(*at) < MERCHANT_CACHE_TTL {
                    return Ok(Some(m.clone()));
                }
            }
        }
        let found = self.db.merchant(app_id).await?;
        let mut cache = self
            .merchants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, (at, _)| now.duration_since(*at) < MERCHANT_CACHE_TTL);
        if let Some(m) = &found {
            cache.insert(app_id.to_owned(), (now, m.clone()));
        }
        Ok(found)
    }
}

#[async_trait]
impl EventHandler for MerchantCallbacks {
    /// The batch's callbacks at once (each merchant within its limit): one merchant's slow
    /// endpoint delays only its own.
    async fn handle_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), HandlerError>> {
        futures_util::future::join_all(events.iter().map(|e| self.handle(e))).await
    }

    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        if event.kind == EventKind::PaymentAmountMismatch {
            // An alert for the platform's operators (the payment is held for review), not news
            // for the merchant: the payment was not marked paid.
            tracing::error!(event = %event.id, payment = %event.payment_id.0, "amount mismatch held for review");
            return Ok(());
        }
        let Some(tag) = PaymentTag::of(&event.data.payment) else {
            // Not a platform payment: nothing to deliver.
            return Ok(());
        };
        let merchant_id = tag.merchant_id.as_str();
        let slots = self.slots_of(merchant_id);
        let _turn = tokio::time::timeout(TURN_WAIT, slots.acquire())
            .await
            .map_err(|_| {
                HandlerError::retry("the merchant's earlier callbacks are still in flight")
            })?
            .map_err(HandlerError::retry)?;
        let Some(merchant) = self
            .merchant(merchant_id)
            .await
            .map_err(HandlerError::retry)?
        else {
            tracing::warn!(merchant = merchant_id, event = %event.id, "event for an unknown merchant dropped");
            return Ok(());
        };
        let mut data = CallbackData::new(&tag, &event.data.payment);
        if let Some(refund) = &event.data.refund {
            let merchant_no = self
                .db
                .refund_by_platform_no(&refund.out_refund_no)
                .await
                .map_err(HandlerError::retry)?
                .map(|r| r.out_refund_no);
            // `reason`: why a refund failed, or (ABNORMAL) what happened and what to do.
            data.refund = Some(CallbackRefund::new(refund, merchant_no));
        }
        // The merchant's WeChat message: queued first (once per event), sent by its own
        // consumer whether or not this callback gets through.
        if event.kind == EventKind::PaymentSucceeded && self.messages {
            if let Some(open_id) = &merchant.open_id {
                self.db
                    .enqueue_message(
                        &event.id,
                        &merchant.app_id,
                        open_id,
                        &data,
                        crate::clock::unix_now(),
                    )
                    .await
                    .map_err(HandlerError::retry)?;
            }
        }
        let body = serde_json::to_vec(&CallbackBody {
            id: &event.id,
            kind: event.kind.as_str(),
            created_at: event.created_at.unix_timestamp(),
            data: &data,
        })
        .map_err(HandlerError::retry)?;
        self.post(&merchant, body).await
    }
}

impl MerchantCallbacks {
    /// Delivers a callback `body` (`{id, type, created_at, data}`) that is not a payment
    /// event's — a complaint's — to merchant `merchant_id`, within its limit of callbacks in
    /// flight; an error says why it did not get through (retry later).
    pub async fn deliver(&self, merchant_id: &str, body: Vec<u8>) -> Result<(), String> {
        let slots = self.slots_of(merchant_id);
        let _turn = tokio::time::timeout(TURN_WAIT, slots.acquire())
            .await
            .map_err(|_| "the merchant's earlier callbacks are still in flight".to_owned())?
            .map_err(|e| e.to_string())?;
        let merchant = self
            .merchant(merchant_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no merchant {merchant_id}"))?;
        self.post(&merchant, body).await.map_err(|e| e.to_string())
    }

    /// POSTs `body` to the merchant's notify URL, signed with its secret(s).
    async fn post(&self, merchant: &Merchant, body: Vec<u8>) -> Result<(), HandlerError> {
        // During a rotation's grace period, signed with both secrets (the new one first): a
        // merchant still on the old secret keeps accepting callbacks until it ends.
        let now = crate::clock::unix_now();
        let mut secrets = vec![&merchant.secret];
        if let Some(previous) = merchant.previous_secret.as_ref().filter(|_| {
            merchant
                .previous_valid_until
                .is_some_and(|until| until > now)
        }) {
            secrets.push(previous);
        }
        let signature = signing::sign_callback_with_all(&secrets, now, &body);
        // The URL was checked at registration; what it names or resolves to may have changed.
        self.outbound
            .check(&merchant.notify_url)
            .await
            .map_err(|e| HandlerError::retry(format!("the notify URL is refused: {e}")))?;
        let response = self
            .http
            .post(&merchant.notify_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(headers::CALLBACK_SIGNATURE, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                HandlerError::retry(format!("cannot reach the merchant: {}", e.without_url()))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(HandlerError::retry(format!(
                "the merchant answered HTTP {}",
                status.as_u16()
            )));
        }
        Ok(())
    }
}
