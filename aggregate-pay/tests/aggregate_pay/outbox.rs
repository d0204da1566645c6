//! The dispatcher: at-least-once delivery, retries with backoff, dead letters, redelivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aggregate_pay::events::EventStatus;
use aggregate_pay::{
    Dispatcher, EventHandler, HandlerError, NotifyProcessor, OutboxEvent, RetryPolicy,
};
use async_trait::async_trait;

use crate::support::{paid_payment, sandbox, stores};

/// Fails the first `fail_first` deliveries of every event, then succeeds; counts calls per id.
struct Flaky {
    fail_first: usize,
    calls: Mutex<HashMap<String, usize>>,
    delivered: AtomicUsize,
}

#[async_trait]
impl EventHandler for Flaky {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let c = calls.entry(event.id.clone()).or_default();
            *c += 1;
            *c
        };
        if n <= self.fail_first {
            return Err(HandlerError::retry(format!(
                "merchant endpoint down (attempt {n})"
            )));
        }
        self.delivered.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn fast(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn retries_until_delivered_then_dead_letters_and_redelivery() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let p = paid_payment(&payments, &channel, &processor, "E", 9).await;
        let event_id = store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.payment_id == p.id)
            .unwrap()
            .id;

        // Fails three times, delivered on the fourth attempt.
        let handler = Arc::new(Flaky {
            fail_first: 3,
            calls: Mutex::new(HashMap::new()),
            delivered: AtomicUsize::new(0),
        });
        let d = Dispatcher::new(store.clone(), handler.clone()).policy(fast(10));
        for _ in 0..200 {
            d.run_once().await.unwrap();
            if handler.delivered.load(Ordering::SeqCst) > 0
                && handler.calls.lock().unwrap().contains_key(&event_id)
            {
                let ev = store
                    .events(None, 1000)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|e| e.id == event_id)
                    .unwrap();
                if ev.status == EventStatus::Delivered {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ev = store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.id == event_id)
            .unwrap();
        assert_eq!(ev.status, EventStatus::Delivered, "{engine}");
        assert_eq!(ev.attempts, 4, "{engine}");
        assert_eq!(handler.calls.lock().unwrap()[&event_id], 4);

        // Another event, a handler that always fails: dead after 3 attempts, error kept.
        let q = paid_payment(&payments, &channel, &processor, "E", 9).await;
        let dead_id = store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.payment_id == q.id)
            .unwrap()
            .id;
        let down = Arc::new(Flaky {
            fail_first: usize::MAX,
            calls: Mutex::new(HashMap::new()),
            delivered: AtomicUsize::new(0),
        });
        let d = Dispatcher::new(store.clone(), down.clone()).policy(fast(3));
        for _ in 0..200 {
            d.run_once().await.unwrap();
            let ev = store
                .events(None, 1000)
                .await
                .unwrap()
                .into_iter()
                .find(|e| e.id == dead_id)
                .unwrap();
            if ev.status == EventStatus::Dead {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let dead = store.events(Some(EventStatus::Dead), 1000).await.unwrap();
        let ev = dead
            .iter()
            .find(|e| e.id == dead_id)
            .expect("dead-lettered");
        assert_eq!(ev.attempts, 3, "{engine}");
        assert!(
            ev.last_error
                .as_deref()
                .unwrap()
                .contains("merchant endpoint down")
        );

        // The endpoint recovers; an operator redelivers.
        assert!(store.redeliver(&dead_id).await.unwrap());
        assert!(
            !store.redeliver(&dead_id).await.unwrap(),
            "only dead events are redelivered"
        );
        let up = Arc::new(Flaky {
            fail_first: 0,
            calls: Mutex::new(HashMap::new()),
            delivered: AtomicUsize::new(0),
        });
        Dispatcher::new(store.clone(), up.clone())
            .policy(fast(3))
            .run_once()
            .await
            .unwrap();
        assert_eq!(up.calls.lock().unwrap().get(&dead_id), Some(&1), "{engine}");
        let ev = store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.id == dead_id)
            .unwrap();
        assert_eq!(ev.status, EventStatus::Delivered);
    }
}

#[tokio::test]
async fn concurrent_claims_lease_each_event_to_one_dispatcher() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let mut expected = std::collections::HashSet::new();
        for _ in 0..40 {
            let p = paid_payment(&payments, &channel, &processor, "C", 5).await;
            expected.insert(p.id);
        }
        // Four claimers at once, small batches, a lease longer than the test.
        let mut claimers = Vec::new();
        for _ in 0..4 {
            let store = store.clone();
            claimers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .claim_events(time::OffsetDateTime::now_utc(), Duration::from_secs(600), 7)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed);
                }
            }));
        }
        let mut claimed = Vec::new();
        for c in claimers {
            claimed.extend(c.await.unwrap());
        }
        let ids: std::collections::HashSet<_> = claimed.iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            ids.len(),
            claimed.len(),
            "{engine}: an event was claimed twice"
        );
        let paid: std::collections::HashSet<_> =
            claimed.iter().map(|e| e.payment_id.clone()).collect();
        assert_eq!(
            paid, expected,
            "{engine}: every payment's event was claimed"
        );
        assert_eq!(claimed.len(), expected.len(), "{engine}");
        // Leased: nothing is left to claim until the lease ends.
        assert!(
            store
                .claim_events(
                    time::OffsetDateTime::now_utc(),
                    Duration::from_secs(600),
                    100
                )
                .await
                .unwrap()
                .is_empty(),
            "{engine}"
        );
        // Delivered events are never claimed again, even after their lease.
        let all: Vec<String> = claimed.iter().map(|e| e.id.clone()).collect();
        store.events_delivered(&all).await.unwrap();
        let later = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
        assert!(
            store
                .claim_events(later, Duration::from_secs(600), 100)
                .await
                .unwrap()
                .is_empty(),
            "{engine}"
        );
    }
}

