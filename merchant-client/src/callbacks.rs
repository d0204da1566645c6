//! [`Callbacks`]: receiving the platform's callbacks exactly once.
//!
//! The platform delivers each event at least once (it retries until your endpoint answers 2xx),
//! so your endpoint must (1) verify the signature, (2) skip an event it already handled, and
//! (3) record an event as handled **only after** handling it — otherwise a handler that fails
//! after the event was marked seen loses it: the redelivery looks like a duplicate.
//! [`Callbacks::handle`] does the three in that order:
//!
//! | what arrives | `handle` returns | answer |
//! |---|---|---|
//! | a bad or stale signature, a body that is not an event | `Err(Error::Signature / Decode)` | 400 / 401 |
//! | an event your handler already handled | `Ok(Handled::Duplicate)` (handler not run) | 2xx |
//! | an event another delivery is handling right now | `Err(Error::InProgress)` | 409 (retried later) |
//! | a new event, your handler succeeds | `Ok(Handled::Done)`, recorded as handled | 2xx |
//! | a new event, your handler fails | `Err(Error::Handler)`, not recorded: the next delivery runs it again | 5xx |
//!
//! Which events were handled lives in a [`HandledEvents`] store: [`MemoryHandledEvents`] for
//! one process; with several instances one they share ([`crate::handled`]: Redis, or the
//! merchant's SQL database), or your own implementation.
//!
//! **Secret rotation.** During a rotation's grace period the platform signs each callback with
//! both secrets (`t=…,v1=<new>,v1=<old>`); a verifier accepts a callback when any `v1` matches
//! any secret it holds. Give [`Callbacks`] the new secret as soon as you have it and keep the old
//! one ([`Callbacks::also_accept`]) until the grace period ends.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::signing;
use crate::{BoxError, Error, Secret, StoreError};

/// Where an event stands in a [`HandledEvents`] store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Taken: handle it now, then call `handled` (or `release` if handling failed).
    Taken,
    /// Another delivery holds it (its lease has not run out).
    Busy,
    /// Already handled.
    Handled,
}

/// Which callback events were handled (merchant side).
#[async_trait]
pub trait HandledEvents: Send + Sync + fmt::Debug {
    /// Takes event `id` for handling for `lease`, unless it is handled or taken.
    async fn claim(&self, id: &str, lease: Duration) -> Result<Claim, StoreError>;
    /// Records event `id` as handled, remembered for `keep`.
    async fn handled(&self, id: &str, keep: Duration) -> Result<(), StoreError>;
    /// Gives a claim back without handling it: the next delivery takes it.
    async fn release(&self, id: &str) -> Result<(), StoreError>;
}

/// [`HandledEvents`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryHandledEvents {
    events: Mutex<HashMap<String, (bool, Instant)>>,
}

impl MemoryHandledEvents {
    /// An empty store.
    pub fn new() -> Self {
        MemoryHandledEvents::default()
    }
}

#[async_trait]
impl HandledEvents for MemoryHandledEvents {
    async fn claim(&self, id: &str, lease: Duration) -> Result<Claim, StoreError> {
        let now = Instant::now();
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.retain(|_, (_, until)| *until > now);
        match events.get(id) {
            Some((true, _)) => Ok(Claim::Handled),
            Some((false, _)) => Ok(Claim::Busy),
            None => {
                events.insert(id.to_owned(), (false, now + lease));
                Ok(Claim::Taken)
            }
        }
    }

    async fn handled(&self, id: &str, keep: Duration) -> Result<(), StoreError> {
        let until = Instant::now() + keep;
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), (true, until));
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.get(id).is_some_and(|(done, _)| !done) {
            events.remove(id);
        }
        Ok(())
    }
}

/// What [`Callbacks::handle`] did with a callback (answer 2xx to both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A new event: the handler ran and succeeded; it is recorded as handled.
    Done,
    /// An event handled before: the handler did not run.
    Duplicate,
}

/// Verifies the platform's callbacks and hands each event to your handler once.
#[derive(Debug, Clone)]
pub struct Callbacks {
    secrets: Vec<Secret>,
    events: Arc<dyn HandledEvents>,
    tolerance: Duration,
    lease: Duration,
    keep: Duration,
}

impl Callbacks {
    /// Callbacks signed with `secret`, handled events remembered in `events`.
    pub fn new(secret: Secret, events: Arc<dyn HandledEvents>) -> Self {
        Callbacks {
            secrets: vec![secret],
            events,
            tolerance: Duration::from_secs(300),
            lease: Duration::from_secs(60),
            keep: Duration::from_secs(7 * 24 * 3600),
        }
    }

    /// Accepts callbacks signed with `secret` too (the old one during a rotation's grace
    /// period).
    pub fn also_accept(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The accepted clock difference (default 300 s).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// How long one delivery may hold an event while its handler runs (default 60 s): a
    /// delivery that dies mid-way blocks the event no longer than this.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Checks the signature and decodes the event, without any deduplication (see
    /// [`Callbacks::handle`] for that).
    pub fn verify(&self, signature_header: &str, body: &[u8]) -> Result<serde_json::Value, Error> {
        let secrets: Vec<&Secret> = self.secrets.iter().collect();
        signing::verify_callback_with_any(
            &secrets,
            signature_header,
            body,
            self.tolerance,
            crate::unix_now(),
        )?;
        let event: serde_json::Value = serde_json::from_slice(body).map_err(Error::Decode)?;
        if event["id"].as_str().is_none_or(str::is_empty) {
            return Err(Error::NoEventId);
        }
        Ok(event)
    }

    /// Verifies a callback and runs `handler` on its event unless it was handled before; the
    /// event is recorded as handled only when `handler` succeeds (see the module docs for
    /// what to answer).
    pub async fn handle<F, Fut, E>(
        &self,
        signature_header: &str,
        body: &[u8],
        handler: F,
    ) -> Result<Handled, Error>
    where
        F: FnOnce(serde_json::Value) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<BoxError>,
    {
        let event = self.verify(signature_header, body)?;
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        match self.events.claim(&id, self.lease).await? {
            Claim::Handled => return Ok(Handled::Duplicate),
            Claim::Busy => return Err(Error::InProgress(id)),
            Claim::Taken => {}
        }
        match handler(event).await {
            Ok(()) => {
                self.events.handled(&id, self.keep).await?;
                Ok(Handled::Done)
            }
            Err(e) => {
                // Best effort: if this fails too, the lease runs out on its own.
                let _ = self.events.release(&id).await;
                Err(Error::Handler(e.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callbacks() -> (Callbacks, Secret) {
        let secret = Secret::new("whsec_new");
        (
            Callbacks::new(secret.clone(), Arc::new(MemoryHandledEvents::new())),
            secret,
        )
    }

    fn delivery(secrets: &[&Secret]) -> (String, Vec<u8>) {
        let body = br#"{"id":"evt_1","type":"payment.succeeded"}"#.to_vec();
        (
            signing::sign_callback_with_all(secrets, crate::unix_now(), &body),
            body,
        )
    }

    #[tokio::test]
    async fn a_failing_handler_lets_the_redelivery_through() {
        let (callbacks, secret) = callbacks();
        let (header, body) = delivery(&[&secret]);
        let e = callbacks
            .handle(&header, &body, |_| async { Err("database down") })
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Handler(ref m) if m.to_string() == "database down"),
            "{e:?}"
        );
        let mut runs = 0;
        let done = callbacks
            .handle(&header, &body, |event| {
                runs += 1;
                async move {
                    assert_eq!(event["id"], "evt_1");
                    Ok::<_, String>(())
                }
            })
            .await
            .unwrap();
        assert_eq!((done, runs), (Handled::Done, 1));
        let again = callbacks
            .handle(&header, &body, |_| async {
                panic!("not run for a duplicate") as Result<(), String>
            })
            .await
            .unwrap();
        assert_eq!(again, Handled::Duplicate);
    }

    /// A store that cannot be reached.
    #[derive(Debug)]
    struct Down;

    #[async_trait]
    impl HandledEvents for Down {
        async fn claim(&self, _: &str, _: Duration) -> Result<Claim, StoreError> {
            Err(StoreError::new(std::io::Error::other("connection refused")))
        }
        async fn handled(&self, _: &str, _: Duration) -> Result<(), StoreError> {
            Err(StoreError::new("unreachable"))
        }
        async fn release(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_store_failure_is_an_error_with_its_cause_and_the_handler_does_not_run() {
        let secret = Secret::new("whsec_new");
        let callbacks = Callbacks::new(secret.clone(), Arc::new(Down));
        let (header, body) = delivery(&[&secret]);
        let e = callbacks
            .handle(&header, &body, |_| async {
                panic!("not run without a claim") as Result<(), String>
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Store(_)), "{e:?}");
        assert_eq!(e.to_string(), "the store failed: connection refused");
        let cause = std::error::Error::source(&e).expect("the store's own error");
        assert!(
            cause.downcast_ref::<std::io::Error>().is_some(),
            "{cause:?}"
        );
    }

    #[tokio::test]
    async fn a_delivery_in_progress_holds_the_event() {
        let (callbacks, secret) = callbacks();
        let (header, body) = delivery(&[&secret]);
        let events = Arc::clone(&callbacks.events);
        assert!(matches!(
            events.claim("evt_1", Duration::from_secs(60)).await,
            Ok(Claim::Taken)
        ));
        let e = callbacks
            .handle(&header, &body, |_| async { Ok::<_, String>(()) })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InProgress(_)), "{e:?}");
    }

    #[tokio::test]
    async fn several_secrets_are_accepted_and_one_is_enough() {
        let old = Secret::new("whsec_old");
        let new = Secret::new("whsec_new");
        let other = Secret::new("whsec_other");
        // The platform during the grace period: both signatures.
        let (both, body) = delivery(&[&new, &old]);
        assert!(both.matches(",v1=").count() == 2, "{both}");
        let on_old = Callbacks::new(old.clone(), Arc::new(MemoryHandledEvents::new()));
        let on_new = Callbacks::new(new.clone(), Arc::new(MemoryHandledEvents::new()));
        let on_other = Callbacks::new(other, Arc::new(MemoryHandledEvents::new()));
        assert!(on_old.verify(&both, &body).is_ok());
        assert!(on_new.verify(&both, &body).is_ok());
        assert!(on_other.verify(&both, &body).is_err());
        // After the grace period: only the new signature; a merchant still on the old one
        // refuses, one that also accepts the new one does not.
        let (only_new, body) = delivery(&[&new]);
        assert!(on_old.verify(&only_new, &body).is_err());
        let rotating = on_old.clone().also_accept(new);
        assert!(rotating.verify(&only_new, &body).is_ok());
    }
}