/// Records what it is handed, in order.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<OutboxEvent>>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), HandlerError> {
        self.seen.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Recorder {
    /// Waits (up to 10 s) until an event of `payment` has been handled.
    async fn wait_for(&self, payment: &aggregate_pay::PaymentId) -> bool {
        for _ in 0..1000 {
            if self
                .seen
                .lock()
                .unwrap()
                .iter()
                .any(|e| &e.payment_id == payment)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

#[tokio::test]
async fn a_running_dispatcher_gets_committed_events_without_polling() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let recorder = Arc::new(Recorder::default());
        // Paid before the dispatcher starts: found by its first poll, which comes after it
        // has asked the store for the events it commits.
        let before = paid_payment(&payments, &channel, &processor, "H", 3).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let dispatcher = Dispatcher::new(store.clone(), recorder.clone());
        let stop = shutdown.clone();
        // After that first poll it would not look again for an hour.
        let running =
            tokio::spawn(async move { dispatcher.run(Duration::from_secs(3600), stop).await });
        assert!(recorder.wait_for(&before.id).await, "{engine}: polled");

        let after = paid_payment(&payments, &channel, &processor, "H", 4).await;
        assert!(
            recorder.wait_for(&after.id).await,
            "{engine}: the committed event was handed to the dispatcher"
        );
        let mut delivered = false;
        for _ in 0..500 {
            let events = crate::support::events_of(&store, &after.id).await;
            if events.iter().all(|e| e.status == EventStatus::Delivered) {
                delivered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(delivered, "{engine}: the handed-off event is acknowledged");
        // Exactly once each: the hand-off leased it, so no poll took it as well.
        let seen = recorder.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{engine}: {seen:?}");
        assert_eq!(
            seen[1].data,
            crate::support::events_of(&store, &after.id).await[0].data
        );
        shutdown.cancel();
        running.await.unwrap();
    }
}

#[tokio::test]
async fn handed_off_events_are_leased_and_claimed_again_if_never_acknowledged() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let lease = Duration::from_secs(30);
        let mut handed = store.hand_off_events(lease, 1).unwrap();
        assert!(
            store.hand_off_events(lease, 1).is_none(),
            "{engine}: one receiver at a time"
        );

        let first = paid_payment(&payments, &channel, &processor, "L", 5).await;
        // The channel is full: the next commit's event is stored unleased, for polling.
        let second = paid_payment(&payments, &channel, &processor, "L", 6).await;
        let event = handed.recv().await.unwrap();
        assert_eq!(event.payment_id, first.id, "{engine}");
        assert!(handed.try_recv().is_err(), "{engine}: no room, not handed");
        let now = time::OffsetDateTime::now_utc();
        let polled = store.claim_events(now, lease, 100).await.unwrap();
        assert_eq!(
            polled.iter().map(|e| &e.payment_id).collect::<Vec<_>>(),
            vec![&second.id],
            "{engine}: the handed-off event is leased, the other is not"
        );
        store.event_delivered(&polled[0].id).await.unwrap();

        // The receiver stops without acknowledging: its event is claimed once the lease ends,
        // and commits from now on are polled.
        drop(handed);
        let third = paid_payment(&payments, &channel, &processor, "L", 7).await;
        let later = now + lease + Duration::from_secs(1);
        let polled: Vec<_> = store
            .claim_events(later, lease, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.id, e.payment_id))
            .collect();
        assert_eq!(
            polled,
            vec![
                (event.id.clone(), first.id.clone()),
                (
                    crate::support::events_of(&store, &third.id).await[0]
                        .id
                        .clone(),
                    third.id.clone()
                )
            ],
            "{engine}"
        );
        assert!(
            store.hand_off_events(lease, 1).is_some(),
            "{engine}: a new receiver may listen"
        );
    }
}

/// Refuses every event for good.
struct Rejecting {
    calls: AtomicUsize,
}

#[async_trait]
impl EventHandler for Rejecting {
    async fn handle(&self, _: &OutboxEvent) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(HandlerError::reject("the order this event is for is gone"))
    }
}

/// A handler that says retrying cannot help: dead at once, not after the policy's attempts.
#[tokio::test]
async fn a_rejected_event_is_dead_at_once() {
    for (engine, store) in stores().await {
        let (channel, channels, payments) = sandbox(&store);
        let processor = NotifyProcessor::new(channels, store.clone());
        let p = paid_payment(&payments, &channel, &processor, "J", 9).await;
        let handler = Arc::new(Rejecting {
            calls: AtomicUsize::new(0),
        });
        let d = Dispatcher::new(store.clone(), handler.clone()).policy(fast(8));
        for _ in 0..20 {
            d.run_once().await.unwrap();
        }
        let ev = store
            .events(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.payment_id == p.id)
            .unwrap();
        assert_eq!(ev.status, EventStatus::Dead, "{engine}");
        assert_eq!(ev.attempts, 1, "{engine}: tried once, not eight times");
        assert_eq!(
            ev.last_error.as_deref(),
            Some("the order this event is for is gone"),
            "{engine}"
        );
        assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "{engine}");
    }
}
